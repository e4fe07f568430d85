/*
 * test_sync.c — WaitGroup, Mutex, RWMutex, Cond and Once (sluice/sync.h).
 *
 * Each case runs its body as the main goroutine of a fresh sl_main
 * (slt_run); checks inside goroutines and threads use SL_CHECK_* from
 * sltest.h, which fail the case once sl_main has returned.  Several cases
 * look inside the objects (queue lengths, counts) under their spinlock to
 * assert exact states.  The fatal-error cases run the misuse in a forked
 * child and check its signal and stderr.  Stress loops scale with
 * SLUICE_TEST_SCALE.
 */
#include <pthread.h>

#include "sltest.h"
#include "core/lock.h"
#include "sched/wait.h"

/* The number of entries in a sync object's wait queue. */
static int
qlen(atomic_int *lock, struct sli_waitq *q)
{
	int n = 0;

	sli_lock(lock);
	for (sli_waiter *e = q->head; e != NULL; e = e->next)
		n++;
	sli_unlock(lock);
	return (n);
}

/* Sleeps in 1 ms steps until qlen reaches want; false after 10 s. */
static bool
await_qlen(atomic_int *lock, struct sli_waitq *q, int want)
{
	int64_t end = sl_now() + 10 * SL_SECOND;

	while (qlen(lock, q) != want) {
		if (sl_now() > end)
			return (false);
		sl_sleep(SL_MILLISECOND);
	}
	return (true);
}

/* Sleeps in 1 ms steps until *v == want; false after 10 s. */
static bool
await_int(atomic_int *v, int want)
{
	int64_t end = sl_now() + 10 * SL_SECOND;

	while (atomic_load(v) != want) {
		if (sl_now() > end)
			return (false);
		sl_sleep(SL_MILLISECOND);
	}
	return (true);
}

#define GO(fn, arg) SL_CHECK_OK(sl_go((fn), (arg)))

/* ---- WaitGroup ---------------------------------------------------------- */

#define WG_N 64

struct wg_sum {
	sl_waitgroup wg;         /* the group under test */
	int64_t      part[WG_N]; /* each worker's partial sum */
	int          next;       /* index handed to the next worker, under mu */
	sl_mutex     mu;         /* guards next */
};

static void
wg_sum_worker(void *arg)
{
	struct wg_sum *s = arg;

	sl_mutex_lock(&s->mu);
	int i = s->next++;
	sl_mutex_unlock(&s->mu);
	/* Sum of i*1000 .. i*1000+999, with a yield in the middle. */
	int64_t sum = 0;
	for (int64_t k = 0; k < 1000; k++) {
		sum += (int64_t) i * 1000 + k;
		if (k == 500)
			sl_yield();
	}
	s->part[i] = sum;
	sl_waitgroup_done(&s->wg);
}

static void
wg_sum_main(void *arg)
{
	struct wg_sum *s = arg;

	sl_waitgroup_wait(&s->wg); /* zero: returns at once */
	sl_waitgroup_add(&s->wg, WG_N);
	for (int i = 0; i < WG_N; i++)
		GO(wg_sum_worker, s);
	sl_waitgroup_wait(&s->wg);
	int64_t total = 0;
	for (int i = 0; i < WG_N; i++)
		total += s->part[i];
	/* 0 + 1 + ... + (WG_N*1000 - 1) */
	SL_CHECK_EQ(total, (int64_t) WG_N * 1000 * (WG_N * 1000 - 1) / 2);
	SL_CHECK_EQ(s->wg.count, 0);
	SL_CHECK(s->wg.waiters.head == NULL);

	/* A WaitGroup can be reused once it is back at zero. */
	s->next = 0;
	memset(s->part, 0, sizeof(s->part));
	sl_waitgroup_add(&s->wg, 8);
	for (int i = 0; i < 8; i++)
		GO(wg_sum_worker, s);
	sl_waitgroup_wait(&s->wg);
	total = 0;
	for (int i = 0; i < WG_N; i++)
		total += s->part[i];
	SL_CHECK_EQ(total, (int64_t) 8 * 1000 * (8 * 1000 - 1) / 2);
}

static void
test_waitgroup_sums_work_of_64_goroutines(void **state)
{
	struct wg_sum *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(wg_sum_main, s);
	free(s);
}

struct wg_ctx {
	sl_waitgroup wg;           /* the group under test */
	sl_waitgroup waiters_done; /* counts the wg_ctx_waiters out */
	atomic_int   released;     /* waiters that got past wg */
};

static void
wg_ctx_finisher(void *arg)
{
	struct wg_ctx *s = arg;

	sl_sleep(10 * SL_MILLISECOND);
	sl_waitgroup_done(&s->wg);
}

static void
wg_ctx_waiter(void *arg)
{
	struct wg_ctx *s = arg;

	int rc = sl_waitgroup_wait_ctx(&s->wg, NULL, sl_now() + 10 * SL_SECOND);
	SL_CHECK_OK(rc);
	SL_CHECK_EQ(s->wg.count, 0);
	atomic_fetch_add(&s->released, 1);
	sl_waitgroup_done(&s->waiters_done);
}

static void
wg_ctx_main(void *arg)
{
	struct wg_ctx *s = arg;
	sl_ctx *ctx;

	sl_waitgroup_add(&s->wg, 1);

	/* Times out while the counter is positive. */
	int64_t t0 = sl_now();
	SL_CHECK_ERR(sl_waitgroup_wait_ctx(&s->wg, NULL,
	    t0 + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
	SL_CHECK(s->wg.waiters.head == NULL);
	/* A deadline already past fails at once. */
	SL_CHECK_ERR(sl_waitgroup_wait_ctx(&s->wg, NULL, 0), SL_ETIMEDOUT);

	/* Canceled contexts report their error. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	sl_ctx_cancel(ctx);
	SL_CHECK_ERR(sl_waitgroup_wait_ctx(&s->wg, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    10 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_waitgroup_wait_ctx(&s->wg, ctx, SL_FOREVER),
	    SL_EDEADLINE);
	sl_ctx_release(ctx);
	SL_CHECK(s->wg.waiters.head == NULL);
	SL_CHECK_EQ(s->wg.count, 1);

	/* Five waiters all released by the one done(), and then us. */
	sl_waitgroup_add(&s->waiters_done, 5);
	for (int i = 0; i < 5; i++)
		GO(wg_ctx_waiter, s);
	SL_CHECK(await_qlen(&s->wg.lock, &s->wg.waiters, 5));
	SL_CHECK_EQ(atomic_load(&s->released), 0);
	GO(wg_ctx_finisher, s);
	SL_CHECK_OK(sl_waitgroup_wait_ctx(&s->wg, NULL,
	    sl_now() + 10 * SL_SECOND));
	sl_waitgroup_wait(&s->waiters_done);
	SL_CHECK_EQ(atomic_load(&s->released), 5);
	SL_CHECK(s->wg.waiters.head == NULL);
}

static void
test_waitgroup_wait_ctx_times_out_then_succeeds(void **state)
{
	struct wg_ctx *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(wg_ctx_main, s);
	free(s);
}

/* The waiter frees the WaitGroup as soon as wait returns, while the
 * goroutines' done() calls may still be finishing on the other worker:
 * done() must not touch it after the count reaches zero and the waiter
 * is free to go (ASan and TSan see it if it does). */
static void
wg_doner(void *arg)
{
	sl_waitgroup_done(arg);
}

static void
wg_free_main(void *arg)
{
	int rounds = (int) slt_scaled_min(3000, 50);

	(void) arg;
	for (int r = 0; r < rounds; r++) {
		sl_waitgroup *wg = calloc(1, sizeof(*wg));

		SL_CHECK(wg != NULL);
		sl_waitgroup_add(wg, 4);
		for (int i = 0; i < 4; i++)
			GO(wg_doner, wg);
		if (r % 2 == 0)
			sl_yield();
		sl_waitgroup_wait(wg);
		free(wg);
	}
}

static void
test_waitgroup_freed_right_after_wait(void **state)
{
	slt_run(wg_free_main, *state);
}

/* ---- Mutex -------------------------------------------------------------- */

#define MU_G     8
#define MU_ITERS 10000 /* per goroutine, scaled */

struct mu_count {
	sl_mutex     mu;      /* the mutex under test */
	sl_waitgroup wg;      /* counts the workers out */
	long         counter; /* plain: only touched under mu */
	atomic_int   inside;   /* goroutines in the critical section */
	atomic_int   overlaps; /* times inside was already non-zero */
	int          iters;   /* increments per goroutine */
};

static void
mu_count_worker(void *arg)
{
	struct mu_count *s = arg;

	for (int i = 0; i < s->iters; i++) {
		sl_mutex_lock(&s->mu);
		if (atomic_fetch_add(&s->inside, 1) != 0)
			atomic_fetch_add(&s->overlaps, 1);
		long v = s->counter;
		if (i % 64 == 0)
			sl_yield(); /* let others pile up on the mutex */
		s->counter = v + 1;
		atomic_fetch_sub(&s->inside, 1);
		sl_mutex_unlock(&s->mu);
	}
	sl_waitgroup_done(&s->wg);
}

static void
mu_count_main(void *arg)
{
	struct mu_count *s = arg;

	s->iters = (int) slt_scaled_min(MU_ITERS, 200);
	sl_waitgroup_add(&s->wg, MU_G);
	for (int i = 0; i < MU_G; i++)
		GO(mu_count_worker, s);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(s->counter, (long) MU_G * s->iters);
	SL_CHECK_EQ(atomic_load(&s->overlaps), 0);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
	SL_CHECK(s->mu.waiters.head == NULL);
}

static void
test_mutex_8_goroutines_count_exactly(void **state)
{
	struct mu_count *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mu_count_main, s);
	free(s);
}

struct mu_order;

/* The argument of one mu_order_locker. */
struct mu_locker {
	struct mu_order *s;  /* the shared state */
	int              id; /* recorded in s->order when it gets the lock */
};

struct mu_order {
	sl_mutex         mu;       /* the mutex under test */
	sl_waitgroup     wg;       /* counts the goroutines out */
	int              order[6]; /* locker ids in locking order, under mu */
	int              n;        /* entries in order, under mu */
	struct mu_locker lk[6];    /* arguments of the lockers */
	atomic_int       timed_out; /* set by the waiter that gave up */
	sl_ctx          *ctx;       /* canceled to make a waiter give up */
};

static void mu_cancel_waiter(void *arg);

static void
mu_order_locker(void *arg)
{
	struct mu_locker *lk = arg;
	struct mu_order *s = lk->s;
	int id = lk->id;

	sl_mutex_lock(&s->mu);
	s->order[s->n++] = id;
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_done(&s->wg);
}

static void
mu_order_timeouter(void *arg)
{
	struct mu_order *s = arg;

	int64_t t0 = sl_now();
	int rc = sl_mutex_lock_ctx(&s->mu, NULL, t0 + 30 * SL_MILLISECOND);
	SL_CHECK_ERR(rc, SL_ETIMEDOUT);
	if (rc == 0)
		sl_mutex_unlock(&s->mu);
	SL_CHECK(sl_now() - t0 >= 30 * SL_MILLISECOND);
	atomic_store(&s->timed_out, 1);
	sl_waitgroup_done(&s->wg);
}

static void
mu_timeout_main(void *arg)
{
	struct mu_order *s = arg;

	for (int i = 0; i < 6; i++)
		s->lk[i] = (struct mu_locker){ s, i };

	/* Free mutex: lock_ctx takes it even with a past deadline. */
	SL_CHECK_OK(sl_mutex_lock_ctx(&s->mu, NULL, 0));
	/* Held: a past deadline fails at once, without queueing. */
	SL_CHECK_ERR(sl_mutex_lock_ctx(&s->mu, NULL, 0), SL_ETIMEDOUT);
	SL_CHECK(s->mu.waiters.head == NULL);

	/* A queued waiter times out and leaves the queue; we still hold. */
	sl_waitgroup_add(&s->wg, 1);
	GO(mu_order_timeouter, s);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->timed_out), 1);
	SL_CHECK_EQ(qlen(&s->mu.lock, &s->mu.waiters), 0);
	SL_CHECK(!sl_mutex_trylock(&s->mu));
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 2);

	/* Queue: locker 0, a waiter that gives up (canceled), locker 1:
	 * the unlock must skip the one that left. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &s->ctx));
	atomic_store(&s->timed_out, 0);
	sl_waitgroup_add(&s->wg, 3);
	GO(mu_order_locker, &s->lk[0]);
	SL_CHECK(await_qlen(&s->mu.lock, &s->mu.waiters, 1));
	GO(mu_cancel_waiter, s);
	SL_CHECK(await_qlen(&s->mu.lock, &s->mu.waiters, 2));
	GO(mu_order_locker, &s->lk[1]);
	SL_CHECK(await_qlen(&s->mu.lock, &s->mu.waiters, 3));
	sl_ctx_cancel(s->ctx);
	SL_CHECK(await_int(&s->timed_out, 1));
	SL_CHECK_EQ(qlen(&s->mu.lock, &s->mu.waiters), 2);
	SL_CHECK_EQ(s->n, 0);
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(s->n, 2);
	SL_CHECK_EQ(s->order[0], 0);
	SL_CHECK_EQ(s->order[1], 1);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
	SL_CHECK(s->mu.waiters.head == NULL);

	/* Usable afterwards. */
	SL_CHECK(sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
	SL_CHECK_OK(sl_mutex_lock_ctx(&s->mu, NULL, sl_now() + SL_SECOND));
	sl_mutex_unlock(&s->mu);
	sl_ctx_release(s->ctx);
}

static void
test_mutex_lock_ctx_times_out_and_stays_consistent(void **state)
{
	struct mu_order *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mu_timeout_main, s);
	free(s);
}

static void
mu_cancel_waiter(void *arg)
{
	struct mu_order *s = arg;

	int rc = sl_mutex_lock_ctx(&s->mu, s->ctx, SL_FOREVER);
	SL_CHECK_ERR(rc, SL_ECANCELED);
	if (rc == 0)
		sl_mutex_unlock(&s->mu);
	atomic_store(&s->timed_out, 1);
	sl_waitgroup_done(&s->wg);
}

static void
mu_cancel_main(void *arg)
{
	struct mu_order *s = arg;
	sl_ctx *ctx;

	sl_mutex_lock(&s->mu);

	/* Already canceled: fails without waiting. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	sl_ctx_cancel(ctx);
	SL_CHECK_ERR(sl_mutex_lock_ctx(&s->mu, ctx, SL_FOREVER), SL_ECANCELED);
	sl_ctx_release(ctx);

	/* Canceled while queued. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &s->ctx));
	sl_waitgroup_add(&s->wg, 1);
	GO(mu_cancel_waiter, s);
	SL_CHECK(await_qlen(&s->mu.lock, &s->mu.waiters, 1));
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s->timed_out), 0);
	sl_ctx_cancel(s->ctx);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->timed_out), 1);
	SL_CHECK(s->mu.waiters.head == NULL);
	sl_ctx_release(s->ctx);

	/* A context deadline reports SL_EDEADLINE. */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    10 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_mutex_lock_ctx(&s->mu, ctx, SL_FOREVER), SL_EDEADLINE);
	sl_ctx_release(ctx);

	sl_mutex_unlock(&s->mu);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
	SL_CHECK(sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
}

static void
test_mutex_lock_ctx_canceled_by_context(void **state)
{
	struct mu_order *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mu_cancel_main, s);
	free(s);
}

static void
mu_fifo_main(void *arg)
{
	struct mu_order *s = arg;

	for (int i = 0; i < 6; i++)
		s->lk[i] = (struct mu_locker){ s, i };
	sl_mutex_lock(&s->mu);
	sl_waitgroup_add(&s->wg, 6);
	for (int i = 0; i < 6; i++) {
		GO(mu_order_locker, &s->lk[i]);
		SL_CHECK(await_qlen(&s->mu.lock, &s->mu.waiters, i + 1));
	}
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(s->n, 6);
	for (int i = 0; i < 6; i++)
		SL_CHECK_EQ(s->order[i], i);
}

static void
test_mutex_hands_off_in_fifo_order(void **state)
{
	struct mu_order *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mu_fifo_main, s);
	free(s);
}

static void
mu_try_other(void *arg)
{
	struct mu_order *s = arg;

	/* Another goroutine may unlock (Go semantics). */
	SL_CHECK(!sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_done(&s->wg);
}

static void
mu_trylock_main(void *arg)
{
	struct mu_order *s = arg;

	SL_CHECK(sl_mutex_trylock(&s->mu));
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 1);
	SL_CHECK(!sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
	SL_CHECK(sl_mutex_trylock(&s->mu));
	sl_waitgroup_add(&s->wg, 1);
	GO(mu_try_other, s);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
	SL_CHECK(sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
}

static void
test_mutex_trylock(void **state)
{
	struct mu_order *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mu_trylock_main, s);
	free(s);
}

/* ---- RWMutex ------------------------------------------------------------ */

#define RW_READERS 8

struct rw_state {
	sl_rwmutex   rw;          /* the RWMutex under test */
	sl_waitgroup wg;          /* counts the goroutines out */
	sl_waitgroup all_in;      /* barrier: every reader inside at once */
	atomic_int   readers_in;  /* readers inside their critical section */
	atomic_int   writers_in;  /* writers inside theirs */
	atomic_int   max_readers; /* most readers_in ever seen */
	atomic_int   violations;  /* exclusion rules seen broken */
	atomic_int   stop;        /* tells looping parties to finish */
	atomic_int   flag;        /* per-case progress signal */
	long         shared;      /* written under the write lock */
	int          order[8];    /* party ids in the order they got in */
	atomic_int   n;           /* entries in order */
	sl_ctx      *ctx;         /* canceled to make a waiter give up */
	int          iters;       /* loop count of the stress parties */
};

/* rw's reader count and writer flag, read under its lock. */
static int
rw_readers(sl_rwmutex *rw)
{
	sli_lock(&rw->lock);
	int n = rw->readers;
	sli_unlock(&rw->lock);
	return (n);
}

static bool
rw_writer(sl_rwmutex *rw)
{
	sli_lock(&rw->lock);
	bool w = rw->writer;
	sli_unlock(&rw->lock);
	return (w);
}

static void
rw_note_reader_in(struct rw_state *s)
{
	int now = atomic_fetch_add(&s->readers_in, 1) + 1;
	int max = atomic_load(&s->max_readers);

	while (now > max &&
	    !atomic_compare_exchange_weak(&s->max_readers, &max, now))
		;
	if (atomic_load(&s->writers_in) != 0)
		atomic_fetch_add(&s->violations, 1);
}

static void
rw_concurrent_reader(void *arg)
{
	struct rw_state *s = arg;

	sl_rwmutex_rlock(&s->rw);
	rw_note_reader_in(s);
	/* Every reader must be inside at the same time to get past this. */
	sl_waitgroup_done(&s->all_in);
	SL_CHECK_OK(sl_waitgroup_wait_ctx(&s->all_in, NULL,
	    sl_now() + 10 * SL_SECOND));
	atomic_fetch_sub(&s->readers_in, 1);
	sl_rwmutex_runlock(&s->rw);
	sl_waitgroup_done(&s->wg);
}

static void
rw_concurrent_main(void *arg)
{
	struct rw_state *s = arg;

	sl_waitgroup_add(&s->wg, RW_READERS);
	sl_waitgroup_add(&s->all_in, RW_READERS);
	for (int i = 0; i < RW_READERS; i++)
		GO(rw_concurrent_reader, s);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->max_readers), RW_READERS);
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	SL_CHECK(!rw_writer(&s->rw));
	/* Now free for a writer. */
	SL_CHECK_OK(sl_rwmutex_lock_ctx(&s->rw, NULL, 0));
	sl_rwmutex_unlock(&s->rw);
}

static void
test_rwmutex_readers_run_concurrently(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_concurrent_main, s);
	free(s);
}

#define RW_X_ITERS 500 /* per goroutine, scaled */

static void
rw_x_reader(void *arg)
{
	struct rw_state *s = arg;
	long last = 0;

	for (int i = 0; i < s->iters; i++) {
		sl_rwmutex_rlock(&s->rw);
		rw_note_reader_in(s);
		long v = s->shared;
		if (v < last) /* writers only increase it */
			atomic_fetch_add(&s->violations, 1);
		last = v;
		if (i % 4 == 0)
			sl_yield();
		if (atomic_load(&s->writers_in) != 0)
			atomic_fetch_add(&s->violations, 1);
		atomic_fetch_sub(&s->readers_in, 1);
		sl_rwmutex_runlock(&s->rw);
	}
	sl_waitgroup_done(&s->wg);
}

static void
rw_x_writer(void *arg)
{
	struct rw_state *s = arg;

	for (int i = 0; i < s->iters; i++) {
		sl_rwmutex_lock(&s->rw);
		if (atomic_fetch_add(&s->writers_in, 1) != 0)
			atomic_fetch_add(&s->violations, 1);
		if (atomic_load(&s->readers_in) != 0)
			atomic_fetch_add(&s->violations, 1);
		long v = s->shared;
		if (i % 4 == 0)
			sl_yield();
		s->shared = v + 1;
		if (atomic_load(&s->readers_in) != 0)
			atomic_fetch_add(&s->violations, 1);
		atomic_fetch_sub(&s->writers_in, 1);
		sl_rwmutex_unlock(&s->rw);
	}
	sl_waitgroup_done(&s->wg);
}

static void
rw_exclusive_main(void *arg)
{
	struct rw_state *s = arg;

	s->iters = (int) slt_scaled_min(RW_X_ITERS, 50);
	sl_waitgroup_add(&s->wg, 4 + RW_READERS);
	for (int i = 0; i < RW_READERS; i++) {
		GO(rw_x_reader, s);
		if (i < 4)
			GO(rw_x_writer, s);
	}
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(s->shared, 4 * s->iters);
	SL_CHECK_EQ(atomic_load(&s->violations), 0);
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	SL_CHECK(!rw_writer(&s->rw));
	SL_CHECK(s->rw.waiters.head == NULL);
}

static void
test_rwmutex_writers_are_exclusive(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_exclusive_main, s);
	free(s);
}

/* Readers that keep the lock read-held by overlapping one another. */
static void
rw_churn_reader(void *arg)
{
	struct rw_state *s = arg;

	while (!atomic_load(&s->stop)) {
		sl_rwmutex_rlock(&s->rw);
		rw_note_reader_in(s);
		sl_sleep(SL_MILLISECOND);
		atomic_fetch_sub(&s->readers_in, 1);
		sl_rwmutex_runlock(&s->rw);
		sl_yield();
	}
	sl_waitgroup_done(&s->wg);
}

static void
rw_starve_main(void *arg)
{
	struct rw_state *s = arg;

	sl_waitgroup_add(&s->wg, 4);
	for (int i = 0; i < 4; i++)
		GO(rw_churn_reader, s);
	/* Wait until the readers are actually overlapping. */
	int64_t end = sl_now() + 10 * SL_SECOND;
	while (atomic_load(&s->max_readers) < 2 && sl_now() < end)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK(atomic_load(&s->max_readers) >= 2);
	/* The writer gets in although readers never all leave on their own. */
	SL_CHECK_OK(sl_rwmutex_lock_ctx(&s->rw, NULL,
	    sl_now() + 10 * SL_SECOND));
	SL_CHECK_EQ(atomic_load(&s->readers_in), 0);
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	atomic_store(&s->stop, 1);
	sl_rwmutex_unlock(&s->rw);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->violations), 0);
}

static void
test_rwmutex_writer_not_starved_by_readers(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_starve_main, s);
	free(s);
}

static void
rw_blocked_reader(void *arg)
{
	struct rw_state *s = arg;

	/* A writer is queued: a new reader must not get in. */
	int rc = sl_rwmutex_rlock_ctx(&s->rw, NULL,
	    sl_now() + 20 * SL_MILLISECOND);
	SL_CHECK_ERR(rc, SL_ETIMEDOUT);
	if (rc == 0)
		sl_rwmutex_runlock(&s->rw);
	atomic_fetch_add(&s->flag, 1);
	sl_waitgroup_done(&s->wg);
}

static void
rw_queued_writer(void *arg)
{
	struct rw_state *s = arg;

	sl_rwmutex_lock(&s->rw);
	s->order[atomic_fetch_add(&s->n, 1)] = 100;
	sl_rwmutex_unlock(&s->rw);
	sl_waitgroup_done(&s->wg);
}

static void
rw_canceled_writer(void *arg)
{
	struct rw_state *s = arg;

	int rc = sl_rwmutex_lock_ctx(&s->rw, s->ctx, SL_FOREVER);
	SL_CHECK_ERR(rc, SL_ECANCELED);
	if (rc == 0)
		sl_rwmutex_unlock(&s->rw);
	sl_waitgroup_done(&s->wg);
}

static void
rw_late_reader(void *arg)
{
	struct rw_state *s = arg;

	sl_rwmutex_rlock(&s->rw);
	s->order[atomic_fetch_add(&s->n, 1)] = 1;
	sl_rwmutex_runlock(&s->rw);
	atomic_fetch_add(&s->flag, 1);
	sl_waitgroup_done(&s->wg);
}

static void
rw_block_main(void *arg)
{
	struct rw_state *s = arg;

	/* 1. A queued writer holds back new readers. */
	sl_rwmutex_rlock(&s->rw);
	sl_waitgroup_add(&s->wg, 2);
	GO(rw_queued_writer, s);
	SL_CHECK(await_qlen(&s->rw.lock, &s->rw.waiters, 1));
	GO(rw_blocked_reader, s);
	SL_CHECK(await_int(&s->flag, 1));
	SL_CHECK_EQ(atomic_load(&s->n), 0);
	sl_rwmutex_runlock(&s->rw);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->n), 1);
	SL_CHECK_EQ(s->order[0], 100);

	/* 2. When a queued writer gives up, readers behind it get in even
	 * though the first reader still holds the lock. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &s->ctx));
	atomic_store(&s->flag, 0);
	atomic_store(&s->n, 0);
	sl_rwmutex_rlock(&s->rw);
	sl_waitgroup_add(&s->wg, 2);
	GO(rw_canceled_writer, s);
	SL_CHECK(await_qlen(&s->rw.lock, &s->rw.waiters, 1));
	GO(rw_late_reader, s);
	SL_CHECK(await_qlen(&s->rw.lock, &s->rw.waiters, 2));
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s->flag), 0);
	sl_ctx_cancel(s->ctx);
	SL_CHECK(await_int(&s->flag, 1)); /* we still hold our read lock */
	SL_CHECK_EQ(atomic_load(&s->n), 1);
	SL_CHECK_EQ(rw_readers(&s->rw), 1);
	SL_CHECK_EQ(qlen(&s->rw.lock, &s->rw.waiters), 0);
	sl_rwmutex_runlock(&s->rw);
	sl_waitgroup_wait(&s->wg);
	sl_ctx_release(s->ctx);
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	SL_CHECK(!rw_writer(&s->rw));
	SL_CHECK(s->rw.waiters.head == NULL);
}

static void
test_rwmutex_queued_writer_blocks_new_readers(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_block_main, s);
	free(s);
}

/* Go's TryRLock and TryLock: never wait, never overtake a queued writer. */
static void
rw_try_main(void *arg)
{
	struct rw_state *s = arg;

	/* Free: readers share, a writer is refused while they hold it. */
	SL_CHECK(sl_rwmutex_tryrlock(&s->rw));
	SL_CHECK(sl_rwmutex_tryrlock(&s->rw));
	SL_CHECK_EQ(rw_readers(&s->rw), 2);
	SL_CHECK(!sl_rwmutex_trylock(&s->rw));
	SL_CHECK(!rw_writer(&s->rw));
	sl_rwmutex_runlock(&s->rw);
	SL_CHECK(!sl_rwmutex_trylock(&s->rw));
	sl_rwmutex_runlock(&s->rw);

	/* A writer holds it: both refused, and nothing changes. */
	SL_CHECK(sl_rwmutex_trylock(&s->rw));
	SL_CHECK(rw_writer(&s->rw));
	SL_CHECK(!sl_rwmutex_trylock(&s->rw));
	SL_CHECK(!sl_rwmutex_tryrlock(&s->rw));
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	sl_rwmutex_unlock(&s->rw);

	/* A writer queued behind our read lock: a new reader is refused as
	 * sl_rwmutex_rlock would hold it back, and the writer gets in
	 * first once we leave. */
	sl_rwmutex_rlock(&s->rw);
	sl_waitgroup_add(&s->wg, 1);
	GO(rw_queued_writer, s);
	SL_CHECK(await_qlen(&s->rw.lock, &s->rw.waiters, 1));
	SL_CHECK(!sl_rwmutex_tryrlock(&s->rw));
	SL_CHECK(!sl_rwmutex_trylock(&s->rw));
	SL_CHECK_EQ(rw_readers(&s->rw), 1);
	sl_rwmutex_runlock(&s->rw);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->n), 1);
	SL_CHECK_EQ(s->order[0], 100);

	/* Free again. */
	SL_CHECK(sl_rwmutex_trylock(&s->rw));
	sl_rwmutex_unlock(&s->rw);
	SL_CHECK_EQ(rw_readers(&s->rw), 0);
	SL_CHECK(!rw_writer(&s->rw));
	SL_CHECK(s->rw.waiters.head == NULL);
}

static void
test_rwmutex_try(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_try_main, s);
	free(s);
}

struct rw_batch_arg {
	struct rw_state *s;      /* the shared state */
	int              id;     /* recorded in s->order */
	bool             writer; /* takes the write lock, else a read lock */
};

static void
rw_batch_party(void *arg)
{
	struct rw_batch_arg *a = arg;
	struct rw_state *s = a->s;

	if (a->writer) {
		sl_rwmutex_lock(&s->rw);
		s->order[atomic_fetch_add(&s->n, 1)] = a->id;
		sl_rwmutex_unlock(&s->rw);
	} else {
		sl_rwmutex_rlock(&s->rw);
		s->order[atomic_fetch_add(&s->n, 1)] = a->id;
		/* Stay until all three leading readers are in. */
		atomic_fetch_add(&s->readers_in, 1);
		if (a->id < 3)
			SL_CHECK(await_int(&s->stop, 1));
		atomic_fetch_sub(&s->readers_in, 1);
		sl_rwmutex_runlock(&s->rw);
	}
	sl_waitgroup_done(&s->wg);
}

static void
rw_batch_main(void *arg)
{
	struct rw_state *s = arg;
	struct rw_batch_arg a[5] = {
		{ s, 0, false }, { s, 1, false }, { s, 2, false },
		{ s, 3, true }, { s, 4, false },
	};

	sl_rwmutex_lock(&s->rw);
	sl_waitgroup_add(&s->wg, 5);
	for (int i = 0; i < 5; i++) {
		GO(rw_batch_party, &a[i]);
		SL_CHECK(await_qlen(&s->rw.lock, &s->rw.waiters, i + 1));
	}
	sl_rwmutex_unlock(&s->rw);
	/* The three leading readers are admitted together; the writer and
	 * the reader behind it stay queued. */
	SL_CHECK(await_int(&s->readers_in, 3));
	SL_CHECK_EQ(rw_readers(&s->rw), 3);
	SL_CHECK_EQ(qlen(&s->rw.lock, &s->rw.waiters), 2);
	atomic_store(&s->stop, 1);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->n), 5);
	SL_CHECK_EQ(s->order[3], 3);
	SL_CHECK_EQ(s->order[4], 4);
	SL_CHECK_EQ(s->order[0] + s->order[1] + s->order[2], 0 + 1 + 2);
}

static void
test_rwmutex_unlock_admits_leading_readers(void **state)
{
	struct rw_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(rw_batch_main, s);
	free(s);
}

/* ---- Once --------------------------------------------------------------- */

struct once_state {
	sl_once      once;  /* the Once under test */
	sl_waitgroup wg;    /* counts the callers out */
	atomic_int   calls; /* runs of once_fn */
	int          value; /* plain: written by fn only */
	atomic_int   seen;  /* callers that saw fn's effect on return */
};

static void
once_fn(void *arg)
{
	struct once_state *s = arg;

	atomic_fetch_add(&s->calls, 1);
	sl_sleep(5 * SL_MILLISECOND); /* others pile up meanwhile */
	s->value = 42;
}

static void
once_caller(void *arg)
{
	struct once_state *s = arg;

	sl_once_do(&s->once, once_fn, s);
	if (s->value == 42)
		atomic_fetch_add(&s->seen, 1);
	sl_waitgroup_done(&s->wg);
}

static void
once_main(void *arg)
{
	struct once_state *s = arg;

	sl_waitgroup_add(&s->wg, 16);
	for (int i = 0; i < 16; i++)
		GO(once_caller, s);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->calls), 1);
	SL_CHECK_EQ(atomic_load(&s->seen), 16);
	/* Later calls are no-ops too. */
	sl_once_do(&s->once, once_fn, s);
	SL_CHECK_EQ(atomic_load(&s->calls), 1);
}

static void
test_once_runs_fn_exactly_once_for_16_goroutines(void **state)
{
	struct once_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(once_main, s);
	free(s);
}

/* ---- Cond --------------------------------------------------------------- */

#define BQ_CAP 8

/* A bounded queue, the textbook use of two conditions. */
struct bqueue {
	sl_mutex     mu;
	sl_cond      not_full, not_empty;
	int          buf[BQ_CAP];
	int          head, len;
	int          producers; /* still producing */
	long         sum;       /* taken by consumers */
	int          taken;
	sl_waitgroup wg;
	int          per;       /* items per producer */
};

static void
bq_producer(void *arg)
{
	struct bqueue *q = arg;

	for (int i = 1; i <= q->per; i++) {
		sl_mutex_lock(&q->mu);
		while (q->len == BQ_CAP)
			sl_cond_wait(&q->not_full, &q->mu);
		q->buf[(q->head + q->len) % BQ_CAP] = i;
		q->len++;
		sl_cond_signal(&q->not_empty);
		sl_mutex_unlock(&q->mu);
	}
	sl_mutex_lock(&q->mu);
	if (--q->producers == 0)
		sl_cond_broadcast(&q->not_empty); /* consumers: no more */
	sl_mutex_unlock(&q->mu);
	sl_waitgroup_done(&q->wg);
}

static void
bq_consumer(void *arg)
{
	struct bqueue *q = arg;

	sl_mutex_lock(&q->mu);
	for (;;) {
		while (q->len == 0 && q->producers > 0)
			sl_cond_wait(&q->not_empty, &q->mu);
		if (q->len == 0)
			break;
		q->sum += q->buf[q->head];
		q->taken++;
		q->head = (q->head + 1) % BQ_CAP;
		q->len--;
		sl_cond_signal(&q->not_full);
	}
	sl_mutex_unlock(&q->mu);
	sl_waitgroup_done(&q->wg);
}

/* 4 producers and 4 consumers through an 8-slot queue: every item taken
 * once (exact count and sum), and everyone finishes (no lost wake-up). */
static void
body_cond_bounded_queue(void *arg)
{
	struct bqueue *q = calloc(1, sizeof(*q));

	(void) arg;
	SL_CHECK(q != NULL);
	q->per = (int) slt_scaled_min(5000, 100);
	q->producers = 4;
	sl_waitgroup_add(&q->wg, 8);
	for (int i = 0; i < 4; i++) {
		GO(bq_producer, q);
		GO(bq_consumer, q);
	}
	sl_waitgroup_wait(&q->wg);
	SL_CHECK_EQ(q->taken, 4 * q->per);
	SL_CHECK_EQ(q->sum, 4L * q->per * (q->per + 1) / 2);
	SL_CHECK_EQ(q->len, 0);
	free(q);
}

static void
test_cond_bounded_queue_4x4(void **state)
{
	slt_run(body_cond_bounded_queue, *state);
	slt_run_procs(1, body_cond_bounded_queue, *state);
}

struct cond_state {
	sl_mutex     mu;
	sl_cond      c;
	atomic_int   woke;
	atomic_int   held;   /* waiters that returned holding mu */
	sl_waitgroup wg;
};

static void
cond_waiter(void *arg)
{
	struct cond_state *s = arg;

	sl_mutex_lock(&s->mu);
	sl_cond_wait(&s->c, &s->mu);
	if (!sl_mutex_trylock(&s->mu))  /* held: by us */
		atomic_fetch_add(&s->held, 1);
	atomic_fetch_add(&s->woke, 1);
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_done(&s->wg);
}

/* Signal wakes exactly one waiter, broadcast the rest; each returns with
 * the mutex held.  With nobody waiting, a signal is not remembered. */
static void
body_cond_signal_broadcast(void *arg)
{
	struct cond_state *s = calloc(1, sizeof(*s));

	(void) arg;
	SL_CHECK(s != NULL);
	sl_waitgroup_add(&s->wg, 5);
	for (int i = 0; i < 5; i++)
		GO(cond_waiter, s);
	SL_CHECK(await_qlen(&s->c.lock, &s->c.waiters, 5));
	sl_cond_signal(&s->c);
	SL_CHECK(await_int(&s->woke, 1));
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s->woke), 1);
	SL_CHECK_EQ(qlen(&s->c.lock, &s->c.waiters), 4);
	sl_mutex_lock(&s->mu);           /* broadcast under the lock, too */
	sl_cond_broadcast(&s->c);
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(atomic_load(&s->woke), 5);
	SL_CHECK_EQ(atomic_load(&s->held), 5);

	sl_cond_signal(&s->c);           /* nobody waits: lost */
	sl_cond_broadcast(&s->c);
	sl_mutex_lock(&s->mu);
	SL_CHECK_ERR(sl_cond_wait_ctx(&s->c, &s->mu, NULL,
	    sl_now() + 30 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK(!sl_mutex_trylock(&s->mu));
	sl_mutex_unlock(&s->mu);
	free(s);
}

static void
test_cond_signal_one_broadcast_all(void **state)
{
	slt_run(body_cond_signal_broadcast, *state);
}

struct cond_timed {
	sl_mutex     mu;
	sl_cond      c;
	sl_ctx      *ctx;
	int          r_timeout, r_ctx, r_forever;
	bool         held_timeout, held_ctx;
	atomic_int   timed_out;  /* timed_waiter has returned */
	sl_waitgroup wg;
};

static void
timed_waiter(void *arg)
{
	struct cond_timed *s = arg;

	sl_mutex_lock(&s->mu);
	s->r_timeout = sl_cond_wait_ctx(&s->c, &s->mu, NULL,
	    sl_now() + 20 * SL_MILLISECOND);
	s->held_timeout = !sl_mutex_trylock(&s->mu);
	sl_mutex_unlock(&s->mu);
	atomic_store(&s->timed_out, 1);
	sl_waitgroup_done(&s->wg);
}

static void
ctx_waiter(void *arg)
{
	struct cond_timed *s = arg;

	sl_mutex_lock(&s->mu);
	s->r_ctx = sl_cond_wait_ctx(&s->c, &s->mu, s->ctx, SL_FOREVER);
	s->held_ctx = !sl_mutex_trylock(&s->mu);
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_done(&s->wg);
}

static void
forever_waiter(void *arg)
{
	struct cond_timed *s = arg;

	sl_mutex_lock(&s->mu);
	s->r_forever = sl_cond_wait_ctx(&s->c, &s->mu, NULL, SL_FOREVER);
	sl_mutex_unlock(&s->mu);
	sl_waitgroup_done(&s->wg);
}

/* A wait that times out or whose context ends returns that error with the
 * mutex held again and leaves the queue; a later signal is not spent on
 * it but reaches the waiter still there. */
static void
body_cond_wait_ctx(void *arg)
{
	struct cond_timed *s = calloc(1, sizeof(*s));

	(void) arg;
	SL_CHECK(s != NULL);
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &s->ctx));
	sl_waitgroup_add(&s->wg, 2);
	GO(ctx_waiter, s);
	SL_CHECK(await_qlen(&s->c.lock, &s->c.waiters, 1));
	GO(timed_waiter, s);
	SL_CHECK(await_int(&s->timed_out, 1));
	SL_CHECK_EQ(qlen(&s->c.lock, &s->c.waiters), 1);
	sl_ctx_cancel(s->ctx);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_ERR(s->r_timeout, SL_ETIMEDOUT);
	SL_CHECK_ERR(s->r_ctx, SL_ECANCELED);
	SL_CHECK(s->held_timeout);
	SL_CHECK(s->held_ctx);
	SL_CHECK_EQ(qlen(&s->c.lock, &s->c.waiters), 0);

	atomic_store(&s->timed_out, 0);
	sl_waitgroup_add(&s->wg, 2);
	GO(forever_waiter, s);
	SL_CHECK(await_qlen(&s->c.lock, &s->c.waiters, 1));
	GO(timed_waiter, s);
	SL_CHECK(await_int(&s->timed_out, 1));
	/* the timed one has left; the signal finds the other */
	SL_CHECK_EQ(qlen(&s->c.lock, &s->c.waiters), 1);
	sl_cond_signal(&s->c);
	sl_waitgroup_wait(&s->wg);
	SL_CHECK_EQ(s->r_forever, 0);
	sl_ctx_release(s->ctx);
	free(s);
}

static void
test_cond_wait_ctx_timeout_and_cancel(void **state)
{
	slt_run(body_cond_wait_ctx, *state);
}

/* ---- plain threads mixed with goroutines -------------------------------- */

#define MIX_THREADS 2
#define MIX_GS      4
#define MIX_ITERS   2000 /* per party, scaled */

struct mix_state {
	sl_mutex     mu;              /* shared by threads and goroutines */
	sl_rwmutex   rw;              /* likewise */
	sl_waitgroup wg;              /* counts every party out */
	sl_waitgroup gate;            /* holds threads until main opens it */
	sl_once      once;            /* every party calls it once */
	atomic_int   once_calls;      /* runs of mix_once_fn */
	long         counter;         /* under mu */
	long         rwcount;         /* under rw (write) */
	atomic_int   overlaps;        /* a reader saw a torn rwcount */
	atomic_int   gate_passed;     /* threads past the gate */
	atomic_int   thread_timeouts; /* threads whose timed gate wait ended */
	int          iters;           /* loop count per party */
};

static void
mix_once_fn(void *arg)
{
	struct mix_state *s = arg;

	atomic_fetch_add(&s->once_calls, 1);
}

static void
mix_work(struct mix_state *s)
{
	for (int i = 0; i < s->iters; i++) {
		sl_mutex_lock(&s->mu);
		s->counter++;
		if (i % 128 == 0)
			sl_yield(); /* a no-op in threads */
		sl_mutex_unlock(&s->mu);
		if (i % 8 == 0) {
			sl_rwmutex_lock(&s->rw);
			s->rwcount++;
			sl_rwmutex_unlock(&s->rw);
		} else {
			sl_rwmutex_rlock(&s->rw);
			if (s->rwcount < 0)
				atomic_fetch_add(&s->overlaps, 1);
			sl_rwmutex_runlock(&s->rw);
		}
	}
	sl_once_do(&s->once, mix_once_fn, s);
}

static void *
mix_thread(void *arg)
{
	struct mix_state *s = arg;

	/* Blocks this thread until the main goroutine opens the gate;
	 * a short timed wait first exercises thread deadlines. */
	if (sl_waitgroup_wait_ctx(&s->gate, NULL,
	    sl_now() + SL_MILLISECOND) == SL_ETIMEDOUT)
		atomic_fetch_add(&s->thread_timeouts, 1);
	sl_waitgroup_wait(&s->gate);
	atomic_fetch_add(&s->gate_passed, 1);
	mix_work(s);
	sl_waitgroup_done(&s->wg);
	return (NULL);
}

static void
mix_goroutine(void *arg)
{
	struct mix_state *s = arg;

	mix_work(s);
	sl_waitgroup_done(&s->wg);
}

static void
mix_main(void *arg)
{
	struct mix_state *s = arg;
	pthread_t th[MIX_THREADS];

	s->iters = (int) slt_scaled_min(MIX_ITERS, 64);
	sl_waitgroup_add(&s->gate, 1);
	sl_waitgroup_add(&s->wg, MIX_THREADS + MIX_GS);
	for (int i = 0; i < MIX_THREADS; i++) {
		sl_sched_hold();
		SL_CHECK_EQ(pthread_create(&th[i], NULL, mix_thread, s), 0);
	}
	/* Open the gate once both threads timed out on it. */
	SL_CHECK(await_int(&s->thread_timeouts, MIX_THREADS));
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s->gate_passed), 0);
	sl_waitgroup_done(&s->gate);
	for (int i = 0; i < MIX_GS; i++)
		GO(mix_goroutine, s);
	sl_waitgroup_wait(&s->wg);
	for (int i = 0; i < MIX_THREADS; i++) {
		SL_CHECK_EQ(pthread_join(th[i], NULL), 0);
		sl_sched_release();
	}
	SL_CHECK_EQ(atomic_load(&s->gate_passed), MIX_THREADS);
	SL_CHECK_EQ(atomic_load(&s->thread_timeouts), MIX_THREADS);
	SL_CHECK_EQ(s->counter, (long) (MIX_THREADS + MIX_GS) * s->iters);
	SL_CHECK_EQ(s->rwcount, (long) (MIX_THREADS + MIX_GS) *
	    ((s->iters + 7) / 8));
	SL_CHECK_EQ(atomic_load(&s->overlaps), 0);
	SL_CHECK_EQ(atomic_load(&s->once_calls), 1);
	SL_CHECK_EQ(atomic_load(&s->mu.locked), 0);
}

static void
test_sync_from_plain_threads_and_goroutines(void **state)
{
	struct mix_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	slt_run(mix_main, s);
	free(s);
}

/* ---- fatal errors (in a child process) ---------------------------------- */

static void
abort_body(void *arg)
{
	const char *name = arg;

	if (strcmp(name, "mutex") == 0) {
		sl_mutex mu = SL_MUTEX_INIT;
		sl_mutex_lock(&mu);
		sl_mutex_unlock(&mu);
		sl_mutex_unlock(&mu);
	} else if (strcmp(name, "waitgroup") == 0) {
		sl_waitgroup wg = SL_WAITGROUP_INIT;
		sl_waitgroup_add(&wg, 2);
		sl_waitgroup_done(&wg);
		sl_waitgroup_done(&wg);
		sl_waitgroup_done(&wg);
	} else if (strcmp(name, "rwmutex") == 0) {
		sl_rwmutex rw = SL_RWMUTEX_INIT;
		sl_rwmutex_lock(&rw);
		sl_rwmutex_unlock(&rw);
		sl_rwmutex_unlock(&rw);
	} else if (strcmp(name, "cond") == 0) {
		sl_mutex mu = SL_MUTEX_INIT;
		sl_cond  c = SL_COND_INIT;
		sl_cond_wait(&c, &mu);         /* mu not held */
	} else if (strcmp(name, "rwmutex-r") == 0) {
		sl_rwmutex rw = SL_RWMUTEX_INIT;
		sl_rwmutex_rlock(&rw);
		sl_rwmutex_runlock(&rw);
		sl_rwmutex_runlock(&rw);
	}
}

/* In the child: runs the named misuse, which must abort. */
static void
abort_child(void *arg)
{
	(void) sl_main(abort_body, arg);
	fprintf(stderr, "no abort\n");
}

/* Runs the misuse name in a forked child; checks SIGABRT and stderr. */
static void
expect_abort(const char *name, const char *message)
{
	slt_child *res = calloc(1, sizeof(*res));
	char st[64];

	assert_non_null(res);
	assert_int_equal(slt_fork(abort_child, (void *) name, res), 0);
	if (!WIFSIGNALED(res->status) || WTERMSIG(res->status) != SIGABRT)
		fail_msg("child '%s' %s, want SIGABRT; stderr: %s", name,
		    slt_status_str(res->status, st, sizeof(st)), res->err);
	if (strstr(res->err, message) == NULL)
		fail_msg("stderr of '%s' lacks \"%s\": %s", name, message,
		    res->err);
	free(res);
}

static void
test_mutex_unlock_of_unlocked_aborts(void **state)
{
	expect_abort("mutex",
	    "sluice: fatal error: sync: unlock of unlocked mutex\n");
}

/* Go: "sync: unlock of unlocked mutex" from Cond.Wait without the lock. */
static void
test_cond_wait_without_lock_aborts(void **state)
{
	expect_abort("cond",
	    "sluice: fatal error: sync: unlock of unlocked mutex\n");
}

static void
test_waitgroup_negative_counter_aborts(void **state)
{
	expect_abort("waitgroup",
	    "sluice: fatal error: sync: negative WaitGroup counter\n");
}

static void
test_rwmutex_unlock_of_unlocked_aborts(void **state)
{
	expect_abort("rwmutex",
	    "sluice: fatal error: sync: Unlock of unlocked RWMutex\n");
	expect_abort("rwmutex-r",
	    "sluice: fatal error: sync: RUnlock of unlocked RWMutex\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waitgroup_sums_work_of_64_goroutines),
		cmocka_unit_test(test_waitgroup_freed_right_after_wait),
		cmocka_unit_test(
		    test_waitgroup_wait_ctx_times_out_then_succeeds),
		cmocka_unit_test(test_waitgroup_negative_counter_aborts),
		cmocka_unit_test(test_mutex_8_goroutines_count_exactly),
		cmocka_unit_test(
		    test_mutex_lock_ctx_times_out_and_stays_consistent),
		cmocka_unit_test(test_mutex_lock_ctx_canceled_by_context),
		cmocka_unit_test(test_mutex_hands_off_in_fifo_order),
		cmocka_unit_test(test_mutex_trylock),
		cmocka_unit_test(test_mutex_unlock_of_unlocked_aborts),
		cmocka_unit_test(test_rwmutex_readers_run_concurrently),
		cmocka_unit_test(test_rwmutex_writers_are_exclusive),
		cmocka_unit_test(test_rwmutex_writer_not_starved_by_readers),
		cmocka_unit_test(
		    test_rwmutex_queued_writer_blocks_new_readers),
		cmocka_unit_test(test_rwmutex_try),
		cmocka_unit_test(test_rwmutex_unlock_admits_leading_readers),
		cmocka_unit_test(test_rwmutex_unlock_of_unlocked_aborts),
		cmocka_unit_test(
		    test_once_runs_fn_exactly_once_for_16_goroutines),
		cmocka_unit_test(test_cond_bounded_queue_4x4),
		cmocka_unit_test(test_cond_signal_one_broadcast_all),
		cmocka_unit_test(test_cond_wait_ctx_timeout_and_cancel),
		cmocka_unit_test(test_cond_wait_without_lock_aborts),
		cmocka_unit_test(test_sync_from_plain_threads_and_goroutines),
	};
	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
