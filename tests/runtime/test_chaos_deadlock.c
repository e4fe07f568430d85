/*
 * test_chaos_deadlock.c — a randomized, seeded test of the deadlock
 * detector (sl_main's SL_EDEADLOCK, sluice/runtime.h): a program that can
 * still make progress is never reported, a program that cannot is reported
 * promptly, and the report names every blocked goroutine and what it
 * waits on.
 *
 * Why: test_deadlock.c pins down one small program per rule.  The
 * detector's real inputs are many counters read at one moment (idle
 * workers, run queues, pending timers, holds from foreign threads,
 * in-flight blocking calls and descriptor waits, signal registrations),
 * each kept by a different part of the runtime; a source forgotten in one
 * corner, a hold dropped a moment too early or a release that wakes nobody
 * shows up only when the last goroutine parks just as the one event that
 * could still wake it is in flight.  A false report kills a live program,
 * the worst thing the detector can do; a missed one hangs it.
 *
 * How: each program is generated from a seed and is live by construction.
 * A token goes from main through a chain of 1 to MAX_ST stage goroutines
 * and back to main.  Link i carries it to stage i (link nst back to main)
 * through a random primitive (unbuffered or buffered channel, select with
 * never-ready cases beside the real one, a mutex or rwmutex held since
 * setup and unlocked to hand over, cond and flag, WaitGroup, a context's
 * cancellation seen through its done channel or a NULL-channel receive,
 * an errgroup whose function receives it), and is handed over by a random
 * wake source, most of them outside the goroutines, so that while it is
 * pending every goroutine is parked: at once, after yields, after
 * computing for a while, after sl_sleep, from an sl_timer_after_func
 * goroutine, after an sl_after or timer channel, after a select's
 * deadline, after a context's timeout (waited on, or through
 * sl_ctx_after_func), from a pthread that holds the scheduler, after an
 * sl_blocking call, from inside one on the pool's thread, after an
 * sl_blocking_ctx call whose context ends while it runs, after a byte that
 * a plain thread (holding nothing) or a goroutine's blocking call writes
 * to a pipe, after SIGUSR1 that a plain thread sends (to a channel or an
 * sl_signal_ctx context).  Every token value is a checksum of the stages
 * it went through.  A stage that handed it on waits at a barrier (or
 * exits) that main releases at the end: a closed channel, select, a
 * WaitGroup, rwmutex, mutex, cond, or a context; in one program in five
 * every goroutine but main exits instead.  Stages first meet in one
 * sl_once.  Beside the chain, 0 to MAX_SIDE side parties each keep one
 * more wake source pending for up to SIDE_D and then park at a barrier:
 * a sleep; a wait on a channel, mutex, rwmutex, WaitGroup, cond, select or
 * context that times out; a blocking call; a pthread that only holds the
 * scheduler for a while (released at once sometimes, racing the last
 * park); a goroutine that computes; a pipe read; SIGUSR2; an
 * sl_timer_after_func goroutine.  Each program runs three times:
 *
 *   live, in this process: sl_main returns 0; the token comes back with
 *     the exact checksum, each stage got it once and in order, each
 *     source fired once and each link handed over once, each side woke
 *     once, the sl_once ran once, and no goroutine is left;
 *   deadlocked, in a child: the same program with one link broken,
 *     either its source never armed, or armed and run to its end (the
 *     thread releases its hold, the timer fires, the blocking call returns,
 *     the byte or signal arrives) with only the hand-over left out.  It can
 *     then never finish, so sl_main must return SL_EDEADLOCK with "all
 *     goroutines are asleep"; not before every other source has done its
 *     part (the stages before the break got the token, the sources before
 *     it and at it fired, every side woke, and no event was noted after
 *     sl_main returned), and within PROMPT of the last one (a watchdog ends
 *     a child that is still running after HANG: a missed deadlock).  The
 *     report lists exactly the goroutines the program leaves blocked
 *     (main, the stages past the break and their errgroup functions on
 *     their input, the others and the sides at their barriers; those that
 *     exited are not listed: sometimes main alone is left, on a WaitGroup
 *     or channel that goroutines exiting can no longer make ready), each
 *     with the wait the dump names ("chan
 *     receive", "select", "sync.Mutex.Lock", ...) and, where it has one,
 *     the object it waits on;
 *   live again, in the same child after the report: sl_main can run
 *     again, and the program completes exactly as in the first run.
 *
 * The pinned cases (test_thread_removes_last_source_*,
 * test_blocking_call_ends_as_last_parks_*) are deadlocks the runtime
 * used to miss, found by the chaos cases and kept as fixed programs:
 *
 *   thread_removes_last_source: a plain thread that holds nothing (it
 *     wakes nobody, so runtime.h does not ask it to) stops the one timer
 *     still pending (sl_timer_stop), or ends the signal registration that
 *     a goroutine waits on (sl_signal_stop).  Nothing can wake the program
 *     any more; the idle workers slept on until the stopped timer's
 *     deadline (an hour here), or for ever, until both learned to poke a
 *     worker (timer.c, signal.c);
 *   blocking_call_ends_as_last_parks: a goroutine's sl_blocking call
 *     returns and it parks for good.  The pool's thread wakes it first
 *     and drops its hold on the scheduler after; it used to drop it
 *     without waking anybody (blocking.c, bp_thread), and a worker that
 *     ran the goroutine and went idle in between had seen the hold and
 *     slept for ever.  Every thread runs on one CPU there, so that the
 *     race is likely: up to PIN_RACES runs.
 *
 * Each case runs PROGS programs with 1 or 2 workers and one seed.  A
 * failure prints the seed, worker count, program and its description;
 * SLUICE_CHAOS_SEED=<number> runs every case with that seed instead of the
 * built-in ones, SLUICE_CHAOS_SEED=random with a new one (printed).  The
 * number of programs scales with SLUICE_TEST_SCALE (valgrind runs 2% of
 * them) and is a third under TSan; the time bounds grow under the
 * sanitizers and valgrind.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#define SLT_CHAOS /* CHK, rnd: see sltest.h */
#include "sltest.h"

enum {
	MAX_ST = 6,         /* stages of a chain, at most */
	MAX_SIDE = 3,       /* side parties, at most */
	SEL_MAX = 6,        /* cases of a select */
	EXP_MAX = 64,       /* goroutines a report may list */
	PROGS = 20,         /* programs per case, before scaling */
	PROGS_MIN = 2,      /* ... and at least this many */
	PIN_PROGS = 2,      /* programs of a pinned removal case */
	PIN_RACES = 100,    /* ... of a pinned blocking case, at most */
	TSAN_DIVISOR = 3,   /* fewer programs under TSan */
	CHILD_FAILED = 1,   /* exit code of a child whose checks failed */
	CHILD_HUNG = 3,     /* ... whose watchdog fired */
};

#define US SL_MICROSECOND
#define MS SL_MILLISECOND

#define SIDE_D   (30 * MS)        /* longest a side keeps its source */
#define PROMPT   (1 * SL_SECOND)  /* report after the last event, at most */
#define HANG     (5 * SL_SECOND)  /* a deadlocked child still running */
#define HANG_PIN (1 * SL_SECOND)  /* ... in the pinned cases */
#define HUNG     (60 * SL_SECOND) /* a live program still running */
#define FAR      (3600 * SL_SECOND) /* a timer that never fires here */

/* ---- the program's parts ------------------------------------------------ */

/* How the downstream end of a link waits for the token, and how the
 * upstream end hands it over. */
enum prim {
	P_UNBUF,    /* unbuffered channel: receive / send */
	P_BUF,      /* buffered channel (capacity 1 to 3) */
	P_SELECT,   /* select on the channel and never-ready cases / send */
	P_MUTEX,    /* lock a mutex held since setup / unlock it */
	P_RLOCK,    /* read-lock an rwmutex write-held since setup / unlock */
	P_WLOCK,    /* write-lock it / unlock */
	P_COND,     /* wait on a cond for a flag / set it, signal */
	P_WG,       /* wait on a WaitGroup of one / done */
	P_CTX_DONE, /* receive from a context's done channel / cancel it */
	P_CTX_NIL,  /* receive from the NULL channel with it / cancel it */
	P_GROUP,    /* wait on an errgroup whose function receives / send */
	P_N
};

/* What hands the token over, and when. */
enum src {
	S_DIRECT,       /* the upstream goroutine, at once */
	S_YIELD,        /* it, after a few sl_yield */
	S_SPIN,         /* it, after computing for d (its worker busy) */
	S_SLEEP,        /* it, after sl_sleep(d) */
	S_AFTER_FUNC,   /* an sl_timer_after_func(d) goroutine */
	S_TIMER_CHAN,   /* it, after sl_after(d) or a timer's channel */
	S_DEADLINE,     /* it, after a select times out at d */
	S_CTX_TIMEOUT,  /* it, after a wait on a context of timeout d */
	S_CTX_AFTER,    /* sl_ctx_after_func of such a context */
	S_THREAD,       /* a pthread holding the scheduler, after d */
	S_BLOCKING,     /* it, after sl_blocking (sleep d) */
	S_BLOCKING_IN,  /* the pool's thread, inside sl_blocking, after d */
	S_BLOCKING_CTX, /* it, after sl_blocking_ctx whose context ends first */
	S_FD_THREAD,    /* it, after reading a byte a plain thread writes */
	S_FD_BLOCKING,  /* ... that a goroutine's sl_blocking call writes */
	S_SIGNAL,       /* it, after SIGUSR1 (a plain thread's) on a channel */
	S_SIGNAL_CTX,   /* it, after SIGUSR1 cancels an sl_signal_ctx */
	S_N
};

/* Where a goroutine waits once its part is done, until main's end. */
enum barrier {
	B_EXIT,     /* nowhere: it returns */
	B_CHAN,     /* receive from quit (closed at the end) */
	B_SELECT,   /* select on quit and never-ready cases */
	B_WG,       /* wait on qwg (one, done at the end) */
	B_RLOCK,    /* read-lock qrw (write-held until the end) */
	B_MUTEX,    /* lock qmu (held until the end), unlock */
	B_COND,     /* wait on qcond for qflag */
	B_CTX_DONE, /* receive from qctx's done channel */
	B_CTX_NIL,  /* receive from the NULL channel with qctx */
	B_N
};

/* A side party: one more wake source, pending for d. */
enum side_kind {
	SD_SLEEP,      /* a goroutine sleeps */
	SD_TIMED,      /* a goroutine's wait with a deadline times out */
	SD_BLOCKING,   /* a goroutine's sl_blocking call sleeps */
	SD_HOLD,       /* a pthread holds the scheduler (no goroutine) */
	SD_SPIN,       /* a goroutine computes */
	SD_FD,         /* a goroutine reads a byte a plain thread writes */
	SD_SIGNAL,     /* a goroutine waits for SIGUSR2 a thread sends */
	SD_AFTER_FUNC, /* sl_timer_after_func starts the side's goroutine */
	SD_N
};

/* What is broken in a deadlocking copy of a program. */
enum brk {
	BRK_NONE,        /* nothing: the live program */
	BRK_REMOVE,      /* the link's source is never armed */
	BRK_WITHHOLD,    /* it runs to its end, without the hand-over */
	BRK_TIMER_STOP,  /* pinned: a plain thread stops a far timer */
	BRK_SIGNAL_STOP, /* pinned: a plain thread ends a registration */
};

/* The pinned cases. */
enum pin {
	PIN_NONE,     /* a chaos case */
	PIN_REMOVAL,  /* BRK_TIMER_STOP, BRK_SIGNAL_STOP */
	PIN_BLOCKING, /* a blocking call ends just as the last goroutine
	                 parks, every thread on one CPU */
};

static const char *prim_name[P_N] = { "unbuf", "buf", "select", "mutex",
	"rlock", "wlock", "cond", "wg", "ctx-done", "ctx-nil", "group" };
static const char *src_name[S_N] = { "direct", "yield", "spin", "sleep",
	"after-func", "timer-chan", "deadline", "ctx-timeout", "ctx-after",
	"thread", "blocking", "blocking-in", "blocking-ctx", "fd-thread",
	"fd-blocking", "signal", "signal-ctx" };
static const char *bar_name[B_N] = { "exit", "chan", "select", "wg",
	"rlock", "mutex", "cond", "ctx-done", "ctx-nil" };
static const char *side_name[SD_N] = { "sleep", "timed", "blocking",
	"hold", "spin", "fd", "signal", "after-func" };
static const char *timed_name[7] = { "-chan", "-mutex", "-rlock", "-wg",
	"-cond", "-ctx", "-select" };
static const char *brk_name[] = { "none", "remove", "withhold",
	"timer stopped by a plain thread",
	"registration ended by a plain thread" };

struct prog;

/* Link i: the token from stage i - 1 (main for 0) to stage i (main for
 * nst).  The first block is drawn; the rest is made at run time. */
struct link {
	struct prog  *p;
	int           i;
	int           prim;     /* P_* */
	int           src;      /* S_* */
	int64_t       d;        /* the source's delay */
	int           cap;      /* P_BUF: the capacity */
	int           sel;      /* P_SELECT: extra cases (bit mask) */
	int           selpos;   /* ... where the real one goes */
	bool          selctx;   /* ... with a context argument */
	bool          bcast;    /* P_COND: broadcast, not signal */
	bool          cause;    /* P_CTX_*: cancel with a cause */
	int           code;     /* P_GROUP: what its function returns */
	int           variant;  /* a source's own choice (see source()) */

	sl_chan      *ch;       /* P_UNBUF, P_BUF, P_SELECT, P_GROUP */
	sl_chan      *never;    /* P_SELECT: nobody sends on it */
	sl_chan      *full;     /* P_SELECT: capacity 1, full */
	sl_ctx       *sctx;     /* P_SELECT's context */
	sl_ctx       *ctx;      /* P_CTX_* */
	sl_mutex      mu;       /* P_MUTEX */
	sl_mutex      cmu;      /* P_COND's mutex */
	sl_cond       cond;     /* P_COND */
	atomic_int    flag;     /* P_COND's flag */
	sl_rwmutex    rw;       /* P_RLOCK, P_WLOCK */
	sl_waitgroup  wg;       /* P_WG */
	sl_group     *grp;      /* P_GROUP */
	_Atomic uint64_t val;   /* the token handed over */

	_Atomic uint64_t pv;    /* the token, for a source that runs later */
	atomic_bool   withhold; /* run the source, leave out the hand-over */
	sl_timer     *tm;       /* S_AFTER_FUNC, BRK_TIMER_STOP */
	sl_ctx       *octx;     /* the source's context */
	sl_chan      *sigch;    /* S_SIGNAL, BRK_SIGNAL_STOP */
	int           pfd[2];   /* S_FD_*: the pipe */
	pthread_t     th;       /* S_THREAD, S_FD_THREAD, S_SIGNAL*, BRK_* */
	atomic_bool   th_made;
	atomic_bool   th_done;  /* the thread is done with the scheduler */
	atomic_int    fired;    /* the source's event came */
	atomic_int    passed;   /* hand-overs */
	atomic_int    bad;      /* a blocking_ctx call was withdrawn */
};

struct stage {
	struct prog *p;
	int          i;
	int          barrier;   /* B_* */
	atomic_int   got;       /* tokens received */
};

struct side {
	struct prog *p;
	int          k;
	int          kind;      /* SD_* */
	int          sub;       /* SD_TIMED: which wait */
	int          barrier;   /* B_* (not for SD_HOLD) */
	int64_t      d;
	sl_timer    *tm;        /* SD_AFTER_FUNC */
	sl_chan     *sigch;     /* SD_SIGNAL */
	int          pfd[2];    /* SD_FD */
	pthread_t    th;        /* SD_HOLD, SD_FD, SD_SIGNAL */
	atomic_bool  th_made;
	atomic_bool  th_done;
	atomic_int   woke;      /* its source came */
};

struct prog {
	uint64_t      seed;
	int           procs;
	int           nst;      /* stages */
	int           nside;
	int           brk;      /* the link broken, or -1 */
	int           bmode;    /* BRK_* */
	bool          once_sleep; /* the sl_once function sleeps */
	bool          exiting;  /* every barrier is B_EXIT */
	uint64_t      vexp[MAX_ST + 1]; /* the token link i carries */
	struct link   link[MAX_ST + 1];
	struct stage  st[MAX_ST];
	struct side   side[MAX_SIDE];

	sl_chan      *quit, *qnever, *qfull; /* the barriers */
	sl_waitgroup  qwg;
	sl_rwmutex    qrw;
	sl_mutex      qmu, qcmu;
	sl_cond       qcond;
	atomic_int    qflag;
	sl_ctx       *qctx;

	sl_chan      *snever;   /* what the timed waits wait on */
	sl_mutex      smu, scmu;
	sl_rwmutex    srw;
	sl_waitgroup  swg;
	sl_cond       scond;

	sl_waitgroup  all;      /* goroutines besides main */
	sl_once       once;
	atomic_int    once_runs;
	atomic_int    order;    /* stages that got the token so far */
	atomic_int    main_got;
	_Atomic int64_t t_last; /* the latest event noted */
	char          desc[1536];
};

/* ---- helpers ------------------------------------------------------------- */

static uint64_t   g_seed;      /* the seed of the running case */
static int        g_procs;     /* its workers */
static int        g_prog;      /* the program running */
static const char *g_phase = ""; /* live, deadlock or rerun */

/* What is running, for failure messages (CHK, sltest.h). */
static void
slt_chaos_where(char *where, size_t len)
{
	snprintf(where, len, "seed 0x%" PRIx64 " procs %d program "
	    "%d %s", g_seed, g_procs, g_prog, g_phase);
}

/* How much slower than a plain build this one runs. */
static int
slow(void)
{
	if (slt_under_valgrind())
		return (10);
#ifdef SLT_TSAN
	return (4);
#elif defined(__SANITIZE_ADDRESS__)
	return (2);
#else
	return (1);
#endif
}

/* Notes that an event happened now: the report must come after it. */
static void
note(struct prog *p)
{
	int64_t t = sl_now(), cur = atomic_load(&p->t_last);

	while (cur < t && !atomic_compare_exchange_weak(&p->t_last, &cur, t))
		;
}

/* Busy for ns (holds the worker or thread). */
static void
spin(int64_t ns)
{
	int64_t end = sl_now() + ns;

	while (sl_now() < end)
		;
}

/* Sleeps a plain thread for ns. */
static void
nap(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / SL_SECOND,
		.tv_nsec = ns % SL_SECOND };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t
step(uint64_t v, int i)
{
	return (v * UINT64_C(0x100000001b3) + (uint64_t) (i + 1) * 7919);
}

static void
make_thread(pthread_t *th, atomic_bool *made, void *(*fn)(void *),
    void *arg)
{
	if (pthread_create(th, NULL, fn, arg) != 0)
		SLT_FATAL("pthread_create failed");
	atomic_store(made, true);
}

static void
make_pipe(int pfd[2])
{
	if (pipe2(pfd, O_CLOEXEC) != 0 ||
	    fcntl(pfd[0], F_SETFL, O_NONBLOCK) != 0)
		SLT_FATAL("pipe: %s", strerror(errno));
}

/* ---- drawing a program --------------------------------------------------- */

/* A source's delay: mostly a few milliseconds, so that everything else
 * has parked; for threads and blocking calls sometimes none at all, so
 * that they end just as the others park. */
static int64_t
draw_delay(uint64_t *r, int src)
{
	bool racy = src == S_THREAD || src == S_BLOCKING ||
	    src == S_BLOCKING_IN || src == S_FD_THREAD;

	if (racy && rnd(r, 4) == 0)
		return ((int64_t) rnd(r, 300) * US);
	if (src == S_SPIN)
		return ((int64_t) (500 + rnd(r, 3500)) * US);
	if (src == S_BLOCKING_CTX)
		return ((int64_t) (2 + rnd(r, 6)) * MS);
	return ((int64_t) (1 + rnd(r, 7)) * MS + (int64_t) rnd(r, 1000) * US);
}

static int
draw_src(uint64_t *r)
{
	static const int w[S_N] = { 6, 3, 4, 6, 6, 4, 4, 4, 4, 10, 6, 5, 4,
		6, 4, 4, 3 };
	int sum = 0, x;

	for (int i = 0; i < S_N; i++)
		sum += w[i];
	x = (int) rnd(r, (uint32_t) sum);
	for (int i = 0; i < S_N; i++) {
		if (x < w[i])
			return (i);
		x -= w[i];
	}
	return (S_DIRECT);
}

/* p->desc: the program in one line, for failure messages. */
static void
describe(struct prog *p)
{
	char  *b = p->desc;
	size_t len = sizeof(p->desc), n = 0;

#define ADD(...)                                                            \
	do {                                                                \
		if (n < len)                                                \
			n += (size_t) snprintf(b + n, len - n, __VA_ARGS__); \
	} while (0)
	ADD("main");
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		ADD(" =[%s%s/%s %.1fms]=> ", i == p->brk ? "BROKEN " : "",
		    prim_name[L->prim], src_name[L->src], (double) L->d / MS);
		if (i < p->nst)
			ADD("s%d(%s)", i, bar_name[p->st[i].barrier]);
		else
			ADD("main");
	}
	ADD("; sides:");
	for (int k = 0; k < p->nside; k++)
		ADD(" %s%s %.1fms(%s)", side_name[p->side[k].kind],
		    p->side[k].kind == SD_TIMED ? timed_name[p->side[k].sub] :
		    "", (double) p->side[k].d / MS, p->side[k].kind ==
		    SD_HOLD ? "-" : bar_name[p->side[k].barrier]);
	if (p->nside == 0)
		ADD(" none");
	ADD("; once %s%s", p->once_sleep ? "sleeps" : "quick",
	    p->exiting ? "; all exit" : "");
	if (p->brk >= 0)
		ADD("; link %d broken: %s", p->brk, brk_name[p->bmode]);
#undef ADD
}

/*
 * Draws the program of seed (live: brk -1).  Everything the runs need is
 * drawn here, so that a child draws the same program from the seed.
 */
static void
draw(struct prog *p, uint64_t seed, int procs)
{
	uint64_t r = seed;

	memset(p, 0, sizeof(*p));
	p->seed = seed;
	p->procs = procs;
	p->brk = -1;
	p->nst = 1 + (int) rnd(&r, MAX_ST);
	p->nside = (int) rnd(&r, MAX_SIDE + 1);
	p->once_sleep = rnd(&r, 3) == 0;
	p->exiting = rnd(&r, 5) == 0;
	p->vexp[0] = slt_rnd(&r);
	for (int i = 0; i < p->nst; i++)
		p->vexp[i + 1] = step(p->vexp[i], i);
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		L->p = p;
		L->i = i;
		L->prim = (int) rnd(&r, P_N);
		L->src = draw_src(&r);
		L->d = draw_delay(&r, L->src);
		L->cap = 1 + (int) rnd(&r, 3);
		L->sel = (int) rnd(&r, 16);
		L->selpos = (int) rnd(&r, SEL_MAX);
		L->selctx = rnd(&r, 2) == 0;
		L->bcast = rnd(&r, 2) == 0;
		L->cause = rnd(&r, 2) == 0;
		L->code = rnd(&r, 2) == 0 ? 0 : 100 + i;
		L->variant = (int) rnd(&r, 4);
		L->pfd[0] = L->pfd[1] = -1;
	}
	for (int i = 0; i < p->nst; i++) {
		p->st[i].p = p;
		p->st[i].i = i;
		p->st[i].barrier = p->exiting ? B_EXIT : (int) rnd(&r, B_N);
	}
	for (int k = 0; k < p->nside; k++) {
		struct side *sd = &p->side[k];

		sd->p = p;
		sd->k = k;
		sd->kind = (int) rnd(&r, SD_N);
		/* One SIGUSR2 at a time: a second registration would take the
		 * first one's signal, and its own would then find none. */
		for (int j = 0; j < k; j++)
			if (sd->kind == SD_SIGNAL && p->side[j].kind == SD_SIGNAL)
				sd->kind = SD_SLEEP;
		sd->sub = (int) rnd(&r, 7);
		sd->barrier = p->exiting ? B_EXIT : (int) rnd(&r, B_N);
		sd->d = rnd(&r, 5) == 0 ? (int64_t) rnd(&r, 200) * US :
		    (int64_t) rnd(&r, (uint32_t) (SIDE_D / US)) * US;
		if (sd->kind == SD_SPIN && sd->d > 5 * MS)
			sd->d = 5 * MS;
		sd->pfd[0] = sd->pfd[1] = -1;
	}
	describe(p);
}

/* Breaks link b of p in mode (a deadlocking copy).  For PIN_BLOCKING its
 * source becomes a blocking call, and every delay is 0 with no sides, so
 * that many runs take little time. */
static void
breaks(struct prog *p, int b, int mode, int pin)
{
	p->brk = b;
	p->bmode = mode;
	if (pin == PIN_BLOCKING) {
		for (int i = 0; i <= p->nst; i++)
			p->link[i].d = 0;
		p->link[b].src = S_BLOCKING;
		p->nside = 0;
		p->once_sleep = false;
	}
	describe(p);
}

/* ---- setup and teardown -------------------------------------------------- */

static sl_chan *
chan_make(size_t size, size_t cap)
{
	sl_chan *ch = sl_chan_make(size, cap);

	if (ch == NULL)
		SLT_FATAL("out of memory");
	return (ch);
}

static sl_ctx *
ctx_cancelable(void)
{
	sl_ctx *ctx;

	SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	return (ctx);
}

/* Makes the objects of p, in its main goroutine: the barriers and the
 * side parties' timed waits (held until the end) and each link's
 * primitive (held, for a mutex, rwmutex or WaitGroup). */
static void
setup(struct prog *p)
{
	uint64_t junk = 0;

	p->quit = chan_make(0, 0);
	p->qnever = chan_make(0, 0);
	p->qfull = chan_make(sizeof(uint64_t), 1);
	SL_ASSERT_OK(sl_chan_send(p->qfull, &junk));
	sl_waitgroup_add(&p->qwg, 1);
	sl_rwmutex_lock(&p->qrw);
	sl_mutex_lock(&p->qmu);
	p->qctx = ctx_cancelable();
	p->snever = chan_make(sizeof(uint64_t), 0);
	sl_mutex_lock(&p->smu);
	sl_rwmutex_lock(&p->srw);
	sl_waitgroup_add(&p->swg, 1);
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		switch (L->prim) {
		case P_UNBUF:
		case P_GROUP:
			L->ch = chan_make(sizeof(uint64_t), 0);
			break;
		case P_BUF:
			L->ch = chan_make(sizeof(uint64_t), (size_t) L->cap);
			break;
		case P_SELECT:
			L->ch = chan_make(sizeof(uint64_t), (size_t) (L->cap & 1));
			L->never = chan_make(sizeof(uint64_t), 0);
			L->full = chan_make(sizeof(uint64_t), 1);
			SL_ASSERT_OK(sl_chan_send(L->full, &junk));
			if (L->selctx || (L->sel & 8))
				L->sctx = ctx_cancelable();
			break;
		case P_MUTEX:
			sl_mutex_lock(&L->mu);
			break;
		case P_RLOCK:
		case P_WLOCK:
			sl_rwmutex_lock(&L->rw);
			break;
		case P_WG:
			sl_waitgroup_add(&L->wg, 1);
			break;
		case P_CTX_DONE:
		case P_CTX_NIL:
			L->ctx = ctx_cancelable();
			break;
		default:
			break;
		}
		if (L->prim == P_GROUP)
			SL_ASSERT_OK(sl_group_make(NULL, &L->grp));
	}
}

/* Frees what setup and the sources made; the live program is over and
 * every goroutine but main has returned. */
static void
teardown(struct prog *p)
{
	sl_mutex_unlock(&p->smu);
	sl_rwmutex_unlock(&p->srw);
	sl_waitgroup_done(&p->swg);
	sl_chan_release(p->quit);
	sl_chan_release(p->qnever);
	sl_chan_release(p->qfull);
	sl_ctx_release(p->qctx);
	sl_chan_release(p->snever);
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		sl_chan_release(L->ch);
		sl_chan_release(L->never);
		sl_chan_release(L->full);
		sl_ctx_release(L->sctx);
		sl_ctx_release(L->ctx);
		sl_ctx_release(L->octx);
		sl_chan_release(L->sigch);
		sl_group_free(L->grp);
		sl_timer_free(L->tm);
		L->ch = L->never = L->full = L->sigch = NULL;
		L->sctx = L->ctx = L->octx = NULL;
		L->grp = NULL;
		L->tm = NULL;
	}
	for (int k = 0; k < p->nside; k++) {
		sl_timer_free(p->side[k].tm);
		sl_chan_release(p->side[k].sigch);
		p->side[k].tm = NULL;
		p->side[k].sigch = NULL;
	}
}

/* After sl_main returned: joins the threads, closes the pipes. */
static void
join_threads(struct prog *p)
{
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		if (atomic_exchange(&L->th_made, false))
			SL_CHECK_EQ(pthread_join(L->th, NULL), 0);
		for (int j = 0; j < 2; j++) {
			if (L->pfd[j] >= 0)
				close(L->pfd[j]);
			L->pfd[j] = -1;
		}
	}
	for (int k = 0; k < p->nside; k++) {
		struct side *sd = &p->side[k];

		if (atomic_exchange(&sd->th_made, false))
			SL_CHECK_EQ(pthread_join(sd->th, NULL), 0);
		for (int j = 0; j < 2; j++) {
			if (sd->pfd[j] >= 0)
				close(sd->pfd[j]);
			sd->pfd[j] = -1;
		}
	}
}

/* ---- hand-over and waits ------------------------------------------------- */

/* Hands token v over link L (from a goroutine or a thread). */
static void
hand_over(struct link *L, uint64_t v)
{
	int rv;

	atomic_store(&L->val, v);
	switch (L->prim) {
	case P_UNBUF:
	case P_BUF:
	case P_SELECT:
	case P_GROUP:
		rv = sl_chan_send(L->ch, &v);
		CHK(rv == 0, "link %d: send returned %s", L->i, sl_errname(rv));
		break;
	case P_MUTEX:
		sl_mutex_unlock(&L->mu);
		break;
	case P_RLOCK:
	case P_WLOCK:
		sl_rwmutex_unlock(&L->rw);
		break;
	case P_COND:
		sl_mutex_lock(&L->cmu);
		atomic_store(&L->flag, 1);
		if (L->bcast)
			sl_cond_broadcast(&L->cond);
		else
			sl_cond_signal(&L->cond);
		sl_mutex_unlock(&L->cmu);
		break;
	case P_WG:
		sl_waitgroup_done(&L->wg);
		break;
	case P_CTX_DONE:
	case P_CTX_NIL:
		if (L->cause)
			sl_ctx_cancel_cause(L->ctx, 700 + L->i, "handed over");
		else
			sl_ctx_cancel(L->ctx);
		break;
	default:
		break;
	}
	atomic_fetch_add(&L->passed, 1);
}

/* P_GROUP's function: receives the token for the group's waiter. */
static int
group_fn(sl_ctx *ctx, void *arg)
{
	struct link *L = arg;
	uint64_t v = 0;
	int rv;

	(void) ctx;
	note(L->p);
	rv = sl_chan_recv(L->ch, &v);
	CHK(rv == 0, "link %d: the group's receive returned %s", L->i,
	    sl_errname(rv));
	CHK(v == L->p->vexp[L->i], "link %d: the group's function got %" PRIx64
	    ", not %" PRIx64, L->i, v, L->p->vexp[L->i]);
	return (L->code);
}

/* The downstream end of L waits for the token and returns it. */
static uint64_t
take(struct prog *p, struct link *L)
{
	uint64_t v = 0, junk = 0;
	sl_case  c[SEL_MAX];
	int      rv, chosen = -1, n = 0, want;

	if (L->prim == P_GROUP)
		SL_CHECK_OK(sl_group_go(L->grp, group_fn, L));
	if (L->prim == P_COND)
		sl_mutex_lock(&L->cmu);
	note(p);
	switch (L->prim) {
	case P_UNBUF:
	case P_BUF:
		rv = sl_chan_recv(L->ch, &v);
		CHK(rv == 0, "link %d: receive returned %s", L->i,
		    sl_errname(rv));
		return (v);
	case P_SELECT:
		if (L->sel & 1)
			c[n++] = SL_CASE_RECV(L->never, &junk);
		if (L->sel & 2)
			c[n++] = SL_CASE_RECV(NULL, &junk);
		if (L->sel & 4)
			c[n++] = SL_CASE_SEND(L->full, &junk);
		if (L->sel & 8)
			c[n++] = SL_CASE_RECV(sl_ctx_done(L->sctx), NULL);
		want = L->selpos % (n + 1);
		if (want < n)
			c[n] = c[want];
		c[want] = SL_CASE_RECV(L->ch, &v);
		n++;
		rv = sl_select(c, (size_t) n, L->selctx ? L->sctx : NULL,
		    SL_FOREVER, &chosen);
		CHK(rv == 0 && chosen == want && c[want].ok, "link %d: select "
		    "returned %s, case %d of %d (want %d)", L->i,
		    sl_errname(rv), chosen, n, want);
		return (v);
	case P_MUTEX:
		sl_mutex_lock(&L->mu);
		sl_mutex_unlock(&L->mu);
		break;
	case P_RLOCK:
		sl_rwmutex_rlock(&L->rw);
		sl_rwmutex_runlock(&L->rw);
		break;
	case P_WLOCK:
		sl_rwmutex_lock(&L->rw);
		sl_rwmutex_unlock(&L->rw);
		break;
	case P_COND:
		while (!atomic_load(&L->flag))
			sl_cond_wait(&L->cond, &L->cmu);
		sl_mutex_unlock(&L->cmu);
		break;
	case P_WG:
		sl_waitgroup_wait(&L->wg);
		break;
	case P_CTX_DONE:
		rv = sl_chan_recv(sl_ctx_done(L->ctx), NULL);
		CHK(rv == SL_ECLOSED, "link %d: done channel: %s", L->i,
		    sl_errname(rv));
		break;
	case P_CTX_NIL:
		rv = sl_chan_recv_ctx(NULL, NULL, L->ctx, SL_FOREVER);
		CHK(rv == SL_ECANCELED, "link %d: nil receive with ctx: %s",
		    L->i, sl_errname(rv));
		break;
	case P_GROUP:
		rv = sl_group_wait(L->grp);
		CHK(rv == L->code, "link %d: group wait returned %d, not %d",
		    L->i, rv, L->code);
		break;
	default:
		break;
	}
	return (atomic_load(&L->val));
}

/* Waits at barrier kind until main's end (or returns at once). */
static void
barrier(struct prog *p, int kind)
{
	uint64_t junk = 0;
	sl_case  c[4];
	int      rv, chosen = -1;

	note(p);
	switch (kind) {
	case B_CHAN:
		rv = sl_chan_recv(p->quit, NULL);
		CHK(rv == SL_ECLOSED, "barrier: receive returned %s",
		    sl_errname(rv));
		break;
	case B_SELECT:
		c[0] = SL_CASE_RECV(p->qnever, NULL);
		c[1] = SL_CASE_RECV(p->quit, NULL);
		c[2] = SL_CASE_SEND(p->qfull, &junk);
		c[3] = SL_CASE_RECV(NULL, NULL);
		rv = sl_select(c, 4, NULL, SL_FOREVER, &chosen);
		CHK(rv == 0 && chosen == 1 && !c[1].ok, "barrier: select "
		    "returned %s, case %d", sl_errname(rv), chosen);
		break;
	case B_WG:
		sl_waitgroup_wait(&p->qwg);
		break;
	case B_RLOCK:
		sl_rwmutex_rlock(&p->qrw);
		sl_rwmutex_runlock(&p->qrw);
		break;
	case B_MUTEX:
		sl_mutex_lock(&p->qmu);
		sl_mutex_unlock(&p->qmu);
		break;
	case B_COND:
		sl_mutex_lock(&p->qcmu);
		while (!atomic_load(&p->qflag))
			sl_cond_wait(&p->qcond, &p->qcmu);
		sl_mutex_unlock(&p->qcmu);
		break;
	case B_CTX_DONE:
		rv = sl_chan_recv(sl_ctx_done(p->qctx), NULL);
		CHK(rv == SL_ECLOSED, "barrier: done channel: %s",
		    sl_errname(rv));
		break;
	case B_CTX_NIL:
		rv = sl_chan_recv_ctx(NULL, NULL, p->qctx, SL_FOREVER);
		CHK(rv == SL_ECANCELED, "barrier: nil receive: %s",
		    sl_errname(rv));
		break;
	default:
		break;
	}
}

/* Main's end: lets every barrier go. */
static void
release_barriers(struct prog *p)
{
	SL_CHECK_OK(sl_chan_close(p->quit));
	sl_waitgroup_done(&p->qwg);
	sl_rwmutex_unlock(&p->qrw);
	sl_mutex_unlock(&p->qmu);
	sl_mutex_lock(&p->qcmu);
	atomic_store(&p->qflag, 1);
	sl_cond_broadcast(&p->qcond);
	sl_mutex_unlock(&p->qcmu);
	sl_ctx_cancel(p->qctx);
}

/* ---- wake sources -------------------------------------------------------- */

/* The source of L has come: noted, and counted. */
static void
fire(struct link *L)
{
	note(L->p);
	atomic_fetch_add(&L->fired, 1);
}

/* The end of an asynchronous source: hands over unless withheld. */
static void
fire_and_pass(struct link *L)
{
	fire(L);
	if (!atomic_load(&L->withhold))
		hand_over(L, atomic_load(&L->pv));
}

/* S_AFTER_FUNC, S_CTX_AFTER: the goroutine the timer or context starts. */
static void
after_fn(void *arg)
{
	struct link *L = arg;

	fire_and_pass(L);
	note(L->p);
	sl_waitgroup_done(&L->p->all);
}

/* S_THREAD: a pthread holding the scheduler hands over after d, and
 * releases its hold at once or a little later. */
static void *
hold_thread(void *arg)
{
	struct link *L = arg;

	nap(L->d);
	fire_and_pass(L);
	if (L->variant & 1)
		nap(L->d / 2);
	note(L->p);
	sl_sched_release();
	atomic_store(&L->th_done, true);
	return (NULL);
}

static void
bl_sleep(void *arg)
{
	struct link *L = arg;

	nap(L->d);
}

static void
bl_pass(void *arg)
{
	struct link *L = arg;

	nap(L->d);
	fire_and_pass(L);
}

static void
bl_write(void *arg)
{
	struct link *L = arg;
	char b = (char) atomic_load(&L->pv);

	nap(L->d);
	note(L->p);
	CHK(write(L->pfd[1], &b, 1) == 1, "pipe write: %s", strerror(errno));
}

/* S_FD_THREAD: a plain thread, holding nothing, writes the byte. */
static void *
fd_thread(void *arg)
{
	bl_write(arg);
	return (NULL);
}

/* S_FD_BLOCKING: a goroutine's blocking call writes it. */
static void
fd_writer(void *arg)
{
	struct link *L = arg;

	SL_CHECK_OK(sl_blocking(bl_write, L));
	note(L->p);
	sl_waitgroup_done(&L->p->all);
}

/* S_SIGNAL*: a plain thread sends SIGUSR1 to the process. */
static void *
sig_thread(void *arg)
{
	struct link *L = arg;

	nap(L->d);
	note(L->p);
	CHK(kill(getpid(), SIGUSR1) == 0, "kill: %s", strerror(errno));
	return (NULL);
}

/* Reads the byte of a pipe (sl_read, or sl_fd_wait then read). */
static void
read_byte(struct prog *p, int fd, bool wait_first, char want, int i)
{
	size_t  n = 0;
	ssize_t got;
	char    b = 0;
	int     rv;

	note(p);
	if (wait_first) {
		rv = sl_fd_wait(fd, SL_FD_READ, NULL, SL_FOREVER);
		CHK(rv == 0, "link %d: sl_fd_wait returned %s", i,
		    sl_errname(rv));
		got = read(fd, &b, 1);
		CHK(got == 1 && b == want, "link %d: read %zd bytes (%d, want "
		    "%d)", i, got, b, want);
		return;
	}
	rv = sl_read(fd, &b, 1, &n, NULL, SL_FOREVER);
	CHK(rv == 0 && n == 1 && b == want, "link %d: sl_read returned %s, "
	    "%zu bytes (%d, want %d)", i, sl_errname(rv), n, b, want);
}

/*
 * Runs the source of L with token v, in L's upstream goroutine: at the
 * source's event the token is handed over (unless withheld), by this
 * goroutine or, for an asynchronous source, by whoever the event runs on.
 */
static void
source(struct prog *p, struct link *L, uint64_t v)
{
	sl_timer *t = NULL;
	sl_chan  *ch = NULL;
	sl_ctx   *ctx = NULL;
	sl_case   c[2];
	int64_t   t0, when = 0;
	int       rv, chosen, sig = SIGUSR1, s = 0;

	atomic_store(&L->pv, v);
	switch (L->src) {
	case S_YIELD:
		for (int k = 0; k <= L->variant; k++)
			sl_yield();
		break;
	case S_SPIN:
		spin(L->d);
		break;
	case S_SLEEP:
		sl_sleep(L->d);
		break;
	case S_AFTER_FUNC:
		sl_waitgroup_add(&p->all, 1);
		SL_CHECK_OK(sl_timer_after_func(L->d, after_fn, L, &L->tm));
		return;
	case S_TIMER_CHAN:
		t0 = sl_now();
		if (L->variant & 1) {
			SL_CHECK_OK(sl_timer_make(L->d, &t));
			ch = sl_timer_chan(t);
		} else {
			SL_CHECK_OK(sl_after(L->d, &ch));
		}
		note(p);
		rv = sl_chan_recv(ch, &when);
		CHK(rv == 0 && when >= t0 + L->d, "link %d: timer channel: %s, "
		    "%" PRId64 " ns early", L->i, sl_errname(rv),
		    t0 + L->d - when);
		if (t != NULL)
			sl_timer_free(t);
		else
			sl_chan_release(ch);
		break;
	case S_DEADLINE:
		c[0] = SL_CASE_RECV(p->snever, NULL);
		c[1] = SL_CASE_RECV(NULL, NULL);
		note(p);
		rv = sl_select(c, 2, NULL, sl_now() + L->d, &chosen);
		CHK(rv == SL_ETIMEDOUT, "link %d: select with a deadline "
		    "returned %s", L->i, sl_errname(rv));
		break;
	case S_CTX_TIMEOUT:
		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(), L->d,
		    &L->octx));
		note(p);
		if (L->variant & 1)
			rv = sl_sleep_ctx(L->octx, FAR);
		else
			rv = sl_chan_recv_ctx(NULL, NULL, L->octx, SL_FOREVER);
		CHK(rv == SL_EDEADLINE, "link %d: wait on a timeout context "
		    "returned %s", L->i, sl_errname(rv));
		break;
	case S_CTX_AFTER:
		sl_waitgroup_add(&p->all, 1);
		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(), L->d,
		    &L->octx));
		SL_CHECK_OK(sl_ctx_after_func(L->octx, after_fn, L, NULL));
		return;
	case S_THREAD:
		sl_sched_hold();
		make_thread(&L->th, &L->th_made, hold_thread, L);
		return;
	case S_BLOCKING:
		note(p);
		SL_CHECK_OK(sl_blocking(bl_sleep, L));
		break;
	case S_BLOCKING_IN:
		note(p);
		SL_CHECK_OK(sl_blocking(bl_pass, L));
		return;
	case S_BLOCKING_CTX:
		/* The context ends while the call runs, and the call returns
		 * once it has; unless no pool thread took it by then (a slow
		 * thread start): then it is made again without one. */
		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(), L->d / 3,
		    &ctx));
		note(p);
		rv = sl_blocking_ctx(bl_sleep, L, ctx, SL_FOREVER);
		if (rv != 0) {
			CHK(rv == SL_EDEADLINE, "link %d: sl_blocking_ctx "
			    "returned %s", L->i, sl_errname(rv));
			atomic_fetch_add(&L->bad, 1);
			SL_CHECK_OK(sl_blocking(bl_sleep, L));
		}
		sl_ctx_release(ctx);
		break;
	case S_FD_THREAD:
		make_pipe(L->pfd);
		make_thread(&L->th, &L->th_made, fd_thread, L);
		read_byte(p, L->pfd[0], L->variant & 1, (char) v, L->i);
		break;
	case S_FD_BLOCKING:
		make_pipe(L->pfd);
		sl_waitgroup_add(&p->all, 1);
		SL_CHECK_OK(sl_go(fd_writer, L));
		read_byte(p, L->pfd[0], L->variant & 1, (char) v, L->i);
		break;
	case S_SIGNAL:
		L->sigch = chan_make(sizeof(int), 1);
		SL_CHECK_OK(sl_signal_notify(L->sigch, &sig, 1));
		make_thread(&L->th, &L->th_made, sig_thread, L);
		note(p);
		rv = sl_chan_recv(L->sigch, &s);
		CHK(rv == 0 && s == SIGUSR1, "link %d: signal channel: %s, "
		    "signal %d", L->i, sl_errname(rv), s);
		sl_signal_stop(L->sigch);
		break;
	case S_SIGNAL_CTX:
		SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), &sig, 1,
		    &L->octx));
		make_thread(&L->th, &L->th_made, sig_thread, L);
		note(p);
		rv = sl_chan_recv_ctx(NULL, NULL, L->octx, SL_FOREVER);
		CHK(rv == SL_ECANCELED, "link %d: signal context: %s", L->i,
		    sl_errname(rv));
		sl_signal_stop_ctx(L->octx);
		break;
	default:
		break;
	}
	fire_and_pass(L);
}

/* ---- the pinned cases: deadlocks the runtime once missed -------------- */

static void
never_fn(void *arg)
{
	struct link *L = arg;

	CHK(0, "link %d: a stopped timer ran its function", L->i);
}

/* BRK_TIMER_STOP: a plain thread stops the one timer left. */
static void *
stop_timer_thread(void *arg)
{
	struct link *L = arg;

	nap(L->d);
	fire(L);
	CHK(sl_timer_stop(L->tm), "link %d: sl_timer_stop returned false",
	    L->i);
	return (NULL);
}

/* BRK_SIGNAL_STOP: a plain thread ends the registration of a channel that
 * a goroutine waits on. */
static void *
stop_signal_thread(void *arg)
{
	struct link *L = arg;

	nap(L->d);
	fire(L);
	sl_signal_stop(L->sigch);
	return (NULL);
}

/* Runs the broken source of a test_ case; for BRK_SIGNAL_STOP, waits
 * for good on the signal channel. */
static void
pin_source(struct prog *p, struct link *L)
{
	int sig = SIGUSR1, s = 0;

	if (p->bmode == BRK_TIMER_STOP) {
		SL_CHECK_OK(sl_timer_after_func(FAR, never_fn, L, &L->tm));
		make_thread(&L->th, &L->th_made, stop_timer_thread, L);
		return;
	}
	L->sigch = chan_make(sizeof(int), 1);
	SL_CHECK_OK(sl_signal_notify(L->sigch, &sig, 1));
	make_thread(&L->th, &L->th_made, stop_signal_thread, L);
	note(p);
	(void) sl_chan_recv(L->sigch, &s);
	CHK(0, "link %d: a signal came on a channel nobody signals", L->i);
}

/* The upstream end of link L: its source, or what the break leaves of
 * it. */
static void
upstream(struct prog *p, struct link *L, uint64_t v)
{
	int mode = L->i == p->brk ? p->bmode : BRK_NONE;

	switch (mode) {
	case BRK_REMOVE:
		return;
	case BRK_TIMER_STOP:
	case BRK_SIGNAL_STOP:
		pin_source(p, L);
		return;
	case BRK_WITHHOLD:
		atomic_store(&L->withhold, true);
		break;
	default:
		break;
	}
	source(p, L, v);
}

/* ---- goroutines ---------------------------------------------------------- */

static void
once_fn(void *arg)
{
	struct prog *p = arg;

	atomic_fetch_add(&p->once_runs, 1);
	if (p->once_sleep)
		sl_sleep(MS);
}

static void
stage_run(void *arg)
{
	struct stage *s = arg;
	struct prog  *p = s->p;
	uint64_t      v;
	int           nth;

	sl_once_do(&p->once, once_fn, p);
	v = take(p, &p->link[s->i]);
	nth = atomic_fetch_add(&p->order, 1);
	atomic_fetch_add(&s->got, 1);
	CHK(v == p->vexp[s->i] && nth == s->i, "stage %d got %" PRIx64 " as "
	    "number %d, not %" PRIx64, s->i, v, nth, p->vexp[s->i]);
	upstream(p, &p->link[s->i + 1], step(v, s->i));
	barrier(p, s->barrier);
	sl_waitgroup_done(&p->all);
}

/* SD_TIMED: a wait that can only end at its deadline. */
static void
timed_wait(struct prog *p, struct side *sd)
{
	int64_t dl = sl_now() + sd->d;
	sl_case c[2];
	sl_ctx *ctx;
	int     rv, chosen, want = SL_ETIMEDOUT;

	switch (sd->sub) {
	case 0:
		rv = sl_chan_recv_ctx(p->snever, NULL, NULL, dl);
		break;
	case 1:
		rv = sl_mutex_lock_ctx(&p->smu, NULL, dl);
		break;
	case 2:
		rv = sl_rwmutex_rlock_ctx(&p->srw, NULL, dl);
		break;
	case 3:
		rv = sl_waitgroup_wait_ctx(&p->swg, NULL, dl);
		break;
	case 4:
		sl_mutex_lock(&p->scmu);
		rv = sl_cond_wait_ctx(&p->scond, &p->scmu, NULL, dl);
		sl_mutex_unlock(&p->scmu);
		break;
	case 5:
		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(), sd->d,
		    &ctx));
		rv = sl_sleep_ctx(ctx, FAR);
		sl_ctx_release(ctx);
		want = SL_EDEADLINE;
		break;
	default:
		c[0] = SL_CASE_RECV(p->snever, NULL);
		c[1] = SL_CASE_RECV(NULL, NULL);
		rv = sl_select(c, 2, NULL, dl, &chosen);
		break;
	}
	CHK(rv == want, "side %d: timed wait %d returned %s", sd->k, sd->sub,
	    sl_errname(rv));
}

static void
side_bl_sleep(void *arg)
{
	struct side *sd = arg;

	nap(sd->d);
}

/* SD_FD, SD_SIGNAL: the side's plain thread. */
static void *
side_thread(void *arg)
{
	struct side *sd = arg;
	char b = 's';

	nap(sd->d);
	note(sd->p);
	if (sd->kind == SD_FD)
		CHK(write(sd->pfd[1], &b, 1) == 1, "side %d: write: %s",
		    sd->k, strerror(errno));
	else
		CHK(kill(getpid(), SIGUSR2) == 0, "side %d: kill: %s", sd->k,
		    strerror(errno));
	return (NULL);
}

/* SD_HOLD: holds the scheduler for d, then lets go. */
static void *
side_hold(void *arg)
{
	struct side *sd = arg;

	nap(sd->d);
	atomic_fetch_add(&sd->woke, 1);
	note(sd->p);
	sl_sched_release();
	atomic_store(&sd->th_done, true);
	return (NULL);
}

static void
side_run(void *arg)
{
	struct side *sd = arg;
	struct prog *p = sd->p;
	int          sig = SIGUSR2, s = 0, rv;

	note(p);
	switch (sd->kind) {
	case SD_SLEEP:
		sl_sleep(sd->d);
		break;
	case SD_TIMED:
		timed_wait(p, sd);
		break;
	case SD_BLOCKING:
		SL_CHECK_OK(sl_blocking(side_bl_sleep, sd));
		break;
	case SD_SPIN:
		spin(sd->d);
		break;
	case SD_FD:
		make_pipe(sd->pfd);
		make_thread(&sd->th, &sd->th_made, side_thread, sd);
		read_byte(p, sd->pfd[0], false, 's', -1 - sd->k);
		break;
	case SD_SIGNAL:
		sd->sigch = chan_make(sizeof(int), 1);
		SL_CHECK_OK(sl_signal_notify(sd->sigch, &sig, 1));
		make_thread(&sd->th, &sd->th_made, side_thread, sd);
		rv = sl_chan_recv(sd->sigch, &s);
		CHK(rv == 0 && s == SIGUSR2, "side %d: signal channel: %s, "
		    "signal %d", sd->k, sl_errname(rv), s);
		sl_signal_stop(sd->sigch);
		break;
	default:
		break;
	}
	atomic_fetch_add(&sd->woke, 1);
	barrier(p, sd->barrier);
	sl_waitgroup_done(&p->all);
}

static void
start_sides(struct prog *p)
{
	for (int k = 0; k < p->nside; k++) {
		struct side *sd = &p->side[k];

		switch (sd->kind) {
		case SD_HOLD:
			sl_sched_hold();
			make_thread(&sd->th, &sd->th_made, side_hold, sd);
			break;
		case SD_AFTER_FUNC:
			sl_waitgroup_add(&p->all, 1);
			SL_CHECK_OK(sl_timer_after_func(sd->d, side_run, sd,
			    &sd->tm));
			break;
		default:
			sl_waitgroup_add(&p->all, 1);
			SL_CHECK_OK(sl_go(side_run, sd));
			break;
		}
	}
}

/* Waits, sleeping, until *f is set: true if it was within HUNG. */
static bool
settle(atomic_bool *f)
{
	int64_t end = sl_now() + HUNG * slow();

	while (!atomic_load(f) && sl_now() < end)
		sl_sleep(100 * US);
	return (atomic_load(f));
}

/* The live program's end, in main once the token is back: lets every
 * barrier go, waits for every goroutine and holding thread, checks the
 * counts, frees. */
static void
finish(struct prog *p)
{
	int64_t end;

	release_barriers(p);
	sl_waitgroup_wait(&p->all);
	for (int i = 0; i <= p->nst; i++)
		if (p->link[i].src == S_THREAD)
			CHK(settle(&p->link[i].th_done), "link %d: its thread "
			    "never released its hold", i);
	for (int k = 0; k < p->nside; k++)
		if (p->side[k].kind == SD_HOLD)
			CHK(settle(&p->side[k].th_done), "side %d: its thread "
			    "never released its hold", k);
	end = sl_now() + HUNG * slow();
	while (sl_numgoroutine() > 1 && sl_now() < end)
		sl_sleep(100 * US);
	CHK(sl_numgoroutine() == 1, "%zu goroutines left", sl_numgoroutine());

	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];

		CHK(atomic_load(&L->fired) == 1 && atomic_load(&L->passed) ==
		    1, "link %d (%s): source fired %d times, handed over %d",
		    i, src_name[L->src], atomic_load(&L->fired),
		    atomic_load(&L->passed));
		if (i < p->nst)
			CHK(atomic_load(&p->st[i].got) == 1, "stage %d got the "
			    "token %d times", i, atomic_load(&p->st[i].got));
	}
	for (int k = 0; k < p->nside; k++)
		CHK(atomic_load(&p->side[k].woke) == 1, "side %d (%s) woke %d "
		    "times", k, side_name[p->side[k].kind],
		    atomic_load(&p->side[k].woke));
	CHK(atomic_load(&p->once_runs) == (p->nst > 0), "the sl_once "
	    "function ran %d times", atomic_load(&p->once_runs));
	teardown(p);
}

/* The main goroutine of a program, live or broken. */
static void
prog_main(void *arg)
{
	struct prog *p = arg;
	uint64_t     v;

	setup(p);
	sl_waitgroup_add(&p->all, p->nst);
	for (int i = 0; i < p->nst; i++)
		SL_ASSERT_OK(sl_go(stage_run, &p->st[i]));
	start_sides(p);
	upstream(p, &p->link[0], p->vexp[0]);
	v = take(p, &p->link[p->nst]);
	atomic_fetch_add(&p->main_got, 1);
	CHK(v == p->vexp[p->nst], "main got %" PRIx64 ", not %" PRIx64, v,
	    p->vexp[p->nst]);
	CHK(p->brk < 0, "a broken program finished");
	if (p->brk < 0)
		finish(p);
}

/* ---- watchdog ------------------------------------------------------------ */

/* A thread that ends a run still going after a limit: the child exits
 * with CHILD_HUNG, the test program aborts; both print every goroutine's
 * wait first. */
struct watchdog {
	pthread_t       th;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop;
	bool            child;
	int64_t         limit;
	struct prog    *p;
};

static void *
wd_run(void *arg)
{
	struct watchdog *w = arg;
	int64_t end = sl_now() + w->limit;
	bool fire;

	pthread_mutex_lock(&w->mu);
	while (!w->stop && sl_now() < end) {
		struct timespec ts = { .tv_sec = end / SL_SECOND,
			.tv_nsec = end % SL_SECOND };
		(void) pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	fire = !w->stop;
	pthread_mutex_unlock(&w->mu);
	if (!fire)
		return (NULL);
	fprintf(stderr, "@hang: still running after %.1f s: %s\n",
	    (double) w->limit / SL_SECOND, w->p->desc);
	sl_dump_goroutines(stderr);
	fflush(stderr);
	if (w->child)
		_exit(CHILD_HUNG);
	fprintf(stderr, "chaos_deadlock: a live program hung (seed 0x%" PRIx64
	    " procs %d program %d); replay with SLUICE_CHAOS_SEED=0x%" PRIx64
	    "\n", g_seed, g_procs, g_prog, g_seed);
	abort();
}

static void
wd_start(struct watchdog *w, struct prog *p, int64_t limit, bool child)
{
	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	w->p = p;
	w->limit = limit;
	w->child = child;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->th, NULL, wd_run, w) != 0)
		SLT_FATAL("pthread_create failed");
}

static void
wd_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* Runs p under sl_main with its workers (on the CPUs cpus lists, or
 * anywhere for NULL), bounded by a watchdog. */
static int
run(struct prog *p, int64_t limit, bool child, const char *cpus)
{
	struct watchdog w;
	sl_opts o;
	int rv;

	memset(&o, 0, sizeof(o));
	o.procs = p->procs;
	o.cpus = cpus;
	wd_start(&w, p, limit, child);
	rv = sl_main_opts(&o, prog_main, p);
	wd_stop(&w);
	return (rv);
}

/* Runs p live: sl_main must return 0.  A false report leaves goroutines
 * and threads on objects that cannot be freed: the test program stops. */
static void
run_live(struct prog *p)
{
	int rv = run(p, HUNG * slow(), false, NULL);

	if (rv != 0) {
		fprintf(stderr, "chaos_deadlock: seed 0x%" PRIx64 " procs %d "
		    "program %d (%s): sl_main returned %s for a live program:"
		    "\n  %s\n", g_seed, g_procs, g_prog, g_phase,
		    sl_errname(rv), p->desc);
		fflush(stderr);
		abort();
	}
	join_threads(p);
}

/* ---- the report ---------------------------------------------------------- */

/* One goroutine of a report: its wait and what it waits on. */
struct gline {
	char reason[64];
	char obj[32];  /* "%p", "-" for none, "*" for any (expected only) */
	bool used;
};

struct expect {
	struct gline l[EXP_MAX];
	int          n;
};

static void
exp_add(struct expect *e, const char *reason, const void *obj, bool any)
{
	struct gline *g;

	if (e->n == EXP_MAX)
		SLT_FATAL("more than %d goroutines expected", EXP_MAX);
	g = &e->l[e->n++];
	snprintf(g->reason, sizeof(g->reason), "%s", reason);
	if (any)
		snprintf(g->obj, sizeof(g->obj), "*");
	else if (obj == NULL)
		snprintf(g->obj, sizeof(g->obj), "-");
	else
		snprintf(g->obj, sizeof(g->obj), "%p", obj);
}

/* The goroutines waiting for link L's token that never comes. */
static void
exp_take(struct expect *e, struct link *L)
{
	switch (L->prim) {
	case P_UNBUF:
	case P_BUF:
		exp_add(e, "chan receive", L->ch, false);
		break;
	case P_SELECT:
		exp_add(e, "select", NULL, false);
		break;
	case P_MUTEX:
		exp_add(e, "sync.Mutex.Lock", &L->mu, false);
		break;
	case P_RLOCK:
		exp_add(e, "sync.RWMutex.RLock", &L->rw, false);
		break;
	case P_WLOCK:
		exp_add(e, "sync.RWMutex.Lock", &L->rw, false);
		break;
	case P_COND:
		exp_add(e, "sync.Cond.Wait", &L->cond, false);
		break;
	case P_WG:
		exp_add(e, "sync.WaitGroup.Wait", &L->wg, false);
		break;
	case P_CTX_DONE:
		exp_add(e, "chan receive", sl_ctx_done(L->ctx), false);
		break;
	case P_CTX_NIL:
		exp_add(e, "chan receive (nil chan)", NULL, false);
		break;
	case P_GROUP:
		exp_add(e, "sync.WaitGroup.Wait", NULL, true);
		exp_add(e, "chan receive", L->ch, false);
		break;
	default:
		break;
	}
}

static void
exp_barrier(struct expect *e, struct prog *p, int kind)
{
	switch (kind) {
	case B_CHAN:
		exp_add(e, "chan receive", p->quit, false);
		break;
	case B_SELECT:
		exp_add(e, "select", NULL, false);
		break;
	case B_WG:
		exp_add(e, "sync.WaitGroup.Wait", &p->qwg, false);
		break;
	case B_RLOCK:
		exp_add(e, "sync.RWMutex.RLock", &p->qrw, false);
		break;
	case B_MUTEX:
		exp_add(e, "sync.Mutex.Lock", &p->qmu, false);
		break;
	case B_COND:
		exp_add(e, "sync.Cond.Wait", &p->qcond, false);
		break;
	case B_CTX_DONE:
		exp_add(e, "chan receive", sl_ctx_done(p->qctx), false);
		break;
	case B_CTX_NIL:
		exp_add(e, "chan receive (nil chan)", NULL, false);
		break;
	default:
		break;
	}
}

/* What the report of broken program p must list. */
static void
expected(struct prog *p, struct expect *e)
{
	int b = p->brk;

	memset(e, 0, sizeof(*e));
	/* main: on the signal channel if it broke link 0 that way, else on
	 * the last link. */
	if (b == 0 && p->bmode == BRK_SIGNAL_STOP)
		exp_add(e, "chan receive", p->link[0].sigch, false);
	else
		exp_take(e, &p->link[p->nst]);
	for (int i = 0; i < p->nst; i++) {
		if (i >= b)
			exp_take(e, &p->link[i]);
		else if (i == b - 1 && p->bmode == BRK_SIGNAL_STOP)
			exp_add(e, "chan receive", p->link[b].sigch, false);
		else
			exp_barrier(e, p, p->st[i].barrier);
	}
	for (int k = 0; k < p->nside; k++)
		if (p->side[k].kind != SD_HOLD)
			exp_barrier(e, p, p->side[k].barrier);
}

/* Parses "goroutine N [reason]: waiting on 0x... in ..." into g. */
static bool
parse_gline(const char *line, struct gline *g)
{
	const char *lb, *rb, *w;
	size_t      n;

	if (strncmp(line, "goroutine ", 10) != 0 ||
	    (lb = strchr(line, '[')) == NULL ||
	    (rb = strchr(lb, ']')) == NULL)
		return (false);
	memset(g, 0, sizeof(*g));
	n = (size_t) (rb - lb - 1);
	if (n >= sizeof(g->reason))
		n = sizeof(g->reason) - 1;
	memcpy(g->reason, lb + 1, n);
	if (strncmp(rb + 1, ": waiting on ", 13) == 0) {
		w = rb + 14;
		n = strcspn(w, " \n");
		if (n >= sizeof(g->obj))
			n = sizeof(g->obj) - 1;
		memcpy(g->obj, w, n);
	} else {
		snprintf(g->obj, sizeof(g->obj), "-");
	}
	return (true);
}

static bool
gline_match(const struct gline *want, const struct gline *got)
{
	if (strcmp(want->reason, got->reason) != 0)
		return (false);
	if (strcmp(want->obj, "*") == 0)
		return (strcmp(got->obj, "-") != 0);
	return (strcmp(want->obj, got->obj) == 0);
}

/*
 * Checks a child's stderr: the report, then the child's "@e" lines (the
 * goroutines it must list).  Returns NULL if they agree, else what is
 * wrong (in buf).
 */
static const char *
check_report(char *err, char *buf, size_t len)
{
	struct gline got[EXP_MAX], want[EXP_MAX];
	int          ngot = 0, nwant = 0, in = 0;
	char        *line, *save = NULL;
	size_t       off = 0;

	for (line = strtok_r(err, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "all goroutines are asleep - deadlock!"))
			in = 1;
		else if (line[0] == '@')
			in = 0;
		if (in && ngot < EXP_MAX && parse_gline(line, &got[ngot]))
			ngot++;
		if (strncmp(line, "@e ", 3) == 0 && nwant < EXP_MAX) {
			char *sp = strchr(line + 3, ' ');

			if (sp == NULL)
				continue;
			memset(&want[nwant], 0, sizeof(want[0]));
			snprintf(want[nwant].obj, sizeof(want[0].obj), "%.*s",
			    (int) (sp - line - 3), line + 3);
			snprintf(want[nwant].reason, sizeof(want[0].reason),
			    "%s", sp + 1);
			nwant++;
		}
	}
	/* Exact objects first, then "any". */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < nwant; i++) {
			bool any = strcmp(want[i].obj, "*") == 0;

			if (want[i].used || any != (pass == 1))
				continue;
			for (int j = 0; j < ngot; j++) {
				if (!got[j].used &&
				    gline_match(&want[i], &got[j])) {
					got[j].used = want[i].used = true;
					break;
				}
			}
		}
	}
	buf[0] = '\0';
	for (int i = 0; i < nwant; i++)
		if (!want[i].used && off < len)
			off += (size_t) snprintf(buf + off, len - off, "\n    "
			    "missing: [%s] on %s", want[i].reason,
			    want[i].obj);
	for (int j = 0; j < ngot; j++)
		if (!got[j].used && off < len)
			off += (size_t) snprintf(buf + off, len - off, "\n    "
			    "not expected: [%s] on %s", got[j].reason,
			    got[j].obj);
	return (buf[0] != '\0' ? buf : NULL);
}

/* ---- the deadlocked child ------------------------------------------------ */

struct child_arg {
	uint64_t pseed;
	int      procs;
	int      brk;
	int      bmode;
	int      pin;     /* PIN_* */
	int64_t  hang;
};

/* The first CPU this process may run on, as a CPU list. */
static void
first_cpu(char *buf, size_t len)
{
	cpu_set_t set;

	snprintf(buf, len, "0");
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (CPU_ISSET(i, &set)) {
			snprintf(buf, len, "%d", i);
			return;
		}
	}
}

/* Keeps the broken program reachable (its goroutines are abandoned with
 * their objects), so that the leak checkers stay quiet. */
static struct prog *volatile g_broken;

/* After the report: what the broken program did is exactly what it could
 * do before it got stuck. */
static void
check_broken(struct prog *p, int64_t t_ret)
{
	int     b = p->brk;
	int64_t late = t_ret - atomic_load(&p->t_last);

	CHK(atomic_load(&p->main_got) == 0, "main got the token");
	for (int i = 0; i < p->nst; i++)
		CHK(atomic_load(&p->st[i].got) == (i < b), "stage %d got the "
		    "token %d times (the link broken is %d)", i,
		    atomic_load(&p->st[i].got), b);
	for (int i = 0; i <= p->nst; i++) {
		struct link *L = &p->link[i];
		int want_fired = i < b || (i == b && p->bmode != BRK_REMOVE);

		CHK(atomic_load(&L->passed) == (i < b), "link %d (%s) handed "
		    "over %d times (the link broken is %d)", i,
		    src_name[L->src], atomic_load(&L->passed), b);
		CHK(atomic_load(&L->fired) == want_fired, "link %d (%s): its "
		    "source fired %d times, before the report, expected %d",
		    i, src_name[L->src], atomic_load(&L->fired), want_fired);
	}
	for (int k = 0; k < p->nside; k++)
		CHK(atomic_load(&p->side[k].woke) == 1, "side %d (%s, %.1f ms) "
		    "woke %d times before the report", k,
		    side_name[p->side[k].kind], (double) p->side[k].d / MS,
		    atomic_load(&p->side[k].woke));
	CHK(late >= 0, "deadlock reported %.3f ms before the last event",
	    (double) -late / MS);
	CHK(late <= PROMPT * slow(), "deadlock reported %.3f ms after the "
	    "last event", (double) late / MS);
}

/*
 * The child: runs the broken program (SL_EDEADLOCK expected), prints the
 * goroutines its report must list, checks what it did; then runs the live
 * program again in this process.  Exits CHILD_FAILED if a check failed.
 */
static void
child_main(void *arg)
{
	struct child_arg *a = arg;
	struct expect     e;
	struct prog      *p, *q;
	int64_t           t_ret;
	char              cpu[16];
	int               rv;

	atomic_store(slt_failures(), 0);
	if ((p = g_broken = malloc(sizeof(*p))) == NULL ||
	    (q = malloc(sizeof(*q))) == NULL)
		_exit(CHILD_FAILED);
	draw(p, a->pseed, a->procs);
	breaks(p, a->brk, a->bmode, a->pin);
	g_phase = "deadlock";
	first_cpu(cpu, sizeof(cpu));
	rv = run(p, a->hang, true, a->pin == PIN_BLOCKING ? cpu : NULL);
	t_ret = sl_now();
	fprintf(stderr, "@rv %s\n", sl_errname(rv));
	CHK(rv == SL_EDEADLOCK, "sl_main returned %s, not SL_EDEADLOCK",
	    sl_errname(rv));
	check_broken(p, t_ret);
	expected(p, &e);
	for (int i = 0; i < e.n; i++)
		fprintf(stderr, "@e %s %s\n", e.l[i].obj, e.l[i].reason);
	join_threads(p);

	if (a->pin == PIN_NONE) {
		g_phase = "rerun";
		draw(q, a->pseed, a->procs);
		rv = run(q, HUNG * slow(), true, NULL);
		fprintf(stderr, "@rerun %s\n", sl_errname(rv));
		CHK(rv == 0, "sl_main after a deadlock returned %s",
		    sl_errname(rv));
		join_threads(q);
	}
	free(q);
	fflush(stderr);
	_exit(atomic_load(slt_failures()) != 0 ? CHILD_FAILED : 0);
}

/* ---- the cases ----------------------------------------------------------- */

struct cd_case {
	int      procs;
	uint64_t seed;
	int      pin;      /* PIN_*: a pinned case */
	/* counters for the summary */
	long     links[S_N];
	long     prims[P_N];
	long     sides;
	long     stages;
	long     reports;
	long     withdrawn;
};

/* Breaks the program of pseed in a child; true if it was reported as it
 * must be.  *hung tells a child that had to be stopped. */
static bool
run_broken(struct cd_case *c, uint64_t pseed, int b, int mode, bool *hung)
{
	struct child_arg a = { pseed, c->procs, b, mode, c->pin, 0 };
	static slt_child res;
	static char      copy[sizeof(res.err)];
	char             sbuf[160], rbuf[2048];
	const char      *bad = NULL, *why = NULL;
	struct prog     *p;

	a.hang = (c->pin ? HANG_PIN : HANG) * slow();
	if (slt_fork(child_main, &a, &res) != 0)
		SLT_FATAL("fork failed");
	memcpy(copy, res.err, sizeof(copy));
	/* (TSan may turn the exit code of a child stopped with threads
	 * still running into its own.) */
	*hung = (WIFEXITED(res.status) && WEXITSTATUS(res.status) ==
	    CHILD_HUNG) || strncmp(res.err, "@hang", 5) == 0 ||
	    strstr(res.err, "\n@hang") != NULL;
	if (*hung)
		why = "hung: no report within its time (a missed deadlock)";
	else if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
		why = slt_status_str(res.status, sbuf, sizeof(sbuf));
	else if (strstr(res.err, "all goroutines are asleep - deadlock!") ==
	    NULL)
		why = "no \"all goroutines are asleep\" report";
	else if ((bad = check_report(copy, rbuf, sizeof(rbuf))) != NULL)
		why = "the report does not list the goroutines left blocked";
	if (why == NULL) {
		c->reports++;
		return (true);
	}
	if ((p = malloc(sizeof(*p))) == NULL)
		SLT_FATAL("out of memory");
	draw(p, pseed, c->procs);
	breaks(p, b, mode, c->pin);
	g_phase = "deadlock";
	slt_chaos_check_failed(__FILE__, __LINE__, "broken program: %s%s\n"
	    "  program: %s", why, bad != NULL ? bad : "", p->desc);
	fprintf(stderr, "--- the child's stderr:\n%s--- end\n", res.err);
	free(p);
	return (false);
}

static void
summary(struct cd_case *c, int nprog, int64_t t0)
{
	printf("chaos_deadlock%s seed 0x%" PRIx64 " procs %d: %d programs "
	    "(%ld stages, %ld sides), %ld deadlocks reported right, in %.2f "
	    "s; sources:", c->pin ? " (pinned cases)" : "", g_seed, c->procs,
	    nprog, c->stages, c->sides, c->reports,
	    (double) (sl_now() - t0) / SL_SECOND);
	for (int s = 0; s < S_N; s++)
		printf(" %s %ld", src_name[s], c->links[s]);
	printf("; primitives:");
	for (int i = 0; i < P_N; i++)
		printf(" %s %ld", prim_name[i], c->prims[i]);
	printf("; blocking_ctx withdrawn %ld\n", c->withdrawn);
	fflush(stdout);
}

static void
test_chaos_deadlock(void **state)
{
	struct cd_case *c = *state;
	uint64_t        seed = slt_seed(c->seed), r;
	long            nprog = c->pin == PIN_REMOVAL ? PIN_PROGS :
	    c->pin == PIN_BLOCKING ? slt_scaled_min(PIN_RACES, 10) :
	    slt_scaled_min(PROGS, PROGS_MIN);
	int64_t         t0 = sl_now();
	bool            hung = false;

#ifdef SLT_TSAN
	if (!c->pin)
		nprog = nprog / TSAN_DIVISOR > PROGS_MIN ?
		    nprog / TSAN_DIVISOR : PROGS_MIN;
#endif
	g_seed = seed;
	g_procs = c->procs;
	slt_chaos_reset();
	atomic_store(slt_failures(), 0);
	r = seed;
	/* After a hang, the next programs would most likely hang too: the
	 * first one tells enough (the removal case runs both of its). */
	for (int n = 0; n < nprog && (!hung || c->pin == PIN_REMOVAL); n++) {
		uint64_t     pseed = slt_rnd(&r);
		struct prog *p = malloc(sizeof(*p));
		int          b, mode;

		if (p == NULL)
			fail_msg("out of memory");
		g_prog = n;
		draw(p, pseed, c->procs);
		for (int i = 0; i <= p->nst && c->pin == PIN_NONE; i++) {
			c->links[p->link[i].src]++;
			c->prims[p->link[i].prim]++;
		}
		c->stages += c->pin == PIN_NONE ? p->nst : 0;
		c->sides += c->pin == PIN_NONE ? p->nside : 0;
		/* A program whose goroutines all exit, broken at its last
		 * link, leaves main alone blocked: half of them are. */
		b = (int) rnd(&r, (uint32_t) p->nst + 1);
		if (p->exiting && rnd(&r, 2) == 0)
			b = p->nst;
		if (c->pin == PIN_REMOVAL)
			mode = n % 2 == 0 ? BRK_TIMER_STOP : BRK_SIGNAL_STOP;
		else if (c->pin == PIN_BLOCKING)
			mode = BRK_WITHHOLD;
		else
			mode = p->link[b].src == S_DIRECT || rnd(&r, 3) == 0 ?
			    BRK_REMOVE : BRK_WITHHOLD;
		if (!c->pin) {
			g_phase = "live";
			run_live(p);
			for (int i = 0; i <= p->nst; i++)
				c->withdrawn += atomic_load(&p->link[i].bad);
		}
		free(p);
		(void) run_broken(c, pseed, b, mode, &hung);
	}
	summary(c, (int) nprog, t0);
	slt_replay_hint("chaos_deadlock", seed, c->procs);
	slt_assert_no_failures();
}

static struct cd_case cases[] = {
	{ .procs = 1, .seed = 0xdead0001 }, { .procs = 1, .seed = 0xdead0002 },
	{ .procs = 1, .seed = 0xdead0003 }, { .procs = 2, .seed = 0xdead0001 },
	{ .procs = 2, .seed = 0xdead0002 }, { .procs = 2, .seed = 0xdead0003 },
	{ .procs = 1, .seed = 0xb0600001, .pin = PIN_REMOVAL },
	{ .procs = 2, .seed = 0xb0600001, .pin = PIN_REMOVAL },
	{ .procs = 1, .seed = 0xb0600002, .pin = PIN_BLOCKING },
	{ .procs = 2, .seed = 0xb0600002, .pin = PIN_BLOCKING },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_deadlock_1_worker_seed_1", test_chaos_deadlock,
		    NULL, NULL, &cases[0] },
		{ "test_chaos_deadlock_1_worker_seed_2", test_chaos_deadlock,
		    NULL, NULL, &cases[1] },
		{ "test_chaos_deadlock_1_worker_seed_3", test_chaos_deadlock,
		    NULL, NULL, &cases[2] },
		{ "test_chaos_deadlock_2_workers_seed_1", test_chaos_deadlock,
		    NULL, NULL, &cases[3] },
		{ "test_chaos_deadlock_2_workers_seed_2", test_chaos_deadlock,
		    NULL, NULL, &cases[4] },
		{ "test_chaos_deadlock_2_workers_seed_3", test_chaos_deadlock,
		    NULL, NULL, &cases[5] },
		{ "test_thread_removes_last_source_1_worker",
		    test_chaos_deadlock, NULL, NULL, &cases[6] },
		{ "test_thread_removes_last_source_2_workers",
		    test_chaos_deadlock, NULL, NULL, &cases[7] },
		{ "test_blocking_call_ends_as_last_parks_1_worker",
		    test_chaos_deadlock, NULL, NULL, &cases[8] },
		{ "test_blocking_call_ends_as_last_parks_2_workers",
		    test_chaos_deadlock, NULL, NULL, &cases[9] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
