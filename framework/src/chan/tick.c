/*
 * tick.c — timers and tickers whose ticks arrive on a channel, and timers
 * that start a function (sluice/timer.h).
 *
 * An sl_timer is one scheduler timer (sched/timer.c), periodic for a
 * ticker, whose callback tries to send sl_now() on a channel of capacity
 * 1: it runs on a worker outside any goroutine and must not block, so a
 * full channel drops the tick.  Stop, reset and free are serialised by a
 * lock of the sl_timer; the scheduler's sli_timer_stop waits out a tick
 * being sent on another worker, after which nothing but the caller
 * touches the channel, and a waiting tick can be taken back.
 *
 * sl_timer_after_func's timer has no channel: its callback starts the
 * user's function in a new goroutine instead.  If no goroutine can be
 * started (out of memory), the same timer fires again a little later to
 * try again: fn never runs on the worker, where stopping or freeing its
 * own timer would wait for ever for the callback it is called from.
 *
 * sl_after's timer has no owner: its done callback frees it once it has
 * sent, or when sl_main drops it unsent.
 */
#include <stdlib.h>

#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/error.h"
#include "sluice/timer.h"

struct sl_timer {
	sli_timer  t;      /* in the scheduler's heap while armed */
	sl_chan   *ch;     /* int64_t, capacity 1; NULL with fn */
	sl_fn      fn;     /* sl_timer_after_func's function, or NULL */
	void      *arg;    /* its argument */
	atomic_int lock;   /* serialises stop, reset and free */
	bool       ticker; /* t.period is its period when armed */
};

static void
tick_send(sli_timer *t)
{
	sl_timer *tm = t->arg;
	int64_t   now = sl_now();

	(void) sl_chan_trysend(tm->ch, &now); /* full: dropped */
}

/* fn of sl_timer_after_func's timer.  SL_ESTATE: sl_main is returning,
 * and starts nothing more. */
static void
tick_start_fn(sli_timer *t)
{
	sl_timer *tm = t->arg;

	(void) sli_timer_go(t, tm->fn, tm->arg);
}

/* done of sl_after's timer: it has sent, or will never send. */
static void
tick_after_done(sli_timer *t)
{
	sl_timer *tm = t->arg;

	sl_chan_release(tm->ch);
	free(tm);
}

/* A stopped timer: a ticker, or one that starts fn(arg) if fn is not
 * NULL, or else one that sends once. */
static sl_timer *
tick_new(bool ticker, sl_fn fn, void *arg)
{
	sl_timer *tm = calloc(1, sizeof(*tm));

	if (tm == NULL)
		return (NULL);
	if (fn == NULL &&
	    (tm->ch = sl_chan_make(sizeof(int64_t), 1)) == NULL) {
		free(tm);
		return (NULL);
	}
	tm->ticker = ticker;
	tm->fn = fn;
	tm->arg = arg;
	tm->t.fn = fn != NULL ? tick_start_fn : tick_send;
	tm->t.arg = tm;
	tm->t.heapidx = -1;
	atomic_init(&tm->t.state, SLI_TIMER_IDLE);
	atomic_init(&tm->lock, 0);
	return (tm);
}

/* Arms tm (stopped, under its lock) to fire ns from now. */
static int
tick_arm(sl_timer *tm, int64_t ns)
{
	int64_t now = sl_now();

	if (ns < 0)
		ns = 0;
	tm->t.period = tm->ticker ? ns : 0;
	tm->t.when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
	return (sli_timer_start(&tm->t));
}

static int
tick_make(int64_t ns, bool ticker, sl_fn fn, void *arg, sl_timer **out)
{
	sl_timer *tm;
	int       err;

	if (out == NULL || (ticker && ns <= 0))
		return (SL_EINVAL);
	if ((tm = tick_new(ticker, fn, arg)) == NULL)
		return (SL_ENOMEM);
	if ((err = tick_arm(tm, ns)) != 0) {
		sl_chan_release(tm->ch);
		free(tm);
		return (err);
	}
	*out = tm;
	return (0);
}

int
sl_timer_make(int64_t ns, sl_timer **out)
{
	return (tick_make(ns, false, NULL, NULL, out));
}

int
sl_ticker_make(int64_t period, sl_timer **out)
{
	return (tick_make(period, true, NULL, NULL, out));
}

int
sl_timer_after_func(int64_t ns, sl_fn fn, void *arg, sl_timer **out)
{
	if (fn == NULL)
		return (SL_EINVAL);
	return (tick_make(ns, false, fn, arg, out));
}

sl_chan *
sl_timer_chan(sl_timer *t)
{
	return (t != NULL ? t->ch : NULL);
}

/* Stops tm (under its lock); true if that stopped something. */
static bool
tick_stop_locked(sl_timer *tm)
{
	bool active = sli_timer_stop(&tm->t);
	bool taken = tm->ch != NULL && sl_chan_tryrecv(tm->ch, NULL) == 0;

	return (active || (taken && !tm->ticker));
}

bool
sl_timer_stop(sl_timer *t)
{
	bool stopped;

	if (t == NULL)
		return (false);
	sli_lock(&t->lock);
	stopped = tick_stop_locked(t);
	sli_unlock(&t->lock);
	return (stopped);
}

int
sl_timer_reset(sl_timer *t, int64_t ns)
{
	int err;

	if (t == NULL || (t->ticker && ns <= 0))
		return (SL_EINVAL);
	sli_lock(&t->lock);
	(void) tick_stop_locked(t);
	err = tick_arm(t, ns);
	sli_unlock(&t->lock);
	return (err);
}

void
sl_timer_free(sl_timer *t)
{
	if (t == NULL)
		return;
	sli_lock(&t->lock);
	(void) sli_timer_stop(&t->t);
	sli_unlock(&t->lock);
	sl_chan_release(t->ch);
	free(t);
}

int
sl_after(int64_t ns, sl_chan **out)
{
	sl_timer *tm;
	sl_chan  *ch;
	int       err;

	if (out == NULL)
		return (SL_EINVAL);
	if ((tm = tick_new(false, NULL, NULL)) == NULL)
		return (SL_ENOMEM);
	tm->t.done = tick_after_done;
	/* The caller's reference, taken before the timer may fire and drop
	 * its own. */
	ch = sl_chan_retain(tm->ch);
	if ((err = tick_arm(tm, ns)) != 0) {
		sl_chan_release(ch);
		sl_chan_release(tm->ch);
		free(tm);
		return (err);
	}
	*out = ch;
	return (0);
}
