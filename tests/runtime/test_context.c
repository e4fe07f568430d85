/*
 * test_context.c — Go's context package on libsluice: tree cancellation,
 * causes, deadlines, values, AfterFunc (also when no goroutine can be
 * started for a while), waking blocked goroutines, and a race stress
 * between cancelling parents and releasing children.
 *
 * Each case runs its body as the main goroutine of a fresh sl_main.  The
 * bodies run on goroutine stacks (and on worker threads), where cmocka's
 * longjmp-based asserts must not be used, so they record failures with
 * SL_CHECK* (sltest.h) and slt_run fails the cmocka case afterwards.
 */
#include <pthread.h>

#include "sltest.h"
#include "context/ctx.h"  /* peeks at a context being marked */
#include "core/lock.h"
#include "sched/sched.h" /* sli_stack_max_slabs */

/* The done channel of ctx is closed (receive says so at once). */
static int
done_closed(sl_ctx *ctx)
{
	return (sl_chan_tryrecv(sl_ctx_done(ctx), NULL) == SL_ECLOSED);
}

/* The done channel of ctx exists and is still open and empty. */
static int
done_open(sl_ctx *ctx)
{
	return (sl_ctx_done(ctx) != NULL &&
	    sl_chan_tryrecv(sl_ctx_done(ctx), NULL) == SL_EAGAIN);
}

static sl_ctx *
mk_cancel(sl_ctx *parent)
{
	sl_ctx *c = NULL;

	SL_CHECK_EQ(sl_ctx_with_cancel(parent, &c), 0);
	return (c);
}

static sl_ctx *
mk_timeout(sl_ctx *parent, int64_t ns)
{
	sl_ctx *c = NULL;

	SL_CHECK_EQ(sl_ctx_with_timeout(parent, ns, &c), 0);
	return (c);
}

static sl_ctx *
mk_value(sl_ctx *parent, const void *key, void *val)
{
	sl_ctx *c = NULL;

	SL_CHECK_EQ(sl_ctx_with_value(parent, key, val, &c), 0);
	return (c);
}

static int key_a, key_b, key_c; /* value keys: their addresses */

/* ---- background --------------------------------------------------------- */

static void
body_background(void *arg)
{
	sl_ctx     *bg = sl_ctx_background();
	const char *msg = "unset";
	int64_t     d   = 42;

	SL_CHECK(bg != NULL);
	SL_CHECK(sl_ctx_background() == bg);
	SL_CHECK(sl_ctx_done(bg) == NULL);
	SL_CHECK_EQ(sl_ctx_err(bg), 0);
	SL_CHECK_EQ(sl_ctx_cause(bg, &msg), 0);
	SL_CHECK(msg == NULL);
	SL_CHECK(!sl_ctx_deadline(bg, &d));
	SL_CHECK_EQ(d, 42);
	SL_CHECK(sl_ctx_value(bg, &key_a) == NULL);
	SL_CHECK(sl_ctx_retain(bg) == bg);
	sl_ctx_release(bg);
	sl_ctx_release(bg);
	sl_ctx_release(NULL);
	sl_ctx_cancel(bg);
	sl_ctx_cancel_cause(bg, SL_EPROTO, "x");
	SL_CHECK_EQ(sl_ctx_err(bg), 0);

	/* Argument checks. */
	sl_ctx *c = NULL;
	SL_CHECK_EQ(sl_ctx_with_cancel(NULL, &c), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_with_timeout(NULL, SL_SECOND, &c), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_with_deadline(bg, SL_FOREVER, NULL), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_with_value(bg, NULL, &key_a, &c), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_with_value(NULL, &key_a, &key_a, &c), SL_EINVAL);
	SL_CHECK(c == NULL);

	/* Value contexts over background can never be done either. */
	sl_ctx *v = mk_value(bg, &key_a, &key_b);
	SL_CHECK(sl_ctx_done(v) == NULL);
	SL_CHECK_EQ(sl_ctx_err(v), 0);
	SL_CHECK(!sl_ctx_deadline(v, NULL));
	sl_ctx_cancel(v);
	SL_CHECK_EQ(sl_ctx_err(v), 0);
	sl_ctx_release(v);
}

static void
test_background(void **state)
{
	slt_run(body_background, NULL);
}

/* ---- tree cancellation -------------------------------------------------- */

/*
 *            root
 *          /      \
 *         a        b
 *       / | \       \
 *     a1  av  (a2)   b1
 *         |
 *        avc
 * a1 has a far deadline, av is a value context, avc cancelable under it.
 */
struct tree {
	sl_ctx *root, *a, *b, *a1, *av, *avc, *b1;
};

static void
tree_make(struct tree *t)
{
	t->root = mk_cancel(sl_ctx_background());
	t->a    = mk_cancel(t->root);
	t->b    = mk_cancel(t->root);
	t->a1   = mk_timeout(t->a, 3600 * SL_SECOND);
	t->av   = mk_value(t->a, &key_a, &key_b);
	t->avc  = mk_cancel(t->av);
	t->b1   = mk_cancel(t->b);
}

static void
tree_free(struct tree *t)
{
	/* Parents first: children keep them alive. */
	sl_ctx_release(t->root);
	sl_ctx_release(t->a);
	sl_ctx_release(t->av);
	sl_ctx_release(t->b);
	sl_ctx_release(t->a1);
	sl_ctx_release(t->avc);
	sl_ctx_release(t->b1);
}

static void
body_tree_cancel(void *arg)
{
	struct tree t;
	sl_ctx     *all[7];
	const char *msg;

	tree_make(&t);
	memcpy(all, &t, sizeof(all));
	for (int i = 0; i < 7; i++) {
		SL_CHECK_EQ(sl_ctx_err(all[i]), 0);
		SL_CHECK(done_open(all[i]));
		SL_CHECK_EQ(sl_ctx_cause(all[i], NULL), 0);
	}
	SL_CHECK(sl_ctx_done(t.av) == sl_ctx_done(t.a));
	SL_CHECK(sl_ctx_done(t.a) != sl_ctx_done(t.root));

	sl_ctx_cancel(t.root);
	for (int i = 0; i < 7; i++) {
		SL_CHECK_EQ(sl_ctx_err(all[i]), SL_ECANCELED);
		SL_CHECK(done_closed(all[i]));
		msg = NULL;
		SL_CHECK_EQ(sl_ctx_cause(all[i], &msg), SL_ECANCELED);
		SL_CHECK(msg != NULL &&
		    strcmp(msg, sl_strerror(SL_ECANCELED)) == 0);
	}
	/* Idempotent, and a different later cause is ignored. */
	sl_ctx_cancel(t.root);
	sl_ctx_cancel_cause(t.a, SL_EPROTO, "late");
	SL_CHECK_EQ(sl_ctx_cause(t.a, &msg), SL_ECANCELED);
	SL_CHECK(strcmp(msg, sl_strerror(SL_ECANCELED)) == 0);

	/* A child of a canceled context is born canceled. */
	sl_ctx *late = mk_cancel(t.avc);
	SL_CHECK_EQ(sl_ctx_err(late), SL_ECANCELED);
	SL_CHECK(done_closed(late));
	sl_ctx_release(late);
	tree_free(&t);
}

static void
test_tree_cancel(void **state)
{
	slt_run(body_tree_cancel, NULL);
}

static void
body_cancel_child(void *arg)
{
	struct tree t;

	tree_make(&t);
	sl_ctx_cancel(t.a);
	SL_CHECK_EQ(sl_ctx_err(t.a), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(t.a1), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(t.av), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(t.avc), SL_ECANCELED);
	SL_CHECK(done_closed(t.a) && done_closed(t.a1) && done_closed(t.avc));
	/* Parent and siblings are untouched. */
	SL_CHECK_EQ(sl_ctx_err(t.root), 0);
	SL_CHECK_EQ(sl_ctx_err(t.b), 0);
	SL_CHECK_EQ(sl_ctx_err(t.b1), 0);
	SL_CHECK(done_open(t.root) && done_open(t.b) && done_open(t.b1));

	/* A leaf: only itself. */
	sl_ctx_cancel(t.b1);
	SL_CHECK_EQ(sl_ctx_err(t.b1), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(t.b), 0);
	SL_CHECK(done_open(t.b));

	/* The rest goes with the root; a new child of the root too. */
	sl_ctx *n = mk_cancel(t.root);
	SL_CHECK_EQ(sl_ctx_err(n), 0);
	sl_ctx_cancel(t.root);
	SL_CHECK_EQ(sl_ctx_err(t.b), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(n), SL_ECANCELED);
	SL_CHECK(done_closed(t.root) && done_closed(t.b) && done_closed(n));
	sl_ctx_release(n);
	tree_free(&t);
}

static void
test_cancel_child(void **state)
{
	slt_run(body_cancel_child, NULL);
}

/* ---- causes ------------------------------------------------------------- */

static void
body_cause(void *arg)
{
	char        text[32];
	const char *msg = NULL;
	sl_ctx     *root = mk_cancel(sl_ctx_background());
	sl_ctx     *kid  = mk_cancel(root);
	sl_ctx     *val  = mk_value(kid, &key_a, NULL);
	sl_ctx     *gk   = mk_cancel(val);
	sl_ctx     *own  = mk_cancel(root);

	/* own gets its own cause first; the root's later does not replace it */
	sl_ctx_cancel_cause(own, SL_ETOOBIG, "own cause");

	snprintf(text, sizeof(text), "peer went away");
	sl_ctx_cancel_cause(root, SL_ECONNSHUT, text);
	memset(text, 'X', sizeof(text) - 1); /* the text was copied */

	sl_ctx *each[] = { root, kid, val, gk };
	for (size_t i = 0; i < 4; i++) {
		SL_CHECK_EQ(sl_ctx_err(each[i]), SL_ECANCELED);
		msg = NULL;
		SL_CHECK_EQ(sl_ctx_cause(each[i], &msg), SL_ECONNSHUT);
		SL_CHECK(msg != NULL && strcmp(msg, "peer went away") == 0);
		SL_CHECK(done_closed(each[i]));
	}
	SL_CHECK_EQ(sl_ctx_cause(own, &msg), SL_ETOOBIG);
	SL_CHECK(strcmp(msg, "own cause") == 0);

	/* Born under a canceled parent: inherits the cause. */
	sl_ctx *late = mk_cancel(gk);
	SL_CHECK_EQ(sl_ctx_cause(late, &msg), SL_ECONNSHUT);
	SL_CHECK(strcmp(msg, "peer went away") == 0);

	/* Cause 0 means plain cancel; NULL text means sl_strerror. */
	sl_ctx *z = mk_cancel(sl_ctx_background());
	sl_ctx_cancel_cause(z, 0, NULL);
	SL_CHECK_EQ(sl_ctx_err(z), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_cause(z, &msg), SL_ECANCELED);
	SL_CHECK(strcmp(msg, sl_strerror(SL_ECANCELED)) == 0);
	sl_ctx *y = mk_cancel(sl_ctx_background());
	sl_ctx_cancel_cause(y, SL_EPROTO, NULL);
	SL_CHECK_EQ(sl_ctx_cause(y, &msg), SL_EPROTO);
	SL_CHECK(strcmp(msg, sl_strerror(SL_EPROTO)) == 0);
	SL_CHECK_EQ(sl_ctx_cause(y, NULL), SL_EPROTO);

	sl_ctx_release(root);
	sl_ctx_release(late);
	sl_ctx_release(gk);
	sl_ctx_release(val);
	sl_ctx_release(kid);
	sl_ctx_release(own);
	sl_ctx_release(z);
	sl_ctx_release(y);
}

static void
test_cause(void **state)
{
	slt_run(body_cause, NULL);
}

/* ---- deadlines ---------------------------------------------------------- */

static void
body_deadline_fires(void *arg)
{
	int64_t     t0 = sl_now(), d = 0;
	sl_ctx     *c  = mk_timeout(sl_ctx_background(), 50 * SL_MILLISECOND);
	sl_ctx     *k  = mk_cancel(c);
	sl_ctx     *v  = mk_value(c, &key_a, NULL);
	const char *msg;

	SL_CHECK(sl_ctx_deadline(c, &d));
	SL_CHECK(d >= t0 + 50 * SL_MILLISECOND);
	SL_CHECK(d <= sl_now() + 50 * SL_MILLISECOND);
	int64_t dk = 0, dv = 0;
	SL_CHECK(sl_ctx_deadline(k, &dk) && dk == d);
	SL_CHECK(sl_ctx_deadline(v, &dv) && dv == d);
	SL_CHECK_EQ(sl_ctx_err(c), 0);
	SL_CHECK(done_open(c));

	/* Wait on the child's channel: it closes when the parent's fires. */
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(k), NULL), SL_ECLOSED);
	int64_t t1 = sl_now();
	SL_CHECK(t1 >= d);                     /* never early */
	SL_CHECK(t1 - t0 < 10 * SL_SECOND);    /* generous: a noisy VM */
	SL_CHECK(done_closed(c));
	SL_CHECK_EQ(sl_ctx_err(c), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(k), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(v), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_cause(k, &msg), SL_EDEADLINE);
	SL_CHECK(strcmp(msg, sl_strerror(SL_EDEADLINE)) == 0);

	/* A cancel after the deadline changes nothing. */
	sl_ctx_cancel(c);
	SL_CHECK_EQ(sl_ctx_err(c), SL_EDEADLINE);

	sl_ctx_release(c);
	sl_ctx_release(k);
	sl_ctx_release(v);

	/* Canceled before the deadline: err stays SL_ECANCELED, and a
	 * released context's timer is gone (nothing fires into freed
	 * memory: ASan/valgrind watch that). */
	sl_ctx *e = mk_timeout(sl_ctx_background(), 20 * SL_MILLISECOND);
	sl_ctx *f = mk_timeout(sl_ctx_background(), 20 * SL_MILLISECOND);
	sl_ctx_cancel(e);
	sl_ctx_release(f);
	sl_sleep(60 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_ctx_err(e), SL_ECANCELED);
	sl_ctx_release(e);
}

static void
test_deadline_fires(void **state)
{
	slt_run(body_deadline_fires, NULL);
}

static void
body_deadline_inherit(void *arg)
{
	sl_ctx *p = mk_timeout(sl_ctx_background(), 60 * SL_MILLISECOND);
	int64_t dp = 0, d = 0;

	SL_CHECK(sl_ctx_deadline(p, &dp));

	/* A later own deadline: the parent's earlier one is kept. */
	sl_ctx *late = mk_timeout(p, 3600 * SL_SECOND);
	SL_CHECK(sl_ctx_deadline(late, &d));
	SL_CHECK_EQ(d, dp);
	/* An earlier own deadline is the child's own. */
	sl_ctx *early = mk_timeout(p, 20 * SL_MILLISECOND);
	SL_CHECK(sl_ctx_deadline(early, &d));
	SL_CHECK(d < dp);
	int64_t de = d;
	/* with_deadline with an absolute time. */
	sl_ctx *abs = NULL;
	SL_CHECK_EQ(sl_ctx_with_deadline(p, dp - SL_MILLISECOND, &abs), 0);
	SL_CHECK(sl_ctx_deadline(abs, &d));
	SL_CHECK_EQ(d, dp - SL_MILLISECOND);

	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(early), NULL), SL_ECLOSED);
	SL_CHECK(sl_now() >= de);
	SL_CHECK_EQ(sl_ctx_err(early), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(p), 0);   /* the parent is not affected */

	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(late), NULL), SL_ECLOSED);
	SL_CHECK(sl_now() >= dp - SL_MILLISECOND);
	SL_CHECK_EQ(sl_ctx_err(late), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(p), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(abs), SL_EDEADLINE);

	/* Past deadlines: done at once. */
	sl_ctx *past = NULL;
	SL_CHECK_EQ(sl_ctx_with_deadline(sl_ctx_background(),
	    sl_now() - SL_SECOND, &past), 0);
	SL_CHECK_EQ(sl_ctx_err(past), SL_EDEADLINE);
	SL_CHECK(done_closed(past));
	sl_ctx *zero = mk_timeout(sl_ctx_background(), 0);
	SL_CHECK_EQ(sl_ctx_err(zero), SL_EDEADLINE);
	SL_CHECK(done_closed(zero));
	/* No deadline anywhere. */
	sl_ctx *none = mk_cancel(sl_ctx_background());
	SL_CHECK(!sl_ctx_deadline(none, &d));
	sl_ctx *huge = mk_timeout(none, SL_FOREVER);
	SL_CHECK(!sl_ctx_deadline(huge, &d));

	sl_ctx_release(p);
	sl_ctx_release(late);
	sl_ctx_release(early);
	sl_ctx_release(abs);
	sl_ctx_release(past);
	sl_ctx_release(zero);
	sl_ctx_release(huge);
	sl_ctx_release(none);
}

static void
test_deadline_inherit(void **state)
{
	slt_run(body_deadline_inherit, NULL);
}

/* Counts its runs (an AfterFunc). */
static void
count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *) arg, 1);
}

/* ---- deadline causes (Go 1.21 WithDeadlineCause) ------------------------ */

static sl_ctx *
mk_timeout_cause(sl_ctx *parent, int64_t ns, int err, const char *msg)
{
	sl_ctx *c = NULL;

	SL_CHECK_EQ(sl_ctx_with_timeout_cause(parent, ns, err, msg, &c), 0);
	return (c);
}

/* ctx is done with err, and cause code and text as given. */
static void
check_cause(sl_ctx *ctx, int err, int cause, const char *text)
{
	const char *msg = NULL;

	SL_CHECK_EQ(sl_ctx_err(ctx), err);
	SL_CHECK_EQ(sl_ctx_cause(ctx, &msg), cause);
	SL_CHECK(msg != NULL && strcmp(msg, text) == 0);
	SL_CHECK(done_closed(ctx));
}

static void
body_deadline_cause(void *arg)
{
	char        text[32];
	int64_t     t0 = sl_now(), d = 0;
	sl_ctx     *c, *k, *v, *late, *early, *pre, *z, *past, *abs = NULL;

	(void) arg;
	/* The timer fires: SL_EDEADLINE, with the cause given, to the
	 * whole subtree; the text was copied. */
	snprintf(text, sizeof(text), "flush took too long");
	c = mk_timeout_cause(sl_ctx_background(), 30 * SL_MILLISECOND,
	    SL_ETIMEDOUT, text);
	memset(text, 'X', sizeof(text) - 1);
	k = mk_cancel(c);
	v = mk_value(k, &key_a, NULL);
	late = mk_timeout_cause(c, 3600 * SL_SECOND, SL_EPROTO, "late");
	SL_CHECK(sl_ctx_deadline(c, &d) && d >= t0 + 30 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_ctx_cause(c, NULL), 0);
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(v), NULL), SL_ECLOSED);
	SL_CHECK(sl_now() >= d);
	check_cause(c, SL_EDEADLINE, SL_ETIMEDOUT, "flush took too long");
	check_cause(k, SL_EDEADLINE, SL_ETIMEDOUT, "flush took too long");
	check_cause(v, SL_EDEADLINE, SL_ETIMEDOUT, "flush took too long");
	/* late's own deadline was later: the parent's cause reached it. */
	check_cause(late, SL_EDEADLINE, SL_ETIMEDOUT, "flush took too long");
	/* A cancel afterwards changes nothing. */
	sl_ctx_cancel_cause(c, SL_EPROTO, "too late");
	check_cause(c, SL_EDEADLINE, SL_ETIMEDOUT, "flush took too long");
	sl_ctx_release(late);
	sl_ctx_release(v);
	sl_ctx_release(k);
	sl_ctx_release(c);

	/* An earlier own deadline under a parent with a cause of its own:
	 * the child's cause, the parent untouched. */
	c = mk_timeout_cause(sl_ctx_background(), 3600 * SL_SECOND,
	    SL_EPROTO, "parent");
	early = mk_timeout_cause(c, 10 * SL_MILLISECOND, SL_ECONNSHUT,
	    "child");
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(early), NULL), SL_ECLOSED);
	check_cause(early, SL_EDEADLINE, SL_ECONNSHUT, "child");
	SL_CHECK_EQ(sl_ctx_err(c), 0);
	sl_ctx_release(early);

	/* Canceled before the deadline: the cancel's cause, and the timer
	 * does not replace it later. */
	pre = mk_timeout_cause(c, 20 * SL_MILLISECOND, SL_ETIMEDOUT, "slow");
	sl_ctx_cancel(pre);
	sl_sleep(40 * SL_MILLISECOND);
	check_cause(pre, SL_ECANCELED, SL_ECANCELED,
	    sl_strerror(SL_ECANCELED));
	sl_ctx_release(pre);
	sl_ctx_release(c);

	/* Code 0 means SL_EDEADLINE; NULL text means sl_strerror. */
	z = mk_timeout_cause(sl_ctx_background(), 0, 0, NULL);
	check_cause(z, SL_EDEADLINE, SL_EDEADLINE, sl_strerror(SL_EDEADLINE));
	sl_ctx_release(z);
	/* A deadline already past: done at once, with the cause. */
	SL_CHECK_EQ(sl_ctx_with_deadline_cause(sl_ctx_background(),
	    sl_now() - SL_SECOND, SL_ETOOBIG, "past", &past), 0);
	check_cause(past, SL_EDEADLINE, SL_ETOOBIG, "past");
	sl_ctx_release(past);
	/* An absolute deadline; under a canceled parent it is born with the
	 * parent's cause. */
	c = mk_cancel(sl_ctx_background());
	sl_ctx_cancel_cause(c, SL_ECONNSHUT, "gone");
	SL_CHECK_EQ(sl_ctx_with_deadline_cause(c, sl_now() + SL_SECOND,
	    SL_ETIMEDOUT, "never", &abs), 0);
	check_cause(abs, SL_ECANCELED, SL_ECONNSHUT, "gone");
	sl_ctx_release(abs);
	sl_ctx_release(c);

	/* Bad input. */
	abs = (sl_ctx *) &abs;
	SL_CHECK_EQ(sl_ctx_with_deadline_cause(NULL, 0, 0, NULL, &abs),
	    SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_with_timeout_cause(sl_ctx_background(), 0, 0,
	    NULL, NULL), SL_EINVAL);
}

static void
test_deadline_cause(void **state)
{
	(void) state;
	slt_run(body_deadline_cause, NULL);
}

/* ---- without_cancel (Go 1.21 WithoutCancel) ----------------------------- */

static void
body_without_cancel(void *arg)
{
	char          s1[] = "one";
	atomic_int    ran = 0;
	sl_afterfunc *af = NULL;
	sl_ctx       *p, *v, *w, *k, *t, *ww;
	int64_t       d;

	(void) arg;
	p = mk_timeout(sl_ctx_background(), 20 * SL_MILLISECOND);
	v = mk_value(p, &key_a, s1);
	SL_CHECK_EQ(sl_ctx_without_cancel(v, &w), 0);
	k = mk_cancel(w);
	t = mk_timeout(w, 3600 * SL_SECOND);
	SL_CHECK_EQ(sl_ctx_after_func(w, count_fn, &ran, &af), 0);

	/* Values pass through; cancellation and deadlines do not. */
	SL_CHECK(sl_ctx_value(w, &key_a) == s1);
	SL_CHECK(sl_ctx_value(k, &key_a) == s1);
	SL_CHECK(sl_ctx_done(w) == NULL);
	SL_CHECK(!sl_ctx_deadline(w, &d));
	SL_CHECK(!sl_ctx_deadline(k, &d));
	SL_CHECK(sl_ctx_deadline(t, &d)); /* its own, not p's earlier one */
	SL_CHECK(d > sl_now() + 3000 * SL_SECOND);
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(p), NULL), SL_ECLOSED);
	SL_CHECK_EQ(sl_ctx_err(v), SL_EDEADLINE);
	SL_CHECK_EQ(sl_ctx_err(w), 0);
	SL_CHECK_EQ(sl_ctx_cause(w, NULL), 0);
	SL_CHECK_EQ(sl_ctx_err(k), 0);
	SL_CHECK(done_open(k));
	SL_CHECK_EQ(sl_ctx_err(t), 0);
	/* Cancelling it is a no-op; its AfterFunc never runs. */
	sl_ctx_cancel(w);
	SL_CHECK_EQ(sl_ctx_err(w), 0);
	SL_CHECK_EQ(sl_ctx_err(k), 0);
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&ran), 0);
	SL_CHECK(sl_ctx_stop(af));

	/* Its children are canceled by their own cancels and deadlines. */
	sl_ctx_cancel_cause(k, SL_EPROTO, "own");
	SL_CHECK_EQ(sl_ctx_err(k), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_err(t), 0);
	sl_ctx_release(t);
	t = mk_timeout(w, 5 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(t), NULL), SL_ECLOSED);
	SL_CHECK_EQ(sl_ctx_err(t), SL_EDEADLINE);

	/* Released before it: the parent chain stays alive for values. */
	sl_ctx_release(p);
	sl_ctx_release(v);
	SL_CHECK_EQ(sl_ctx_without_cancel(w, &ww), 0);
	SL_CHECK(sl_ctx_value(ww, &key_a) == s1);
	sl_ctx_release(w);
	SL_CHECK(sl_ctx_value(ww, &key_a) == s1);
	SL_CHECK(sl_ctx_value(k, &key_a) == s1);
	sl_ctx_release(ww);
	sl_ctx_release(k);
	sl_ctx_release(t);

	/* Of background: like background.  Bad input. */
	SL_CHECK_EQ(sl_ctx_without_cancel(sl_ctx_background(), &w), 0);
	SL_CHECK(sl_ctx_done(w) == NULL && sl_ctx_err(w) == 0);
	sl_ctx_release(w);
	SL_CHECK_EQ(sl_ctx_without_cancel(NULL, &w), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_without_cancel(sl_ctx_background(), NULL),
	    SL_EINVAL);
}

static void
test_without_cancel(void **state)
{
	(void) state;
	slt_run_procs(1, body_without_cancel, NULL);
	slt_run_procs(2, body_without_cancel, NULL);
}

/* ---- values ------------------------------------------------------------- */

static void
body_values(void *arg)
{
	char   s1[] = "one", s2[] = "two", s3[] = "three";
	sl_ctx *v1 = mk_value(sl_ctx_background(), &key_a, s1);
	sl_ctx *v2 = mk_value(v1, &key_b, s2);
	sl_ctx *c  = mk_cancel(v2);
	sl_ctx *v3 = mk_value(c, &key_a, s3);   /* shadows key_a */
	sl_ctx *vn = mk_value(v3, &key_b, NULL); /* binds key_b to NULL */

	SL_CHECK(sl_ctx_value(v1, &key_a) == s1);
	SL_CHECK(sl_ctx_value(v1, &key_b) == NULL);
	SL_CHECK(sl_ctx_value(v2, &key_a) == s1);
	SL_CHECK(sl_ctx_value(v2, &key_b) == s2);
	SL_CHECK(sl_ctx_value(c, &key_a) == s1);
	SL_CHECK(sl_ctx_value(c, &key_b) == s2);
	SL_CHECK(sl_ctx_value(v3, &key_a) == s3);
	SL_CHECK(sl_ctx_value(v3, &key_b) == s2);
	SL_CHECK(sl_ctx_value(vn, &key_b) == NULL);
	SL_CHECK(sl_ctx_value(vn, &key_a) == s3);
	SL_CHECK(sl_ctx_value(vn, &key_c) == NULL);
	/* Identity, not content: an equal-looking key does not match. */
	int other_a = key_a;
	SL_CHECK(sl_ctx_value(v3, &other_a) == NULL);

	/* Values survive cancellation; done/err come from c. */
	SL_CHECK(sl_ctx_done(v3) == sl_ctx_done(c));
	sl_ctx_cancel(c);
	SL_CHECK_EQ(sl_ctx_err(vn), SL_ECANCELED);
	SL_CHECK(sl_ctx_value(vn, &key_a) == s3);
	SL_CHECK_EQ(sl_ctx_err(v2), 0);

	/* Release the ancestors first; the leaf keeps the chain alive. */
	sl_ctx_release(v1);
	sl_ctx_release(v2);
	sl_ctx_release(c);
	sl_ctx_release(v3);
	SL_CHECK(sl_ctx_value(vn, &key_b) == NULL);
	SL_CHECK(sl_ctx_value(vn, &key_a) == s3);
	SL_CHECK(sl_ctx_value(sl_ctx_background(), &key_a) == NULL);
	sl_ctx_release(vn);
}

static void
test_values(void **state)
{
	slt_run(body_values, NULL);
}

/* ---- AfterFunc ---------------------------------------------------------- */

struct afrec {
	atomic_int runs[8];
	sl_chan   *ran; /* a token per run: the index */
};

struct afarg {
	struct afrec *rec;
	int           idx;
};

static void
af_fn(void *arg)
{
	struct afarg *a = arg;

	atomic_fetch_add(&a->rec->runs[a->idx], 1);
	SL_CHECK(sl_goid() != 0); /* in a goroutine of its own */
	SL_CHECK_EQ(sl_chan_send(a->rec->ran, &a->idx), 0);
}

static void
body_after_func(void *arg)
{
	struct afrec  rec;
	struct afarg  a[8];
	sl_afterfunc *h1 = NULL, *h2 = NULL, *h4 = NULL, *h5 = NULL;
	int           idx, got = 0;

	memset(&rec, 0, sizeof(rec));
	rec.ran = sl_chan_make(sizeof(int), 8);
	for (int i = 0; i < 8; i++) {
		a[i].rec = &rec;
		a[i].idx = i;
	}
	sl_ctx *c = mk_cancel(sl_ctx_background());
	SL_CHECK_EQ(sl_ctx_after_func(c, af_fn, &a[0], NULL), 0);
	SL_CHECK_EQ(sl_ctx_after_func(c, af_fn, &a[1], &h1), 0);
	SL_CHECK_EQ(sl_ctx_after_func(c, af_fn, &a[2], &h2), 0);
	SL_CHECK_EQ(sl_ctx_after_func(NULL, af_fn, &a[3], NULL), SL_EINVAL);
	SL_CHECK_EQ(sl_ctx_after_func(c, NULL, &a[3], NULL), SL_EINVAL);
	SL_CHECK(h1 != NULL && h2 != NULL);
	SL_CHECK(sl_ctx_stop(h2));    /* prevented */

	sl_sleep(10 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_chan_len(rec.ran), 0); /* nothing before cancel */

	sl_ctx_cancel(c);
	for (int i = 0; i < 2; i++) {
		SL_CHECK_EQ(sl_chan_recv_ctx(rec.ran, &idx, NULL,
		    sl_now() + 10 * SL_SECOND), 0);
		got |= 1 << idx;
	}
	SL_CHECK_EQ(got, 3);
	SL_CHECK(!sl_ctx_stop(h1));   /* already started */

	/* Already done: runs at once. */
	SL_CHECK_EQ(sl_ctx_after_func(c, af_fn, &a[3], &h4), 0);
	SL_CHECK_EQ(sl_chan_recv_ctx(rec.ran, &idx, NULL,
	    sl_now() + 10 * SL_SECOND), 0);
	SL_CHECK_EQ(idx, 3);
	SL_CHECK(!sl_ctx_stop(h4));
	sl_ctx_cancel(c); /* again: nothing new */

	/* Never done: never runs; stop says it prevented it. */
	sl_ctx *v = mk_value(sl_ctx_background(), &key_a, NULL);
	SL_CHECK_EQ(sl_ctx_after_func(v, af_fn, &a[5], &h5), 0);
	SL_CHECK_EQ(sl_ctx_after_func(sl_ctx_background(), af_fn, &a[5], NULL),
	    0);
	SL_CHECK(sl_ctx_stop(h5));

	/* Via a value context, fired by the release of the last reference. */
	sl_ctx *r  = mk_cancel(sl_ctx_background());
	sl_ctx *rv = mk_value(r, &key_a, NULL);
	SL_CHECK_EQ(sl_ctx_after_func(rv, af_fn, &a[6], NULL), 0);
	sl_ctx_release(rv);
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_chan_len(rec.ran), 0);
	sl_ctx_release(r);
	SL_CHECK_EQ(sl_chan_recv_ctx(rec.ran, &idx, NULL,
	    sl_now() + 10 * SL_SECOND), 0);
	SL_CHECK_EQ(idx, 6);

	/* Via a deadline. */
	sl_ctx *t = mk_timeout(sl_ctx_background(), 10 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_ctx_after_func(t, af_fn, &a[7], NULL), 0);
	SL_CHECK_EQ(sl_chan_recv_ctx(rec.ran, &idx, NULL,
	    sl_now() + 10 * SL_SECOND), 0);
	SL_CHECK_EQ(idx, 7);
	sl_ctx_release(t);

	/* Exactly once each, and nothing else ran. */
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_chan_len(rec.ran), 0);
	static const int want[8] = { 1, 1, 0, 1, 0, 0, 1, 1 };
	for (int i = 0; i < 8; i++)
		SL_CHECK_EQ(atomic_load(&rec.runs[i]), want[i]);

	sl_ctx_release(c);
	sl_ctx_release(v);
	sl_chan_release(rec.ran);
}

static void
test_after_func(void **state)
{
	slt_run(body_after_func, NULL);
}

/* ---- waking blocked goroutines ------------------------------------------ */

#define NSEL 48

struct selw {
	sl_ctx       *ctx;
	sl_chan      *never;
	sl_waitgroup *wg;
	atomic_int   *woke;
	int           mode;
};

static void
selw_fn(void *arg)
{
	struct selw *s = arg;
	int          chosen = -1, r;

	switch (s->mode) {
	case 0: { /* select on the done channel only */
		sl_case c[1] = { SL_CASE_RECV(sl_ctx_done(s->ctx), NULL) };
		r = sl_select(c, 1, NULL, SL_FOREVER, &chosen);
		SL_CHECK_EQ(r, 0);
		SL_CHECK_EQ(chosen, 0);
		SL_CHECK(!c[0].ok);
		if (r == 0 && chosen == 0 && !c[0].ok)
			atomic_fetch_add(s->woke, 1);
		break;
	}
	case 1: { /* select on a dead channel, interrupted by the ctx */
		sl_case c[1] = { SL_CASE_RECV(s->never, NULL) };
		r = sl_select(c, 1, s->ctx, SL_FOREVER, &chosen);
		SL_CHECK_EQ(r, SL_ECANCELED);
		if (r == SL_ECANCELED)
			atomic_fetch_add(s->woke, 1);
		break;
	}
	default: { /* both: done channel as a case and the ctx itself */
		sl_case c[2] = { SL_CASE_RECV(s->never, NULL),
		    SL_CASE_RECV(sl_ctx_done(s->ctx), NULL) };
		r = sl_select(c, 2, s->ctx, SL_FOREVER, &chosen);
		SL_CHECK((r == 0 && chosen == 1 && !c[1].ok) ||
		    r == SL_ECANCELED);
		if ((r == 0 && chosen == 1) || r == SL_ECANCELED)
			atomic_fetch_add(s->woke, 1);
		break;
	}
	}
	sl_waitgroup_done(s->wg);
}

static void
body_select_wake(void *arg)
{
	struct selw  s[NSEL];
	sl_waitgroup wg = SL_WAITGROUP_INIT;
	atomic_int   woke = 0;
	sl_chan     *never = sl_chan_make(0, 0);
	sl_ctx      *root = mk_cancel(sl_ctx_background());
	sl_ctx      *mid  = mk_value(root, &key_a, NULL);
	sl_ctx      *leaf = mk_cancel(mid);

	for (int i = 0; i < NSEL; i++) {
		s[i].ctx   = (i / 3) % 2 ? leaf : root;
		s[i].never = never;
		s[i].wg    = &wg;
		s[i].woke  = &woke;
		s[i].mode  = i % 3;
		sl_waitgroup_add(&wg, 1);
		SL_CHECK_EQ(sl_go(selw_fn, &s[i]), 0);
	}
	sl_sleep(30 * SL_MILLISECOND); /* let them block */
	SL_CHECK_EQ(atomic_load(&woke), 0);
	sl_ctx_cancel(root);
	SL_CHECK_EQ(sl_waitgroup_wait_ctx(&wg, NULL, sl_now() + 20 * SL_SECOND),
	    0);
	SL_CHECK_EQ(atomic_load(&woke), NSEL);

	sl_ctx_release(leaf);
	sl_ctx_release(mid);
	sl_ctx_release(root);
	sl_chan_release(never);
}

static void
test_select_wake(void **state)
{
	slt_run(body_select_wake, NULL);
}

struct blk {
	sl_ctx  *ctx;
	sl_chan *ch;      /* for recv; NULL: sleep */
	sl_chan *res;     /* gets the result */
	int64_t  elapsed;
	int64_t  end;     /* sl_now() when it returned */
};

static void
blk_fn(void *arg)
{
	struct blk *b  = arg;
	int64_t     t0 = sl_now();
	int         r;

	if (b->ch != NULL)
		r = sl_chan_recv_ctx(b->ch, NULL, b->ctx, SL_FOREVER);
	else
		r = sl_sleep_ctx(b->ctx, 30 * SL_SECOND);
	b->end = sl_now();
	b->elapsed = b->end - t0;
	SL_CHECK_EQ(sl_chan_send(b->res, &r), 0);
}

static void
body_interrupt(void *arg)
{
	sl_chan    *res = sl_chan_make(sizeof(int), 4);
	sl_chan    *ch  = sl_chan_make(sizeof(int), 0);
	sl_ctx     *c   = mk_cancel(sl_ctx_background());
	sl_ctx     *cv  = mk_value(c, &key_a, NULL);
	struct blk  b[4] = {
		{ .ctx = c, .ch = NULL, .res = res },
		{ .ctx = cv, .ch = ch, .res = res },
	};
	int r;

	SL_CHECK_EQ(sl_go(blk_fn, &b[0]), 0);
	SL_CHECK_EQ(sl_go(blk_fn, &b[1]), 0);
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_chan_len(res), 0);
	sl_ctx_cancel(c);
	for (int i = 0; i < 2; i++) {
		r = -1;
		SL_CHECK_EQ(sl_chan_recv(res, &r), 0);
		SL_CHECK_EQ(r, SL_ECANCELED);
	}
	SL_CHECK(b[0].elapsed < 10 * SL_SECOND);
	SL_CHECK(b[1].elapsed < 10 * SL_SECOND);

	/* Already done: returns at once, without blocking. */
	SL_CHECK_EQ(sl_sleep_ctx(c, 30 * SL_SECOND), SL_ECANCELED);
	SL_CHECK_EQ(sl_chan_recv_ctx(ch, NULL, cv, SL_FOREVER), SL_ECANCELED);

	/* Deadlines interrupt with SL_EDEADLINE, not before they are due
	 * (timed from the context's creation: a goroutine may start
	 * late on a loaded machine). */
	int64_t tstart = sl_now();
	sl_ctx *t = mk_timeout(sl_ctx_background(), 20 * SL_MILLISECOND);
	b[2] = (struct blk){ .ctx = t, .ch = NULL, .res = res };
	b[3] = (struct blk){ .ctx = t, .ch = ch, .res = res };
	SL_CHECK_EQ(sl_go(blk_fn, &b[2]), 0);
	SL_CHECK_EQ(sl_go(blk_fn, &b[3]), 0);
	for (int i = 0; i < 2; i++) {
		r = -1;
		SL_CHECK_EQ(sl_chan_recv(res, &r), 0);
		SL_CHECK_EQ(r, SL_EDEADLINE);
	}
	SL_CHECK(b[2].end - tstart >= 20 * SL_MILLISECOND);
	SL_CHECK(b[3].end - tstart >= 20 * SL_MILLISECOND);

	/* A live context does not disturb a short sleep or a receive. */
	sl_ctx *live = mk_cancel(sl_ctx_background());
	SL_CHECK_EQ(sl_sleep_ctx(live, SL_MILLISECOND), 0);
	SL_CHECK_EQ(sl_sleep_ctx(sl_ctx_background(), SL_MILLISECOND), 0);
	SL_CHECK_EQ(sl_chan_recv_ctx(ch, NULL, live, sl_now() + SL_MILLISECOND),
	    SL_ETIMEDOUT);
	SL_CHECK_EQ(sl_ctx_err(live), 0);

	sl_ctx_release(live);
	sl_ctx_release(t);
	sl_ctx_release(cv);
	sl_ctx_release(c);
	sl_chan_release(ch);
	sl_chan_release(res);
}

static void
test_interrupt(void **state)
{
	slt_run(body_interrupt, NULL);
}

/* A plain OS thread cancels while the main goroutine waits. */
static void *
canceller_thread(void *arg)
{
	sl_sleep(10 * SL_MILLISECOND);
	sl_ctx_cancel_cause(arg, SL_ESYSTEM, "from a thread");
	return (NULL);
}

static void
body_thread_cancel(void *arg)
{
	pthread_t   th;
	const char *msg;
	sl_ctx     *c = mk_cancel(sl_ctx_background());

	sl_sched_hold();
	SL_CHECK_EQ(pthread_create(&th, NULL, canceller_thread, c), 0);
	SL_CHECK_EQ(sl_chan_recv(sl_ctx_done(c), NULL), SL_ECLOSED);
	sl_sched_release();
	pthread_join(th, NULL);
	SL_CHECK_EQ(sl_ctx_err(c), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_cause(c, &msg), SL_ESYSTEM);
	SL_CHECK(strcmp(msg, "from a thread") == 0);
	sl_ctx_release(c);
}

static void
test_thread_cancel(void **state)
{
	slt_run(body_thread_cancel, NULL);
}

/*
 * Go's cancel and Err take the context's mutex, so whichever cancel call
 * returns, and whoever sees Err() != nil, finds the whole subtree's Done
 * channels closed.  Here two goroutines race to cancel one tree while a
 * third watches a grandchild's err: the loser's cancel must not return,
 * and a non-zero err must not be seen, before the done channels of the
 * node and everything under it are closed.
 */
#define RC_KIDS   48 /* children of the root, each with RC_GRAND */
#define RC_GRAND  3

struct race_cancel {
	sl_ctx      *root;
	sl_ctx      *kid[RC_KIDS];
	sl_ctx      *grand[RC_KIDS][RC_GRAND];
	atomic_int   go;      /* start line */
	atomic_int   bad;     /* violations seen */
	sl_waitgroup wg;
};

/* Everything at and under kid i closed? */
static bool
rc_kid_closed(struct race_cancel *r, int i)
{
	if (!sl_chan_closed(sl_ctx_done(r->kid[i])))
		return (false);
	for (int j = 0; j < RC_GRAND; j++)
		if (!sl_chan_closed(sl_ctx_done(r->grand[i][j])))
			return (false);
	return (true);
}

static void
rc_canceller(void *arg)
{
	struct race_cancel *r = arg;

	while (!atomic_load(&r->go))
		sl_yield();
	sl_ctx_cancel(r->root);
	if (!sl_chan_closed(sl_ctx_done(r->root)))
		atomic_fetch_add(&r->bad, 1);
	for (int i = 0; i < RC_KIDS; i++)
		if (!rc_kid_closed(r, i))
			atomic_fetch_add(&r->bad, 1);
	sl_waitgroup_done(&r->wg);
}

/* Watches the last child: the first marked, the last reached by the
 * closing (it was the first added). */
static void
rc_watcher(void *arg)
{
	struct race_cancel *r = arg;
	int                 last = RC_KIDS - 1;

	while (!atomic_load(&r->go))
		sl_yield();
	while (sl_ctx_err(r->kid[last]) == 0)
		sl_yield();
	if (!rc_kid_closed(r, last))
		atomic_fetch_add(&r->bad, 1);
	sl_waitgroup_done(&r->wg);
}

static void
body_race_cancel(void *arg)
{
	int rounds = (int) slt_scaled_min(300, 20);
	int bad = 0;

	(void) arg;
	for (int round = 0; round < rounds; round++) {
		struct race_cancel r;

		memset(&r, 0, sizeof(r));
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &r.root));
		for (int i = 0; i < RC_KIDS; i++) {
			SL_CHECK_OK(sl_ctx_with_cancel(r.root, &r.kid[i]));
			for (int j = 0; j < RC_GRAND; j++)
				SL_CHECK_OK(sl_ctx_with_cancel(r.kid[i],
				    &r.grand[i][j]));
		}
		sl_waitgroup_add(&r.wg, 3);
		SL_CHECK_OK(sl_go(rc_canceller, &r));
		SL_CHECK_OK(sl_go(rc_canceller, &r));
		SL_CHECK_OK(sl_go(rc_watcher, &r));
		atomic_store(&r.go, 1);
		sl_waitgroup_wait(&r.wg);
		bad += atomic_load(&r.bad);
		for (int i = 0; i < RC_KIDS; i++) {
			for (int j = 0; j < RC_GRAND; j++)
				sl_ctx_release(r.grand[i][j]);
			sl_ctx_release(r.kid[i]);
		}
		sl_ctx_release(r.root);
	}
	if (bad != 0)
		fprintf(stderr, "race_cancel: %d times a cancel returned or an "
		    "err was seen before the done channels closed\n", bad);
	SL_CHECK_EQ(bad, 0);
}

static void
test_cancel_race_closed(void **state)
{
	(void) state;
	slt_run_procs(2, body_race_cancel, NULL);
}

static void
body_keep_after(void *arg)
{
	sl_ctx **out = arg;

	SL_CHECK_EQ(sl_ctx_with_timeout(sl_ctx_background(),
	    30 * SL_MILLISECOND, out), 0);
}

/*
 * With no scheduler at all (the cmocka thread, before/after sl_main):
 * contexts still work, a deadline is noticed lazily by sl_ctx_err, and an
 * AfterFunc that cannot get a goroutine runs on the cancelling thread.
 */
static void
test_no_scheduler(void **state)
{
	atomic_int  n = 0;
	const char *msg;
	sl_ctx     *t = NULL, *c = NULL;

	assert_int_equal(sl_procs(), 0);
	assert_int_equal(sl_ctx_with_timeout(sl_ctx_background(),
	    5 * SL_MILLISECOND, &t), 0);
	assert_int_equal(sl_ctx_with_cancel(t, &c), 0);
	assert_int_equal(sl_ctx_after_func(c, count_fn, &n, NULL), 0);
	assert_int_equal(sl_ctx_err(c), 0);
	assert_int_equal(atomic_load(&n), 0);
	sl_sleep(20 * SL_MILLISECOND);
	assert_int_equal(sl_ctx_err(c), SL_EDEADLINE);   /* noticed here */
	assert_int_equal(sl_ctx_err(t), SL_EDEADLINE);
	assert_int_equal(sl_ctx_cause(c, &msg), SL_EDEADLINE);
	assert_string_equal(msg, sl_strerror(SL_EDEADLINE));
	assert_int_equal(sl_chan_tryrecv(sl_ctx_done(c), NULL), SL_ECLOSED);
	assert_int_equal(atomic_load(&n), 1);           /* ran inline */
	sl_ctx_release(t);
	sl_ctx_release(c);

	/* Noticed on a descendant, an inherited deadline cancels the
	 * context that owns it, with that one's cause. */
	assert_int_equal(sl_ctx_with_timeout_cause(sl_ctx_background(),
	    5 * SL_MILLISECOND, SL_ETIMEDOUT, "slow peer", &t), 0);
	assert_int_equal(sl_ctx_with_cancel(t, &c), 0);
	sl_sleep(20 * SL_MILLISECOND);
	assert_int_equal(sl_ctx_err(c), SL_EDEADLINE);
	assert_int_equal(sl_ctx_cause(c, &msg), SL_ETIMEDOUT);
	assert_string_equal(msg, "slow peer");
	assert_int_equal(sl_ctx_cause(t, &msg), SL_ETIMEDOUT);
	assert_string_equal(msg, "slow peer");
	sl_ctx_release(c);
	sl_ctx_release(t);

	/* A context made under a scheduler and kept after it stopped: its
	 * timer is gone with the scheduler, the deadline still counts. */
	slt_run(body_keep_after, &t);
	assert_int_equal(sl_ctx_err(t), 0);
	sl_sleep(40 * SL_MILLISECOND);
	assert_int_equal(sl_ctx_err(t), SL_EDEADLINE);
	sl_ctx_release(t);
}

/* ---- lifetimes ---------------------------------------------------------- */

static void
body_release_order(void *arg)
{
	sl_ctx *root = mk_cancel(sl_ctx_background());
	sl_ctx *mid  = mk_timeout(root, 3600 * SL_SECOND);
	sl_ctx *val  = mk_value(mid, &key_a, &key_b);
	sl_ctx *leaf = mk_cancel(val);

	/* Parents released first: the leaf keeps them, and they are not
	 * canceled (their last reference is the child's). */
	sl_ctx_release(root);
	sl_ctx_release(mid);
	sl_ctx_release(val);
	SL_CHECK_EQ(sl_ctx_err(leaf), 0);
	SL_CHECK(done_open(leaf));
	SL_CHECK(sl_ctx_value(leaf, &key_a) == &key_b);
	SL_CHECK(sl_ctx_deadline(leaf, NULL));

	/* Releasing the last reference cancels: watch through a retained
	 * done channel. */
	sl_chan *d = sl_chan_retain(sl_ctx_done(leaf));
	sl_ctx_release(leaf);
	SL_CHECK_EQ(sl_chan_tryrecv(d, NULL), SL_ECLOSED);
	sl_chan_release(d);

	/* retain adds an owner: one release does not cancel. */
	sl_ctx *c = mk_cancel(sl_ctx_background());
	SL_CHECK(sl_ctx_retain(c) == c);
	sl_ctx_release(c);
	SL_CHECK_EQ(sl_ctx_err(c), 0);
	d = sl_chan_retain(sl_ctx_done(c));
	sl_ctx_release(c);
	SL_CHECK_EQ(sl_chan_tryrecv(d, NULL), SL_ECLOSED);
	sl_chan_release(d);

	/* A deep chain freed from the leaf (iterative, no deep recursion). */
	sl_ctx *x = mk_cancel(sl_ctx_background());
	for (int i = 0; i < 2000; i++) {
		sl_ctx *y = i % 2 ? mk_cancel(x) : mk_value(x, &key_a, NULL);
		sl_ctx_release(x);
		x = y;
	}
	SL_CHECK_EQ(sl_ctx_err(x), 0);
	sl_ctx_release(x);

	/* A wide tree canceled at once. */
	sl_ctx *w = mk_cancel(sl_ctx_background());
	sl_ctx *kids[300];
	for (int i = 0; i < 300; i++)
		kids[i] = mk_cancel(i < 100 ? w : kids[i - 100]);
	sl_ctx_cancel(w);
	for (int i = 0; i < 300; i++) {
		SL_CHECK_EQ(sl_ctx_err(kids[i]), SL_ECANCELED);
		SL_CHECK(done_closed(kids[i]));
	}
	sl_ctx_release(w);
	for (int i = 0; i < 300; i++)
		sl_ctx_release(kids[i]);
}

static void
test_release_order(void **state)
{
	slt_run(body_release_order, NULL);
}

/* ---- stress: cancel parents while children are released ---------------- */

#define SKIDS 8

struct skid {
	sl_ctx       *ctx;   /* owned: released by the goroutine */
	sl_ctx       *extra; /* a grandchild or NULL, also released */
	sl_chan      *never;
	sl_waitgroup *wg;
	atomic_int   *ok;
	int           block; /* wait for cancellation first */
};

static void
skid_fn(void *arg)
{
	struct skid *k = arg;
	int          r;

	if (k->block) {
		r = sl_chan_recv_ctx(k->never, NULL,
		    k->extra != NULL ? k->extra : k->ctx,
		    sl_now() + 30 * SL_SECOND);
		SL_CHECK(r == SL_ECANCELED || r == SL_EDEADLINE);
		if (r == SL_ECANCELED || r == SL_EDEADLINE)
			atomic_fetch_add(k->ok, 1);
	} else {
		if (k->extra != NULL)
			sl_yield();
		r = sl_ctx_err(k->ctx);
		SL_CHECK(r == 0 || r == SL_ECANCELED || r == SL_EDEADLINE);
		atomic_fetch_add(k->ok, 1);
	}
	sl_ctx_release(k->extra);
	sl_ctx_release(k->ctx);
	sl_waitgroup_done(k->wg);
}

struct smaker {
	sl_ctx       *root;
	sl_waitgroup *wg;
	atomic_int   *ok;
};

/* Creates and drops children of root while root is being canceled. */
static void
smaker_fn(void *arg)
{
	struct smaker *m = arg;

	for (int i = 0; i < 6; i++) {
		sl_ctx *c = NULL, *g = NULL;
		if (sl_ctx_with_cancel(m->root, &c) != 0)
			continue;
		if (sl_ctx_with_timeout(c, (i % 3) * SL_MICROSECOND, &g) == 0) {
			int e = sl_ctx_err(g);
			SL_CHECK(e == 0 || e == SL_ECANCELED || e == SL_EDEADLINE);
		}
		if (i % 2)
			sl_ctx_release(c);
		sl_ctx_release(g);
		if (i % 2 == 0)
			sl_ctx_release(c);
		sl_yield();
	}
	atomic_fetch_add(m->ok, 1);
	sl_ctx_release(m->root);
	sl_waitgroup_done(m->wg);
}

struct skill {
	sl_ctx       *root;
	sl_waitgroup *wg;
	int           spins;
	int           cause;
};

static void
skill_fn(void *arg)
{
	struct skill *s = arg;

	for (int i = 0; i < s->spins; i++)
		sl_yield();
	if (s->cause)
		sl_ctx_cancel_cause(s->root, SL_ECONNSHUT, "stress");
	else
		sl_ctx_cancel(s->root);
	sl_ctx_release(s->root);
	sl_waitgroup_done(s->wg);
}

static void
body_stress(void *arg)
{
	int      iters = (int) slt_scaled(2000);
	sl_chan *never = sl_chan_make(0, 0);
	unsigned seed  = 12345;
	/* One WaitGroup for all rounds: the last sl_waitgroup_done may still
	 * be unlocking it when wait returns (see the report on waitgroup.c),
	 * so it must not be re-initialised while in use. */
	sl_waitgroup wg = SL_WAITGROUP_INIT;

	for (int it = 0; it < iters; it++) {
		atomic_int    ok = 0;
		struct skid   k[SKIDS];
		struct smaker m;
		struct skill  s[2];
		sl_ctx       *root = mk_cancel(sl_ctx_background());
		sl_chan      *done = NULL;

		for (int i = 0; i < SKIDS; i++) {
			seed = seed * 1103515245u + 12345u;
			k[i] = (struct skid){ .never = never, .wg = &wg,
			    .ok = &ok, .block = (seed >> 16) % 2 };
			switch (i % 4) {
			case 0:
				k[i].ctx = mk_cancel(root);
				break;
			case 1:
				k[i].ctx = mk_timeout(root,
				    (int64_t) ((seed >> 8) % 500) *
				    SL_MICROSECOND);
				break;
			case 2:
				k[i].ctx   = mk_value(root, &key_a, NULL);
				k[i].extra = mk_cancel(k[i].ctx);
				break;
			default:
				k[i].ctx   = mk_cancel(root);
				k[i].extra = mk_timeout(k[i].ctx, SL_SECOND);
				break;
			}
		}
		/* The maker and the cancellers own a reference each. */
		m = (struct smaker){ .root = sl_ctx_retain(root), .wg = &wg,
		    .ok = &ok };
		for (int j = 0; j < 2; j++)
			s[j] = (struct skill){ .root = sl_ctx_retain(root),
			    .wg = &wg,
			    .spins = (int) ((seed >> (4 + j)) % 4),
			    .cause = j };
		sl_waitgroup_add(&wg, SKIDS + 3);
		for (int i = 0; i < SKIDS; i++)
			SL_CHECK_EQ(sl_go(skid_fn, &k[i]), 0);
		SL_CHECK_EQ(sl_go(smaker_fn, &m), 0);
		SL_CHECK_EQ(sl_go(skill_fn, &s[0]), 0);
		SL_CHECK_EQ(sl_go(skill_fn, &s[1]), 0);
		/* Half the time main lets go of the root at once, racing the
		 * others (it then watches a retained done channel). */
		if (it % 2) {
			done = sl_chan_retain(sl_ctx_done(root));
			sl_ctx_release(root);
			root = NULL;
		}
		SL_CHECK_EQ(sl_waitgroup_wait_ctx(&wg, NULL,
		    sl_now() + 60 * SL_SECOND), 0);
		SL_CHECK_EQ(atomic_load(&ok), SKIDS + 1);
		if (root != NULL) {
			SL_CHECK_EQ(sl_ctx_err(root), SL_ECANCELED);
			int c = sl_ctx_cause(root, NULL);
			SL_CHECK(c == SL_ECANCELED || c == SL_ECONNSHUT);
			sl_ctx_release(root);
		} else {
			SL_CHECK_EQ(sl_chan_tryrecv(done, NULL), SL_ECLOSED);
			sl_chan_release(done);
		}
		if (atomic_load(slt_failures()) != 0)
			break;
	}
	sl_chan_release(never);
}

static void
test_stress(void **state)
{
	slt_run(body_stress, NULL);
}

/* ---- AfterFunc with no stack left ----------------------------------------- */

struct oom_af {
	sl_ctx  *ctx; /* the caller's reference, handed to fn */
	slt_ran  rec;
};

static void
oom_af_fn(void *arg)
{
	struct oom_af *a = arg;

	/* The last reference: that stops the deadline's timer, which, run
	 * on the worker that fired it, would wait for ever for itself. */
	if (sl_goid() != 0)
		sl_ctx_release(a->ctx);
	slt_ran_mark(&a->rec);
}

/* A deadline passes while every stack is taken: its AfterFunc is not run
 * on the worker whose timer cancelled the context, and one cancelled by
 * the main goroutine does not run there either; each runs once, in a
 * goroutine of its own, as soon as a stack is free.  Stopping a launched
 * one is too late, as in Go. */
static void
body_after_func_no_stack(void *arg)
{
	struct oom_af  a, b;
	sl_afterfunc  *bstop;
	slt_holders    h;
	uint64_t       me = sl_goid();

	(void) arg;
	slt_ran_init(&a.rec);
	slt_ran_init(&b.rec);
	SL_CHECK(slt_hold_stacks(&h, 100000) > 0);
	SL_CHECK_EQ(h.err, SL_ENOMEM);
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(), SL_MILLISECOND,
	    &a.ctx));
	SL_CHECK_OK(sl_ctx_after_func(a.ctx, oom_af_fn, &a, NULL));
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &b.ctx));
	SL_CHECK_OK(sl_ctx_after_func(b.ctx, oom_af_fn, &b, &bstop));
	sl_ctx_cancel(b.ctx);
	sl_sleep(30 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_ctx_err(a.ctx), SL_EDEADLINE);
	SL_CHECK_EQ(atomic_load(&a.rec.runs), 0);
	SL_CHECK_EQ(atomic_load(&b.rec.runs), 0);
	SL_CHECK(!sl_ctx_stop(bstop));

	slt_let_go(&h, 2);
	slt_ran_wait(&a.rec);
	slt_ran_wait(&b.rec);
	SL_CHECK(a.rec.goid != 0 && a.rec.goid != me);
	SL_CHECK(b.rec.goid != 0 && b.rec.goid != me);
	slt_let_all_go(&h);
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&a.rec.runs), 1);
	SL_CHECK_EQ(atomic_load(&b.rec.runs), 1);
	slt_ran_fini(&a.rec);
	slt_ran_fini(&b.rec);
}

static void
test_after_func_no_stack(void **state)
{
	sli_stack_max_slabs = 1;
	slt_run(body_after_func_no_stack, *state);
	sli_stack_max_slabs = 0;
}

/* ---- a deadline's timer behind a waiting canceller ------------------------ */

/*
 * A plain thread cancels r, whose many watchers it wakes under r's lock
 * and whose many children it then cancels: a long while in which r is
 * marked but its channel still open.  Meanwhile the main goroutine, on
 * the only worker, cancels r's parent p: it marks p and q, a child of p
 * with a 1 ms timeout, finds r marked by the thread and waits for it.  q's
 * timer then fires on that worker and finds q marked but not closed.  If
 * the main goroutine waited by yielding its worker, the timer's fn would
 * spin there for ever waiting for q, which only that goroutine closes.
 */
#define TQ_WATCHERS 2000

struct timer_queue {
	sl_ctx      *p, *r;
	sl_ctx     **kids;
	int          nkids;
	atomic_int   go;
	sl_waitgroup wg;
};

static void
tq_watcher(void *arg)
{
	struct timer_queue *t = arg;

	SL_CHECK_ERR(sl_sleep_ctx(t->r, 3600 * SL_SECOND), SL_ECANCELED);
	sl_waitgroup_done(&t->wg);
}

static void *
tq_thread(void *arg)
{
	struct timer_queue *t = arg;

	while (!atomic_load(&t->go))
		sched_yield();
	sl_ctx_cancel(t->r);
	return (NULL);
}

/* How many waits watch the cancelable context c. */
static int
tq_nwatchers(sl_ctx *c)
{
	int n = 0;

	sli_lock(&c->lock);
	for (sli_ctxwatch *cw = c->watchers; cw != NULL; cw = cw->next)
		n++;
	sli_unlock(&c->lock);
	return (n);
}

static void
body_timer_behind_canceller(void *arg)
{
	int rounds = 3;

	(void) arg;
	for (int round = 0; round < rounds; round++) {
		struct timer_queue t;
		pthread_t th;
		sl_ctx *q;

		memset(&t, 0, sizeof(t));
		t.nkids = (int) slt_scaled_min(100000, 20000);
		t.kids = calloc((size_t) t.nkids, sizeof(*t.kids));
		SL_CHECK(t.kids != NULL);
		if (t.kids == NULL)
			return;
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &t.p));
		SL_CHECK_OK(sl_ctx_with_cancel(t.p, &t.r));
		for (int i = 0; i < t.nkids; i++)
			SL_CHECK_OK(sl_ctx_with_cancel(t.r, &t.kids[i]));
		sl_waitgroup_add(&t.wg, TQ_WATCHERS);
		for (int i = 0; i < TQ_WATCHERS; i++)
			SL_CHECK_OK(sl_go(tq_watcher, &t));
		while (tq_nwatchers(t.r) < TQ_WATCHERS)
			sl_sleep(SL_MILLISECOND);
		SL_CHECK_EQ(pthread_create(&th, NULL, tq_thread, &t), 0);
		atomic_store(&t.go, 1);
		/* Not sl_yield: the thread is waking r's watchers, and they
		 * would all run first. */
		while (atomic_load(&t.r->err) == 0)
			sched_yield();
		SL_CHECK_OK(sl_ctx_with_timeout(t.p, SL_MILLISECOND, &q));
		sl_ctx_cancel(t.p);

		SL_CHECK_ERR(sl_ctx_err(t.p), SL_ECANCELED);
		SL_CHECK_ERR(sl_ctx_err(t.r), SL_ECANCELED);
		SL_CHECK(sl_chan_closed(sl_ctx_done(t.r)));
		SL_CHECK(sl_chan_closed(sl_ctx_done(t.kids[0])));
		SL_CHECK(sl_chan_closed(sl_ctx_done(q)));
		SL_CHECK_EQ(pthread_join(th, NULL), 0);
		sl_waitgroup_wait(&t.wg);
		sl_ctx_release(q);
		for (int i = 0; i < t.nkids; i++)
			sl_ctx_release(t.kids[i]);
		sl_ctx_release(t.r);
		sl_ctx_release(t.p);
		free(t.kids);
	}
}

/* In the child: a hang is killed by the alarm, not left to the suite. */
static void
timer_behind_canceller_child(void *arg)
{
	sl_opts o;
	int     rv;

	(void) arg;
	alarm(60);
	memset(&o, 0, sizeof(o));
	o.procs = 1;
	rv = sl_main_opts(&o, body_timer_behind_canceller, NULL);
	if (rv != 0 || atomic_load(slt_failures()) != 0) {
		fprintf(stderr, "sl_main returned %s, %d check(s) failed\n",
		    sl_errname(rv), atomic_load(slt_failures()));
		_exit(3);
	}
}

static void
test_timer_behind_canceller(void **state)
{
	slt_child res;
	char sbuf[128];

	(void) state;
	assert_int_equal(slt_fork(timer_behind_canceller_child, NULL, &res),
	    0);
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != SLT_CHILD_OK)
		fail_msg("child %s: %s", slt_status_str(res.status, sbuf,
		    sizeof(sbuf)), res.err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_background),
		cmocka_unit_test(test_tree_cancel),
		cmocka_unit_test(test_cancel_child),
		cmocka_unit_test(test_cause),
		cmocka_unit_test(test_deadline_fires),
		cmocka_unit_test(test_deadline_inherit),
		cmocka_unit_test(test_deadline_cause),
		cmocka_unit_test(test_without_cancel),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_after_func),
		cmocka_unit_test(test_after_func_no_stack),
		cmocka_unit_test(test_select_wake),
		cmocka_unit_test(test_interrupt),
		cmocka_unit_test(test_thread_cancel),
		cmocka_unit_test(test_no_scheduler),
		cmocka_unit_test(test_release_order),
		cmocka_unit_test(test_cancel_race_closed),
		cmocka_unit_test(test_timer_behind_canceller),
		cmocka_unit_test(test_stress),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
