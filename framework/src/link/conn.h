/*
 * conn.h — one connection of a link: an NNG byte stream carrying
 * length-prefixed frames, driven from goroutines (internal).
 *
 * Every NNG operation runs on an nng_aio whose callback (on an NNG thread)
 * wakes the goroutine parked on it, so no worker thread ever blocks in NNG.
 * A connection has one reader (the goroutine that owns it) and any number
 * of writers, serialised by a goroutine mutex.  Closing the stream ends
 * every pending operation with an error, which is how link goroutines are
 * stopped.
 */
#ifndef SLI_LINK_CONN_H
#define SLI_LINK_CONN_H

#include <nng/nng.h>
#include <stdatomic.h>
#include <stdint.h>

#include "link/batch.h"
#include "link/frame.h"
#include "link/payload.h"
#include "sched/wait.h"
#include "sluice/sync.h"

/* An aio a goroutine can park on. */
typedef struct sli_aio {
	nng_aio   *aio;
	sli_wait   w;     /* armed by sli_aio_begin */
	atomic_int armed; /* release/acquire edge for ThreadSanitizer */
} sli_aio;

int  sli_aio_init(sli_aio *a);
void sli_aio_fini(sli_aio *a);
/* Call before starting the NNG operation, then sli_aio_end to park until
 * it completes; returns the NNG result.  what names the operation in
 * goroutine dumps ("link read", ...). */
void sli_aio_begin(sli_aio *a);
int  sli_aio_end(sli_aio *a, const char *what);
/* Undoes sli_aio_begin when the operation was not started after all. */
void sli_aio_abandon(sli_aio *a);

typedef struct sli_conn {
	nng_stream        *st;      /* the byte stream */
	const sli_frame_limits *lim; /* frame limits of the link */
	sli_aio            rd;      /* reader's aio */
	sli_aio            wr;      /* writers' aio (under wmu) */
	sl_mutex           wmu;     /* one frame written at a time */
	sli_payload       *rblk;    /* the read buffer: a payload block, so
	                               the messages of a batch can point
	                               into it (each holding a reference)
	                               instead of being copied out */
	uint8_t           *rbuf;    /* its bytes (NULL: none yet) */
	size_t             rcap;    /* its size */
	size_t             roff;    /* first unparsed byte */
	size_t             rlen;    /* unparsed bytes */
	_Atomic int64_t    last_rx; /* sl_now() of the last byte read */
	_Atomic int64_t    last_tx; /* of the last frame written */
	atomic_bool        closed;  /* sli_conn_close was called */
	atomic_int         oplk;    /* orders starting an operation against
	                               closing (see sli_conn_close) */
	atomic_bool        reading; /* the reader waits for bytes */
	atomic_bool        wdead;   /* a write failed: no more writes */
	atomic_bool        hello;   /* both hellos exchanged (before: no
	                               heartbeats; the handshake's own
	                               timeout applies) */
	atomic_int         refs;    /* owner + borrowed writers */
	atomic_int         write_timeout_ms; /* a write stuck this long
	                                        fails (peer not reading) */
	char               peer[192]; /* "stage 'x' port 'y'" once known */
	char               err[SLI_FRAME_ERRSZ]; /* last decode error */
	sli_bmsg          *bv;      /* views of the last batch read */
	size_t             bvn;     /* how many */
	size_t             bvcap;   /* size of bv */
} sli_conn;

/* Wraps st (taking ownership).  NULL if out of memory (st is closed). */
sli_conn *sli_conn_new(nng_stream *st, const sli_frame_limits *lim);
sli_conn *sli_conn_ref(sli_conn *c);
/* Drops a reference; the last one frees the stream.  NULL is fine. */
void      sli_conn_unref(sli_conn *c);
/* Closes the stream: pending and later I/O fail.  Idempotent. */
void      sli_conn_close(sli_conn *c);

/*
 * Reads the next frame, waiting at most timeout_ms for more bytes
 * (NNG_DURATION_INFINITE: no limit).  Returns 0 and *fp (sli_frame_free
 * it); SL_ECONNSHUT if the stream ended or failed; SL_ETIMEDOUT; or a
 * decode error (SL_EPROTO, SL_ETOOBIG, SL_EVERSION) with c->err set.
 * A batch in canonical form comes back as *fp == NULL with its messages
 * in c->bv[0..c->bvn), viewing c's buffer until the next read.
 */
int sli_conn_read(sli_conn *c, sli_frame **fp, int timeout_ms);

/*
 * Reads and drops whatever c brings, frames or not, until the stream ends
 * or the clock (sl_now) reaches until: after we told the peer why we drop
 * it, so that it reads that before it sees the connection close.  No
 * frame can be read from c afterwards.
 */
void sli_conn_drain(sli_conn *c, int64_t until);

/* The block c->bv's payloads lie in.  Each message that keeps pointing
 * at its payload after the next read takes a reference to it (refs),
 * which sl_msg_done drops; the connection then reads into a new block. */
sli_payload *sli_conn_rblock(sli_conn *c);
/* The size in bytes of that block. */
size_t sli_conn_rsize(sli_conn *c);

/* Encodes and writes f.  0, SL_ECONNSHUT, or an encode error. */
int sli_conn_write(sli_conn *c, const sli_frame *f);

/* Writes bytes already framed (with their 4-byte length prefixes). */
int sli_conn_write_raw(sli_conn *c, const void *buf, size_t len);

/* Appends f, framed, to *buf (grown with realloc).  0 or an error. */
int sli_frame_append(const sli_frame *f, const sli_frame_limits *lim,
    uint8_t **buf, size_t *len, size_t *cap, char *err, size_t errsz);

#endif /* SLI_LINK_CONN_H */
