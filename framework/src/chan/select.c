/*
 * select.c — Go's select over any number of send and receive cases.
 *
 * Like Go's selectgo: lock every channel involved (in address order, so
 * two selects never deadlock on each other), poll the cases in a random
 * order and complete the first ready one; otherwise enqueue one waiter per
 * case, all sharing one sli_wait, and park.  The first channel operation
 * that claims the wait completes its case; the rest of the waiters are
 * dequeued when the goroutine wakes.  Random polling order gives the
 * uniform choice among ready cases that Go promises (libdill and neco pick
 * the first ready case instead).
 */
#include <stdlib.h>
#include <string.h>

#include "chan/chan.h"
#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/context.h"
#include "sluice/error.h"

#define SEL_STACK_CASES 8

typedef struct sel_locks {
	sl_chan **chans; /* distinct channels, ascending addresses */
	size_t    n;
} sel_locks;

static void
sel_lock_all(sel_locks *l)
{
	for (size_t i = 0; i < l->n; i++)
		sli_lock(&l->chans[i]->lock);
}

static void
sel_unlock_all(void *p)
{
	sel_locks *l = p;

	for (size_t i = l->n; i-- > 0;)
		sli_unlock(&l->chans[i]->lock);
}

static int
sel_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) *(sl_chan *const *) a;
	uintptr_t y = (uintptr_t) *(sl_chan *const *) b;

	return (x < y ? -1 : x > y);
}

/* A per-thread xorshift generator: select's choices need no quality
 * beyond uniformity, and no lock. */
static uint32_t
sel_rand(void)
{
	static __thread uint64_t s;

	if (s == 0)
		s = (uint64_t) (uintptr_t) &s ^ (uint64_t) sl_now() ^
		    0x9e3779b97f4a7c15ULL;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return ((uint32_t) (s >> 32));
}

/* Can case c proceed now?  Its channel's lock is held.  A queued waiter
 * counts, though it may prove stale when claimed. */
static bool
sel_ready(const sl_case *c)
{
	const sl_chan *ch = c->ch;

	if (ch == NULL)
		return (false);
	if (ch->closed)
		return (true);
	if (c->op == SL_RECV)
		return (ch->len > 0 || ch->sendq.head != NULL);
	return (ch->len < ch->cap || ch->recvq.head != NULL);
}

static int
sel_run(sl_case *cases, size_t n, sl_ctx *ctx, int64_t deadline,
    int *chosen, size_t *order, sl_chan **chans, sli_chwaiter *ws)
{
	sel_locks l = { .chans = chans, .n = 0 };
	sli_wait  w;
	int       r;

	for (size_t i = 0; i < n; i++) {
		if (cases[i].op != SL_RECV && cases[i].op != SL_SEND)
			return (SL_EINVAL);
		/* A send needs an element to copy, unless it has no size. */
		if (cases[i].op == SL_SEND && cases[i].buf == NULL &&
		    sl_chan_elem_size(cases[i].ch) != 0)
			return (SL_EINVAL);
		cases[i].ok = false;
	}
	if (ctx != NULL && (r = sl_ctx_err(ctx)) != 0)
		return (r);

	/* The distinct channels, sorted by address: the lock order. */
	for (size_t i = 0; i < n; i++)
		if (cases[i].ch != NULL)
			chans[l.n++] = cases[i].ch;
	if (l.n > 1) {
		if (l.n <= 16) {
			/* Insertion sort: a few compares, no calls. */
			for (size_t i = 1; i < l.n; i++) {
				sl_chan *c = chans[i];
				size_t   k = i;
				for (; k > 0 && (uintptr_t) chans[k - 1] >
				    (uintptr_t) c; k--)
					chans[k] = chans[k - 1];
				chans[k] = c;
			}
		} else {
			qsort(chans, l.n, sizeof(*chans), sel_cmp);
		}
		size_t k = 1;
		for (size_t i = 1; i < l.n; i++)
			if (chans[i] != chans[k - 1])
				chans[k++] = chans[i];
		l.n = k;
	}

	sel_lock_all(&l);
	/* Which cases look ready?  Pick one of them uniformly at random
	 * (Go's promise); (r * m) >> 32 maps r to [0, m) with no division.
	 * A queued waiter may turn out stale (its select already ended):
	 * then that case was not ready after all and we try the others. */
	size_t nready = 0;
	for (size_t i = 0; i < n; i++)
		if (sel_ready(&cases[i]))
			order[nready++] = i;
	while (nready > 0) {
		size_t   k = (size_t) (((uint64_t) sel_rand() * nready) >> 32);
		size_t   i = order[k];
		sl_case *c = &cases[i];
		bool     ok, done;

		if (c->op == SL_RECV)
			done = sli_chan_recv_locked(c->ch, c->buf, &ok);
		else
			done = sli_chan_send_locked(c->ch, c->buf, &ok);
		if (done) {
			sel_unlock_all(&l);
			c->ok = ok;
			*chosen = (int) i;
			if (!ok && c->op == SL_SEND)
				sli_chan_misuse("send on closed channel");
			return (0);
		}
		order[k] = order[--nready];
	}
	if (deadline == 0) {
		sel_unlock_all(&l);
		return (SL_EAGAIN);
	}

	sli_wait_init(&w);
	for (size_t i = 0; i < n; i++) {
		ws[i].queued = false;
		if (cases[i].ch == NULL)
			continue;
		ws[i].wait = &w;
		ws[i].index = (int) i;
		ws[i].elem = cases[i].buf;
		ws[i].ok = false;
		sli_chq_push(cases[i].op == SL_RECV ? &cases[i].ch->recvq :
		    &cases[i].ch->sendq, &ws[i]);
	}
	r = sli_wait_block(&w, ctx, deadline, "select", NULL, sel_unlock_all,
	    &l);

	sel_lock_all(&l);
	for (size_t i = 0; i < n; i++) {
		if (cases[i].ch == NULL)
			continue;
		sli_chq_remove(cases[i].op == SL_RECV ? &cases[i].ch->recvq :
		    &cases[i].ch->sendq, &ws[i]);
	}
	sel_unlock_all(&l);

	if (r < 0)
		return (sli_wait_err(r, ctx));
	cases[r].ok = ws[r].ok;
	*chosen = r;
	if (!ws[r].ok && cases[r].op == SL_SEND)
		sli_chan_misuse("send on closed channel");
	return (0);
}

int
sl_select(sl_case *cases, size_t n, sl_ctx *ctx, int64_t deadline,
    int *chosen)
{
	size_t       order_s[SEL_STACK_CASES];
	sl_chan     *chans_s[SEL_STACK_CASES];
	sli_chwaiter ws_s[SEL_STACK_CASES];
	int          dummy, r;

	if (chosen == NULL)
		chosen = &dummy;
	*chosen = -1;
	if (n > 0 && cases == NULL)
		return (SL_EINVAL);
	if (n <= SEL_STACK_CASES)
		return (sel_run(cases, n, ctx, deadline, chosen, order_s,
		    chans_s, ws_s));

	size_t       *order = malloc(n * sizeof(*order));
	sl_chan     **chans = malloc(n * sizeof(*chans));
	sli_chwaiter *ws = malloc(n * sizeof(*ws));
	if (order == NULL || chans == NULL || ws == NULL)
		r = SL_ENOMEM;
	else
		r = sel_run(cases, n, ctx, deadline, chosen, order, chans, ws);
	free(order);
	free(chans);
	free(ws);
	return (r);
}

int
sl_select_try(sl_case *cases, size_t n, int *chosen)
{
	return (sl_select(cases, n, NULL, 0, chosen));
}
