/*
 * ctx.c — Go's context package: the context tree, cancellation with a
 * cause, deadlines on the scheduler's timers, values, AfterFunc, and the
 * watch hooks (sli_ctx_watch/unwatch) through which blocking operations
 * are interrupted.  The data layout and the locking rules are described in
 * ctx.h; read that first.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "context/ctx.h"
#include "core/lock.h"
#include "sched/wait.h"
#include "sluice/chan.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/runtime.h"

static sl_ctx ctx_background = {
	.kind = SLI_CTX_BACKGROUND,
};

sl_ctx *
sl_ctx_background(void)
{
	return (&ctx_background);
}

/* ---- memory references -------------------------------------------------- */

static void
ctx_mref(sl_ctx *c)
{
	atomic_fetch_add_explicit(&c->mrefs, 1, memory_order_relaxed);
}

/* Drops one memory reference; the last frees c and its done channel. */
static void
ctx_munref(sl_ctx *c)
{
	if (atomic_fetch_sub_explicit(&c->mrefs, 1, memory_order_acq_rel) != 1)
		return;
	sl_chan_release(c->done);
	free(c->own_msg);
	free(c->dl_msg);
	free(c);
}

/* ---- AfterFunc handles -------------------------------------------------- */

/* Drops one reference on af; the last frees it (and its mref on ctx). */
static void
af_unref(sl_afterfunc *af)
{
	if (atomic_fetch_sub_explicit(&af->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (af->ctx != NULL)
		ctx_munref(af->ctx);
	free(af);
}

/* af->retry's fn: tries again to start af->fn, and again later while
 * there is no memory for a goroutine.  SL_ESTATE: sl_main is returning,
 * and starts nothing more. */
static void
af_retry_fn(sli_timer *t)
{
	sl_afterfunc *af = t->arg;

	(void) sli_timer_go(t, af->fn, af->arg);
}

/* af->retry's done: started, or given up; the library's reference goes. */
static void
af_retry_done(sli_timer *t)
{
	af_unref(t->arg);
}

/*
 * Starts af->fn(af->arg) in a new goroutine and drops the library's
 * reference.  If there is no memory for a goroutine, af->retry tries
 * again every SLI_TIMER_RETRY_NS.  If there is no scheduler (or it is
 * stopping) the function is called directly on the calling thread
 * instead, so it still runs exactly once; but not inside a timer's fn
 * (the canceller is a deadline's timer), where it could stop that timer
 * and wait for ever for itself: there it is dropped, as sl_main is
 * returning.  Called with no context lock held.
 */
static void
af_launch(sl_afterfunc *af)
{
	sl_fn fn  = af->fn;
	void *arg = af->arg;
	int   err = sl_go(fn, arg);

	if (err == SL_ENOMEM) {
		af->retry.when = sl_now() + SLI_TIMER_RETRY_NS;
		af->retry.fn = af_retry_fn;
		af->retry.done = af_retry_done;
		af->retry.arg = af;
		af->retry.heapidx = -1;
		if (sli_timer_start(&af->retry) == 0)
			return;
	}
	af_unref(af);
	if (err != 0 && !sli_timer_in_fn())
		fn(arg);
}

/* ---- cancellation ------------------------------------------------------- */

/* Removes c from the children list of its cancelable parent, if listed. */
static void
ctx_unlink(sl_ctx *c)
{
	sl_ctx *p = c->link;

	if (p == NULL)
		return;
	sli_lock(&p->lock);
	if (c->linked) {
		if (c->sib_prev != NULL)
			c->sib_prev->sib_next = c->sib_next;
		else
			p->children = c->sib_next;
		if (c->sib_next != NULL)
			c->sib_next->sib_prev = c->sib_prev;
		c->sib_next = c->sib_prev = NULL;
		c->linked   = false;
	}
	sli_unlock(&p->lock);
}

/*
 * Marks the cancelable context c done with (err, cause, msg), under its
 * lock.  Returns false (and frees own) if c was done already.  On success:
 * every watcher is claimed and woken and unlinked; the pending AfterFuncs
 * are moved to *afs; the children are detached, each with a new mref,
 * and appended (by their sib_next links, which now belong to the caller)
 * to the queue (*qh, *qt).  own, if non-NULL, is the heap copy msg points to
 * and becomes c's.  Closing the done channel is left to the caller.
 */
static bool
ctx_mark(sl_ctx *c, int err, int cause, const char *msg, char *own,
    sl_ctx **qh, sl_ctx **qt, sl_afterfunc **afs)
{
	sli_lock(&c->lock);
	if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
		sli_unlock(&c->lock);
		free(own);
		return (false);
	}
	c->cause   = cause;
	c->msg     = msg;
	c->own_msg = own;
	atomic_store_explicit(&c->err, err, memory_order_release);

	/* Watchers: the owner may return as soon as cw->ctx reads NULL,
	 * so that store is the last touch of cw. */
	sli_ctxwatch *cw = c->watchers;
	c->watchers      = NULL;
	while (cw != NULL) {
		sli_ctxwatch *next = cw->next;
		sli_wait     *w    = cw->wait;

		cw->next = cw->prev = NULL;
		if (sli_wait_claim(w, SLI_WAIT_CANCELED))
			sli_wait_wake(w);
		__atomic_store_n(&cw->ctx, NULL, __ATOMIC_RELEASE);
		cw = next;
	}

	sl_afterfunc *af = c->afs;
	c->afs           = NULL;
	while (af != NULL) {
		sl_afterfunc *next = af->next;

		af->state = SLI_AF_STARTED;
		af->prev  = NULL;
		af->next  = *afs;
		*afs      = af;
		af        = next;
	}

	sl_ctx *ch = c->children, *last = NULL;
	c->children = NULL;
	for (sl_ctx *k = ch; k != NULL; k = k->sib_next) {
		k->linked = false;
		ctx_mref(k);
		last = k;
	}
	if (ch != NULL) {
		ch->sib_prev = NULL;
		if (*qt != NULL)
			(*qt)->sib_next = ch;
		else
			*qh = ch;
		*qt = last;
	}
	sli_unlock(&c->lock);
	return (true);
}

/*
 * Waits until c's done channel is closed: c is marked done and whoever
 * marked it is closing the channels.  Brief: nothing in between blocks.
 * A goroutine that has marked nothing itself may let others run on its
 * worker meanwhile (yield true).  A canceller with marks not yet closed
 * keeps its worker instead (yield false): else it would wait in that
 * worker's run queue while a deadline's timer fn, run there next, spun
 * for ever on one of those marks (with one worker, a hang).  So a
 * canceller is always running somewhere, and everyone waiting for it
 * sees its channels close.
 */
static void
ctx_await_closed(sl_ctx *c, bool yield)
{
	while (!sl_chan_closed(c->done)) {
		if (yield && sl_goid() != 0)
			sl_yield();
		else
			sched_yield();
	}
}

/*
 * Cancels the cancelable context root and all its descendants with
 * (err, cause, msg), unless root is done already (then own is freed and
 * it only waits for root's done channel).  Descendants get the same err
 * and cause and share the text (an ancestor outlives its descendants).
 * root is unlinked from its parent.  Returns once every done channel of
 * the subtree is closed and every AfterFunc started.  The caller keeps
 * root's memory alive (an owner reference, the timer, or the
 * owner-release path); descendants are kept by mrefs.
 *
 * As with Go's mutex-held cancel, a done channel is closed only once
 * every done channel under it is: the channels close in the reverse of
 * the marking order (breadth first, so children after parents), root
 * last, and a descendant that a concurrent cancel marked first is waited
 * for, on this thread (see ctx_await_closed).  So whoever sees a context
 * done (sl_ctx_err, a later cancel call) and waits for its channel finds
 * the whole subtree closed.  Waits only go down the tree, so they cannot
 * form a cycle.
 */
static void
ctx_cancel(sl_ctx *root, int err, int cause, const char *msg, char *own)
{
	sl_ctx       *qh = NULL, *qt = NULL, *done = NULL, *other = NULL;
	sl_afterfunc *afs = NULL;

	if (!ctx_mark(root, err, cause, msg, own, &qh, &qt, &afs)) {
		ctx_await_closed(root, true);
		return;
	}
	msg = root->msg;
	ctx_unlink(root);

	while (qh != NULL) {
		sl_ctx *c = qh;

		qh = c->sib_next;
		if (qh == NULL)
			qt = NULL;
		c->sib_next = NULL;
		if (ctx_mark(c, err, cause, msg, NULL, &qh, &qt, &afs)) {
			c->sib_next = done;
			done        = c;
		} else {
			c->sib_next = other; /* canceled by someone else */
			other       = c;
		}
	}

	while (other != NULL) {
		sl_ctx *c = other;

		other = c->sib_next;
		c->sib_next = NULL;
		ctx_await_closed(c, false); /* holding marks of our own */
		ctx_munref(c);
	}
	while (done != NULL) {
		sl_ctx *c = done;

		done = c->sib_next;
		c->sib_next = NULL;
		sl_chan_close(c->done);
		ctx_munref(c);
	}
	sl_chan_close(root->done);
	while (afs != NULL) {
		sl_afterfunc *next = afs->next;

		af_launch(afs);
		afs = next;
	}
}

/* Cancels c for its own deadline: SL_EDEADLINE with c's deadline cause.
 * The text stays c's (dl_msg), shared by the descendants. */
static void
ctx_expire(sl_ctx *c)
{
	ctx_cancel(c, SL_EDEADLINE, c->dl_cause, c->dl_msg, NULL);
}

/* The deadline timer: runs on a worker thread, never blocks. */
static void
ctx_timer_fn(sli_timer *t)
{
	ctx_expire(t->arg);
}

/* ---- construction ------------------------------------------------------- */

/*
 * A cancelable child of parent with the deadline (SL_FOREVER: none) and
 * the cause (code, text: copied, may be NULL) it is canceled with when
 * that deadline, if its own, passes.
 */
static int
ctx_make(sl_ctx *parent, int64_t deadline, int dl_cause, const char *dl_msg,
    sl_ctx **out)
{
	sl_ctx *c, *p;
	int64_t pd;
	bool    own;
	int     perr = 0, pcause = 0;
	const char *pmsg = NULL;

	if (parent == NULL || out == NULL)
		return (SL_EINVAL);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (SL_ENOMEM);
	if ((c->done = sl_chan_make(0, 0)) == NULL ||
	    (dl_msg != NULL && (c->dl_msg = strdup(dl_msg)) == NULL)) {
		sl_chan_release(c->done);
		free(c);
		return (SL_ENOMEM);
	}
	c->dl_cause = dl_cause;
	atomic_init(&c->refs, 1);
	atomic_init(&c->mrefs, 1);
	atomic_init(&c->lock, 0);
	atomic_init(&c->err, 0);
	c->kind           = SLI_CTX_CANCEL;
	c->parent         = sl_ctx_retain(parent);
	c->cp             = c;
	c->link           = p = parent->cp;
	c->timer.fn       = ctx_timer_fn;
	c->timer.arg      = c;
	c->timer.heapidx  = -1;
	atomic_init(&c->timer.state, SLI_TIMER_IDLE);

	pd  = p != NULL ? p->deadline : SL_FOREVER;
	own = deadline < pd;
	c->deadline = own ? deadline : pd;

	if (p != NULL) {
		sli_lock(&p->lock);
		perr = atomic_load_explicit(&p->err, memory_order_relaxed);
		if (perr != 0) {
			pcause = p->cause;
			pmsg   = p->msg;
		} else {
			c->sib_next = p->children;
			if (p->children != NULL)
				p->children->sib_prev = c;
			p->children = c;
			c->linked   = true;
		}
		sli_unlock(&p->lock);
	}

	if (perr != 0) {
		ctx_cancel(c, perr, pcause, pmsg, NULL);
	} else if (own) {
		if (deadline <= sl_now()) {
			ctx_expire(c);
		} else {
			/* Without a scheduler (SL_ESTATE) sl_ctx_err notices
			 * the deadline instead. */
			c->timer.when = deadline;
			c->armed = sli_timer_start(&c->timer) == 0;
		}
	}
	*out = c;
	return (0);
}

int
sl_ctx_with_deadline(sl_ctx *parent, int64_t deadline, sl_ctx **out)
{
	return (ctx_make(parent, deadline, SL_EDEADLINE, NULL, out));
}

int
sl_ctx_with_deadline_cause(sl_ctx *parent, int64_t deadline, int err,
    const char *msg, sl_ctx **out)
{
	return (ctx_make(parent, deadline, err != 0 ? err : SL_EDEADLINE, msg,
	    out));
}

int
sl_ctx_with_cancel(sl_ctx *parent, sl_ctx **out)
{
	return (ctx_make(parent, SL_FOREVER, SL_EDEADLINE, NULL, out));
}

/* sl_now() + timeout_ns, saturated: <= 0 is now, too far is never. */
static int64_t
ctx_after(int64_t timeout_ns)
{
	int64_t now = sl_now();

	if (timeout_ns <= 0)
		return (now);
	if (timeout_ns >= SL_FOREVER - now)
		return (SL_FOREVER);
	return (now + timeout_ns);
}

int
sl_ctx_with_timeout(sl_ctx *parent, int64_t timeout_ns, sl_ctx **out)
{
	return (sl_ctx_with_deadline(parent, ctx_after(timeout_ns), out));
}

int
sl_ctx_with_timeout_cause(sl_ctx *parent, int64_t timeout_ns, int err,
    const char *msg, sl_ctx **out)
{
	return (sl_ctx_with_deadline_cause(parent, ctx_after(timeout_ns), err,
	    msg, out));
}

/* A context of kind (value or detached) under parent: no lock, no done
 * channel, no deadline of its own.  NULL when out of memory. */
static sl_ctx *
ctx_make_plain(sl_ctx *parent, int kind)
{
	sl_ctx *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	atomic_init(&c->refs, 1);
	atomic_init(&c->mrefs, 1);
	c->kind     = kind;
	c->parent   = sl_ctx_retain(parent);
	c->cp       = kind == SLI_CTX_VALUE ? parent->cp : NULL;
	c->deadline = SL_FOREVER;
	return (c);
}

int
sl_ctx_without_cancel(sl_ctx *parent, sl_ctx **out)
{
	if (parent == NULL || out == NULL)
		return (SL_EINVAL);
	if ((*out = ctx_make_plain(parent, SLI_CTX_DETACHED)) == NULL)
		return (SL_ENOMEM);
	return (0);
}

int
sl_ctx_with_value(sl_ctx *parent, const void *key, void *val, sl_ctx **out)
{
	sl_ctx *c;

	if (parent == NULL || key == NULL || out == NULL)
		return (SL_EINVAL);
	if ((c = ctx_make_plain(parent, SLI_CTX_VALUE)) == NULL)
		return (SL_ENOMEM);
	c->key = key;
	c->val = val;
	*out = c;
	return (0);
}

/* ---- references --------------------------------------------------------- */

sl_ctx *
sl_ctx_retain(sl_ctx *ctx)
{
	if (ctx != NULL && ctx->kind != SLI_CTX_BACKGROUND)
		atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
	return (ctx);
}

/*
 * Drops an owner reference.  The last one cancels a cancelable context
 * (running its pending AfterFuncs), unlinks it from its parent, stops its
 * timer (waiting for a running timer fn), and then drops its reference on
 * the parent, which may free the parent in turn (done iteratively, so a
 * deep chain does not recurse).
 */
void
sl_ctx_release(sl_ctx *ctx)
{
	while (ctx != NULL && ctx->kind != SLI_CTX_BACKGROUND) {
		sl_ctx *parent;

		if (atomic_fetch_sub_explicit(&ctx->refs, 1,
		    memory_order_acq_rel) != 1)
			return;
		parent = ctx->parent;
		if (ctx->kind == SLI_CTX_CANCEL) {
			ctx_cancel(ctx, SL_ECANCELED, SL_ECANCELED, NULL, NULL);
			ctx_unlink(ctx);
			if (ctx->armed)
				sli_timer_stop(&ctx->timer);
		}
		ctx_munref(ctx);
		ctx = parent;
	}
}

/* ---- cancel and query --------------------------------------------------- */

void
sl_ctx_cancel(sl_ctx *ctx)
{
	sl_ctx_cancel_cause(ctx, SL_ECANCELED, NULL);
}

void
sl_ctx_cancel_cause(sl_ctx *ctx, int err, const char *msg)
{
	char *own = NULL;

	if (ctx == NULL || ctx->kind != SLI_CTX_CANCEL)
		return;
	if (err == 0)
		err = SL_ECANCELED;
	if (msg != NULL)
		own = strdup(msg); /* NULL on ENOMEM: sl_strerror is used */
	ctx_cancel(ctx, SL_ECANCELED, err, own, own);
}

sl_chan *
sl_ctx_done(sl_ctx *ctx)
{
	if (ctx == NULL || ctx->cp == NULL)
		return (NULL);
	return (ctx->cp->done);
}

int
sl_ctx_err(sl_ctx *ctx)
{
	sl_ctx *c;
	int     e;

	if (ctx == NULL || (c = ctx->cp) == NULL)
		return (0);
	e = atomic_load_explicit(&c->err, memory_order_acquire);
	/* A deadline whose timer has not fired (not armed for want of a
	 * scheduler, or simply not run yet) is acted on here, as that timer
	 * would: on the context that owns it, an ancestor if c inherited
	 * it (c's references keep the ancestors alive). */
	if (e == 0 && c->deadline != SL_FOREVER && sl_now() >= c->deadline) {
		sl_ctx *owner = c;

		/* Inherited: equal to the cancelable parent's. */
		while (owner->link != NULL &&
		    owner->link->deadline == owner->deadline)
			owner = owner->link;
		ctx_expire(owner);
		e = atomic_load_explicit(&c->err, memory_order_acquire);
	}
	/* Done is reported once it is visible everywhere, as in Go: the
	 * canceller may still be closing the channels of this subtree. */
	if (e != 0)
		ctx_await_closed(c, true);
	return (e);
}

int
sl_ctx_cause(sl_ctx *ctx, const char **msg)
{
	sl_ctx *c;

	if (sl_ctx_err(ctx) == 0) {
		if (msg != NULL)
			*msg = NULL;
		return (0);
	}
	c = ctx->cp;
	if (msg != NULL)
		*msg = c->msg != NULL ? c->msg : sl_strerror(c->cause);
	return (c->cause);
}

bool
sl_ctx_deadline(sl_ctx *ctx, int64_t *deadline)
{
	sl_ctx *c;

	if (ctx == NULL || (c = ctx->cp) == NULL || c->deadline == SL_FOREVER)
		return (false);
	if (deadline != NULL)
		*deadline = c->deadline;
	return (true);
}

void *
sl_ctx_value(sl_ctx *ctx, const void *key)
{
	for (; ctx != NULL; ctx = ctx->parent)
		if (ctx->kind == SLI_CTX_VALUE && ctx->key == key)
			return (ctx->val);
	return (NULL);
}

/* ---- AfterFunc ---------------------------------------------------------- */

int
sl_ctx_after_func(sl_ctx *ctx, sl_fn fn, void *arg, sl_afterfunc **stop)
{
	sl_afterfunc *af;
	sl_ctx       *c;
	bool          now = false;

	if (ctx == NULL || fn == NULL)
		return (SL_EINVAL);
	if ((af = calloc(1, sizeof(*af))) == NULL)
		return (SL_ENOMEM);
	af->fn    = fn;
	af->arg   = arg;
	af->state = SLI_AF_PENDING;
	atomic_init(&af->refs, stop != NULL ? 2 : 1);

	if ((c = ctx->cp) != NULL) {
		ctx_mref(c);
		af->ctx = c;
		/* A deadline that passed cancels here, with no lock held. */
		(void) sl_ctx_err(ctx);
		sli_lock(&c->lock);
		if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
			af->state = SLI_AF_STARTED;
			now       = true;
		} else {
			af->next = c->afs;
			if (c->afs != NULL)
				c->afs->prev = af;
			c->afs = af;
		}
		sli_unlock(&c->lock);
	}
	if (stop != NULL)
		*stop = af;
	if (now)
		af_launch(af);
	else if (c == NULL)
		af_unref(af); /* never runs: only the caller's handle remains */
	return (0);
}

bool
sl_ctx_stop(sl_afterfunc *af)
{
	sl_ctx *c;
	bool    stopped = false;

	if (af == NULL)
		return (false);
	if ((c = af->ctx) != NULL) {
		sli_lock(&c->lock);
		if (af->state == SLI_AF_PENDING) {
			if (af->prev != NULL)
				af->prev->next = af->next;
			else
				c->afs = af->next;
			if (af->next != NULL)
				af->next->prev = af->prev;
			af->next = af->prev = NULL;
			af->state = SLI_AF_STOPPED;
			stopped   = true;
		}
		sli_unlock(&c->lock);
		if (stopped)
			af_unref(af); /* the library's reference */
	} else {
		/* Never-done context: the library let go at creation. */
		stopped   = af->state == SLI_AF_PENDING;
		af->state = SLI_AF_STOPPED;
	}
	af_unref(af); /* the caller's handle */
	return (stopped);
}

/* ---- watch hooks for blocking operations (sched/wait.h) ---------------- */

int
sli_ctx_watch(sl_ctx *ctx, sli_ctxwatch *cw)
{
	sl_ctx *c;
	int     e;

	__atomic_store_n(&cw->ctx, NULL, __ATOMIC_RELAXED);
	cw->next = cw->prev = NULL;
	if (ctx == NULL || (c = ctx->cp) == NULL)
		return (0);
	sli_lock(&c->lock);
	e = atomic_load_explicit(&c->err, memory_order_relaxed);
	/* A passed deadline whose timer has not fired is reported but not
	 * acted on: the caller may hold channel locks, and cancelling closes
	 * a channel.  The caller's sl_ctx_err then cancels. */
	if (e == 0 && c->deadline != SL_FOREVER && sl_now() >= c->deadline)
		e = SL_EDEADLINE;
	if (e == 0) {
		cw->next = c->watchers;
		if (c->watchers != NULL)
			c->watchers->prev = cw;
		c->watchers = cw;
		__atomic_store_n(&cw->ctx, c, __ATOMIC_RELAXED);
	}
	sli_unlock(&c->lock);
	return (e);
}

void
sli_ctx_unwatch(sli_ctxwatch *cw)
{
	sl_ctx *c = __atomic_load_n(&cw->ctx, __ATOMIC_ACQUIRE);

	if (c == NULL)
		return;
	sli_lock(&c->lock);
	if (__atomic_load_n(&cw->ctx, __ATOMIC_RELAXED) != NULL) {
		if (cw->prev != NULL)
			cw->prev->next = cw->next;
		else
			c->watchers = cw->next;
		if (cw->next != NULL)
			cw->next->prev = cw->prev;
		cw->next = cw->prev = NULL;
		__atomic_store_n(&cw->ctx, NULL, __ATOMIC_RELAXED);
	}
	sli_unlock(&c->lock);
}
