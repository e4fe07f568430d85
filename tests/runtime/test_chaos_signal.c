/*
 * test_chaos_signal.c — a randomized, seeded stress test of the signal
 * relay (sluice/signal.h, Go's os/signal): what the header promises holds
 * whatever mix of registrations, re-registrations, stops, contexts and
 * signals races on it, from goroutines on one or two workers and from
 * plain threads, and across the end of sl_main.
 *
 * Why: test_signal.c pins down one interleaving per promise, with one or
 * two channels and SIGUSR1/SIGUSR2.  A stop racing a delivery on another
 * worker, the last registration of a signal going while another party
 * registers it again, a list that fails half-way, a context whose parent
 * is canceled while its signal arrives, an AfterFunc that stops its own
 * registration on the relay's thread, sl_main ending while threads still
 * register and send: these show up only when many of them meet at random.
 *
 * How: nine signals are in play (SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD,
 * SIGURG, SIGWINCH, SIGRTMIN+2, SIGRTMIN+5, SIGRTMAX), and SIGHUP, which
 * only the main goroutine's "fences" (below) raise and register.  Before
 * sl_main the program gives each a disposition of its own, drawn at
 * random: a counting handler (plain or SA_SIGINFO, random flags and mask),
 * SIG_IGN, or for the three that are ignored by default, SIG_DFL.  Four
 * goroutine and two thread "parties" each own three channels (capacity 0,
 * 1, 2, 3 or 32) and two signal contexts, and model them exactly: the
 * signals each is registered for, and the values it may hold.  A round is
 * a chaotic phase, where the parties at once register random lists
 * (re-registering: the union), stop, drain, wait in selects, close,
 * replace channels, make signal contexts under random parents (background,
 * one they cancel later with a cause, one canceled already, a short or a
 * long timeout, another signal context), stop them (twice), give some an
 * AfterFunc that stops its own registration, mix bad lists in, and raise
 * signals at themselves (raise, pthread_kill, pthread_sigqueue: the
 * handler has run when the call returns); then a quiet phase, where the
 * main goroutine makes the relay catch up (a "fence": SIGHUP, the lowest
 * number, raised and received on a channel of its own, twice; SIGHUP is
 * the fence's alone) and checks exactly.  Checked:
 *
 *   channels
 *     - a channel only ever holds signals it was registered for since it
 *       was last stopped and drained (so a signal pending when a channel
 *       registers may reach it: that is the in-flight window), never
 *       more of a signal than were raised;
 *     - once sl_signal_stop returned and the channel was drained, nothing
 *       arrives on it until it is registered again;
 *     - a probe (1 to 3 signals, raised one at a time or together, by
 *       thread- or process-directed calls, while every channel is empty,
 *       full of sentinels, or has some room) puts into every channel
 *       exactly min(room, signals of the probe it is registered for)
 *       values, each one of those and none twice, in raise order when
 *       raised one at a time; a full channel misses them (the relay did
 *       not block: a witness got each exactly once); a channel of no
 *       capacity with no receiver gets nothing;
 *     - a party that raises a signal of its channel (drained, with room)
 *       receives it, unless the channel was filled by others meanwhile;
 *   dispositions
 *     - while a party holds a registration of a signal, the kernel has
 *       the relay's handler for it; in the quiet phase, a signal with no
 *       registration has exactly the program's disposition back (handler,
 *       flags, mask), and raising it runs the program's handler exactly
 *       once;
 *   contexts
 *     - sl_signal_ctx under a done parent is born done with the parent's
 *       error and cause; a done signal context's cause is "signal SIGx"
 *       (or "signal N" for a real-time one) for an x it was registered
 *       for, "context canceled" after its stop, or its parent's error
 *       and cause; a probe cancels exactly the live contexts registered
 *       for one of its signals (the first raised, one at a time) and no
 *       other; stop_ctx cancels, and a second one changes nothing;
 *   bad input
 *     - a list with one bad number (0, negative, 65 and up, SIGKILL,
 *       SIGSTOP, the fault signals) anywhere in it gets SL_EINVAL and
 *       registers none of its good signals (the probes and dispositions
 *       would show it); NULL or empty lists, a NULL channel or parent, a
 *       channel of longs: SL_EINVAL; glibc's own signals 32 and 33 are
 *       refused the same way (SL_EINVAL) and register nothing;
 *   the end of sl_main
 *     - sl_main ends with registrations left at random while a thread
 *       keeps registering until it gets SL_ESTATE: after that, nothing
 *       reaches its channel; after sl_main no channel gets anything, every
 *       disposition is the program's again (raising runs its handler),
 *       and registering gets SL_ESTATE;
 *   storm
 *     - a second sl_main does the chaotic phase while threads and a forked
 *       child send process-directed signals (kill, sigqueue) all the time
 *       (the channel rules above that do not need quiet still hold), and
 *       ends while they still send; a third sl_main: registrations work
 *       again, exactly once per signal, and the old channels get nothing;
 *   in child processes
 *     - with default dispositions, the rounds above, then the end of
 *       sl_main or every stop: each signal's default is back and raising
 *       one kills the process;
 *     - goroutines that all park waiting for signals that a plain thread
 *       (no hold on the scheduler) sends only later are not reported as a
 *       deadlock; once their registrations are gone, the real deadlock that
 *       follows is (one report, SL_EDEADLOCK), also after an sl_main that
 *       ended with registrations left;
 *     - a signal still pending when an sl_main ends (its relay busy
 *       canceling a context with 2000 children) reaches no registration
 *       of the next sl_main;
 *     - the same deadlock when the last registration is stopped by a
 *       plain thread while every goroutine is parked.
 *
 * Each case runs with 1 or 2 workers and one seed.  A failure prints the
 * seed, worker count, phase and round; SLUICE_CHAOS_SEED=<number> runs
 * every case with that seed, SLUICE_CHAOS_SEED=random with a new one
 * (printed).  The work scales with SLUICE_TEST_SCALE (valgrind runs 2% of
 * it) and is a third under TSan.  Under TSan the program's own
 * dispositions are SIG_IGN and SIG_DFL only (TSan runs a program's
 * handlers late, see install_program); under valgrind SIGRTMAX is
 * valgrind's own and the forked sender is left out.  A wait for a signal
 * that must come gives up after 5 s (then after 50 ms, and no new round
 * starts: one failure is enough); a case that has not ended after a
 * minute is reported as hung, with the seed and every goroutine's wait,
 * and aborts; a child is ended by a guard thread.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>

#define SLT_CHAOS /* CHK, rnd: see sltest.h */
#include "sltest.h"

#include "sluice/signal.h"

/*
 * The dispositions as the kernel has them.  Under TSan libsluice installs
 * its handler around TSan's sigaction interceptor (see signal.c), and the
 * interceptor answers a query from a table of its own.
 */
#if defined(__SANITIZE_THREAD__)
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
#define kernel_sigaction __sigaction
#else
#define kernel_sigaction sigaction
#endif

#ifdef SLT_TSAN
#define TSAN_ON true
#else
#define TSAN_ON false
#endif

enum {
	SIGS_MAX = 10,      /* signals in play */
	N_GOR = 4,          /* goroutine parties */
	N_THR = 2,          /* plain-thread parties */
	N_PARTY = N_GOR + N_THR,
	CH_PER = 3,         /* channels per party */
	CX_PER = 2,         /* signal contexts per party */
	CAP_BIG = 32,       /* a roomy channel */
	ROUNDS = 100,       /* rounds of the first sl_main, before scaling */
	STORM_ROUNDS = 25,  /* rounds of the storm */
	CHILD_ROUNDS = 4,   /* rounds in a child process */
	ROUNDS_MIN = 3,     /* ... and at least this many */
	OPS = 80,           /* operations per party and round, before
	                       scaling */
	OPS_MIN = 12,       /* ... and at least this many */
	TSAN_DIVISOR = 3,   /* less work under TSan */
	N_STORM = 2,        /* threads sending process-directed signals */
	CHILD_KILLS = 60,   /* signals the forked sender sends */
	N_DFL = 4,          /* default-disposition children */
	N_DL = 2,           /* deadlock children per worker count */
	DL_MAX = 5,         /* waiters in a deadlock child */
	DL_KIDS = 2000,     /* children of the context that keeps the relay
	                       busy at the end of its first sl_main */
	SENTINEL = -7,      /* what the main goroutine fills channels with */
	CODE_BASE = 7000,   /* cause codes of the parents we cancel */
};

#define US SL_MICROSECOND
#define MS SL_MILLISECOND

/* Longest wait for something that must come (until one such wait has
 * failed: then a short one, so that a broken relay fails the case soon),
 * and for an AfterFunc. */
#define WAIT       (5 * SL_SECOND)
#define WAIT_AFTER (50 * MS)
#define HUNG       (60 * SL_SECOND)

/* How a signal is raised: the first three at the calling thread (its
 * handler has run when the call returns), the others at the process
 * (some thread runs it, some time). */
enum { RM_PTKILL, RM_RAISE, RM_QUEUE, RM_SYNC, RM_KILL = RM_SYNC,
	RM_SIGQUEUE, RM_N };

/* The program's own disposition of a signal. */
enum { PD_HANDLER, PD_INFO, PD_IGN, PD_DFL };
static const char *const pd_name[] = { "handler", "SA_SIGINFO handler",
	"SIG_IGN", "SIG_DFL" };

/* The parent of a signal context. */
enum { PK_BG, PK_CANCEL, PK_DONE, PK_TIMEOUT, PK_SIGCTX, PK_N };
static const char *const pk_name[] = { "background", "cancelable",
	"canceled", "timeout", "signal context" };

/* What is running, for failure messages. */
enum { PH_EXACT, PH_STORM, PH_AGAIN, PH_AFTER, PH_CHILD };
static const char *const ph_name[] = { "exact rounds", "storm",
	"third sl_main", "after sl_main", "child" };

/* ---- state --------------------------------------------------------------- */

/* A channel of a party, and what it may hold. */
struct chn {
	sl_chan *ch;       /* the channel */
	int      cap;      /* its capacity */
	uint64_t mask;     /* signals it is registered for (bit s-1) */
	uint64_t allowed;  /* signals it may hold: every mask since it was
	                      last stopped and drained */
	bool     quiet;    /* stopped and drained: nothing may arrive */
	bool     closed;   /* closed by its party */
	int      fill;     /* probe: sentinels put in by the main goroutine */
	long     got[65];  /* values of each signal received in this slot */
};

/* An AfterFunc that stops its context's registration. */
struct afrec {
	sl_ctx       *ctx;  /* the context (the slot's reference) */
	sl_afterfunc *stop; /* its handle, for sl_ctx_stop */
	atomic_int    done; /* fn has returned */
};

/* A signal context of a party. */
struct sctx {
	sl_ctx       *ctx;         /* NULL: an empty slot */
	sl_ctx       *parent;      /* our reference to its parent, or NULL
	                              for background */
	int           pk;          /* PK_* */
	bool          pdone;       /* PK_CANCEL: we canceled the parent */
	uint64_t      mask;        /* its signals */
	bool          stopped;     /* its registration ended (stop_ctx, or
	                              its AfterFunc) */
	struct afrec *af;          /* its AfterFunc, or NULL */
	int           pre_err;     /* probe: sl_ctx_err before */
	int           pre_code;    /* ... the cause's code */
	char          pre_msg[64]; /* ... and text */
};

/* Counters for the summary line. */
struct stats {
	long ops;        /* operations made */
	long notifies;   /* registrations that succeeded */
	long stops;      /* sl_signal_stop */
	long values;     /* signal values received by the parties */
	long raised;     /* signals raised by the parties */
	long shakes;     /* handshakes that got their signal */
	long shakes_inc; /* ... that could not tell (channel filled) */
	long bad;        /* bad calls refused */
	long ctx_made;   /* signal contexts made */
	long ctx_sig;    /* ... seen canceled by a signal */
	long afs;        /* AfterFuncs registered */
	long closes;     /* channels closed while registered */
};

/* A goroutine or a plain thread that owns channels and contexts. */
struct party {
	int          id;          /* index */
	bool         thread;      /* a plain pthread */
	uint64_t     rng;         /* its generator */
	long         quota;       /* operations this round */
	struct chn   ch[CH_PER];  /* its channels */
	struct sctx  cx[CX_PER];  /* its signal contexts */
	pthread_t    th;          /* the thread, if thread */
	struct stats st;          /* counters */
};

/* A thread that registers until sl_main has ended. */
struct late {
	sl_chan  *ch;       /* its channel */
	uint64_t  rng;      /* its generator */
	uint64_t  allowed;  /* what the channel may hold */
	atomic_long loops;  /* registrations made */
	size_t    len_end;  /* the channel's length when SL_ESTATE came */
	pthread_t th;       /* the thread */
};

/* A thread that sends process-directed signals. */
struct storm {
	uint64_t  rng;   /* its generator */
	bool      fork;  /* also forks a child that sends */
	pid_t     child; /* that child */
	long      sent;  /* signals sent */
	pthread_t th;    /* the thread */
};

static uint64_t    g_seed;              /* the seed of the running case */
static int         g_procs;             /* its workers */
static atomic_int  g_round;             /* the round being run */
static atomic_int  g_phase;             /* PH_* */

static int         g_sig[SIGS_MAX];     /* the signals in play */
static int         g_nsig;              /* how many */
static int         g_pd[65];            /* the program's disposition */
static struct sigaction g_saved[65];    /* ... as the kernel has it */
static atomic_int  g_prog[65];          /* runs of the program's handlers */
static atomic_long g_raised[65];        /* signals raised (upper bound) */
static _Atomic uintptr_t g_relay;       /* the relay's handler, once seen */
static bool        g_own_only;          /* parties raise only signals they
                                           hold a registration for */
static bool        g_child;             /* in a child: no late raises */

static struct party g_p[N_PARTY];       /* the parties */
static sl_chan     *g_fence;            /* the fence channel */
static sl_chan     *g_done;             /* parties report the end here */
static struct late  g_late;             /* the end-of-sl_main thread */
static struct storm g_storm[N_STORM];   /* the storm threads */
static atomic_int   g_storm_stop;       /* they are to return */
static long         g_probes;           /* probes made */
static long         g_rounds;           /* rounds of the first sl_main */
static atomic_llong g_wait;             /* WAIT, or WAIT_AFTER once one
                                           failed */

/* ---- helpers ------------------------------------------------------------- */

/* What is running, for failure messages (CHK, sltest.h). */
static void
slt_chaos_where(char *where, size_t len)
{
	snprintf(where, len, "seed 0x%" PRIx64 " procs %d %s "
	    "round %d", g_seed, g_procs, ph_name[atomic_load(&g_phase)],
	    atomic_load(&g_round));
}

static uint64_t
bit(int s)
{
	return ((uint64_t) 1 << (s - 1));
}

static bool
in_range(int v)
{
	return (v >= 1 && v <= 64);
}

/* One signal of mask (not 0), drawn at random. */
static int
pick_bit(uint64_t mask, uint64_t *rng)
{
	int n = __builtin_popcountll(mask), k = (int) rnd(rng, (uint32_t) n);

	for (int s = 1; s <= 64; s++)
		if ((mask & bit(s)) != 0 && k-- == 0)
			return (s);
	return (0);
}

/* "10,12" for a mask, "none" for 0. */
static const char *
mask_str(uint64_t m, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int s = 1; s <= 64 && o + 4 < len; s++)
		if ((m & bit(s)) != 0)
			o += (size_t) snprintf(buf + o, len - o, "%s%d",
			    o > 0 ? "," : "", s);
	if (o == 0)
		snprintf(buf, len, "none");
	return (buf);
}

/* The cause text a signal context gets for s: Go's "signal SIGTERM", or
 * "signal 36" for a signal without a name (written here, not taken from
 * the C library, so that it checks what the relay writes). */
static void
sig_cause(int s, char *buf, size_t len)
{
	static const struct {
		int         sig;
		const char *name;
	} names[] = {
		{ SIGHUP, "SIGHUP" }, { SIGUSR1, "SIGUSR1" },
		{ SIGUSR2, "SIGUSR2" }, { SIGALRM, "SIGALRM" },
		{ SIGCHLD, "SIGCHLD" }, { SIGURG, "SIGURG" },
		{ SIGWINCH, "SIGWINCH" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].sig == s) {
			snprintf(buf, len, "signal %s", names[i].name);
			return;
		}
	}
	snprintf(buf, len, "signal %d", s);
}

/* The signal of mask whose cause text msg is, or 0. */
static int
cause_sig(const char *msg, uint64_t mask)
{
	char buf[32];

	if (msg == NULL)
		return (0);
	for (int s = 1; s <= 64; s++) {
		if ((mask & bit(s)) == 0)
			continue;
		sig_cause(s, buf, sizeof(buf));
		if (strcmp(msg, buf) == 0)
			return (s);
	}
	return (0);
}

/* Sleeps about ns: a goroutine parks, a thread sleeps. */
static void
nap(bool thread, int64_t ns)
{
	if (thread) {
		struct timespec ts = { 0, (long) ns };

		(void) nanosleep(&ts, NULL); /* a signal may cut it short */
	} else {
		sl_sleep(ns);
	}
}

/* The deadline of a wait for something that must come. */
static int64_t
must_by(void)
{
	return (sl_now() + (int64_t) atomic_load(&g_wait));
}

/* rv is what such a wait returned: after a failed one, waits are short. */
static int
must_rv(int rv)
{
	if (rv == SL_ETIMEDOUT)
		atomic_store(&g_wait, WAIT_AFTER);
	return (rv);
}

/* Raises s by how (RM_*); counts it first.  Returns 0 or an errno
 * value.  A real-time signal, and any sent with sigqueue, takes an entry
 * of the user's RLIMIT_SIGPENDING, which every process of the user
 * shares: when another one holds them all (EAGAIN), wait for it to let
 * some go, for ten seconds at most. */
static int
do_raise(int s, int how)
{
	union sigval v = { .sival_int = s };
	int rv;

	atomic_fetch_add(&g_raised[s], 1);
	for (int tries = 0;; tries++) {
		switch (how) {
		case RM_PTKILL:
			rv = pthread_kill(pthread_self(), s);
			break;
		case RM_RAISE:
			rv = raise(s) == 0 ? 0 : errno;
			break;
		case RM_QUEUE:
			rv = pthread_sigqueue(pthread_self(), s, v);
			break;
		case RM_KILL:
			rv = kill(getpid(), s) == 0 ? 0 : errno;
			break;
		default:
			rv = sigqueue(getpid(), s, v) == 0 ? 0 : errno;
			break;
		}
		if (rv != EAGAIN || tries == 10000)
			return (rv);
		(void) nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
}

/* ---- dispositions -------------------------------------------------------- */

static void
prog_handler(int s)
{
	if (s >= 1 && s <= 64)
		atomic_fetch_add(&g_prog[s], 1);
}

static void
prog_info(int s, siginfo_t *si, void *uc)
{
	(void) si;
	(void) uc;
	prog_handler(s);
}

/* Signals whose default action is to do nothing. */
static bool
dfl_ignores(int s)
{
	return (s == SIGCHLD || s == SIGURG || s == SIGWINCH);
}

/* The signals in play: those this process may set a handler for
 * (valgrind keeps SIGRTMAX for itself: it lets a program query it and
 * set SIG_DFL, not install a handler). */
static void
pick_signals(void)
{
	const int want[SIGS_MAX] = { SIGHUP, SIGUSR1, SIGUSR2, SIGALRM,
		SIGCHLD, SIGURG, SIGWINCH, SIGRTMIN + 2, SIGRTMIN + 5,
		SIGRTMAX };

	g_nsig = 0;
	for (int i = 0; i < SIGS_MAX; i++) {
		struct sigaction sa, old;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = prog_handler;
		sigemptyset(&sa.sa_mask);
		if (sigaction(want[i], &sa, &old) == 0) {
			(void) sigaction(want[i], &old, NULL);
			g_sig[g_nsig++] = want[i];
		}
	}
	assert_true(g_nsig >= SIGS_MAX - 1);
	assert_int_equal(g_sig[0], SIGHUP); /* the fence: the lowest */
}

/*
 * Gives each signal in play a disposition of the program's, and notes
 * what the kernel then has.  Under TSan no handler: TSan runs a program's
 * handler late, at an interceptor of the goroutine the signal interrupted,
 * and with the storm's process-directed signals that leaves a worker
 * thread with every signal blocked now and then (with SIG_IGN it never
 * does), so that the relay's later signals never come.
 */
static void
install_program(uint64_t *rng, bool all_default)
{
	for (int i = 0; i < g_nsig; i++) {
		int              s = g_sig[i];
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		if (all_default)
			g_pd[s] = PD_DFL;
		else if (TSAN_ON) /* no handlers of the program's: above */
			g_pd[s] = dfl_ignores(s) && rnd(rng, 2) ? PD_DFL :
			    PD_IGN;
		else
			g_pd[s] = (int) rnd(rng, dfl_ignores(s) ? 4 : 3);
		switch (g_pd[s]) {
		case PD_HANDLER:
			sa.sa_handler = prog_handler;
			break;
		case PD_INFO:
			sa.sa_sigaction = prog_info;
			sa.sa_flags = SA_SIGINFO;
			break;
		case PD_IGN:
			sa.sa_handler = SIG_IGN;
			break;
		default:
			sa.sa_handler = SIG_DFL;
			break;
		}
		if (g_pd[s] <= PD_INFO) {
			if (rnd(rng, 2))
				sa.sa_flags |= SA_RESTART;
			if (rnd(rng, 3) == 0)
				sa.sa_flags |= SA_NODEFER;
			sigaddset(&sa.sa_mask, g_sig[rnd(rng,
			    (uint32_t) g_nsig)]);
		}
		assert_int_equal(sigaction(s, &sa, NULL), 0);
		assert_int_equal(kernel_sigaction(s, NULL, &g_saved[s]), 0);
	}
}

/* Every signal in play back to SIG_DFL (SIG_IGN of SIGCHLD would reap
 * the children of later cases). */
static void
restore_default(void)
{
	for (int i = 0; i < g_nsig; i++)
		(void) signal(g_sig[i], SIG_DFL);
}

/* Two dispositions are the same: handler, flags and mask. */
static bool
same_disp(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_handler != b->sa_handler || a->sa_flags != b->sa_flags)
		return (false);
	for (int s = 1; s <= 64; s++) {
		if (s == 32 || s == 33) /* glibc's own */
			continue;
		if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
			return (false);
	}
	return (true);
}

/* s has a registration: the kernel must have the relay's handler, the
 * same for every signal. */
static void
chk_caught(int s, const char *when)
{
	struct sigaction sa;
	uintptr_t        h, want = 0;

	if (kernel_sigaction(s, NULL, &sa) != 0) {
		CHK(false, "sigaction(%d) failed: %s", s, strerror(errno));
		return;
	}
	h = (uintptr_t) sa.sa_handler;
	CHK(h != (uintptr_t) g_saved[s].sa_handler && h !=
	    (uintptr_t) SIG_DFL && h != (uintptr_t) SIG_IGN, "%s: signal %d "
	    "is registered, but its disposition is the program's own (%s)",
	    when, s, pd_name[g_pd[s]]);
	if (!atomic_compare_exchange_strong(&g_relay, &want, h))
		CHK(want == h, "%s: signal %d is caught by %#" PRIxPTR ", "
		    "another signal by %#" PRIxPTR, when, s, h, want);
}

/* s has no registration: the program's disposition must be back. */
static void
chk_program(int s, const char *when)
{
	struct sigaction sa;

	if (kernel_sigaction(s, NULL, &sa) != 0) {
		CHK(false, "sigaction(%d) failed: %s", s, strerror(errno));
		return;
	}
	CHK(same_disp(&sa, &g_saved[s]), "%s: signal %d has no registration, "
	    "but the kernel has handler %p flags %#x, not the program's %s "
	    "(%p flags %#x)", when, s, (void *) (uintptr_t) sa.sa_handler,
	    (unsigned) sa.sa_flags, pd_name[g_pd[s]],
	    (void *) (uintptr_t) g_saved[s].sa_handler,
	    (unsigned) g_saved[s].sa_flags);
}

/* s has no registration and the program a handler: raising it at this
 * thread runs that handler exactly once, before the call returns. */
static void
chk_program_runs(int s, const char *when)
{
	int before;

	if (g_pd[s] != PD_HANDLER && g_pd[s] != PD_INFO)
		return;
	before = atomic_load(&g_prog[s]);
	CHK(do_raise(s, RM_PTKILL) == 0, "pthread_kill(%d) failed", s);
	CHK(atomic_load(&g_prog[s]) == before + 1, "%s: signal %d has no "
	    "registration: the program's handler ran %d times, not once",
	    when, s, atomic_load(&g_prog[s]) - before);
}

/* ---- channels of a party ------------------------------------------------- */

/* A new channel of random capacity in slot ci. */
static void
chan_make(struct party *p, int ci)
{
	static const int caps[] = { 0, 1, 1, 2, 3, CAP_BIG, CAP_BIG, CAP_BIG };
	struct chn      *c = &p->ch[ci];

	c->cap = caps[rnd(&p->rng, sizeof(caps) / sizeof(caps[0]))];
	if ((c->ch = sl_chan_make(sizeof(int), (size_t) c->cap)) == NULL)
		SLT_FATAL("out of memory");
	c->mask = 0;
	c->allowed = 0;
	c->quiet = true;
	c->closed = false;
	c->fill = 0;
}

/* Checks a value v that party p took from its channel ci by how. */
static void
took(struct party *p, int ci, int v, const char *how)
{
	struct chn *c = &p->ch[ci];
	char        mb[256];

	CHK(in_range(v) && (c->allowed & bit(v)) != 0 && !c->quiet, "party "
	    "%d channel %d (cap %d%s) got %d by %s, but it may only hold %s",
	    p->id, ci, c->cap, c->quiet ? ", stopped and drained" : "", v,
	    how, mask_str(c->allowed, mb, sizeof(mb)));
	if (in_range(v)) {
		long raised = atomic_load(&g_raised[v]);

		c->got[v]++;
		CHK(c->got[v] <= raised, "party %d channel %d got signal %d "
		    "%ld times; it was raised %ld times", p->id, ci, v,
		    c->got[v], raised);
		p->st.values++;
	}
}

/* Takes what channel ci holds (by how), checking each value. */
static void
drain(struct party *p, int ci, const char *how)
{
	struct chn *c = &p->ch[ci];
	int         v, rv, n = 0;

	while (n < 4 * CAP_BIG && (rv = sl_chan_tryrecv(c->ch, &v)) == 0) {
		took(p, ci, v, how);
		n++;
	}
	if (n < 4 * CAP_BIG)
		CHK(rv == SL_EAGAIN || (rv == SL_ECLOSED && c->closed),
		    "party %d channel %d: tryrecv returned %s", p->id, ci,
		    sl_errname(rv));
}

/* sl_signal_stop, then the channel is drained and must stay empty. */
static void
chan_stop(struct party *p, int ci)
{
	struct chn *c = &p->ch[ci];
	int         v;

	sl_signal_stop(c->ch);
	drain(p, ci, "drain after stop");
	c->mask = 0;
	c->allowed = 0;
	c->quiet = true;
	CHK(sl_chan_tryrecv(c->ch, &v) != 0, "party %d channel %d got %d "
	    "right after it was stopped and drained", p->id, ci, v);
	p->st.stops++;
}

/* Stops, drains and releases the channel of slot ci; makes a new one. */
static void
chan_replace(struct party *p, int ci)
{
	chan_stop(p, ci);
	sl_chan_release(p->ch[ci].ch);
	chan_make(p, ci);
}

/* A signal in play other than the fence's SIGHUP, at random. */
static int
rand_sig(uint64_t *rng)
{
	return (g_sig[1 + rnd(rng, (uint32_t) g_nsig - 1)]);
}

/* A random list of 1 to 4 signals in play (repeats allowed). */
static uint64_t
rand_list(uint64_t *rng, int *list, int *n)
{
	uint64_t m = 0;

	*n = 1 + (int) rnd(rng, 4);
	for (int i = 0; i < *n; i++) {
		list[i] = rand_sig(rng);
		m |= bit(list[i]);
	}
	return (m);
}

static void
op_notify(struct party *p, int ci)
{
	struct chn *c = &p->ch[ci];
	int         list[4], n, rv;
	uint64_t    m;

	if (c->closed && rnd(&p->rng, 2))
		chan_replace(p, ci);
	m = rand_list(&p->rng, list, &n);
	rv = sl_signal_notify(c->ch, list, (size_t) n);
	CHK(rv == 0, "party %d: sl_signal_notify returned %s", p->id,
	    sl_errname(rv));
	if (rv != 0)
		return;
	c->mask |= m;
	c->allowed |= m;
	c->quiet = false;
	p->st.notifies++;
	for (int s = 1; s <= 64; s++)
		if ((m & bit(s)) != 0)
			chk_caught(s, "after sl_signal_notify");
}

/* Waits a little for a value on any of p's channels. */
static void
op_wait(struct party *p)
{
	sl_case cases[CH_PER];
	int     vals[CH_PER], idx[CH_PER], n = 0, chosen = -1, rv;

	for (int i = 0; i < CH_PER; i++) {
		if (p->ch[i].closed && rnd(&p->rng, 2))
			continue; /* else it is ready at once */
		vals[n] = 0;
		idx[n] = i;
		cases[n] = SL_CASE_RECV(p->ch[i].ch, &vals[n]);
		n++;
	}
	if (n == 0)
		return;
	rv = sl_select(cases, (size_t) n, NULL,
	    sl_now() + (int64_t) rnd(&p->rng, 300) * US, &chosen);
	if (rv == 0 && chosen >= 0 && chosen < n) {
		if (cases[chosen].ok)
			took(p, idx[chosen], vals[chosen], "select");
		else
			CHK(p->ch[idx[chosen]].closed, "party %d: select "
			    "says channel %d is closed", p->id, idx[chosen]);
	} else {
		CHK(rv == SL_ETIMEDOUT, "party %d: select returned %s",
		    p->id, sl_errname(rv));
	}
}

/* The signals p holds a registration of that only p can end. */
static uint64_t
own_mask(struct party *p)
{
	uint64_t m = 0;

	for (int i = 0; i < CH_PER; i++)
		m |= p->ch[i].mask;
	for (int i = 0; i < CX_PER; i++)
		if (p->cx[i].ctx != NULL && !p->cx[i].stopped &&
		    p->cx[i].af == NULL)
			m |= p->cx[i].mask;
	return (m);
}

static void
op_raise(struct party *p, bool storm)
{
	uint64_t mine = own_mask(p);
	int      s, how, rv;

	if (g_own_only || rnd(&p->rng, 2)) {
		if (mine == 0)
			return;
		s = pick_bit(mine, &p->rng);
	} else {
		s = rand_sig(&p->rng);
	}
	how = (int) rnd(&p->rng, storm ? RM_N : RM_SYNC);
	rv = do_raise(s, how);
	CHK(rv == 0, "party %d: raising %d (way %d) failed: %s", p->id, s,
	    how, strerror(rv));
	p->st.raised++;
}

/*
 * Raises a signal of channel ci at this thread and waits for it there.
 * The channel was drained just before, so it has room, unless the
 * signals of others fill it first: that can only be if at least cap
 * other values are received while waiting.
 */
static void
op_handshake(struct party *p, int ci)
{
	struct chn *c = &p->ch[ci];
	int         s, v = 0, others = 0, rv;
	int64_t     end;
	bool        seen = false;
	char        mb[256];

	if (c->mask == 0 || c->closed || c->cap == 0)
		return;
	drain(p, ci, "drain before handshake");
	s = pick_bit(c->mask, &p->rng);
	rv = do_raise(s, (int) rnd(&p->rng, RM_SYNC));
	CHK(rv == 0, "party %d: raising %d failed", p->id, s);
	end = must_by();
	while (!seen && others < c->cap) {
		rv = must_rv(sl_chan_recv_ctx(c->ch, &v, NULL, end));
		if (rv != 0)
			break;
		took(p, ci, v, "handshake");
		if (v == s)
			seen = true;
		else
			others++;
	}
	if (seen)
		p->st.shakes++;
	else if (others >= c->cap)
		p->st.shakes_inc++;
	else
		CHK(false, "party %d channel %d (cap %d, registered for %s): "
		    "raised %d at itself and waited for it: %s (%d other "
		    "values)", p->id, ci, c->cap, mask_str(c->mask, mb,
		    sizeof(mb)), s, sl_errname(rv), others);
}

/* A list with one bad element, and the other ways to call wrongly. */
static void
op_bad(struct party *p, int ci)
{
	static const int bad[] = { 0, -1, -SIGUSR1, 65, 66, 128, 1000,
		INT_MAX, INT_MIN, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE,
		SIGILL, SIGTRAP, SIGSYS };
	struct chn *c = &p->ch[ci];
	int         list[5], n = 1 + (int) rnd(&p->rng, 3), k = 0, rv, b;
	int         at = (int) rnd(&p->rng, (uint32_t) n + 1);
	sl_ctx     *out = (sl_ctx *) p;
	sl_chan    *longs;

	b = bad[rnd(&p->rng, sizeof(bad) / sizeof(bad[0]))];
	for (int i = 0; i <= n; i++)
		list[k++] = i == at ? b : rand_sig(&p->rng);
	switch (rnd(&p->rng, 6)) {
	case 0:
	case 1:
	case 2:
		rv = sl_signal_notify(c->ch, list, (size_t) k);
		CHK(rv == SL_EINVAL, "party %d: a list with %d at %d: "
		    "sl_signal_notify returned %s", p->id, b, at,
		    sl_errname(rv));
		break;
	case 3:
		rv = sl_signal_ctx(sl_ctx_background(), list, (size_t) k, &out);
		CHK(rv == SL_EINVAL && out == NULL, "party %d: a list with %d "
		    "at %d: sl_signal_ctx returned %s, *out %p", p->id, b, at,
		    sl_errname(rv), (void *) out);
		if (out != NULL && out != (sl_ctx *) p) {
			sl_signal_stop_ctx(out);
			sl_ctx_release(out);
		}
		break;
	case 4:
		CHK((rv = sl_signal_notify(NULL, list, 1)) == SL_EINVAL,
		    "NULL channel: %s", sl_errname(rv));
		CHK((rv = sl_signal_notify(c->ch, NULL, 1)) == SL_EINVAL,
		    "NULL list: %s", sl_errname(rv));
		CHK((rv = sl_signal_notify(c->ch, list, 0)) == SL_EINVAL,
		    "empty list: %s", sl_errname(rv));
		CHK((rv = sl_signal_ctx(NULL, list, 1, &out)) == SL_EINVAL &&
		    out == NULL, "NULL parent: %s", sl_errname(rv));
		CHK((rv = sl_signal_ctx(sl_ctx_background(), list, 0, &out))
		    == SL_EINVAL && out == NULL, "empty list: %s",
		    sl_errname(rv));
		CHK((rv = sl_signal_ctx(sl_ctx_background(), list, 1, NULL))
		    == SL_EINVAL, "NULL out: %s", sl_errname(rv));
		break;
	default:
		if ((longs = sl_chan_make(sizeof(long long), 2)) == NULL)
			SLT_FATAL("out of memory");
		CHK((rv = sl_signal_notify(longs, list, 1)) == SL_EINVAL,
		    "a channel of long long: %s", sl_errname(rv));
		sl_signal_stop(longs);
		sl_chan_release(longs);
		break;
	}
	p->st.bad++;
}

/* ---- signal contexts of a party ------------------------------------------ */

static void
af_fn(void *arg)
{
	struct afrec *a = arg;

	sl_signal_stop_ctx(a->ctx);
	atomic_store(&a->done, 1);
}

/* Waits until a's fn has returned; false after HUNG. */
static bool
af_wait(struct afrec *a, bool thread)
{
	int64_t end = sl_now() + HUNG;

	while (!atomic_load(&a->done) && sl_now() < end)
		nap(thread, 50 * US);
	return (atomic_load(&a->done) != 0);
}

/* Ends the AfterFunc of x: it never runs, or has returned. */
static void
af_finish(struct party *p, struct sctx *x, bool thread)
{
	if (x->af == NULL)
		return;
	if (!sl_ctx_stop(x->af->stop)) {
		CHK(af_wait(x->af, thread), "party %d: an AfterFunc did not "
		    "return", p->id);
		x->stopped = true;
	}
	free(x->af);
	x->af = NULL;
}

/*
 * The cause of a done signal context is one of: a signal it is
 * registered for; "context canceled" after its stop; its parent's, when
 * the parent is done.
 */
static void
ctx_rule(struct party *p, int xi, const char *when)
{
	struct sctx *x = &p->cx[xi];
	const char  *msg = NULL, *pmsg = "";
	int          err, code, perr = 0, pcode = 0;
	char         mb[128];

	err = sl_ctx_err(x->ctx);
	code = sl_ctx_cause(x->ctx, &msg);
	if (err == 0 && code != 0) /* canceled in between */
		err = sl_ctx_err(x->ctx);
	if (err == 0 || code == 0) {
		CHK(err == 0 && code == 0 && msg == NULL, "party %d context "
		    "%d: err %s, but cause %d", p->id, xi, sl_errname(err),
		    code);
		return;
	}
	if (err == SL_ECANCELED && code == SL_ECANCELED &&
	    cause_sig(msg, x->mask) != 0)
		return;
	if (x->stopped && err == SL_ECANCELED && code == SL_ECANCELED &&
	    msg != NULL && strcmp(msg, "context canceled") == 0)
		return;
	if (x->parent != NULL) {
		perr = sl_ctx_err(x->parent);
		pcode = sl_ctx_cause(x->parent, &pmsg);
		if (perr != 0 && err == perr && code == pcode && msg != NULL &&
		    pmsg != NULL && strcmp(msg, pmsg) == 0)
			return;
	}
	CHK(false, "party %d context %d (%s parent, signals %s%s) %s: err %s, "
	    "cause %d \"%s\"; parent err %s, cause %d \"%s\"", p->id, xi,
	    pk_name[x->pk], mask_str(x->mask, mb, sizeof(mb)),
	    x->stopped ? ", stopped" : "", when, sl_errname(err), code,
	    msg != NULL ? msg : "(null)", sl_errname(perr), pcode,
	    pmsg != NULL ? pmsg : "(null)");
}

/* Makes a signal context in the empty slot xi. */
static void
cx_make(struct party *p, int xi, bool storm)
{
	struct sctx *x = &p->cx[xi];
	sl_ctx      *parent = sl_ctx_background();
	int          list[4], n, rv, code = CODE_BASE + p->id * 10 + xi;
	char         text[32];
	uint64_t     m = rand_list(&p->rng, list, &n);

	snprintf(text, sizeof(text), "parent %d.%d", p->id, xi);
	x->pk = (int) rnd(&p->rng, PK_N);
	x->parent = NULL;
	x->pdone = false;
	switch (x->pk) {
	case PK_CANCEL:
	case PK_DONE:
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(),
		    &x->parent));
		if (x->pk == PK_DONE)
			sl_ctx_cancel_cause(x->parent, code, text);
		break;
	case PK_TIMEOUT:
		SL_CHECK_OK(sl_ctx_with_timeout_cause(sl_ctx_background(),
		    rnd(&p->rng, 2) ? (int64_t) (50 + rnd(&p->rng, 3000)) * US :
		    3600 * SL_SECOND, code, text, &x->parent));
		break;
	case PK_SIGCTX: {
		struct sctx *y = &p->cx[(xi + 1) % CX_PER];

		if (y->ctx != NULL)
			x->parent = sl_ctx_retain(y->ctx);
		else
			x->pk = PK_BG;
		break;
	}
	default:
		break;
	}
	if (x->parent != NULL)
		parent = x->parent;
	x->ctx = (sl_ctx *) p; /* must become NULL on failure */
	rv = sl_signal_ctx(parent, list, (size_t) n, &x->ctx);
	CHK(rv == 0 && x->ctx != NULL, "party %d: sl_signal_ctx returned %s",
	    p->id, sl_errname(rv));
	if (rv != 0) {
		CHK(x->ctx == NULL, "party %d: a failed sl_signal_ctx left "
		    "*out set", p->id);
		x->ctx = NULL;
		sl_ctx_release(x->parent);
		x->parent = NULL;
		return;
	}
	x->mask = m;
	x->stopped = false;
	x->af = NULL;
	p->st.ctx_made++;
	if (x->pk == PK_DONE) {
		const char *msg = NULL;
		int         err = sl_ctx_err(x->ctx);
		int         c = sl_ctx_cause(x->ctx, &msg);

		CHK(err == SL_ECANCELED && c == code && msg != NULL &&
		    strcmp(msg, text) == 0, "party %d: a signal context of a "
		    "canceled parent: err %s, cause %d \"%s\", not the "
		    "parent's (%d \"%s\")", p->id, sl_errname(err), c,
		    msg != NULL ? msg : "(null)", code, text);
	}
	ctx_rule(p, xi, "just made");
	for (int s = 1; s <= 64; s++)
		if ((m & bit(s)) != 0)
			chk_caught(s, "after sl_signal_ctx");
	if (!storm && rnd(&p->rng, 10) < 3) {
		struct afrec *a = calloc(1, sizeof(*a));

		if (a == NULL)
			SLT_FATAL("out of memory");
		a->ctx = x->ctx;
		rv = sl_ctx_after_func(x->ctx, af_fn, a, &a->stop);
		CHK(rv == 0, "sl_ctx_after_func returned %s", sl_errname(rv));
		if (rv == 0) {
			x->af = a;
			p->st.afs++;
		} else {
			free(a);
		}
	}
}

/* Ends the registration of slot xi: stop_ctx cancels, a second one
 * changes nothing. */
static void
cx_stop(struct party *p, int xi)
{
	struct sctx *x = &p->cx[xi];
	const char  *msg = NULL, *msg2 = NULL;
	int          err, code, code2;
	char         copy[64];

	sl_signal_stop_ctx(x->ctx);
	x->stopped = true;
	err = sl_ctx_err(x->ctx);
	code = sl_ctx_cause(x->ctx, &msg);
	CHK(err != 0, "party %d: sl_signal_stop_ctx left context %d live",
	    p->id, xi);
	if (msg != NULL && cause_sig(msg, x->mask) != 0)
		p->st.ctx_sig++;
	ctx_rule(p, xi, "after stop");
	if (rnd(&p->rng, 2)) {
		snprintf(copy, sizeof(copy), "%s", msg != NULL ? msg : "");
		sl_signal_stop_ctx(x->ctx);
		code2 = sl_ctx_cause(x->ctx, &msg2);
		CHK(code2 == code && msg2 != NULL && strcmp(msg2, copy) == 0,
		    "party %d: a second stop_ctx changed the cause from %d "
		    "\"%s\" to %d \"%s\"", p->id, code, copy, code2,
		    msg2 != NULL ? msg2 : "(null)");
	}
}

/* Empties slot xi (its registration has ended). */
static void
cx_retire(struct party *p, int xi, bool thread)
{
	struct sctx *x = &p->cx[xi];

	af_finish(p, x, thread);
	if (!x->stopped)
		cx_stop(p, xi);
	sl_ctx_release(x->ctx);
	sl_ctx_release(x->parent);
	x->ctx = NULL;
	x->parent = NULL;
	x->mask = 0;
}

static void
op_ctx(struct party *p, int xi, bool thread, bool storm)
{
	struct sctx *x = &p->cx[xi];

	if (x->ctx == NULL)
		cx_make(p, xi, storm);
	else if (!x->stopped)
		cx_stop(p, xi);
	else
		cx_retire(p, xi, thread);
}

/* Cancels the cancelable parent of slot xi, with a cause: the context
 * is done when that returns. */
static void
op_pcancel(struct party *p, int xi)
{
	struct sctx *x = &p->cx[xi];
	char         text[32];

	if (x->ctx == NULL || x->pk != PK_CANCEL || x->pdone)
		return;
	snprintf(text, sizeof(text), "parent %d.%d", p->id, xi);
	sl_ctx_cancel_cause(x->parent, CODE_BASE + p->id * 10 + xi, text);
	x->pdone = true;
	CHK(sl_ctx_err(x->ctx) != 0, "party %d: context %d is live after its "
	    "parent was canceled", p->id, xi);
	ctx_rule(p, xi, "after its parent's cancel");
}

/* ---- a party's round ----------------------------------------------------- */

static void
party_run(struct party *p, bool storm)
{
	for (long i = 0; i < p->quota; i++) {
		uint32_t r = rnd(&p->rng, 100);
		int      ci = (int) rnd(&p->rng, CH_PER);
		int      xi = (int) rnd(&p->rng, CX_PER);

		p->st.ops++;
		if (r < 22) {
			op_notify(p, ci);
		} else if (r < 31) {
			chan_stop(p, ci);
		} else if (r < 41) {
			drain(p, ci, "drain");
		} else if (r < 47) {
			op_wait(p);
		} else if (r < 57) {
			op_raise(p, storm);
		} else if (r < 63) {
			op_handshake(p, ci);
		} else if (r < 67) {
			op_bad(p, ci);
		} else if (r < 79) {
			op_ctx(p, xi, p->thread, storm);
		} else if (r < 82) {
			op_pcancel(p, xi);
		} else if (r < 84) {
			if (!p->ch[ci].closed) {
				SL_CHECK_OK(sl_chan_close(p->ch[ci].ch));
				p->ch[ci].closed = true;
				p->st.closes += p->ch[ci].mask != 0;
			}
		} else if (r < 86) {
			if (p->ch[ci].closed)
				chan_replace(p, ci);
		} else if (r < 92) {
			if (p->cx[xi].ctx != NULL)
				ctx_rule(p, xi, "looked at");
		} else if (p->thread) {
			if (rnd(&p->rng, 2))
				sched_yield();
			else
				nap(true, (int64_t) rnd(&p->rng, 200) * US);
		} else {
			if (rnd(&p->rng, 2))
				sl_yield();
			else
				nap(false, (int64_t) rnd(&p->rng, 200) * US);
		}
	}
}

/* What a party goroutine or thread is given. */
struct prun {
	struct party *p;     /* the party */
	bool          storm; /* the storm phase */
};

static struct prun g_prun[N_PARTY];

static void
party_go(void *arg)
{
	struct prun *r = arg;
	int          id = r->p->id;

	party_run(r->p, r->storm);
	SL_CHECK_OK(sl_chan_send(g_done, &id));
}

static void *
party_thread(void *arg)
{
	struct prun *r = arg;
	int          id = r->p->id;

	party_run(r->p, r->storm);
	SL_CHECK_OK(sl_chan_send(g_done, &id));
	sl_sched_release(); /* taken for it by the main goroutine */
	return (NULL);
}

/* Runs one chaotic phase: every party, at once, until done. */
static void
run_parties(bool storm, long quota, int nthr)
{
	int id;

	for (int i = 0; i < N_PARTY; i++) {
		struct party *p = &g_p[i];

		p->quota = quota;
		g_prun[i].p = p;
		g_prun[i].storm = storm;
		if (p->thread && i - N_GOR >= nthr) {
			SL_CHECK_OK(sl_chan_send(g_done, &p->id));
			continue;
		}
		if (!p->thread) {
			SL_CHECK_OK(sl_go(party_go, &g_prun[i]));
			continue;
		}
		/* A thread the main goroutine waits for holds the
		 * scheduler: else all goroutines asleep with no registration
		 * left would be a deadlock. */
		sl_sched_hold();
		if (pthread_create(&p->th, NULL, party_thread, &g_prun[i]) != 0)
			SLT_FATAL("pthread_create failed");
	}
	for (int i = 0; i < N_PARTY; i++) {
		int rv = sl_chan_recv_ctx(g_done, &id, NULL, sl_now() + HUNG);

		if (rv != 0) {
			sl_dump_goroutines(stderr);
			SLT_FATAL("parties did not finish a round: %s",
			    sl_errname(rv));
		}
	}
	for (int i = N_GOR; i < N_GOR + nthr; i++)
		SL_CHECK_OK(pthread_join(g_p[i].th, NULL));
}

/* ---- the quiet phase ----------------------------------------------------- */

/*
 * Makes the relay catch up: SIGHUP is raised at this thread while the
 * fence channel is registered for it, and received there.  The relay
 * takes the pending signals lowest number first, so the pass that
 * delivered SIGHUP also took every signal whose handler had run before;
 * its stop returns after that pass (a stop waits out a delivery in
 * flight).  Contexts are canceled after the channel pass, by the same
 * thread: a second fence is past those.  Only fences raise SIGHUP, and
 * nothing else registers it: were another SIGHUP in flight, the fence
 * could receive that one and leave its own to arrive later.
 */
static void
fence(void)
{
	static const int hup[] = { SIGHUP };
	int              v = 0, rv;

	rv = sl_signal_notify(g_fence, hup, 1);
	CHK(rv == 0, "fence: sl_signal_notify returned %s", sl_errname(rv));
	CHK(do_raise(SIGHUP, RM_PTKILL) == 0, "fence: pthread_kill failed");
	rv = must_rv(sl_chan_recv_ctx(g_fence, &v, NULL, must_by()));
	CHK(rv == 0 && v == SIGHUP, "fence: waited for SIGHUP: %s, value %d",
	    sl_errname(rv), v);
	sl_signal_stop(g_fence);
	while (sl_chan_tryrecv(g_fence, &v) == 0)
		CHK(v == SIGHUP, "fence channel got %d", v);
}

/* Waits for the AfterFuncs of done contexts; their registrations end. */
static void
settle(void)
{
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CX_PER; j++) {
			struct sctx *x = &g_p[i].cx[j];

			if (x->ctx == NULL || x->af == NULL || x->stopped ||
			    sl_ctx_err(x->ctx) == 0)
				continue;
			CHK(af_wait(x->af, false), "party %d: the AfterFunc "
			    "of context %d did not return", i, j);
			x->stopped = true;
		}
	}
}

/* Registrations of each signal, as the parties' models have them. */
static void
count_regs(int cnt[65])
{
	memset(cnt, 0, 65 * sizeof(int));
	for (int i = 0; i < N_PARTY; i++) {
		for (int s = 1; s <= 64; s++) {
			for (int j = 0; j < CH_PER; j++)
				cnt[s] += (g_p[i].ch[j].mask & bit(s)) != 0;
			for (int j = 0; j < CX_PER; j++)
				cnt[s] += g_p[i].cx[j].ctx != NULL &&
				    !g_p[i].cx[j].stopped &&
				    (g_p[i].cx[j].mask & bit(s)) != 0;
		}
	}
}

/* Every signal in play: the relay's handler exactly while it has a
 * registration, the program's disposition otherwise; then a signal
 * without one runs the program's handler. */
static void
check_dispositions(bool runs)
{
	int cnt[65];

	count_regs(cnt);
	for (int i = 0; i < g_nsig; i++) {
		int s = g_sig[i];

		if (cnt[s] > 0) {
			chk_caught(s, "quiet phase");
		} else {
			chk_program(s, "quiet phase");
			if (runs)
				chk_program_runs(s, "quiet phase");
		}
	}
}

/* The quiet phase: the relay caught up (exact) or not (storm), every
 * channel drained and every context's cause checked. */
static void
quiesce(bool exact)
{
	if (exact) {
		fence();
		fence();
	}
	settle();
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CH_PER; j++)
			drain(&g_p[i], j, "drain in the quiet phase");
		for (int j = 0; j < CX_PER; j++)
			if (g_p[i].cx[j].ctx != NULL)
				ctx_rule(&g_p[i], j, "in the quiet phase");
	}
	check_dispositions(exact);
}

/* Checks what channel ci of p got from a probe of the signals pm,
 * raised in order[0..np) one at a time (one) or together. */
static void
probe_chan(struct party *p, int ci, uint64_t pm, const int *order, int np,
    bool one)
{
	struct chn *c = &p->ch[ci];
	uint64_t    hit = c->closed ? 0 : c->mask & pm, gm = 0;
	int         k = __builtin_popcountll(hit);
	int         room = c->closed ? 0 : c->cap - c->fill;
	int         want = k < room ? k : room, got[SIGS_MAX], n = 0, v, rv;
	int         expect[SIGS_MAX], ne = 0;
	char        mb[128], pb[128];

	for (int i = 0; i < c->fill; i++) {
		rv = sl_chan_tryrecv(c->ch, &v);
		CHK(rv == 0 && v == SENTINEL, "party %d channel %d: sentinel "
		    "%d of %d: %s, value %d", p->id, ci, i, c->fill,
		    sl_errname(rv), v);
	}
	c->fill = 0;
	while (n < SIGS_MAX && sl_chan_tryrecv(c->ch, &v) == 0)
		got[n++] = v;
	CHK(n == want, "party %d channel %d (cap %d, %d free, registered for "
	    "%s%s): a probe of %s raised %s got %d values, not %d", p->id,
	    ci, c->cap, room, mask_str(c->mask, mb, sizeof(mb)),
	    c->closed ? ", closed" : "", mask_str(pm, pb, sizeof(pb)),
	    one ? "one at a time" : "together", n, want);
	for (int i = 0; i < np; i++)
		if ((hit & bit(order[i])) != 0)
			expect[ne++] = order[i];
	for (int i = 0; i < n; i++) {
		v = got[i];
		CHK(in_range(v) && (hit & bit(v)) != 0 && (gm & bit(v)) == 0,
		    "party %d channel %d (registered for %s): a probe of %s "
		    "gave it %d%s", p->id, ci, mask_str(c->mask, mb,
		    sizeof(mb)), mask_str(pm, pb, sizeof(pb)), v,
		    in_range(v) && (gm & bit(v)) != 0 ? " twice" : "");
		if (in_range(v)) {
			gm |= bit(v);
			c->got[v]++;
		}
		if (one && n == want && i < ne)
			CHK(v == expect[i], "party %d channel %d: value %d of "
			    "a probe raised one at a time is %d, not %d",
			    p->id, ci, i, v, expect[i]);
	}
}

/* Checks what a probe did to context xi of p. */
static void
probe_ctx(struct party *p, int xi, uint64_t pm, const int *order, int np,
    bool one)
{
	struct sctx *x = &p->cx[xi];
	const char  *msg = NULL;
	int          err = sl_ctx_err(x->ctx), code, first = 0, s;
	uint64_t     hit = x->mask & pm;
	bool         pdone = x->parent != NULL && sl_ctx_err(x->parent) != 0;
	char         mb[128], pb[128];

	code = sl_ctx_cause(x->ctx, &msg);
	if (x->pre_err != 0) {
		CHK(err == x->pre_err && code == x->pre_code && msg != NULL &&
		    strcmp(msg, x->pre_msg) == 0, "party %d context %d: a "
		    "probe changed a done context from %d \"%s\" to %d \"%s\"",
		    p->id, xi, x->pre_code, x->pre_msg, code,
		    msg != NULL ? msg : "(null)");
		return;
	}
	for (int i = 0; i < np && first == 0; i++)
		if ((hit & bit(order[i])) != 0)
			first = order[i];
	ctx_rule(p, xi, "after a probe");
	if (err != 0 && (s = cause_sig(msg, x->mask)) != 0) {
		p->st.ctx_sig++;
		CHK((hit & bit(s)) != 0 && (!one || s == first), "party %d "
		    "context %d (signals %s): a probe of %s raised %s made "
		    "its cause \"%s\"", p->id, xi, mask_str(x->mask, mb,
		    sizeof(mb)), mask_str(pm, pb, sizeof(pb)),
		    one ? "one at a time" : "together", msg);
		return;
	}
	if (pdone)
		return; /* canceled by the parent (ctx_rule checked how) */
	CHK(hit == 0 ? err == 0 : err != 0, "party %d context %d (%s parent, "
	    "signals %s): after a probe of %s it is %s", p->id, xi,
	    pk_name[x->pk], mask_str(x->mask, mb, sizeof(mb)),
	    mask_str(pm, pb, sizeof(pb)), err == 0 ? "live" : "done");
}

/*
 * A probe: 1 to 3 signals, raised one at a time or together, by any
 * means, while a witness channel registered for all of them makes sure
 * no signal goes to the program and tells when the relay has delivered
 * them.  Every party channel is first left empty, filled with sentinels,
 * or given some room.
 */
static void
probe(uint64_t *rng)
{
	int      order[3], np = 1 + (int) rnd(rng, 3), v = 0, rv;
	uint64_t pm = 0, gm = 0;
	bool     one = rnd(rng, 2) != 0;
	sl_chan *wit;
	char     pb[128];

	for (int i = 0; i < np; i++) {
		int s;

		do
			s = rand_sig(rng);
		while ((pm & bit(s)) != 0);
		order[i] = s;
		pm |= bit(s);
	}
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CH_PER; j++) {
			struct chn *c = &g_p[i].ch[j];
			uint32_t    k = rnd(rng, 4);
			int         zero = SENTINEL;

			c->fill = 0;
			if (c->closed || c->cap == 0)
				continue;
			if (k == 1)
				c->fill = c->cap;
			else if (k == 2)
				c->fill = (int) rnd(rng, (uint32_t) c->cap);
			for (int f = 0; f < c->fill; f++)
				CHK((rv = sl_chan_trysend(c->ch, &zero)) == 0,
				    "filling a channel: %s", sl_errname(rv));
		}
		for (int j = 0; j < CX_PER; j++) {
			struct sctx *x = &g_p[i].cx[j];
			const char  *msg = NULL;

			if (x->ctx == NULL)
				continue;
			x->pre_err = sl_ctx_err(x->ctx);
			x->pre_code = sl_ctx_cause(x->ctx, &msg);
			snprintf(x->pre_msg, sizeof(x->pre_msg), "%s",
			    msg != NULL ? msg : "");
		}
	}
	if ((wit = sl_chan_make(sizeof(int), 8)) == NULL)
		SLT_FATAL("out of memory");
	rv = sl_signal_notify(wit, order, (size_t) np);
	CHK(rv == 0, "probe: sl_signal_notify returned %s", sl_errname(rv));
	for (int i = 0; i < np; i++) {
		int how = (int) rnd(rng, RM_N);

		rv = do_raise(order[i], how);
		CHK(rv == 0, "probe: raising %d (way %d) failed", order[i],
		    how);
		if (!one)
			continue;
		rv = must_rv(sl_chan_recv_ctx(wit, &v, NULL, must_by()));
		CHK(rv == 0 && v == order[i], "probe: the witness waited for "
		    "%d (raised way %d): %s, value %d", order[i], how,
		    sl_errname(rv), v);
	}
	for (int i = 0; !one && i < np; i++) {
		rv = must_rv(sl_chan_recv_ctx(wit, &v, NULL, must_by()));
		CHK(rv == 0 && in_range(v) && (pm & bit(v)) != 0 &&
		    (gm & bit(v)) == 0, "probe of %s: the witness got %s, "
		    "value %d", mask_str(pm, pb, sizeof(pb)), sl_errname(rv),
		    v);
		if (in_range(v))
			gm |= bit(v);
	}
	sl_signal_stop(wit);
	CHK(sl_chan_tryrecv(wit, &v) == SL_EAGAIN, "probe of %s: the witness "
	    "got %d once more", mask_str(pm, pb, sizeof(pb)), v);
	sl_chan_release(wit);
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			probe_chan(&g_p[i], j, pm, order, np, one);
	fence();
	fence();
	settle();
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CX_PER; j++)
			if (g_p[i].cx[j].ctx != NULL)
				probe_ctx(&g_p[i], j, pm, order, np, one);
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			drain(&g_p[i], j, "drain after a probe");
	g_probes++;
}

/* glibc's own signals 32 and 33 are refused and register nothing. */
static void
check_glibc_signals(uint64_t *rng)
{
	sl_chan *c = sl_chan_make(sizeof(int), 4);
	int      s, v, rv, e;

	if (c == NULL)
		SLT_FATAL("out of memory");
	s = rand_sig(rng);
	for (int own = 32; own <= 33; own++) {
		int list[2] = { s, own };

		errno = 0;
		rv = sl_signal_notify(c, list, 2);
		e = errno;
		CHK(rv == SL_EINVAL, "a list with glibc's signal %d: %s "
		    "(errno %d)", own, sl_errname(rv), e);
	}
	chk_program(s, "after a list with 32 or 33");
	chk_program_runs(s, "after a list with 32 or 33");
	fence();
	CHK(sl_chan_tryrecv(c, &v) == SL_EAGAIN, "a failed list of %d and "
	    "32 or 33 registered it: got %d", s, v);
	sl_signal_stop(c);
	sl_chan_release(c);
}

/* ---- the first sl_main: exact rounds ------------------------------------- */

/* What a case is run with. */
struct cs_run {
	uint64_t rng;    /* the main goroutine's generator */
	int      rounds; /* rounds */
	long     quota;  /* operations per party and round */
	int      nthr;   /* thread parties in use */
	bool     late;   /* start the late thread at the end */
	bool     stop_all; /* end every registration before returning */
};

static void *
late_thread(void *arg)
{
	struct late *l = arg;
	int          v, rv;

	for (;;) {
		int      list[4], n;
		uint64_t m = rand_list(&l->rng, list, &n);

		rv = sl_signal_notify(l->ch, list, (size_t) n);
		if (rv == SL_ESTATE)
			break;
		CHK(rv == 0, "late thread: sl_signal_notify returned %s",
		    sl_errname(rv));
		l->allowed |= m;
		atomic_fetch_add(&l->loops, 1);
		/* Its own: the relay's, or the program's handler once the
		 * end of sl_main dropped it; never a default action. */
		if (!g_child && rnd(&l->rng, 2))
			(void) do_raise(list[0], RM_PTKILL);
		while (sl_chan_tryrecv(l->ch, &v) == 0)
			CHK(in_range(v) && (l->allowed & bit(v)) != 0,
			    "late thread got %d", v);
		if (rnd(&l->rng, 3) == 0) {
			sl_signal_stop(l->ch);
			while (sl_chan_tryrecv(l->ch, &v) == 0)
				CHK(in_range(v) && (l->allowed & bit(v)) != 0,
				    "late thread got %d", v);
			l->allowed = 0;
		}
		if (atomic_load(&l->loops) > 10000000)
			break;
	}
	l->len_end = sl_chan_len(l->ch);
	return (NULL);
}

static void
body_exact(void *arg)
{
	struct cs_run *r = arg;

	check_glibc_signals(&r->rng);
	for (int k = 0; k < r->rounds && !atomic_load(slt_failures()); k++) {
		atomic_store(&g_round, k);
		run_parties(false, r->quota, r->nthr);
		quiesce(true);
		for (int n = 1 + (int) rnd(&r->rng, 2); n > 0; n--)
			probe(&r->rng);
		check_dispositions(true);
		g_rounds++;
	}
	/* Leave registrations at random; no AfterFunc may run after the
	 * end of sl_main (its goroutine would be abandoned). */
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CX_PER; j++) {
			af_finish(&g_p[i], &g_p[i].cx[j], false);
			if (g_p[i].cx[j].ctx != NULL && r->stop_all &&
			    !g_p[i].cx[j].stopped)
				cx_stop(&g_p[i], j);
		}
		for (int j = 0; j < CH_PER; j++)
			if (r->stop_all)
				chan_stop(&g_p[i], j);
	}
	if (!r->late)
		return;
	if (pthread_create(&g_late.th, NULL, late_thread, &g_late) != 0)
		SLT_FATAL("pthread_create failed");
	/* Let it get going, so that the end races its calls. */
	for (long n = 1 + rnd(&r->rng, 30); atomic_load(&g_late.loops) < n;)
		sl_sleep(20 * US);
}

/* ---- the storm ----------------------------------------------------------- */

/* Forks a child that sends CHILD_KILLS signals to this process. */
static pid_t
storm_fork(struct storm *st)
{
	int   sigs[CHILD_KILLS];
	pid_t pid;

	for (int i = 0; i < CHILD_KILLS; i++) {
		sigs[i] = rand_sig(&st->rng);
		atomic_fetch_add(&g_raised[sigs[i]], 1);
	}
	atomic_fetch_add(&g_raised[SIGCHLD], 1); /* its exit */
	pid = fork();
	if (pid == 0) {
		pid_t parent = getppid();

		for (int i = 0; i < CHILD_KILLS; i++) {
			struct timespec ts = { 0, 30 * 1000 };

			(void) syscall(SYS_kill, parent, sigs[i]);
			(void) syscall(SYS_nanosleep, &ts, NULL);
		}
		_exit(0);
	}
	return (pid);
}

static void *
storm_thread(void *arg)
{
	struct storm *st = arg;
	int           status;

	st->child = st->fork ? storm_fork(st) : -1;
	while (!atomic_load(&g_storm_stop)) {
		int             s = rand_sig(&st->rng);
		struct timespec ts = { 0, (long) (10 + rnd(&st->rng, 90)) *
		    1000 };

		(void) do_raise(s, rnd(&st->rng, 4) == 0 ?
		    (int) rnd(&st->rng, RM_SYNC) :
		    RM_KILL + (int) rnd(&st->rng, 2));
		st->sent++;
		(void) nanosleep(&ts, NULL);
	}
	if (st->child > 0)
		while (waitpid(st->child, &status, 0) < 0 && errno == EINTR)
			; /* ECHILD: SIGCHLD was ignored, it is reaped */
	return (NULL);
}

static void
body_storm(void *arg)
{
	struct cs_run *r = arg;

	for (int k = 0; k < r->rounds && !atomic_load(slt_failures()); k++) {
		atomic_store(&g_round, k);
		run_parties(true, r->quota, r->nthr);
		quiesce(false);
		check_dispositions(false);
	}
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CX_PER; j++)
			af_finish(&g_p[i], &g_p[i].cx[j], false);
}

/* ---- the third sl_main --------------------------------------------------- */

static void
body_again(void *arg)
{
	struct cs_run *r = arg;
	sl_chan       *flush = sl_chan_make(sizeof(int), 2 * SIGS_MAX);

	/* A handler of the relay that was still running on a storm thread
	 * when the last sl_main ended may have marked its signal pending
	 * (a signal in flight, like one pending when a channel registers):
	 * let it go to a channel of no interest first. */
	if (flush == NULL)
		SLT_FATAL("out of memory");
	CHK(sl_signal_notify(flush, g_sig, (size_t) g_nsig) == 0, "flush: "
	    "sl_signal_notify failed");
	fence();
	sl_signal_stop(flush);
	sl_chan_release(flush);
	for (int i = 0; i < g_nsig; i++) {
		int      s = g_sig[(i + (int) rnd(&r->rng, (uint32_t) g_nsig)) %
		    g_nsig];
		int      list[2] = { s, rand_sig(&r->rng) };
		int      v = 0, rv;
		sl_chan *c = sl_chan_make(sizeof(int), 4);
		sl_ctx  *ctx = NULL;
		const char *msg = NULL;
		char     want[32];

		if (c == NULL)
			SLT_FATAL("out of memory");
		CHK((rv = sl_signal_notify(c, list, 2)) == 0, "again: "
		    "sl_signal_notify returned %s", sl_errname(rv));
		chk_caught(s, "third sl_main");
		CHK((rv = sl_signal_ctx(sl_ctx_background(), &s, 1, &ctx)) ==
		    0, "again: sl_signal_ctx returned %s", sl_errname(rv));
		CHK(do_raise(s, (int) rnd(&r->rng, RM_N)) == 0, "raise failed");
		rv = must_rv(sl_chan_recv_ctx(c, &v, NULL, must_by()));
		CHK(rv == 0 && v == s, "again: waited for %d: %s, value %d",
		    s, sl_errname(rv), v);
		sl_signal_stop(c);
		CHK(sl_chan_tryrecv(c, &v) == SL_EAGAIN, "again: %d came "
		    "twice (then %d)", s, v);
		if (ctx != NULL) {
			rv = must_rv(sl_chan_recv_ctx(sl_ctx_done(ctx), NULL,
			    NULL, must_by()));
			CHK(rv == SL_ECLOSED, "again: the context of %d: %s", s,
			    sl_errname(rv));
			sig_cause(s, want, sizeof(want));
			CHK(sl_ctx_cause(ctx, &msg) == SL_ECANCELED &&
			    msg != NULL && strcmp(msg, want) == 0, "again: "
			    "cause \"%s\", not \"%s\"", msg != NULL ? msg :
			    "(null)", want);
			sl_signal_stop_ctx(ctx);
			sl_signal_stop_ctx(ctx);
			CHK(sl_ctx_cause(ctx, &msg) == SL_ECANCELED &&
			    msg != NULL && strcmp(msg, want) == 0, "again: "
			    "stop_ctx changed the cause to \"%s\"",
			    msg != NULL ? msg : "(null)");
			sl_ctx_release(ctx);
		}
		chk_program(s, "third sl_main, after the stops");
		chk_program_runs(s, "third sl_main, after the stops");
		sl_chan_release(c);
	}
}

/* ---- the cases ----------------------------------------------------------- */

/* One test case: the worker count and the seed. */
struct cs_case {
	int      procs;    /* workers */
	uint64_t seed;     /* the built-in seed */
	uint64_t run_seed; /* the seed in use */
};

/* The watchdog of a case: a relay that blocks (on a full channel, on its
 * lock) hangs everything, sl_main included; this reports it with the seed
 * and every goroutine's wait, and aborts. */
static atomic_int g_case_done;

static void *
watchdog(void *arg)
{
	int64_t limit = (slt_under_valgrind() ? 5 : TSAN_ON ? 3 : 1) * 60 *
	    SL_SECOND, end = sl_now() + limit;

	(void) arg;
	while (!atomic_load(&g_case_done) && sl_now() < end)
		usleep(20 * 1000);
	if (atomic_load(&g_case_done))
		return (NULL);
	fprintf(stderr, "chaos_signal seed 0x%" PRIx64 " procs %d: %s round "
	    "%d has not ended after %d s: hung; replay with "
	    "SLUICE_CHAOS_SEED=0x%" PRIx64 "\n", g_seed, g_procs,
	    ph_name[atomic_load(&g_phase)], atomic_load(&g_round),
	    (int) (limit / SL_SECOND), g_seed);
	sl_dump_goroutines(stderr);
	fflush(stderr);
	abort();
}

/* Runs fn under a fresh scheduler; a failure of sl_main is a check. */
static void
run_main(int procs, sl_fn fn, void *arg)
{
	sl_opts o;
	int     rv;

	memset(&o, 0, sizeof(o));
	o.procs = procs;
	rv = sl_main_opts(&o, fn, arg);
	CHK(rv == 0, "sl_main returned %s", sl_errname(rv));
}

/* The parties, their channels, and the shared channels. */
static void
world_init(uint64_t seed)
{
	memset(g_p, 0, sizeof(g_p));
	for (int i = 0; i < N_PARTY; i++) {
		uint64_t x = seed ^ ((uint64_t) (i + 1) << 48);

		g_p[i].id = i;
		g_p[i].thread = i >= N_GOR;
		g_p[i].rng = slt_rnd(&x);
		for (int j = 0; j < CH_PER; j++)
			chan_make(&g_p[i], j);
	}
	g_fence = sl_chan_make(sizeof(int), 1);
	g_done = sl_chan_make(sizeof(int), N_PARTY);
	if (g_fence == NULL || g_done == NULL)
		fail_msg("out of memory");
	for (int s = 0; s < 65; s++) {
		atomic_store(&g_prog[s], 0);
		atomic_store(&g_raised[s], 0);
	}
	atomic_store(&g_relay, 0);
	atomic_store(&g_wait, WAIT);
	g_probes = 0;
	g_rounds = 0;
}

static void
world_free(void)
{
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CX_PER; j++) {
			struct sctx *x = &g_p[i].cx[j];

			free(x->af); /* none: finished in sl_main */
			if (x->ctx != NULL && rnd(&g_p[i].rng, 2))
				sl_signal_stop_ctx(x->ctx); /* no scheduler */
			sl_ctx_release(x->ctx);
			sl_ctx_release(x->parent);
		}
		for (int j = 0; j < CH_PER; j++)
			sl_chan_release(g_p[i].ch[j].ch);
	}
	memset(g_p, 0, sizeof(g_p));
	sl_chan_release(g_fence);
	sl_chan_release(g_done);
	g_fence = g_done = NULL;
}

/* sl_main has returned: it dropped every registration. */
static void
world_after_main(void)
{
	for (int i = 0; i < N_PARTY; i++) {
		for (int j = 0; j < CH_PER; j++)
			g_p[i].ch[j].mask = 0;
		for (int j = 0; j < CX_PER; j++)
			if (g_p[i].cx[j].ctx != NULL)
				g_p[i].cx[j].stopped = true;
	}
}

/* The lengths of every party channel. */
static void
lens(size_t len[N_PARTY][CH_PER])
{
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			len[i][j] = sl_chan_len(g_p[i].ch[j].ch);
}

/* After sl_main: nothing registers, every disposition is the program's,
 * raising runs its handlers, and no channel gets anything. */
static void
after_main(bool runs)
{
	size_t   before[N_PARTY][CH_PER], now[N_PARTY][CH_PER];
	sl_chan *c = sl_chan_make(sizeof(int), 1);
	sl_ctx  *ctx = (sl_ctx *) c;
	int      one[] = { SIGUSR1 }, rv;

	atomic_store(&g_phase, PH_AFTER);
	if (c == NULL)
		fail_msg("out of memory");
	CHK((rv = sl_signal_notify(c, one, 1)) == SL_ESTATE, "sl_signal_notify "
	    "with no scheduler: %s", sl_errname(rv));
	CHK((rv = sl_signal_ctx(sl_ctx_background(), one, 1, &ctx)) ==
	    SL_ESTATE && ctx == NULL, "sl_signal_ctx with no scheduler: %s",
	    sl_errname(rv));
	sl_chan_release(c);
	lens(before);
	for (int i = 0; i < g_nsig; i++) {
		chk_program(g_sig[i], "after sl_main");
		if (runs)
			chk_program_runs(g_sig[i], "after sl_main");
	}
	lens(now);
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			CHK(now[i][j] == before[i][j], "after sl_main, party "
			    "%d channel %d went from %zu to %zu values", i, j,
			    before[i][j], now[i][j]);
}

static void
test_chaos_signal(void **state)
{
	struct cs_case *c = *state;
	struct cs_run   r;
	size_t          before[N_PARTY][CH_PER], now[N_PARTY][CH_PER];
	long            sent = 0;
	int64_t         t0 = sl_now();
	pthread_t       dog;

	atomic_store(slt_failures(), 0);
	c->run_seed = slt_seed(c->seed);
	g_seed = c->run_seed;
	g_procs = c->procs;
	atomic_store(&g_case_done, 0);
	if (pthread_create(&dog, NULL, watchdog, NULL) != 0)
		fail_msg("pthread_create failed");
	slt_chaos_reset();
	sl_chan_set_panic(false); /* a closed channel only refuses */
	pick_signals();
	memset(&r, 0, sizeof(r));
	r.rng = c->run_seed;
	install_program(&r.rng, false);
	g_own_only = false;
	g_child = false;
	world_init(c->run_seed);
	r.quota = slt_scaled_min(OPS, OPS_MIN);
	r.rounds = (int) slt_scaled_min(ROUNDS, ROUNDS_MIN);
	if (TSAN_ON) {
		r.quota = r.quota / TSAN_DIVISOR > OPS_MIN ?
		    r.quota / TSAN_DIVISOR : OPS_MIN;
		r.rounds = r.rounds / TSAN_DIVISOR > ROUNDS_MIN ?
		    r.rounds / TSAN_DIVISOR : ROUNDS_MIN;
	}
	r.nthr = N_THR;

	/* The first sl_main: exact rounds, a thread racing its end. */
	atomic_store(&g_phase, PH_EXACT);
	memset(&g_late, 0, sizeof(g_late));
	g_late.rng = c->run_seed ^ 0x1a7e;
	if ((g_late.ch = sl_chan_make(sizeof(int), 4)) == NULL)
		fail_msg("out of memory");
	r.late = true;
	run_main(c->procs, body_exact, &r);
	world_after_main();
	SL_CHECK_OK(pthread_join(g_late.th, NULL));
	CHK(sl_chan_len(g_late.ch) == g_late.len_end, "the late thread's "
	    "channel went from %zu to %zu values after SL_ESTATE",
	    g_late.len_end, sl_chan_len(g_late.ch));
	after_main(true);
	sl_chan_release(g_late.ch);

	/* The second: a storm of process-directed signals, past its end. */
	atomic_store(&g_phase, PH_STORM);
	atomic_store(&g_storm_stop, 0);
	for (int i = 0; i < N_STORM; i++) {
		memset(&g_storm[i], 0, sizeof(g_storm[i]));
		g_storm[i].rng = c->run_seed ^ ((uint64_t) (i + 7) << 40);
		g_storm[i].fork = i == 0 && !slt_under_valgrind();
		if (pthread_create(&g_storm[i].th, NULL, storm_thread,
		    &g_storm[i]) != 0)
			fail_msg("pthread_create failed");
	}
	r.late = false;
	r.rounds = (int) slt_scaled_min(STORM_ROUNDS, ROUNDS_MIN);
	if (TSAN_ON)
		r.rounds = ROUNDS_MIN;
	run_main(c->procs, body_storm, &r);
	world_after_main();
	lens(before);
	for (int i = 0; i < g_nsig; i++)
		chk_program(g_sig[i], "after the storm's sl_main");
	usleep(20 * 1000); /* the storm goes on */
	atomic_store(&g_storm_stop, 1);
	for (int i = 0; i < N_STORM; i++) {
		SL_CHECK_OK(pthread_join(g_storm[i].th, NULL));
		sent += g_storm[i].sent;
	}
	lens(now);
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			CHK(now[i][j] == before[i][j], "after the storm's "
			    "sl_main, party %d channel %d went from %zu to %zu "
			    "values", i, j, before[i][j], now[i][j]);
	for (int i = 0; i < g_nsig; i++)
		chk_program(g_sig[i], "after the storm");

	/* The third: registering works again; the old channels get
	 * nothing. */
	atomic_store(&g_phase, PH_AGAIN);
	lens(before);
	run_main(c->procs, body_again, &r);
	lens(now);
	for (int i = 0; i < N_PARTY; i++)
		for (int j = 0; j < CH_PER; j++)
			CHK(now[i][j] == before[i][j], "in the third sl_main, "
			    "old party %d channel %d went from %zu to %zu "
			    "values", i, j, before[i][j], now[i][j]);
	after_main(true);

	{
		struct stats t;

		memset(&t, 0, sizeof(t));
		for (int i = 0; i < N_PARTY; i++) {
			struct stats *s = &g_p[i].st;

			t.ops += s->ops;
			t.notifies += s->notifies;
			t.stops += s->stops;
			t.values += s->values;
			t.raised += s->raised;
			t.shakes += s->shakes;
			t.shakes_inc += s->shakes_inc;
			t.bad += s->bad;
			t.ctx_made += s->ctx_made;
			t.ctx_sig += s->ctx_sig;
			t.afs += s->afs;
			t.closes += s->closes;
		}
		printf("chaos_signal seed 0x%" PRIx64 " procs %d: %ld rounds, "
		    "%ld probes in %.2f s: %ld ops, %ld registrations, %ld "
		    "stops, %ld values, %ld raised, %ld handshakes (%ld "
		    "inconclusive), %ld bad calls, %ld contexts (%ld by a "
		    "signal, %ld AfterFuncs), %ld closed while registered; "
		    "late thread %ld registrations; storm %ld signals\n",
		    c->run_seed, c->procs, g_rounds, g_probes,
		    (double) (sl_now() - t0) / SL_SECOND, t.ops, t.notifies,
		    t.stops, t.values, t.raised, t.shakes, t.shakes_inc, t.bad,
		    t.ctx_made, t.ctx_sig, t.afs, t.closes,
	    atomic_load(&g_late.loops),
		    sent);
		fflush(stdout);
	}
	world_free();
	restore_default();
	atomic_store(&g_case_done, 1);
	SL_CHECK_OK(pthread_join(dog, NULL));
	slt_replay_hint("chaos_signal", c->run_seed, c->procs);
	slt_assert_no_failures();
}

/* ---- default dispositions, in child processes ---------------------------- */

/* What a default-disposition child runs. */
struct dfl_arg {
	uint64_t seed;  /* its seed */
	int      procs; /* workers */
	bool     stop;  /* stop every registration (else the end of
	                   sl_main drops them) */
	int      fin;   /* the signal that must then kill it */
};

static void
dfl_child(void *arg)
{
	struct dfl_arg *d = arg;
	struct cs_run   r;
	int             failed;

	memset(&r, 0, sizeof(r));
	r.rng = d->seed;
	g_seed = d->seed;
	g_procs = d->procs;
	atomic_store(&g_phase, PH_CHILD);
	atomic_store(slt_failures(), 0);
	install_program(&r.rng, true);
	g_own_only = true; /* a default action would end the child */
	g_child = true;
	world_init(d->seed);
	r.quota = slt_scaled_min(OPS, OPS_MIN) / 2 + 1;
	r.rounds = (int) slt_scaled_min(CHILD_ROUNDS, ROUNDS_MIN);
	r.nthr = 1;
	r.stop_all = d->stop;
	run_main(d->procs, body_exact, &r);
	for (int i = 0; i < g_nsig; i++)
		chk_program(g_sig[i], "child, after sl_main");
	world_free();
	failed = atomic_load(slt_failures());
	if (failed != 0)
		fprintf(stderr, "%d check(s) failed in the child\n", failed);
	fflush(stderr);
	(void) pthread_kill(pthread_self(), d->fin);
	fprintf(stderr, "still alive after signal %d\n", d->fin);
	_exit(3);
}

static void
test_chaos_signal_default_disposition_comes_back_in_child(void **state)
{
	uint64_t seed = slt_seed(0xd5f1), x = seed;
	int      n = (int) slt_scaled_min(N_DFL, 2);

	(void) state;
	pick_signals();
	for (int i = 0; i < n; i++) {
		struct dfl_arg d;
		slt_child      res;
		char           buf[96];

		d.seed = slt_rnd(&x);
		d.procs = 1 + i % 2;
		d.stop = (i / 2) % 2 == 1;
		do
			d.fin = g_sig[rnd(&x, (uint32_t) g_nsig)];
		while (dfl_ignores(d.fin));
		assert_int_equal(slt_fork(dfl_child, &d, &res), 0);
		if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != d.fin ||
		    strstr(res.err, "failed") != NULL) {
			fprintf(stderr, "%s", res.err);
			fail_msg("child seed 0x%" PRIx64 " procs %d (%s) "
			    "should have died of signal %d, %s; replay with "
			    "SLUICE_CHAOS_SEED=0x%" PRIx64, d.seed, d.procs,
			    d.stop ? "stopped all" : "left registrations",
			    d.fin, slt_status_str(res.status, buf,
			    sizeof(buf)), seed);
		}
	}
}

/* ---- deadlocks, in child processes --------------------------------------- */

/* One deadlock child: its waiters and what they wait for. */
static struct {
	uint64_t     rng;             /* its generator */
	bool         thread_stops;    /* a thread stops them (never sends) */
	int          k;               /* waiters */
	int          sig[DL_MAX];     /* waiter i's own signal */
	uint64_t     mask[DL_MAX];    /* all it is registered for */
	bool         use_ctx[DL_MAX]; /* it waits on a signal context */
	sl_chan     *ch[DL_MAX];      /* its channel */
	sl_ctx      *ctx[DL_MAX];     /* or its context */
	sl_chan     *dead;            /* nobody ever sends on it */
	sl_chan     *left;            /* registered by the first sl_main */
	sl_ctx      *left_ctx;        /* ditto */
	sl_ctx      *kids[DL_KIDS];   /* children of left_ctx */
	int          last;            /* the signal raised last in it */
	atomic_int   ready;           /* waiters registered */
	atomic_int   state[DL_MAX];   /* 1 registered, 2 got its signal,
	                                 3 done */
	atomic_int   got[DL_MAX];     /* values it received */
	atomic_int   sent;            /* signals the sender raised */
	_Atomic int64_t guard_end;    /* the guard ends the child then */
	sl_waitgroup wg;              /* the waiters */
	pthread_t    th;              /* the sender or stopper */
} dl;

/* How long a deadlock child may take in all, and after the last stop of
 * a thread: generous, for a loaded machine (a hang is what they catch). */
static int64_t
dl_limit(bool after_stop)
{
	int64_t f = slt_under_valgrind() ? 4 : TSAN_ON ? 2 : 1;

	return (f * (after_stop ? 5 : 30) * SL_SECOND);
}

static void
dl_waiter(void *arg)
{
	int  i = (int) (intptr_t) arg, v = 0, rv;
	char want[32];

	if (dl.use_ctx[i]) {
		const char *msg = NULL;

		rv = sl_signal_ctx(sl_ctx_background(), &dl.sig[i], 1,
		    &dl.ctx[i]);
		SL_CHECK_OK(rv);
		atomic_store(&dl.state[i], 1);
		atomic_fetch_add(&dl.ready, 1);
		SL_CHECK_ERR(sl_chan_recv(sl_ctx_done(dl.ctx[i]), NULL),
		    SL_ECLOSED);
		atomic_store(&dl.state[i], 2);
		sig_cause(dl.sig[i], want, sizeof(want));
		SL_CHECK_EQ(sl_ctx_cause(dl.ctx[i], &msg), SL_ECANCELED);
		SL_CHECK(msg != NULL && strcmp(msg, want) == 0);
		sl_signal_stop_ctx(dl.ctx[i]);
	} else {
		int list[DL_MAX], n = 0;

		for (int s = 1; s <= 64; s++)
			if ((dl.mask[i] & bit(s)) != 0)
				list[n++] = s;
		SL_CHECK_OK(sl_signal_notify(dl.ch[i], list, (size_t) n));
		atomic_store(&dl.state[i], 1);
		atomic_fetch_add(&dl.ready, 1);
		do {
			/* No deadline: only the registrations keep this
			 * from being a deadlock. */
			rv = sl_chan_recv(dl.ch[i], &v);
			atomic_fetch_add(&dl.got[i], 1);
			SL_CHECK_OK(rv);
			SL_CHECK(in_range(v) && (dl.mask[i] & bit(v)) != 0);
		} while (rv == 0 && v != dl.sig[i] && !dl.thread_stops);
		atomic_store(&dl.state[i], 2);
		sl_signal_stop(dl.ch[i]);
	}
	atomic_store(&dl.state[i], 3);
	sl_waitgroup_done(&dl.wg);
}

/* Sends each waiter its signal, at the process, once they all wait. */
static void *
dl_sender(void *arg)
{
	int order[DL_MAX];

	(void) arg;
	while (atomic_load(&dl.ready) < dl.k)
		usleep(1000);
	usleep((useconds_t) (10 + rnd(&dl.rng, 40)) * 1000);
	for (int i = 0; i < dl.k; i++)
		order[i] = i;
	for (int i = dl.k - 1; i > 0; i--) {
		int j = (int) rnd(&dl.rng, (uint32_t) i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < dl.k; i++) {
		(void) do_raise(dl.sig[order[i]],
		    RM_KILL + (int) rnd(&dl.rng, 2));
		atomic_fetch_add(&dl.sent, 1);
		usleep((useconds_t) rnd(&dl.rng, 5000));
	}
	return (NULL);
}

/* Stops every waiter's registration, from this plain thread. */
static void *
dl_stopper(void *arg)
{
	(void) arg;
	while (atomic_load(&dl.ready) < dl.k)
		usleep(1000);
	usleep((useconds_t) (10 + rnd(&dl.rng, 30)) * 1000);
	for (int i = 0; i < dl.k; i++) {
		if (i == dl.k - 1) {
			fprintf(stderr, "the thread stops the last of %d "
			    "registrations\n", dl.k);
			fflush(stderr);
			atomic_store(&dl.guard_end, sl_now() +
			    dl_limit(true));
		}
		sl_signal_stop(dl.ch[i]);
		if (i < dl.k - 1)
			usleep((useconds_t) rnd(&dl.rng, 3000));
	}
	return (NULL);
}

/*
 * The first sl_main of a deadlock child ends with registrations left and
 * with a signal pending: its relay is busy canceling a context with
 * DL_KIDS children when the last signal comes, and sl_main ends at once.
 * Nothing else raises a signal in the child, so that signal must not
 * reach a registration of the next sl_main.
 */
static void
dl_leave(void *arg)
{
	int list[4], n, first;

	(void) arg;
	(void) rand_list(&dl.rng, list, &n);
	first = list[0];
	do
		dl.last = rand_sig(&dl.rng);
	while (dl.last == first);
	list[0] = dl.last;
	SL_CHECK_OK(sl_signal_notify(dl.left, list, (size_t) n));
	SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), &first, 1,
	    &dl.left_ctx));
	for (int i = 0; i < DL_KIDS; i++)
		SL_CHECK_OK(sl_ctx_with_cancel(dl.left_ctx, &dl.kids[i]));
	SL_CHECK_OK(do_raise(first, RM_PTKILL));
	SL_CHECK_OK(do_raise(dl.last, RM_PTKILL));
}

static void
dl_body(void *arg)
{
	static const int hup[] = { SIGHUP };
	sl_chan *flush = sl_chan_make(sizeof(int), 2 * SIGS_MAX);
	sl_chan *fence_ch = sl_chan_make(sizeof(int), 1);
	int      v = 0;

	(void) arg;
	/* Nothing of the first sl_main comes (the fence of fence()). */
	SL_CHECK_OK(sl_signal_notify(flush, g_sig + 1, (size_t) g_nsig - 1));
	SL_CHECK_OK(sl_signal_notify(fence_ch, hup, 1));
	SL_CHECK_OK(do_raise(SIGHUP, RM_PTKILL));
	SL_CHECK_OK(sl_chan_recv(fence_ch, &v));
	sl_signal_stop(fence_ch);
	sl_signal_stop(flush);
	if (sl_chan_tryrecv(flush, &v) == 0)
		fprintf(stderr, "check failed: signal %d, raised at the end of "
		    "the first sl_main (last %d), reached a registration of "
		    "the second\n", v, dl.last);
	sl_chan_release(flush);
	sl_chan_release(fence_ch);
	sl_waitgroup_add(&dl.wg, dl.k);
	for (int i = 0; i < dl.k; i++)
		SL_CHECK_OK(sl_go(dl_waiter, (void *) (intptr_t) i));
	if (pthread_create(&dl.th, NULL, dl.thread_stops ? dl_stopper :
	    dl_sender, NULL) != 0)
		SLT_FATAL("pthread_create failed");
	sl_waitgroup_wait(&dl.wg);
	fprintf(stderr, "all %d waiters are done\n", dl.k);
	fflush(stderr);
	(void) sl_chan_recv(dl.dead, NULL); /* a real deadlock now */
	fprintf(stderr, "woke up from a deadlock\n");
}

/* Ends a deadlock child that hangs (SIGALRM would not do: valgrind
 * does not always deliver it to a process whose threads all wait). */
static void *
dl_guard(void *arg)
{
	(void) arg;
	while (sl_now() < atomic_load(&dl.guard_end))
		usleep(50 * 1000);
	fprintf(stderr, "hung: the guard ends the child; %d waiters, %d "
	    "signals sent:", dl.k, atomic_load(&dl.sent));
	for (int i = 0; i < dl.k; i++)
		fprintf(stderr, " [%d: signal %d%s, state %d, %d values]", i,
		    dl.sig[i], dl.use_ctx[i] ? " ctx" : "",
		    atomic_load(&dl.state[i]), atomic_load(&dl.got[i]));
	fprintf(stderr, "\n");
	sl_dump_goroutines(stderr);
	fflush(stderr);
	(void) !system("for t in /proc/$PPID/task/*; do echo \"$t "
	    "$(cat $t/comm) $(cat $t/wchan) $(cut -d' ' -f1 $t/syscall) "
	    "$(grep -E 'SigBlk|SigPnd' $t/status | tr '\\n' ' ')\"; done "
	    ">&2");
	fflush(stderr);
	_exit(99);
}

/* What a deadlock child runs. */
struct dl_arg {
	uint64_t seed;         /* its seed */
	int      procs;        /* workers */
	bool     thread_stops; /* the last stops come from a thread */
};

static void
dl_child(void *arg)
{
	struct dl_arg *a = arg;
	sl_opts        o;
	pthread_t      guard;
	uint64_t       used = 0;
	int            rv;

	atomic_store(slt_failures(), 0);
	memset(&dl, 0, sizeof(dl));
	/* A hang is the failure: the guard ends it. */
	atomic_store(&dl.guard_end, sl_now() + dl_limit(false));
	if (pthread_create(&guard, NULL, dl_guard, NULL) != 0)
		SLT_FATAL("pthread_create failed");
	dl.rng = a->seed;
	dl.thread_stops = a->thread_stops;
	dl.k = 1 + (int) rnd(&dl.rng, DL_MAX);
	dl.dead = sl_chan_make(sizeof(int), 0);
	dl.left = sl_chan_make(sizeof(int), 1);
	for (int i = 0; i < dl.k; i++) {
		int s;

		do /* a signal of its own */
			s = g_sig[rnd(&dl.rng, (uint32_t) g_nsig)];
		while ((used & bit(s)) != 0);
		used |= bit(s);
		dl.sig[i] = s;
		dl.mask[i] = bit(s);
		dl.use_ctx[i] = !dl.thread_stops && rnd(&dl.rng, 3) == 0;
	}
	for (int i = 0; i < dl.k; i++) {
		/* Others' signals too (not a context's: it would end at
		 * the first, and its own would then kill the process); a
		 * capacity that fits all it can get. */
		if (!dl.use_ctx[i]) {
			for (int j = 0; j < dl.k; j++)
				if (!dl.use_ctx[j] && rnd(&dl.rng, 3) == 0)
					dl.mask[i] |= bit(dl.sig[j]);
		}
		dl.ch[i] = sl_chan_make(sizeof(int), (size_t) dl.k);
	}
	memset(&o, 0, sizeof(o));
	o.procs = a->procs;
	/* An sl_main that ends with registrations: the next one starts
	 * with none. */
	rv = sl_main_opts(&o, dl_leave, NULL);
	fprintf(stderr, "first sl_main: %s\n", sl_errname(rv));
	rv = sl_main_opts(&o, dl_body, NULL);
	fprintf(stderr, "second sl_main: %s\n", sl_errname(rv));
	(void) pthread_join(dl.th, NULL);
	for (int i = 0; i < dl.k; i++) {
		sl_chan_release(dl.ch[i]);
		sl_ctx_release(dl.ctx[i]);
	}
	sl_chan_release(dl.dead);
	sl_chan_release(dl.left);
	sl_ctx_release(dl.left_ctx);
	for (int i = 0; i < DL_KIDS; i++)
		sl_ctx_release(dl.kids[i]);
	if (atomic_load(slt_failures()) != 0)
		fprintf(stderr, "%d check(s) failed in the child\n",
		    atomic_load(slt_failures()));
	fflush(stderr);
	_exit(rv);
}

/* A deadlock child's end is right: exit SL_EDEADLOCK with one report,
 * after the marker (every waiter done, or the thread's last stop). */
static bool
dl_ended_right(const slt_child *res, bool thread_stops)
{
	const char *mark, *dead;

	mark = strstr(res->err, thread_stops ? "stops the last" :
	    "waiters are done");
	dead = strstr(res->err, "all goroutines are asleep");
	return (WIFEXITED(res->status) &&
	    WEXITSTATUS(res->status) == SL_EDEADLOCK && mark != NULL &&
	    dead != NULL && dead > mark &&
	    strstr(dead + 1, "all goroutines are asleep") == NULL &&
	    strstr(res->err, "first sl_main: SL_OK") != NULL &&
	    strstr(res->err, "failed") == NULL);
}

/* Runs deadlock children with 1 and 2 workers. */
static void
expect_one_deadlock(bool thread_stops, uint64_t own)
{
	uint64_t seed = slt_seed(own), x = seed;
	int      n = (int) slt_scaled_min(N_DL, 1);

	pick_signals();
	for (int procs = 1; procs <= 2; procs++) {
		for (int i = 0; i < n; i++) {
			struct dl_arg a = { slt_rnd(&x), procs, thread_stops };
			slt_child     res;
			char          buf[96];
			bool          hung;

			assert_int_equal(slt_fork(dl_child, &a, &res), 0);
			if (dl_ended_right(&res, thread_stops))
				continue;
			hung = WIFEXITED(res.status) &&
			    WEXITSTATUS(res.status) == 99;
			fprintf(stderr, "%s", res.err);
			fail_msg("child seed 0x%" PRIx64 " procs %d: %s; "
			    "expected exit %d (SL_EDEADLOCK) with one report, "
			    "after %s%s; replay with SLUICE_CHAOS_SEED=0x%"
			    PRIx64, a.seed, procs, slt_status_str(res.status,
			    buf, sizeof(buf)), SL_EDEADLOCK, thread_stops ?
			    "the thread's last stop" : "every waiter was done",
			    hung ? " (it hung: ended by its guard)" : "", seed);
		}
	}
}

/* Goroutines waiting for signals that come later are no deadlock; once
 * the last registration is gone, the real one that follows is. */
static void
test_chaos_signal_waiting_is_no_deadlock_then_one_is(void **state)
{
	(void) state;
	expect_one_deadlock(false, 0xdead1);
}

/*
 * Every goroutine parks on a channel that has a registration; a plain
 * thread (no hold on the scheduler, as the header allows) stops every
 * registration.  Nothing can wake them any more: a deadlock, to be
 * reported like any other.  A worker only looks when it runs out of work
 * or is poked, so the stop of a plain thread must poke one (without that,
 * the process sleeps for ever and the child's guard ends it).
 */
static void
test_chaos_signal_last_stop_by_a_thread_then_deadlock(void **state)
{
	(void) state;
	expect_one_deadlock(true, 0xdead2);
}

static struct cs_case cases[] = {
	{ .procs = 1, .seed = 0x519a1 }, { .procs = 1, .seed = 0x519a2 },
	{ .procs = 2, .seed = 0x519a1 }, { .procs = 2, .seed = 0x519a2 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_signal_1_worker_seed_1", test_chaos_signal, NULL,
		    NULL, &cases[0] },
		{ "test_chaos_signal_1_worker_seed_2", test_chaos_signal, NULL,
		    NULL, &cases[1] },
		{ "test_chaos_signal_2_workers_seed_1", test_chaos_signal,
		    NULL, NULL, &cases[2] },
		{ "test_chaos_signal_2_workers_seed_2", test_chaos_signal,
		    NULL, NULL, &cases[3] },
		cmocka_unit_test(
		    test_chaos_signal_default_disposition_comes_back_in_child),
		cmocka_unit_test(
		    test_chaos_signal_waiting_is_no_deadlock_then_one_is),
		cmocka_unit_test(
		    test_chaos_signal_last_stop_by_a_thread_then_deadlock),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
