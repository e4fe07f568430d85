/*
 * frame.h — the frame codec of links (internal).
 *
 * Each length-prefixed frame on a link's stream (conn.c) is one packed
 * sluice.link.Frame (see
 * proto/sluice/link.proto and docs/link-protocol.md).  This codec turns
 * wire bytes into a frame that has been checked against explicit limits,
 * and a frame into wire bytes, refusing to emit one that its peer would
 * refuse.  It never trusts the wire: any byte string, of any length, gives
 * either a valid frame or an error code with a message; never a crash, an
 * unbounded allocation, or a frame that breaks the rules below.
 *
 * Rules checked on every frame (decode and encode):
 *   frame      the encoding is at most lim->max_frame bytes; exactly one
 *              kind of the oneof is set; no field (known or not, at any
 *              depth) is numbered 0 (decode only).  Unknown fields with
 *              other numbers are kept and ignored (newer peers).
 *   hello      version == SLI_LINK_VERSION (else SL_EVERSION); role is
 *              SENDER or RECEIVER; stage and port are 1..max_name bytes of
 *              UTF-8 without NUL; payload_type is a protobuf full name of
 *              1..max_name bytes (identifiers joined by '.'); incarnation
 *              is nonzero; max_frame is at least SLI_FRAME_MIN.
 *   batch      1..max_batch messages (payloads); first_seq nonzero and
 *              the last seq within 64 bits; payload at most max_payload
 *              bytes; one lineage seq delta per message with a nonzero
 *              lineage source, none without one; every lineage seq
 *              nonzero.
 *   credit     grants at least one message or one byte.
 *   ack        seq nonzero; an attached credit follows the credit rule.
 *   cancel     code nonzero; direction DOWNSTREAM or UPSTREAM; text of
 *              0..max_text bytes of UTF-8 without NUL.
 *   refuse     code nonzero; text as for cancel.
 *   close, heartbeat: any values.
 * Errors: SL_ETOOBIG for a limit exceeded (frame, payload, batch, name,
 * text, or the decoding memory budget), SL_EVERSION for a hello of another
 * protocol version, SL_EPROTO for anything else.
 *
 * Error messages: functions taking (err, errsz) write one line (no
 * newline) into err on failure, e.g. "batch: 3 lineage seq deltas for 4
 * messages".  err may be NULL when errsz is 0.  SLI_FRAME_ERRSZ is
 * enough for every message.
 */
#ifndef SLUICE_LINK_FRAME_H
#define SLUICE_LINK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/link.pb-c.h"

/* Short names for the generated types. */
typedef Sluice__Link__Frame     sli_frame;
typedef Sluice__Link__Hello     sli_hello;
typedef Sluice__Link__Batch     sli_batch;
typedef Sluice__Link__Credit    sli_credit;
typedef Sluice__Link__Ack       sli_ack;
typedef Sluice__Link__Close     sli_close;
typedef Sluice__Link__Cancel    sli_cancel;
typedef Sluice__Link__Heartbeat sli_heartbeat;
typedef Sluice__Link__Refuse    sli_refuse;

/* The protocol version this build speaks. */
#define SLI_LINK_VERSION ((uint32_t) SLUICE__LINK__VERSION__VERSION_CURRENT)

/* The smallest max_frame a hello may announce. */
#define SLI_FRAME_MIN 1024u

/* A buffer size that holds every error message of this codec. */
#define SLI_FRAME_ERRSZ 512

/* Default limits (see sli_frame_limits). */
#define SLI_FRAME_MAX_DEFAULT   (16u * 1024 * 1024)
#define SLI_PAYLOAD_MAX_DEFAULT (4u * 1024 * 1024)
#define SLI_BATCH_MAX_DEFAULT   4096u
#define SLI_NAME_MAX_DEFAULT    256u
#define SLI_TEXT_MAX_DEFAULT    4096u

/*
 * Limits of one end of a link.  max_frame also bounds decoding memory:
 * decoding a frame of n bytes allocates at most 2n + 384 max_batch +
 * 64 KiB bytes, else it fails with SL_ETOOBIG.  max_frame must fit in a
 * uint32 (it is announced in hello).
 */
typedef struct sli_frame_limits {
	size_t max_frame;   /* bytes of one encoded frame */
	size_t max_payload; /* bytes of one message payload */
	size_t max_batch;   /* messages in one batch */
	size_t max_name;    /* bytes of a stage, port or type name */
	size_t max_text;    /* bytes of a cancel or refuse text */
} sli_frame_limits;

/* The SLI_*_DEFAULT values.  A NULL limits argument means these. */
extern const sli_frame_limits sli_frame_limits_default;

/*
 * Decodes and checks the frame in buf[0..len).  On success stores a new
 * frame in *fp (free it with sli_frame_free) and returns 0; else stores
 * NULL and returns SL_ETOOBIG, SL_EVERSION or SL_EPROTO with a message,
 * or SL_ENOMEM if malloc failed.  Does not block; keeps no reference to
 * buf.
 * buf may be NULL when len is 0 (which is an error: an empty frame has no
 * kind).
 */
int sli_frame_decode(const void *buf, size_t len, const sli_frame_limits *lim,
    sli_frame **fp, char *err, size_t errsz);

/* Frees a frame from sli_frame_decode.  NULL is fine. */
void sli_frame_free(sli_frame *f);

/* Checks the rules above, except the encoded size.  0 or an error. */
int sli_frame_check(const sli_frame *f, const sli_frame_limits *lim,
    char *err, size_t errsz);

/* The encoded size of f, in bytes. */
size_t sli_frame_size(const sli_frame *f);

/* Checks the names a link puts in its hello (NUL-terminated) as a peer
 * with the default limits checks them: 0, or SL_EINVAL with err saying
 * why. */
int sli_frame_check_names(const char *stage, const char *port,
    const char *type, char *err, size_t errsz);

/*
 * Checks f, then packs it into buf[0..cap) and stores its size in *lenp.
 * Returns 0; an error of sli_frame_check; SL_ETOOBIG if the encoding
 * exceeds lim->max_frame; or SL_EINVAL if it exceeds cap (*lenp then holds
 * the size needed).  lenp may be NULL.
 */
int sli_frame_encode(const sli_frame *f, const sli_frame_limits *lim,
    void *buf, size_t cap, size_t *lenp, char *err, size_t errsz);

/* "hello", "batch", ... or "none" for a frame without kind (f may be
 * NULL). */
const char *sli_frame_kind_name(const sli_frame *f);

/*
 * Checks the peer's hello against ours when a link connects; both must
 * have passed sli_frame_check.  Fails with SL_EVERSION if the versions
 * differ, SL_EPROTO if both ends have the same role, SL_ETYPE if the
 * payload types differ; the message names both ends (stage, port) and
 * both values, ready to go out in a Refuse frame, e.g.
 *   payload type mismatch: this end (stage 'sink' port 'in') expects
 *   'sluice.example.Record', peer (stage 'src' port 'out') sends
 *   'sluice.example.Other'
 */
int sli_hello_match(const sli_hello *ours, const sli_hello *peer,
    char *err, size_t errsz);

/* A bytes field viewing the C string s (not copied; s must outlive it). */
ProtobufCBinaryData sli_bytes(const char *s);

/* True if b holds exactly the C string s. */
bool sli_bytes_eq(ProtobufCBinaryData b, const char *s);

#endif /* SLUICE_LINK_FRAME_H */
