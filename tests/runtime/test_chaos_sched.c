/*
 * test_chaos_sched.c — a randomized, seeded stress test of the scheduler
 * core (sched/sched.c behind sluice/runtime.h): workers, their run queues
 * and runnext slots, stealing, the global queue, idle workers and their
 * wake-ups, sl_go from goroutines and from plain threads, sl_yield,
 * sl_sched_hold/sl_sched_release, the queries (sl_numgoroutine, sl_goid,
 * sl_worker_id, sl_procs), main returning over live goroutines, and
 * sl_main run again and again in one process.
 *
 * Why: test_sched.c pins down one behaviour per case (a tree of spawns, a
 * storm, yield interleaving, spreading, abandoning).  The scheduler's
 * bugs live where those meet: a goroutine readied into runnext while a
 * thief takes the queue it was pushed out to, a foreign thread's wake-up
 * landing on the global queue just as the last worker goes idle, a spill
 * of a full run queue racing a steal, a hold released while every worker
 * sleeps.  Such bugs show as a goroutine run twice (or at once on two
 * workers), one never run, a wake-up lost (a hang), a live count off by
 * one; rarely as a crash.
 *
 * How: each round is one sl_main run (so a case runs sl_main many times)
 * with 1 to 4 workers, more than the CPUs being allowed.  Its phases:
 *
 *   chaos   goroutines are spawned by main (in bursts and trickles), by
 *           1 or 2 plain pthreads (bursts and trickles, with sl_go), and
 *           by goroutines themselves (nested up to DEPTH).  Each takes a
 *           slot and does a few random steps: yield, spin a little (with
 *           and without yielding), spawn children, sleep (only in rounds
 *           that allow timers), or park until woken, on a channel
 *           (unbuffered or buffered), a WaitGroup or a mutex, by a waker
 *           goroutine (a request on a channel) or a waker pthread (a
 *           request on a plain queue).  Waker threads hold the scheduler
 *           either per request (the parker calls sl_sched_hold before
 *           posting it, the thread wakes it, maybe after a pause, then
 *           calls sl_sched_release) or, in other rounds, for their whole
 *           life, as do the spawner threads (until main has seen the
 *           phase done): then no release follows a wake-up and hides a
 *           missing one.  Half the rounds have no timer anywhere: an idle
 *           worker then sleeps until somebody signals it, so a lost
 *           wake-up is a hang, not a delay.  Main waits with a plain
 *           sl_waitgroup_wait;
 *   gate    goroutines park on a channel that main closes later;
 *   spread  (2+ workers) a burst of CPU-bound goroutines that spin and
 *           yield;
 *   steal   (2+ workers) a goroutine spawns one, or readies two parked
 *           ones (the second pushes the first out of runnext into the
 *           run queue), then holds its worker until that one has run;
 *   fair    (1 worker) goroutines yielding in a loop, and one sleeping
 *           among them;
 *   abandon main starts goroutines that never end (runnable ones that
 *           yield forever, parked ones on a nil channel, a mutex, a
 *           WaitGroup, a long sleep) and returns.
 *
 * Checked:
 *   - every goroutine spawned runs exactly once, to its end (a slot state
 *     moves SPAWNED -> RUNNING -> DONE by CAS; at the end of the phase
 *     every slot taken is DONE and the counts match);
 *   - a goroutine never runs on two workers at once: an "inside" flag is
 *     taken with an exchange after every yield, park or spin and dropped
 *     before each; its sl_goid() stays what it was at its start, is
 *     above 1 (main's) and unique among the live goroutines (a table of
 *     live ids); sl_worker_id() is in [0, sl_procs()) on goroutines and
 *     -1 on plain threads, where sl_goid() is 0; sl_procs() is the count
 *     asked for, on both;
 *   - wake-ups are not lost: every park ends (a hang is reported by a
 *     watchdog thread after HUNG with the seed, the phase and every
 *     goroutine's wait, and the program aborts); a channel wake delivers
 *     its value;
 *   - sl_numgoroutine() is exact where nobody can be exiting: 1 at the
 *     start of main, 1 + the wakers once they are spawned, that plus
 *     the gate goroutines once all arrived at the gate, that plus the
 *     abandoned ones before main returns; and it comes back to the
 *     wakers' count (within SETTLE) once a WaitGroup says every
 *     goroutine of a phase is done;
 *   - with 2+ workers, a burst of CPU-bound yielding goroutines is seen
 *     on min(workers, 3) workers (within SPREAD_WAIT: a third is woken
 *     only by a spinning worker that found work passing the baton); a
 *     goroutine spawned or readied by one that then holds its worker is
 *     run by another worker (within SPREAD_WAIT);
 *   - with 1 worker, goroutines that yield in a loop advance together (no
 *     one gets more than FAIR_SLACK turns plus a quarter of its own
 *     ahead of the slowest: the global queue's every-61st-tick look
 *     lets one jump the line now and then, which is not starving), and
 *     a sleeper among yielders wakes (not more than STARVE_LATE late);
 *   - main returning over runnable and parked goroutines: sl_main returns
 *     0, soon; then sl_numgoroutine() and sl_procs() are 0, sl_go returns
 *     SL_ESTATE, and the next round's sl_main works;
 *   - a hold keeps the deadlock detector quiet, and its release lets it
 *     report (in a child process: every goroutine parked forever while a
 *     plain thread holds the scheduler; sl_main must return SL_EDEADLOCK
 *     only after the thread's sl_sched_release).
 *
 * Each case runs with 1 to 4 workers and one seed.  A failure prints the
 * seed, worker count and round; SLUICE_CHAOS_SEED=<number> runs every
 * case with that seed instead of the built-in ones, SLUICE_CHAOS_SEED=
 * random with a new one (printed).  The work scales with
 * SLUICE_TEST_SCALE (valgrind runs 2% of it, with floors so that it
 * still tests something); under TSan, where a goroutine costs a fiber,
 * a case runs a quarter of the rounds and the live goroutines stay under
 * slt_max_goroutines().
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define SLT_CHAOS /* CHK, rnd: see sltest.h */
#include "sltest.h"

enum {
	SLOTS = 2048,       /* goroutine records per round, at most */
	CAP_MIN = 256,      /* ... and at least, whatever the scale */
	TOP = 160,          /* top-level spawns by main per round, before
	                       scaling */
	TOP_MIN = 40,       /* ... and at least this many (valgrind) */
	THREAD_SPAWNS = 60, /* spawns per spawner thread, before scaling */
	THREAD_SPAWNS_MIN = 10,
	DEPTH = 4,          /* how deep goroutines spawn goroutines */
	STEPS = 6,          /* most random steps per goroutine */
	WAKERS_MAX = 3,     /* waker goroutines per round, at most */
	WTHREADS_MAX = 2,   /* waker threads per round, at most */
	STHREADS_MAX = 2,   /* spawner threads per round, at most */
	GATE = 64,          /* goroutines at the gate, before scaling */
	GATE_MIN = 16,
	ABANDON = 40,       /* abandoned goroutines, before scaling */
	ABANDON_MIN = 10,
	STEAL = 60,         /* spin-and-wait rounds, before scaling */
	STEAL_MIN = 10,
	FAIR_MAX = 8,       /* yielders in the fairness phase, at most */
	FAIR_ITERS = 400,   /* turns each takes, before scaling */
	FAIR_ITERS_MIN = 50,
	ROUNDS = 8,         /* rounds (sl_main runs) per case */
	ROUNDS_MIN = 4,
	TSAN_DIVISOR = 4,   /* fewer rounds under TSan */
	MAGIC = 0x5ced,     /* what a channel wake carries */
};

#define US SL_MICROSECOND
#define MS SL_MILLISECOND

#define HUNG        (40 * SL_SECOND) /* a phase this long: hung */
#define SETTLE      (5 * SL_SECOND)  /* live count back after a phase */
#define SPREAD_WAIT (10 * SL_SECOND) /* a second worker id seen */
#define STARVE_LATE (5 * SL_SECOND)  /* a sleep among yielders ends */
#define RETURN_WAIT (10 * SL_SECOND) /* sl_main returns after main did */
#define FAIR_SLACK  4                /* turns ahead of the slowest, plus
                                        a quarter of the turns taken */
#define GTAB        (4 * SLOTS)      /* live-id table, a power of two */
#define GTAB_TOMB   UINT64_MAX

/* ---- helpers ------------------------------------------------------------- */

static uint64_t   g_seed;               /* the seed of the running case */
static int        g_procs;              /* its workers */
static atomic_int g_round;              /* the round being run */
static const char *_Atomic g_phase;     /* for the watchdog's report */
static _Atomic int64_t g_deadline;      /* watchdog fires after it; 0:
                                           disarmed */

/* What is running, for failure messages (CHK, sltest.h). */
static void
slt_chaos_where(char *where, size_t len)
{
	snprintf(where, len, "seed 0x%" PRIx64 " procs %d round %d", g_seed,
	    g_procs, atomic_load(&g_round));
}

/* Busy for about us microseconds (holds the worker or thread). */
static void
spin_us(int64_t us)
{
	int64_t end = sl_now() + us * US;

	while (sl_now() < end)
		;
}

/* Out of memory or threads: nothing sensible is left to test. */
static void
fail_msg_abort(const char *what)
{
	fprintf(stderr, "chaos_sched: %s failed\n", what);
	abort();
}

static void
nap_us(int64_t us)
{
	struct timespec ts = { us / 1000000, (long) (us % 1000000) * 1000 };

	if (us > 0)
		nanosleep(&ts, NULL);
}

/* Names the phase being run and gives it HUNG to finish. */
static void
phase(const char *name)
{
	atomic_store(&g_phase, name);
	atomic_store(&g_deadline, sl_now() + HUNG);
}

/* ---- the watchdog -------------------------------------------------------- */

/*
 * A lost wake-up is a hang, and in a round without timers nothing inside
 * the scheduler would ever time it out.  This thread does: a phase not
 * done within HUNG is reported with every goroutine's wait, and the
 * program aborts (nothing else can be done about a hung scheduler).
 */
static atomic_bool wd_stop;

static void *
watchdog(void *arg)
{
	(void) arg;
	while (!atomic_load(&wd_stop)) {
		int64_t d = atomic_load(&g_deadline);

		if (d != 0 && sl_now() > d) {
			fflush(stdout);
			fprintf(stderr, "chaos_sched: HUNG: phase %s of round "
			    "%d not done in %d s (seed 0x%" PRIx64 ", %d "
			    "worker(s)); live goroutines %zu:\n",
			    atomic_load(&g_phase), atomic_load(&g_round),
			    (int) (HUNG / SL_SECOND), g_seed, g_procs,
			    sl_numgoroutine());
			sl_dump_goroutines(stderr);
			fprintf(stderr, "replay with SLUICE_CHAOS_SEED=0x%"
			    PRIx64 " SLUICE_TEST_FILTER='*_%d_worker*'\n",
			    g_seed, g_procs);
			fflush(stderr);
			abort();
		}
		nap_us(50 * 1000);
	}
	return (NULL);
}

/* ---- rounds, slots, the table of live ids -------------------------------- */

enum { S_FREE = 0, S_SPAWNED, S_RUNNING, S_DONE };
enum { BY_MAIN, BY_GOROUTINE, BY_THREAD };
enum { W_CHAN0, W_CHAN1, W_WG, W_MUTEX, W_KINDS };

struct round;

struct slot {
	struct round *rd;
	atomic_int    state;  /* S_* */
	atomic_int    inside; /* 1 while its body runs (not parked) */
	uint64_t      goid;   /* its sl_goid(), from its start */
	uint64_t      seed;   /* its own random steps */
	int           depth;  /* of spawns */
	int           by;     /* BY_* */
	bool          gate;   /* a gate goroutine */
};

/* A goroutine's request to be woken, on its stack while it waits. */
struct req {
	int           kind;   /* W_* */
	sl_chan      *ch;     /* W_CHAN*: the waker sends MAGIC; its ref */
	sl_waitgroup  wg;     /* W_WG: the waker calls done */
	sl_mutex      mu;     /* W_MUTEX: held; the waker unlocks it */
	pthread_t     thr;    /* which waker thread serves it */
	atomic_int    done;   /* the waker no longer touches this */
};

struct stats {
	atomic_long spawned[3];  /* BY_* */
	atomic_long finished;
	atomic_long yields, spins, sleeps;
	atomic_long parks_g[W_KINDS], parks_t[W_KINDS];
	atomic_long moved;       /* resumed on another worker */
	atomic_long nospace;     /* spawns skipped: no slot left */
	long        rounds, quiet, abandoned, spread, fair;
};

struct round {
	int           idx;
	int           procs;
	uint64_t      seed;
	bool          timers;   /* sleeps allowed */
	int           cap;      /* slots it may use */
	struct slot  *slots;
	atomic_int    nslots;   /* taken */
	sl_waitgroup  wg;       /* the chaos (or gate) goroutines */
	atomic_ullong gtab[GTAB];
	struct stats *st;

	/* waker goroutines */
	sl_chan      *reqs;     /* struct req * */
	int           nwakers;
	sl_waitgroup  wakers_wg;

	/* waker threads: a plain queue */
	pthread_mutex_t tq_mu;
	pthread_cond_t  tq_cv;
	struct req    **tq;     /* a ring of cap */
	unsigned        tq_head, tq_len;
	bool            tq_stop;
	bool            s_stop;   /* spawner threads may go */
	pthread_cond_t  s_cv;     /* ... told here (tq_mu) */
	bool            lifehold; /* waker threads hold the scheduler
	                             while they live, not per request */
	int             nwthreads;
	pthread_t       wthreads[WTHREADS_MAX];
	atomic_uint     wseed;

	/* spawner threads */
	int             nsthreads;
	pthread_t       sthreads[STHREADS_MAX];
	uint64_t        sseed[STHREADS_MAX];
	long            sper;   /* spawns per spawner thread */

	/* gate */
	sl_chan        *gate;
	atomic_int      arrived;

	/* abandon: what the parked ones wait on, freed after sl_main */
	sl_mutex        amu;
	sl_waitgroup    awg;
	int64_t         main_returned;
	int             nabandon;
};

static unsigned
gtab_hash(uint64_t id)
{
	return ((unsigned) ((id * 0x9e3779b97f4a7c15ULL) >> 40) & (GTAB - 1));
}

/* Notes id as live; a live duplicate is a failure. */
static void
gtab_add(struct round *rd, uint64_t id)
{
	for (unsigned h = gtab_hash(id), n = 0; n < GTAB;) {
		unsigned long long v = atomic_load(&rd->gtab[h]);

		if (v == id) {
			CHK(0, "goroutine id %" PRIu64 " is live twice", id);
			return;
		}
		if (v == 0) {
			if (atomic_compare_exchange_strong(&rd->gtab[h], &v,
			    id))
				return;
			continue; /* taken meanwhile: look at it again */
		}
		h = (h + 1) & (GTAB - 1);
		n++;
	}
	CHK(0, "live-id table full");
}

static void
gtab_del(struct round *rd, uint64_t id)
{
	for (unsigned h = gtab_hash(id), n = 0; n < GTAB; n++) {
		unsigned long long v = atomic_load(&rd->gtab[h]);

		if (v == id) {
			atomic_store(&rd->gtab[h], GTAB_TOMB);
			return;
		}
		if (v == 0)
			break;
		h = (h + 1) & (GTAB - 1);
	}
	CHK(0, "goroutine id %" PRIu64 " not in the live table", id);
}

/* ---- being inside a goroutine ------------------------------------------- */

/* Where the caller runs: a goroutine of this scheduler, on a worker. */
static int
check_here(struct slot *s)
{
	int wid = sl_worker_id();

	CHK(sl_goid() == s->goid, "goroutine id changed from %" PRIu64 " to %"
	    PRIu64, s->goid, sl_goid());
	CHK(wid >= 0 && wid < sl_procs(), "sl_worker_id() %d with %d "
	    "worker(s)", wid, sl_procs());
	CHK(sl_procs() == s->rd->procs, "sl_procs() %d, want %d", sl_procs(),
	    s->rd->procs);
	return (wid);
}

/* Back from a switch: nobody else may be running this goroutine. */
static int
enter(struct slot *s, int before)
{
	int old = atomic_exchange(&s->inside, 1);
	int wid;

	CHK(old == 0, "goroutine %" PRIu64 " resumed while running "
	    "elsewhere", s->goid);
	wid = check_here(s);
	if (before >= 0 && wid != before)
		atomic_fetch_add(&s->rd->st->moved, 1);
	return (wid);
}

/* About to switch out. */
static void
leave(struct slot *s)
{
	int old = atomic_exchange(&s->inside, 0);

	CHK(old == 1, "goroutine %" PRIu64 " was not inside (%d)", s->goid,
	    old);
}

/* Plain threads: no goroutine, no worker. */
static void
check_thread(struct round *rd)
{
	CHK(sl_goid() == 0, "sl_goid() %" PRIu64 " on a plain thread",
	    sl_goid());
	CHK(sl_worker_id() == -1, "sl_worker_id() %d on a plain thread",
	    sl_worker_id());
	CHK(sl_procs() == rd->procs, "sl_procs() %d on a plain thread, want "
	    "%d", sl_procs(), rd->procs);
}

/* ---- spawning ------------------------------------------------------------ */

static void chaos_g(void *arg);

/* Takes a slot and starts a goroutine in it; false if none is left.
 * counted: the caller added it to rd->wg already. */
static bool
spawn(struct round *rd, int depth, int by, uint64_t seed, bool gate,
    bool counted)
{
	int i = atomic_fetch_add(&rd->nslots, 1);
	struct slot *s;
	int rv;

	if (i >= rd->cap) {
		atomic_fetch_sub(&rd->nslots, 1);
		atomic_fetch_add(&rd->st->nospace, 1);
		return (false);
	}
	s = &rd->slots[i];
	s->rd = rd;
	s->depth = depth;
	s->by = by;
	s->seed = seed;
	s->gate = gate;
	atomic_store(&s->state, S_SPAWNED);
	if (!counted)
		sl_waitgroup_add(&rd->wg, 1);
	atomic_fetch_add(&rd->st->spawned[by], 1);
	if ((rv = sl_go(chaos_g, s)) != 0) {
		CHK(0, "sl_go returned %s", sl_errname(rv));
		/* As if it ran, so that the phase still ends. */
		atomic_store(&s->state, S_DONE);
		sl_waitgroup_done(&rd->wg);
		return (false);
	}
	return (true);
}

/* ---- wakers -------------------------------------------------------------- */

static void
wake(struct req *q)
{
	int v = MAGIC;

	switch (q->kind) {
	case W_CHAN0:
	case W_CHAN1:
		CHK(sl_chan_send(q->ch, &v) == 0, "wake send failed");
		sl_chan_release(q->ch);
		break;
	case W_WG:
		sl_waitgroup_done(&q->wg);
		break;
	case W_MUTEX:
		sl_mutex_unlock(&q->mu);
		break;
	}
	atomic_store(&q->done, 1);
}

static void
waker_g(void *arg)
{
	struct round *rd = arg;
	uint64_t x = rd->seed ^ (uint64_t) sl_goid() << 32;
	struct req *q;

	while (sl_chan_recv(rd->reqs, &q) == 0) {
		int wid = sl_worker_id();

		CHK(wid >= 0 && wid < rd->procs, "waker on worker %d", wid);
		switch (rnd(&x, 4)) {
		case 0:
			sl_yield();
			break;
		case 1:
			spin_us(rnd(&x, 20));
			break;
		default:
			break;
		}
		wake(q);
	}
	sl_waitgroup_done(&rd->wakers_wg);
}

/* Serves requests from the plain queue.  Every request came with a hold
 * (taken by the parker before posting it): the thread drops it once the
 * goroutine is woken, so the scheduler is held exactly while a thread is
 * about to wake somebody. */
static void *
waker_thread(void *arg)
{
	struct round *rd = arg;
	uint64_t x = rd->seed ^ atomic_fetch_add(&rd->wseed, 0x1234567);

	check_thread(rd);
	pthread_mutex_lock(&rd->tq_mu);
	for (;;) {
		while (rd->tq_len == 0 && !rd->tq_stop)
			pthread_cond_wait(&rd->tq_cv, &rd->tq_mu);
		if (rd->tq_len == 0)
			break;
		struct req *q = rd->tq[rd->tq_head];
		rd->tq_head = (rd->tq_head + 1) % (unsigned) rd->cap;
		rd->tq_len--;
		pthread_mutex_unlock(&rd->tq_mu);

		switch (rnd(&x, 4)) {
		case 0:
			nap_us(rnd(&x, 300));
			break;
		case 1:
			sched_yield();
			break;
		default:
			break;
		}
		wake(q);
		if (!rd->lifehold)
			sl_sched_release();
		pthread_mutex_lock(&rd->tq_mu);
	}
	pthread_mutex_unlock(&rd->tq_mu);
	if (rd->lifehold)
		sl_sched_release(); /* main's sl_sched_hold for it */
	return (NULL);
}

/* Parks s until a waker goroutine (or thread) wakes it. */
static void
park(struct slot *s, uint64_t *x)
{
	struct round *rd = s->rd;
	struct req q;
	bool by_thread = rd->nwthreads > 0 && rnd(x, 2) == 0;
	int v = 0, wid;

	memset(&q, 0, sizeof(q));
	q.kind = (int) rnd(x, W_KINDS);
	switch (q.kind) {
	case W_CHAN0:
	case W_CHAN1:
		q.ch = sl_chan_make(sizeof(int), q.kind == W_CHAN1 ? 1 : 0);
		CHK(q.ch != NULL, "sl_chan_make failed");
		if (q.ch == NULL)
			return;
		sl_chan_retain(q.ch); /* the waker's */
		break;
	case W_WG:
		sl_waitgroup_add(&q.wg, 1);
		break;
	case W_MUTEX:
		sl_mutex_lock(&q.mu); /* free: does not park */
		break;
	}
	atomic_fetch_add(by_thread ? &rd->st->parks_t[q.kind] :
	    &rd->st->parks_g[q.kind], 1);
	wid = sl_worker_id();
	leave(s);
	if (by_thread) {
		if (!rd->lifehold)
			sl_sched_hold();
		pthread_mutex_lock(&rd->tq_mu);
		rd->tq[(rd->tq_head + rd->tq_len) % (unsigned) rd->cap] = &q;
		rd->tq_len++;
		pthread_cond_signal(&rd->tq_cv);
		pthread_mutex_unlock(&rd->tq_mu);
	} else {
		struct req *qp = &q;

		CHK(sl_chan_send(rd->reqs, &qp) == 0, "request send failed");
	}
	switch (q.kind) {
	case W_CHAN0:
	case W_CHAN1:
		CHK(sl_chan_recv(q.ch, &v) == 0 && v == MAGIC, "channel wake "
		    "gave %d", v);
		break;
	case W_WG:
		sl_waitgroup_wait(&q.wg);
		break;
	case W_MUTEX:
		sl_mutex_lock(&q.mu); /* handed over by the waker's unlock */
		sl_mutex_unlock(&q.mu);
		break;
	}
	/* The waker may still be in its wake call: q lives on this stack. */
	while (!atomic_load(&q.done))
		sl_yield();
	enter(s, wid);
	if (q.ch != NULL)
		sl_chan_release(q.ch);
}

/* ---- the chaos goroutines ------------------------------------------------ */

static void
chaos_g(void *arg)
{
	struct slot *s = arg;
	struct round *rd = s->rd;
	int expect = S_SPAWNED, wid;
	uint64_t x = s->seed;

	CHK(atomic_compare_exchange_strong(&s->state, &expect, S_RUNNING),
	    "slot %d started in state %d (run twice?)",
	    (int) (s - rd->slots), expect);
	s->goid = sl_goid();
	CHK(s->goid > 1, "goroutine id %" PRIu64 " (1 is main)", s->goid);
	gtab_add(rd, s->goid);
	wid = enter(s, -1);

	if (s->gate) {
		/* Parks until main closes the gate: nobody of the phase can
		 * exit before then. */
		atomic_fetch_add(&rd->arrived, 1);
		leave(s);
		CHK(sl_chan_recv(rd->gate, NULL) == SL_ECLOSED,
		    "gate recv did not see the close");
		wid = enter(s, wid);
	}

	for (int n = (int) rnd(&x, STEPS + 1); n > 0 && !s->gate; n--) {
		switch (rnd(&x, 8)) {
		case 0:
		case 1:
		case 4:
			atomic_fetch_add(&rd->st->yields, 1);
			leave(s);
			sl_yield();
			wid = enter(s, wid);
			break;
		case 2:
			/* Holds the worker a moment: thieves get to the
			 * queue behind it. */
			atomic_fetch_add(&rd->st->spins, 1);
			spin_us(rnd(&x, 30));
			check_here(s);
			break;
		case 3:
			/* About one child each (a burst now and then), so
			 * that the trees neither die out nor fill the
			 * slots. */
			if (s->depth < DEPTH) {
				int k = rnd(&x, 8) == 0 ? 4 + (int) rnd(&x,
				    12) : 1 + (int) rnd(&x, 2);

				for (int i = 0; i < k; i++)
					(void) spawn(rd, s->depth + 1,
					    BY_GOROUTINE, slt_rnd(&x), false,
					    false);
			}
			break;
		case 5:
			if (rd->timers) {
				atomic_fetch_add(&rd->st->sleeps, 1);
				leave(s);
				sl_sleep((int64_t) rnd(&x, 200) * US);
				wid = enter(s, wid);
				break;
			}
			/* FALLTHROUGH */
		default:
			park(s, &x);
			wid = sl_worker_id();
			break;
		}
	}

	gtab_del(rd, s->goid);
	expect = S_RUNNING;
	CHK(atomic_compare_exchange_strong(&s->state, &expect, S_DONE),
	    "slot %d ended in state %d", (int) (s - rd->slots), expect);
	leave(s);
	atomic_fetch_add(&rd->st->finished, 1);
	sl_waitgroup_done(&rd->wg);
}

/* ---- spawner threads ----------------------------------------------------- */

static void *
spawner_thread(void *arg)
{
	struct round *rd = ((void **) arg)[0];
	uint64_t x = *(uint64_t *) ((void **) arg)[1];
	bool trickle = rnd(&x, 2) == 0;

	check_thread(rd);
	for (long i = 0; i < rd->sper; i++) {
		if (!spawn(rd, 1, BY_THREAD, slt_rnd(&x), false, true)) {
			for (; i < rd->sper; i++)
				sl_waitgroup_done(&rd->wg);
			break;
		}
		if (trickle && rnd(&x, 4) == 0)
			nap_us(rnd(&x, 100));
		else if (rnd(&x, 16) == 0)
			sched_yield();
	}
	free(arg);
	/* Held until main has seen every goroutine of the phase done: were
	 * a spawn queued and no worker told, nothing else would wake one
	 * (no timer, no release) and main's wait would hang. */
	pthread_mutex_lock(&rd->tq_mu);
	while (!rd->s_stop)
		pthread_cond_wait(&rd->s_cv, &rd->tq_mu);
	pthread_mutex_unlock(&rd->tq_mu);
	sl_sched_release(); /* main's sl_sched_hold for it */
	return (NULL);
}

static void
join_fn(void *arg)
{
	CHK(pthread_join(*(pthread_t *) arg, NULL) == 0, "pthread_join");
}

/* ---- quiescent checks ---------------------------------------------------- */

/* The live count, once the goroutines that said done have returned: back
 * to want within SETTLE, then exactly want.  In rounds without timers it
 * yields instead of sleeping (a sleep would be a timer). */
static void
settle(struct round *rd, size_t want, const char *what)
{
	int64_t end = sl_now() + SETTLE;
	size_t n;

	while ((n = sl_numgoroutine()) != want && sl_now() < end) {
		if (rd->timers)
			sl_sleep(20 * US);
		else
			sl_yield();
	}
	CHK(n == want, "after %s: sl_numgoroutine() %zu, want %zu", what, n,
	    want);
}

/* Every slot taken ran to its end, exactly once. */
static void
check_slots(struct round *rd, const char *what)
{
	int n = atomic_load(&rd->nslots), done = 0;

	for (int i = 0; i < n; i++) {
		int st = atomic_load(&rd->slots[i].state);

		CHK(st == S_DONE, "%s: slot %d in state %d after the wait",
		    what, i, st);
		CHK(atomic_load(&rd->slots[i].inside) == 0, "%s: slot %d "
		    "still inside", what, i);
		done += st == S_DONE;
	}
	CHK(done == n, "%s: %d of %d goroutines done", what, done, n);
}

/* ---- phases -------------------------------------------------------------- */

static void
phase_chaos(struct round *rd, size_t base)
{
	uint64_t x = rd->seed;
	long top = slt_scaled_min(TOP, TOP_MIN);

	phase("chaos");
	rd->nsthreads = (int) rnd(&x, STHREADS_MAX + 1);
	rd->sper = slt_scaled_min(THREAD_SPAWNS, THREAD_SPAWNS_MIN);
	for (int i = 0; i < rd->nsthreads; i++) {
		void **a = malloc(2 * sizeof(void *));

		rd->sseed[i] = slt_rnd(&x);
		if (a == NULL)
			fail_msg_abort("malloc");
		a[0] = rd;
		a[1] = &rd->sseed[i];
		/* Its goroutines counted in advance, so that main's wait
		 * cannot end before the thread has spawned them; the thread
		 * may wake the scheduler, so it holds it (the header's
		 * rule for event sources outside goroutines). */
		sl_waitgroup_add(&rd->wg, rd->sper);
		sl_sched_hold();
		if (pthread_create(&rd->sthreads[i], NULL, spawner_thread,
		    a) != 0)
			fail_msg_abort("pthread_create");
	}

	/* Main: bursts (spawns back to back: the run queue fills and
	 * spills to the global one) and trickles (a yield or a pause
	 * between: idle workers get woken one spawn at a time). */
	for (long i = 0; i < top;) {
		long k = rnd(&x, 2) == 0 ? 1 + rnd(&x, 64) : 1 + rnd(&x, 3);

		for (long j = 0; j < k && i < top; j++, i++)
			(void) spawn(rd, 0, BY_MAIN, slt_rnd(&x), false,
			    false);
		switch (rnd(&x, 4)) {
		case 0:
			sl_yield();
			break;
		case 1:
			spin_us(rnd(&x, 50));
			break;
		case 2:
			if (rd->timers)
				sl_sleep((int64_t) rnd(&x, 100) * US);
			break;
		default:
			break;
		}
	}
	/* No timer here: a lost wake-up hangs this, and the watchdog
	 * tells. */
	sl_waitgroup_wait(&rd->wg);
	pthread_mutex_lock(&rd->tq_mu);
	rd->s_stop = true;
	pthread_cond_broadcast(&rd->s_cv);
	pthread_mutex_unlock(&rd->tq_mu);
	for (int i = 0; i < rd->nsthreads; i++)
		SL_CHECK_OK(sl_blocking(join_fn, &rd->sthreads[i]));
	check_slots(rd, "chaos");
	CHK(atomic_load(&rd->st->finished) >= atomic_load(&rd->nslots),
	    "finished count");
	settle(rd, base, "chaos");
}

/* Goroutines parked at a gate: the live count is exact there. */
static void
phase_gate(struct round *rd, size_t base)
{
	uint64_t x = rd->seed ^ 0x9a7e;
	int n = (int) slt_scaled_min(GATE, GATE_MIN), got = 0;
	size_t live;

	phase("gate");
	if (n > rd->cap - atomic_load(&rd->nslots))
		n = rd->cap - atomic_load(&rd->nslots);
	rd->gate = sl_chan_make(0, 0);
	CHK(rd->gate != NULL, "sl_chan_make");
	if (rd->gate == NULL)
		return;
	for (int i = 0; i < n; i++) {
		got += spawn(rd, DEPTH, BY_MAIN, slt_rnd(&x), true, false);
		if (rnd(&x, 8) == 0)
			sl_yield();
	}
	live = sl_numgoroutine();
	CHK(live == base + (size_t) got, "gate: sl_numgoroutine() %zu right "
	    "after %d spawns, want %zu", live, got, base + (size_t) got);
	while (atomic_load(&rd->arrived) < got)
		sl_yield();
	live = sl_numgoroutine();
	CHK(live == base + (size_t) got, "gate: sl_numgoroutine() %zu with "
	    "%d at the gate, want %zu", live, got, base + (size_t) got);
	sl_chan_close(rd->gate);
	sl_waitgroup_wait(&rd->wg);
	check_slots(rd, "gate");
	settle(rd, base, "gate");
	sl_chan_release(rd->gate);
	rd->gate = NULL;
}

/* ---- spread -------------------------------------------------------------- */

struct spread {
	atomic_uint  seen;   /* worker ids, a bit each */
	int          want;   /* how many ids to see */
	atomic_bool  stop;
	int64_t      end;
	sl_waitgroup wg;
};

static void
spread_g(void *arg)
{
	struct spread *sp = arg;

	while (!atomic_load(&sp->stop)) {
		int wid = sl_worker_id();

		if (wid >= 0 && wid < 32)
			atomic_fetch_or(&sp->seen, 1u << wid);
		if (__builtin_popcount(atomic_load(&sp->seen)) >= sp->want ||
		    sl_now() > sp->end)
			atomic_store(&sp->stop, true);
		spin_us(200);
		sl_yield();
	}
	sl_waitgroup_done(&sp->wg);
}

static void
phase_spread(struct round *rd, size_t base)
{
	struct spread sp;
	int n = 4 * rd->procs;

	phase("spread");
	memset(&sp, 0, sizeof(sp));
	sp.want = rd->procs < 3 ? rd->procs : 3;
	sp.end = sl_now() + SPREAD_WAIT;
	sl_waitgroup_add(&sp.wg, n);
	/* In one burst, so that most spawns find a worker already
	 * spinning and wake nobody: a third worker then joins only if the
	 * spinning one, having found work, wakes the next (yields wake
	 * nobody). */
	for (int i = 0; i < n; i++)
		SL_CHECK_OK(sl_go(spread_g, &sp));
	sl_waitgroup_wait(&sp.wg);
	CHK(__builtin_popcount(atomic_load(&sp.seen)) >= sp.want, "spread: "
	    "%d CPU-bound goroutines ran only on worker(s) 0x%x in %d s, "
	    "want %d workers", n, atomic_load(&sp.seen),
	    (int) (SPREAD_WAIT / SL_SECOND), sp.want);
	settle(rd, base, "spread");
	rd->st->spread++;
}

/* ---- steal: work readied by a busy worker (2+ workers) ------------------ */

/*
 * A goroutine that holds its worker (spins without a switch) after it
 * spawned one goroutine, or readied two (the second pushes the first out
 * of runnext into the run queue): what it made runnable must run on
 * another worker meanwhile, since others are idle.  Nothing but the
 * wake-up that goes with the push gets an idle worker to look (no timer
 * runs here), so a missing one leaves the spinner waiting for good.
 */
struct steal {
	sl_chan     *cb, *cc;   /* cap 1: B and C wait on them */
	atomic_int   arrived;   /* B and C about to receive */
	atomic_bool  ran_b, ran_d;
	bool         failed;    /* give up the phase after one miss */
	int          how;       /* 0: spawn D; 1: ready B and C */
	sl_waitgroup wg;
};

static void
steal_b(void *arg)
{
	struct steal *t = arg;

	atomic_fetch_add(&t->arrived, 1);
	CHK(sl_chan_recv(t->cb, NULL) == 0, "steal: B's receive");
	atomic_store(&t->ran_b, true);
	sl_waitgroup_done(&t->wg);
}

static void
steal_c(void *arg)
{
	struct steal *t = arg;

	atomic_fetch_add(&t->arrived, 1);
	CHK(sl_chan_recv(t->cc, NULL) == 0, "steal: C's receive");
	sl_waitgroup_done(&t->wg);
}

static void
steal_d(void *arg)
{
	struct steal *t = arg;

	atomic_store(&t->ran_d, true);
	sl_waitgroup_done(&t->wg);
}

static void
steal_a(void *arg)
{
	struct steal *t = arg;
	atomic_bool *flag = t->how == 0 ? &t->ran_d : &t->ran_b;
	int64_t end;

	if (t->how == 0) {
		sl_waitgroup_add(&t->wg, 1);
		SL_CHECK_OK(sl_go(steal_d, t));
	} else {
		CHK(sl_chan_send(t->cb, NULL) == 0, "steal: send to B");
		CHK(sl_chan_send(t->cc, NULL) == 0, "steal: send to C");
	}
	end = sl_now() + SPREAD_WAIT;
	while (!atomic_load(flag) && sl_now() < end)
		;
	if (!atomic_load(flag)) {
		t->failed = true;
		CHK(0, "steal: %s not run by the idle worker(s) in %d s while "
		    "its %s held its worker", t->how == 0 ? "a spawned "
		    "goroutine" : "a goroutine readied then pushed out of "
		    "runnext", (int) (SPREAD_WAIT / SL_SECOND), t->how == 0 ?
		    "spawner" : "waker");
	}
	sl_waitgroup_done(&t->wg);
}

static void
phase_steal(struct round *rd, size_t base)
{
	uint64_t x = rd->seed ^ 0x57ea1;
	int n = (int) slt_scaled_min(STEAL, STEAL_MIN);
	struct steal t;

	phase("steal");
	memset(&t, 0, sizeof(t));
	t.cb = sl_chan_make(0, 1);
	t.cc = sl_chan_make(0, 1);
	CHK(t.cb != NULL && t.cc != NULL, "sl_chan_make");
	for (int i = 0; i < n && !t.failed && t.cb != NULL && t.cc != NULL;
	    i++) {
		t.how = (int) rnd(&x, 2);
		atomic_store(&t.ran_b, false);
		atomic_store(&t.ran_d, false);
		atomic_store(&t.arrived, 0);
		if (t.how == 1) {
			sl_waitgroup_add(&t.wg, 2);
			SL_CHECK_OK(sl_go(steal_b, &t));
			SL_CHECK_OK(sl_go(steal_c, &t));
			while (atomic_load(&t.arrived) < 2)
				sl_yield();
		}
		sl_waitgroup_add(&t.wg, 1);
		SL_CHECK_OK(sl_go(steal_a, &t));
		sl_waitgroup_wait(&t.wg);
	}
	sl_chan_release(t.cb);
	sl_chan_release(t.cc);
	settle(rd, base, "steal");
}

/* ---- fairness (1 worker) ------------------------------------------------- */

struct fair {
	int          k, iters;
	atomic_int   started;
	atomic_int   turns[FAIR_MAX];
	atomic_bool  slept;  /* the sleeper is done */
	atomic_long  spins;  /* the spinners' yields while it slept */
	sl_waitgroup wg;
};

struct fair_arg {
	struct fair *f;
	int          i;
};

/* Yields in a loop, in step with the others: with one worker and yield
 * going behind everything else, nobody gets far ahead. */
static void
fair_g(void *arg)
{
	struct fair_arg *a = arg;
	struct fair *f = a->f;

	atomic_fetch_add(&f->started, 1);
	while (atomic_load(&f->started) < f->k)
		sl_yield();
	for (int t = 1; t <= f->iters; t++) {
		int min = INT_MAX;

		atomic_store(&f->turns[a->i], t);
		for (int j = 0; j < f->k; j++) {
			int v = atomic_load(&f->turns[j]);

			if (v < min)
				min = v;
		}
		CHK(t - min <= FAIR_SLACK + t / 4, "fair: yielder %d at "
		    "turn %d, another still at %d", a->i, t, min);
		sl_yield();
	}
	sl_waitgroup_done(&f->wg);
}

static void
fair_spinner(void *arg)
{
	struct fair *f = arg;

	while (!atomic_load(&f->slept)) {
		atomic_fetch_add(&f->spins, 1);
		sl_yield();
	}
	sl_waitgroup_done(&f->wg);
}

static void
fair_sleeper(void *arg)
{
	struct fair *f = arg;

	for (int i = 0; i < 3; i++) {
		int64_t t0 = sl_now();

		sl_sleep(200 * US);
		CHK(sl_now() - t0 < STARVE_LATE, "fair: a 200 us sleep among "
		    "yielders took %.3f s", (double) (sl_now() - t0) /
		    SL_SECOND);
	}
	atomic_store(&f->slept, true);
	sl_waitgroup_done(&f->wg);
}

static void
phase_fair(struct round *rd, size_t base)
{
	struct fair f;
	struct fair_arg a[FAIR_MAX];
	uint64_t x = rd->seed ^ 0xfa1;

	phase("fair");
	memset(&f, 0, sizeof(f));
	f.k = 2 + (int) rnd(&x, FAIR_MAX - 1);
	f.iters = (int) slt_scaled_min(FAIR_ITERS, FAIR_ITERS_MIN);
	sl_waitgroup_add(&f.wg, f.k);
	for (int i = 0; i < f.k; i++) {
		a[i].f = &f;
		a[i].i = i;
		SL_CHECK_OK(sl_go(fair_g, &a[i]));
	}
	sl_waitgroup_wait(&f.wg);

	if (rd->timers) {
		int k = 1 + (int) rnd(&x, 4);

		sl_waitgroup_add(&f.wg, k + 1);
		for (int i = 0; i < k; i++)
			SL_CHECK_OK(sl_go(fair_spinner, &f));
		SL_CHECK_OK(sl_go(fair_sleeper, &f));
		sl_waitgroup_wait(&f.wg);
	}
	settle(rd, base, "fair");
	rd->st->fair++;
}

/* ---- abandon ------------------------------------------------------------- */

static void
ab_yield(void *arg)
{
	(void) arg;
	for (;;)
		sl_yield();
}

static void
ab_nil(void *arg)
{
	(void) arg;
	(void) sl_chan_recv(NULL, NULL);
	CHK(0, "a receive on the nil channel returned");
}

static void
ab_mutex(void *arg)
{
	struct round *rd = arg;

	sl_mutex_lock(&rd->amu); /* main holds it and returns */
	CHK(0, "abandoned mutex locked");
}

static void
ab_wg(void *arg)
{
	struct round *rd = arg;

	sl_waitgroup_wait(&rd->awg);
	CHK(0, "abandoned WaitGroup wait returned");
}

static void
ab_sleep(void *arg)
{
	(void) arg;
	sl_sleep(3600 * SL_SECOND);
}

/* Spawns the next of a chain, then yields forever: when main returns,
 * some of the chain are runnable, some running, some not yet started. */
static void
ab_chain(void *arg)
{
	intptr_t left = (intptr_t) arg;

	if (left > 0) {
		int rv = sl_go(ab_chain, (void *) (left - 1));

		CHK(rv == 0 || rv == SL_ESTATE, "chain sl_go: %s",
		    sl_errname(rv));
	}
	for (;;)
		sl_yield();
}

static void
phase_abandon(struct round *rd)
{
	uint64_t x = rd->seed ^ 0xab;
	int n = (int) slt_scaled_min(ABANDON, ABANDON_MIN);
	size_t live;

	phase("abandon");
	sl_mutex_lock(&rd->amu);
	sl_waitgroup_add(&rd->awg, 1);
	for (int i = 0; i < n; i++) {
		switch (rnd(&x, rd->timers ? 6 : 5)) {
		case 0:
			SL_CHECK_OK(sl_go(ab_yield, NULL));
			break;
		case 1:
			SL_CHECK_OK(sl_go(ab_nil, NULL));
			break;
		case 2:
			SL_CHECK_OK(sl_go(ab_mutex, rd));
			break;
		case 3:
			SL_CHECK_OK(sl_go(ab_wg, rd));
			break;
		case 4:
			SL_CHECK_OK(sl_go(ab_chain, NULL));
			break;
		default:
			SL_CHECK_OK(sl_go(ab_sleep, NULL));
			break;
		}
	}
	live = sl_numgoroutine();
	CHK(live == 1 + (size_t) n, "abandon: sl_numgoroutine() %zu, want %d",
	    live, 1 + n);
	/* Longer chains now: they grow while main returns. */
	for (int i = 0; i < 2; i++)
		SL_CHECK_OK(sl_go(ab_chain, (void *) (intptr_t) rnd(&x, 50)));
	rd->nabandon = n + 2;
	switch (rnd(&x, 3)) {
	case 0:
		sl_yield();
		break;
	case 1:
		spin_us(rnd(&x, 100));
		break;
	default:
		break;
	}
	rd->main_returned = sl_now();
}

/* ---- a round ------------------------------------------------------------- */

static void
round_body(void *arg)
{
	struct round *rd = arg;
	uint64_t x = rd->seed ^ 0x77;
	size_t base;

	phase("start");
	CHK(sl_goid() == 1, "main's id %" PRIu64, sl_goid());
	CHK(sl_procs() == rd->procs, "sl_procs() %d, want %d", sl_procs(),
	    rd->procs);
	CHK(sl_numgoroutine() == 1, "sl_numgoroutine() %zu at main's start",
	    sl_numgoroutine());

	rd->reqs = sl_chan_make(sizeof(struct req *), 1 + rnd(&x, 16));
	CHK(rd->reqs != NULL, "sl_chan_make");
	if (rd->reqs == NULL)
		return;
	rd->nwakers = 1 + (int) rnd(&x, WAKERS_MAX);
	sl_waitgroup_add(&rd->wakers_wg, rd->nwakers);
	for (int i = 0; i < rd->nwakers; i++)
		SL_CHECK_OK(sl_go(waker_g, rd));
	base = 1 + (size_t) rd->nwakers;
	CHK(sl_numgoroutine() == base, "sl_numgoroutine() %zu with %d "
	    "wakers", sl_numgoroutine(), rd->nwakers);
	rd->nwthreads = (int) rnd(&x, WTHREADS_MAX + 1);
	rd->lifehold = rnd(&x, 2) == 0;
	for (int i = 0; i < rd->nwthreads; i++) {
		if (rd->lifehold)
			sl_sched_hold();
		if (pthread_create(&rd->wthreads[i], NULL, waker_thread,
		    rd) != 0)
			fail_msg_abort("pthread_create");
	}

	phase_chaos(rd, base);
	phase_gate(rd, base);
	if (rd->procs >= 2) {
		phase_spread(rd, base);
		phase_steal(rd, base);
	}
	if (rd->procs == 1)
		phase_fair(rd, base);

	/* The wakers go: the goroutines by the close, the threads told. */
	phase("wakers");
	sl_chan_close(rd->reqs);
	sl_waitgroup_wait(&rd->wakers_wg);
	pthread_mutex_lock(&rd->tq_mu);
	rd->tq_stop = true;
	pthread_cond_broadcast(&rd->tq_cv);
	pthread_mutex_unlock(&rd->tq_mu);
	for (int i = 0; i < rd->nwthreads; i++)
		SL_CHECK_OK(sl_blocking(join_fn, &rd->wthreads[i]));
	settle(rd, 1, "the wakers' exit");
	sl_chan_release(rd->reqs);
	rd->reqs = NULL;

	phase_abandon(rd);
	phase("return");
}

/* ---- holds and the deadlock detector (in a child) ------------------------ */

struct holdt {
	int         procs;
	uint64_t    seed;
	atomic_bool released;
};

static void *
hold_thread(void *arg)
{
	struct holdt *h = arg;
	uint64_t x = h->seed;

	/* Every goroutine is parked for good meanwhile: only the hold
	 * keeps that from being reported. */
	nap_us(1000 + rnd(&x, 20000));
	atomic_store(&h->released, true);
	sl_sched_release();
	return (NULL);
}

static void
hold_body(void *arg)
{
	struct holdt *h = arg;
	uint64_t x = h->seed;
	pthread_t th;
	int n = (int) rnd(&x, 8);

	for (int i = 0; i < n; i++)
		(void) sl_go(ab_nil, NULL);
	sl_sched_hold();
	if (pthread_create(&th, NULL, hold_thread, h) != 0)
		_exit(5);
	pthread_detach(th);
	(void) sl_chan_recv(NULL, NULL);
}

static void
hold_child(void *arg)
{
	struct holdt *h = arg;
	sl_opts o;
	int rv;

	alarm(30); /* a release that wakes nobody hangs: die instead */
	memset(&o, 0, sizeof(o));
	o.procs = h->procs;
	rv = sl_main_opts(&o, hold_body, h);
	if (rv != SL_EDEADLOCK)
		_exit(3);
	if (!atomic_load(&h->released))
		_exit(4);
	_exit(0);
}

static void
check_hold_release(int procs, uint64_t seed)
{
	struct holdt h;
	slt_child res;
	char buf[64];

	memset(&h, 0, sizeof(h));
	h.procs = procs;
	h.seed = seed;
	if (slt_fork(hold_child, &h, &res) != 0) {
		CHK(0, "fork failed");
		return;
	}
	CHK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
	    "hold/release child %s (3: sl_main did not report the deadlock, "
	    "4: reported it during the hold); stderr:\n%s",
	    slt_status_str(res.status, buf, sizeof(buf)), res.err);
	CHK(strstr(res.err, "deadlock") != NULL, "no deadlock report after "
	    "the release: %s", res.err);
}

/* ---- cases --------------------------------------------------------------- */

struct cs_case {
	int      procs;
	uint64_t seed;
};

static void
print_stats(struct stats *st, uint64_t seed, int procs, double secs)
{
	printf("chaos_sched seed 0x%" PRIx64 " procs %d: %ld rounds (%ld "
	    "without timers) in %.2f s: spawned %ld by main, %ld by "
	    "goroutines, %ld by threads (%ld refused for room), %ld "
	    "finished; %ld yields, %ld spins, %ld sleeps, %ld moved; parks "
	    "woken by goroutines chan0/chan1/wg/mutex %ld/%ld/%ld/%ld, by "
	    "threads %ld/%ld/%ld/%ld; %ld spread, %ld fair, %ld abandoned\n",
	    seed, procs, st->rounds, st->quiet, secs,
	    atomic_load(&st->spawned[BY_MAIN]),
	    atomic_load(&st->spawned[BY_GOROUTINE]),
	    atomic_load(&st->spawned[BY_THREAD]), atomic_load(&st->nospace),
	    atomic_load(&st->finished), atomic_load(&st->yields),
	    atomic_load(&st->spins), atomic_load(&st->sleeps),
	    atomic_load(&st->moved),
	    atomic_load(&st->parks_g[0]), atomic_load(&st->parks_g[1]),
	    atomic_load(&st->parks_g[2]), atomic_load(&st->parks_g[3]),
	    atomic_load(&st->parks_t[0]), atomic_load(&st->parks_t[1]),
	    atomic_load(&st->parks_t[2]), atomic_load(&st->parks_t[3]),
	    st->spread, st->fair, st->abandoned);
	fflush(stdout);
}

static void
test_chaos_sched(void **state)
{
	struct cs_case *c = *state;
	uint64_t seed = slt_seed(c->seed), x;
	int rounds = (int) slt_scaled_min(ROUNDS, ROUNDS_MIN);
	long cap = slt_scaled(SLOTS);
	struct stats st;
	pthread_t wd;
	int64_t t0 = sl_now();

#ifdef SLT_TSAN
	/* A goroutine costs TSan a fiber (about a millisecond to make). */
	rounds = rounds / TSAN_DIVISOR > 2 ? rounds / TSAN_DIVISOR : 2;
#endif
	if (cap > SLOTS)
		cap = SLOTS;
	if (cap > slt_max_goroutines() / 2)
		cap = slt_max_goroutines() / 2;
	if (cap < CAP_MIN)
		cap = CAP_MIN;
	memset(&st, 0, sizeof(st));
	g_seed = seed;
	g_procs = c->procs;
	slt_chaos_reset();
	atomic_store(slt_failures(), 0);
	atomic_store(&wd_stop, false);
	atomic_store(&g_deadline, 0);
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		fail_msg("pthread_create");

	x = seed;
	for (int r = 0; r < rounds; r++) {
		struct round *rd = calloc(1, sizeof(*rd));
		sl_opts o;
		int rv;

		if (rd == NULL || (rd->slots = calloc((size_t) cap,
		    sizeof(*rd->slots))) == NULL ||
		    (rd->tq = calloc((size_t) cap, sizeof(*rd->tq))) == NULL)
			fail_msg("out of memory");
		atomic_store(&g_round, r);
		rd->idx = r;
		rd->procs = c->procs;
		rd->seed = slt_rnd(&x);
		rd->timers = rnd(&x, 2) == 0;
		rd->cap = (int) cap;
		rd->st = &st;
		pthread_mutex_init(&rd->tq_mu, NULL);
		pthread_cond_init(&rd->tq_cv, NULL);
		pthread_cond_init(&rd->s_cv, NULL);
		memset(&o, 0, sizeof(o));
		o.procs = c->procs;

		rv = sl_main_opts(&o, round_body, rd);
		atomic_store(&g_deadline, 0);
		CHK(rv == 0, "sl_main returned %s", sl_errname(rv));
		CHK(rd->main_returned != 0, "main did not get to the end");
		CHK(rd->main_returned == 0 ||
		    sl_now() - rd->main_returned < RETURN_WAIT,
		    "sl_main returned %.3f s after main did",
		    (double) (sl_now() - rd->main_returned) / SL_SECOND);
		CHK(sl_numgoroutine() == 0, "sl_numgoroutine() %zu after "
		    "sl_main", sl_numgoroutine());
		CHK(sl_procs() == 0, "sl_procs() %d after sl_main",
		    sl_procs());
		CHK(sl_goid() == 0 && sl_worker_id() == -1, "goid %" PRIu64
		    ", worker %d after sl_main", sl_goid(), sl_worker_id());
		CHK(sl_go(ab_yield, NULL) == SL_ESTATE, "sl_go after sl_main");

		st.rounds++;
		st.quiet += !rd->timers;
		st.abandoned += rd->nabandon;
		pthread_mutex_destroy(&rd->tq_mu);
		pthread_cond_destroy(&rd->tq_cv);
		pthread_cond_destroy(&rd->s_cv);
		free(rd->tq);
		free(rd->slots);
		free(rd);
	}
	/* The watchdog goes first: the child is forked from a process
	 * without threads (TSan refuses to fork one that has some). */
	atomic_store(&wd_stop, true);
	pthread_join(wd, NULL);
	check_hold_release(c->procs, slt_rnd(&x));
	print_stats(&st, seed, c->procs, (double) (sl_now() - t0) /
	    SL_SECOND);
	slt_replay_hint("chaos_sched", seed, c->procs);
	slt_assert_no_failures();
}

static struct cs_case cases[] = {
	{ .procs = 1, .seed = 0x5c4ed01 }, { .procs = 1, .seed = 0x5c4ed02 },
	{ .procs = 2, .seed = 0x5c4ed01 }, { .procs = 2, .seed = 0x5c4ed02 },
	{ .procs = 3, .seed = 0x5c4ed01 }, { .procs = 3, .seed = 0x5c4ed02 },
	{ .procs = 4, .seed = 0x5c4ed01 }, { .procs = 4, .seed = 0x5c4ed02 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_sched_1_worker_seed_1", test_chaos_sched, NULL,
		    NULL, &cases[0] },
		{ "test_chaos_sched_1_worker_seed_2", test_chaos_sched, NULL,
		    NULL, &cases[1] },
		{ "test_chaos_sched_2_workers_seed_1", test_chaos_sched, NULL,
		    NULL, &cases[2] },
		{ "test_chaos_sched_2_workers_seed_2", test_chaos_sched, NULL,
		    NULL, &cases[3] },
		{ "test_chaos_sched_3_workers_seed_1", test_chaos_sched, NULL,
		    NULL, &cases[4] },
		{ "test_chaos_sched_3_workers_seed_2", test_chaos_sched, NULL,
		    NULL, &cases[5] },
		{ "test_chaos_sched_4_workers_seed_1", test_chaos_sched, NULL,
		    NULL, &cases[6] },
		{ "test_chaos_sched_4_workers_seed_2", test_chaos_sched, NULL,
		    NULL, &cases[7] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
