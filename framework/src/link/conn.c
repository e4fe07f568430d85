/*
 * conn.c — frames over an NNG byte stream, from goroutines.  See conn.h.
 *
 * Wire format: each frame is a 4-byte little-endian length followed by
 * that many bytes of packed sluice.link.Frame.  A length above the link's
 * max_frame is refused before any byte of the frame is buffered.
 */
#include <stdlib.h>
#include <string.h>

#include "core/lock.h"
#include "link/conn.h"
#include "link/payload.h"
#include "sluice/error.h"

#define CONN_HDR      4
#define CONN_READ_MIN (64 * 1024)

/* ---- aio ---------------------------------------------------------------- */

static void
aio_cb(void *arg)
{
	sli_aio *a = arg;

	/* Pairs with the release in sli_aio_begin: the hand-over through
	 * libnng (not instrumented) is invisible to ThreadSanitizer. */
	(void) atomic_load_explicit(&a->armed, memory_order_acquire);
	if (sli_wait_claim(&a->w, 0))
		sli_wait_wake(&a->w);
}

int
sli_aio_init(sli_aio *a)
{
	return (nng_aio_alloc(&a->aio, aio_cb, a) == 0 ? 0 : SL_ENOMEM);
}

void
sli_aio_fini(sli_aio *a)
{
	if (a->aio != NULL)
		nng_aio_free(a->aio);
	a->aio = NULL;
}

void
sli_aio_begin(sli_aio *a)
{
	sli_wait_init(&a->w);
	atomic_store_explicit(&a->armed, 1, memory_order_release);
	sl_sched_hold(); /* I/O in flight can still wake us: no deadlock */
}

void
sli_aio_abandon(sli_aio *a)
{
	atomic_store_explicit(&a->armed, 0, memory_order_relaxed);
	sl_sched_release();
}

int
sli_aio_end(sli_aio *a, const char *what)
{
	sli_wait_block(&a->w, NULL, SL_FOREVER, what, a, NULL, NULL);
	sl_sched_release();
	return (nng_aio_result(a->aio));
}

/* ---- connections -------------------------------------------------------- */

sli_conn *
sli_conn_new(nng_stream *st, const sli_frame_limits *lim)
{
	sli_conn *c = calloc(1, sizeof(*c));

	if (c == NULL || sli_aio_init(&c->rd) != 0 ||
	    sli_aio_init(&c->wr) != 0) {
		if (c != NULL) {
			sli_aio_fini(&c->rd);
			free(c);
		}
		nng_stream_close(st);
		nng_stream_free(st);
		return (NULL);
	}
	c->st = st;
	c->lim = lim;
	atomic_init(&c->write_timeout_ms, NNG_DURATION_INFINITE);
	atomic_init(&c->refs, 1);
	atomic_init(&c->last_rx, sl_now());
	atomic_init(&c->last_tx, sl_now());
	strcpy(c->peer, "a peer");
	return (c);
}

sli_conn *
sli_conn_ref(sli_conn *c)
{
	atomic_fetch_add(&c->refs, 1);
	return (c);
}

/*
 * An operation started on a stream after nng_stream_close may never
 * complete: a TCP or IPC descriptor is gone from NNG's poller, and a TLS
 * stream queues the operation behind a transport that will never read
 * again, where cancelling it does not reach it either (nng 1.5.2).  So
 * no operation may start once the stream is closed: the closer sets
 * `closed` under oplk, and conn_start checks it under oplk as it starts
 * an operation.  An operation that started first is in the stream's
 * queue when nng_stream_close fails it; both aios are also cancelled.
 */
void
sli_conn_close(sli_conn *c)
{
	bool was;

	sli_lock(&c->oplk);
	was = atomic_exchange(&c->closed, true);
	sli_unlock(&c->oplk);
	if (!was) {
		nng_stream_close(c->st);
		nng_aio_cancel(c->rd.aio);
		nng_aio_cancel(c->wr.aio);
	}
}

/* Starts a receive (send false) or send on a's aio, armed by
 * sli_aio_begin, unless the stream is closed: then disarms a and returns
 * false. */
static bool
conn_start(sli_conn *c, sli_aio *a, bool send)
{
	bool closed;

	sli_lock(&c->oplk);
	closed = atomic_load(&c->closed);
	if (!closed) {
		if (send)
			nng_stream_send(c->st, a->aio);
		else
			nng_stream_recv(c->st, a->aio);
	}
	sli_unlock(&c->oplk);
	if (closed)
		sli_aio_abandon(a);
	return (!closed);
}

void
sli_conn_unref(sli_conn *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	sli_conn_close(c);
	sli_aio_fini(&c->rd);
	sli_aio_fini(&c->wr);
	nng_stream_free(c->st);
	if (c->rblk != NULL) {
		sl_msg m = { .block = c->rblk };
		sli_payload_release(&m);
	}
	free(c->bv);
	free(c);
}

static uint32_t
conn_get32(const uint8_t *p)
{
	return ((uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	    (uint32_t) p[3] << 24);
}

static void
conn_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

/*
 * Makes room to read at least want - rlen more bytes after the unparsed
 * ones, which move to the front.  The buffer is reused while no message
 * points into it; once one does (sli_conn_rblock), a fresh one takes the
 * unparsed bytes and the old one lives on until its messages are
 * released.  Only this connection's reader hands out references, so
 * refs == 1 here means nobody else holds the buffer.  0 or SL_ENOMEM.
 */
static int
conn_rbuf_ready(sli_conn *c, size_t want)
{
	sli_payload *nb;
	sl_msg       old;

	if (c->rblk != NULL && atomic_load_explicit(&c->rblk->refs,
	    memory_order_acquire) == 1 && c->rcap >= want) {
		if (c->roff > 0 && c->rlen > 0)
			memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
		c->roff = 0;
		return (0);
	}
	if (c->rcap > want)
		want = c->rcap;
	if ((nb = sli_payload_new(want, 1)) == NULL)
		return (SL_ENOMEM);
	if (c->rlen > 0)
		memcpy(sli_payload_bytes(nb), c->rbuf + c->roff, c->rlen);
	if (c->rblk != NULL) {
		old = (sl_msg){ .block = c->rblk };
		sli_payload_release(&old);
	}
	c->rblk = nb;
	c->rbuf = sli_payload_bytes(nb);
	c->rcap = want;
	c->roff = 0;
	return (0);
}

sli_payload *
sli_conn_rblock(sli_conn *c)
{
	return (c->rblk);
}

size_t
sli_conn_rsize(sli_conn *c)
{
	return (c->rcap);
}

int
sli_conn_read(sli_conn *c, sli_frame **fp, int timeout_ms)
{
	*fp = NULL;
	for (;;) {
		size_t need = CONN_HDR;

		if (c->rlen >= CONN_HDR) {
			uint32_t len = conn_get32(c->rbuf + c->roff);
			if (len > c->lim->max_frame) {
				snprintf(c->err, sizeof(c->err), "frame of %u "
				    "bytes exceeds the limit of %zu bytes", len,
				    c->lim->max_frame);
				return (SL_ETOOBIG);
			}
			need = CONN_HDR + (size_t) len;
			if (c->rlen >= need) {
				const uint8_t *fb = c->rbuf + c->roff +
				    CONN_HDR;
				int r = 0;
				/* The bytes stay in rbuf until the next read,
				 * so batch views can point at them. */
				c->roff += need;
				c->rlen -= need;
				if (sli_batch_view(fb, len, c->lim, &c->bv,
				    &c->bvcap, &c->bvn) != 0)
					r = sli_frame_decode(fb, len, c->lim,
					    fp, c->err, sizeof(c->err));
				return (r);
			}
		}
		/* Need more bytes: compact, grow, read. */
		size_t want = need > CONN_READ_MIN ? need : CONN_READ_MIN;
		if (conn_rbuf_ready(c, want) != 0)
			return (SL_ENOMEM);
		nng_iov iov = { .iov_buf = c->rbuf + c->rlen,
			.iov_len = c->rcap - c->rlen };
		nng_aio_set_iov(c->rd.aio, 1, &iov);
		nng_aio_set_timeout(c->rd.aio, timeout_ms);
		sli_aio_begin(&c->rd);
		if (!conn_start(c, &c->rd, false))
			return (SL_ECONNSHUT);
		atomic_store(&c->reading, true);
		int rv = sli_aio_end(&c->rd, "link read");
		atomic_store(&c->reading, false);
		if (rv == NNG_ETIMEDOUT)
			return (SL_ETIMEDOUT);
		if (rv != 0)
			return (SL_ECONNSHUT);
		size_t n = nng_aio_count(c->rd.aio);
		if (n == 0)
			return (SL_ECONNSHUT);
		c->rlen += n;
		atomic_store(&c->last_rx, sl_now());
	}
}

void
sli_conn_drain(sli_conn *c, int64_t until)
{
	size_t   cap = 16 * 1024;
	uint8_t *buf;
	int64_t  left;

	/* Not into rbuf: messages may still point into it. */
	c->roff = c->rlen = 0;
	if ((buf = malloc(cap)) == NULL)
		return;
	while ((left = until - sl_now()) > 0) {
		nng_iov iov = { .iov_buf = buf, .iov_len = cap };
		nng_aio_set_iov(c->rd.aio, 1, &iov);
		nng_aio_set_timeout(c->rd.aio,
		    (int) (left / SL_MILLISECOND) + 1);
		sli_aio_begin(&c->rd);
		if (!conn_start(c, &c->rd, false))
			break;
		if (sli_aio_end(&c->rd, "link drain") != 0 ||
		    nng_aio_count(c->rd.aio) == 0)
			break;
		atomic_store(&c->last_rx, sl_now());
	}
	free(buf);
}

int
sli_conn_write_raw(sli_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int            r = 0;

	sl_mutex_lock(&c->wmu);
	while (len > 0) {
		if (atomic_load(&c->closed) || atomic_load(&c->wdead)) {
			r = SL_ECONNSHUT;
			break;
		}
		nng_iov iov = { .iov_buf = (void *) (uintptr_t) p,
			.iov_len = len };
		nng_aio_set_iov(c->wr.aio, 1, &iov);
		nng_aio_set_timeout(c->wr.aio, atomic_load(&c->write_timeout_ms));
		sli_aio_begin(&c->wr);
		if (!conn_start(c, &c->wr, true)) {
			r = SL_ECONNSHUT;
			break;
		}
		if (sli_aio_end(&c->wr, "link write") != 0) {
			r = SL_ECONNSHUT;
			break;
		}
		size_t n = nng_aio_count(c->wr.aio);
		p += n;
		len -= n;
	}
	/* Part of a frame may be out: nothing may follow it on this
	 * stream.  Writing stops for good, but the stream stays open for
	 * reading: the peer may have said something last (a Cancel) that
	 * must still be read.  It ends when the peer closes or, if the peer
	 * is alive but stuck, when it drops us for silence. */
	if (r != 0)
		atomic_store(&c->wdead, true);
	else
		atomic_store(&c->last_tx, sl_now());
	sl_mutex_unlock(&c->wmu);
	return (r);
}

int
sli_frame_append(const sli_frame *f, const sli_frame_limits *lim,
    uint8_t **buf, size_t *len, size_t *cap, char *err, size_t errsz)
{
	size_t sz = sli_frame_size(f), n;
	int    r;

	if (sz > lim->max_frame) {
		snprintf(err, errsz, "%s frame of %zu bytes exceeds the limit "
		    "of %zu bytes", sli_frame_kind_name(f), sz, lim->max_frame);
		return (SL_ETOOBIG);
	}
	if (*cap - *len < CONN_HDR + sz) {
		size_t ncap = *cap ? *cap : 4096;
		while (ncap - *len < CONN_HDR + sz)
			ncap *= 2;
		uint8_t *nb = realloc(*buf, ncap);
		if (nb == NULL)
			return (SL_ENOMEM);
		*buf = nb;
		*cap = ncap;
	}
	r = sli_frame_encode(f, lim, *buf + *len + CONN_HDR, sz, &n, err,
	    errsz);
	if (r != 0)
		return (r);
	conn_put32(*buf + *len, (uint32_t) n);
	*len += CONN_HDR + n;
	return (0);
}

int
sli_conn_write(sli_conn *c, const sli_frame *f)
{
	uint8_t small[512], *buf = NULL;
	size_t  len = 0, cap = 0;
	char    err[SLI_FRAME_ERRSZ];
	int     r;

	/* Control frames are small: encode on the stack when they fit. */
	if (sli_frame_size(f) + CONN_HDR <= sizeof(small)) {
		size_t n;
		if ((r = sli_frame_encode(f, c->lim, small + CONN_HDR,
		    sizeof(small) - CONN_HDR, &n, err, sizeof(err))) != 0)
			return (r);
		conn_put32(small, (uint32_t) n);
		return (sli_conn_write_raw(c, small, n + CONN_HDR));
	}
	if ((r = sli_frame_append(f, c->lim, &buf, &len, &cap, err,
	    sizeof(err))) == 0)
		r = sli_conn_write_raw(c, buf, len);
	free(buf);
	return (r);
}
