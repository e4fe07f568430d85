/*
 * sluice/signal.h — signals as channel values and context cancellation
 * (Go's os/signal: Notify, Stop, NotifyContext).
 *
 * A C program that wants SIGTERM has to write a handler that may do
 * almost nothing (only async-signal-safe calls), or block the signal in
 * every thread and sigwait for it in one of its own.  Here, as in Go, a
 * signal becomes a value on a channel that a goroutine receives, or the
 * cancellation of a context that every goroutine of the program watches.
 *
 *	sl_chan *sigs = sl_chan_make(sizeof(int), 1);
 *	int      want[] = { SIGINT, SIGTERM };
 *	int      sig;
 *
 *	sl_signal_notify(sigs, want, 2);
 *	sl_chan_recv(sigs, &sig);              // parks until one comes
 *
 *	sl_ctx *ctx;                           // or: a context for the run
 *	sl_signal_ctx(sl_ctx_background(), want, 2, &ctx);
 *	... every blocking call takes ctx ...
 *	sl_signal_stop_ctx(ctx);               // Go's stop()
 *	sl_ctx_release(ctx);
 *
 * Registrations belong to the running sl_main: they can be made only
 * while a scheduler runs (from goroutines or threads), and when sl_main
 * returns every one is dropped, as they would be at the end of a Go
 * program.  While a signal has a registration the process catches it;
 * once it has none, its previous disposition (default, ignored, or a
 * handler of the program's) is back.
 *
 * Delivery never blocks: a channel that has no room for the signal
 * misses it, so give the channel a buffer (Go's advice too).  Signals of
 * one kind that arrive together may be delivered once (the kernel merges
 * them as well).  A channel gets values of type int, the signal number.
 *
 * While any signal is registered the deadlock detector stays quiet: a
 * goroutine waiting for a signal is not blocked forever.
 *
 * Synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
 * SIGSYS) cannot be relayed (the faulting instruction would run again
 * at once; the runtime reports stack overflows through SIGSEGV), nor can
 * SIGKILL and SIGSTOP, nor the signals the C library keeps for its
 * threads (32 and 33 with glibc, below SIGRTMIN).  Stage programs (stages/common) already turn
 * SIGTERM and SIGINT into the stage context's cancellation and block
 * them in every thread: there, registering them has no effect.
 */
#ifndef SLUICE_SIGNAL_H
#define SLUICE_SIGNAL_H

#include <stddef.h>

#include "sluice/chan.h"
#include "sluice/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Relays the signals sigs[0..n) to ch, whose elements must be ints.  A
 * channel registered again gets the union of both lists.  The runtime
 * keeps a reference to ch until sl_signal_stop or the end of sl_main.
 * Returns 0; SL_EINVAL for a NULL ch or sigs, n of 0, elements that are
 * not sizeof(int), or a signal number that is out of range or in the
 * list above (nothing is registered then); SL_ESTATE when no scheduler
 * runs; SL_ENOMEM; SL_ESYSTEM if the handler or its thread could not be
 * set up (errno says why).
 */
int sl_signal_notify(sl_chan *ch, const int *sigs, size_t n);

/*
 * Stops relaying signals to ch and drops the runtime's reference.  When
 * it returns, no signal will be sent to ch any more.  A ch that is not
 * registered is fine.
 */
void sl_signal_stop(sl_chan *ch);

/*
 * Go's signal.NotifyContext: *out gets a new child of parent that is
 * canceled, with cause SL_ECANCELED and the text "signal SIGTERM" (the
 * signal's name), when one of sigs arrives, or when parent is done.  Call
 * sl_signal_stop_ctx when the work it guards is over, then
 * sl_ctx_release.  Returns 0 or the errors of sl_signal_notify (*out is
 * NULL then).
 */
int sl_signal_ctx(sl_ctx *parent, const int *sigs, size_t n, sl_ctx **out);

/*
 * Go's stop() of NotifyContext: ends the registration of ctx (so a second
 * SIGINT kills the program again) and cancels ctx if it is still live.
 * The caller's reference to ctx stays the caller's.  A ctx that did not
 * come from sl_signal_ctx, or was stopped already, is only canceled.
 */
void sl_signal_stop_ctx(sl_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_SIGNAL_H */
