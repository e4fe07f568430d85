/*
 * proc.h — process helpers of the multi-process pipeline tests: a
 * scratch directory per test, spawning the stage programs with their
 * stdout and stderr in files there, waiting with timeouts, killing and
 * reaping every child at teardown, RSS sampling, and reading the
 * programs' output.
 *
 * The stage programs are found in $SLUICE_STAGE_DIR (set by meson to
 * <builddir>/stages), or, when it is not set, in the stages/ directory
 * of the build tree holding the test program.  $SLUICE_STAGE_WRAPPER
 * (e.g. "valgrind --leak-check=full --error-exitcode=99") runs each
 * stage program under a wrapper.  All functions run on the test thread only; no
 * scheduler runs in the test process.
 */
#ifndef PT_PROC_H
#define PT_PROC_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The RSS bound of every stage process in the cases that check one.  The
 * sanitizers add shadow memory and allocator metadata on top of what the
 * program keeps, so their builds (PT_SANITIZED, set by meson) get a
 * larger, still constant, bound. */
#ifdef PT_SANITIZED
#define PT_RSS_BOUND_KIB (256L * 1024)
#else
#define PT_RSS_BOUND_KIB (64L * 1024)
#endif

/* The most processes one test may spawn (restarts included). */
#define PT_MAX_PROCS 64

/* One spawned stage process. */
typedef struct pt_proc {
	char   name[64];    /* label, and the base name of its log files */
	pid_t  pid;         /* its pid; 0 once reaped (or never started) */
	int    status;      /* wait status once reaped */
	char   out[512];    /* path of its stdout file */
	char   err[512];    /* path of its stderr file */
	char  *argv[48];    /* argv (malloc'd copies), for restarts */
	int64_t exited_ns;  /* pt_now_ns() when it was seen to exit */
} pt_proc;

/* Creates this test's scratch directory (under $TMPDIR or /tmp) and
 * forgets the previous test's processes.  Fails the test on error. */
void pt_setup(void);

/* SIGKILLs and reaps every child still running, frees the process
 * table, and removes the scratch directory (kept if $SLUICE_TEST_KEEP is
 * set).  Returns 0, or -1 if some child was still running (it is killed
 * anyway). */
int pt_teardown(void);

/* The scratch directory of the running test. */
const char *pt_dir(void);

/* An ipc:// URL for a socket named name in the scratch directory
 * (static storage, one of a few rotating buffers). */
const char *pt_ipc(const char *name);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int pt_free_port(void);

/* v in decimal, for an argv: static storage, one of 16 rotating
 * buffers. */
const char *pt_num(uint64_t v);

/* CLOCK_MONOTONIC in nanoseconds (the clock of sl_now()). */
int64_t pt_now_ns(void);

/* Sleeps ms milliseconds. */
void pt_msleep(int ms);

/*
 * Spawns stage program prog (e.g. "sluice-map", looked up in
 * $SLUICE_STAGE_DIR) with the NULL-terminated arguments that follow,
 * stdout and stderr redirected to <dir>/<name>.out and .err.  Returns
 * the new entry of the process table.  Fails the test on error.
 */
pt_proc *pt_spawn(const char *name, const char *prog, ...);

/* Starts the same program with the same arguments again, as a new entry
 * named name (the previous one must have been reaped). */
pt_proc *pt_respawn(pt_proc *p, const char *name);

/* Waits up to timeout_ms for p to exit: true (p->status set) or false. */
bool pt_wait(pt_proc *p, int timeout_ms);

/* true while p has not exited (reaps it if it has). */
bool pt_running(pt_proc *p);

/* Sends sig to p (if it still runs). */
void pt_kill(pt_proc *p, int sig);

/* p's exit code, or 128 + signal if a signal killed it, or -1. */
int pt_exit_code(const pt_proc *p);

/* The whole file at path as a malloc'd NUL-terminated string ("" when
 * missing).  The caller frees it. */
char *pt_slurp(const char *path);

/* Prints the stdout and stderr of every process of this test (to the
 * test's stdout), to explain a failure.  A process still running gets
 * SIGQUIT first, so a stuck stage adds its goroutine dump. */
void pt_dump_logs(void);

/*
 * Failing a case: PT_FAIL prints what explains the failure, then fails
 * the case with the message (cmocka's fail_msg).  What it prints: the
 * case's own report, if pt_on_fail gave one (a seed to replay it, say),
 * every process's output (pt_dump_logs), and the report again, so that
 * it shows at both ends of a long dump.  pt_setup forgets the report.
 */
void pt_on_fail(void (*report)(void));
void pt_fail_report(void);

#define PT_FAIL(...)                                                          \
	do {                                                                  \
		pt_fail_report();                                             \
		fail_msg(__VA_ARGS__);                                        \
	} while (0)

#define PT_CHECK(cond)                                                        \
	do {                                                                  \
		if (!(cond))                                                  \
			PT_FAIL("%s:%d: check failed: %s", __FILE__,          \
			    __LINE__, #cond);                                 \
	} while (0)

#define PT_CHECK_EQ(a, b)                                                     \
	do {                                                                  \
		uint64_t pt_a_ = (uint64_t) (a), pt_b_ = (uint64_t) (b);      \
		if (pt_a_ != pt_b_)                                           \
			PT_FAIL("%s:%d: %s == %" PRIu64 ", expected %s == %"  \
			    PRIu64, __FILE__, __LINE__, #a, pt_a_, #b, pt_b_); \
	} while (0)

/* VmRSS of pid in KiB, or -1 if it is gone. */
long pt_rss_kib(pid_t pid);

/* The sink's summary line. */
typedef struct pt_sink_summary {
	uint64_t count;    /* messages delivered */
	uint64_t sum;      /* sum of ids */
	uint64_t dups;     /* duplicate ids */
	uint64_t distinct; /* distinct ids */
} pt_sink_summary;

/* Parses "sink: count=..." from p's stdout: true and *s, or false. */
bool pt_sink_parse(const pt_proc *p, pt_sink_summary *s);

/* The value of "KEY=<u64>" in p's stdout (e.g. "processed"): true and
 * *v, or false. */
bool pt_stdout_u64(const pt_proc *p, const char *key, uint64_t *v);

/* true if p's stderr contains needle. */
bool pt_stderr_has(const pt_proc *p, const char *needle);

/* The "canceled at T" time in p's stderr: true and *t, or false. */
bool pt_cancel_time(const pt_proc *p, int64_t *t);

/* SLUICE_TEST_SCALE (default 1), and n scaled by it (at least 1). */
double   pt_scale(void);
uint64_t pt_scaled(uint64_t n);

#endif /* PT_PROC_H */
