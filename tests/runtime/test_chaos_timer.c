/*
 * test_chaos_timer.c — a randomized, seeded stress test of timer channels
 * (sluice/timer.h): the promises of timers, tickers and sl_after hold
 * whatever mix of operations races on them, from goroutines and from
 * plain threads, while other timers fire on other workers.
 *
 * Why: test_tick.c pins down one interleaving per case.  A stop racing a
 * tick being sent on another worker, a reset of a ticker whose callback
 * runs, a worker too busy to fire timers on time, a select that waits on
 * a timer beside channels that other parties use: these show up only when
 * many kinds of operation meet at random.
 *
 * How: each round has N_GOR goroutines and N_THR plain pthreads (the
 * "parties").  Every party owns OWN_N timers (one-shot or ticker) that
 * only it touches, so it can model each exactly; the parties also share
 * SH_N timers that all of them stop, reset and receive from at once, two
 * plain channels they send on and receive from in selects ("noise"), and
 * they make sl_after channels, sleep, yield and hog their worker (which
 * makes timers late).  Each party draws its operations from its own
 * seeded generator.  Checked, with no slack on the early side and no
 * bound on lateness except where one is exact by construction:
 *
 *   owned timers (exact model: started, stopped, tick received)
 *     - never early: a tick's value is >= the sl_now() read before the
 *       make or reset that started it plus its duration, and it is not
 *       in the receiver's future (so the receive is not early either);
 *     - a one-shot timer sends at most once per start, and a receiver
 *       that waits long enough gets that tick unless stop came first;
 *     - sl_timer_stop returns true iff it stopped something: a running
 *       ticker, or a timer whose tick was not yet received; after it
 *       the channel is empty, and nothing arrives until the next reset;
 *     - a ticker's n-th tick since its start is >= start + n * period,
 *       and each tick is >= the first instant on the ticker's period
 *       grid after the one before (the grid of start + k * period, for
 *       any start between the sl_now() readings around the call): a
 *       ticker that fell behind skips the ticks it missed instead of
 *       sending them in a burst, and a slow receiver finds one tick
 *       waiting, never a backlog;
 *     - a ticker reset with ns <= 0 fails with SL_EINVAL and is left as
 *       it was (the model goes on unchanged);
 *     - after sl_timer_free, a channel kept with sl_chan_retain holds at
 *       most the one tick sent before, and nothing more arrives;
 *     - with one worker, for goroutines: timers fire in deadline order
 *       with sl_after's (they share the scheduler's heap and one thread
 *       fires them), so when an sl_after fires, an owned timer due
 *       earlier has delivered its tick, and a ticker received
 *       continuously has not left its receiver without a tick for more
 *       than a period (the lower bound on a ticker's count: exact there,
 *       while with two workers or a thread a tick may still be on its
 *       way when sl_after's arrives, so only liveness is checked);
 *   shared timers (every party, no model of who did what)
 *     - a receive begun after a stop or reset returned never gets a tick
 *       older than that call: every value is >= the sl_now() read before
 *       the call plus the timer's (fixed) duration or period;
 *     - a one-shot timer: ticks received + stops that returned true <=
 *       starts; a ticker: stops that returned true <= starts; after the
 *       final stop no tick arrives;
 *   everywhere
 *     - a timer channel has capacity 1 and elements of 8 bytes, and its
 *       length never exceeds 1;
 *     - sl_after delivers exactly one value, never early; released with
 *       or without it (ASan and valgrind check that nothing leaks);
 *     - bad input gets the documented errors (SL_EINVAL, SL_ESTATE
 *       outside sl_main) and leaves *out alone.
 *
 * With an even seed the scheduler's timer heap is held to a few timers
 * (sli_timer_heap_max, as if memory ran out), so that most timers wait on
 * its overflow list: every promise above holds there too.
 *
 * Each case runs ROUNDS rounds (fresh timers, parties and shared state)
 * with 1 or 2 workers and one seed.  A failure prints the seed, worker
 * count, round and party; SLUICE_CHAOS_SEED=<number> runs every case with
 * that seed instead of the built-in ones, SLUICE_CHAOS_SEED=random with a
 * new one (printed).  The work scales with SLUICE_TEST_SCALE (valgrind
 * runs 2% of it) and is a third under TSan; a wall-clock cap bounds every
 * round whatever the build, and parties that do not finish long after it
 * are reported as hung with every goroutine's wait.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "sltest.h"
#include "sched/sched.h" /* sli_timer_heap_max */

enum {
	N_GOR = 5,          /* goroutine parties */
	N_THR = 2,          /* plain pthread parties */
	N_PARTY = N_GOR + N_THR,
	OWN_N = 3,          /* timers each party owns */
	SH_N = 4,           /* shared timers: 2 one-shot, then 2 tickers */
	SH_ONESHOT = 2,
	NOISE_N = 2,        /* plain channels (unbuffered, cap 4) */
	SEL_MAX = 8,        /* cases per select */
	ROUNDS = 4,         /* rounds per case */
	QUOTA = 300,        /* operations per party and round, before
	                       scaling */
	QUOTA_MIN = 40,     /* ... and at least this many */
	TSAN_DIVISOR = 3,   /* less work under TSan */
	PRINT_MAX = 3,      /* failures printed per check and round */
	LINES_MAX = 4096,   /* more than the lines of this file */
};

#define US SL_MICROSECOND
#define MS SL_MILLISECOND

/* Parties start no operation after this much of a round; a round whose
 * parties have not all returned HUNG after its start has hung. */
#define ROUND_CAP (600 * MS)
#define HUNG      (60 * SL_SECOND)

/* ---- state ------------------------------------------------------------- */

/* A timer that one party owns: it alone operates on it and receives from
 * its channel, so this model of it is exact. */
struct own {
	sl_timer *t;      /* the timer */
	sl_chan  *ch;     /* its channel */
	bool      ticker; /* a ticker, else a one-shot timer */
	bool      armed;  /* started (make or reset) and not stopped since */
	bool      got;    /* one-shot: the tick of this start was received */
	int64_t   ns;     /* duration or period of the last start */
	int64_t   t0;     /* sl_now() just before that start */
	int64_t   t1;     /* sl_now() just after it */
	long      n;      /* ticks received since it */
	int64_t   prev;   /* value of the last of them */
};

/* A timer that every party operates on at once. */
struct shared {
	sl_timer       *t;          /* the timer */
	sl_chan        *ch;         /* its channel */
	bool            ticker;     /* a ticker, else a one-shot timer */
	int64_t         ns;         /* every start uses this */
	_Atomic int64_t floor;      /* a receive begun now gets no value
	                               below this */
	atomic_long     starts;     /* make and successful resets */
	atomic_long     stops_true; /* sl_timer_stop that returned true */
	atomic_long     recvd;      /* ticks received */
};

/* Counters of one party, for the summary line. */
struct stats {
	long ops;          /* operations made */
	long ticks1;       /* ticks of owned one-shot timers received */
	long ticksn;       /* ticks of owned tickers received */
	long stops_t;      /* owned stops that returned true */
	long stops_f;      /* ... and false */
	long resets;       /* owned resets */
	long einval;       /* ticker resets refused */
	long frees;        /* owned timers freed (and made again) */
	long after_got;    /* sl_after values received */
	long after_left;   /* sl_after channels released unreceived */
	long sh_recvd;     /* shared ticks received */
	long sh_ops;       /* shared stops and resets */
	long timeouts;     /* waits that ended at their deadline */
	long ordered;      /* heap-order checks made (one worker) */
	long win;          /* ticker windows received */
	long win_ticks;    /* ticks received in them */
	long short_gaps;   /* consecutive ticker ticks < a period apart */
	long hogs;         /* worker hogs */
	long noise;        /* noise values moved */
};

struct round;

/* One party: a goroutine or a plain thread. */
struct party {
	struct round *rd;         /* the round */
	int           id;         /* index in rd->p (N_PARTY: coordinator) */
	bool          thread;     /* a plain pthread */
	bool          exact;      /* one worker, a goroutine: timers fire in
	                             deadline order (see op_own_after) */
	uint64_t      rng;        /* generator state */
	struct own    own[OWN_N]; /* its timers */
	struct stats  st;         /* counters */
	pthread_t     th;         /* the thread, if thread */
};

/* What one round shares between its parties. */
struct round {
	uint64_t      seed;                /* the case's seed */
	int           round;               /* which round of the case */
	uint64_t      rseed;               /* the round's seed */
	int           procs;               /* workers */
	long          quota;               /* operations per party */
	int64_t       t_cap;               /* no operation starts after */
	struct shared sh[SH_N];            /* shared timers */
	sl_chan      *noise[NOISE_N];      /* plain channels of uint64_t */
	atomic_long   noise_sent;          /* values sent on them */
	atomic_long   noise_recvd;         /* values received from them */
	atomic_int    printed[LINES_MAX];  /* failures printed, per line */
	sl_waitgroup  wg;                  /* the parties */
	struct party  p[N_PARTY + 1];      /* parties, then the coordinator */
};

/* ---- helpers ------------------------------------------------------------ */

/* Reports a failed invariant of p's round: prints it (the first
 * PRINT_MAX of each check, with the seed) and counts it as a failed
 * SL_CHECK. */
static void tm_failed(struct party *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tm_failed(struct party *p, int line, const char *fmt, ...)
{
	struct round *rd = p->rd;
	char where[128], who[64];
	va_list ap;

	if (p->id == N_PARTY)
		snprintf(who, sizeof(who), "coordinator");
	else
		snprintf(who, sizeof(who), "party %d%s, op %ld", p->id,
		    p->thread ? " (thread)" : "", p->st.ops);
	snprintf(where, sizeof(where), "seed 0x%" PRIx64 " procs %d round %d, "
	    "%s", rd->seed, rd->procs, rd->round, who);
	va_start(ap, fmt);
	slt_chaos_failed(&rd->printed[(unsigned) line % LINES_MAX], PRINT_MAX,
	    __FILE__, line, where, fmt, ap);
	va_end(ap);
}

#define CHK(p, cond, ...)                                                   \
	do {                                                                \
		if (!(cond))                                                \
			tm_failed((p), __LINE__, __VA_ARGS__);              \
	} while (0)

static uint32_t
rnd(struct party *p, uint32_t n)
{
	return (slt_rnd_below(&p->rng, n));
}

static const char *
kind(bool ticker)
{
	return (ticker ? "ticker" : "timer");
}

/* A random duration for a one-shot timer: some <= 0 (send at once), most
 * between 1 us and 800 us, a few up to 2.3 ms. */
static int64_t
rnd_duration(struct party *p)
{
	uint32_t r = rnd(p, 100);

	if (r < 8)
		return (-(int64_t) rnd(p, 20) * US);
	if (r < 50)
		return ((int64_t) (1 + rnd(p, 100)) * US);
	if (r < 90)
		return ((int64_t) (100 + rnd(p, 700)) * US);
	return ((int64_t) (800 + rnd(p, 1500)) * US);
}

/* A random ticker period: 20 us to 400 us, short ones more often. */
static int64_t
rnd_period(struct party *p)
{
	if (rnd(p, 3) == 0)
		return ((int64_t) (20 + rnd(p, 40)) * US);
	return ((int64_t) (20 + rnd(p, 380)) * US);
}

/* A short pause: a yield, or a sleep of up to max_us. */
static void
pause_some(struct party *p, uint32_t max_us)
{
	if (rnd(p, 2) == 0)
		sl_yield();
	else
		sl_sleep((int64_t) rnd(p, max_us) * US);
}

/* Checks what every timer channel must be: capacity 1, 8-byte elements,
 * length at most 1. */
static void
check_chan(struct party *p, sl_chan *ch, const char *what, int i)
{
	size_t len = sl_chan_len(ch);

	CHK(p, sl_chan_cap(ch) == 1, "%s %d: channel capacity %zu", what, i,
	    sl_chan_cap(ch));
	CHK(p, sl_chan_elem_size(ch) == sizeof(int64_t),
	    "%s %d: element size %zu", what, i, sl_chan_elem_size(ch));
	CHK(p, len <= 1, "%s %d: channel length %zu", what, i, len);
}

/* Raises s->floor to at least f. */
static void
floor_raise(struct shared *s, int64_t f)
{
	int64_t cur = atomic_load(&s->floor);

	while (cur < f && !atomic_compare_exchange_weak(&s->floor, &cur, f))
		;
}

/* ---- owned timers: the model -------------------------------------------- */

/* true if o may still send a tick its owner has not received: a running
 * ticker, or a started one-shot timer whose tick was not received.  This
 * is exactly what sl_timer_stop must return. */
static bool
own_owed(const struct own *o)
{
	return (o->armed && (o->ticker || !o->got));
}

/*
 * The earliest value of the tick of ticker o that follows a tick of value
 * prev.  The scheduler puts a ticker back at the first instant of its
 * grid (start + k * period) after the moment it sent, which is after
 * prev; the start is some instant in [t0, t1].  So: the least instant
 * after prev that is on the grid of any such start.
 */
static int64_t
grid_next(const struct own *o, int64_t prev)
{
	int64_t y = prev + 1, r;

	if (y <= o->t0)
		return (o->t0 + o->ns);
	r = (y - o->t0) % o->ns;
	if (r <= o->t1 - o->t0)
		return (y);
	return (y + (o->ns - r));
}

/* Party p received v from its timer i (how: by which call) at now (read
 * after the receive returned): checks it against the model, updates it. */
static void
own_got(struct party *p, int i, int64_t v, int64_t now, const char *how)
{
	struct own *o = &p->own[i];

	CHK(p, v <= now, "own %s %d: %s got a value %" PRId64 " ns in the "
	    "future", kind(o->ticker), i, how, v - now);
	if (!o->armed) {
		CHK(p, false, "own %s %d (ns %" PRId64 "): %s got a tick "
		    "while it was stopped (value %+" PRId64 " ns from its "
		    "last start)", kind(o->ticker), i, o->ns, how, v - o->t0);
		return;
	}
	if (!o->ticker) {
		int64_t due = o->t0 + (o->ns > 0 ? o->ns : 0);

		CHK(p, !o->got, "own timer %d (ns %" PRId64 "): %s got a "
		    "second tick from one start (%+" PRId64 " ns from it)", i,
		    o->ns, how, v - o->t0);
		CHK(p, v >= due, "own timer %d (ns %" PRId64 "): %s got a tick "
		    "%" PRId64 " ns early", i, o->ns, how, due - v);
		CHK(p, now >= due, "own timer %d (ns %" PRId64 "): %s "
		    "returned %" PRId64 " ns early", i, o->ns, how, due - now);
		o->got = true;
		o->n++;
		p->st.ticks1++;
		return;
	}
	{
		int64_t lo = o->t0 + (o->n + 1) * o->ns;

		CHK(p, v >= lo, "own ticker %d (period %" PRId64 "): %s got "
		    "tick #%ld since its start %" PRId64 " ns early", i, o->ns,
		    how, o->n + 1, lo - v);
		if (o->n > 0) {
			int64_t g = grid_next(o, o->prev);

			CHK(p, v > o->prev, "own ticker %d: %s got a tick "
			    "%" PRId64 " ns before the previous one", i, how,
			    o->prev - v);
			CHK(p, v >= g, "own ticker %d (period %" PRId64 "): %s "
			    "got a tick %" PRId64 " ns after the previous one, "
			    "%" PRId64 " ns before the next period boundary: "
			    "ticks not skipped", i, o->ns, how, v - o->prev,
			    g - v);
			if (v - o->prev < o->ns)
				p->st.short_gaps++;
		}
		o->n++;
		o->prev = v;
		CHK(p, o->n <= (now - o->t0) / o->ns, "own ticker %d: %ld "
		    "ticks in %" PRId64 " ns at period %" PRId64, i, o->n,
		    now - o->t0, o->ns);
		p->st.ticksn++;
	}
}

/* Makes p's timer i, a ticker or not, with a random duration. */
static void
own_make(struct party *p, int i, bool ticker)
{
	struct own *o = &p->own[i];
	int64_t ns = ticker ? rnd_period(p) : rnd_duration(p);
	int rv;

	memset(o, 0, sizeof(*o));
	o->ticker = ticker;
	o->ns = ns;
	o->t0 = sl_now();
	rv = ticker ? sl_ticker_make(ns, &o->t) : sl_timer_make(ns, &o->t);
	o->t1 = sl_now();
	if (rv != 0)
		SLT_FATAL("sl_%s_make(%" PRId64 "): %s", ticker ? "ticker" :
		    "timer", ns, sl_errname(rv));
	o->ch = sl_timer_chan(o->t);
	o->armed = true;
	CHK(p, o->ch != NULL, "own %s %d: no channel", kind(ticker), i);
	check_chan(p, o->ch, "own", i);
}

/* Frees p's timer i; maybe keeps its channel to check that nothing is
 * sent after the free. */
static void
own_free(struct party *p, int i)
{
	struct own *o = &p->own[i];
	sl_chan *keep = rnd(p, 2) ? sl_chan_retain(o->ch) : NULL;
	int64_t v = 0;
	int rv;

	sl_timer_free(o->t);
	o->t = NULL;
	if (keep != NULL) {
		CHK(p, sl_chan_len(keep) <= 1, "own %s %d: length %zu after "
		    "free", kind(o->ticker), i, sl_chan_len(keep));
		/* A tick sent before the free may wait: the model says
		 * whether one could. */
		if (sl_chan_tryrecv(keep, &v) == 0)
			own_got(p, i, v, sl_now(), "receive after free");
		if (rnd(p, 3) == 0) {
			int64_t dl = sl_now() + (int64_t) rnd(p, 300) * US;

			rv = sl_chan_recv_ctx(keep, &v, NULL, dl);
			CHK(p, rv == SL_ETIMEDOUT, "own %s %d: receive after "
			    "free returned %s (value %+" PRId64 " ns from its "
			    "start)", kind(o->ticker), i, sl_errname(rv),
			    v - o->t0);
		} else {
			rv = sl_chan_tryrecv(keep, &v);
			CHK(p, rv == SL_EAGAIN, "own %s %d: a second value "
			    "after free (%s)", kind(o->ticker), i,
			    sl_errname(rv));
		}
		sl_chan_release(keep);
	}
	memset(o, 0, sizeof(*o));
	p->st.frees++;
}

/* ---- selects over a mix of channels -------------------------------------- */

/* What a case of a mixed select is on. */
enum ck {
	CK_OWN,   /* receive from an owned timer (idx) */
	CK_SH,    /* receive from a shared timer (idx) */
	CK_NRECV, /* receive from a noise channel (idx) */
	CK_NSEND, /* send on a noise channel (idx) */
	CK_AFTER, /* receive from an sl_after channel (the caller's) */
	CK_NULL,  /* a NULL channel: never ready */
};

struct sel {
	size_t   n;              /* cases */
	sl_case  c[SEL_MAX];     /* the cases */
	int      kind[SEL_MAX];  /* enum ck */
	int      idx[SEL_MAX];   /* which timer or channel */
	int64_t  floor[SEL_MAX]; /* CK_SH: its floor before the select */
	int64_t  v[SEL_MAX];     /* receive buffers, send values */
};

static void
sel_add(struct party *p, struct sel *s, int k, int idx, sl_chan *ch)
{
	size_t i = s->n++;

	s->kind[i] = k;
	s->idx[i] = idx;
	s->v[i] = (int64_t) (p->rng & 0xffff);
	s->c[i].ch = ch;
	s->c[i].op = k == CK_NSEND ? SL_SEND : SL_RECV;
	s->c[i].buf = &s->v[i];
	if (k == CK_SH)
		s->floor[i] = atomic_load(&p->rd->sh[idx].floor);
}

/* Adds up to max random cases on channels of others: noise sends and
 * receives, shared timers, NULL. */
static void
sel_extras(struct party *p, struct sel *s, uint32_t max)
{
	struct round *rd = p->rd;
	uint32_t n = rnd(p, max + 1);

	for (uint32_t i = 0; i < n && s->n < SEL_MAX; i++) {
		uint32_t r = rnd(p, 100);
		int k = (int) rnd(p, NOISE_N), j = (int) rnd(p, SH_N);

		if (r < 30)
			sel_add(p, s, CK_NRECV, k, rd->noise[k]);
		else if (r < 55)
			sel_add(p, s, CK_NSEND, k, rd->noise[k]);
		else if (r < 90)
			sel_add(p, s, CK_SH, j, rd->sh[j].ch);
		else
			sel_add(p, s, CK_NULL, 0, NULL);
	}
}

/* Shared timer j gave v to a receive that began when its floor was f. */
static void
sh_got(struct party *p, int j, int64_t f, int64_t v, int64_t now,
    const char *how)
{
	struct shared *s = &p->rd->sh[j];

	CHK(p, v >= f, "shared %s %d (ns %" PRId64 "): %s got a tick "
	    "%" PRId64 " ns before the floor set by stops and resets that "
	    "returned before it began (stale or early)", kind(s->ticker), j,
	    s->ns, how, f - v);
	CHK(p, v <= now, "shared %s %d: %s got a value %" PRId64 " ns in "
	    "the future", kind(s->ticker), j, how, v - now);
	atomic_fetch_add(&s->recvd, 1);
	p->st.sh_recvd++;
}

/*
 * Runs the select (deadline 0: sl_select_try or sl_select with 0 at
 * random) and settles the chosen case unless it is CK_AFTER, which the
 * caller handles.  Returns sl_select's result; *chosen is the case.
 */
static int
sel_run(struct party *p, struct sel *s, int64_t deadline, int *chosen)
{
	int rv, c;
	int64_t now;

	*chosen = -1;
	if (deadline == 0 && rnd(p, 2) == 0)
		rv = sl_select_try(s->c, s->n, chosen);
	else
		rv = sl_select(s->c, s->n, NULL, deadline, chosen);
	now = sl_now();
	if (rv == SL_ETIMEDOUT) {
		CHK(p, deadline != SL_FOREVER && deadline != 0 &&
		    now >= deadline, "select timed out %" PRId64 " ns before "
		    "its deadline", deadline - now);
		p->st.timeouts++;
		return (rv);
	}
	if (rv == SL_EAGAIN) {
		CHK(p, deadline == 0, "select returned SL_EAGAIN with a "
		    "deadline");
		return (rv);
	}
	CHK(p, rv == 0, "select returned %s", sl_errname(rv));
	if (rv != 0)
		return (rv);
	c = *chosen;
	CHK(p, c >= 0 && (size_t) c < s->n, "select chose case %d of %zu",
	    c, s->n);
	if (c < 0 || (size_t) c >= s->n)
		return (SL_EINVAL);
	CHK(p, s->c[c].ok, "select case %d (kind %d) closed", c, s->kind[c]);
	switch (s->kind[c]) {
	case CK_OWN:
		own_got(p, s->idx[c], s->v[c], now, "select");
		break;
	case CK_SH:
		sh_got(p, s->idx[c], s->floor[c], s->v[c], now, "select");
		break;
	case CK_NRECV:
		atomic_fetch_add(&p->rd->noise_recvd, 1);
		p->st.noise++;
		break;
	case CK_NSEND:
		atomic_fetch_add(&p->rd->noise_sent, 1);
		p->st.noise++;
		break;
	case CK_NULL:
		CHK(p, false, "select chose a NULL channel");
		break;
	default:
		break;
	}
	return (0);
}

/* ---- owned timers: the operations ---------------------------------------- */

/* Resets p's timer i, now and then a ticker with ns <= 0 (refused, the
 * ticker left as it was). */
static void
op_own_reset(struct party *p, int i)
{
	struct own *o = &p->own[i];
	int64_t ns, t0, t1;
	int rv;

	if (o->ticker && rnd(p, 10) == 0) {
		ns = -(int64_t) rnd(p, 3) * US;
		rv = sl_timer_reset(o->t, ns);
		CHK(p, rv == SL_EINVAL, "ticker reset with %" PRId64 " "
		    "returned %s", ns, sl_errname(rv));
		p->st.einval++;
		return; /* the model goes on: nothing changed */
	}
	ns = o->ticker ? rnd_period(p) : rnd_duration(p);
	t0 = sl_now();
	rv = sl_timer_reset(o->t, ns);
	t1 = sl_now();
	CHK(p, rv == 0, "own %s %d: reset(%" PRId64 ") returned %s",
	    kind(o->ticker), i, ns, sl_errname(rv));
	o->armed = true;
	o->got = false;
	o->ns = ns;
	o->t0 = t0;
	o->t1 = t1;
	o->n = 0;
	o->prev = 0;
	check_chan(p, o->ch, "own", i);
	p->st.resets++;
}

/* Stops p's timer i: the result is exactly what the model says, and the
 * channel is empty afterwards. */
static void
op_own_stop(struct party *p, int i)
{
	struct own *o = &p->own[i];
	bool want = own_owed(o), got;
	int64_t v = 0;
	int rv;

	got = sl_timer_stop(o->t);
	CHK(p, got == want, "own %s %d (ns %" PRId64 "): sl_timer_stop "
	    "returned %s, want %s (%s)", kind(o->ticker), i, o->ns,
	    got ? "true" : "false", want ? "true" : "false",
	    !o->armed ? "already stopped" : o->ticker ? "running ticker" :
	    o->got ? "its tick was received" : "its tick not received");
	o->armed = false;
	if (got)
		p->st.stops_t++;
	else
		p->st.stops_f++;
	CHK(p, sl_chan_len(o->ch) == 0, "own %s %d: length %zu after stop",
	    kind(o->ticker), i, sl_chan_len(o->ch));
	rv = sl_chan_tryrecv(o->ch, &v);
	CHK(p, rv == SL_EAGAIN, "own %s %d: a tick (%+" PRId64 " ns from its "
	    "start) waited after stop: %s", kind(o->ticker), i, v - o->t0,
	    sl_errname(rv));
	if (rnd(p, 4) == 0)
		CHK(p, !sl_timer_stop(o->t), "own %s %d: a second stop "
		    "returned true", kind(o->ticker), i);
}

/*
 * Receives from p's timer i.  If a tick is owed, waits for it (blocking,
 * with deadlines in a loop, in selects beside other channels, or polling)
 * however late it is; if none is owed, waits a little in one of those
 * ways and must get nothing.  Every value goes through own_got.
 */
static void
op_own_recv(struct party *p, int i)
{
	struct own *o = &p->own[i];
	bool owed = own_owed(o);
	uint32_t form = rnd(p, 4);
	int64_t start = sl_now(), v = 0, now;
	int rv;

	if (!owed) {
		struct sel s;
		int chosen;
		int64_t dl = sl_now() + (int64_t) rnd(p, 300) * US;

		switch (form) {
		case 0:
			if (sl_chan_tryrecv(o->ch, &v) == 0)
				own_got(p, i, v, sl_now(), "tryrecv");
			break;
		case 1:
		case 2:
			rv = sl_chan_recv_ctx(o->ch, &v, NULL, dl);
			now = sl_now();
			if (rv == 0)
				own_got(p, i, v, now, "recv_ctx");
			else
				CHK(p, rv == SL_ETIMEDOUT && now >= dl,
				    "recv_ctx: %s %" PRId64 " ns before its "
				    "deadline", sl_errname(rv), dl - now);
			break;
		default:
			memset(&s, 0, sizeof(s));
			sel_add(p, &s, CK_OWN, i, o->ch);
			sel_extras(p, &s, 3);
			(void) sel_run(p, &s, rnd(p, 3) == 0 ? 0 : dl,
			    &chosen);
			break;
		}
		return;
	}
	for (;;) {
		struct sel s;
		int chosen;
		int64_t dl;

		if (sl_now() - start > HUNG) {
			CHK(p, false, "own %s %d (ns %" PRId64 "): the tick "
			    "owed never came (form %u)", kind(o->ticker), i,
			    o->ns, form);
			return;
		}
		switch (form) {
		case 0:
			rv = sl_chan_recv(o->ch, &v);
			CHK(p, rv == 0, "recv: %s", sl_errname(rv));
			own_got(p, i, v, sl_now(), "recv");
			return;
		case 1:
			dl = sl_now() + (int64_t) rnd(p, 400) * US;
			rv = sl_chan_recv_ctx(o->ch, &v, NULL, dl);
			now = sl_now();
			if (rv == 0) {
				own_got(p, i, v, now, "recv_ctx");
				return;
			}
			CHK(p, rv == SL_ETIMEDOUT && now >= dl, "recv_ctx: %s "
			    "%" PRId64 " ns before its deadline",
			    sl_errname(rv), dl - now);
			p->st.timeouts++;
			break;
		case 2:
			memset(&s, 0, sizeof(s));
			sel_add(p, &s, CK_OWN, i, o->ch);
			sel_extras(p, &s, 4);
			dl = rnd(p, 4) == 0 ? SL_FOREVER : sl_now() +
			    (int64_t) rnd(p, 400) * US;
			if (sel_run(p, &s, dl, &chosen) == 0 &&
			    s.kind[chosen] == CK_OWN)
				return;
			break;
		default:
			rv = sl_chan_tryrecv(o->ch, &v);
			if (rv == 0) {
				own_got(p, i, v, sl_now(), "tryrecv");
				return;
			}
			CHK(p, rv == SL_EAGAIN, "tryrecv: %s",
			    sl_errname(rv));
			pause_some(p, 50);
			break;
		}
	}
}

/*
 * Waits on p's timer i and on a new sl_after(k) channel in one select
 * (beside a noise channel now and then) until sl_after's value comes,
 * receiving the timer's ticks meanwhile, then takes a tick left waiting.
 * Checks sl_after's value, and returns the ticks received.
 *
 * With one worker, in a goroutine, this also checks that the timer was
 * not late relative to sl_after's timer.  Both sit in the scheduler's one
 * heap, and the one worker fires due timers in deadline order, only while
 * no goroutine runs.  sl_after's deadline is >= c0 + k (c0 read before
 * the call).  A one-shot timer started at s <= t1 fires at s + max(ns, 0);
 * if that is before c0 + k, its tick has been received by the end.  A
 * ticker, whenever its receiver runs (at c), is due at most a period
 * later: at first at s + period with s <= c, later at the first instant
 * of its grid after the moment it last fired, which came before c.  So if
 * the last select (begun at cp, with no tick waiting) returned sl_after's
 * value and no tick came after it, then cp + period >= c0 + k.  That is a
 * lower bound on a ticker's count as strict as timers allow: its
 * receiver waits at most a period for each tick.  With two workers, one
 * may fire sl_after's timer while the other still sends the tick, and a
 * plain thread's wait is not ordered with the heap: there, liveness.
 */
static long
op_own_after(struct party *p, int i, int64_t k)
{
	struct own *o = &p->own[i];
	sl_chan *a = NULL;
	int64_t c0, cp = 0, v = 0;
	long ticks = 0;
	bool done = false, last_after = false;
	int rv;

	c0 = sl_now();
	rv = sl_after(k, &a);
	if (rv != 0)
		SLT_FATAL("sl_after: %s", sl_errname(rv));
	check_chan(p, a, "sl_after", 0);
	while (!done) {
		struct sel s;
		int chosen;

		memset(&s, 0, sizeof(s));
		sel_add(p, &s, CK_OWN, i, o->ch);
		sel_add(p, &s, CK_AFTER, 0, a);
		if (rnd(p, 4) == 0)
			sel_extras(p, &s, 2);
		cp = sl_now();
		rv = sel_run(p, &s, cp + HUNG, &chosen);
		if (rv != 0) {
			CHK(p, false, "own %s %d: no sl_after(%" PRId64 ") "
			    "value after a long wait (%s)", kind(o->ticker), i,
			    k, sl_errname(rv));
			break;
		}
		last_after = false;
		if (s.kind[chosen] == CK_OWN) {
			ticks++;
		} else if (s.kind[chosen] == CK_AFTER) {
			int64_t now = sl_now();

			v = s.v[chosen];
			CHK(p, v >= c0 + (k > 0 ? k : 0), "sl_after(%" PRId64
			    ") sent %" PRId64 " ns early", k,
			    c0 + (k > 0 ? k : 0) - v);
			CHK(p, v <= now, "sl_after: value %" PRId64 " ns in "
			    "the future", v - now);
			p->st.after_got++;
			done = last_after = true;
		}
	}
	rv = sl_chan_tryrecv(a, &v);
	CHK(p, rv == SL_EAGAIN, "sl_after(%" PRId64 "): a second value (%s)",
	    k, sl_errname(rv));
	sl_chan_release(a);
	if (sl_chan_tryrecv(o->ch, &v) == 0) {
		own_got(p, i, v, sl_now(), "tryrecv after sl_after");
		ticks++;
		last_after = false;
	}
	if (p->exact && last_after && o->armed) {
		if (!o->ticker && !o->got) {
			int64_t due = o->t1 + (o->ns > 0 ? o->ns : 0);

			CHK(p, due >= c0 + k, "own timer %d (ns %" PRId64 "): "
			    "its tick, due by %" PRId64 " ns before an "
			    "sl_after(%" PRId64 ") made later, had not come "
			    "when that one did (late, lost, or out of order)",
			    i, o->ns, c0 + k - due, k);
		} else if (o->ticker) {
			CHK(p, cp + o->ns >= c0 + k, "own ticker %d (period "
			    "%" PRId64 "): a select begun %" PRId64 " ns "
			    "before the deadline of an sl_after(%" PRId64 ") "
			    "got its value and no tick came, though one was "
			    "due within a period (%ld ticks in the window)",
			    i, o->ns, c0 + k - cp, k, ticks);
		}
		p->st.ordered++;
	}
	return (ticks);
}

/* A slow receiver of p's ticker i: sleeps a few periods, finds at most
 * one tick waiting, then receives continuously for 10 periods. */
static void
op_own_window(struct party *p, int i)
{
	struct own *o = &p->own[i];
	long n;

	if (!o->ticker || !o->armed) {
		(void) op_own_after(p, i, (int64_t) rnd(p, 1500) * US);
		return;
	}
	sl_sleep((int64_t) (2 + rnd(p, 6)) * o->ns);
	check_chan(p, o->ch, "own", i);
	n = op_own_after(p, i, 10 * o->ns);
	p->st.win++;
	p->st.win_ticks += n;
}

/* Frees p's timer i and makes another, of either kind. */
static void
op_own_remake(struct party *p, int i)
{
	if (rnd(p, 2) == 0)
		op_own_stop(p, i);
	own_free(p, i);
	own_make(p, i, rnd(p, 2) != 0);
}

static void
op_own(struct party *p)
{
	int i = (int) rnd(p, OWN_N);
	uint32_t r = rnd(p, 100);

	if (r < 18)
		op_own_reset(p, i);
	else if (r < 32)
		op_own_stop(p, i);
	else if (r < 62)
		op_own_recv(p, i);
	else if (r < 70)
		check_chan(p, p->own[i].ch, "own", i);
	else if (r < 76)
		op_own_remake(p, i);
	else if (r < 90)
		(void) op_own_after(p, i, (int64_t) rnd(p, 2000) * US);
	else
		op_own_window(p, i);
}

/* ---- shared timers, sl_after, noise, load -------------------------------- */

/* A random operation on a random shared timer: reset (always with its
 * duration), stop, a receive of some form, or a look at its channel. */
static void
op_shared(struct party *p)
{
	int j = (int) rnd(p, SH_N);
	struct shared *s = &p->rd->sh[j];
	uint32_t r = rnd(p, 100);
	int64_t tb, f, v = 0, now, dl;
	struct sel sel;
	int rv, chosen;

	if (r < 20) {
		tb = sl_now();
		rv = sl_timer_reset(s->t, s->ns);
		CHK(p, rv == 0, "shared %s %d: reset returned %s",
		    kind(s->ticker), j, sl_errname(rv));
		if (rv == 0)
			atomic_fetch_add(&s->starts, 1);
		floor_raise(s, tb + s->ns);
		p->st.sh_ops++;
	} else if (r < 35) {
		tb = sl_now();
		if (sl_timer_stop(s->t))
			atomic_fetch_add(&s->stops_true, 1);
		floor_raise(s, tb + s->ns);
		p->st.sh_ops++;
	} else if (r < 90) {
		f = atomic_load(&s->floor);
		switch (rnd(p, 3)) {
		case 0:
			if (sl_chan_tryrecv(s->ch, &v) == 0)
				sh_got(p, j, f, v, sl_now(), "tryrecv");
			break;
		case 1:
			dl = sl_now() + (int64_t) rnd(p, 500) * US;
			rv = sl_chan_recv_ctx(s->ch, &v, NULL, dl);
			now = sl_now();
			if (rv == 0)
				sh_got(p, j, f, v, now, "recv_ctx");
			else
				CHK(p, rv == SL_ETIMEDOUT && now >= dl,
				    "recv_ctx: %s %" PRId64 " ns before its "
				    "deadline", sl_errname(rv), dl - now);
			break;
		default:
			memset(&sel, 0, sizeof(sel));
			sel_add(p, &sel, CK_SH, j, s->ch);
			sel_extras(p, &sel, 4);
			(void) sel_run(p, &sel, rnd(p, 4) == 0 ? 0 :
			    sl_now() + (int64_t) rnd(p, 500) * US, &chosen);
			break;
		}
	} else {
		check_chan(p, s->ch, "shared", j);
	}
}

/* An sl_after channel: released at once (its timer frees itself), waited
 * for in a select or a receive (one value, never early, then nothing), or
 * tried briefly and released. */
static void
op_after(struct party *p)
{
	int64_t k = (int64_t) rnd(p, 1500) * US - 10 * US, c0, due, v = 0;
	int64_t now, dl;
	sl_chan *a = NULL;
	struct sel s;
	int rv, chosen;

	c0 = sl_now();
	due = c0 + (k > 0 ? k : 0);
	rv = sl_after(k, &a);
	if (rv != 0)
		SLT_FATAL("sl_after: %s", sl_errname(rv));
	check_chan(p, a, "sl_after", 0);
	switch (rnd(p, 4)) {
	case 0:
		/* Released unreceived: its timer frees itself once it has
		 * sent; one far away is dropped when sl_main returns. */
		if (rnd(p, 8) == 0) {
			sl_chan *b = NULL;

			SL_CHECK_OK(sl_after(10 * SL_SECOND, &b));
			sl_chan_release(b);
		}
		p->st.after_left++;
		sl_chan_release(a);
		return;
	case 1:
		for (;;) {
			memset(&s, 0, sizeof(s));
			sel_add(p, &s, CK_AFTER, 0, a);
			sel_extras(p, &s, 3);
			if (sel_run(p, &s, sl_now() + HUNG, &chosen) != 0) {
				CHK(p, false, "sl_after(%" PRId64 ") never "
				    "sent", k);
				break;
			}
			if (s.kind[chosen] == CK_AFTER) {
				v = s.v[chosen];
				now = sl_now();
				CHK(p, v >= due && v <= now, "sl_after(%"
				    PRId64 ") in select: value %+" PRId64 " ns "
				    "from due, %+" PRId64 " ns from now", k,
				    v - due, v - now);
				p->st.after_got++;
				break;
			}
		}
		break;
	case 2:
		rv = sl_chan_recv(a, &v);
		now = sl_now();
		CHK(p, rv == 0 && v >= due && v <= now, "sl_after(%" PRId64
		    "): %s, value %+" PRId64 " ns from due, %+" PRId64 " ns "
		    "from now", k, sl_errname(rv), v - due, v - now);
		p->st.after_got++;
		break;
	default:
		dl = sl_now() + (int64_t) rnd(p, 500) * US;
		rv = sl_chan_recv_ctx(a, &v, NULL, dl);
		now = sl_now();
		if (rv == 0) {
			CHK(p, v >= due && v <= now, "sl_after(%" PRId64 "): "
			    "value %+" PRId64 " ns from due, %+" PRId64 " ns "
			    "from now", k, v - due, v - now);
			p->st.after_got++;
		} else {
			CHK(p, rv == SL_ETIMEDOUT && now >= dl, "sl_after "
			    "recv_ctx: %s", sl_errname(rv));
			p->st.after_left++;
			sl_chan_release(a);
			return;
		}
		break;
	}
	/* One value only, however long one waits. */
	if (rnd(p, 4) == 0) {
		dl = sl_now() + (int64_t) rnd(p, 300) * US;
		rv = sl_chan_recv_ctx(a, &v, NULL, dl);
		CHK(p, rv == SL_ETIMEDOUT, "sl_after(%" PRId64 "): a second "
		    "value (%s)", k, sl_errname(rv));
	} else {
		rv = sl_chan_tryrecv(a, &v);
		CHK(p, rv == SL_EAGAIN, "sl_after(%" PRId64 "): a second "
		    "value (%s)", k, sl_errname(rv));
	}
	sl_chan_release(a);
}

/* A select over noise channels and shared timers only. */
static void
op_noise(struct party *p)
{
	struct sel s;
	int chosen;

	memset(&s, 0, sizeof(s));
	sel_extras(p, &s, 5);
	if (s.n == 0)
		return;
	(void) sel_run(p, &s, rnd(p, 3) == 0 ? 0 : sl_now() +
	    (int64_t) rnd(p, 200) * US, &chosen);
}

/* Load: a yield, a sleep, or a spin that keeps the worker from firing
 * timers (which then fire late: tickers must skip, not burst). */
static void
op_load(struct party *p)
{
	uint32_t r = rnd(p, 4);

	if (r < 2) {
		pause_some(p, 200);
	} else {
		int64_t end = sl_now() + (int64_t) rnd(p, 400) * US;

		while (sl_now() < end)
			;
		p->st.hogs++;
	}
}

/* Bad input gets the documented errors and leaves *out alone. */
static void
op_bad(struct party *p)
{
	sl_timer *mark = (sl_timer *) &p->rng, *t = mark;
	int rv;

	rv = sl_timer_make(US, NULL);
	CHK(p, rv == SL_EINVAL, "sl_timer_make(NULL out): %s",
	    sl_errname(rv));
	rv = sl_ticker_make(US, NULL);
	CHK(p, rv == SL_EINVAL, "sl_ticker_make(NULL out): %s",
	    sl_errname(rv));
	rv = sl_ticker_make(0, &t);
	CHK(p, rv == SL_EINVAL && t == mark, "sl_ticker_make(0): %s",
	    sl_errname(rv));
	rv = sl_ticker_make(-(int64_t) rnd(p, 1000) - 1, &t);
	CHK(p, rv == SL_EINVAL && t == mark, "sl_ticker_make(< 0): %s",
	    sl_errname(rv));
	rv = sl_after(US, NULL);
	CHK(p, rv == SL_EINVAL, "sl_after(NULL out): %s", sl_errname(rv));
	rv = sl_timer_reset(NULL, US);
	CHK(p, rv == SL_EINVAL, "sl_timer_reset(NULL): %s", sl_errname(rv));
	CHK(p, !sl_timer_stop(NULL), "sl_timer_stop(NULL) true");
	CHK(p, sl_timer_chan(NULL) == NULL, "sl_timer_chan(NULL)");
	sl_timer_free(NULL);
}

/* ---- the parties --------------------------------------------------------- */

static void
op_random(struct party *p)
{
	uint32_t r = rnd(p, 100);

	if (r < 55)
		op_own(p);
	else if (r < 75)
		op_shared(p);
	else if (r < 83)
		op_after(p);
	else if (r < 92)
		op_noise(p);
	else if (r < 99)
		op_load(p);
	else
		op_bad(p);
}

/* The body of a party: its timers, its quota of operations (or until the
 * cap), then its timers stopped and freed. */
static void
party_run(struct party *p)
{
	struct round *rd = p->rd;

	for (int i = 0; i < OWN_N; i++)
		own_make(p, i, rnd(p, 2) != 0);
	for (long n = 0; n < rd->quota; n++) {
		if (sl_now() > rd->t_cap)
			break;
		op_random(p);
		p->st.ops++;
	}
	for (int i = 0; i < OWN_N; i++) {
		if (rnd(p, 2) == 0)
			op_own_stop(p, i);
		own_free(p, i);
	}
}

static void
party_goroutine(void *arg)
{
	struct party *p = arg;

	party_run(p);
	sl_waitgroup_done(&p->rd->wg);
}

static void *
party_thread(void *arg)
{
	struct party *p = arg;

	party_run(p);
	sl_waitgroup_done(&p->rd->wg);
	sl_sched_release();
	return (NULL);
}

/* ---- the coordinator ----------------------------------------------------- */

/* Adds the parties' counters of a round to t. */
static void
add_stats(struct stats *t, const struct round *rd)
{
	for (int i = 0; i < N_PARTY; i++) {
		const struct stats *s = &rd->p[i].st;

		t->ops += s->ops;
		t->ticks1 += s->ticks1;
		t->ticksn += s->ticksn;
		t->stops_t += s->stops_t;
		t->stops_f += s->stops_f;
		t->resets += s->resets;
		t->einval += s->einval;
		t->frees += s->frees;
		t->after_got += s->after_got;
		t->after_left += s->after_left;
		t->sh_recvd += s->sh_recvd;
		t->sh_ops += s->sh_ops;
		t->timeouts += s->timeouts;
		t->ordered += s->ordered;
		t->win += s->win;
		t->win_ticks += s->win_ticks;
		t->short_gaps += s->short_gaps;
		t->hogs += s->hogs;
		t->noise += s->noise;
	}
}

/*
 * One round, run by the main goroutine: makes the shared timers and the
 * noise channels, runs the parties, then checks the shared timers' counts
 * and that a final stop silences them, and that the noise channels lost
 * nothing.  Frees everything it made.
 */
static void
run_round(struct round *rd)
{
	struct party *co = &rd->p[N_PARTY];
	int rv;

	co->rd = rd;
	co->id = N_PARTY;
	co->rng = rd->rseed ^ UINT64_C(0xc0ffee);
	for (int j = 0; j < SH_N; j++) {
		struct shared *s = &rd->sh[j];
		int64_t tb;

		s->ticker = j >= SH_ONESHOT;
		s->ns = s->ticker ? (int64_t) (30 + rnd(co, 300)) * US :
		    (int64_t) (5 + rnd(co, 1000)) * US;
		tb = sl_now();
		rv = s->ticker ? sl_ticker_make(s->ns, &s->t) :
		    sl_timer_make(s->ns, &s->t);
		if (rv != 0)
			SLT_FATAL("shared timer: %s", sl_errname(rv));
		s->ch = sl_timer_chan(s->t);
		atomic_store(&s->floor, tb + s->ns);
		atomic_store(&s->starts, 1);
	}
	rd->noise[0] = sl_chan_make(sizeof(uint64_t), 0);
	rd->noise[1] = sl_chan_make(sizeof(uint64_t), 4);
	if (rd->noise[0] == NULL || rd->noise[1] == NULL)
		SLT_FATAL("out of memory");

	rd->t_cap = sl_now() + ROUND_CAP;
	sl_waitgroup_add(&rd->wg, N_PARTY);
	for (int i = 0; i < N_PARTY; i++) {
		struct party *p = &rd->p[i];

		p->rd = rd;
		p->id = i;
		p->thread = i >= N_GOR;
		p->rng = rd->rseed * UINT64_C(0x100000001b3) + (uint64_t) i +
		    1;
		p->exact = !p->thread && sl_procs() == 1;
		if (p->thread) {
			sl_sched_hold();
			if (pthread_create(&p->th, NULL, party_thread, p) != 0)
				SLT_FATAL("pthread_create failed");
		} else {
			SL_ASSERT_OK(sl_go(party_goroutine, p));
		}
	}
	rv = sl_waitgroup_wait_ctx(&rd->wg, NULL, rd->t_cap + HUNG);
	if (rv != 0) {
		sl_dump_goroutines(stderr);
		SLT_FATAL("chaos_timer round hung (seed 0x%" PRIx64 " procs %d "
		    "round %d): %s", rd->seed, rd->procs, rd->round,
		    sl_errname(rv));
	}
	for (int i = N_GOR; i < N_PARTY; i++)
		SL_CHECK_EQ(pthread_join(rd->p[i].th, NULL), 0);

	for (int j = 0; j < SH_N; j++) {
		struct shared *s = &rd->sh[j];
		long starts, stops, recvd;
		int64_t v = 0, dl;

		if (sl_timer_stop(s->t))
			atomic_fetch_add(&s->stops_true, 1);
		starts = atomic_load(&s->starts);
		stops = atomic_load(&s->stops_true);
		recvd = atomic_load(&s->recvd);
		CHK(co, sl_chan_len(s->ch) == 0, "shared %s %d: length %zu "
		    "after the final stop", kind(s->ticker), j,
		    sl_chan_len(s->ch));
		dl = sl_now() + 2 * s->ns + 100 * US;
		rv = sl_chan_recv_ctx(s->ch, &v, NULL, dl);
		CHK(co, rv == SL_ETIMEDOUT, "shared %s %d: %s after the final "
		    "stop", kind(s->ticker), j, sl_errname(rv));
		CHK(co, !sl_timer_stop(s->t), "shared %s %d: a second final "
		    "stop returned true", kind(s->ticker), j);
		if (s->ticker)
			CHK(co, stops <= starts, "shared ticker %d: %ld stops "
			    "returned true, %ld starts", j, stops, starts);
		else
			CHK(co, recvd + stops <= starts, "shared timer %d: "
			    "%ld ticks received + %ld stops true > %ld starts",
			    j, recvd, stops, starts);
		sl_timer_free(s->t);
	}
	for (int k = 0; k < NOISE_N; k++) {
		uint64_t x;

		while (sl_chan_tryrecv(rd->noise[k], &x) == 0)
			atomic_fetch_add(&rd->noise_recvd, 1);
		sl_chan_release(rd->noise[k]);
	}
	CHK(co, atomic_load(&rd->noise_sent) == atomic_load(&rd->noise_recvd),
	    "noise: %ld sent, %ld received", atomic_load(&rd->noise_sent),
	    atomic_load(&rd->noise_recvd));
}

/* ---- the cases ----------------------------------------------------------- */

/* One test case: the worker count, the seed, the work per round. */
struct tc_case {
	int      procs;    /* workers */
	uint64_t seed;     /* the built-in seed */
	uint64_t run_seed; /* the seed in use */
	long     quota;    /* operations per party and round */
};

/* The main goroutine of a case: ROUNDS rounds, then a summary. */
static void
body(void *arg)
{
	struct tc_case *c = arg;
	struct stats t;
	int64_t t0 = sl_now();

	memset(&t, 0, sizeof(t));
	for (int r = 0; r < ROUNDS; r++) {
		struct round *rd = calloc(1, sizeof(*rd));
		uint64_t x = c->run_seed ^ ((uint64_t) r << 32);

		if (rd == NULL)
			SLT_FATAL("out of memory");
		rd->seed = c->run_seed;
		rd->round = r;
		rd->rseed = slt_rnd(&x);
		rd->procs = c->procs;
		rd->quota = c->quota;
		run_round(rd);
		add_stats(&t, rd);
		free(rd);
	}
	printf("chaos_timer seed 0x%" PRIx64 " procs %d heap max %d: %d "
	    "rounds, %ld ops in %.2f s: ticks %ld one-shot %ld ticker (%ld < a period "
	    "apart); stops %ld true %ld false; %ld resets, %ld refused; "
	    "%ld frees; sl_after %ld received %ld left; shared %ld ticks "
	    "%ld stops/resets; %ld timeouts; %ld order checks; %ld windows "
	    "%.1f ticks each (of 10 periods); %ld hogs; %ld noise\n",
	    c->run_seed, c->procs, sli_timer_heap_max, ROUNDS, t.ops,
	    (double) (sl_now() - t0) / SL_SECOND, t.ticks1, t.ticksn,
	    t.short_gaps, t.stops_t, t.stops_f, t.resets, t.einval, t.frees,
	    t.after_got, t.after_left, t.sh_recvd, t.sh_ops, t.timeouts,
	    t.ordered, t.win, t.win ? (double) t.win_ticks / t.win : 0.0,
	    t.hogs, t.noise);
	fflush(stdout);
	slt_replay_hint("chaos_timer", c->run_seed, c->procs);
}

static void
test_chaos_timer(void **state)
{
	struct tc_case *c = *state;
	sl_timer *t = NULL;
	sl_chan *ch = NULL;

	/* Outside sl_main nothing could send: refused, out untouched. */
	assert_int_equal(sl_timer_make(SL_MILLISECOND, &t), SL_ESTATE);
	assert_int_equal(sl_ticker_make(SL_MILLISECOND, &t), SL_ESTATE);
	assert_int_equal(sl_after(SL_MILLISECOND, &ch), SL_ESTATE);
	assert_null(t);
	assert_null(ch);

	c->run_seed = slt_seed(c->seed);
	c->quota = slt_scaled_min(QUOTA, QUOTA_MIN);
#ifdef SLT_TSAN
	c->quota = c->quota / TSAN_DIVISOR > QUOTA_MIN ?
	    c->quota / TSAN_DIVISOR : QUOTA_MIN;
#endif
	sli_timer_heap_max = c->run_seed % 2 == 0 ?
	    4 + (int) (c->run_seed / 2 % 29) : 0;
	slt_run_procs(c->procs, body, c);
	sli_timer_heap_max = 0;
}

static struct tc_case cases[] = {
	{ .procs = 1, .seed = 0x71c0001 }, { .procs = 1, .seed = 0x71c0002 },
	{ .procs = 1, .seed = 0x71c0003 }, { .procs = 2, .seed = 0x71c0001 },
	{ .procs = 2, .seed = 0x71c0002 }, { .procs = 2, .seed = 0x71c0003 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_timer_1_worker_seed_1", test_chaos_timer, NULL,
		    NULL, &cases[0] },
		{ "test_chaos_timer_1_worker_seed_2", test_chaos_timer, NULL,
		    NULL, &cases[1] },
		{ "test_chaos_timer_1_worker_seed_3", test_chaos_timer, NULL,
		    NULL, &cases[2] },
		{ "test_chaos_timer_2_workers_seed_1", test_chaos_timer, NULL,
		    NULL, &cases[3] },
		{ "test_chaos_timer_2_workers_seed_2", test_chaos_timer, NULL,
		    NULL, &cases[4] },
		{ "test_chaos_timer_2_workers_seed_3", test_chaos_timer, NULL,
		    NULL, &cases[5] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
