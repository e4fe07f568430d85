/*
 * ctx.h — the internal layout of contexts (sl_ctx) and AfterFunc handles,
 * and the rules that keep them safe across worker threads.
 *
 * Kinds.  The background context is static.  A value context (with_value)
 * only names a key, a value and its parent.  A detached context
 * (without_cancel) only names its parent, for values: like background, it
 * has no cancelable context above it (cp NULL), so nothing of the parent's
 * cancellation or deadline reaches it or its descendants.  Every other
 * context is cancelable: it owns a lock, a done channel, its cancellation
 * state, the list of its live cancelable children, the waits watching it
 * (sli_ctx_watch) and its pending AfterFuncs.  Each context caches `cp`,
 * the nearest cancelable context at or above it (NULL under background
 * only); done/err/cause/deadline/watch all work on cp.
 *
 * Two reference counts.  `refs` counts owners (callers and child
 * contexts); when it reaches zero the context is canceled, unlinked from
 * its parent, its timer stopped, and its reference on its parent dropped.
 * `mrefs` keeps only the memory alive: one for the owners as a whole, one
 * per canceller still working on the context after it dropped the lock,
 * and one per AfterFunc handle.  The last mref frees the struct and its
 * done channel.
 *
 * Locking.  A context's `lock` guards: its cancellation state (err, cause,
 * msg — written once, before err is published), its `children` list and
 * the sibling links of those children (so a child's `linked`, `sib_next`,
 * `sib_prev` are guarded by its parent's lock), its `watchers` list and its
 * `afs` list.  No code ever holds two context locks at once: cancellation
 * walks the tree breadth-first, detaching a whole child list under the
 * parent's lock (taking an mref on each child) and then locking each child
 * on its own.  Under a context lock only sli_wait_claim/sli_wait_wake are
 * called (they take scheduler locks, never context locks).  Channels are
 * closed and AfterFunc goroutines started with no context lock held, so
 * the order "channel lock -> context lock" (select arming a context while
 * holding its channels' locks) cannot deadlock with cancellation.
 *
 * Watchers (sli_ctx_watch/unwatch, see sched/wait.h).  A watch registers
 * in cp's list under cp's lock.  A canceller, under that lock, unlinks each
 * watcher, claims its wait with SLI_WAIT_CANCELED (waking it if it won) and
 * finally stores NULL into cw->ctx with __atomic_store_n(RELEASE): after
 * that store it never touches cw again.  Others therefore read cw->ctx with
 * __atomic_load_n(ACQUIRE), never plainly; sli_ctx_unwatch re-checks it
 * under the lock, so it is safe to call whatever the outcome (a NULL
 * cw->ctx makes it a no-op).  The watcher's owner keeps the context alive
 * (it holds a reference) until unwatch returns.
 *
 * Timers.  A context with its own deadline embeds an sli_timer whose fn
 * cancels it with SL_EDEADLINE.  Timer fns never drop owner references, so
 * a context is never freed inside its own timer fn; the owner-release path
 * calls sli_timer_stop (which waits for a running fn) before the memory
 * can go.  Without a running scheduler the timer cannot be armed; and a
 * timer may simply not have run yet.  So sl_ctx_err also compares the
 * deadline with sl_now() and, when it has passed, cancels the context that
 * owns it (itself or the cancelable ancestor the deadline was inherited
 * from, with that one's deadline cause), as its timer would have;
 * sli_ctx_watch only reports it (its caller may hold channel locks).
 */
#ifndef SLI_CTX_H
#define SLI_CTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/wait.h"
#include "sluice/context.h"

enum sli_ctx_kind {
	SLI_CTX_BACKGROUND = 0,
	SLI_CTX_VALUE,
	SLI_CTX_CANCEL,
	SLI_CTX_DETACHED, /* without_cancel: values only, cp NULL */
};

struct sl_ctx {
	atomic_int     refs;   /* owners: callers and children */
	atomic_int     mrefs;  /* memory (see above) */
	int            kind;   /* SLI_CTX_* */
	sl_ctx        *parent; /* holds a ref on it; NULL for background */
	sl_ctx        *cp;     /* nearest cancelable at or above, or NULL */

	/* SLI_CTX_VALUE */
	const void    *key;
	void          *val;

	/* SLI_CTX_CANCEL: immutable after creation */
	sl_chan       *done;     /* closed on cancel */
	int64_t        deadline; /* effective (own or inherited), SL_FOREVER */
	int            dl_cause; /* the cause when the own deadline passes */
	char          *dl_msg;   /* and its text (owned), or NULL */
	bool           armed;    /* timer was started */
	sli_timer      timer;
	sl_ctx        *link;     /* the cancelable parent we are listed in */

	/* SLI_CTX_CANCEL: guarded by lock */
	atomic_int     lock;
	atomic_int     err;      /* 0, SL_ECANCELED or SL_EDEADLINE */
	int            cause;
	const char    *msg;      /* cause text, NULL: sl_strerror(cause) */
	char          *own_msg;  /* msg when this context owns the copy */
	sl_ctx        *children; /* live cancelable children */
	struct sli_ctxwatch *watchers;
	sl_afterfunc  *afs;      /* pending AfterFuncs */

	/* guarded by link->lock */
	bool           linked;   /* in link->children */
	sl_ctx        *sib_next; /* also a canceller's private queue link */
	sl_ctx        *sib_prev;
};

struct sl_afterfunc {
	sl_afterfunc  *next, *prev; /* in ctx->afs, guarded by ctx->lock */
	sl_fn          fn;
	void          *arg;
	sl_ctx        *ctx;   /* cancelable ctx (mref held), or NULL */
	atomic_int     refs;  /* the library's + the caller's handle */
	int            state; /* SLI_AF_*, guarded by ctx->lock */
	sli_timer      retry; /* tries sl_go again when it ran out of memory
	                         inside a timer's fn; holds the library's
	                         reference meanwhile */
};

enum { SLI_AF_PENDING = 0, SLI_AF_STARTED, SLI_AF_STOPPED };

#endif /* SLI_CTX_H */
