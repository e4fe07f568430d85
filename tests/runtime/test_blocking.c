/*
 * test_blocking.c — sl_blocking: the function runs on another thread,
 * exactly once, while other goroutines keep running (even with a single
 * worker); its effects are visible to the caller afterwards; many
 * concurrent calls all complete; below the pool's size no call waits for
 * another to return; it may use channels (as a plain thread);
 * and outside goroutines it simply calls the function.  sl_blocking_ctx
 * withdraws a call still queued for a thread when its context ends or its
 * deadline passes (fn never runs), and waits for one already running.
 * Calls of a fn that have been short run on the caller's own worker
 * thread when another worker is free (never with one worker, never a fn
 * seen taking long), and such a call that blocks leaves the other worker
 * running goroutines, including those it readies or starts itself.
 */
#include <pthread.h>

#include "sltest.h"
#include "sched/sched.h" /* sli_sched_abandoned */

/* ---- runs elsewhere, exactly once ---------------------------------------- */

struct where {
	pthread_t thread;
	int       calls;
	int       data[1024];
};

static void
record_thread(void *arg)
{
	struct where *w = arg;

	w->thread = slt_thread();
	w->calls++;
	for (int i = 0; i < 1024; i++)
		w->data[i] = i * 3;
}

/* fn runs once, on a thread other than the calling worker (a fn not
 * called before in this run goes to the pool), and what it wrote is
 * visible to the caller afterwards. */
static void
body_other_thread(void *arg)
{
	struct where w;
	pthread_t me = slt_thread();
	int bad = 0;

	(void) arg;
	memset(&w, 0, sizeof(w));
	SL_CHECK_OK(sl_blocking(record_thread, &w));
	SL_CHECK_EQ(w.calls, 1);
	SL_CHECK(!pthread_equal(w.thread, me));
	SL_CHECK(!pthread_equal(w.thread, slt_thread()));
	for (int i = 0; i < 1024; i++)
		bad += w.data[i] != i * 3;
	SL_CHECK_EQ(bad, 0);
	/* and again (inline or pooled: test_short_inline tells which) */
	memset(w.data, 0, sizeof(w.data));
	SL_CHECK_OK(sl_blocking(record_thread, &w));
	SL_CHECK_EQ(w.calls, 2);
	for (int i = 0; i < 1024; i++)
		bad += w.data[i] != i * 3;
	SL_CHECK_EQ(bad, 0);
}

static void
test_other_thread(void **state)
{
	slt_run(body_other_thread, *state);
}

/* ---- others keep running ------------------------------------------------- */

struct tick {
	atomic_int stop;
	atomic_int ticks;
};

static void
ticker(void *arg)
{
	struct tick *t = arg;

	while (!atomic_load(&t->stop)) {
		atomic_fetch_add(&t->ticks, 1);
		sl_sleep(SL_MILLISECOND);
	}
}

static void
sleep_100ms(void *arg)
{
	(void) arg;
	usleep(100000);
}

/* While one goroutine sits in a 100 ms blocking call, a ticking goroutine
 * keeps running on the (single) worker. */
static void
body_others_run(void *arg)
{
	struct tick t;
	int before, after;
	int64_t t0;

	(void) arg;
	memset(&t, 0, sizeof(t));
	SL_CHECK_OK(sl_go(ticker, &t));
	sl_sleep(2 * SL_MILLISECOND);
	before = atomic_load(&t.ticks);
	t0 = sl_now();
	SL_CHECK_OK(sl_blocking(sleep_100ms, NULL));
	SL_CHECK(sl_now() - t0 >= 100 * SL_MILLISECOND);
	after = atomic_load(&t.ticks);
	atomic_store(&t.stop, 1);
	SL_CHECK(after > before);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
}

static void
test_others_run(void **state)
{
	slt_run_procs(1, body_others_run, *state);
	slt_run_procs(2, body_others_run, *state);
}

/* ---- many concurrent calls ------------------------------------------------ */

struct many {
	atomic_int   done;
	sl_waitgroup wg;
};

static void
short_call(void *arg)
{
	struct many *m = arg;

	usleep(5000);
	atomic_fetch_add(&m->done, 1);
}

static void
caller(void *arg)
{
	struct many *m = arg;

	SL_CHECK_OK(sl_blocking(short_call, m));
	sl_waitgroup_done(&m->wg);
}

/* 64 goroutines each make a blocking call: all complete exactly once. */
static void
body_many_calls(void *arg)
{
	struct many m;

	(void) arg;
	memset(&m, 0, sizeof(m));
	sl_waitgroup_add(&m.wg, 64);
	for (int i = 0; i < 64; i++)
		SL_CHECK_OK(sl_go(caller, &m));
	sl_waitgroup_wait(&m.wg);
	SL_CHECK_EQ(atomic_load(&m.done), 64);
}

static void
test_many_calls(void **state)
{
	slt_run(body_many_calls, *state);
}

/* ---- calls that depend on each other ------------------------------------- */

struct pair {
	int          fd[2];  /* a pipe: one call reads it, the other writes */
	sl_waitgroup wg;
};

static void
pair_read(void *arg)
{
	struct pair *p = arg;
	char b;

	while (read(p->fd[0], &b, 1) < 0 && errno == EINTR)
		;
}

static void
pair_write(void *arg)
{
	struct pair *p = arg;
	char b = 'x';

	while (write(p->fd[1], &b, 1) < 0 && errno == EINTR)
		;
}

static void
pair_reader(void *arg)
{
	struct pair *p = arg;

	SL_CHECK_OK(sl_blocking(pair_read, p));
	sl_waitgroup_done(&p->wg);
}

static void
pair_writer(void *arg)
{
	struct pair *p = arg;

	SL_CHECK_OK(sl_blocking(pair_write, p));
	sl_waitgroup_done(&p->wg);
}

static void
pair_nop(void *arg)
{
	(void) arg;
}

static int pair_stuck; /* rounds that hung */

/* Two calls made back to back while the pool has one idle thread, the
 * first a pipe read that only the second's write ends: below the pool's
 * 32 threads neither may wait for the other.  (The pool used to count a
 * thread signalled for the first call as still idle and queue the second
 * behind it: a deadlock in nearly every round with 2 CPUs.)  A round
 * that hangs is ended by hand after 2 s and counted. */
static void
body_dependent_calls(void *arg)
{
	struct pair p;

	(void) arg;
	memset(&p, 0, sizeof(p));
	SL_CHECK_OK(sl_blocking(pair_nop, NULL)); /* a fresh pool: 1 thread */
	sl_sleep(2 * SL_MILLISECOND);             /* idle */
	if (pipe(p.fd) != 0) {
		SL_CHECK(!"pipe");
		return;
	}
	sl_waitgroup_add(&p.wg, 2);
	SL_CHECK_OK(sl_go(pair_reader, &p));
	SL_CHECK_OK(sl_go(pair_writer, &p));
	if (sl_waitgroup_wait_ctx(&p.wg, NULL, sl_now() + 2 * SL_SECOND) !=
	    0) {
		pair_stuck++;
		pair_write(&p); /* unblock the reader */
		sl_waitgroup_wait(&p.wg);
		pair_read(&p);  /* and take the writer's byte */
	}
	close(p.fd[0]);
	close(p.fd[1]);
}

static void
test_dependent_calls(void **state)
{
	pair_stuck = 0;
	for (int round = 0; round < 10; round++) {
		slt_run_procs(1, body_dependent_calls, *state);
		slt_run_procs(2, body_dependent_calls, *state);
	}
	assert_int_equal(pair_stuck, 0);
}

/* ---- channels from inside a blocking call --------------------------------- */

struct feed {
	sl_chan *ch;
	int      n;
};

static void
feed_channel(void *arg)
{
	struct feed *f = arg;

	for (int i = 1; i <= f->n; i++)
		SL_CHECK_OK(sl_chan_send(f->ch, &i));
	SL_CHECK_OK(sl_chan_close(f->ch));
}

static void
feeder(void *arg)
{
	struct feed *f = arg;

	SL_CHECK_OK(sl_blocking(feed_channel, f));
	sl_chan_release(f->ch); /* taken for us by the spawner */
}

/* A blocking call may send on a channel (as a plain thread) to a goroutine
 * receiving meanwhile. */
static void
body_channels_inside(void *arg)
{
	struct feed f;
	long sum = 0;
	int v, n = 0;

	(void) arg;
	f.ch = sl_chan_make(sizeof(int), 0);
	f.n = 1000;
	sl_chan_retain(f.ch);
	SL_CHECK_OK(sl_go(feeder, &f));
	while (sl_chan_recv(f.ch, &v) == 0) {
		sum += v;
		n++;
	}
	SL_CHECK_EQ(n, 1000);
	SL_CHECK_EQ(sum, 1000L * 1001 / 2);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	sl_chan_release(f.ch);
}

static void
test_channels_inside(void **state)
{
	slt_run_procs(1, body_channels_inside, *state);
	slt_run_procs(2, body_channels_inside, *state);
}

/* ---- short calls run inline --------------------------------------------- */

#define INLINE_CALLS 20

static void
note_thread(void *arg)
{
	struct where *w = arg;

	w->thread = slt_thread();
	w->calls++;
}

/* Calls made on the caller's own thread, out of INLINE_CALLS of note_thread
 * after a first one (which the pool makes: never seen).  Calls go on, up
 * to 10 times as many, until half have run inline: a thread preempted
 * while timed (valgrind runs one thread at a time) makes a call look long
 * and sends the next few to the pool. */
static int
count_inline(struct where *w)
{
	int inl = 0, n = 0;

	memset(w, 0, sizeof(*w));
	SL_CHECK_OK(sl_blocking(note_thread, w));
	SL_CHECK(!pthread_equal(w->thread, slt_thread()));
	while (n < INLINE_CALLS || (inl < INLINE_CALLS / 2 &&
	    n < 10 * INLINE_CALLS)) {
		pthread_t me = slt_thread();

		SL_CHECK_OK(sl_blocking(note_thread, w));
		inl += pthread_equal(w->thread, me) != 0;
		n++;
	}
	SL_CHECK_EQ(w->calls, n + 1);
	return (inl);
}

/* With two workers, a short call from a goroutine alone on its worker
 * runs on that worker's thread (a timing rule: allow a few that a
 * preempted thread made look long); with one, always on the pool. */
static void
body_short_inline(void *arg)
{
	struct where w;
	int inl = count_inline(&w);

	(void) arg;
	if (sl_procs() == 1)
		SL_CHECK_EQ(inl, 0);
	else
		SL_CHECK(inl >= INLINE_CALLS / 2);
	if (sl_procs() > 1 && inl < INLINE_CALLS / 2)
		fprintf(stderr, "only %d of %d inline\n", inl, INLINE_CALLS);
}

static void
test_short_inline(void **state)
{
	slt_run_procs(2, body_short_inline, *state);
	slt_run_procs(1, body_short_inline, *state);
}

struct turn {
	struct where w;
	atomic_int   long_call; /* the next call takes 30 ms */
	atomic_int   inside;    /* in that call */
	struct tick  t;
};

static void
maybe_long(void *arg)
{
	struct turn *tn = arg;

	note_thread(&tn->w);
	if (atomic_load(&tn->long_call)) {
		atomic_store(&tn->inside, 1);
		usleep(30000);
		atomic_store(&tn->inside, 0);
	}
}

static void
ticker_while(void *arg)
{
	struct turn *tn = arg;

	while (!atomic_load(&tn->t.stop)) {
		if (atomic_load(&tn->inside))
			atomic_fetch_add(&tn->t.ticks, 1);
		sl_sleep(SL_MILLISECOND);
	}
}

/* A fn seen taking long goes to the pool from then on, and the one long
 * call made inline held only its own worker: a goroutine kept ticking on
 * the other meanwhile. */
static void
body_long_pooled(void *arg)
{
	struct turn tn;
	int inl = 0;

	(void) arg;
	memset(&tn, 0, sizeof(tn));
	SL_CHECK_OK(sl_blocking(maybe_long, &tn)); /* never seen: pool */
	for (int i = 0; i < 10 * INLINE_CALLS && inl < INLINE_CALLS / 2;
	    i++) {
		pthread_t me = slt_thread();

		SL_CHECK_OK(sl_blocking(maybe_long, &tn));
		inl += pthread_equal(tn.w.thread, me) != 0;
	}
	SL_CHECK(inl >= INLINE_CALLS / 2); /* see count_inline */
	/* short so far: the long call is made inline, if this goroutine is
	 * alone on its worker, so the ticker starts after it */
	SL_CHECK_OK(sl_go(ticker_while, &tn));
	atomic_store(&tn.long_call, 1);
	for (int i = 0; i < 6; i++) {
		pthread_t me = slt_thread();

		SL_CHECK_OK(sl_blocking(maybe_long, &tn));
		if (i > 0) /* after the first, all pooled */
			SL_CHECK(!pthread_equal(tn.w.thread, me));
	}
	atomic_store(&tn.t.stop, 1);
	/* 6 x 30 ms in calls, a 1 ms ticker: it ran during them */
	SL_CHECK(atomic_load(&tn.t.ticks) >= 20);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
}

static void
test_long_pooled(void **state)
{
	slt_run_procs(2, body_long_pooled, *state);
}

struct pipes2 {
	int          fd[2][2];  /* two pipes */
	pthread_t    thread[2]; /* where each read ran */
	pthread_t    caller[2]; /* ... and its goroutine */
	atomic_int   written;   /* the writer thread has written */
	sl_waitgroup wg;
};

struct pread_arg {
	struct pipes2 *p;
	int            i;
};

static void
pipe_read_one(void *arg)
{
	struct pread_arg *a = arg;
	char b;

	a->p->thread[a->i] = slt_thread();
	while (read(a->p->fd[a->i][0], &b, 1) < 0 && errno == EINTR)
		;
}

static void
pipe_reader(void *arg)
{
	struct pread_arg *a = arg;

	a->p->caller[a->i] = slt_thread();
	SL_CHECK_OK(sl_blocking(pipe_read_one, a));
	sl_waitgroup_done(&a->p->wg);
}

static void *
late_writer(void *arg)
{
	struct pipes2 *p = arg;

	usleep(2000000);
	atomic_store(&p->written, 1);
	for (int i = 0; i < 2; i++)
		pair_write(&(struct pair){ .fd = { -1, p->fd[i][1] } });
	return (NULL);
}

/* Two reads of empty pipes, by a fn whose calls were short so far, made
 * by goroutines alone on their workers: the first runs inline and blocks
 * its worker; the second may not take the last one (it goes to the pool),
 * so the main goroutine keeps running long before a plain thread writes
 * to the pipes 2 s later. */
static void
body_leaves_a_worker(void *arg)
{
	struct pipes2 p;
	struct pread_arg ra[2];
	pthread_t wr;
	int ticks = 0;

	(void) arg;
	memset(&p, 0, sizeof(p));
	for (int i = 0; i < 2; i++)
		if (pipe(p.fd[i]) != 0) {
			SL_CHECK(!"pipe");
			return;
		}
	/* learn: reads with a byte waiting are short */
	for (int n = 0; n < 10; n++)
		for (int i = 0; i < 2; i++) {
			struct pread_arg a = { .p = &p, .i = i };

			pair_write(&(struct pair){ .fd = { -1, p.fd[i][1] } });
			SL_CHECK_OK(sl_blocking(pipe_read_one, &a));
		}
	if (pthread_create(&wr, NULL, late_writer, &p) != 0) {
		SL_CHECK(!"pthread_create");
		return;
	}
	sl_waitgroup_add(&p.wg, 2);
	for (int i = 0; i < 2; i++) {
		ra[i] = (struct pread_arg){ .p = &p, .i = i };
		SL_CHECK_OK(sl_go(pipe_reader, &ra[i]));
		sl_sleep(5 * SL_MILLISECOND); /* it runs alone, and blocks */
	}
	for (int i = 0; i < 20; i++, ticks++)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&p.written), 0); /* ran meanwhile */
	SL_CHECK_EQ(ticks, 20);
	sl_waitgroup_wait(&p.wg);
	pthread_join(wr, NULL);
	/* one read inline (on its goroutine's thread), the other pooled */
	SL_CHECK(pthread_equal(p.thread[0], p.caller[0]) +
	    pthread_equal(p.thread[1], p.caller[1]) <= 1);
	for (int i = 0; i < 2; i++) {
		close(p.fd[i][0]);
		close(p.fd[i][1]);
	}
}

static void
test_leaves_a_worker(void **state)
{
	slt_run_procs(2, body_leaves_a_worker, *state);
}

struct relay {
	atomic_int mode;   /* 0: return at once; 1: spawn; 2: send */
	atomic_int ran;    /* what it started ran meanwhile */
	bool       inl;    /* the last call ran on its caller's thread */
	pthread_t  caller;
	sl_chan   *ch;
};

static void
set_ran(void *arg)
{
	atomic_store(&((struct relay *) arg)->ran, 1);
}

static void
relay_recv(void *arg)
{
	struct relay *r = arg;
	int v;

	if (sl_chan_recv(r->ch, &v) == 0 && v == 42)
		atomic_store(&r->ran, 1);
}

static void
relay_call(struct relay *r, int mode)
{
	int v = 42;

	r->inl = pthread_equal(slt_thread(), r->caller) != 0;
	if (atomic_load(&r->mode) == 0)
		return;
	usleep(20000); /* the other worker falls asleep: only a wake-up
	                  brings it back */
	if (mode == 1)
		SL_CHECK_OK(sl_go(set_ran, r));
	else
		SL_CHECK_OK(sl_chan_send(r->ch, &v));
	/* the call does not return until that goroutine has run: on the
	 * other worker, if this one is the caller's */
	for (int i = 0; i < 2000 && !atomic_load(&r->ran); i++)
		usleep(1000);
}

/* Two fns, as a long call of one would send the next to the pool. */
static void
relay_spawn(void *arg)
{
	relay_call(arg, 1);
}

static void
relay_send(void *arg)
{
	relay_call(arg, 2);
}

/* A goroutine started, or readied by a channel send, from inside an
 * inline call runs on the other worker while the call still runs. */
static void
body_readies_elsewhere(void *arg)
{
	struct relay r;

	(void) arg;
	memset(&r, 0, sizeof(r));
	r.ch = sl_chan_make(sizeof(int), 0);
	for (int mode = 1; mode <= 2; mode++) {
		sl_fn fn = mode == 1 ? relay_spawn : relay_send;
		int   tries = 0;

		/* Until a call runs inline (the first try, but for a thread
		 * preempted while timed: valgrind), pooled ones just pass. */
		do {
			/* learn that fn is short (after a long call: the
			 * estimate comes down by a quarter a call) */
			atomic_store(&r.mode, 0);
			for (int i = 0; i < 40; i++) {
				r.caller = slt_thread();
				SL_CHECK_OK(sl_blocking(fn, &r));
			}
			if (mode == 2) {
				SL_CHECK_OK(sl_go(relay_recv, &r));
				sl_sleep(5 * SL_MILLISECOND); /* it parks */
			}
			atomic_store(&r.ran, 0);
			atomic_store(&r.mode, mode);
			r.caller = slt_thread();
			SL_CHECK_OK(sl_blocking(fn, &r));
			SL_CHECK_EQ(atomic_load(&r.ran), 1);
		} while (!r.inl && ++tries < 20);
		SL_CHECK(r.inl);
	}
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	sl_chan_release(r.ch);
}

static void
test_readies_elsewhere(void **state)
{
	slt_run_procs(2, body_readies_elsewhere, *state);
}

/* ---- sl_blocking_ctx ------------------------------------------------------- */

#define POOL 32 /* threads in the pool (SLI_BLOCKING_MAX) */

/* A gate that holds pool threads inside their calls until opened. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            open;
	atomic_int      inside; /* calls that reached the gate */
	atomic_int      ran;    /* count_call()s that ran */
	sl_waitgroup    wg;     /* goroutines still in a call */
};

static void
hold_call(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->inside, 1);
	pthread_mutex_lock(&g->mu);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
count_call(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->ran, 1);
}

static void
holder(void *arg)
{
	struct gate *g = arg;

	SL_CHECK_OK(sl_blocking(hold_call, g));
	sl_waitgroup_done(&g->wg);
}

static void
plain_counter(void *arg)
{
	struct gate *g = arg;

	SL_CHECK_OK(sl_blocking(count_call, g));
	sl_waitgroup_done(&g->wg);
}

static void
canceler(void *arg)
{
	sl_sleep(20 * SL_MILLISECOND);
	sl_ctx_cancel(arg);
	sl_ctx_release(arg);
}

/* With every pool thread busy, calls queue; one whose deadline passes or
 * whose context ends while queued returns at once with the reason and its
 * function never runs, even after threads free up; the calls queued around
 * it still run, each exactly once. */
static void
body_ctx_withdraws(void *arg)
{
	struct gate g;
	sl_ctx *ctx;
	int64_t t0, waited;

	(void) arg;
	memset(&g, 0, sizeof(g));
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	sl_waitgroup_add(&g.wg, POOL);
	for (int i = 0; i < POOL; i++)
		SL_CHECK_OK(sl_go(holder, &g));
	while (atomic_load(&g.inside) < POOL)
		sl_sleep(SL_MILLISECOND);

	/* queued behind the pool: the deadline ends the wait */
	t0 = sl_now();
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, NULL,
	    t0 + 30 * SL_MILLISECOND), SL_ETIMEDOUT);
	waited = sl_now() - t0;
	SL_CHECK(waited >= 30 * SL_MILLISECOND);
	SL_CHECK(waited < 5 * SL_SECOND);

	/* a canceled context, between two plain calls in the queue */
	sl_waitgroup_add(&g.wg, 1);
	SL_CHECK_OK(sl_go(plain_counter, &g));
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	SL_CHECK_OK(sl_go(canceler, sl_ctx_retain(ctx)));
	sl_waitgroup_add(&g.wg, 1);
	SL_CHECK_OK(sl_go(plain_counter, &g));
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);

	/* a context with a timeout: its own error */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    10 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, ctx, SL_FOREVER),
	    SL_EDEADLINE);
	sl_ctx_release(ctx);
	SL_CHECK_EQ(atomic_load(&g.ran), 0);

	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	sl_waitgroup_wait(&g.wg);
	SL_CHECK_EQ(atomic_load(&g.ran), 2);  /* the two plain calls */
	/* the pool is whole: a call with a deadline now runs */
	SL_CHECK_OK(sl_blocking_ctx(count_call, &g, NULL,
	    sl_now() + 10 * SL_SECOND));
	SL_CHECK_EQ(atomic_load(&g.ran), 3);
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&g.ran), 3);  /* nothing withdrawn ran late */
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

static void
test_ctx_withdraws_queued(void **state)
{
	slt_run_procs(1, body_ctx_withdraws, *state);
	slt_run_procs(2, body_ctx_withdraws, *state);
}

struct slow {
	atomic_int started;
	atomic_int finished;
	sl_ctx    *ctx;     /* canceled by cancel_started, or NULL */
};

static void
slow_call(void *arg)
{
	struct slow *s = arg;

	atomic_store(&s->started, 1);
	/* With a context, it surely ends while this runs. */
	while (s->ctx != NULL && sl_ctx_err(s->ctx) == 0)
		usleep(1000);
	usleep(80000);
	atomic_store(&s->finished, 1);
}

/* Cancels s->ctx once slow_call has started: before that, the cancel
 * would withdraw the call (a loaded machine, valgrind, can take longer
 * than any fixed pause to hand it to a pool thread). */
static void
cancel_started(void *arg)
{
	struct slow *s = arg;
	sl_ctx      *ctx = s->ctx; /* s is not touched after the cancel */

	while (!atomic_load(&s->started))
		sl_sleep(SL_MILLISECOND);
	sl_sleep(10 * SL_MILLISECOND);
	sl_ctx_cancel(ctx);
	sl_ctx_release(ctx);
}

/* A context that ends while the call runs does not cut it short: the
 * caller gets 0 once fn has returned (arg, on its stack, stays valid). */
static void
body_ctx_running(void *arg)
{
	struct slow s = { 0 };
	sl_ctx *ctx;
	int64_t t0;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	s.ctx = sl_ctx_retain(ctx);
	SL_CHECK_OK(sl_go(cancel_started, &s));
	t0 = sl_now();
	SL_CHECK_OK(sl_blocking_ctx(slow_call, &s, ctx, SL_FOREVER));
	SL_CHECK(sl_now() - t0 >= 80 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s.finished), 1);
	SL_CHECK_EQ(sl_ctx_err(ctx), SL_ECANCELED);
	sl_ctx_release(ctx);

	/* the same with a deadline */
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_blocking_ctx(slow_call, &s, NULL,
	    sl_now() + 10 * SL_MILLISECOND));
	SL_CHECK_EQ(atomic_load(&s.finished), 1);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
}

static void
test_ctx_running_waits(void **state)
{
	slt_run_procs(1, body_ctx_running, *state);
	slt_run_procs(2, body_ctx_running, *state);
}

/* Already over: nothing runs.  Bad input: SL_EINVAL. */
static void
body_ctx_already(void *arg)
{
	struct slow s = { 0 };
	sl_ctx *ctx;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	sl_ctx_cancel(ctx);
	SL_CHECK_ERR(sl_blocking_ctx(slow_call, &s, ctx, SL_FOREVER),
	    SL_ECANCELED);
	SL_CHECK_ERR(sl_blocking_ctx(slow_call, &s, NULL, sl_now() - 1),
	    SL_ETIMEDOUT);
	SL_CHECK_EQ(atomic_load(&s.started), 0);
	SL_CHECK_ERR(sl_blocking_ctx(NULL, &s, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_blocking(NULL, &s), SL_EINVAL);
	sl_ctx_release(ctx);
}

static void
test_ctx_already_over(void **state)
{
	struct where w;
	sl_ctx *ctx;

	slt_run(body_ctx_already, *state);
	/* outside goroutines: the same checks, then fn on this thread */
	memset(&w, 0, sizeof(w));
	assert_int_equal(sl_ctx_with_cancel(sl_ctx_background(), &ctx), 0);
	sl_ctx_cancel(ctx);
	assert_int_equal(sl_blocking_ctx(record_thread, &w, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);
	assert_int_equal(w.calls, 0);
	assert_int_equal(sl_blocking_ctx(record_thread, &w, NULL,
	    sl_now() + SL_SECOND), 0);
	assert_int_equal(w.calls, 1);
	assert_true(pthread_equal(w.thread, slt_thread()));
}

/* ---- outside goroutines ---------------------------------------------------- */

/* Without a scheduler, sl_blocking calls fn on the calling thread. */
static void
test_outside(void **state)
{
	struct where w;

	(void) state;
	memset(&w, 0, sizeof(w));
	assert_int_equal(sl_blocking(record_thread, &w), 0);
	assert_int_equal(w.calls, 1);
	assert_true(pthread_equal(w.thread, slt_thread()));
	assert_int_equal(w.data[1023], 1023 * 3);
}

/* ---- one inline call of a fn at a time ----------------------------------- */

#define NREADERS 3

struct readers {
	int          fd[NREADERS][2];
	pthread_t    thread[NREADERS]; /* where each read ran */
	pthread_t    caller[NREADERS]; /* ... and its goroutine */
	atomic_int   entered;
	sl_waitgroup wg;
};

struct rd_arg {
	struct readers *r;
	int             i;
};

static void
rd_read_one(void *arg)
{
	struct rd_arg *a = arg;
	char b;

	a->r->thread[a->i] = slt_thread();
	atomic_fetch_add(&a->r->entered, 1);
	while (read(a->r->fd[a->i][0], &b, 1) < 0 && errno == EINTR)
		;
}

static void
rd_reader(void *arg)
{
	struct rd_arg *a = arg;

	a->r->caller[a->i] = slt_thread();
	SL_CHECK_OK(sl_blocking(rd_read_one, a));
	sl_waitgroup_done(&a->r->wg);
}

static void
rd_feed(struct readers *r, int i)
{
	char b = 'x';

	while (write(r->fd[i][1], &b, 1) < 0 && errno == EINTR)
		;
}

/* Three goroutines, each alone on one of four workers, read empty pipes
 * through a fn whose calls were short so far: only one read runs inline,
 * the others on the pool, so that a fn whose calls all turn long at once
 * holds up one worker, not three of four. */
static void
body_one_inline_per_fn(void *arg)
{
	struct readers r;
	struct rd_arg  ra[NREADERS];
	int            inl = 0;

	(void) arg;
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < NREADERS; i++)
		if (pipe(r.fd[i]) != 0) {
			SL_CHECK(!"pipe");
			return;
		}
	/* learn: reads with a byte waiting are short */
	for (int n = 0; n < 10; n++)
		for (int i = 0; i < NREADERS; i++) {
			struct rd_arg a = { .r = &r, .i = i };

			rd_feed(&r, i);
			SL_CHECK_OK(sl_blocking(rd_read_one, &a));
		}
	atomic_store(&r.entered, 0);
	sl_waitgroup_add(&r.wg, NREADERS);
	for (int i = 0; i < NREADERS; i++) {
		ra[i] = (struct rd_arg){ .r = &r, .i = i };
		SL_CHECK_OK(sl_go(rd_reader, &ra[i]));
		sl_sleep(5 * SL_MILLISECOND); /* it runs alone, and blocks */
	}
	for (int n = 0; n < 2000 && atomic_load(&r.entered) < NREADERS; n++)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&r.entered), NREADERS);
	for (int i = 0; i < NREADERS; i++)
		rd_feed(&r, i);
	sl_waitgroup_wait(&r.wg);
	for (int i = 0; i < NREADERS; i++)
		inl += pthread_equal(r.thread[i], r.caller[i]) != 0;
	SL_CHECK(inl <= 1);
	if (inl > 1)
		fprintf(stderr, "%d reads of one fn ran inline at once\n", inl);
	for (int i = 0; i < NREADERS; i++) {
		close(r.fd[i][0]);
		close(r.fd[i][1]);
	}
}

static void
test_one_inline_per_fn(void **state)
{
	slt_run_procs(4, body_one_inline_per_fn, *state);
}

/* ---- sl_main returns while calls are still in flight --------------------- */

#define NSTUCK 32 /* the pool's size: one call more waits in its queue */

struct stuck {
	int        procs;
	int        nreads;         /* calls that block on a pipe */
	bool       queue_one;      /* and one more, queued behind them */
	bool       want_inline;    /* learn the fn short first */
	int        fd[NSTUCK][2];
	atomic_int entered;
	atomic_int returned;
	atomic_int queued_ran;     /* the queued call ran (must not) */
	pthread_t  thread;         /* where read 0 ran */
	pthread_t  caller;         /* ... and its goroutine */
	atomic_int done;           /* sl_main returned */
	int        rv;
};

struct st_arg {
	struct stuck *s;
	int           i;
	char          got; /* what the read read */
};

/* Reads a byte into a->got: on the caller's stack, as results usually
 * are, which must still be there when an abandoned call returns. */
static void
st_read(void *arg)
{
	struct st_arg *a = arg;
	struct stuck  *s = a->s;

	if (a->i == 0)
		s->thread = slt_thread();
	atomic_fetch_add(&s->entered, 1);
	while (read(s->fd[a->i][0], &a->got, 1) < 0 && errno == EINTR)
		;
	atomic_fetch_add(&s->returned, a->got == 'x');
}

static void
st_set_ran(void *arg)
{
	atomic_store(&((struct stuck *) arg)->queued_ran, 1);
}

static void
st_reader(void *arg)
{
	struct st_arg a = *(struct st_arg *) arg;

	if (a.i == 0)
		a.s->caller = slt_thread();
	(void) sl_blocking(st_read, &a);
	SL_CHECK(!"a goroutine ran on after sl_main returned");
}

static void
st_queued(void *arg)
{
	(void) sl_blocking(st_set_ran, arg);
}

static void
body_stuck(void *arg)
{
	struct stuck *s = arg;
	static struct st_arg a[NSTUCK]; /* read by the goroutines at start */

	if (s->want_inline) {
		/* learn: reads with a byte waiting are short */
		for (int n = 0; n < 10; n++) {
			struct st_arg l = { .s = s, .i = 0 };
			char b = 'x';

			SL_CHECK_EQ(write(s->fd[0][1], &b, 1), 1);
			SL_CHECK_OK(sl_blocking(st_read, &l));
		}
		atomic_store(&s->entered, 0);
		atomic_store(&s->returned, 0);
	}
	for (int i = 0; i < s->nreads; i++) {
		a[i] = (struct st_arg){ .s = s, .i = i };
		SL_CHECK_OK(sl_go(st_reader, &a[i]));
	}
	for (int n = 0; n < 5000 && atomic_load(&s->entered) < s->nreads; n++)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s->entered), s->nreads);
	if (s->queue_one) {
		SL_CHECK_OK(sl_go(st_queued, s));
		sl_sleep(20 * SL_MILLISECOND); /* it queues its call */
	}
	/* main returns: the calls are left to their threads */
}

static void *
st_main(void *arg)
{
	struct stuck *s = arg;
	sl_opts o;

	memset(&o, 0, sizeof(o));
	o.procs = s->procs;
	s->rv = sl_main_opts(&o, body_stuck, s);
	atomic_store(&s->done, 1);
	return (NULL);
}

/* Runs s on a thread of its own; asserts that sl_main returns within 3 s,
 * though every read still waits, that it left one thread a read, and that
 * each read, once fed, stores its byte on its goroutine's stack (which
 * outlives sl_main for it) and its thread exits, without running a
 * queued call. */
static void
run_stuck(struct stuck *s)
{
	int before = atomic_load(&sli_sched_abandoned);
	pthread_t t;
	int n;

	for (int i = 0; i < NSTUCK; i++)
		assert_int_equal(pipe(s->fd[i]), 0);
	atomic_store(slt_failures(), 0);
	assert_int_equal(pthread_create(&t, NULL, st_main, s), 0);
	for (n = 0; n < 3000 && !atomic_load(&s->done); n++)
		usleep(1000);
	if (!atomic_load(&s->done)) {
		/* old behaviour: sl_main waits for the reads; let it go */
		for (int i = 0; i < s->nreads; i++)
			assert_int_equal(write(s->fd[i][1], "x", 1), 1);
		pthread_join(t, NULL);
		fail_msg("sl_main did not return while %d calls were in "
		    "flight", s->nreads);
	}
	pthread_join(t, NULL);
	assert_int_equal(s->rv, 0);
	slt_assert_no_failures();
	assert_int_equal(atomic_load(&sli_sched_abandoned) - before,
	    s->nreads);
	assert_int_equal(atomic_load(&s->returned), 0);
	for (int i = 0; i < s->nreads; i++)
		assert_int_equal(write(s->fd[i][1], "x", 1), 1);
	for (n = 0; n < 5000 && atomic_load(&s->returned) < s->nreads; n++)
		usleep(1000);
	assert_int_equal(atomic_load(&s->returned), s->nreads);
	usleep(50000); /* the threads exit (valgrind would see a leak) */
	assert_int_equal(atomic_load(&s->queued_ran), 0);
	for (int i = 0; i < NSTUCK; i++) {
		close(s->fd[i][0]);
		close(s->fd[i][1]);
	}
}

/* A call on the pool that waits for what never comes does not keep
 * sl_main from returning, and the pool works afresh in the next run. */
static void
test_main_returns_pooled(void **state)
{
	static struct stuck s;

	memset(&s, 0, sizeof(s));
	s.procs = 1;
	s.nreads = 1;
	run_stuck(&s);
	test_other_thread(state);
	slt_run_procs(2, body_short_inline, *state);
}

/* Nor does one made inline, on a worker's own thread, and the next run
 * starts every worker afresh. */
static void
test_main_returns_inline(void **state)
{
	static struct stuck s;
	int tries = 0;

	do {
		memset(&s, 0, sizeof(s));
		s.procs = 2;
		s.nreads = 1;
		s.want_inline = true;
		run_stuck(&s);
		/* a preempted thread can make a read look long: again */
	} while (!pthread_equal(s.thread, s.caller) && ++tries < 5);
	assert_true(pthread_equal(s.thread, s.caller));
	slt_run_procs(2, body_short_inline, *state);
}

/* With every pool thread in a call, the call queued behind them is
 * dropped with its goroutine, never run. */
static void
test_main_drops_queued(void **state)
{
	static struct stuck s;

	(void) state;
	memset(&s, 0, sizeof(s));
	s.procs = 1;
	s.nreads = NSTUCK;
	s.queue_one = true;
	run_stuck(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_thread),
		cmocka_unit_test(test_others_run),
		cmocka_unit_test(test_many_calls),
		cmocka_unit_test(test_dependent_calls),
		cmocka_unit_test(test_channels_inside),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_short_inline),
		cmocka_unit_test(test_long_pooled),
		cmocka_unit_test(test_leaves_a_worker),
		cmocka_unit_test(test_readies_elsewhere),
		cmocka_unit_test(test_ctx_withdraws_queued),
		cmocka_unit_test(test_ctx_running_waits),
		cmocka_unit_test(test_ctx_already_over),
		cmocka_unit_test(test_one_inline_per_fn),
		cmocka_unit_test(test_main_returns_pooled),
		cmocka_unit_test(test_main_returns_inline),
		cmocka_unit_test(test_main_drops_queued),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
