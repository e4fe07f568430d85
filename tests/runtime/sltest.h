/*
 * sltest.h — small helpers shared by the cmocka runtime tests.
 *
 * What it holds:
 *
 *   SL_ASSERT_OK(expr)          expr must return 0; fatal otherwise.
 *   SL_ASSERT_ERR(expr, code)   expr must return exactly code; fatal.
 *   SL_CHECK(cond)              non-fatal check, usable anywhere.
 *   SL_CHECK_OK(expr)           non-fatal: expr returns 0.
 *   SL_CHECK_ERR(expr, code)    non-fatal: expr returns code.
 *   SL_CHECK_EQ(a, b)           non-fatal: two integers are equal.
 *
 *   slt_run(fn, arg)            runs fn as sl_main's main goroutine, then
 *                               asserts sl_main returned 0 and no SL_CHECK
 *                               failed meanwhile.
 *   slt_run_procs(p, fn, arg)   the same with p worker threads.
 *   slt_fork(fn, arg, &res)     runs fn(arg) in a forked child, captures its
 *                               wait status and stderr text.
 *   slt_scale(), slt_scaled(n)  the SLUICE_TEST_SCALE factor (default 1)
 *                               and n scaled by it (at least 1).
 *   slt_big()                   true when SLUICE_TEST_BIG=1.
 *   slt_thread()                pthread_self(), never cached across a park.
 *   slt_max_goroutines()        cap on live goroutines (TSan's limit).
 *   slt_rss_kib()               resident set size of this process.
 *   slt_filter()                honours SLUICE_TEST_FILTER (call in main).
 *   slt_hold_stacks(h, max)     goroutines that hold stacks until sl_go
 *                               fails; slt_let_go(h, k) ends k of them,
 *                               slt_let_all_go(h) the rest.
 *   slt_ran                     a record of a function the library starts
 *                               (AfterFunc): slt_ran_mark in it, then
 *                               slt_ran_wait for the first run.
 *   slt_rnd, slt_rnd_below      a seeded generator (splitmix64) for
 *                               randomized tests; slt_seed(own) the seed
 *                               to use: $SLUICE_CHAOS_SEED, or own;
 *                               slt_chaos_failed reports a broken rule
 *                               (the first few of each), slt_replay_hint
 *                               how to replay a failed case.
 *   CHK(cond, fmt, ...), rnd    for a chaos test that defines SLT_CHAOS
 *                               before including this header (below).
 *
 * Why two kinds of assertion: cmocka's failure path longjmps back to the
 * test runner, which must not happen from a goroutine stack or from a
 * foreign thread while a scheduler runs.  So the SL_ASSERT_* macros use
 * cmocka when called from the test thread with no scheduler running, and
 * otherwise print the failure to stderr and abort() the test program.  The
 * SL_CHECK_* macros never stop the caller: they print and count the failure,
 * and slt_run() (or slt_assert_no_failures()) turns the count into a cmocka
 * failure once sl_main has returned.  Inside goroutines prefer SL_CHECK_*.
 */
#ifndef SLTEST_H
#define SLTEST_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"

#include "sluice/sluice.h"

/* ---- failure accounting ------------------------------------------------ */

/* The process-wide count of failed SL_CHECK_* since the last reset. */
static inline atomic_int *
slt_failures(void)
{
	static atomic_int n;
	return (&n);
}

/* true when a cmocka failure may longjmp from here (test thread, no
 * scheduler running). */
static inline bool
slt_can_longjmp(void)
{
	return (sl_goid() == 0 && sl_procs() == 0);
}

/* Reports a failed check: prints it, counts it. */
static inline void slt_check_failed(const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline void
slt_check_failed(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s:%d: check failed: ", file, line);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " [goroutine %llu, worker %d]\n",
	    (unsigned long long) sl_goid(), sl_worker_id());
	va_end(ap);
	fflush(stderr);
	atomic_fetch_add(slt_failures(), 1);
}

/* Reports a failed assertion: a cmocka failure when that is safe, else
 * prints it and aborts the whole test program. */
#define SLT_FATAL(...)                                                      \
	do {                                                                \
		if (slt_can_longjmp()) {                                    \
			fail_msg(__VA_ARGS__);                              \
		} else {                                                    \
			slt_check_failed(__FILE__, __LINE__, __VA_ARGS__);  \
			fprintf(stderr, "fatal assertion inside the "       \
			    "scheduler: aborting\n");                       \
			abort();                                            \
		}                                                           \
	} while (0)

#define SL_ASSERT_OK(expr)                                                  \
	do {                                                                \
		int slt_rv_ = (expr);                                       \
		if (slt_rv_ != 0)                                           \
			SLT_FATAL("%s returned %d %s (%s), expected 0",     \
			    #expr, slt_rv_, sl_errname(slt_rv_),            \
			    sl_strerror(slt_rv_));                          \
	} while (0)

#define SL_ASSERT_ERR(expr, code)                                           \
	do {                                                                \
		int slt_rv_ = (expr);                                       \
		int slt_want_ = (code);                                     \
		if (slt_rv_ != slt_want_)                                   \
			SLT_FATAL("%s returned %d %s (%s), expected %s",    \
			    #expr, slt_rv_, sl_errname(slt_rv_),            \
			    sl_strerror(slt_rv_), sl_errname(slt_want_));   \
	} while (0)

#define SL_CHECK(cond)                                                      \
	do {                                                                \
		if (!(cond))                                                \
			slt_check_failed(__FILE__, __LINE__, "%s", #cond);  \
	} while (0)

#define SL_CHECK_OK(expr)                                                   \
	do {                                                                \
		int slt_rv_ = (expr);                                       \
		if (slt_rv_ != 0)                                           \
			slt_check_failed(__FILE__, __LINE__,                \
			    "%s returned %d %s (%s), expected 0", #expr,    \
			    slt_rv_, sl_errname(slt_rv_),                   \
			    sl_strerror(slt_rv_));                          \
	} while (0)

#define SL_CHECK_ERR(expr, code)                                            \
	do {                                                                \
		int slt_rv_ = (expr);                                       \
		int slt_want_ = (code);                                     \
		if (slt_rv_ != slt_want_)                                   \
			slt_check_failed(__FILE__, __LINE__,                \
			    "%s returned %d %s (%s), expected %s", #expr,   \
			    slt_rv_, sl_errname(slt_rv_),                   \
			    sl_strerror(slt_rv_), sl_errname(slt_want_));   \
	} while (0)

#define SL_CHECK_EQ(a, b)                                                   \
	do {                                                                \
		long long slt_a_ = (long long) (a);                         \
		long long slt_b_ = (long long) (b);                         \
		if (slt_a_ != slt_b_)                                       \
			slt_check_failed(__FILE__, __LINE__,                \
			    "%s == %s: %lld != %lld", #a, #b, slt_a_,       \
			    slt_b_);                                        \
	} while (0)

/* Fails the current cmocka test if any SL_CHECK failed since the last
 * call, and resets the count.  Call from the test thread only. */
static inline void
slt_assert_no_failures(void)
{
	int n = atomic_exchange(slt_failures(), 0);

	if (n != 0)
		fail_msg("%d check(s) failed (see stderr)", n);
}

/* pthread_self(), read afresh: glibc declares it const, so the compiler
 * may reuse one read across a park after which the goroutine runs on
 * another thread. */
static __attribute__((noinline, unused)) pthread_t
slt_thread(void)
{
	pthread_t t = pthread_self();

	__asm__ __volatile__("" : "+r"(t) : : "memory");
	return (t);
}

/* ---- running a body under the scheduler ------------------------------- */

/*
 * Runs fn(arg) as the main goroutine of a fresh scheduler with procs
 * workers (0: the default) and asserts that sl_main returned 0 and that no
 * SL_CHECK failed.  Call from the cmocka test thread.
 */
static inline void
slt_run_procs(int procs, sl_fn fn, void *arg)
{
	sl_opts o;
	int rv;

	memset(&o, 0, sizeof(o));
	o.procs = procs;
	atomic_store(slt_failures(), 0);
	rv = sl_main_opts(&o, fn, arg);
	if (rv != 0)
		fail_msg("sl_main returned %d %s (%s)", rv, sl_errname(rv),
		    sl_strerror(rv));
	slt_assert_no_failures();
}

static inline void
slt_run(sl_fn fn, void *arg)
{
	slt_run_procs(0, fn, arg);
}

/* ---- child processes -------------------------------------------------- */

typedef struct slt_child {
	int  status;     /* waitpid status */
	char err[16384]; /* the child's stderr, NUL-terminated (truncated) */
} slt_child;

/* Which exit code a child's fn may use to report "all good". */
#define SLT_CHILD_OK 0

/*
 * Runs fn(arg) in a forked child whose stderr goes into res->err; the
 * child then exits with status SLT_CHILD_OK (fn may also _exit or die on
 * its own).  Waits for it and stores its wait status.  Core dumps are
 * disabled in the child.  Call from the test thread with no scheduler
 * running.  Returns 0, or -1 if fork/pipe failed.
 */
static inline int
slt_fork(void (*fn)(void *), void *arg, slt_child *res)
{
	int fds[2];
	pid_t pid;
	size_t len = 0;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) != 0)
		return (-1);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		(void) setrlimit(RLIMIT_CORE, &rl);
		close(fds[0]);
		(void) dup2(fds[1], 2);
		close(fds[1]);
		fn(arg);
		fflush(stdout);
		fflush(stderr);
		_exit(SLT_CHILD_OK);
	}
	close(fds[1]);
	for (;;) {
		char junk[512];
		char *dst = len < sizeof(res->err) - 1 ? res->err + len : junk;
		size_t room = len < sizeof(res->err) - 1 ?
		    sizeof(res->err) - 1 - len : sizeof(junk);
		ssize_t n = read(fds[0], dst, room);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != junk)
			len += (size_t) n;
	}
	res->err[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &res->status, 0) < 0) {
		if (errno != EINTR)
			return (-1);
	}
	return (0);
}

/* Describes a wait status for failure messages. */
static inline const char *
slt_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status 0x%x", status);
	return (buf);
}

/* ---- scale and environment -------------------------------------------- */

/* SLUICE_TEST_SCALE as a positive factor; 1 when unset or unparsable. */
static inline double
slt_scale(void)
{
	const char *s = getenv("SLUICE_TEST_SCALE");
	char *end;
	double f;

	if (s == NULL || *s == '\0')
		return (1.0);
	f = strtod(s, &end);
	if (end == s || !(f > 0.0))
		return (1.0);
	return (f);
}

/* n times the scale factor, at least 1. */
static inline long
slt_scaled(long n)
{
	double v = (double) n * slt_scale();

	return (v < 1.0 ? 1 : (long) v);
}

/* n times the scale factor, at least min (for statistics that need a
 * minimum sample). */
static inline long
slt_scaled_min(long n, long min)
{
	long v = slt_scaled(n);

	return (v < min ? min : v);
}

/* true when SLUICE_TEST_BIG=1 asks for the very large cases. */
static inline bool
slt_big(void)
{
	const char *s = getenv("SLUICE_TEST_BIG");

	return (s != NULL && strcmp(s, "1") == 0);
}

/* true when running under valgrind (LD_PRELOAD names its preload). */
static inline bool
slt_under_valgrind(void)
{
	const char *s = getenv("LD_PRELOAD");

	return (s != NULL && strstr(s, "vgpreload") != NULL);
}

/*
 * The most goroutines a test may have alive at once.  ThreadSanitizer
 * counts every goroutine (a fiber) against its thread limit (8128), so
 * under TSan big counts are capped; otherwise there is no cap.
 */
#if defined(__SANITIZE_THREAD__)
#define SLT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLT_TSAN 1
#endif
#endif

static inline long
slt_max_goroutines(void)
{
#ifdef SLT_TSAN
	return (4000);
#else
	return (LONG_MAX);
#endif
}

/* Resident set size in KiB, from /proc/self/statm; 0 if unknown. */
static inline long
slt_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;

	if (f == NULL)
		return (0);
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (rss * (sysconf(_SC_PAGESIZE) / 1024));
}

/* Applies $SLUICE_TEST_FILTER (a cmocka name pattern, '*' wildcards) to
 * the cases to run; call at the top of main(). */
static inline void
slt_filter(void)
{
	test_filter();
}

/* ---- holding every stack ----------------------------------------------- */

/* Goroutines that each hold a stack until let go.  With
 * sli_stack_max_slabs set, slt_hold_stacks spawns them until no stack is
 * left, to test what runs out of goroutines. */
typedef struct slt_holders {
	sl_chan      *gate; /* each receive lets one go; closing, all */
	sl_waitgroup  done;
	long          n;    /* spawned */
	int           err;  /* what the sl_go that failed returned */
} slt_holders;

static inline void
slt_holder(void *arg)
{
	slt_holders *h = arg;

	(void) sl_chan_recv(h->gate, NULL);
	sl_waitgroup_done(&h->done);
}

/* Spawns holders until sl_go fails, or max of them; returns how many. */
static inline long
slt_hold_stacks(slt_holders *h, long max)
{
	memset(h, 0, sizeof(*h));
	if ((h->gate = sl_chan_make(0, 0)) == NULL) {
		h->err = SL_ENOMEM;
		return (0);
	}
	while (h->n < max) {
		sl_waitgroup_add(&h->done, 1);
		if ((h->err = sl_go(slt_holder, h)) != 0) {
			sl_waitgroup_done(&h->done);
			break;
		}
		h->n++;
	}
	return (h->n);
}

/* Ends k holders (they return soon after). */
static inline void
slt_let_go(slt_holders *h, long k)
{
	for (long i = 0; i < k; i++)
		(void) sl_chan_send(h->gate, NULL);
}

/* Ends the rest and waits for them. */
static inline void
slt_let_all_go(slt_holders *h)
{
	(void) sl_chan_close(h->gate);
	sl_waitgroup_wait(&h->done);
	sl_chan_release(h->gate);
	h->gate = NULL;
}

/* What a function the library starts (an AfterFunc) did: how often it
 * ran, and where. */
typedef struct slt_ran {
	atomic_int  runs;
	uint64_t    goid; /* of the last run: 0 outside goroutines */
	sl_chan    *ch;   /* capacity 1: the first run sends on it */
} slt_ran;

static inline void
slt_ran_init(slt_ran *r)
{
	memset(r, 0, sizeof(*r));
	r->ch = sl_chan_make(0, 1);
	SL_CHECK(r->ch != NULL);
}

/* Called by the function, at its end. */
static inline void
slt_ran_mark(slt_ran *r)
{
	r->goid = sl_goid();
	if (atomic_fetch_add(&r->runs, 1) == 0)
		SL_CHECK_OK(sl_chan_send(r->ch, NULL));
}

/* Waits (10 s at most) for the first run. */
static inline void
slt_ran_wait(slt_ran *r)
{
	SL_CHECK_OK(sl_chan_recv_ctx(r->ch, NULL, NULL,
	    sl_now() + 10 * SL_SECOND));
}

static inline void
slt_ran_fini(slt_ran *r)
{
	sl_chan_release(r->ch);
}

/* ---- seeded randomness ------------------------------------------------- */

/* The next number of the seeded sequence *s (testutil.h's splitmix64). */
static inline uint64_t
slt_rnd(uint64_t *s)
{
	return (test_rnd(s));
}

/* A uniform number in [0, n). */
static inline uint32_t
slt_rnd_below(uint64_t *s, uint32_t n)
{
	return ((uint32_t) (((slt_rnd(s) >> 32) * n) >> 32));
}

/* The seed of a randomized case (testutil.h's test_seed). */
static inline uint64_t
slt_seed(uint64_t own)
{
	return (test_seed(own));
}

/* Ends a randomized case that failed with how to replay it. */
static inline void
slt_replay_hint(const char *test, uint64_t seed, int procs)
{
	int failed = atomic_load(slt_failures());

	if (failed != 0)
		fprintf(stderr, "%s: %d check(s) FAILED with seed 0x%" PRIx64
		    " and %d worker(s); replay with SLUICE_CHAOS_SEED=0x%"
		    PRIx64 " SLUICE_TEST_FILTER='*_%d_worker*'\n", test, failed,
		    seed, procs, seed, procs);
}

/*
 * A failed invariant of a randomized test, seen at line, in the words
 * where ("seed 0x.. procs 2 round 1, agent 3") and fmt: counted as a
 * failed SL_CHECK, and printed unless *printed (the count for that check)
 * passed max already, so that one broken rule does not flood the log.
 */
static inline void
slt_chaos_failed(atomic_int *printed, int max, const char *file, int line,
    const char *where, const char *fmt, va_list ap)
{
	char msg[6144];
	int  n;

	if ((n = atomic_fetch_add(printed, 1)) >= max) {
		atomic_fetch_add(slt_failures(), 1);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	slt_check_failed(file, line, "%s: %s%s", where, msg, n + 1 == max ?
	    " (more like this are counted, not printed)" : "");
}

#ifdef SLT_CHAOS
/*
 * The reporting of a randomized test.  CHK(cond, fmt, ...) checks a rule
 * anywhere (a goroutine, a plain thread, a handler's aftermath): a broken
 * one is printed with what slt_chaos_where() says is running (the seed,
 * workers, round: the test defines it), the first SLT_PRINT_MAX times per
 * line of the check, and counted as a failed SL_CHECK.  slt_chaos_reset()
 * prints from the start again (call it per case).  rnd(s, n) is a number
 * below n from the test's generator s.
 */
#define SLT_PRINT_MAX   3
#define SLT_CHAOS_LINES 4096 /* more than the lines of a test file */

static void slt_chaos_where(char *buf, size_t len);

static atomic_int slt_chaos_printed[SLT_CHAOS_LINES];

static void slt_chaos_check_failed(const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
slt_chaos_check_failed(const char *file, int line, const char *fmt, ...)
{
	char    where[160];
	va_list ap;

	slt_chaos_where(where, sizeof(where));
	va_start(ap, fmt);
	slt_chaos_failed(&slt_chaos_printed[(unsigned) line % SLT_CHAOS_LINES],
	    SLT_PRINT_MAX, file, line, where, fmt, ap);
	va_end(ap);
}

#define CHK(cond, ...)                                                      \
	do {                                                                \
		if (!(cond))                                                \
			slt_chaos_check_failed(__FILE__, __LINE__,          \
			    __VA_ARGS__);                                   \
	} while (0)

static inline void
slt_chaos_reset(void)
{
	for (int i = 0; i < SLT_CHAOS_LINES; i++)
		atomic_store(&slt_chaos_printed[i], 0);
}

static inline uint32_t
rnd(uint64_t *s, uint32_t n)
{
	return (slt_rnd_below(s, n));
}
#endif /* SLT_CHAOS */

#endif /* SLTEST_H */
