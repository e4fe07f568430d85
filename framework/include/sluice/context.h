/*
 * sluice/context.h — Go's context package: cancellation, deadlines, values.
 *
 * Contexts form a tree.  Cancelling one cancels every descendant with the
 * same error and cause; cancelling a child detaches it from its parent and
 * leaves the parent and siblings alone.  sl_ctx_done() is a channel that is
 * closed on cancellation, so a context can sit in sl_select like any other
 * channel; the _ctx forms of blocking calls (sl_sleep_ctx, sl_chan_recv_ctx,
 * sl_select, sl_mutex_lock_ctx, ...) return sl_ctx_err(ctx) when it is done.
 *
 * Lifetimes: every sl_ctx_with_* returns a context holding one reference;
 * sl_ctx_release drops it.  Releasing the last reference of a cancelable
 * context cancels it first (Go's `defer cancel()` in one call), which also
 * starts its pending AfterFuncs.  A child holds a reference to its parent,
 * so a parent may be released before its children.  sl_ctx_background()
 * is static; retain/release ignore it.  All calls are thread-safe: any
 * goroutine or thread may cancel, query or release a context it holds a
 * reference to.
 *
 * Deadlines are armed on the scheduler's timers, so they fire by themselves
 * (closing the done channel and waking blocked calls) only while sl_main
 * runs.  Otherwise (a context made with no scheduler, or kept after
 * sl_main returned) the deadline is noticed lazily: the first sl_ctx_err,
 * sl_ctx_cause or sl_ctx_after_func at or after it cancels the context.
 */
#ifndef SLUICE_CONTEXT_H
#define SLUICE_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/chan.h"
#include "sluice/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The root context: never canceled, no deadline, no values. */
sl_ctx *sl_ctx_background(void);

/*
 * Each returns 0 and *out, or SL_ENOMEM / SL_EINVAL (NULL parent or out;
 * NULL key).  A child of a done parent is born done with the parent's
 * error and cause.  with_deadline keeps the parent's deadline if that is
 * earlier; a deadline already past makes the context done at once with
 * SL_EDEADLINE.  with_timeout(t) is with_deadline(sl_now() + t).  Value
 * keys are compared by pointer identity (use the address of a static).
 */
int sl_ctx_with_cancel(sl_ctx *parent, sl_ctx **out);
int sl_ctx_with_deadline(sl_ctx *parent, int64_t deadline, sl_ctx **out);
int sl_ctx_with_timeout(sl_ctx *parent, int64_t timeout_ns, sl_ctx **out);
int sl_ctx_with_value(sl_ctx *parent, const void *key, void *val,
    sl_ctx **out);

/*
 * Go 1.21's WithDeadlineCause and WithTimeoutCause: as with_deadline and
 * with_timeout, and when the context's own deadline passes, sl_ctx_err
 * reports SL_EDEADLINE and sl_ctx_cause the code err (0 means
 * SL_EDEADLINE) with the text msg (copied, may be NULL), as do its
 * descendants.  A cancel first, or an earlier deadline of the parent,
 * gives the cause of that instead.
 */
int sl_ctx_with_deadline_cause(sl_ctx *parent, int64_t deadline, int err,
    const char *msg, sl_ctx **out);
int sl_ctx_with_timeout_cause(sl_ctx *parent, int64_t timeout_ns, int err,
    const char *msg, sl_ctx **out);

/*
 * Go 1.21's WithoutCancel: a context that carries parent's values but not
 * its cancellation.  It is never done (sl_ctx_done NULL, sl_ctx_err 0), has
 * no deadline, and its AfterFuncs never run; contexts derived from it are
 * canceled only by their own cancels and deadlines.  For work that must
 * finish after the request that started it ends, such as a final flush
 * with a deadline of its own.  It holds a reference to parent.
 */
int sl_ctx_without_cancel(sl_ctx *parent, sl_ctx **out);

sl_ctx *sl_ctx_retain(sl_ctx *ctx);
void    sl_ctx_release(sl_ctx *ctx); /* NULL is fine */

/* Cancels ctx (and its descendants) with SL_ECANCELED, then returns after
 * their done channels are closed and their AfterFuncs started.  Only the
 * first cancellation counts; a later call (also one racing the first)
 * only waits until those channels are closed, as Go's does.  A no-op for
 * contexts that cannot be canceled: background, value and without_cancel
 * contexts (cancel the context a value context was derived from instead). */
void sl_ctx_cancel(sl_ctx *ctx);

/* Like Go's CancelCauseFunc: err becomes the cause code (0 means
 * SL_ECANCELED) and msg (copied, may be NULL) its text; sl_ctx_err still
 * reports SL_ECANCELED.  Descendants get the same cause and text. */
void sl_ctx_cancel_cause(sl_ctx *ctx, int err, const char *msg);

/* A channel closed when ctx is done; NULL (never ready) for contexts that
 * can never be done.  Owned by ctx: valid while ctx is. */
sl_chan *sl_ctx_done(sl_ctx *ctx);

/* 0 while ctx is live; then SL_ECANCELED or SL_EDEADLINE, and by then the
 * done channels of ctx and of everything derived from it are closed. */
int sl_ctx_err(sl_ctx *ctx);

/* The cause (Go 1.20 Cause): 0 (and *msg NULL) while live; else the code
 * given to sl_ctx_cancel_cause, or sl_ctx_err's code; *msg (if msg is
 * non-NULL) the text, or sl_strerror of the code.  The text lives as long
 * as ctx.  A value context reports the cause of its cancelable ancestor. */
int sl_ctx_cause(sl_ctx *ctx, const char **msg);

/* true and *deadline (may be NULL) when ctx or an ancestor has a deadline;
 * the nearest (earliest) one. */
bool sl_ctx_deadline(sl_ctx *ctx, int64_t *deadline);

/* The value bound to key by the nearest sl_ctx_with_value, or NULL. */
void *sl_ctx_value(sl_ctx *ctx, const void *key);

/*
 * sl_ctx_after_func arranges for fn(arg) to run in its own goroutine once
 * ctx is done (at once if it already is).  Out of memory for a goroutine,
 * it tries again every millisecond, until sl_main returns (fn is then
 * dropped).  With no scheduler, fn runs on the thread that cancelled ctx;
 * while sl_main is returning, fn cancelled by a deadline is dropped, and
 * runs on the cancelling thread otherwise.  fn runs at most once; never
 * if ctx can never be done.  Returns 0, SL_EINVAL (NULL ctx or fn) or
 * SL_ENOMEM.
 *
 * The handle: if stop is NULL, the library frees it itself after fn has
 * been started.  If stop is non-NULL, *stop receives a handle and the
 * caller must call sl_ctx_stop(*stop) exactly once (even after fn ran):
 * that call frees it.  sl_ctx_stop returns true if it prevented fn from
 * running, false if fn had already been started.
 */
typedef struct sl_afterfunc sl_afterfunc;
int  sl_ctx_after_func(sl_ctx *ctx, sl_fn fn, void *arg, sl_afterfunc **stop);
bool sl_ctx_stop(sl_afterfunc *af);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_CONTEXT_H */
