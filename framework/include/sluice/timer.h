/*
 * sluice/timer.h — Go's time.Timer, time.Ticker, time.After and
 * time.AfterFunc: channels on which the time arrives, for use in sl_select
 * beside other channels, and functions started when it does.
 *
 * A timer's channel holds int64_t values, the sl_now() time at which each
 * tick was sent, and has capacity 1.  A tick that finds the channel full is
 * dropped, as in Go: a slow receiver of a ticker finds one tick waiting,
 * never a backlog, and a ticker that could not run on time (a busy worker)
 * skips the ticks it missed instead of sending them in a burst.  Ticks come
 * from the scheduler's timers, so they are sent only while sl_main runs.
 *
 *	sl_timer *flush;
 *	sl_ticker_make(100 * SL_MILLISECOND, &flush);
 *	for (;;) {
 *		sl_case c[] = { SL_CASE_RECV(in, &msg),
 *		                SL_CASE_RECV(sl_timer_chan(flush), NULL) };
 *		sl_select(c, 2, ctx, SL_FOREVER, &i);
 *		...
 *	}
 *	sl_timer_free(flush);
 *
 * The calls below may be made from any goroutine or thread; they are
 * serialised per timer.
 */
#ifndef SLUICE_TIMER_H
#define SLUICE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/chan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_timer sl_timer;

/*
 * A timer that sends once, ns from now (at once if ns <= 0); a ticker that
 * sends every period ns, the first period ns from now.  *out is set on
 * success.  Returns 0, SL_EINVAL (out NULL, period <= 0), SL_ENOMEM, or
 * SL_ESTATE when no scheduler runs.
 */
int sl_timer_make(int64_t ns, sl_timer **out);
int sl_ticker_make(int64_t period, sl_timer **out);

/*
 * Go's time.AfterFunc: fn(arg) runs in a goroutine of its own ns from now
 * (at once if ns <= 0).  *out is a timer without a channel: sl_timer_stop
 * returns true if it kept fn from being started, sl_timer_reset waits
 * again (fn then runs once more, even if it ran before), sl_timer_free
 * stops it; fn already started is not waited for.  A timer that fires
 * while sl_main is returning starts nothing; one that cannot start a
 * goroutine (out of memory) tries again every millisecond until it can,
 * or is stopped (a stop that comes while it tries may return false).
 * Returns 0, SL_EINVAL (fn or out NULL), SL_ENOMEM, or SL_ESTATE when no
 * scheduler runs.
 */
int sl_timer_after_func(int64_t ns, sl_fn fn, void *arg, sl_timer **out);

/* The timer's channel: owned by the timer, valid until sl_timer_free
 * (sl_chan_retain it to keep it longer).  NULL for sl_timer_after_func's
 * timers, as Go's is nil: never ready in sl_select. */
sl_chan *sl_timer_chan(sl_timer *t);

/*
 * Stops t: no tick is sent once this returns, and a tick still waiting in
 * the channel is taken out (as Go does since 1.23), so that a receiver
 * after the stop never sees a stale tick.  Returns true if that stopped
 * something: a ticker that was running, or a timer whose tick had not yet
 * been received; false if t was already stopped or its tick received.
 */
bool sl_timer_stop(sl_timer *t);

/*
 * Stops t as sl_timer_stop does, then starts it again: a timer sends once
 * ns from now (or starts its function), a ticker every ns from now on.
 * Returns 0, SL_EINVAL (a ticker with ns <= 0: t is left as it was), or
 * SL_ESTATE when no scheduler runs (t is then stopped).
 */
int sl_timer_reset(sl_timer *t, int64_t ns);

/* Stops t and frees it with its reference to the channel.  NULL is fine. */
void sl_timer_free(sl_timer *t);

/*
 * Go's time.After: *out is a new channel (of int64_t, capacity 1; the
 * caller holds one reference) that receives sl_now() once, ns from now.
 * The timer behind it frees itself once it has sent, or when sl_main
 * returns.  Returns 0, SL_EINVAL (out NULL), SL_ENOMEM, or SL_ESTATE when
 * no scheduler runs.  A loop that waits with sl_after on every turn makes
 * one timer a turn: a deadline argument or a ticker costs less.
 */
int sl_after(int64_t ns, sl_chan **out);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_TIMER_H */
