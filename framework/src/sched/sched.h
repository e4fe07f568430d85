/*
 * sched.h — the M:N scheduler's internal structures (internal).
 *
 * Layers, bottom up:
 *   switch_*.S  sli_switch: save registers, swap stack pointers.
 *   stack.c     goroutine stacks and sli_g records carved from large
 *               slabs; a guard page under every stack where the kernel
 *               has guard markers, else under the first 8192; canaries
 *               always.
 *   sched.c     workers (one OS thread each), per-worker run queues with
 *               work stealing, park/ready, sl_main, deadlock detection.
 *   timer.c     one timer heap, fired by workers.
 *   wait.c      sli_wait: park with deadline/context, thread parking.
 *   blocking.c  sl_blocking: quick calls inline on the worker, others
 *               on a thread pool.
 *   cpus.c      CPU lists (SLUICE_CPUS) and the affinity they set.
 */
#ifndef SLI_SCHED_H
#define SLI_SCHED_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/runtime.h"
#include "sched/wait.h"

/* Goroutine states. */
enum sli_gstate {
	SLI_G_FREE = 0, /* record unused (stack pooled) */
	SLI_G_RUNNABLE, /* in a run queue */
	SLI_G_RUNNING,  /* on a worker */
	SLI_G_PARKING,  /* switching out to park; not yet safe to resume */
	SLI_G_WAITING,  /* parked; sli_ready may resume it */
	SLI_G_DEAD,     /* returned; its worker recycles it */
};

/* What the goroutine asked its worker to do when it switched out. */
enum sli_gexit { SLI_SW_PARK = 1, SLI_SW_YIELD, SLI_SW_EXIT };

struct sli_g {
	void         *sp;          /* saved stack pointer while switched out */
	struct sli_g *next;        /* global run queue / free list link */
	sl_fn         fn;          /* body */
	void         *arg;         /* its argument */
	atomic_int    state;       /* enum sli_gstate */
	int           swreason;    /* enum sli_gexit, set before switching */
	uint64_t      id;          /* goroutine id, 1 = main */
	char         *stack_lo;    /* lowest usable byte of the stack */
	size_t        stack_size;  /* usable bytes */
	bool          guarded;     /* a guard page sits below stack_lo */
	const char   *wait_reason; /* why it is parked (for dumps) */
	const void   *wait_obj;    /* on what */
	union {
		struct {
			bool (*commitf)(sli_g *, void *); /* run by the
			                     worker once switched out
			                     (sli_park) */
			void  *commitarg;
		};
		struct {                /* while free, first of a batch on
			                   the global free list (stack.c) */
			struct sli_g *batch_next; /* the next batch */
			long          batch_len;  /* records in this one */
		};
	};
	unsigned      vg_stack_id; /* valgrind stack registration */
	void         *tsan_fiber;  /* TSan fiber of this goroutine */
	void         *asan_fake;   /* ASan fake stack while switched out */
};

#define SLI_RUNQ_SIZE 256

typedef struct sli_worker {
	int             id;        /* index in sched.workers */
	pthread_t       thread;    /* its OS thread */
	void           *sp;        /* scheduler context (thread stack) */
	sli_g          *cur;       /* running goroutine, or NULL */
	sli_g          *handoff;   /* parked by switching straight to cur:
	                              its park is finished when cur runs */
	_Atomic(sli_g *) runnext;  /* readied by the running goroutine */
	atomic_uint     head;      /* run queue: owner and thieves pop here */
	atomic_uint     tail;      /* owner pushes here */
	_Atomic(sli_g *) runq[SLI_RUNQ_SIZE];
	atomic_int      gfree_lock; /* guards gfree and ngfree: taken by the
	                              owner, and by a spawner short of
	                              address space (stack.c) */
	sli_g          *gfree;     /* local cache of free records */
	int             ngfree;
	uint64_t        rand;      /* xorshift state for this worker */
	atomic_uint     tick;      /* schedules so far (read by thieves) */
	_Atomic uint64_t run_id;   /* id of the goroutine it runs, 0 if none,
	                              and its body: for the stall watchdog */
	_Atomic(sl_fn)  run_fn;
	atomic_bool     run_call;  /* ... in a blocking call made inline
	                              (sli_run_detached), not running */
	atomic_int     *call;      /* SLI_CALL_*: in such a call or not, for
	                              sl_main's teardown (own allocation: an
	                              abandoned thread outlives the worker) */
	bool            idle;      /* on the idle list (under sched.lock) */
	bool            spinning;  /* looking for work to steal */
	bool            netpolling; /* idle in epoll_wait, not on cv: wake
	                              it with sli_poll_break (sched.lock) */
	pthread_cond_t  cv;        /* sleeps here when idle */
	struct sli_worker *idle_next;
	void           *tsan_fiber; /* TSan fiber of the thread itself */
	void           *stack_lo;  /* thread stack (for ASan switches) */
	size_t          stack_size;
	void           *sigstack;  /* sigaltstack for overflow reports
	                              (SLI_SIGSTACK_SIZE bytes) */
} sli_worker;

typedef struct sli_sched {
	pthread_mutex_t lock;      /* global queue, idle list, lifecycle */
	sli_g         **gq;        /* global run queue: a ring of gq_cap */
	unsigned        gq_first;  /* where it starts */
	unsigned        gq_cap;    /* a power of two, never below the live
	                              count a spawn has made (sch_gq_room) */
	atomic_uint     gq_room;   /* gq_cap, read without the lock */
	atomic_int      gq_len;
	sli_worker     *idle;      /* idle workers */
	atomic_int      nidle;
	atomic_int      nspinning;
	int             nprocs;
	sli_worker     *workers;
	atomic_bool     running;   /* sl_main in progress */
	atomic_bool     stopping;  /* main returned or deadlock */
	pthread_cond_t  stopped;   /* signalled when stopping is set: the
	                              thread in sl_main waits on it */
	atomic_bool     open;      /* plain threads may come in (sch_visit) */
	atomic_int      visitors;  /* ... and so many are in now */
	bool            deadlock;
	atomic_long     live;      /* live goroutines */
	atomic_long     holds;     /* sl_sched_hold()s + in-flight blocking */
	atomic_ullong   nextid;
	size_t          stack_size;
	int             result;    /* sl_main's return value */
} sli_sched;

extern sli_sched sli_S;

/* The worker running on this thread, or NULL.  Never cached across a
 * switch: a goroutine may resume on another thread. */
sli_worker *sli_self(void);

/* &errno of the thread running now; use it after anything that may park
 * (a plain errno there may be the address taken on an earlier thread). */
int *sli_errno(void);

/* The running goroutine, or NULL on a plain thread / scheduler context. */
sli_g *sli_curg(void);

/* Has the calling worker anything queued to run (its runnext, its run
 * queue, the global queue)?  True on a plain thread. */
bool sli_self_has_work(void);

/*
 * Parks the running goroutine.  Once it has switched out (its registers
 * are saved, so it may be resumed anywhere), its worker calls commit(g,
 * arg): true keeps it parked until sli_ready(g); false makes it runnable at
 * once (a wake-up arrived while it was switching out).  Go's gopark.
 */
void sli_park(const char *reason, const void *obj,
    bool (*commit)(sli_g *, void *), void *arg);

/* Makes a parked goroutine runnable.  Callable from any thread. */
void sli_ready(sli_g *g);

/* Timers (timer.c), used by the worker loop. */
int64_t sli_timers_next(void);        /* earliest deadline or INT64_MAX */
bool    sli_timers_run(int64_t now);  /* fire due timers; true if any */
bool    sli_timers_pending(void);
void    sli_timers_reset(void);
/* For tests: the next sl_main's timer heap holds at most this many
 * timers, as if memory ran out there (0: no limit). */
extern int sli_timer_heap_max;
void    sli_sched_timer_added(int64_t when); /* sched.c: wake a sleeper */

/* stall.c: the watchdog thread that reports a goroutine holding its
 * worker for limit ns or more without a switch (limit <= 0: none). */
int     sli_stall_start(int64_t limit);
void    sli_stall_stop(void);
/* sched.c: " in SYMBOL" or " in FILE+0xOFFSET" for a goroutine body. */
void    sli_fn_where(sl_fn f, char *buf, size_t len);

/* Stacks (stack.c). */
int    sli_stack_init(size_t stack_size);
size_t sli_stack_slot_size(void);    /* the size in use: raised, rounded */
void   sli_stack_fini(bool keep);
sli_g *sli_stack_alloc(void);        /* a record with a stack, or NULL */
void   sli_stack_free(sli_g *g);
void   sli_stack_prepare(sli_g *g, void (*entry)(void *));
void   sli_stack_check(sli_g *g);    /* aborts on overflow */
sli_g *sli_stack_find(const void *addr); /* goroutine whose stack (or guard)
                                            holds addr */
void   sli_stack_foreach(void (*fn)(sli_g *, void *), void *arg);
/* For tests: the next sl_main runs as on a kernel without guard markers
 * (mprotect guards for the first sli_stack_guard_budget() stacks,
 * canaries only after them). */
extern bool sli_stack_no_markers;
/* For tests: the next sl_main makes at most this many slabs of 256
 * stacks, as if the address space ran out there (0: no limit). */
extern int  sli_stack_max_slabs;
long   sli_stack_guard_budget(void); /* vm.max_map_count / 8 */
#define SLI_SIGSTACK_SIZE (64 * 1024)

/* A worker's blocking call made inline, as sl_main's teardown sees it. */
enum {
	SLI_CALL_NONE,      /* not in one */
	SLI_CALL_IN,        /* in one */
	SLI_CALL_ABANDONED, /* was in one when sl_main returned: the thread
	                       exits as soon as fn returns */
	SLI_CALL_CLOSED,    /* sl_main is stopping the worker: no more */
};

/* Runs fn(arg) on the calling worker's thread as on a plain thread:
 * sli_self() is NULL meanwhile, so what fn readies or spawns goes to the
 * global queue for the other workers, and fn's channel operations block
 * the thread.  blocking.c runs short blocking calls so, from a park
 * commit (on the worker's own stack, nothing running there), for
 * goroutine g, which the stall watchdog names meanwhile.  False, and fn
 * not run, once sl_main has begun to stop the worker.  If sl_main returns
 * while fn runs, this never returns: the thread exits when fn does,
 * touching nothing of the scheduler (its goroutine, its worker, which
 * are gone by then). */
bool sli_run_detached(sli_g *g, sl_fn fn, void *arg);

/* The blocking pool (blocking.c). */
void sli_blocking_fini(void);

/*
 * The poller behind sl_fd_wait (poll.c).  Workers poll, as Go's do: a
 * worker about to go idle while descriptors are waited on becomes the
 * owner and sleeps in epoll_wait instead of on its condition variable
 * (until its next timer, or sli_poll_break), so a ready descriptor wakes
 * the worker that runs its goroutine, not a thread that then wakes a
 * worker; a worker out of local work looks without blocking first.
 */
bool sli_poll_pending(void);          /* waiters, and no owner polling */
bool sli_poll_nonblock(void);         /* look; true if it readied any */
bool sli_poll_own(void);              /* become the owner, if worth it */
int  sli_poll_block(int64_t deadline); /* owner: wait; events kept */
void sli_poll_dispatch(int n);        /* owner: ready their waiters */
void sli_poll_disown(void);
void sli_poll_break(void);            /* wake the owner (sched.lock) */
void sli_poll_fini(void);

/* signal.c: registrations live within one sl_main run (init before the
 * main goroutine, fini once the workers stopped); while any exists the
 * deadlock detector stays quiet. */
extern atomic_int sli_signal_regs;
void sli_signal_init(void);
void sli_signal_fini(void);
/* sched.c: wake an idle worker so that one polls (a thread waits). */
void sli_sched_poke(void);
/* For tests: called by sli_sched_poke from inside its visit (sch_visit in
 * sched.c), before it takes the lock. */
extern void (*sli_test_in_visit)(void);
/* Worker threads sl_main has left in blocking calls, since the start. */
extern atomic_int sli_sched_abandoned;

/* cpus.c: parse a CPU list ("0-3,6") into set; on error an explanation
 * goes to err and SL_EINVAL is returned. */
int sli_cpus_parse(const char *list, cpu_set_t *set, char *err,
    size_t errlen);
/* Sets the affinity of every thread of the process to list (what names
 * its source in error messages, printed to stderr); the calling thread's
 * previous one goes to old. */
int sli_cpus_apply(const char *list, const char *what, cpu_set_t *old);
/* CPUs the calling thread may run on (the default worker count). */
int sli_cpus_count(void);

/* Context switch (switch_*.S). */
void sli_switch(void **save_sp, void *load_sp);
void sli_go_entry(void);

/* Fatal error: prints "sluice: fatal error: <msg>" and aborts. */
_Noreturn void sli_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Per-thread condition variable for the thread parker (wait.c). */
void sli_thread_parker(pthread_mutex_t **mu, pthread_cond_t **cv);

#endif /* SLI_SCHED_H */
