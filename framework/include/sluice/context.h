/*
 * sluice/context.h — Go's context package: cancellation, deadlines, values.
 *
 * Contexts form a tree.  Cancelling one cancels every descendant with the
 * same cause; cancelling a child detaches it from its parent and stops its
 * timer.  sl_ctx_done() is a channel that is closed on cancellation, so a
 * context can sit in sl_select like any other channel.
 *
 * Lifetimes: every sl_ctx_with_* returns a context holding one reference;
 * sl_ctx_release drops it.  Releasing the last reference of a cancelable
 * context cancels it first (Go's `defer cancel()` in one call).  A child
 * holds a reference to its parent, so a parent may be released before its
 * children.  sl_ctx_background() is static; retain/release ignore it.
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

/* Each returns 0 and *out, or SL_ENOMEM / SL_EINVAL (NULL parent). */
int sl_ctx_with_cancel(sl_ctx *parent, sl_ctx **out);
int sl_ctx_with_deadline(sl_ctx *parent, int64_t deadline, sl_ctx **out);
int sl_ctx_with_timeout(sl_ctx *parent, int64_t timeout_ns, sl_ctx **out);
int sl_ctx_with_value(sl_ctx *parent, const void *key, void *val,
    sl_ctx **out);

sl_ctx *sl_ctx_retain(sl_ctx *ctx);
void    sl_ctx_release(sl_ctx *ctx); /* NULL is fine */

/* Cancels ctx (and its descendants) with SL_ECANCELED.  Idempotent; a
 * no-op for contexts that cannot be canceled (background). */
void sl_ctx_cancel(sl_ctx *ctx);

/* Like Go's CancelCauseFunc: err becomes the cause code and msg (copied,
 * may be NULL) its text; sl_ctx_err still reports SL_ECANCELED. */
void sl_ctx_cancel_cause(sl_ctx *ctx, int err, const char *msg);

/* A channel closed when ctx is done; NULL (never ready) for contexts that
 * can never be done.  Owned by ctx: valid while ctx is. */
sl_chan *sl_ctx_done(sl_ctx *ctx);

/* 0 while ctx is live; then SL_ECANCELED or SL_EDEADLINE. */
int sl_ctx_err(sl_ctx *ctx);

/* The cause (Go 1.20 Cause): 0 while live; else the code given to
 * sl_ctx_cancel_cause or sl_ctx_err's code; *msg (if msg non-NULL) the
 * text, or sl_strerror of the code.  The text lives as long as ctx. */
int sl_ctx_cause(sl_ctx *ctx, const char **msg);

/* true and *deadline when ctx (or an ancestor) has a deadline. */
bool sl_ctx_deadline(sl_ctx *ctx, int64_t *deadline);

/* The value bound to key by the nearest sl_ctx_with_value, or NULL. */
void *sl_ctx_value(sl_ctx *ctx, const void *key);

/*
 * sl_ctx_after_func arranges for fn(arg) to run in its own goroutine once
 * ctx is done (at once if it already is).  *stop receives a handle for
 * sl_ctx_stop(); pass NULL if you never stop it.  sl_ctx_stop returns true
 * if it prevented the call, false if fn already started (or was stopped)
 * and frees the handle either way.  Unstopped handles are freed when fn
 * has been started and the caller no longer holds them (i.e. a handle
 * never passed to sl_ctx_stop is freed after the call).
 */
typedef struct sl_afterfunc sl_afterfunc;
int  sl_ctx_after_func(sl_ctx *ctx, sl_fn fn, void *arg, sl_afterfunc **stop);
bool sl_ctx_stop(sl_afterfunc *af);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_CONTEXT_H */
