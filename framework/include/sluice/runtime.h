/*
 * sluice/runtime.h — goroutines, the M:N scheduler, time.
 *
 * A goroutine is a stackful coroutine.  Goroutines run on a pool of worker
 * OS threads (one per CPU by default; SLUICE_PROCS overrides it, like
 * GOMAXPROCS; SLUICE_CPUS binds them to some CPUs).  Each worker has its
 * own run queue; idle workers steal.  A goroutine that blocks (channel,
 * select, timer, mutex, ...) parks: its worker runs other goroutines
 * meanwhile.  Scheduling is cooperative: a goroutine that computes for a
 * long time without blocking should call sl_yield() now and then (a
 * watchdog names one that holds its worker for 10 s: sl_opts.stall).
 *
 * Stacks have a fixed size (sl_opts.stack_size), a guard page under each.
 * A goroutine that overflows its stack kills the process with a "stack
 * overflow in goroutine N" report.  Build code that runs in goroutines
 * with -fstack-clash-protection (meson's sluice_dep adds it; GCC on
 * aarch64 also wants --param=stack-clash-protection-guard-size=12): a
 * frame larger than a page (a big local array, a VLA, alloca) is then
 * touched page by page and hits the guard.  Without it such a frame can
 * step over the guard and write into another goroutine's stack unseen.
 *
 * Times are nanoseconds.  A deadline is an absolute sl_now() value;
 * SL_FOREVER means none.
 */
#ifndef SLUICE_RUNTIME_H
#define SLUICE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_ctx sl_ctx;

/* The body of a goroutine (or of sl_main, sl_blocking). */
typedef void (*sl_fn)(void *arg);

#define SL_NANOSECOND  ((int64_t) 1)
#define SL_MICROSECOND ((int64_t) 1000)
#define SL_MILLISECOND ((int64_t) 1000000)
#define SL_SECOND      ((int64_t) 1000000000)
#define SL_FOREVER     INT64_MAX

/* Scheduler options for sl_main_opts().  Zero fields mean "default". */
typedef struct sl_opts {
	int    procs;      /* worker threads, at most 256; default
	                      $SLUICE_PROCS or the CPUs the process may use */
	size_t stack_size; /* bytes per goroutine stack, its guard page
	                      included, at most 1 GiB (less
	                      than 16 KiB is raised to it); default
	                      $SLUICE_STACK_SIZE (a number of bytes, or with k
	                      or m) or 64 KiB (256 KiB under ASan) */
	const char *cpus;  /* CPU list the scheduler's threads run on, as
	                      taskset takes it ("0", "0-3,6"); default
	                      $SLUICE_CPUS, or leave the affinity alone */
	int64_t stall;     /* report on stderr a goroutine that holds its
	                      worker this long (ns) without a switch, and
	                      when it lets go; negative: never; default
	                      $SLUICE_STALL_MS (0: never) or 10 s */
} sl_opts;

/*
 * sl_main runs fn(arg) as the main goroutine and the scheduler until it
 * returns, like Go's main: goroutines still running then are abandoned,
 * never resumed nor unwound, and so are their blocking calls
 * (sl_blocking): sl_main does not wait for a call in flight (its thread
 * exits when it returns, touching nothing else), and calls still queued
 * for a thread never run.  What they waited on stays usable by plain
 * threads: a channel, context, mutex, WaitGroup or Cond passes over the
 * abandoned waits (a value sent then waits for a live receiver; it is
 * not handed to a dead one).  For that their memory, and the stack a
 * call in flight writes its results to, is kept until the process exits
 * (only stacks free by then are given back).  A goroutine that is running
 * on another worker at that moment is waited for until its next switch (a
 * channel operation, a sleep, sl_yield): C code cannot be stopped
 * anywhere else.  The calling thread waits while the worker threads run
 * the goroutines.  Returns 0, SL_EDEADLOCK if every goroutine blocked
 * forever (a report naming each goroutine's wait is printed to stderr
 * first), SL_ENOMEM, SL_ESYSTEM, SL_EINVAL for a bad CPU list, worker
 * count or stack size, from sl_opts or the environment (the value and what
 * is wrong with it are printed to stderr), or SL_ESTATE if a scheduler
 * already runs in this process.  sl_main may be called again after it
 * returned.  Plain threads may go on stopping timers, cancelling
 * contexts, releasing holds while sl_main sets up or returns: whatever
 * of that wakes the scheduler is skipped while it is not up, and sl_main
 * waits for such a wake-up in progress before it takes the scheduler
 * down (sl_go from such a thread returns SL_ESTATE then).
 *
 * With a CPU list (sl_opts.cpus or $SLUICE_CPUS) every thread of the
 * process, and every thread created while the scheduler runs (workers,
 * the blocking pool, NNG's threads), is bound to those CPUs, as taskset
 * would bind the process; the caller's own affinity is restored on
 * return.  The default worker count is the number of CPUs
 * the process may run on, after that binding (as Go's GOMAXPROCS).
 */
int sl_main(sl_fn fn, void *arg);
int sl_main_opts(const sl_opts *opts, sl_fn fn, void *arg);

/*
 * sl_go starts fn(arg) as a new goroutine.  May be called from a goroutine
 * or from any thread while sl_main runs.  Returns 0, SL_ENOMEM, or
 * SL_ESTATE when no scheduler runs.  SL_ENOMEM means there is no memory
 * or address space (RLIMIT_AS, strict overcommit) for another stack and
 * no freed one is left to reuse, on any worker; fn was not started, and
 * the goroutines already running are not affected.
 */
int sl_go(sl_fn fn, void *arg);

/* Lets other runnable goroutines run.  A no-op outside goroutines. */
void sl_yield(void);

/* Monotonic clock, in nanoseconds. */
int64_t sl_now(void);

/*
 * Blocks the calling goroutine (or thread) for ns nanoseconds.  The _ctx
 * form returns early with sl_ctx_err(ctx) when ctx is done, else 0.
 */
void sl_sleep(int64_t ns);
int  sl_sleep_ctx(sl_ctx *ctx, int64_t ns);

/*
 * sl_blocking runs fn(arg) on a thread of a small pool and parks the
 * calling goroutine until it returns, so blocking system calls or
 * libraries do not stall other goroutines.  Outside goroutines it calls
 * fn directly.  Returns 0, SL_EINVAL for a NULL fn, or SL_ESYSTEM when no
 * pool thread could be started (fn was then not run).
 *
 * When the calls of fn made so far in this sl_main run were short (under
 * 20 us lately: a read of a cached file, a stat) and the caller's worker
 * has nothing else to run, fn runs on that worker's thread instead, on
 * the thread's own stack, while the goroutine is parked: no hand-off to
 * another thread, as Go runs a system call.  Never on the last worker
 * not already in such a call, so whatever fn waits for still runs; never
 * with one worker.  Either way fn runs as code on a plain thread does:
 * its channel operations block the thread, and goroutines it readies or
 * starts run on the other workers.  One call of a fn runs so at a time
 * (others meanwhile go to the pool), so a call that turns out long holds
 * up only its own worker, and sends later calls of fn to the pool; the
 * stall watchdog (sl_opts.stall) names it.
 */
int sl_blocking(sl_fn fn, void *arg);

/*
 * sl_blocking_ctx is sl_blocking that gives up when ctx is done or the
 * deadline (SL_FOREVER: none) passes while fn still waits for a free pool
 * thread (the pool has 32): fn then never runs, and the call returns the
 * context's error or SL_ETIMEDOUT, as it does at once when ctx is already
 * done or the deadline already passed.  A call that has started cannot be
 * stopped from outside (it is plain C code, maybe inside a system call):
 * sl_blocking_ctx waits for fn to return, so that arg stays valid, and
 * returns 0.  So it returns 0 exactly when fn ran.  To cut a running call
 * short, make it interruptible, e.g. with sl_ctx_after_func closing the
 * descriptor it reads.
 */
int sl_blocking_ctx(sl_fn fn, void *arg, sl_ctx *ctx, int64_t deadline);

/* The id of the running goroutine (1 is main), or 0 outside goroutines. */
uint64_t sl_goid(void);

/* The number of live goroutines (started and not yet returned). */
size_t sl_numgoroutine(void);

/* The number of worker threads of the running scheduler (0 if none). */
int sl_procs(void);

/* The worker thread index running the caller, or -1 outside workers. */
int sl_worker_id(void);

/* Prints every live goroutine, its state and what it waits on. */
void sl_dump_goroutines(FILE *out);

/*
 * An event source outside goroutines (a foreign thread, an I/O callback)
 * that may still wake a goroutine holds the scheduler while it lives, so
 * that a quiet moment is not reported as a deadlock.
 */
void sl_sched_hold(void);
void sl_sched_release(void);

/* The stack size in use (bytes). */
size_t sl_stack_size(void);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_RUNTIME_H */
