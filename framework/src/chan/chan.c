/*
 * chan.c — Go channels: unbuffered (rendezvous) and buffered, with close.
 *
 * A channel is a ring buffer and two FIFO queues of blocked parties, all
 * under one spinlock.  Elements move directly between a sender and a
 * blocked receiver (or the other way round) without touching the buffer,
 * as in Go.  A waiter left in a queue by a select that already completed
 * elsewhere (or timed out) loses sli_wait_claim and is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/chan.h"
#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/context.h"
#include "sluice/error.h"

/* 0 unknown (read SLUICE_PANIC on first use), 1 off, 2 on; ch_chosen
 * once the program has said which (the variable no longer counts). */
static atomic_int  ch_panic;
static atomic_bool ch_chosen;

void
sl_chan_set_panic(bool on)
{
	atomic_store(&ch_chosen, true);
	atomic_store(&ch_panic, on ? 2 : 1);
}

/* $SLUICE_PANIC as a ch_panic value: unset, empty or "0" is off, "1" is
 * on; anything else ("true", "yes", "2") is 0, after a message on stderr
 * naming it: a switch that reads "false" as on is worse than none. */
static int
ch_panic_env(void)
{
	const char *e = getenv("SLUICE_PANIC");

	if (e == NULL || *e == '\0' || strcmp(e, "0") == 0)
		return (1);
	if (strcmp(e, "1") == 0)
		return (2);
	fprintf(stderr, "sluice: SLUICE_PANIC=\"%s\": not 0 or 1\n", e);
	return (0);
}

int
sli_chan_panic_check(void)
{
	int p;

	if (atomic_load(&ch_chosen))
		return (0);
	if ((p = ch_panic_env()) == 0)
		return (SL_EINVAL);
	atomic_store(&ch_panic, p);
	return (0);
}

void
sli_chan_misuse(const char *what)
{
	int p = atomic_load(&ch_panic);

	if (p == 0) {
		/* Outside sl_main nothing checked the variable: a bad value
		 * was reported just now, and leaves the default. */
		if ((p = ch_panic_env()) == 0)
			p = 1;
		atomic_store(&ch_panic, p);
	}
	if (p == 2) {
		fflush(stdout);
		fprintf(stderr, "sluice: panic: %s\n", what);
		if (sl_goid() != 0)
			fprintf(stderr, "\ngoroutine %llu [running]\n",
			    (unsigned long long) sl_goid());
		fflush(stderr);
		abort();
	}
}

/* ---- wait queues ------------------------------------------------------- */

void
sli_chq_push(sli_chq *q, sli_chwaiter *e)
{
	e->next = NULL;
	e->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	e->queued = true;
}

void
sli_chq_remove(sli_chq *q, sli_chwaiter *e)
{
	if (!e->queued)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	e->next = e->prev = NULL;
	e->queued = false;
}

/* The first waiter that can still be claimed, dequeued and claimed. */
static sli_chwaiter *
ch_take(sli_chq *q)
{
	sli_chwaiter *e;

	while ((e = q->head) != NULL) {
		sli_chq_remove(q, e);
		if (sli_wait_claim(e->wait, e->index))
			return (e);
	}
	return (NULL);
}

/* ---- lifetime ---------------------------------------------------------- */

sl_chan *
sl_chan_make(size_t elem_size, size_t cap)
{
	sl_chan *ch;
	size_t   bytes;

	if (cap != 0 && elem_size > (SIZE_MAX - sizeof(*ch)) / cap)
		return (NULL);
	bytes = sizeof(*ch) + elem_size * cap;
	if ((ch = calloc(1, bytes)) == NULL)
		return (NULL);
	atomic_init(&ch->lock, 0);
	atomic_init(&ch->refs, 1);
	ch->elem_size = elem_size;
	ch->cap = cap;
	ch->buf = (char *) (ch + 1);
	return (ch);
}

sl_chan *
sl_chan_retain(sl_chan *ch)
{
	if (ch != NULL)
		atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
	return (ch);
}

/* Whether a plain thread waits in q.  Its entry stays queued until it
 * returns, so freeing the channel under it is as fatal as under a
 * goroutine, with or without sl_main. */
static bool
ch_thread_waits(const sli_chq *q)
{
	for (const sli_chwaiter *e = q->head; e != NULL; e = e->next)
		if (e->wait->g == NULL)
			return (true);
	return (false);
}

void
sl_chan_release(sl_chan *ch)
{
	if (ch == NULL ||
	    atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
		return;
	sli_lock(&ch->lock);
	if (ch->recvq.head != NULL || ch->sendq.head != NULL) {
		/* Abandoned goroutines of a finished sl_main are fine (their
		 * stacks are kept, so their entries can still be read). */
		if (atomic_load(&sli_S.running) ||
		    ch_thread_waits(&ch->recvq) || ch_thread_waits(&ch->sendq))
			sli_fatal("channel %p freed while goroutines or "
			    "threads are blocked on it", (void *) ch);
	}
	sli_unlock(&ch->lock);
	free(ch);
}

/* ---- the operations ---------------------------------------------------- */

/* Element copy; the common word sizes avoid a call to memcpy.  n is
 * always the channel's element size, which both objects have; but with
 * link-time optimization GCC inlines this into callers that pass an
 * 8-byte object and warns about the wider cases, unreachable for them.
 * The empty asm hides where src points from then on (no instruction is
 * emitted). */
static inline void
ch_copy(void *dst, const void *src, size_t n)
{
	if (dst == NULL)
		return;
	if (n > 8)
		__asm__("" : "+r"(src));
	switch (n) {
	case 0:
		return;
	case 8:
		memcpy(dst, src, 8);
		return;
	case 4:
		memcpy(dst, src, 4);
		return;
	case 16:
		memcpy(dst, src, 16);
		return;
	case 24:
		memcpy(dst, src, 24);
		return;
	case 32:
		memcpy(dst, src, 32);
		return;
	case 48:
		memcpy(dst, src, 48);
		return;
	case 56: /* sl_msg, what links carry */
		memcpy(dst, src, 56);
		return;
	case 64:
		memcpy(dst, src, 64);
		return;
	default:
		memcpy(dst, src, n);
	}
}

bool
sli_chan_send_locked(sl_chan *ch, const void *elem, bool *ok)
{
	sli_chwaiter *r;

	if (ch->closed) {
		*ok = false;
		return (true);
	}
	if ((r = ch_take(&ch->recvq)) != NULL) {
		ch_copy(r->elem, elem, ch->elem_size);
		r->ok = true;
		sli_wait_wake(r->wait);
		*ok = true;
		return (true);
	}
	if (ch->len < ch->cap) {
		size_t tail = ch->head + ch->len;
		if (tail >= ch->cap)
			tail -= ch->cap;
		ch_copy(ch->buf + tail * ch->elem_size, elem, ch->elem_size);
		ch->len++;
		*ok = true;
		return (true);
	}
	return (false);
}

bool
sli_chan_recv_locked(sl_chan *ch, void *elem, bool *ok)
{
	sli_chwaiter *s;

	if (ch->len > 0) {
		char *slot = ch->buf + ch->head * ch->elem_size;
		ch_copy(elem, slot, ch->elem_size);
		if (++ch->head == ch->cap)
			ch->head = 0;
		ch->len--;
		/* A blocked sender can now put its value in the buffer. */
		if ((s = ch_take(&ch->sendq)) != NULL) {
			size_t tail = ch->head + ch->len;
			if (tail >= ch->cap)
				tail -= ch->cap;
			ch_copy(ch->buf + tail * ch->elem_size, s->elem,
			    ch->elem_size);
			ch->len++;
			s->ok = true;
			sli_wait_wake(s->wait);
		}
		*ok = true;
		return (true);
	}
	if ((s = ch_take(&ch->sendq)) != NULL) {
		ch_copy(elem, s->elem, ch->elem_size);
		s->ok = true;
		sli_wait_wake(s->wait);
		*ok = true;
		return (true);
	}
	if (ch->closed) {
		if (elem != NULL && ch->elem_size != 0)
			memset(elem, 0, ch->elem_size);
		*ok = false;
		return (true);
	}
	return (false);
}

/* Blocks forever, or until ctx/deadline: a nil channel. */
static int
ch_nil_wait(const char *reason, sl_ctx *ctx, int64_t deadline)
{
	sli_wait w;

	if (deadline == 0)
		return (SL_EAGAIN); /* a try, as on any channel: never ready */
	sli_wait_init(&w);
	return (sli_wait_err(sli_wait_block(&w, ctx, deadline, reason,
	    NULL, NULL, NULL), ctx));
}

int
sl_chan_send_ctx(sl_chan *ch, const void *elem, sl_ctx *ctx, int64_t deadline)
{
	sli_chwaiter me;
	sli_wait     w;
	bool         ok;
	int          r;

	if (elem == NULL && sl_chan_elem_size(ch) != 0)
		return (SL_EINVAL); /* a receiver would copy from NULL */
	if (ctx != NULL && (r = sl_ctx_err(ctx)) != 0)
		return (r);
	if (ch == NULL)
		return (ch_nil_wait("chan send (nil chan)", ctx, deadline));
	sli_lock(&ch->lock);
	if (sli_chan_send_locked(ch, elem, &ok)) {
		sli_unlock(&ch->lock);
		if (!ok) {
			sli_chan_misuse("send on closed channel");
			return (SL_ECLOSED);
		}
		return (0);
	}
	if (deadline == 0) {
		sli_unlock(&ch->lock);
		return (SL_EAGAIN);
	}
	sli_wait_init(&w);
	me.wait = &w;
	me.index = 0;
	me.elem = (void *) (uintptr_t) elem;
	me.ok = false;
	sli_chq_push(&ch->sendq, &me);
	r = sli_wait_block(&w, ctx, deadline, "chan send", ch, sli_unlock_cb,
	    &ch->lock);
	if (r != 0) {
		sli_lock(&ch->lock);
		sli_chq_remove(&ch->sendq, &me);
		sli_unlock(&ch->lock);
		return (sli_wait_err(r, ctx));
	}
	if (!me.ok) {
		sli_chan_misuse("send on closed channel");
		return (SL_ECLOSED);
	}
	return (0);
}

int
sl_chan_recv_ctx(sl_chan *ch, void *elem, sl_ctx *ctx, int64_t deadline)
{
	sli_chwaiter me;
	sli_wait     w;
	bool         ok;
	int          r;

	if (ctx != NULL && (r = sl_ctx_err(ctx)) != 0)
		return (r);
	if (ch == NULL)
		return (ch_nil_wait("chan receive (nil chan)", ctx, deadline));
	sli_lock(&ch->lock);
	if (sli_chan_recv_locked(ch, elem, &ok)) {
		sli_unlock(&ch->lock);
		return (ok ? 0 : SL_ECLOSED);
	}
	if (deadline == 0) {
		sli_unlock(&ch->lock);
		return (SL_EAGAIN);
	}
	sli_wait_init(&w);
	me.wait = &w;
	me.index = 0;
	me.elem = elem;
	me.ok = false;
	sli_chq_push(&ch->recvq, &me);
	r = sli_wait_block(&w, ctx, deadline, "chan receive", ch,
	    sli_unlock_cb, &ch->lock);
	if (r != 0) {
		sli_lock(&ch->lock);
		sli_chq_remove(&ch->recvq, &me);
		sli_unlock(&ch->lock);
		return (sli_wait_err(r, ctx));
	}
	return (me.ok ? 0 : SL_ECLOSED);
}

/* Moves n elements between ext and the ring, starting at ring slot pos
 * and wrapping at cap: one or two block copies.  into_ring picks the
 * direction. */
static void
ch_ring_copy(sl_chan *ch, size_t pos, void *ext, size_t n, bool into_ring)
{
	size_t es = ch->elem_size;
	size_t first = ch->cap - pos < n ? ch->cap - pos : n;
	char  *r = ch->buf + pos * es, *x = ext;

	if (es == 0)
		return;
	if (into_ring)
		memcpy(r, x, first * es);
	else
		memcpy(x, r, first * es);
	if (n == first)
		return;
	if (into_ring)
		memcpy(ch->buf, x + first * es, (n - first) * es);
	else
		memcpy(x + first * es, ch->buf, (n - first) * es);
}

size_t
sli_chan_tryrecv_many(sl_chan *ch, void *elems, size_t max)
{
	size_t n = 0;
	bool   ok = true;

	if (ch == NULL || max == 0)
		return (0);
	sli_lock(&ch->lock);
	if (ch->sendq.head == NULL && ch->len > 0) {
		/* No sender waits for room: one or two block copies out of
		 * the ring. */
		n = ch->len < max ? ch->len : max;
		if (elems != NULL)
			ch_ring_copy(ch, ch->head, elems, n, false);
		ch->head += n;
		if (ch->head >= ch->cap)
			ch->head -= ch->cap;
		ch->len -= n;
		sli_unlock(&ch->lock);
		return (n);
	}
	/* Closed and drained ends the batch before the call that would
	 * hand out a zero value: only elems[0..n) may be written. */
	while (n < max && !(ch->closed && ch->len == 0) &&
	    sli_chan_recv_locked(ch, elems != NULL ?
	    (char *) elems + n * ch->elem_size : NULL, &ok) && ok)
		n++;
	sli_unlock(&ch->lock);
	return (n);
}

size_t
sli_chan_trysend_many(sl_chan *ch, const void *elems, size_t n)
{
	size_t k = 0;
	bool   ok = true;

	if (ch == NULL || n == 0)
		return (0);
	sli_lock(&ch->lock);
	/* Waiting receivers (the buffer is then empty) get theirs one by
	 * one; once none waits, what fits goes into the ring in one or two
	 * block copies. */
	while (k < n && !ch->closed) {
		const char *e = (const char *) elems + k * ch->elem_size;

		if (ch->recvq.head == NULL && ch->len < ch->cap) {
			size_t m = ch->cap - ch->len < n - k ?
			    ch->cap - ch->len : n - k;
			size_t tail = ch->head + ch->len;

			ch_ring_copy(ch, tail >= ch->cap ? tail - ch->cap :
			    tail, (void *) e, m, true);
			ch->len += m;
			k += m;
		} else if (sli_chan_send_locked(ch, e, &ok) && ok) {
			k++;
		} else {
			break;
		}
	}
	sli_unlock(&ch->lock);
	return (k);
}

int
sl_chan_recv_many(sl_chan *ch, void *elems, size_t max, size_t *n,
    sl_ctx *ctx, int64_t deadline)
{
	int r;

	if (n == NULL)
		return (SL_EINVAL);
	*n = 0;
	if (max == 0)
		return (SL_EINVAL);
	if (ctx != NULL && (r = sl_ctx_err(ctx)) != 0)
		return (r);
	if ((*n = sli_chan_tryrecv_many(ch, elems, max)) > 0)
		return (0);
	if ((r = sl_chan_recv_ctx(ch, elems, ctx, deadline)) != 0)
		return (r);
	*n = 1 + sli_chan_tryrecv_many(ch, elems != NULL ?
	    (char *) elems + ch->elem_size : NULL, max - 1);
	return (0);
}

int
sl_chan_send_many(sl_chan *ch, const void *elems, size_t n, size_t *sent,
    sl_ctx *ctx, int64_t deadline)
{
	const char *e = elems;
	size_t      k = 0;
	int         r = 0;

	if (elems == NULL && n > 0 && sl_chan_elem_size(ch) != 0) {
		r = SL_EINVAL;
		goto out;
	}
	if (ctx != NULL && (r = sl_ctx_err(ctx)) != 0)
		goto out;
	while (k < n) {
		k += sli_chan_trysend_many(ch, e + k * sl_chan_elem_size(ch),
		    n - k);
		if (k == n)
			break;
		/* Full, closed or NULL: the one-element send waits, or
		 * says which. */
		if ((r = sl_chan_send_ctx(ch, e + k * sl_chan_elem_size(ch),
		    ctx, deadline)) != 0)
			break;
		k++;
	}
out:
	if (sent != NULL)
		*sent = k;
	return (r);
}

int
sl_chan_send(sl_chan *ch, const void *elem)
{
	return (sl_chan_send_ctx(ch, elem, NULL, SL_FOREVER));
}

int
sl_chan_recv(sl_chan *ch, void *elem)
{
	return (sl_chan_recv_ctx(ch, elem, NULL, SL_FOREVER));
}

int
sl_chan_trysend(sl_chan *ch, const void *elem)
{
	if (ch == NULL)
		return (SL_EAGAIN);
	return (sl_chan_send_ctx(ch, elem, NULL, 0));
}

int
sl_chan_tryrecv(sl_chan *ch, void *elem)
{
	if (ch == NULL)
		return (SL_EAGAIN);
	return (sl_chan_recv_ctx(ch, elem, NULL, 0));
}

int
sl_chan_close(sl_chan *ch)
{
	sli_chwaiter *e;

	if (ch == NULL) {
		sli_chan_misuse("close of nil channel");
		return (SL_ECLOSED);
	}
	sli_lock(&ch->lock);
	if (ch->closed) {
		sli_unlock(&ch->lock);
		sli_chan_misuse("close of closed channel");
		return (SL_ECLOSED);
	}
	ch->closed = true;
	/* Receivers waiting means the buffer is empty: they get "closed". */
	while ((e = ch_take(&ch->recvq)) != NULL) {
		if (e->elem != NULL && ch->elem_size != 0)
			memset(e->elem, 0, ch->elem_size);
		e->ok = false;
		sli_wait_wake(e->wait);
	}
	while ((e = ch_take(&ch->sendq)) != NULL) {
		e->ok = false;
		sli_wait_wake(e->wait);
	}
	sli_unlock(&ch->lock);
	return (0);
}

size_t
sl_chan_len(sl_chan *ch)
{
	size_t n;

	if (ch == NULL)
		return (0);
	sli_lock(&ch->lock);
	n = ch->len;
	sli_unlock(&ch->lock);
	return (n);
}

size_t
sl_chan_cap(sl_chan *ch)
{
	return (ch != NULL ? ch->cap : 0);
}

size_t
sl_chan_elem_size(sl_chan *ch)
{
	return (ch != NULL ? ch->elem_size : 0);
}

bool
sl_chan_closed(sl_chan *ch)
{
	bool c;

	if (ch == NULL)
		return (false);
	sli_lock(&ch->lock);
	c = ch->closed;
	sli_unlock(&ch->lock);
	return (c);
}
