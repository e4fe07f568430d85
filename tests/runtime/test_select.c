/*
 * test_select.c — select: uniform choice among ready cases (chi-square),
 * the default case (sl_select_try, deadline 0), deadlines, contexts,
 * mixed send and receive cases, closed channels reporting ok = false,
 * NULL cases, invalid cases, a channel appearing in several cases,
 * many goroutines selecting concurrently, and deadlines racing with
 * senders (no value lost or duplicated).
 */
#include "sltest.h"

/* Chi-square critical values at p = 1e-6 for 1 and 3 degrees of freedom:
 * a uniform choice fails once in a million runs (at p = 0.001, as these
 * were, a TSan run failed with 9766 against 10234), while a choice biased
 * by 3.5% or more among two cases over 20000 trials still fails (and
 * libdill's or neco's "first ready" fails by far). */
#define CHI2_DF1_P1E6 23.928
#define CHI2_DF3_P1E6 30.664

static double
chi_square(const long *counts, int k, long trials)
{
	double expect = (double) trials / k, x = 0.0;

	for (int i = 0; i < k; i++) {
		double d = (double) counts[i] - expect;

		x += d * d / expect;
	}
	return (x);
}

/* ---- fairness ----------------------------------------------------------- */

/* Two always-ready receive cases are chosen uniformly. */
static void
body_fairness_two(void *arg)
{
	long *counts = arg;
	sl_chan *a = sl_chan_make(sizeof(int), 1);
	sl_chan *b = sl_chan_make(sizeof(int), 1);
	long trials = slt_scaled_min(20000, 10000);
	int va = 1, vb = 2;

	for (long t = 0; t < trials; t++) {
		int got = 0, chosen = -1;
		sl_case cs[2] = { SL_CASE_RECV(a, &got), SL_CASE_RECV(b, &got) };

		if (sl_chan_len(a) == 0)
			SL_CHECK_OK(sl_chan_trysend(a, &va));
		if (sl_chan_len(b) == 0)
			SL_CHECK_OK(sl_chan_trysend(b, &vb));
		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		if (chosen < 0 || chosen > 1) {
			SL_CHECK(chosen == 0 || chosen == 1);
			break;
		}
		SL_CHECK(cs[chosen].ok);
		SL_CHECK_EQ(got, chosen + 1);
		counts[chosen]++;
	}
	counts[2] = trials;
	sl_chan_release(a);
	sl_chan_release(b);
}

static void
test_fairness_two(void **state)
{
	long counts[3] = { 0, 0, 0 };
	double x;

	(void) state;
	slt_run(body_fairness_two, counts);
	assert_int_equal(counts[0] + counts[1], counts[2]);
	x = chi_square(counts, 2, counts[2]);
	if (x > CHI2_DF1_P1E6)
		fail_msg("select not uniform: %ld vs %ld (chi2 %.2f)",
		    counts[0], counts[1], x);
}

/* Four ready cases, two receives and two sends, are chosen uniformly; the
 * chosen case's operation (and only it) happens. */
static void
body_fairness_four(void *arg)
{
	long *counts = arg;
	sl_chan *ch[4];
	long trials = slt_scaled_min(20000, 10000);

	for (int i = 0; i < 4; i++)
		ch[i] = sl_chan_make(sizeof(int), 1);
	for (long t = 0; t < trials; t++) {
		int in0 = -1, in1 = -1, out2 = 20, out3 = 30, chosen = -1;
		int v = 10;
		sl_case cs[4] = {
			SL_CASE_RECV(ch[0], &in0), SL_CASE_RECV(ch[1], &in1),
			SL_CASE_SEND(ch[2], &out2), SL_CASE_SEND(ch[3], &out3),
		};

		/* receive channels full, send channels empty */
		if (sl_chan_len(ch[0]) == 0)
			SL_CHECK_OK(sl_chan_trysend(ch[0], &v));
		v = 11;
		if (sl_chan_len(ch[1]) == 0)
			SL_CHECK_OK(sl_chan_trysend(ch[1], &v));
		if (sl_chan_len(ch[2]) == 1)
			SL_CHECK_OK(sl_chan_tryrecv(ch[2], &v));
		if (sl_chan_len(ch[3]) == 1)
			SL_CHECK_OK(sl_chan_tryrecv(ch[3], &v));

		SL_CHECK_OK(sl_select(cs, 4, NULL, SL_FOREVER, &chosen));
		if (chosen < 0 || chosen > 3) {
			SL_CHECK(chosen >= 0 && chosen <= 3);
			break;
		}
		counts[chosen]++;
		SL_CHECK(cs[chosen].ok);
		SL_CHECK_EQ(sl_chan_len(ch[0]), chosen == 0 ? 0 : 1);
		SL_CHECK_EQ(sl_chan_len(ch[1]), chosen == 1 ? 0 : 1);
		SL_CHECK_EQ(sl_chan_len(ch[2]), chosen == 2 ? 1 : 0);
		SL_CHECK_EQ(sl_chan_len(ch[3]), chosen == 3 ? 1 : 0);
		if (chosen == 0)
			SL_CHECK_EQ(in0, 10);
		if (chosen == 1)
			SL_CHECK_EQ(in1, 11);
		if (chosen == 2) {
			SL_CHECK_OK(sl_chan_recv(ch[2], &v));
			SL_CHECK_EQ(v, 20);
		}
		if (chosen == 3) {
			SL_CHECK_OK(sl_chan_recv(ch[3], &v));
			SL_CHECK_EQ(v, 30);
		}
	}
	counts[4] = trials;
	for (int i = 0; i < 4; i++)
		sl_chan_release(ch[i]);
}

static void
test_fairness_four(void **state)
{
	long counts[5] = { 0 };
	double x;

	(void) state;
	slt_run(body_fairness_four, counts);
	assert_int_equal(counts[0] + counts[1] + counts[2] + counts[3],
	    counts[4]);
	x = chi_square(counts, 4, counts[4]);
	if (x > CHI2_DF3_P1E6)
		fail_msg("select not uniform: %ld %ld %ld %ld (chi2 %.2f)",
		    counts[0], counts[1], counts[2], counts[3], x);
}

/* ---- default case ------------------------------------------------------- */

/* With nothing ready, sl_select_try and sl_select with deadline 0 return
 * SL_EAGAIN at once and perform nothing; with something ready they do it. */
static void
body_default_case(void *arg)
{
	sl_chan *e1 = sl_chan_make(sizeof(int), 0);
	sl_chan *e2 = sl_chan_make(sizeof(int), 2);
	sl_chan *full = sl_chan_make(sizeof(int), 1);
	int v = 5, in = -1, chosen = -1;
	int64_t t0;

	(void) arg;
	SL_CHECK_OK(sl_chan_send(full, &v));
	{
		sl_case cs[4] = {
			SL_CASE_RECV(e1, &in), SL_CASE_RECV(e2, &in),
			SL_CASE_SEND(full, &v), SL_CASE_SEND(e1, &v),
		};

		t0 = sl_now();
		for (int i = 0; i < 100; i++) {
			SL_CHECK_ERR(sl_select_try(cs, 4, &chosen), SL_EAGAIN);
			SL_CHECK_ERR(sl_select(cs, 4, NULL, 0, &chosen),
			    SL_EAGAIN);
		}
		SL_CHECK(sl_now() - t0 < 2 * SL_SECOND);
		SL_CHECK_EQ(in, -1);
		SL_CHECK_EQ(sl_chan_len(full), 1);
		SL_CHECK_EQ(sl_chan_len(e2), 0);
	}
	{
		sl_case cs[2] = { SL_CASE_RECV(e1, &in),
			SL_CASE_RECV(full, &in) };

		SL_CHECK_OK(sl_select_try(cs, 2, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK_EQ(in, 5);
		SL_CHECK(cs[1].ok);
		SL_CHECK_EQ(sl_chan_len(full), 0);
	}
	{
		sl_case cs[1] = { SL_CASE_SEND(e2, &v) };

		SL_CHECK_OK(sl_select(cs, 1, NULL, 0, &chosen));
		SL_CHECK_EQ(chosen, 0);
		SL_CHECK_EQ(sl_chan_len(e2), 1);
	}
	/* no cases at all */
	SL_CHECK_ERR(sl_select_try(NULL, 0, &chosen), SL_EAGAIN);
	sl_chan_release(e1);
	sl_chan_release(e2);
	sl_chan_release(full);
}

static void
test_default_case(void **state)
{
	slt_run(body_default_case, *state);
}

/* ---- deadline ------------------------------------------------------------ */

static void
body_deadline(void *arg)
{
	sl_chan *a = sl_chan_make(sizeof(int), 0);
	sl_chan *b = sl_chan_make(sizeof(int), 1);
	int v = 0, chosen = -1;
	int64_t t0, dl;
	sl_case cs[3] = { SL_CASE_RECV(a, &v), SL_CASE_RECV(b, &v),
		SL_CASE_RECV(NULL, &v) };

	(void) arg;
	for (int64_t ms = 1; ms <= 50; ms *= 7) {
		t0 = sl_now();
		dl = t0 + ms * SL_MILLISECOND;
		SL_CHECK_ERR(sl_select(cs, 3, NULL, dl, &chosen),
		    SL_ETIMEDOUT);
		SL_CHECK(sl_now() >= dl);
		SL_CHECK(sl_now() - t0 < 5 * SL_SECOND);
	}
	/* no cases: a plain timed wait */
	dl = sl_now() + 10 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_select(NULL, 0, NULL, dl, &chosen), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);
	sl_chan_release(a);
	sl_chan_release(b);
}

static void
test_deadline(void **state)
{
	slt_run(body_deadline, *state);
}

/* ---- context ----------------------------------------------------------- */

struct canceller {
	sl_ctx *ctx;
	int64_t after;
};

static void
cancel_later(void *arg)
{
	struct canceller *c = arg;

	sl_sleep(c->after);
	sl_ctx_cancel(c->ctx);
	sl_ctx_release(c->ctx); /* taken for us by the spawner */
}

/* A context done before or during the select ends it with its error; the
 * context's done channel also works as an ordinary case. */
static void
body_ctx(void *arg)
{
	sl_chan *a = sl_chan_make(sizeof(int), 0);
	sl_chan *ready = sl_chan_make(sizeof(int), 1);
	struct canceller cn;
	sl_ctx *ctx;
	int v = 1, chosen = -1;
	int64_t t0;

	(void) arg;
	/* canceled while waiting */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	cn.ctx = sl_ctx_retain(ctx);
	cn.after = 20 * SL_MILLISECOND;
	t0 = sl_now(); /* before the canceller can start its sleep */
	SL_CHECK_OK(sl_go(cancel_later, &cn));
	{
		sl_case cs[2] = { SL_CASE_RECV(a, &v), SL_CASE_SEND(a, &v) };

		SL_CHECK_ERR(sl_select(cs, 2, ctx, SL_FOREVER, &chosen),
		    SL_ECANCELED);
		SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
		SL_CHECK(sl_now() - t0 < 10 * SL_SECOND);
	}
	/* already canceled: checked first, nothing performed */
	SL_CHECK_OK(sl_chan_send(ready, &v));
	{
		sl_case cs[1] = { SL_CASE_RECV(ready, &v) };

		SL_CHECK_ERR(sl_select(cs, 1, ctx, SL_FOREVER, &chosen),
		    SL_ECANCELED);
		SL_CHECK_EQ(sl_chan_len(ready), 1);
	}
	/* the done channel as a case: closed, so ok = false */
	{
		sl_case cs[2] = { SL_CASE_RECV(a, &v),
			SL_CASE_RECV(sl_ctx_done(ctx), NULL) };

		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(!cs[1].ok);
	}
	sl_ctx_release(ctx);

	/* a deadline context reports SL_EDEADLINE */
	t0 = sl_now(); /* before: the timeout runs from creation */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    15 * SL_MILLISECOND, &ctx));
	{
		sl_case cs[1] = { SL_CASE_RECV(a, &v) };

		SL_CHECK_ERR(sl_select(cs, 1, ctx, SL_FOREVER, &chosen),
		    SL_EDEADLINE);
		SL_CHECK(sl_now() - t0 >= 15 * SL_MILLISECOND);
	}
	sl_ctx_release(ctx);
	sl_chan_release(a);
	sl_chan_release(ready);
}

static void
test_ctx(void **state)
{
	slt_run(body_ctx, *state);
}

/* ---- send and receive mixed ----------------------------------------------- */

enum { MIX_ROUNDS = 1000 };

struct mix {
	sl_chan *out;   /* the selector sends here */
	sl_chan *in;    /* the selector receives here */
	int      sent;  /* values sent by the selector */
	int      recvd; /* values received by the selector */
	long     sum;   /* of values received by the selector */
};

static void
mix_selector(void *arg)
{
	struct mix *m = arg;
	int next = 0, in = 0;

	for (int r = 0; r < 2 * MIX_ROUNDS; r++) {
		int chosen = -1, out = next;
		sl_case cs[2] = { SL_CASE_SEND(m->out, &out),
			SL_CASE_RECV(m->in, &in) };

		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK(cs[chosen].ok);
		if (chosen == 0) {
			m->sent++;
			next++;
		} else {
			m->recvd++;
			m->sum += in;
		}
	}
}

/* One goroutine blocks in a select with a send and a receive case; the
 * other side alternately receives and sends.  Each round completes exactly
 * the case the partner matched, with the right values. */
static void
body_send_recv_mix(void *arg)
{
	struct mix m;
	int v;
	long want = 0;

	(void) arg;
	memset(&m, 0, sizeof(m));
	m.out = sl_chan_make(sizeof(int), 0);
	m.in = sl_chan_make(sizeof(int), 0);
	SL_CHECK_OK(sl_go(mix_selector, &m));
	for (int r = 0; r < MIX_ROUNDS; r++) {
		SL_CHECK_OK(sl_chan_recv(m.out, &v));
		SL_CHECK_EQ(v, r);
		v = 1000 + r;
		want += v;
		SL_CHECK_OK(sl_chan_send(m.in, &v));
	}
	/* the selector is done after the last send completed */
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(m.sent, MIX_ROUNDS);
	SL_CHECK_EQ(m.recvd, MIX_ROUNDS);
	SL_CHECK_EQ(m.sum, want);
	sl_chan_release(m.out);
	sl_chan_release(m.in);
}

static void
test_send_recv_mix(void **state)
{
	slt_run(body_send_recv_mix, *state);
}

/* ---- closed channels ------------------------------------------------------ */

struct closer {
	sl_chan *ch;
	int64_t  after;
};

static void
close_later(void *arg)
{
	struct closer *c = arg;

	sl_sleep(c->after);
	SL_CHECK_OK(sl_chan_close(c->ch));
	sl_chan_release(c->ch); /* taken for us by the spawner */
}

/* A closed channel is a ready case completing with ok = false; a value
 * received normally has ok = true; a blocked select is woken by close. */
static void
body_closed_ok(void *arg)
{
	sl_chan *open = sl_chan_make(sizeof(int), 0);
	sl_chan *data = sl_chan_make(sizeof(int), 1);
	sl_chan *shut = sl_chan_make(sizeof(int), 0);
	struct closer cl;
	int v = 4, in = -1, chosen = -1;

	(void) arg;
	SL_CHECK_OK(sl_chan_send(data, &v));
	{
		sl_case cs[2] = { SL_CASE_RECV(open, &in),
			SL_CASE_RECV(data, &in) };

		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(cs[1].ok);
		SL_CHECK_EQ(in, 4);
	}
	/* buffered data is still delivered after close, then ok = false */
	SL_CHECK_OK(sl_chan_send(data, &v));
	SL_CHECK_OK(sl_chan_close(data));
	{
		sl_case cs[2] = { SL_CASE_RECV(open, &in),
			SL_CASE_RECV(data, &in) };

		in = -1;
		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(cs[1].ok);
		SL_CHECK_EQ(in, 4);
		cs[1].ok = true;
		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(!cs[1].ok);
	}
	/* a send case on a closed channel: ok = false, nothing sent */
	{
		sl_case cs[2] = { SL_CASE_RECV(open, &in),
			SL_CASE_SEND(data, &v) };

		cs[1].ok = true;
		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(!cs[1].ok);
		SL_CHECK_EQ(sl_chan_len(data), 0);
	}
	/* blocked, then woken by close */
	cl.ch = sl_chan_retain(shut);
	cl.after = 10 * SL_MILLISECOND;
	SL_CHECK_OK(sl_go(close_later, &cl));
	{
		sl_case cs[3] = { SL_CASE_RECV(open, &in),
			SL_CASE_RECV(shut, &in), SL_CASE_RECV(NULL, &in) };

		cs[1].ok = true;
		SL_CHECK_OK(sl_select(cs, 3, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(!cs[1].ok);
	}
	sl_chan_release(open);
	sl_chan_release(data);
	sl_chan_release(shut);
}

static void
test_closed_ok(void **state)
{
	slt_run(body_closed_ok, *state);
}

/* ---- NULL cases ---------------------------------------------------------- */

/* A NULL case is never chosen, even among ready ones, and a select of only
 * NULL cases behaves like one with nothing ready. */
static void
body_nil_cases(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);
	int v = 1, chosen = -1;
	sl_case cs[4] = { SL_CASE_RECV(NULL, &v), SL_CASE_SEND(NULL, &v),
		SL_CASE_RECV(ch, &v), SL_CASE_RECV(NULL, NULL) };
	int64_t dl;

	(void) arg;
	for (int i = 0; i < 1000; i++) {
		v = i;
		SL_CHECK_OK(sl_chan_send(ch, &v));
		v = -1;
		SL_CHECK_OK(sl_select(cs, 4, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 2);
		SL_CHECK_EQ(v, i);
		if (chosen != 2)
			break;
	}
	SL_CHECK_ERR(sl_select_try(cs, 2, &chosen), SL_EAGAIN);
	dl = sl_now() + 10 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_select(cs, 2, NULL, dl, &chosen), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);
	sl_chan_release(ch);
}

static void
test_nil_cases(void **state)
{
	slt_run(body_nil_cases, *state);
}

/* ---- invalid case -------------------------------------------------------- */

static void
body_invalid(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);
	int v = 0, chosen = -1;
	sl_case cs[2] = { SL_CASE_RECV(ch, &v), SL_CASE_RECV(ch, &v) };

	(void) arg;
	cs[1].op = 7;
	SL_CHECK_ERR(sl_select(cs, 2, NULL, SL_FOREVER, &chosen), SL_EINVAL);
	SL_CHECK_ERR(sl_select_try(cs, 2, &chosen), SL_EINVAL);

	/* A send from NULL on an int channel is refused before anything
	 * moves, whether the receive beside it is ready (ch full) or the
	 * send itself (ch empty).  On a zero-size channel it is the usual
	 * case. */
	SL_CHECK_OK(sl_chan_send(ch, &v));
	cs[1] = SL_CASE_SEND(ch, NULL);
	SL_CHECK_ERR(sl_select(cs, 2, NULL, SL_FOREVER, &chosen), SL_EINVAL);
	SL_CHECK_EQ(chosen, -1);
	SL_CHECK_EQ(sl_chan_len(ch), 1);
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK_ERR(sl_select(cs, 2, NULL, SL_FOREVER, &chosen), SL_EINVAL);
	SL_CHECK_EQ(chosen, -1);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	sl_chan *sig = sl_chan_make(0, 1);
	cs[0] = SL_CASE_SEND(sig, NULL);
	SL_CHECK_OK(sl_select(cs, 1, NULL, SL_FOREVER, &chosen));
	SL_CHECK_EQ(chosen, 0);
	SL_CHECK_EQ(sl_chan_len(sig), 1);
	sl_chan_release(sig);
	sl_chan_release(ch);
}

static void
test_invalid(void **state)
{
	slt_run(body_invalid, *state);
}

/* ---- one channel in several cases ----------------------------------------- */

/* A select may name the same channel twice (no self-deadlock); a select
 * cannot rendezvous with itself on an unbuffered channel. */
static void
body_same_channel(void *arg)
{
	sl_chan *un = sl_chan_make(sizeof(int), 0);
	sl_chan *buf = sl_chan_make(sizeof(int), 1);
	int v = 3, in = -1, chosen = -1;
	long hits[2] = { 0, 0 };
	int64_t dl;

	(void) arg;
	{
		sl_case cs[2] = { SL_CASE_RECV(un, &in), SL_CASE_SEND(un, &v) };

		dl = sl_now() + 10 * SL_MILLISECOND;
		SL_CHECK_ERR(sl_select(cs, 2, NULL, dl, &chosen),
		    SL_ETIMEDOUT);
		SL_CHECK_EQ(in, -1);
	}
	for (int i = 0; i < 400; i++) {
		sl_case cs[2] = { SL_CASE_RECV(buf, &in),
			SL_CASE_RECV(buf, &in) };

		SL_CHECK_OK(sl_chan_send(buf, &v));
		chosen = -1;
		SL_CHECK_OK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK(chosen == 0 || chosen == 1);
		if (chosen == 0 || chosen == 1)
			hits[chosen]++;
		SL_CHECK_EQ(sl_chan_len(buf), 0);
	}
	/* both duplicates get picked sometimes (p of failure ~ 2^-399) */
	SL_CHECK(hits[0] > 0 && hits[1] > 0);
	sl_chan_release(un);
	sl_chan_release(buf);
}

static void
test_same_channel(void **state)
{
	slt_run(body_same_channel, *state);
}

/* ---- many selectors ------------------------------------------------------ */

enum { MS_SEL = 6, MS_PROD = 3 };

struct msel {
	sl_chan     *src[2];  /* producers send here */
	sl_chan     *quit;    /* closed when producers are done */
	int          per;     /* values per producer */
	atomic_llong sum;
	atomic_long  count;
	sl_waitgroup prod, sel;
};

struct mp_arg {
	struct msel *m;
	int          id;
};

static void
ms_producer(void *arg)
{
	struct mp_arg *a = arg;

	for (int i = 0; i < a->m->per; i++) {
		int v = a->id * a->m->per + i;

		SL_CHECK_OK(sl_chan_send(a->m->src[i & 1], &v));
	}
	sl_waitgroup_done(&a->m->prod);
}

static void
ms_selector(void *arg)
{
	struct msel *m = arg;
	int v;

	for (;;) {
		int chosen = -1;
		sl_case cs[3] = { SL_CASE_RECV(m->src[0], &v),
			SL_CASE_RECV(m->src[1], &v),
			SL_CASE_RECV(m->quit, NULL) };

		SL_CHECK_OK(sl_select(cs, 3, NULL, SL_FOREVER, &chosen));
		if (chosen == 2 || chosen < 0)
			break;
		SL_CHECK(cs[chosen].ok);
		atomic_fetch_add(&m->sum, v);
		atomic_fetch_add(&m->count, 1);
	}
	sl_waitgroup_done(&m->sel);
}

/* Several goroutines select over shared channels while several producers
 * feed them: every value is received exactly once. */
static void
body_many_selectors(void *arg)
{
	struct msel m;
	struct mp_arg a[MS_PROD];
	long long total, want;

	(void) arg;
	memset(&m, 0, sizeof(m));
	m.src[0] = sl_chan_make(sizeof(int), 0);
	m.src[1] = sl_chan_make(sizeof(int), 4);
	m.quit = sl_chan_make(0, 0);
	m.per = (int) slt_scaled_min(4000, 40);
	total = (long long) MS_PROD * m.per;
	want = total * (total - 1) / 2;
	sl_waitgroup_add(&m.prod, MS_PROD);
	sl_waitgroup_add(&m.sel, MS_SEL);
	for (int i = 0; i < MS_SEL; i++)
		SL_CHECK_OK(sl_go(ms_selector, &m));
	for (int i = 0; i < MS_PROD; i++) {
		a[i].m = &m;
		a[i].id = i;
		SL_CHECK_OK(sl_go(ms_producer, &a[i]));
	}
	sl_waitgroup_wait(&m.prod);
	/* all unbuffered sends completed; drain the buffered one */
	while (sl_chan_len(m.src[1]) > 0)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(sl_chan_close(m.quit));
	sl_waitgroup_wait(&m.sel);
	SL_CHECK_EQ(atomic_load(&m.count), total);
	SL_CHECK_EQ(atomic_load(&m.sum), want);
	sl_chan_release(m.src[0]);
	sl_chan_release(m.src[1]);
	sl_chan_release(m.quit);
}

static void
test_many_selectors(void **state)
{
	slt_run(body_many_selectors, *state);
}

/* ---- deadlines racing with senders --------------------------------------- */

struct race {
	sl_chan     *ch;
	int          n;
	atomic_llong sent_sum;
	atomic_int   sent;
	sl_waitgroup wg;
};

static void
race_sender(void *arg)
{
	struct race *r = arg;

	for (int i = 1; i <= r->n; i++) {
		/* half blocking sends, half that may time out themselves */
		int64_t dl = (i & 1) ? SL_FOREVER :
		    sl_now() + (i % 7) * 10 * SL_MICROSECOND;

		if (sl_chan_send_ctx(r->ch, &i, NULL, dl) == 0) {
			atomic_fetch_add(&r->sent, 1);
			atomic_fetch_add(&r->sent_sum, i);
		}
		if ((i & 15) == 0)
			sl_yield();
	}
	sl_waitgroup_done(&r->wg);
}

/* A receiver selecting with tiny deadlines races senders whose sends may
 * also time out: every send that succeeded is received exactly once and
 * nothing else is; timeouts never lose or duplicate a value. */
static void
body_deadline_race(void *arg)
{
	struct race r;
	long long got_sum = 0;
	int got = 0, timeouts = 0;
	uint64_t rng = 88172645463325252ULL;

	(void) arg;
	memset(&r, 0, sizeof(r));
	r.ch = sl_chan_make(sizeof(int), 0);
	r.n = (int) slt_scaled_min(20000, 400);
	sl_waitgroup_add(&r.wg, 2);
	SL_CHECK_OK(sl_go(race_sender, &r));
	SL_CHECK_OK(sl_go(race_sender, &r));
	for (;;) {
		int v = 0, chosen = -1, rv;
		sl_case cs[1] = { SL_CASE_RECV(r.ch, &v) };

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		rv = sl_select(cs, 1, NULL,
		    sl_now() + (int64_t) (rng % 50) * SL_MICROSECOND, &chosen);
		if (rv == 0) {
			SL_CHECK_EQ(chosen, 0);
			SL_CHECK(cs[0].ok);
			got++;
			got_sum += v;
		} else {
			SL_CHECK_ERR(rv, SL_ETIMEDOUT);
			timeouts++;
			/* both senders done and nothing more can come? */
			if (sl_numgoroutine() == 1)
				break;
		}
	}
	sl_waitgroup_wait(&r.wg);
	printf("deadline race: %d received of %d attempts, %d timeouts\n",
	    got, 2 * r.n, timeouts);
	SL_CHECK_EQ(got, atomic_load(&r.sent));
	SL_CHECK_EQ(got_sum, atomic_load(&r.sent_sum));
	/* the blocking half always gets through */
	SL_CHECK(got >= r.n);
	SL_CHECK(timeouts > 0);
	sl_chan_release(r.ch);
}

static void
test_deadline_race(void **state)
{
	slt_run(body_deadline_race, *state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fairness_two),
		cmocka_unit_test(test_fairness_four),
		cmocka_unit_test(test_default_case),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_ctx),
		cmocka_unit_test(test_send_recv_mix),
		cmocka_unit_test(test_closed_ok),
		cmocka_unit_test(test_nil_cases),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_same_channel),
		cmocka_unit_test(test_many_selectors),
		cmocka_unit_test(test_deadline_race),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
