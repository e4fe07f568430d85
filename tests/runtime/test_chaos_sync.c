/*
 * test_chaos_sync.c — a randomized, seeded stress test of the sync
 * primitives and of contexts under concurrency: the invariants a user
 * relies on hold whatever mix of operations races on them.
 *
 * Why: test_sync.c and test_context.c pin down one interleaving per case.
 * Timeouts and cancellations racing a hand-off, a foreign thread on the
 * other side of a lock, cancellations racing each other down a context
 * tree: these show up only when many kinds of operation meet at random.
 *
 * What each case runs (goroutines plus 2 plain pthreads, which may block
 * on every primitive), each part from its own seeded generator:
 *
 *   mutex    lock, trylock, lock_ctx with a deadline or with a context
 *            that times out or is already canceled: never two holders (an
 *            atomic occupancy counter checked inside), a non-atomic
 *            counter incremented under the lock ends at exactly the number
 *            of successful acquisitions, a lock that failed is not held
 *            (the mutex is free at the end).
 *   rwmutex  rlock/lock, their _ctx forms with deadlines and their try
 *            forms: no writer with readers or another writer, a reader
 *            sees the protected counter stable, exact write total, free
 *            at the end.
 *   cond     a bounded queue under mutex + two conds (signal, broadcast,
 *            wait_ctx with deadlines): every item consumed exactly once
 *            (count, sum, xor), wait returns with the mutex held
 *            exclusively, no lost wakeup (nobody hangs); then a gate that
 *            a broadcast must open for every waiter, round after round.
 *   once     many racers per round: fn runs exactly once and every racer
 *            returns after it completed (sees its effect).
 *   waitgroup one wait group reused over rounds, workers adding nested
 *            workers: wait (from several goroutines) returns only after
 *            every done.
 *   context  a random tree (with_cancel, with_timeout, with_deadline,
 *            with_value) that parties cancel at random (cancel, or
 *            cancel_cause with a unique code) while others register and
 *            stop after_funcs and query it.  Checked: after a canceller's
 *            cancel_cause returned and was the first to cancel that node,
 *            every descendant not cancelled otherwise meanwhile is done
 *            with the same cause and text; in the quiet state a child of
 *            a done context is done, a value context reports its
 *            ancestor's err and cause, a cause is SL_ECANCELED, a code
 *            given to an ancestor-or-self, or SL_EDEADLINE with a passed
 *            deadline; deadlines are the earliest of the ancestors';
 *            values resolve to the nearest binding; each after_func runs
 *            exactly once if its context is done and it was not stopped
 *            in time (sl_ctx_stop true), never otherwise.  Every
 *            reference is released (valgrind checks leaks).
 *
 * A failure prints the seed; SLUICE_CHAOS_SEED=<number> runs every case
 * with that seed, SLUICE_CHAOS_SEED=random with a new one.  The work
 * scales with SLUICE_TEST_SCALE and is a third under TSan.  Any wait for
 * the parties is bounded: a hang is reported with every goroutine's wait.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "sltest.h"

enum {
	N_GOR = 5,        /* goroutine parties */
	N_THR = 2,        /* plain pthread parties */
	N_PARTY = N_GOR + N_THR,
	TSAN_DIVISOR = 3, /* less work under TSan */
	CTX_NODES = 40,   /* nodes of a context tree */
	CTX_KEYS = 3,     /* value keys */
	AFN_MAX = 512,     /* after_func registrations per tree */
	CODE_BASE = 1000, /* first cause code (far from the SL_E codes) */
	CODE_MAX = 4096,  /* cause codes per tree */
	QUOTA_BASE = 4000, /* operations per party and part, before
	                      scaling */
};

/* How long the coordinator waits for parties before calling it a hang. */
#define HUNG (60 * SL_SECOND)

/* ---- helpers ------------------------------------------------------------ */

static uint64_t g_seed; /* the seed of the running case */
/* A failed invariant: printed (the first few overall) with the seed,
 * counted as a failed SL_CHECK. */
#define CHK(cond, ...)                                                      \
	do {                                                                \
		if (!(cond))                                                \
			chk_failed(__LINE__, #cond, __VA_ARGS__);           \
	} while (0)

static void chk_failed(int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
chk_failed(int line, const char *what, const char *fmt, ...)
{
	static atomic_int printed[2048]; /* per line */
	char msg[512];
	va_list ap;

	atomic_fetch_add(slt_failures(), 1);
	if (atomic_fetch_add(&printed[(unsigned) line % 2048], 1) >= 3)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "test_chaos_sync.c:%d: check failed (seed 0x%" PRIx64
	    "): %s: %s [goroutine %llu, worker %d]\n", line, g_seed, what,
	    msg, (unsigned long long) sl_goid(), sl_worker_id());
	fflush(stderr);
}

/* A short pause inside a critical section: a yield or a sleep for a
 * goroutine, a spin or sched_yield for a thread. */
static void
pause_some(uint64_t *rng, bool thread)
{
	uint32_t r = slt_rnd_below(rng, 8);

	if (r >= 3)
		return;
	if (thread) {
		if (r == 0)
			sched_yield();
		else
			for (volatile int i = 0; i < 200; i++)
				;
	} else if (r == 0) {
		sl_sleep((int64_t) slt_rnd_below(rng, 20) * SL_MICROSECOND);
	} else {
		sl_yield();
	}
}

/* ---- parties ------------------------------------------------------------ */

struct party;
typedef void (*party_fn)(struct party *p);

struct party {
	void        *st;     /* the part's shared state */
	party_fn     fn;
	int          id;     /* 0 .. n-1 */
	bool         thread; /* a plain pthread */
	uint64_t     rng;
	pthread_t    th;
	sl_waitgroup *wg;
};

struct crew {
	struct party p[N_PARTY];
	int          n;
	sl_waitgroup wg;
};

static void
party_goroutine(void *arg)
{
	struct party *p = arg;

	p->fn(p);
	sl_waitgroup_done(p->wg);
}

static void *
party_thread(void *arg)
{
	struct party *p = arg;

	p->fn(p);
	sl_waitgroup_done(p->wg);
	sl_sched_release();
	return (NULL);
}

/* Starts ng goroutines and nt threads running fn(party) on st. */
static void
crew_start(struct crew *c, int ng, int nt, party_fn fn, void *st,
    uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->n = ng + nt;
	sl_waitgroup_add(&c->wg, c->n);
	for (int i = 0; i < c->n; i++) {
		struct party *p = &c->p[i];

		p->st = st;
		p->fn = fn;
		p->id = i;
		p->thread = i >= ng;
		p->rng = seed * UINT64_C(0x100000001b3) + (uint64_t) i + 1;
		p->wg = &c->wg;
		if (p->thread) {
			sl_sched_hold();
			if (pthread_create(&p->th, NULL, party_thread, p) != 0)
				SLT_FATAL("pthread_create failed");
		} else {
			SL_ASSERT_OK(sl_go(party_goroutine, p));
		}
	}
}

/* Waits for the crew (at most HUNG) and joins its threads. */
static void
crew_finish(struct crew *c, const char *what)
{
	int rv = sl_waitgroup_wait_ctx(&c->wg, NULL, sl_now() + HUNG);

	if (rv != 0) {
		sl_dump_goroutines(stderr);
		SLT_FATAL("%s hung (seed 0x%" PRIx64 "): %s", what, g_seed,
		    sl_errname(rv));
	}
	for (int i = 0; i < c->n; i++)
		if (c->p[i].thread)
			SL_CHECK_EQ(pthread_join(c->p[i].th, NULL), 0);
}

/* ---- mutex ------------------------------------------------------------- */

struct mx {
	sl_mutex    mu;
	atomic_int  inside;  /* holders right now */
	long        counter; /* plain, under mu */
	atomic_long acq;     /* successful acquisitions */
	atomic_long fails;   /* lock_ctx that failed */
	long        quota;
};

static void
mx_party(struct party *p)
{
	struct mx *m = p->st;
	long mine = 0;

	for (long i = 0; i < m->quota; i++) {
		uint32_t r = slt_rnd_below(&p->rng, 100);
		bool got;
		int rv;

		if (r < 40) {
			sl_mutex_lock(&m->mu);
			got = true;
		} else if (r < 60) {
			got = sl_mutex_trylock(&m->mu);
		} else if (r < 80) {
			rv = sl_mutex_lock_ctx(&m->mu, NULL, sl_now() +
			    (int64_t) slt_rnd_below(&p->rng, 30) *
			    SL_MICROSECOND);
			CHK(rv == 0 || rv == SL_ETIMEDOUT, "lock_ctx: %s",
			    sl_errname(rv));
			got = rv == 0;
		} else {
			sl_ctx *ctx;
			bool canceled = r < 85;

			SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
			    (int64_t) slt_rnd_below(&p->rng, 30) *
			    SL_MICROSECOND,
			    &ctx));
			if (canceled)
				sl_ctx_cancel(ctx);
			rv = sl_mutex_lock_ctx(&m->mu, ctx, SL_FOREVER);
			/* A short timeout may beat the cancel. */
			CHK(rv == 0 || rv == SL_EDEADLINE ||
			    (canceled && rv == SL_ECANCELED),
			    "lock_ctx(ctx): %s", sl_errname(rv));
			if (rv != 0)
				CHK(sl_ctx_err(ctx) == rv, "lock_ctx returned "
				    "%s, ctx err %s", sl_errname(rv),
				    sl_errname(sl_ctx_err(ctx)));
			sl_ctx_release(ctx);
			got = rv == 0;
		}
		if (!got) {
			if (r >= 60)
				atomic_fetch_add(&m->fails, 1);
			continue;
		}
		{
			int n = atomic_fetch_add(&m->inside, 1);

			CHK(n == 0, "mutex: %d other holder(s)", n);
			m->counter++;
			pause_some(&p->rng, p->thread);
			n = atomic_load(&m->inside);
			CHK(n == 1, "mutex: %d holders", n);
			atomic_fetch_sub(&m->inside, 1);
		}
		mine++;
		sl_mutex_unlock(&m->mu);
		if (!p->thread && slt_rnd_below(&p->rng, 8) == 0)
			sl_yield();
	}
	atomic_fetch_add(&m->acq, mine);
}

static void
part_mutex(uint64_t seed, long quota, char *sum, size_t len)
{
	struct mx *m = calloc(1, sizeof(*m));
	struct crew *c = malloc(sizeof(*c));

	if (m == NULL || c == NULL)
		SLT_FATAL("out of memory");
	m->quota = quota;
	crew_start(c, N_GOR, N_THR, mx_party, m, seed);
	crew_finish(c, "mutex");
	CHK(m->counter == atomic_load(&m->acq), "counter %ld, %ld "
	    "acquisitions", m->counter, atomic_load(&m->acq));
	CHK(sl_mutex_trylock(&m->mu), "the mutex is held after every "
	    "party returned (%ld failed lock_ctx)", atomic_load(&m->fails));
	sl_mutex_unlock(&m->mu);
	snprintf(sum, len, "mutex %ld acq %ld fail", m->counter,
	    atomic_load(&m->fails));
	free(c);
	free(m);
}

/* ---- rwmutex ----------------------------------------------------------- */

struct rw {
	sl_rwmutex  rw;
	atomic_int  readers, writers;
	long        counter; /* plain, under the write lock */
	atomic_long wacq, racq, fails;
	long        quota;
};

static void
rw_party(struct party *p)
{
	struct rw *s = p->st;
	long w = 0, rd = 0;

	for (long i = 0; i < s->quota; i++) {
		uint32_t r = slt_rnd_below(&p->rng, 100);
		int64_t dl = sl_now() + (int64_t) slt_rnd_below(&p->rng, 40) *
		    SL_MICROSECOND;
		int rv = 0;

		if (r < 50) {
			if (r < 30)
				sl_rwmutex_rlock(&s->rw);
			else if (r < 42)
				rv = sl_rwmutex_rlock_ctx(&s->rw, NULL, dl);
			else if (!sl_rwmutex_tryrlock(&s->rw))
				rv = SL_EAGAIN;
			CHK(rv == 0 || rv == SL_ETIMEDOUT || (r >= 42 &&
			    rv == SL_EAGAIN), "rlock: %s", sl_errname(rv));
			if (rv != 0) {
				atomic_fetch_add(&s->fails, 1);
				continue;
			}
			atomic_fetch_add(&s->readers, 1);
			CHK(atomic_load(&s->writers) == 0, "reader with a "
			    "writer");
			{
				long v1 = s->counter;

				pause_some(&p->rng, p->thread);
				CHK(s->counter == v1, "counter moved under a "
				    "read lock: %ld -> %ld", v1, s->counter);
			}
			CHK(atomic_load(&s->writers) == 0, "reader with a "
			    "writer");
			atomic_fetch_sub(&s->readers, 1);
			rd++;
			sl_rwmutex_runlock(&s->rw);
		} else {
			if (r < 72)
				sl_rwmutex_lock(&s->rw);
			else if (r < 90)
				rv = sl_rwmutex_lock_ctx(&s->rw, NULL, dl);
			else if (!sl_rwmutex_trylock(&s->rw))
				rv = SL_EAGAIN;
			CHK(rv == 0 || rv == SL_ETIMEDOUT || (r >= 90 &&
			    rv == SL_EAGAIN), "lock: %s", sl_errname(rv));
			if (rv != 0) {
				atomic_fetch_add(&s->fails, 1);
				continue;
			}
			{
				int n = atomic_fetch_add(&s->writers, 1);

				CHK(n == 0, "%d other writer(s)", n);
				CHK(atomic_load(&s->readers) == 0, "writer "
				    "with readers");
				s->counter++;
				pause_some(&p->rng, p->thread);
				CHK(atomic_load(&s->readers) == 0, "writer "
				    "with readers");
				atomic_fetch_sub(&s->writers, 1);
			}
			w++;
			sl_rwmutex_unlock(&s->rw);
		}
		if (!p->thread && slt_rnd_below(&p->rng, 8) == 0)
			sl_yield();
	}
	atomic_fetch_add(&s->wacq, w);
	atomic_fetch_add(&s->racq, rd);
}

static void
part_rwmutex(uint64_t seed, long quota, char *sum, size_t len)
{
	struct rw *s = calloc(1, sizeof(*s));
	struct crew *c = malloc(sizeof(*c));

	if (s == NULL || c == NULL)
		SLT_FATAL("out of memory");
	s->quota = quota;
	crew_start(c, N_GOR, N_THR, rw_party, s, seed);
	crew_finish(c, "rwmutex");
	CHK(s->counter == atomic_load(&s->wacq), "counter %ld, %ld write "
	    "acquisitions", s->counter, atomic_load(&s->wacq));
	/* Free again: a writer gets in at once. */
	SL_CHECK_OK(sl_rwmutex_lock_ctx(&s->rw, NULL, sl_now() +
	    SL_SECOND));
	sl_rwmutex_unlock(&s->rw);
	SL_CHECK_OK(sl_rwmutex_rlock_ctx(&s->rw, NULL, sl_now() +
	    SL_SECOND));
	sl_rwmutex_runlock(&s->rw);
	snprintf(sum, len, "rw %ld w %ld r %ld fail", s->counter,
	    atomic_load(&s->racq), atomic_load(&s->fails));
	free(c);
	free(s);
}

/* ---- cond --------------------------------------------------------------- */

enum { QCAP = 4 };

struct cq {
	sl_mutex    mu;
	sl_cond     not_empty, not_full;
	atomic_int  inside;       /* holders of mu right now */
	uint64_t    q[QCAP];
	int         head, n;
	long        total;        /* items to move */
	long        taken;        /* items popped, under mu */
	long        per_producer;
	atomic_long psum, pxor, csum, cxor, ccount, timeouts;
	/* the broadcast gate */
	sl_cond     gate, back;
	long        gen, passed;
	int         gate_rounds;
};

static void
cq_enter(struct cq *s)
{
	int n = atomic_fetch_add(&s->inside, 1);

	CHK(n == 0, "cond: mutex has %d other holder(s)", n);
}

static void
cq_leave(struct cq *s)
{
	atomic_fetch_sub(&s->inside, 1);
}

/* Waits on c (unlocking s->mu meanwhile), maybe with a deadline. */
static void
cq_wait(struct party *p, struct cq *s, sl_cond *c)
{
	cq_leave(s);
	if (slt_rnd_below(&p->rng, 4) == 0) {
		int rv = sl_cond_wait_ctx(c, &s->mu, NULL, sl_now() +
		    (int64_t) slt_rnd_below(&p->rng, 50) * SL_MICROSECOND);

		CHK(rv == 0 || rv == SL_ETIMEDOUT, "cond_wait_ctx: %s",
		    sl_errname(rv));
		if (rv != 0)
			atomic_fetch_add(&s->timeouts, 1);
	} else {
		sl_cond_wait(c, &s->mu);
	}
	cq_enter(s);
}

/* Parties with an even id produce, odd ones consume (each kind has a
 * thread: ids 5 and 6 are the threads). */
static void
cq_party(struct party *p)
{
	struct cq *s = p->st;

	if (p->id % 2 == 0) {
		for (long i = 0; i < s->per_producer; i++) {
			uint64_t v = ((uint64_t) (p->id + 1) << 40) |
			    (uint64_t) (i + 1);

			sl_mutex_lock(&s->mu);
			cq_enter(s);
			while (s->n == QCAP)
				cq_wait(p, s, &s->not_full);
			s->q[(s->head + s->n) % QCAP] = v;
			s->n++;
			atomic_fetch_add(&s->psum, (long) v);
			atomic_fetch_xor(&s->pxor, (long) v);
			if (slt_rnd_below(&p->rng, 8) == 0)
				sl_cond_broadcast(&s->not_empty);
			else
				sl_cond_signal(&s->not_empty);
			cq_leave(s);
			sl_mutex_unlock(&s->mu);
			if (!p->thread && slt_rnd_below(&p->rng, 4) == 0)
				sl_yield();
		}
	} else {
		for (;;) {
			uint64_t v;

			sl_mutex_lock(&s->mu);
			cq_enter(s);
			while (s->n == 0 && s->taken < s->total)
				cq_wait(p, s, &s->not_empty);
			if (s->n == 0) {
				cq_leave(s);
				sl_mutex_unlock(&s->mu);
				break;
			}
			v = s->q[s->head];
			s->head = (s->head + 1) % QCAP;
			s->n--;
			s->taken++;
			if (s->taken == s->total)
				sl_cond_broadcast(&s->not_empty);
			if (slt_rnd_below(&p->rng, 8) == 0)
				sl_cond_broadcast(&s->not_full);
			else
				sl_cond_signal(&s->not_full);
			cq_leave(s);
			sl_mutex_unlock(&s->mu);
			atomic_fetch_add(&s->csum, (long) v);
			atomic_fetch_xor(&s->cxor, (long) v);
			atomic_fetch_add(&s->ccount, 1);
			if (!p->thread && slt_rnd_below(&p->rng, 4) == 0)
				sl_yield();
		}
	}
}

/* The gate: every party passes gate_rounds rounds, each opened by one
 * broadcast of the coordinator. */
static void
gate_party(struct party *p)
{
	struct cq *s = p->st;

	for (long r = 0; r < s->gate_rounds; r++) {
		sl_mutex_lock(&s->mu);
		while (s->gen <= r)
			sl_cond_wait(&s->gate, &s->mu);
		s->passed++;
		sl_cond_signal(&s->back);
		sl_mutex_unlock(&s->mu);
		pause_some(&p->rng, p->thread);
	}
}

static void
part_cond(uint64_t seed, long quota, char *sum, size_t len)
{
	struct cq *s = calloc(1, sizeof(*s));
	struct crew *c = malloc(sizeof(*c));
	uint64_t rng = seed ^ 0xc0d;
	int nprod = 0;

	if (s == NULL || c == NULL)
		SLT_FATAL("out of memory");
	/* goroutines 0-4 (0, 2, 4 produce), threads 5 (consumes) and 6
	 * (produces) */
	for (int i = 0; i < N_PARTY; i++)
		nprod += i % 2 == 0;
	s->per_producer = quota;
	s->total = quota * nprod;
	crew_start(c, N_GOR, N_THR, cq_party, s, seed);
	crew_finish(c, "cond queue");
	CHK(atomic_load(&s->ccount) == s->total && s->taken == s->total,
	    "cond queue: %ld of %ld items consumed (%ld taken)",
	    atomic_load(&s->ccount), s->total, s->taken);
	CHK(atomic_load(&s->csum) == atomic_load(&s->psum) &&
	    atomic_load(&s->cxor) == atomic_load(&s->pxor),
	    "cond queue checksums differ");

	s->gate_rounds = (int) (quota / 20 > 5 ? quota / 20 : 5);
	crew_start(c, N_GOR, N_THR, gate_party, s, seed + 1);
	for (long r = 0; r < s->gate_rounds; r++) {
		sl_mutex_lock(&s->mu);
		s->gen = r + 1;
		sl_cond_broadcast(&s->gate);
		while (s->passed < (long) c->n * (r + 1)) {
			int rv = sl_cond_wait_ctx(&s->back, &s->mu, NULL,
			    sl_now() + HUNG);

			if (rv != 0) {
				sl_dump_goroutines(stderr);
				SLT_FATAL("cond gate round %ld hung: %ld of "
				    "%d passed (seed 0x%" PRIx64 ")", r,
				    s->passed - (long) c->n * r, c->n, g_seed);
			}
		}
		sl_mutex_unlock(&s->mu);
		if (slt_rnd_below(&rng, 2) == 0)
			sl_yield();
	}
	crew_finish(c, "cond gate");
	CHK(s->passed == (long) c->n * s->gate_rounds, "gate passed %ld",
	    s->passed);
	snprintf(sum, len, "cond %ld items %ld timeouts %d gates", s->total,
	    atomic_load(&s->timeouts), s->gate_rounds);
	free(c);
	free(s);
}

/* ---- once ---------------------------------------------------------------- */

struct on {
	sl_once    once;
	atomic_int calls, effect, late;
};

static void
on_fn(void *arg)
{
	struct on *s = arg;
	uint64_t r = (uint64_t) sl_now();

	CHK(atomic_fetch_add(&s->calls, 1) == 0, "once fn ran twice");
	if (slt_rnd_below(&r, 2) == 0)
		sl_sleep((int64_t) slt_rnd_below(&r, 50) * SL_MICROSECOND);
	else
		sl_yield();
	atomic_store(&s->effect, 1);
}

static void
on_party(struct party *p)
{
	struct on *s = p->st;

	pause_some(&p->rng, p->thread);
	sl_once_do(&s->once, on_fn, s);
	CHK(atomic_load(&s->effect) == 1, "once_do returned before fn "
	    "completed");
	sl_once_do(&s->once, on_fn, s);
}

static void
part_once(uint64_t seed, long rounds, char *sum, size_t len)
{
	struct crew *c = malloc(sizeof(*c));

	if (c == NULL)
		SLT_FATAL("out of memory");
	for (long r = 0; r < rounds; r++) {
		struct on *s = calloc(1, sizeof(*s));

		if (s == NULL)
			SLT_FATAL("out of memory");
		crew_start(c, N_GOR, N_THR, on_party, s, seed + (uint64_t) r);
		if (r % 2 == 0)
			sl_once_do(&s->once, on_fn, s);
		crew_finish(c, "once");
		CHK(atomic_load(&s->calls) == 1, "once fn ran %d times",
		    atomic_load(&s->calls));
		free(s);
	}
	snprintf(sum, len, "once %ld rounds", rounds);
	free(c);
}

/* ---- waitgroup ----------------------------------------------------------- */

struct wgs {
	sl_waitgroup wg;      /* reused over the rounds */
	atomic_long  spawned; /* workers counted into wg */
	atomic_long  finished;
	sl_waitgroup waiters;
	uint64_t     seed;
	atomic_long  seq;
};

static void wg_worker(void *arg);

static void
wg_work(struct wgs *s, uint64_t *rng, bool thread)
{
	if (!thread && slt_rnd_below(rng, 4) == 0) {
		/* Go-legal: the counter is above zero while we run. */
		atomic_fetch_add(&s->spawned, 1);
		sl_waitgroup_add(&s->wg, 1);
		SL_ASSERT_OK(sl_go(wg_worker, s));
	}
	pause_some(rng, thread);
	if (slt_rnd_below(rng, 4) == 0 && !thread)
		sl_sleep((int64_t) slt_rnd_below(rng, 100) * SL_MICROSECOND);
	atomic_fetch_add(&s->finished, 1);
	sl_waitgroup_done(&s->wg);
}

static void
wg_worker(void *arg)
{
	struct wgs *s = arg;
	uint64_t rng = s->seed + (uint64_t) atomic_fetch_add(&s->seq, 1);

	wg_work(s, &rng, false);
}

static void *
wg_thread(void *arg)
{
	struct wgs *s = arg;
	uint64_t rng = s->seed ^ (uint64_t) atomic_fetch_add(&s->seq, 1);

	wg_work(s, &rng, true);
	sl_sched_release();
	return (NULL);
}

static void
wg_waiter(void *arg)
{
	struct wgs *s = arg;

	sl_waitgroup_wait(&s->wg);
	CHK(atomic_load(&s->finished) == atomic_load(&s->spawned),
	    "an extra waiter returned with %ld of %ld done",
	    atomic_load(&s->finished), atomic_load(&s->spawned));
	sl_waitgroup_done(&s->waiters);
}

static void
part_waitgroup(uint64_t seed, long rounds, char *sum, size_t len)
{
	struct wgs *s = calloc(1, sizeof(*s));
	uint64_t rng = seed ^ 0x3a17;
	long total = 0;

	if (s == NULL)
		SLT_FATAL("out of memory");
	s->seed = seed;
	for (long r = 0; r < rounds; r++) {
		int n = 1 + (int) slt_rnd_below(&rng, 8);
		int nw = (int) slt_rnd_below(&rng, 3);
		bool th = slt_rnd_below(&rng, 4) == 0;
		pthread_t t;
		int rv;

		atomic_store(&s->spawned, n + th);
		atomic_store(&s->finished, 0);
		sl_waitgroup_add(&s->wg, n + th);
		sl_waitgroup_add(&s->waiters, nw);
		for (int i = 0; i < nw; i++)
			SL_ASSERT_OK(sl_go(wg_waiter, s));
		for (int i = 0; i < n; i++)
			SL_ASSERT_OK(sl_go(wg_worker, s));
		if (th) {
			sl_sched_hold();
			if (pthread_create(&t, NULL, wg_thread, s) != 0)
				SLT_FATAL("pthread_create failed");
		}
		if (slt_rnd_below(&rng, 2) == 0)
			rv = sl_waitgroup_wait_ctx(&s->wg, NULL,
			    sl_now() + HUNG);
		else {
			sl_waitgroup_wait(&s->wg);
			rv = 0;
		}
		if (rv != 0) {
			sl_dump_goroutines(stderr);
			SLT_FATAL("waitgroup round %ld hung (seed 0x%" PRIx64
			    ")", r, g_seed);
		}
		CHK(atomic_load(&s->finished) == atomic_load(&s->spawned),
		    "wait returned with %ld of %ld done",
		    atomic_load(&s->finished), atomic_load(&s->spawned));
		total += atomic_load(&s->spawned);
		if (sl_waitgroup_wait_ctx(&s->waiters, NULL, sl_now() + HUNG)
		    != 0)
			SLT_FATAL("waitgroup waiters hung");
		if (th)
			SL_CHECK_EQ(pthread_join(t, NULL), 0);
	}
	/* At zero: wait returns at once. */
	SL_CHECK_OK(sl_waitgroup_wait_ctx(&s->wg, NULL, 0));
	snprintf(sum, len, "waitgroup %ld rounds %ld workers", rounds, total);
	free(s);
}

/* ---- context --------------------------------------------------------- */

enum kind { K_CANCEL, K_TIMEOUT, K_DEADLINE, K_VALUE };

static const char ctx_keys[CTX_KEYS]; /* their addresses are the keys */

struct af {
	struct cx   *x;
	int          node;
	sl_ctx      *ctx;     /* a reference of our own */
	sl_afterfunc *stop;   /* handle, or NULL if none asked */
	atomic_int   ran;     /* times fn ran */
	atomic_int   stopped; /* sl_ctx_stop returned true */
	atomic_int   claimed; /* someone called (or will call) stop */
	atomic_int   ready;   /* registered: the fields are set */
};

struct cx {
	sl_ctx     *node[CTX_NODES];
	int         parent[CTX_NODES];
	enum kind   kind[CTX_NODES];
	int         key[CTX_NODES];     /* K_VALUE: which key */
	bool        has_dl[CTX_NODES];  /* effective deadline (any) */
	int64_t     dl[CTX_NODES];      /* effective deadline */
	bool        short_dl[CTX_NODES]; /* a deadline (own or inherited)
	                                    that may fire during the test */
	atomic_int  targeted[CTX_NODES]; /* a cancel of it has begun */
	atomic_int  code_node[CODE_MAX]; /* node each cause code went to */
	atomic_int  ncodes;
	struct af   af[AFN_MAX];
	atomic_int  naf;
	atomic_int  afran;             /* fn runs in total */
	long        quota;
	atomic_long nfirst, ncancel, nstopped;
};

static bool
is_ancestor_or_self(struct cx *x, int a, int d)
{
	for (; d >= 0; d = x->parent[d])
		if (d == a)
			return (true);
	return (false);
}

/* The done channel of a context is closed. */
static bool
done_closed(sl_ctx *c)
{
	sl_chan *d = sl_ctx_done(c);

	return (d != NULL && sl_chan_closed(d));
}

static void
af_fn(void *arg)
{
	struct af *a = arg;

	CHK(atomic_fetch_add(&a->ran, 1) == 0, "after_func of node %d ran "
	    "twice", a->node);
	CHK(sl_ctx_err(a->ctx) != 0, "after_func of node %d ran with the "
	    "context live", a->node);
	CHK(atomic_load(&a->stopped) == 0, "after_func of node %d ran "
	    "after sl_ctx_stop returned true", a->node);
	atomic_fetch_add(&a->x->afran, 1);
}

static void
af_register(struct cx *x, int node, uint64_t *rng)
{
	int i = atomic_fetch_add(&x->naf, 1);
	struct af *a;
	int rv;

	if (i >= AFN_MAX)
		return;
	a = &x->af[i];
	a->x = x;
	a->node = node;
	a->ctx = sl_ctx_retain(x->node[node]);
	rv = sl_ctx_after_func(a->ctx, af_fn, a,
	    slt_rnd_below(rng, 3) != 0 ? &a->stop : NULL);
	CHK(rv == 0, "after_func: %s", sl_errname(rv));
	atomic_store(&a->ready, 1);
}

/* Stops a random registration with a handle, once. */
static void
af_stop_some(struct cx *x, uint64_t *rng)
{
	int n = atomic_load(&x->naf);
	struct af *a;

	if (n > AFN_MAX)
		n = AFN_MAX;
	if (n == 0)
		return;
	a = &x->af[slt_rnd_below(rng, (uint32_t) n)];
	if (!atomic_load(&a->ready) || a->stop == NULL ||
	    atomic_exchange(&a->claimed, 1) != 0)
		return;
	if (sl_ctx_stop(a->stop)) {
		atomic_store(&a->stopped, 1);
		atomic_fetch_add(&x->nstopped, 1);
		CHK(atomic_load(&a->ran) == 0, "sl_ctx_stop true after "
		    "node %d's after_func ran", a->node);
	}
}

/* Cancels node i (not the root), and if this was the first cancel of i
 * checks its subtree. */
static void
cx_cancel(struct cx *x, int i, uint64_t *rng)
{
	sl_ctx *c = x->node[i];

	atomic_store(&x->targeted[i], 1);
	atomic_fetch_add(&x->ncancel, 1);
	if (slt_rnd_below(rng, 3) == 0 || x->kind[i] == K_VALUE) {
		sl_ctx_cancel(c);
		if (x->kind[i] != K_VALUE)
			CHK(sl_ctx_err(c) != 0, "node %d live after cancel",
			    i);
		return;
	}
	{
		int k = atomic_fetch_add(&x->ncodes, 1);
		char msg[32];
		const char *got = NULL;
		int code, cause;

		if (k >= CODE_MAX)
			return;
		code = CODE_BASE + k;
		atomic_store(&x->code_node[k], i);
		snprintf(msg, sizeof(msg), "cause %d", code);
		sl_ctx_cancel_cause(c, code, msg);
		CHK(sl_ctx_err(c) != 0, "node %d live after cancel_cause", i);
		cause = sl_ctx_cause(c, &got);
		if (cause != code)
			return; /* somebody else was first */
		atomic_fetch_add(&x->nfirst, 1);
		CHK(sl_ctx_err(c) == SL_ECANCELED, "node %d: err %s after "
		    "cancel_cause", i, sl_errname(sl_ctx_err(c)));
		CHK(got != NULL && strcmp(got, msg) == 0, "node %d cause "
		    "text '%s', want '%s'", i, got ? got : "(null)", msg);
		CHK(done_closed(c), "node %d: done open after cancel", i);
		for (int d = i + 1; d < CTX_NODES; d++) {
			bool other = false;
			int e;

			if (!is_ancestor_or_self(x, i, d))
				continue;
			for (e = d; e != i; e = x->parent[e])
				other |= atomic_load(&x->targeted[e]) != 0 ||
				    x->short_dl[e];
			if (other)
				continue;
			CHK(sl_ctx_err(x->node[d]) == SL_ECANCELED,
			    "node %d: err %s after its ancestor %d was "
			    "cancelled", d, sl_errname(sl_ctx_err(x->node[d])),
			    i);
			CHK(done_closed(x->node[d]), "node %d: done open "
			    "after its ancestor %d was cancelled", d, i);
			got = NULL;
			cause = sl_ctx_cause(x->node[d], &got);
			CHK(cause == code && got != NULL &&
			    strcmp(got, msg) == 0, "node %d: cause %d '%s' "
			    "after ancestor %d cancelled with %d '%s'", d,
			    cause, got ? got : "(null)", i, code, msg);
		}
	}
}

/* The value of key k the model predicts at node i. */
static void *
cx_expect_value(struct cx *x, int i, int k)
{
	for (; i >= 0; i = x->parent[i])
		if (x->kind[i] == K_VALUE && x->key[i] == k)
			return (&x->node[i]);
	return (NULL);
}

static void
cx_check_static(struct cx *x, int i)
{
	int64_t dl = 0;
	bool has = sl_ctx_deadline(x->node[i], &dl);

	for (int k = 0; k < CTX_KEYS; k++) {
		void *v = sl_ctx_value(x->node[i], &ctx_keys[k]);

		CHK(v == cx_expect_value(x, i, k), "node %d key %d: value "
		    "%p, want %p", i, k, v, cx_expect_value(x, i, k));
	}
	CHK(has == x->has_dl[i] && (!has || dl == x->dl[i]), "node %d: "
	    "deadline %d/%" PRId64 ", want %d/%" PRId64, i, has, dl,
	    x->has_dl[i], x->dl[i]);
}

static void
cx_party(struct party *p)
{
	struct cx *x = p->st;

	for (long n = 0; n < x->quota; n++) {
		uint32_t r = slt_rnd_below(&p->rng, 100);
		int i = 1 + (int) slt_rnd_below(&p->rng, CTX_NODES - 1);

		if (r < 15)
			cx_cancel(x, i, &p->rng);
		else if (r < 30)
			af_register(x, i, &p->rng);
		else if (r < 45)
			af_stop_some(x, &p->rng);
		else if (r < 75) {
			/* Done is monotonic and reaches the subtree. */
			int e = sl_ctx_err(x->node[i]);
			int c = sl_ctx_cause(x->node[i], NULL);

			CHK(e == 0 || e == SL_ECANCELED || e == SL_EDEADLINE,
			    "node %d err %d", i, e);
			if (c != 0)
				CHK(sl_ctx_err(x->node[i]) != 0, "node %d: "
				    "cause %d, err 0", i, c);
		} else {
			cx_check_static(x, i);
		}
		pause_some(&p->rng, p->thread);
	}
}

/* One tree: build, race, check the quiet state, cancel all, check the
 * after_funcs, release. */
static void
cx_tree(uint64_t seed, long quota, struct cx *x)
{
	uint64_t rng = seed;
	struct crew *c = malloc(sizeof(*c));
	int64_t deadline_max = 0;

	if (c == NULL)
		SLT_FATAL("out of memory");
	x->quota = quota;
	x->parent[0] = -1;
	x->kind[0] = K_CANCEL;
	SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(), &x->node[0]));
	for (int i = 1; i < CTX_NODES; i++) {
		int p = (int) slt_rnd_below(&rng, (uint32_t) i);
		uint32_t r = slt_rnd_below(&rng, 100);
		sl_ctx *par = x->node[p];
		int64_t own = 0;
		bool longdl = slt_rnd_below(&rng, 2) == 0;
		int64_t t = longdl ? 600 * SL_SECOND :
		    (int64_t) slt_rnd_below(&rng, 3000) * SL_MICROSECOND;

		x->parent[i] = p;
		x->has_dl[i] = x->has_dl[p];
		x->dl[i] = x->dl[p];
		if (r < 35) {
			x->kind[i] = K_CANCEL;
			SL_ASSERT_OK(sl_ctx_with_cancel(par, &x->node[i]));
		} else if (r < 55) {
			int64_t lo = sl_now(), got = 0;

			x->kind[i] = K_TIMEOUT;
			SL_ASSERT_OK(sl_ctx_with_timeout(par, t, &x->node[i]));
			CHK(sl_ctx_deadline(x->node[i], &got), "node %d: no "
			    "deadline", i);
			own = got;
			if (!x->has_dl[p] || x->dl[p] > got) {
				CHK(got >= lo + t && got <= sl_now() + t,
				    "node %d: timeout deadline off", i);
			} else {
				CHK(got == x->dl[p], "node %d: deadline not "
				    "the parent's earlier one", i);
			}
			x->has_dl[i] = true;
			x->dl[i] = got;
		} else if (r < 75) {
			x->kind[i] = K_DEADLINE;
			own = sl_now() + t - (slt_rnd_below(&rng, 8) == 0 ?
			    SL_MILLISECOND * 5 : 0); /* some already past */
			SL_ASSERT_OK(sl_ctx_with_deadline(par, own,
			    &x->node[i]));
			if (!x->has_dl[p] || own < x->dl[p])
				x->dl[i] = own;
			x->has_dl[i] = true;
		} else {
			x->kind[i] = K_VALUE;
			x->key[i] = (int) slt_rnd_below(&rng, CTX_KEYS);
			SL_ASSERT_OK(sl_ctx_with_value(par,
			    &ctx_keys[x->key[i]], &x->node[i], &x->node[i]));
		}
		(void) own;
		x->short_dl[i] = x->has_dl[i] &&
		    x->dl[i] < 60 * SL_SECOND + sl_now();
		if (x->short_dl[i] && x->dl[i] > deadline_max)
			deadline_max = x->dl[i];
		cx_check_static(x, i);
		if (slt_rnd_below(&rng, 4) == 0)
			af_register(x, i, &rng);
	}
	/* One on background: never runs; stop says so. */
	{
		sl_afterfunc *h = NULL;
		struct af bg;

		memset(&bg, 0, sizeof(bg));
		SL_CHECK_OK(sl_ctx_after_func(sl_ctx_background(), af_fn, &bg,
		    &h));
		CHK(sl_ctx_stop(h), "stop of a background after_func false");
	}

	crew_start(c, N_GOR, N_THR, cx_party, x, seed);
	crew_finish(c, "context");

	/* The quiet state.  Let the short deadlines pass first. */
	while (sl_now() <= deadline_max)
		sl_sleep(deadline_max - sl_now() + SL_MICROSECOND);
	for (int i = 0; i < CTX_NODES; i++) {
		sl_ctx *n = x->node[i];
		int e = sl_ctx_err(n), p = x->parent[i];
		const char *msg = NULL;
		int cause = sl_ctx_cause(n, &msg);

		cx_check_static(x, i);
		CHK(e == 0 || e == SL_ECANCELED || e == SL_EDEADLINE,
		    "node %d: err %d", i, e);
		CHK((e == 0) == (cause == 0), "node %d: err %s cause %d", i,
		    sl_errname(e), cause);
		CHK((e != 0) == done_closed(n), "node %d: err %s, done %s",
		    i, sl_errname(e), done_closed(n) ? "closed" : "open");
		if (x->has_dl[i] && x->dl[i] <= sl_now())
			CHK(e == SL_EDEADLINE || e == SL_ECANCELED, "node %d:"
			    " live after its deadline", i);
		if (p >= 0 && sl_ctx_err(x->node[p]) != 0)
			CHK(e != 0, "node %d live under done parent %d", i,
			    p);
		if (x->kind[i] == K_VALUE) {
			const char *pm = NULL;
			int pc = sl_ctx_cause(x->node[p], &pm);

			CHK(e == sl_ctx_err(x->node[p]) && cause == pc &&
			    (pc == 0 || (msg && pm && !strcmp(msg, pm))),
			    "value node %d: err %s cause %d, parent %s %d", i,
			    sl_errname(e), cause,
			    sl_errname(sl_ctx_err(x->node[p])), pc);
		}
		if (e == SL_EDEADLINE)
			CHK(cause == SL_EDEADLINE && x->has_dl[i] &&
			    x->dl[i] <= sl_now(), "node %d: SL_EDEADLINE with "
			    "cause %d", i, cause);
		if (e == SL_ECANCELED && cause != SL_ECANCELED) {
			int k = cause - CODE_BASE;
			char want[32];

			CHK(k >= 0 && k < atomic_load(&x->ncodes) &&
			    k < CODE_MAX && is_ancestor_or_self(x,
			    atomic_load(&x->code_node[k]), i), "node %d: "
			    "cause %d never given to it or an ancestor", i,
			    cause);
			snprintf(want, sizeof(want), "cause %d", cause);
			CHK(msg != NULL && strcmp(msg, want) == 0, "node %d: "
			    "cause text '%s', want '%s'", i, msg ? msg :
			    "(null)", want);
		}
	}
	/* A value context ignores cancel. */
	for (int i = 0; i < CTX_NODES; i++) {
		if (x->kind[i] == K_VALUE) {
			int e = sl_ctx_err(x->node[i]);

			sl_ctx_cancel(x->node[i]);
			CHK(sl_ctx_err(x->node[i]) == e, "cancel of value "
			    "node %d changed it", i);
		}
	}

	/* Cancel everything: every node is done once it returns. */
	sl_ctx_cancel(x->node[0]);
	for (int i = 0; i < CTX_NODES; i++)
		CHK(sl_ctx_err(x->node[i]) != 0 && done_closed(x->node[i]),
		    "node %d live after the root was cancelled", i);
	/* Every after_func not stopped runs, once.  A stop now is late. */
	{
		int naf = atomic_load(&x->naf);
		int want = 0;
		int64_t t_end = sl_now() + HUNG;

		if (naf > AFN_MAX)
			naf = AFN_MAX;
		for (int i = 0; i < naf; i++) {
			struct af *a = &x->af[i];

			if (a->stop != NULL &&
			    atomic_exchange(&a->claimed, 1) == 0) {
				CHK(!sl_ctx_stop(a->stop), "sl_ctx_stop true "
				    "after node %d was cancelled", a->node);
			}
			want += atomic_load(&a->stopped) == 0;
		}
		while (atomic_load(&x->afran) < want && sl_now() < t_end)
			sl_sleep(100 * SL_MICROSECOND);
		sl_sleep(SL_MILLISECOND); /* a duplicate would show now */
		CHK(atomic_load(&x->afran) == want, "%d after_funcs ran, want "
		    "%d", atomic_load(&x->afran), want);
		for (int i = 0; i < naf; i++) {
			struct af *a = &x->af[i];

			CHK(atomic_load(&a->ran) == !atomic_load(&a->stopped),
			    "after_func %d of node %d ran %d times, stopped "
			    "%d", i, a->node, atomic_load(&a->ran),
			    atomic_load(&a->stopped));
			sl_ctx_release(a->ctx);
		}
	}
	/* Release in a random order (children may outlive parents). */
	for (int i = CTX_NODES - 1; i > 0; i--) {
		int j = (int) slt_rnd_below(&rng, (uint32_t) i + 1);
		sl_ctx *t = x->node[i];

		x->node[i] = x->node[j];
		x->node[j] = t;
	}
	for (int i = 0; i < CTX_NODES; i++)
		sl_ctx_release(x->node[i]);
	free(c);
}

static void
part_context(uint64_t seed, long trees, long quota, char *sum, size_t len)
{
	long cancels = 0, firsts = 0, afs = 0, stopped = 0;

	for (long t = 0; t < trees; t++) {
		struct cx *x = calloc(1, sizeof(*x));

		if (x == NULL)
			SLT_FATAL("out of memory");
		cx_tree(seed + (uint64_t) t * 7919, quota, x);
		cancels += atomic_load(&x->ncancel);
		firsts += atomic_load(&x->nfirst);
		afs += atomic_load(&x->naf) < AFN_MAX ? atomic_load(&x->naf) :
		    AFN_MAX;
		stopped += atomic_load(&x->nstopped);
		free(x);
	}
	snprintf(sum, len, "ctx %ld trees %ld cancels (%ld first with "
	    "cause) %ld after_funcs (%ld stopped)", trees, cancels, firsts,
	    afs, stopped);
}

/* ---- the cases ------------------------------------------------------------ */

struct cs_case {
	int      procs;
	uint64_t seed;
	uint64_t run_seed;
	long     quota;    /* base operations per party */
};

static void
body(void *arg)
{
	struct cs_case *c = arg;
	char s[6][160];
	int64_t t0 = sl_now();
	long q = c->quota;

	part_mutex(c->run_seed ^ 1, q, s[0], sizeof(s[0]));
	part_rwmutex(c->run_seed ^ 2, q, s[1], sizeof(s[1]));
	part_cond(c->run_seed ^ 3, q, s[2], sizeof(s[2]));
	part_once(c->run_seed ^ 4, q / 40 > 2 ? q / 40 : 2, s[3],
	    sizeof(s[3]));
	part_waitgroup(c->run_seed ^ 5, q / 10 > 2 ? q / 10 : 2, s[4],
	    sizeof(s[4]));
	part_context(c->run_seed ^ 6, q / 40 > 1 ? q / 40 : 1,
	    q / 40 > 20 ? q / 40 : 20, s[5], sizeof(s[5]));
	printf("chaos_sync seed 0x%" PRIx64 " procs %d in %.2f s: %s; %s; "
	    "%s; %s; %s; %s\n", c->run_seed, c->procs,
	    (double) (sl_now() - t0) / SL_SECOND, s[0], s[1], s[2], s[3],
	    s[4], s[5]);
	fflush(stdout);
	slt_replay_hint("chaos_sync", c->run_seed, c->procs);
}

static void
test_chaos_sync(void **state)
{
	struct cs_case *c = *state;

	c->run_seed = slt_seed(c->seed);
	g_seed = c->run_seed;
	c->quota = slt_scaled_min(QUOTA_BASE, 400); /* valgrind: 10% */
#ifdef SLT_TSAN
	c->quota = c->quota / TSAN_DIVISOR > 0 ? c->quota / TSAN_DIVISOR : 1;
#endif
	slt_run_procs(c->procs, body, c);
}

static struct cs_case cases[] = {
	{ .procs = 1, .seed = 0x51c0001 }, { .procs = 1, .seed = 0x51c0002 },
	{ .procs = 2, .seed = 0x51c0001 }, { .procs = 2, .seed = 0x51c0002 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_sync_1_worker_seed_1", test_chaos_sync, NULL,
		    NULL, &cases[0] },
		{ "test_chaos_sync_1_worker_seed_2", test_chaos_sync, NULL,
		    NULL, &cases[1] },
		{ "test_chaos_sync_2_workers_seed_1", test_chaos_sync, NULL,
		    NULL, &cases[2] },
		{ "test_chaos_sync_2_workers_seed_2", test_chaos_sync, NULL,
		    NULL, &cases[3] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
