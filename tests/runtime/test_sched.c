/*
 * test_sched.c — goroutines and the M:N scheduler: spawning (from
 * goroutines and foreign threads, and a storm of both at once through the
 * global queue), goroutine ids, sl_numgoroutine, yield
 * interleaving, worker counts (options and SLUICE_PROCS), CPU binding
 * (SLUICE_CPUS, sl_opts.cpus) and its error messages, work spreading
 * over both cores, 100k (and, with SLUICE_TEST_BIG=1, 1M) parked
 * goroutines released by close, abandoned goroutines, the API outside a
 * scheduler, and sl_main re-entry.
 */
#include <pthread.h>
#include <sched.h>

#include "sltest.h"
#include "sched/sched.h" /* sli_test_in_visit, sli_sched_poke */
#include "sluice/timer.h"

/* ---- spawning ------------------------------------------------------------ */

struct count {
	atomic_int   n;
	sl_waitgroup wg;
};

static void
count_one(void *arg)
{
	struct count *c = arg;

	atomic_fetch_add(&c->n, 1);
	sl_waitgroup_done(&c->wg);
}

/* Every spawned goroutine runs exactly once. */
static void
body_goroutines_run(void *arg)
{
	struct count c;

	(void) arg;
	memset(&c, 0, sizeof(c));
	SL_CHECK_EQ(sl_numgoroutine(), 1);
	sl_waitgroup_add(&c.wg, 1000);
	for (int i = 0; i < 1000; i++)
		SL_CHECK_OK(sl_go(count_one, &c));
	sl_waitgroup_wait(&c.wg);
	SL_CHECK_EQ(atomic_load(&c.n), 1000);
}

static void
test_goroutines_run(void **state)
{
	slt_run(body_goroutines_run, *state);
}

/* ---- spawn tree --------------------------------------------------------- */

struct tree {
	atomic_int   n;
	sl_waitgroup wg;
};

struct tree_node {
	struct tree *t;
	int          depth;
};

static void
tree_spawn(void *arg);

static void
tree_child(struct tree *t, int depth)
{
	struct tree_node *n = malloc(sizeof(*n));

	SL_CHECK(n != NULL);
	n->t = t;
	n->depth = depth;
	sl_waitgroup_add(&t->wg, 1);
	SL_CHECK_OK(sl_go(tree_spawn, n));
}

static void
tree_spawn(void *arg)
{
	struct tree_node *n = arg;
	struct tree *t = n->t;
	int depth = n->depth;

	free(n);
	atomic_fetch_add(&t->n, 1);
	if (depth > 0) {
		tree_child(t, depth - 1);
		tree_child(t, depth - 1);
	}
	sl_waitgroup_done(&t->wg);
}

/* Goroutines spawning goroutines: a binary tree of depth 10 makes exactly
 * 2047 goroutines. */
static void
body_spawn_tree(void *arg)
{
	struct tree t;

	(void) arg;
	memset(&t, 0, sizeof(t));
	tree_child(&t, 10);
	sl_waitgroup_wait(&t.wg);
	SL_CHECK_EQ(atomic_load(&t.n), 2047);
}

static void
test_spawn_tree(void **state)
{
	slt_run(body_spawn_tree, *state);
}

/* ---- sl_go from a foreign thread ------------------------------------- */

static void *
foreign_spawner(void *arg)
{
	struct count *c = arg;

	for (int i = 0; i < 200; i++)
		SL_CHECK_OK(sl_go(count_one, c));
	SL_CHECK_EQ(sl_goid(), 0);
	SL_CHECK_EQ(sl_worker_id(), -1);
	sl_yield(); /* a no-op outside goroutines */
	sl_sched_release();
	return (NULL);
}

static void
join_thread(void *arg)
{
	SL_CHECK_EQ(pthread_join(*(pthread_t *) arg, NULL), 0);
}

/* A plain thread may start goroutines while sl_main runs. */
static void
body_go_from_thread(void *arg)
{
	struct count c;
	pthread_t th;

	(void) arg;
	memset(&c, 0, sizeof(c));
	sl_waitgroup_add(&c.wg, 200);
	sl_sched_hold(); /* the thread may still wake us */
	SL_CHECK_EQ(pthread_create(&th, NULL, foreign_spawner, &c), 0);
	sl_waitgroup_wait(&c.wg);
	SL_CHECK_EQ(atomic_load(&c.n), 200);
	SL_CHECK_OK(sl_blocking(join_thread, &th));
}

static void
test_go_from_thread(void **state)
{
	slt_run(body_go_from_thread, *state);
}

/*
 * A spawn storm from goroutines and plain threads at once, each new
 * goroutine yielding a few times (through the global queue) and then
 * parking, so that the live count, and the global queue's room with it,
 * keeps growing while the queue holds goroutines and its start moves.
 * Each goroutine must run once, finish each yield, and wake once.
 */
#define STORM_SPAWNERS 6 /* the first half threads, the rest goroutines */
#define STORM_YIELDS   3

struct storm {
	long          per;      /* goroutines per spawner */
	atomic_uchar *ran;      /* [STORM_SPAWNERS * per] */
	atomic_long   yields;
	atomic_long   woken;
	sl_chan      *gate;
	sl_waitgroup  parked, done;
};

struct storm_job {
	struct storm *st;
	long          first;
};

static struct storm *storm_cur; /* the storm of the running body */

/* arg: its own flag in storm_cur->ran. */
static void
storm_one(void *arg)
{
	struct storm *st = storm_cur;

	atomic_fetch_add((atomic_uchar *) arg, 1);
	for (int y = 0; y < STORM_YIELDS; y++) {
		sl_yield();
		atomic_fetch_add(&st->yields, 1);
	}
	sl_waitgroup_done(&st->parked);
	if (sl_chan_recv(st->gate, NULL) == SL_ECLOSED)
		atomic_fetch_add(&st->woken, 1);
	sl_waitgroup_done(&st->done);
}

static void
storm_spawn(struct storm_job *j)
{
	for (long k = 0; k < j->st->per; k++)
		SL_CHECK_OK(sl_go(storm_one, (void *) &j->st->ran[j->first + k]));
}

static void *
storm_thread(void *arg)
{
	storm_spawn(arg);
	sl_sched_release();
	return (NULL);
}

static void
storm_goroutine(void *arg)
{
	storm_spawn(arg);
}

static void
body_spawn_storm(void *arg)
{
	struct storm     st;
	struct storm_job jobs[STORM_SPAWNERS];
	pthread_t        th[STORM_SPAWNERS / 2];
	long             total, bad = 0;

	(void) arg;
	memset(&st, 0, sizeof(st));
	storm_cur = &st;
	st.per = slt_scaled_min(5000, 50);
	if (st.per > slt_max_goroutines() / STORM_SPAWNERS)
		st.per = slt_max_goroutines() / STORM_SPAWNERS;
	total = st.per * STORM_SPAWNERS;
	st.ran = calloc((size_t) total, sizeof(*st.ran));
	st.gate = sl_chan_make(0, 0);
	SL_CHECK(st.ran != NULL && st.gate != NULL);
	sl_waitgroup_add(&st.parked, total);
	sl_waitgroup_add(&st.done, total);
	for (int s = 0; s < STORM_SPAWNERS; s++) {
		jobs[s].st = &st;
		jobs[s].first = s * st.per;
	}
	for (int s = 0; s < STORM_SPAWNERS / 2; s++) {
		sl_sched_hold();
		SL_CHECK_EQ(pthread_create(&th[s], NULL, storm_thread,
		    &jobs[s]), 0);
	}
	for (int s = STORM_SPAWNERS / 2; s < STORM_SPAWNERS; s++)
		SL_CHECK_OK(sl_go(storm_goroutine, &jobs[s]));
	sl_waitgroup_wait(&st.parked);
	SL_CHECK_EQ(atomic_load(&st.yields), total * STORM_YIELDS);
	SL_CHECK_EQ(sl_numgoroutine(), (size_t) total + 1);
	SL_CHECK_OK(sl_chan_close(st.gate));
	sl_waitgroup_wait(&st.done);
	SL_CHECK_EQ(atomic_load(&st.woken), total);
	for (long i = 0; i < total; i++)
		bad += atomic_load(&st.ran[i]) != 1;
	SL_CHECK_EQ(bad, 0);
	for (int s = 0; s < STORM_SPAWNERS / 2; s++)
		SL_CHECK_OK(sl_blocking(join_thread, &th[s]));
	sl_chan_release(st.gate);
	free(st.ran);
}

static void
test_spawn_storm(void **state)
{
	(void) state;
	slt_run_procs(1, body_spawn_storm, NULL);
	slt_run_procs(2, body_spawn_storm, NULL);
}

/* ---- goroutine ids --------------------------------------------------- */

enum { GID_N = 1000 };

struct gid {
	uint64_t     ids[GID_N];
	int          next;
	sl_mutex     mu;
	sl_waitgroup wg;
};

static void
gid_record(void *arg)
{
	struct gid *g = arg;
	uint64_t id = sl_goid();

	SL_CHECK(id == sl_goid()); /* stable */
	sl_yield();
	SL_CHECK(id == sl_goid()); /* stable across a reschedule */
	sl_mutex_lock(&g->mu);
	g->ids[g->next++] = id;
	sl_mutex_unlock(&g->mu);
	sl_waitgroup_done(&g->wg);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return (x < y ? -1 : x > y);
}

/* The main goroutine is 1; every other goroutine has a distinct id > 1. */
static void
body_goid_distinct(void *arg)
{
	struct gid *g = arg;

	SL_CHECK_EQ(sl_goid(), 1);
	sl_waitgroup_add(&g->wg, GID_N);
	for (int i = 0; i < GID_N; i++)
		SL_CHECK_OK(sl_go(gid_record, g));
	sl_waitgroup_wait(&g->wg);
	SL_CHECK_EQ(g->next, GID_N);
	qsort(g->ids, GID_N, sizeof(g->ids[0]), cmp_u64);
	SL_CHECK(g->ids[0] > 1);
	for (int i = 1; i < GID_N; i++) {
		if (g->ids[i] == g->ids[i - 1]) {
			SL_CHECK(g->ids[i] != g->ids[i - 1]);
			break;
		}
	}
}

static void
test_goid_distinct(void **state)
{
	struct gid *g = calloc(1, sizeof(*g));

	(void) state;
	assert_non_null(g);
	slt_run(body_goid_distinct, g);
	free(g);
}

/* ---- yield --------------------------------------------------------------- */

enum { YI_ROUNDS = 20 };

struct yi {
	char         log[2 * YI_ROUNDS + 1];
	atomic_int   pos;
	sl_waitgroup wg;
	char         letter[2];
};

struct yi_arg {
	struct yi *y;
	char       letter;
};

static void
yi_loop(void *arg)
{
	struct yi_arg *a = arg;

	for (int i = 0; i < YI_ROUNDS; i++) {
		a->y->log[atomic_fetch_add(&a->y->pos, 1)] = a->letter;
		sl_yield();
	}
	sl_waitgroup_done(&a->y->wg);
}

/* On one worker, two goroutines that yield after every step strictly
 * alternate. */
static void
body_yield_interleaving(void *arg)
{
	struct yi y;
	struct yi_arg a = { &y, 'A' }, b = { &y, 'B' };
	int same = 0;

	(void) arg;
	memset(&y, 0, sizeof(y));
	SL_CHECK_EQ(sl_procs(), 1);
	sl_waitgroup_add(&y.wg, 2);
	SL_CHECK_OK(sl_go(yi_loop, &a));
	SL_CHECK_OK(sl_go(yi_loop, &b));
	sl_waitgroup_wait(&y.wg);
	SL_CHECK_EQ(atomic_load(&y.pos), 2 * YI_ROUNDS);
	for (int i = 1; i < 2 * YI_ROUNDS; i++)
		same += y.log[i] == y.log[i - 1];
	if (same != 0)
		fprintf(stderr, "yield log: %s\n", y.log);
	SL_CHECK_EQ(same, 0);
}

static void
test_yield_interleaving(void **state)
{
	slt_run_procs(1, body_yield_interleaving, *state);
}

/* ---- yield fairness with more workers ----------------------------------- */

struct spin {
	atomic_int stop;
	atomic_int progress;
};

static void
spinner(void *arg)
{
	struct spin *s = arg;

	while (!atomic_load(&s->stop)) {
		atomic_fetch_add(&s->progress, 1);
		sl_yield();
	}
}

/* A goroutine that yields in a loop does not starve others on its worker:
 * with one worker, the main goroutine still gets to run (and sleep). */
static void
body_yield_no_starvation(void *arg)
{
	struct spin s;

	(void) arg;
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_go(spinner, &s));
	SL_CHECK_OK(sl_go(spinner, &s));
	for (int i = 0; i < 10; i++)
		sl_sleep(SL_MILLISECOND);
	atomic_store(&s.stop, 1);
	SL_CHECK(atomic_load(&s.progress) > 0);
	while (sl_numgoroutine() > 1)
		sl_yield();
}

static void
test_yield_no_starvation(void **state)
{
	slt_run_procs(1, body_yield_no_starvation, *state);
}

/* ---- worker counts --------------------------------------------------- */

static void
body_procs(void *arg)
{
	int *procs = arg;

	*procs = sl_procs();
	SL_CHECK(sl_worker_id() >= 0 && sl_worker_id() < sl_procs());
}

/* sl_opts.procs and SLUICE_PROCS set the worker count; the default is the
 * CPU count. */
static void
test_procs(void **state)
{
	const char *old = getenv("SLUICE_PROCS");
	char *saved = old != NULL ? strdup(old) : NULL;
	int procs = -1;

	(void) state;
	slt_run_procs(3, body_procs, &procs);
	assert_int_equal(procs, 3);
	slt_run_procs(1, body_procs, &procs);
	assert_int_equal(procs, 1);

	setenv("SLUICE_PROCS", "2", 1);
	slt_run(body_procs, &procs);
	assert_int_equal(procs, 2);
	unsetenv("SLUICE_PROCS");
	slt_run(body_procs, &procs);
	{
		cpu_set_t mine;

		assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
		assert_int_equal(procs, CPU_COUNT(&mine));
	}
	if (saved != NULL) {
		setenv("SLUICE_PROCS", saved, 1);
		free(saved);
	}
	/* outside a scheduler */
	assert_int_equal(sl_procs(), 0);
	assert_int_equal(sl_worker_id(), -1);
	assert_int_equal(sl_goid(), 0);
}

/* ---- binding to CPUs ---------------------------------------------------- */

struct cpus {
	int       procs;
	cpu_set_t worker;  /* affinity seen by a goroutine */
	cpu_set_t thread;  /* affinity of a thread created by it */
	bool      ran;
};

static void *
cpus_thread(void *arg)
{
	cpu_set_t *set = arg;

	SL_CHECK_EQ(sched_getaffinity(0, sizeof(*set), set), 0);
	return (NULL);
}

static void
body_cpus(void *arg)
{
	struct cpus *c = arg;
	pthread_t    t;

	c->ran = true;
	c->procs = sl_procs();
	SL_CHECK_EQ(sched_getaffinity(0, sizeof(c->worker), &c->worker), 0);
	SL_CHECK_EQ(pthread_create(&t, NULL, cpus_thread, &c->thread), 0);
	pthread_join(t, NULL);
}

/* The CPUs the test may use, as a list and a set; the highest of them. */
static int
cpus_mine(cpu_set_t *set, char *list, size_t len)
{
	int last = -1;

	list[0] = '\0';
	assert_int_equal(sched_getaffinity(0, sizeof(*set), set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, set)) {
			snprintf(list + strlen(list), len - strlen(list),
			    "%s%d", last >= 0 ? "," : "", c);
			last = c;
		}
	}
	return (last);
}

/* SLUICE_CPUS=N binds the workers and every thread made while the
 * scheduler runs to CPU N; the default worker count follows (1); the
 * caller's affinity is back afterwards.  sl_opts.cpus does the same and
 * wins over the environment. */
static void
test_cpus(void **state)
{
	struct cpus c;
	cpu_set_t   mine, after;
	sl_opts     o;
	char        all[512], one[16];
	int         last;

	(void) state;
	last = cpus_mine(&mine, all, sizeof(all));
	assert_true(last >= 0);
	snprintf(one, sizeof(one), "%d", last);

	unsetenv("SLUICE_PROCS");
	setenv("SLUICE_CPUS", one, 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main(body_cpus, &c), 0);
	unsetenv("SLUICE_CPUS");
	slt_assert_no_failures();
	assert_true(c.ran);
	assert_int_equal(c.procs, 1);
	assert_int_equal(CPU_COUNT(&c.worker), 1);
	assert_true(CPU_ISSET(last, &c.worker));
	assert_int_equal(CPU_COUNT(&c.thread), 1);
	assert_true(CPU_ISSET(last, &c.thread));
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_true(CPU_EQUAL(&after, &mine));

	/* opts over env: the env names a CPU that does not exist */
	setenv("SLUICE_CPUS", "1000", 1);
	memset(&o, 0, sizeof(o));
	o.cpus = all;
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main_opts(&o, body_cpus, &c), 0);
	unsetenv("SLUICE_CPUS");
	slt_assert_no_failures();
	assert_int_equal(c.procs, CPU_COUNT(&mine));
	assert_true(CPU_EQUAL(&c.worker, &mine));
}

/* Runs sl_main_opts(o), which must fail with SL_EINVAL and a message on
 * stderr containing want; the body must not run, the affinity must not
 * change.  what names the case in a failure. */
static void
main_refused(const sl_opts *o, const char *what, const char *want)
{
	struct cpus c;
	cpu_set_t   before, after;
	char        path[] = "/tmp/sluice-refused-XXXXXX";
	char        got[512];
	int         fd, saved;
	ssize_t     n;

	assert_int_equal(sched_getaffinity(0, sizeof(before), &before), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main_opts(o, body_cpus, &c), SL_EINVAL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	assert_true(n > 0);
	got[n] = '\0';
	if (strstr(got, want) == NULL)
		fail_msg("%s: stderr \"%s\" lacks \"%s\"", what, got, want);
	assert_false(c.ran);
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_true(CPU_EQUAL(&after, &before));
}

/* main_refused with cpus = list (NULL: none, so $SLUICE_CPUS counts). */
static void
cpus_refused(const char *list, const char *want)
{
	sl_opts o;

	memset(&o, 0, sizeof(o));
	o.cpus = list;
	main_refused(&o, list != NULL ? list : "$SLUICE_CPUS", want);
}

/* A bad CPU list is refused with a message naming it and what is wrong;
 * the scheduler then starts normally. */
static void
test_cpus_refused(void **state)
{
	struct cpus c;
	cpu_set_t   mine;
	char        all[512];

	(void) state;
	cpus_mine(&mine, all, sizeof(all));
	cpus_refused("", "sluice: sl_opts.cpus=\"\": empty CPU list");
	cpus_refused("x", "sl_opts.cpus=\"x\": not a CPU list at \"x\"");
	cpus_refused("0,", "sl_opts.cpus=\"0,\": not a CPU list: a CPU "
	    "number is missing at the end (expected CPU numbers below");
	cpus_refused("0-", "not a CPU list: a CPU number is missing at the "
	    "end");
	cpus_refused("-1", "not a CPU list at \"-1\"");
	cpus_refused("0 1", "not a CPU list at \" 1\"");
	cpus_refused("3-1", "sl_opts.cpus=\"3-1\": range 3-1 runs backwards");
	cpus_refused("99999", "not a CPU list at \"99999\"");
	cpus_refused("1000-1001", "sl_opts.cpus=\"1000-1001\": CPU "
	    "1000-1001 not available to this process");
	cpus_refused("1000", "(it may use ");

	/* SLUICE_CPUS set but empty is as unset */
	unsetenv("SLUICE_PROCS");
	setenv("SLUICE_CPUS", "", 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main(body_cpus, &c), 0);
	assert_true(CPU_EQUAL(&c.worker, &mine));

	setenv("SLUICE_CPUS", "zero", 1);
	cpus_refused(NULL, "sluice: SLUICE_CPUS=\"zero\": not a CPU list");
	unsetenv("SLUICE_CPUS");
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main(body_cpus, &c), 0);
	assert_true(c.ran);
	assert_int_equal(c.procs, CPU_COUNT(&mine));
}

/* main_refused with $name set to value (and restored after). */
static void
env_refused(const char *name, const char *value, const char *want)
{
	const char *old = getenv(name);
	char       *saved = old != NULL ? strdup(old) : NULL;

	setenv(name, value, 1);
	main_refused(NULL, value, want);
	if (saved != NULL) {
		setenv(name, saved, 1);
		free(saved);
	} else {
		unsetenv(name);
	}
}

/* SLUICE_PROCS, SLUICE_STACK_SIZE, SLUICE_STALL_MS, SLUICE_PANIC and the
 * sl_opts fields: a value that is not one is refused with a message
 * naming it, never replaced by the default in silence; sl_opts wins over
 * a bad variable. */
static void
test_env_refused(void **state)
{
	struct cpus c;
	sl_opts     o;

	(void) state;
	env_refused("SLUICE_PROCS", "abc",
	    "sluice: SLUICE_PROCS=\"abc\": not a number");
	env_refused("SLUICE_PROCS", "2x", "SLUICE_PROCS=\"2x\": not a number");
	env_refused("SLUICE_PROCS", " 2", "SLUICE_PROCS=\" 2\": not a number");
	env_refused("SLUICE_PROCS", "-2", "SLUICE_PROCS=\"-2\": not a number");
	env_refused("SLUICE_PROCS", "0",
	    "SLUICE_PROCS=\"0\": must be at least 1");
	env_refused("SLUICE_PROCS", "257",
	    "SLUICE_PROCS=\"257\": more than 256");
	env_refused("SLUICE_PROCS", "99999999999999999999", "more than 256");
	env_refused("SLUICE_STACK_SIZE", "64q", "sluice: SLUICE_STACK_SIZE="
	    "\"64q\": not a size (bytes, or a number with k or m)");
	env_refused("SLUICE_STACK_SIZE", "1kb", "\"1kb\": not a size");
	env_refused("SLUICE_STACK_SIZE", "0",
	    "SLUICE_STACK_SIZE=\"0\": must be at least 1");
	env_refused("SLUICE_STACK_SIZE", "1025m",
	    "SLUICE_STACK_SIZE=\"1025m\": more than 1024 MiB");
	env_refused("SLUICE_STACK_SIZE", "99999999999999999999",
	    "more than 1024 MiB");
	env_refused("SLUICE_STALL_MS", "abc",
	    "sluice: SLUICE_STALL_MS=\"abc\": not a number");
	env_refused("SLUICE_STALL_MS", "-1",
	    "SLUICE_STALL_MS=\"-1\": not a number");
	env_refused("SLUICE_STALL_MS", "10s",
	    "SLUICE_STALL_MS=\"10s\": not a number");
	env_refused("SLUICE_STALL_MS", "86400001",
	    "SLUICE_STALL_MS=\"86400001\": more than 86400000");
	/* "false" must not switch aborts on */
	env_refused("SLUICE_PANIC", "false",
	    "sluice: SLUICE_PANIC=\"false\": not 0 or 1");
	env_refused("SLUICE_PANIC", "yes", "SLUICE_PANIC=\"yes\": not 0 or 1");
	env_refused("SLUICE_PANIC", "2", "SLUICE_PANIC=\"2\": not 0 or 1");

	memset(&o, 0, sizeof(o));
	o.procs = 300;
	main_refused(&o, "procs 300", "sluice: sl_opts.procs=300: more than "
	    "256");
	memset(&o, 0, sizeof(o));
	o.stack_size = (size_t) 2 << 30;
	main_refused(&o, "stack 2 GiB", "sluice: sl_opts.stack_size="
	    "2147483648: more than 1024 MiB");

	/* options are not overridden by, nor checked against, the env */
	setenv("SLUICE_PROCS", "abc", 1);
	memset(&o, 0, sizeof(o));
	o.procs = 2;
	memset(&c, 0, sizeof(c));
	assert_int_equal(sl_main_opts(&o, body_cpus, &c), 0);
	unsetenv("SLUICE_PROCS");
	assert_true(c.ran);
	assert_int_equal(c.procs, 2);
}

/* ---- spreading over cores ----------------------------------------------- */

struct spread {
	atomic_int stop;
	atomic_int mask;   /* bit i: worker i ran a cruncher */
	atomic_int procs;
	atomic_int running;
};

static void
cruncher(void *arg)
{
	struct spread *s = arg;
	volatile uint64_t x = 1;

	while (!atomic_load(&s->stop)) {
		int w = sl_worker_id();

		for (int i = 0; i < 200000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		if (w >= 0 && w < 30)
			atomic_fetch_or(&s->mask, 1 << w);
		sl_yield();
	}
	atomic_fetch_sub(&s->running, 1);
}

static void
body_spread(void *arg)
{
	struct spread *s = arg;
	int64_t until = sl_now() + 20 * SL_SECOND;

	atomic_store(&s->procs, sl_procs());
	if (sl_procs() < 2)
		return;
	atomic_store(&s->running, 8);
	for (int i = 0; i < 8; i++)
		SL_CHECK_OK(sl_go(cruncher, s));
	while ((atomic_load(&s->mask) & 3) != 3 && sl_now() < until)
		sl_sleep(2 * SL_MILLISECOND);
	atomic_store(&s->stop, 1);
	while (atomic_load(&s->running) > 0)
		sl_sleep(SL_MILLISECOND);
}

/* CPU-bound goroutines are spread over the workers: workers 0 and 1 both
 * run some, with default options and with procs = 2. */
static void
test_spread_over_cores(void **state)
{
	struct spread s;

	(void) state;
	if (getenv("SLUICE_PROCS") == NULL) {
		memset(&s, 0, sizeof(s));
		slt_run(body_spread, &s);
		if (atomic_load(&s.procs) >= 2)
			assert_int_equal(atomic_load(&s.mask) & 3, 3);
	}
	memset(&s, 0, sizeof(s));
	slt_run_procs(2, body_spread, &s);
	assert_int_equal(atomic_load(&s.procs), 2);
	assert_int_equal(atomic_load(&s.mask) & 3, 3);
}

/* ---- many parked goroutines --------------------------------------------- */

struct park {
	sl_chan     *ch;
	atomic_long  started;
	atomic_long  closed;
	sl_waitgroup wg;
};

static void
parker(void *arg)
{
	struct park *p = arg;

	atomic_fetch_add(&p->started, 1);
	if (sl_chan_recv(p->ch, NULL) == SL_ECLOSED)
		atomic_fetch_add(&p->closed, 1);
	sl_waitgroup_done(&p->wg);
}

static void
park_many(long n)
{
	struct park p;
	int64_t until;

	if (n > slt_max_goroutines())
		n = slt_max_goroutines();
	memset(&p, 0, sizeof(p));
	p.ch = sl_chan_make(0, 0);
	SL_CHECK(p.ch != NULL);
	sl_waitgroup_add(&p.wg, n);
	for (long i = 0; i < n; i++) {
		int rv = sl_go(parker, &p);

		if (rv != 0) {
			SL_CHECK_OK(rv);
			sl_waitgroup_add(&p.wg, -(n - i));
			break;
		}
	}
	until = sl_now() + 120 * SL_SECOND;
	while (atomic_load(&p.started) < n && sl_now() < until)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&p.started), n);
	SL_CHECK_EQ(sl_numgoroutine(), (size_t) n + 1);
	SL_CHECK_EQ(atomic_load(&p.closed), 0);

	SL_CHECK_OK(sl_chan_close(p.ch));
	sl_waitgroup_wait(&p.wg);
	SL_CHECK_EQ(atomic_load(&p.closed), n);
	/* the parkers return right after their done() */
	until = sl_now() + 60 * SL_SECOND;
	while (sl_numgoroutine() > 1 && sl_now() < until)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(sl_numgoroutine(), 1);
	sl_chan_release(p.ch);
}

static void
body_park_100k(void *arg)
{
	(void) arg;
	park_many(slt_scaled(100000));
}

/* 100k goroutines park on one channel and are all released by close. */
static void
test_park_100k(void **state)
{
	slt_run(body_park_100k, *state);
}

static void
body_park_1m(void *arg)
{
	(void) arg;
	park_many(1000000);
}

/* The same with a million goroutines (only with SLUICE_TEST_BIG=1). */
static void
test_park_1m(void **state)
{
	(void) state;
	if (!slt_big())
		skip();
	slt_run(body_park_1m, NULL);
}

/* ---- abandoned goroutines ------------------------------------------------- */

static void
sleep_forever(void *arg)
{
	(void) arg;
	sl_sleep(3600 * SL_SECOND);
}

static void
block_on_nil(void *arg)
{
	(void) arg;
	(void) sl_chan_recv(NULL, NULL);
}

static void
yield_forever(void *arg)
{
	(void) arg;
	for (;;) {
		sl_yield();
		sl_sleep(SL_MILLISECOND);
	}
}

/* sl_main returns when main returns, abandoning the rest (what they hold
 * is freed, but for their stacks, which stay mapped: see
 * test_abandoned_waits_are_inert; the leak checkers verify the rest). */
static void
body_abandon(void *arg)
{
	(void) arg;
	for (int i = 0; i < 10; i++) {
		SL_CHECK_OK(sl_go(sleep_forever, NULL));
		SL_CHECK_OK(sl_go(block_on_nil, NULL));
		SL_CHECK_OK(sl_go(yield_forever, NULL));
	}
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_EQ(sl_numgoroutine(), 31);
}

static void
test_abandon(void **state)
{
	int64_t t0 = sl_now();

	slt_run(body_abandon, *state);
	assert_true(sl_now() - t0 < 30 * SL_SECOND);
	/* and a new scheduler starts clean */
	slt_run(body_goroutines_run, NULL);
}

/* ---- what abandoned goroutines leave behind ------------------------------ */

/* Objects that outlive sl_main, each with goroutines parked on it when
 * main returns. */
struct leftovers {
	sl_chan     *in;    /* unbuffered: a receiver waits (with ctx) */
	sl_chan     *out;   /* unbuffered: a sender waits */
	sl_chan     *sa, *sb; /* a select over receives of both, with ctx */
	sl_ctx      *ctx;
	sl_mutex     mu;    /* held by main when it returns; a locker waits */
	sl_waitgroup wg;    /* one to go; a waiter waits */
	sl_cond      cv;    /* a waiter waits, its mutex dropped */
	sl_mutex     cvmu;
	atomic_int   parked;
};

static void
lo_recv(void *arg)
{
	struct leftovers *l = arg;
	int v;

	atomic_fetch_add(&l->parked, 1);
	(void) sl_chan_recv_ctx(l->in, &v, l->ctx, SL_FOREVER);
	SL_CHECK(!"an abandoned receiver ran on");
}

static void
lo_send(void *arg)
{
	struct leftovers *l = arg;
	int v = 7;

	atomic_fetch_add(&l->parked, 1);
	(void) sl_chan_send(l->out, &v);
	SL_CHECK(!"an abandoned sender ran on");
}

static void
lo_select(void *arg)
{
	struct leftovers *l = arg;
	int a, b, chosen;
	sl_case cs[2] = { SL_CASE_RECV(l->sa, &a), SL_CASE_RECV(l->sb, &b) };

	atomic_fetch_add(&l->parked, 1);
	(void) sl_select(cs, 2, l->ctx, SL_FOREVER, &chosen);
	SL_CHECK(!"an abandoned select ran on");
}

static void
lo_lock(void *arg)
{
	struct leftovers *l = arg;

	atomic_fetch_add(&l->parked, 1);
	sl_mutex_lock(&l->mu);
	SL_CHECK(!"an abandoned locker ran on");
}

static void
lo_wgwait(void *arg)
{
	struct leftovers *l = arg;

	atomic_fetch_add(&l->parked, 1);
	sl_waitgroup_wait(&l->wg);
	SL_CHECK(!"an abandoned waiter ran on");
}

static void
lo_cvwait(void *arg)
{
	struct leftovers *l = arg;

	sl_mutex_lock(&l->cvmu);
	atomic_fetch_add(&l->parked, 1);
	sl_cond_wait(&l->cv, &l->cvmu);
	SL_CHECK(!"an abandoned cond waiter ran on");
}

#define LO_SPARE 20000 /* goroutines that ran and ended in the same run */

static void
lo_nothing(void *arg)
{
	(void) arg;
}

static void
body_leftovers(void *arg)
{
	struct leftovers *l = arg;
	sl_fn fns[] = { lo_recv, lo_send, lo_select, lo_lock, lo_wgwait,
		lo_cvwait };
	int n = (int) (sizeof(fns) / sizeof(fns[0]));
	int spare = (int) slt_scaled(LO_SPARE);

	sl_mutex_lock(&l->mu);
	sl_waitgroup_add(&l->wg, 1);
	/* stacks that end up free, in the same slabs */
	for (int i = 0; i < spare; i++)
		SL_CHECK_OK(sl_go(lo_nothing, NULL));
	for (int i = 0; i < n; i++)
		SL_CHECK_OK(sl_go(fns[i], l));
	while (atomic_load(&l->parked) < n || sl_numgoroutine() > (size_t) n + 1)
		sl_sleep(SL_MILLISECOND);
	sl_sleep(5 * SL_MILLISECOND); /* the last ones park */
	sl_mutex_lock(&l->cvmu); /* the cond waiter let it go: it waits */
	sl_mutex_unlock(&l->cvmu);
}

/* After sl_main returns, plain threads go on using what abandoned
 * goroutines waited on: a cancel, sends and receives, unlock, done,
 * broadcast.  None of that touches freed memory (ASan, valgrind), nor
 * completes an abandoned wait: a value sent then is not handed to a dead
 * receiver.  And runs after that are not disturbed, while the memory the
 * abandoned goroutines keep stays small (the free stacks of their run
 * are given back). */
static void
test_abandoned_waits_are_inert(void **state)
{
	long rss0 = 0;

	for (int run = 0; run < 4; run++) {
		struct leftovers l;
		int v = 1;

		memset(&l, 0, sizeof(l));
		l.in = sl_chan_make(sizeof(int), 0);
		l.out = sl_chan_make(sizeof(int), 0);
		l.sa = sl_chan_make(sizeof(int), 0);
		l.sb = sl_chan_make(sizeof(int), 0);
		assert_int_equal(sl_ctx_with_cancel(sl_ctx_background(),
		    &l.ctx), 0);
		slt_run_procs(2, body_leftovers, &l);
		if (run == 1)
			rss0 = slt_rss_kib();

		/* nobody receives now, nobody sends */
		assert_int_equal(sl_chan_trysend(l.in, &v), SL_EAGAIN);
		assert_int_equal(sl_chan_tryrecv(l.out, &v), SL_EAGAIN);
		assert_int_equal(sl_chan_trysend(l.sa, &v), SL_EAGAIN);
		assert_int_equal(sl_chan_trysend(l.sb, &v), SL_EAGAIN);
		sl_ctx_cancel(l.ctx);
		assert_int_equal(sl_ctx_err(l.ctx), SL_ECANCELED);
		sl_mutex_unlock(&l.mu);
		assert_true(sl_mutex_trylock(&l.mu)); /* not handed over */
		sl_mutex_unlock(&l.mu);
		sl_waitgroup_done(&l.wg);
		sl_cond_broadcast(&l.cv);
		for (int i = 0; i < 4; i++) {
			sl_chan *ch[4] = { l.in, l.out, l.sa, l.sb };

			assert_int_equal(sl_chan_close(ch[i]), 0);
			sl_chan_release(ch[i]);
		}
		sl_ctx_release(l.ctx);
		/* and the next run is not disturbed */
		slt_run(body_goroutines_run, NULL);
	}
	/* Runs 2 and 3 kept 6 parked goroutines' stacks and the records of
	 * all (5 MiB), not 20000 stacks (150 MiB; ASan's shadow of what is
	 * kept adds some 35 MiB). */
	if (slt_rss_kib() - rss0 > 64 * 1024)
		fail_msg("RSS grew by %ld KiB over two runs", slt_rss_kib() -
		    rss0);
}

/* ---- outside / nested ---------------------------------------------------- */

static void
noop(void *arg)
{
	(void) arg;
}

static void
body_nested_main(void *arg)
{
	(void) arg;
	SL_CHECK_ERR(sl_main(noop, NULL), SL_ESTATE);
}

static void *
thread_main(void *arg)
{
	int *rv = arg;

	*rv = sl_main(noop, NULL);
	return (NULL);
}

static void
join_main_thread(void *arg)
{
	SL_CHECK_EQ(pthread_join(*(pthread_t *) arg, NULL), 0);
}

/* A second scheduler while one runs is refused (from a goroutine and from
 * another thread). */
static void
body_second_main(void *arg)
{
	int rv = -1;
	pthread_t th;

	(void) arg;
	SL_CHECK_EQ(pthread_create(&th, NULL, thread_main, &rv), 0);
	SL_CHECK_OK(sl_blocking(join_main_thread, &th));
	SL_CHECK_ERR(rv, SL_ESTATE);
}

/* Without a scheduler: sl_go is refused, the queries report "none", and a
 * scheduler can be started nested or twice only sequentially. */
static void
test_outside_and_nested(void **state)
{
	(void) state;
	assert_int_equal(sl_go(noop, NULL), SL_ESTATE);
	assert_int_equal(sl_goid(), 0);
	assert_int_equal(sl_procs(), 0);
	assert_int_equal(sl_worker_id(), -1);
	assert_int_equal(sl_numgoroutine(), 0);
	sl_yield();
	slt_run(body_nested_main, NULL);
	slt_run(body_second_main, NULL);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sl_main(noop, NULL), 0);
}

/* ---- dump --------------------------------------------------------------- */

static void
body_dump(void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void) arg;
	SL_CHECK_OK(sl_go(block_on_nil, NULL));
	sl_sleep(5 * SL_MILLISECOND);
	f = open_memstream(&buf, &len);
	SL_CHECK(f != NULL);
	if (f == NULL)
		return;
	sl_dump_goroutines(f);
	fclose(f);
	/* two goroutines: at least two lines naming "goroutine" */
	SL_CHECK(buf != NULL && strstr(buf, "goroutine") != NULL);
	SL_CHECK(buf != NULL &&
	    strstr(strstr(buf, "goroutine") + 1, "goroutine") != NULL);
	free(buf);
}

/* ---- a plain thread wakes the scheduler while sl_main returns ----------- */

#define NCHURN 2 /* threads stopping timers */

struct churn {
	atomic_int stop;
	atomic_long stops;
	sl_timer  *t;
};

/* Arms and stops a timer as fast as it can: each stop of an armed timer
 * from a plain thread wakes an idle worker (sli_sched_poke). */
static void *
timer_churn(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		if (sl_timer_reset(c->t, SL_SECOND) == 0 && sl_timer_stop(c->t))
			atomic_fetch_add(&c->stops, 1);
		/* Under valgrind, whose threads take turns after a fixed
		 * count of blocks, a loop with no system call can end each
		 * turn inside the timer lock and starve sl_main of it. */
		sched_yield();
	}
	return (NULL);
}

static void
make_timer(void *arg)
{
	SL_CHECK_OK(sl_timer_make(SL_SECOND, arg));
	sl_timer_stop(*(sl_timer **) arg);
}

/* Main of a short run: its worker(s) go idle meanwhile, so the stops
 * have someone to wake. */
static void
quick_main(void *arg)
{
	(void) arg;
	sl_sleep(SL_MICROSECOND * (int64_t) (sl_now() % 200));
}

/* A thread stopping timers all the while sl_main starts and returns, over
 * and over: a wake-up of the scheduler may come at any moment of its
 * teardown, and must never touch what teardown frees or destroys (the
 * sanitizers watch: a freed worker, a destroyed lock). */
static void
test_poke_during_teardown(void **state)
{
	struct churn c;
	pthread_t    th[NCHURN];
	int          runs = (int) slt_scaled(500);

	(void) state;
	memset(&c, 0, sizeof(c));
	slt_run(make_timer, &c.t); /* timers are made while one runs */
	assert_non_null(c.t);
	for (int i = 0; i < NCHURN; i++)
		assert_int_equal(pthread_create(&th[i], NULL, timer_churn, &c),
		    0);
	for (int i = 0; i < runs; i++)
		slt_run_procs(1 + i % 2, quick_main, NULL);
	atomic_store(&c.stop, 1);
	for (int i = 0; i < NCHURN; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&c.stops) > 0);
	sl_timer_free(c.t);
}

/* The same, one interleaving pinned down: a plain thread's wake-up is
 * inside (stopped there by a hook) when main returns.  sl_main must wait
 * for it to leave before it takes the scheduler down; a wake-up that
 * comes later is refused without touching it. */
static struct {
	atomic_int   inside;   /* the hook runs */
	atomic_int   release;  /* let it go */
	atomic_llong left_at;  /* when it did */
	sl_timer    *t;
} vis;

static __thread bool vis_thread; /* stop_armed's thread */

static void
hold_visit(void)
{
	if (!vis_thread)
		return; /* another wake-up, from a worker */
	atomic_store(&vis.inside, 1);
	while (!atomic_load(&vis.release))
		usleep(1000);
	atomic_store(&vis.left_at, (long long) sl_now());
}

static void *
stop_armed(void *arg)
{
	(void) arg;
	vis_thread = true;
	/* A stop of an armed timer pokes, if a worker is idle then: until
	 * one does (and stays in the hook until released). */
	while (!atomic_load(&vis.inside)) {
		SL_CHECK_OK(sl_timer_reset(vis.t, SL_SECOND));
		(void) sl_timer_stop(vis.t);
	}
	return (NULL);
}

static void *
release_later(void *arg)
{
	(void) arg;
	usleep(50000);
	atomic_store(&vis.release, 1);
	return (NULL);
}

static void
main_returns_during_visit(void *arg)
{
	pthread_t *th = arg;

	SL_CHECK_OK(sl_timer_make(SL_SECOND, &vis.t));
	sl_sleep(5 * SL_MILLISECOND);    /* the other worker idles */
	sli_test_in_visit = hold_visit;
	SL_CHECK_EQ(pthread_create(&th[0], NULL, stop_armed, NULL), 0);
	while (!atomic_load(&vis.inside))
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(pthread_create(&th[1], NULL, release_later, NULL), 0);
}

static void
test_teardown_waits_for_visit(void **state)
{
	pthread_t th[2];
	long long returned;

	(void) state;
	memset(&vis, 0, sizeof(vis));
	slt_run_procs(2, main_returns_during_visit, th);
	returned = (long long) sl_now();
	sli_test_in_visit = NULL;
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	assert_true(atomic_load(&vis.left_at) != 0);
	assert_true(atomic_load(&vis.left_at) <= returned);
	/* the scheduler is down: a wake-up now is refused, harmlessly */
	assert_false(sl_timer_stop(vis.t));
	sli_sched_poke();
	sl_timer_free(vis.t);
}

/* sl_dump_goroutines lists the live goroutines. */
static void
test_dump(void **state)
{
	slt_run(body_dump, *state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goroutines_run),
		cmocka_unit_test(test_spawn_tree),
		cmocka_unit_test(test_go_from_thread),
		cmocka_unit_test(test_spawn_storm),
		cmocka_unit_test(test_goid_distinct),
		cmocka_unit_test(test_yield_interleaving),
		cmocka_unit_test(test_yield_no_starvation),
		cmocka_unit_test(test_procs),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_cpus_refused),
		cmocka_unit_test(test_env_refused),
		cmocka_unit_test(test_spread_over_cores),
		cmocka_unit_test(test_park_100k),
		cmocka_unit_test(test_park_1m),
		cmocka_unit_test(test_abandon),
		cmocka_unit_test(test_abandoned_waits_are_inert),
		cmocka_unit_test(test_outside_and_nested),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_poke_during_teardown),
		cmocka_unit_test(test_teardown_waits_for_visit),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
