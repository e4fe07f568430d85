/*
 * test_chaos.c — a randomized, seeded conservation test of channels and
 * select under concurrency: no message is lost, duplicated or invented,
 * whatever mix of operations races on the channels.
 *
 * Why: the hand-written cases of test_chan.c and test_select.c each pin
 * down one interleaving.  Races between a select's poll and its park, a
 * deadline or a cancellation firing while a partner completes the case,
 * close waking parties half-way through, a foreign thread on the other
 * side: these show up only when many kinds of operation meet at random.
 *
 * How: CH_N channels of 64-bit elements (unbuffered, cap 1, cap 7 and
 * cap 64) are shared by AG_GOROUTINES goroutines and AG_THREADS plain
 * pthreads (the "agents"; each leans towards sending or receiving).  Each
 * agent makes random operations from its own seeded generator: blocking,
 * timed, context-bound, non-blocking and batch sends and receives, and
 * selects over random cases (send and receive mixed, a channel twice,
 * NULL channels, a context's done channel, more cases than select keeps
 * on its stack) with a default case, a deadline, a context that another
 * goroutine cancels, a context that times out, or none.  Every value
 * sent is fresh and names its producer, its channel and a sequence
 * number.  A producer records exactly the values its successful sends
 * delivered (a send that failed must not have); a consumer records what
 * it received, checking on the spot that the value came from the channel
 * it was received on, that values of one producer on one channel arrive
 * in the order they were sent (which Go guarantees, for any capacity,
 * to one receiver of sends made one after the other), and that nothing
 * else was written: no other receive buffer of a select, no element of
 * a batch receive past the count it returned, nothing on an error.
 *
 * The coordinator (the main goroutine, agent 0) closes the channels one
 * by one at random moments of the run.  Closing must then hold: a send
 * begun after close returned fails with SL_ECLOSED (or the context's
 * error, checked first) and delivers nothing, a closed channel is ready
 * (no SL_EAGAIN), receivers drain what the buffer held and then get the
 * closed indication, and no value appears after some receiver saw that
 * indication.  If nothing progresses for a while (everybody blocked on
 * mismatched channels), the coordinator unsticks them with a select over
 * every open channel, as an agent itself.  At the end it closes what is
 * still open, drains every channel and checks that the multiset of values
 * received equals exactly the set of values whose send succeeded, with
 * counts and sum/XOR checksums on failure.
 *
 * Each case runs ROUNDS such rounds (fresh channels, agents and close
 * schedule each: closing is where races concentrate) with 1 or 2 workers
 * and one seed.  The seed decides the channel capacities, the close
 * schedules and each agent's sequence of operations (the interleaving is
 * up to the machine).  A failure prints the seed, round and agent;
 * SLUICE_CHAOS_SEED=<number> runs every case with that seed instead of
 * the built-in ones, SLUICE_CHAOS_SEED=random with a new one (printed).
 * The work scales with SLUICE_TEST_SCALE (valgrind runs 2% of it) and is
 * a third under TSan; a wall-clock cap bounds every round whatever the
 * build, and a round that does not end long after it is reported as hung
 * with every goroutine's wait.
 */
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "sltest.h"

enum {
	CH_N = 6,            /* channels */
	AG_GOROUTINES = 6,   /* agents that are goroutines */
	AG_THREADS = 2,      /* agents that are plain pthreads */
	AG_N = 1 + AG_GOROUTINES + AG_THREADS, /* agent 0: the coordinator */
	SEL_MAX = 12,        /* cases per select (select keeps 8 on stack) */
	MANY_MAX = 8,        /* elements per batch call */
	SEQ_PER_OP = SEL_MAX, /* most fresh values one operation uses */
	PRINT_MAX = 4,       /* failures printed per check and round */
	LINES_MAX = 2048,    /* more than the lines of this file */
	ROUNDS = 8,          /* rounds per case: fresh channels each */
	QUOTA = 9000,        /* operations per agent and round, before
	                        scaling */
	TSAN_DIVISOR = 3,    /* less work under TSan */
};

/* A value: producer (8 bits), channel (8 bits), sequence (48 bits, from
 * 1).  No valid value is 0 (what a closed receive stores) or SENTINEL. */
#define V_MAKE(p, k, s)                                                     \
	(((uint64_t) (p) << 56) | ((uint64_t) (k) << 48) | (uint64_t) (s))
#define V_PROD(v)   ((unsigned) ((v) >> 56))
#define V_CHAN(v)   ((unsigned) (((v) >> 48) & 0xff))
#define V_SEQ(v)    ((v) & ((UINT64_C(1) << 48) - 1))
#define SENTINEL    UINT64_MAX

/* The wall-clock cap of one round, whatever its op count, and when a
 * round that has not ended counts as hung. */
#define ROUND_CAP  (2 * SL_SECOND)
#define ROUND_HUNG (ROUND_CAP + 30 * SL_SECOND)

/* Bit of an error code in an "allowed results" mask. */
#define B(e) (1u << (unsigned) (e))

struct chaos;

/* Counters of one agent, for the summary line. */
struct stats {
	long ops;      /* operations made */
	long sent;     /* values delivered */
	long recvd;    /* values received */
	long selects;  /* selects made */
	long closed;   /* SL_ECLOSED, or a case completed with ok false */
	long timeout;  /* SL_ETIMEDOUT */
	long canceled; /* SL_ECANCELED */
	long deadline; /* SL_EDEADLINE */
	long again;    /* SL_EAGAIN */
};

/* One party of the test: a goroutine, a thread or the coordinator. */
struct agent {
	struct chaos *cx;        /* the shared state */
	int           id;        /* index in cx->ag, producer id of values */
	bool          thread;    /* a plain pthread */
	int           send_pct;  /* % of plain operations that send */
	uint64_t      rng;       /* generator state */
	uint64_t      next_seq;  /* next fresh sequence number */
	uint64_t      max_seq;   /* size of delivered[] (it grows) */
	uint8_t      *delivered; /* [seq] 1 + its channel once a send of it
	                            succeeded, else 0 */
	uint64_t     *got;       /* values received, in order */
	size_t        ngot;      /* entries used in got */
	size_t        capgot;    /* entries allocated in got */
	uint64_t      last[AG_N][CH_N]; /* last seq received per producer
	                                   and channel (FIFO check) */
	struct stats  st;        /* counters */
	pthread_t     th;        /* the thread, if thread */
};

/* What one round of a case shares between its parties. */
struct chaos {
	uint64_t     seed;             /* the case's seed */
	int          round;            /* which round of the case */
	uint64_t     rseed;            /* the round's seed (from both) */
	int          procs;            /* workers */
	long         quota;            /* operations per agent */
	int64_t      t0;               /* start of the round */
	int64_t      t_cap;            /* agents stop here at the latest */
	sl_chan     *ch[CH_N];         /* the channels */
	size_t       cap[CH_N];        /* their capacities */
	atomic_int   closing[CH_N];    /* 1 before sl_chan_close is called */
	atomic_int   closed[CH_N];     /* 1 after sl_chan_close returned */
	atomic_int   drained[CH_N];    /* 1 once a receive saw "closed" */
	atomic_long  ops;              /* operations completed by agents */
	atomic_int   agents_done;      /* agents that finished */
	atomic_int   stop;             /* tells the canceller to return */
	atomic_int   printed[LINES_MAX]; /* failures printed, per line */
	long         stalls;           /* unsticking selects made */
	long         forced_closes;    /* closes forced by a long stall */
	_Atomic(sl_ctx *) slot[AG_N];  /* per agent: a context for the
	                                  canceller to cancel, or NULL */
	sl_waitgroup canceller_wg;     /* the canceller goroutine */
	struct agent ag[AG_N];         /* the parties */
};

/* ---- helpers ------------------------------------------------------------ */

/* Reports a failed invariant of a's round: prints it (the first
 * PRINT_MAX of each check, with the seed) and counts it as a failed
 * SL_CHECK. */
static void chaos_failed(struct agent *a, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
chaos_failed(struct agent *a, int line, const char *fmt, ...)
{
	struct chaos *cx = a->cx;
	char where[128], who[64];
	va_list ap;

	if (a->id == 0)
		snprintf(who, sizeof(who), "coordinator");
	else
		snprintf(who, sizeof(who), "agent %d%s, op %ld", a->id,
		    a->thread ? " (thread)" : "", a->st.ops);
	snprintf(where, sizeof(where), "seed 0x%" PRIx64 " procs %d round %d, "
	    "%s", cx->seed, cx->procs, cx->round, who);
	va_start(ap, fmt);
	slt_chaos_failed(&cx->printed[(unsigned) line % LINES_MAX], PRINT_MAX,
	    __FILE__, line, where, fmt, ap);
	va_end(ap);
}

#define CHAOS_CHECK(a, cond, ...)                                           \
	do {                                                                \
		if (!(cond))                                                \
			chaos_failed((a), __LINE__, __VA_ARGS__);           \
	} while (0)

/* Describes a value for messages. */
static const char *
vstr(uint64_t v, char *buf, size_t len)
{
	if (v == SENTINEL)
		snprintf(buf, len, "<untouched>");
	else
		snprintf(buf, len, "p%u/ch%u/#%" PRIu64, V_PROD(v), V_CHAN(v),
		    V_SEQ(v));
	return (buf);
}

/* A fresh value of agent a for channel k. */
static uint64_t
fresh(struct agent *a, int k)
{
	uint64_t s = a->next_seq++;

	if (s >= a->max_seq) {
		/* The coordinator sends as much as stalls need. */
		uint64_t n = 2 * a->max_seq;
		uint8_t *d = realloc(a->delivered, n);

		if (d == NULL)
			SLT_FATAL("out of memory");
		memset(d + a->max_seq, 0, n - a->max_seq);
		a->delivered = d;
		a->max_seq = n;
	}
	return (V_MAKE(a->id, k, s));
}

/* Records that agent a's send of v succeeded. */
static void
delivered(struct agent *a, uint64_t v)
{
	a->delivered[V_SEQ(v)] = (uint8_t) (1 + V_CHAN(v));
	a->st.sent++;
}

/* Records a value a received on channel k and checks it came from k,
 * from a real producer, and after the values that producer sent earlier
 * on k that a received. */
static void
take(struct agent *a, int k, uint64_t v)
{
	char b[64];
	unsigned p = V_PROD(v);

	CHAOS_CHECK(a, v != SENTINEL && v != 0,
	    "received %s on channel %d: the buffer was not written",
	    vstr(v, b, sizeof(b)), k);
	CHAOS_CHECK(a, p < AG_N && V_CHAN(v) == (unsigned) k,
	    "received %s on channel %d: wrong channel or producer",
	    vstr(v, b, sizeof(b)), k);
	if (p < AG_N) {
		CHAOS_CHECK(a, V_SEQ(v) > a->last[p][k],
		    "received %s on channel %d after #%" PRIu64 " of the "
		    "same producer: out of order (or duplicated)",
		    vstr(v, b, sizeof(b)), k, a->last[p][k]);
		if (V_SEQ(v) > a->last[p][k])
			a->last[p][k] = V_SEQ(v);
	}
	if (a->ngot == a->capgot) {
		size_t n = a->capgot ? 2 * a->capgot : 4096;
		uint64_t *g = realloc(a->got, n * sizeof(*g));

		if (g == NULL)
			SLT_FATAL("out of memory");
		a->got = g;
		a->capgot = n;
	}
	a->got[a->ngot++] = v;
	a->st.recvd++;
}

/* Counts a result code in the agent's stats. */
static void
count_rv(struct agent *a, int rv)
{
	switch (rv) {
	case SL_ECLOSED:
		a->st.closed++;
		break;
	case SL_ETIMEDOUT:
		a->st.timeout++;
		break;
	case SL_ECANCELED:
		a->st.canceled++;
		break;
	case SL_EDEADLINE:
		a->st.deadline++;
		break;
	case SL_EAGAIN:
		a->st.again++;
		break;
	default:
		break;
	}
}

/* Checks that rv is one of the codes in allowed. */
static void
check_rv(struct agent *a, int line, const char *what, int rv,
    unsigned allowed)
{
	count_rv(a, rv);
	if (rv < 0 || rv >= 32 || (allowed & B(rv)) == 0)
		chaos_failed(a, line, "%s returned %d %s, which it may not here",
		    what, rv, sl_errname(rv));
}

/* A receive on channel k saw the closed indication. */
static void
saw_closed(struct agent *a, int k, const char *what)
{
	CHAOS_CHECK(a, atomic_load(&a->cx->closing[k]),
	    "%s on channel %d reported closed before close was called", what,
	    k);
	atomic_store(&a->cx->drained[k], 1);
}

/* ---- how an operation waits -------------------------------------------- */

/* The deadline and context of one interruptible operation. */
struct wspec {
	sl_ctx  *ctx;         /* for the call, or NULL */
	sl_ctx  *parent;      /* ctx's parent that we made, or NULL */
	int64_t  deadline;    /* SL_FOREVER, 0 (do not wait), or a time */
	unsigned allowed;     /* error codes the wait adds */
	bool     precanceled; /* ctx was canceled before the call */
};

/* Hands ctx (one more reference) to the canceller through a's slot. */
static void
publish(struct agent *a, sl_ctx *ctx)
{
	sl_ctx *old = atomic_exchange(&a->cx->slot[a->id], sl_ctx_retain(ctx));

	sl_ctx_release(old);
}

/* A random way to wait, for agent a: no limit, a deadline (maybe 0 or
 * past), a context that the canceller will cancel, one that times out,
 * both, or one canceled already. */
static void
wspec_make(struct agent *a, struct wspec *w)
{
	uint32_t r = slt_rnd_below(&a->rng, 100);
	int64_t  now = sl_now();

	memset(w, 0, sizeof(*w));
	w->deadline = SL_FOREVER;
	if (r < 15) {
		/* no limit */
	} else if (r < 35) {
		w->deadline = now + (int64_t) slt_rnd_below(&a->rng, 300) *
		    SL_MICROSECOND;
		w->allowed = B(SL_ETIMEDOUT);
	} else if (r < 45) {
		w->deadline = 0;
		w->allowed = B(SL_EAGAIN);
	} else if (r < 50) {
		w->deadline = now - SL_MICROSECOND; /* already past */
		w->allowed = B(SL_ETIMEDOUT);
	} else if (r < 65) {
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &w->ctx));
		publish(a, w->ctx);
		w->allowed = B(SL_ECANCELED);
	} else if (r < 75) {
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &w->ctx));
		publish(a, w->ctx);
		w->deadline = now + (int64_t) slt_rnd_below(&a->rng, 500) *
		    SL_MICROSECOND;
		w->allowed = B(SL_ECANCELED) | B(SL_ETIMEDOUT);
	} else if (r < 88) {
		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
		    (int64_t) slt_rnd_below(&a->rng, 400) * SL_MICROSECOND,
		    &w->ctx));
		w->allowed = B(SL_EDEADLINE);
	} else if (r < 95) {
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(),
		    &w->parent));
		publish(a, w->parent);
		SL_CHECK_OK(sl_ctx_with_timeout(w->parent,
		    (int64_t) slt_rnd_below(&a->rng, 400) * SL_MICROSECOND,
		    &w->ctx));
		w->allowed = B(SL_ECANCELED) | B(SL_EDEADLINE);
	} else {
		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &w->ctx));
		sl_ctx_cancel(w->ctx);
		w->allowed = B(SL_ECANCELED);
		w->precanceled = true;
	}
}

/* Ends a wait: takes back the published context, drops ours. */
static void
wspec_done(struct agent *a, struct wspec *w)
{
	if (w->ctx == NULL)
		return;
	sl_ctx_release(atomic_exchange(&a->cx->slot[a->id], NULL));
	sl_ctx_release(w->ctx);
	sl_ctx_release(w->parent);
}

/* Checks that an error rv of a call that waited as w says (with ctx, w's
 * context or NULL, passed to it) was due: a timeout not before the
 * deadline, a context error that the context reports too, a canceled
 * context (checked first) always winning. */
static void
check_wait(struct agent *a, const struct wspec *w, sl_ctx *ctx, int rv)
{
	if (rv == SL_ETIMEDOUT)
		CHAOS_CHECK(a, w->deadline != SL_FOREVER && w->deadline != 0 &&
		    sl_now() >= w->deadline,
		    "SL_ETIMEDOUT %" PRId64 " ns before the deadline",
		    w->deadline - sl_now());
	if (rv == SL_ECANCELED || rv == SL_EDEADLINE)
		CHAOS_CHECK(a, ctx != NULL && sl_ctx_err(ctx) == rv,
		    "%s but the context says %s", sl_errname(rv),
		    sl_errname(ctx != NULL ? sl_ctx_err(ctx) : 0));
	if (w->precanceled && ctx != NULL)
		CHAOS_CHECK(a, rv == SL_ECANCELED,
		    "%s with a canceled context", sl_errname(rv));
}

/* ---- one-channel operations ------------------------------------------- */

enum form { F_BLOCK, F_WAIT, F_TRY, F_MANY };

/* A send of fresh values on a random channel, in the given form. */
static void
op_send(struct agent *a, enum form f)
{
	struct chaos *cx = a->cx;
	int           k = (int) slt_rnd_below(&a->rng, CH_N);
	sl_chan      *ch = cx->ch[k];
	bool          closed0 = atomic_load(&cx->closed[k]);
	struct wspec  w;
	uint64_t      v[MANY_MAX];
	size_t        n = 1, sent = 0;
	unsigned      allowed = B(0) | B(SL_ECLOSED);
	int           rv;

	memset(&w, 0, sizeof(w));
	if (f == F_MANY)
		n = 1 + slt_rnd_below(&a->rng, MANY_MAX);
	for (size_t i = 0; i < n; i++)
		v[i] = fresh(a, k);
	switch (f) {
	case F_BLOCK:
		rv = sl_chan_send(ch, &v[0]);
		break;
	case F_TRY:
		rv = sl_chan_trysend(ch, &v[0]);
		allowed |= B(SL_EAGAIN);
		break;
	case F_WAIT:
		wspec_make(a, &w);
		rv = sl_chan_send_ctx(ch, &v[0], w.ctx, w.deadline);
		allowed |= w.allowed;
		break;
	default:
		wspec_make(a, &w);
		rv = sl_chan_send_many(ch, v, n, &sent, w.ctx, w.deadline);
		allowed |= w.allowed;
		break;
	}
	if (f != F_MANY)
		sent = rv == 0 ? 1 : 0;
	check_rv(a, __LINE__, "send", rv, allowed);
	CHAOS_CHECK(a, rv == 0 ? sent == n : sent < n,
	    "send of %zu on channel %d returned %s with %zu sent", n, k,
	    sl_errname(rv), sent);
	if (sent > n)
		sent = n;
	for (size_t i = 0; i < sent; i++)
		delivered(a, v[i]);
	check_wait(a, &w, w.ctx, rv);
	if (closed0) {
		/* A send that began after close returned must fail; only
		 * the context (checked first) may get in before. */
		CHAOS_CHECK(a, sent == 0 && (rv == SL_ECLOSED ||
		    rv == SL_ECANCELED || rv == SL_EDEADLINE),
		    "send on closed channel %d returned %s, %zu delivered", k,
		    sl_errname(rv), sent);
	}
	if (rv == SL_ECLOSED)
		CHAOS_CHECK(a, atomic_load(&cx->closing[k]),
		    "send on channel %d returned SL_ECLOSED before close", k);
	if (f == F_WAIT || f == F_MANY)
		wspec_done(a, &w);
}

/* A receive on a random channel, in the given form. */
static void
op_recv(struct agent *a, enum form f)
{
	struct chaos *cx = a->cx;
	int           k = (int) slt_rnd_below(&a->rng, CH_N);
	sl_chan      *ch = cx->ch[k];
	bool          closed0 = atomic_load(&cx->closed[k]);
	bool          drained0 = atomic_load(&cx->drained[k]);
	struct wspec  w;
	uint64_t      v[MANY_MAX];
	size_t        max = 1, n = 0;
	unsigned      allowed = B(0) | B(SL_ECLOSED);
	int           rv;
	char          b[64];

	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < MANY_MAX; i++)
		v[i] = SENTINEL;
	switch (f) {
	case F_BLOCK:
		rv = sl_chan_recv(ch, &v[0]);
		break;
	case F_TRY:
		rv = sl_chan_tryrecv(ch, &v[0]);
		allowed |= B(SL_EAGAIN);
		break;
	case F_WAIT:
		wspec_make(a, &w);
		rv = sl_chan_recv_ctx(ch, &v[0], w.ctx, w.deadline);
		allowed |= w.allowed;
		break;
	default:
		max = 1 + slt_rnd_below(&a->rng, MANY_MAX);
		wspec_make(a, &w);
		rv = sl_chan_recv_many(ch, v, max, &n, w.ctx, w.deadline);
		allowed |= w.allowed;
		break;
	}
	if (f != F_MANY)
		n = rv == 0 ? 1 : 0;
	check_rv(a, __LINE__, "receive", rv, allowed);
	CHAOS_CHECK(a, rv == 0 ? n >= 1 && n <= max : n == 0,
	    "receive of up to %zu on channel %d returned %s with %zu", max, k,
	    sl_errname(rv), n);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		take(a, k, v[i]);
	/* Nothing written beyond what was received (a closed receive may
	 * zero the first element). */
	for (size_t i = rv == SL_ECLOSED ? 1 : n; i < MANY_MAX; i++)
		CHAOS_CHECK(a, v[i] == SENTINEL,
		    "receive (form %d) of %zu on channel %d returned %s and "
		    "wrote element %zu (%s = 0x%" PRIx64 ")", (int) f, n, k,
		    sl_errname(rv), i, vstr(v[i], b, sizeof(b)), v[i]);
	check_wait(a, &w, w.ctx, rv);
	if (rv == SL_ECLOSED)
		saw_closed(a, k, "receive");
	if (drained0)
		CHAOS_CHECK(a, n == 0,
		    "receive on channel %d got a value after another receive "
		    "saw it closed and drained", k);
	if (closed0)
		CHAOS_CHECK(a, rv != SL_EAGAIN,
		    "receive on closed channel %d returned SL_EAGAIN", k);
	if (f == F_WAIT || f == F_MANY)
		wspec_done(a, &w);
}

/* Operations on the NULL channel (never ready) and cheap queries. */
static void
op_misc(struct agent *a)
{
	struct chaos *cx = a->cx;
	int           k = (int) slt_rnd_below(&a->rng, CH_N);
	uint64_t      v = SENTINEL;
	int64_t       dl = sl_now() + (int64_t) slt_rnd_below(&a->rng, 50) *
	    SL_MICROSECOND;
	bool          closed0 = atomic_load(&cx->closed[k]);
	size_t        len;
	bool          isclosed;

	switch (slt_rnd_below(&a->rng, 6)) {
	case 0:
		v = fresh(a, k); /* never delivered */
		SL_CHECK_ERR(sl_chan_send_ctx(NULL, &v, NULL, dl),
		    SL_ETIMEDOUT);
		break;
	case 1:
		SL_CHECK_ERR(sl_chan_recv_ctx(NULL, &v, NULL, dl),
		    SL_ETIMEDOUT);
		CHAOS_CHECK(a, v == SENTINEL, "NULL receive wrote a value");
		break;
	case 2:
		v = fresh(a, k);
		SL_CHECK_ERR(sl_chan_trysend(NULL, &v), SL_EAGAIN);
		SL_CHECK_ERR(sl_chan_tryrecv(NULL, &v), SL_EAGAIN);
		break;
	case 3:
		/* Closing twice fails and changes nothing. */
		if (closed0)
			SL_CHECK_ERR(sl_chan_close(cx->ch[k]), SL_ECLOSED);
		break;
	default:
		len = sl_chan_len(cx->ch[k]);
		isclosed = sl_chan_closed(cx->ch[k]);
		CHAOS_CHECK(a, len <= cx->cap[k],
		    "channel %d: len %zu > cap %zu", k, len, cx->cap[k]);
		CHAOS_CHECK(a, sl_chan_cap(cx->ch[k]) == cx->cap[k],
		    "channel %d: cap %zu, made with %zu", k,
		    sl_chan_cap(cx->ch[k]), cx->cap[k]);
		CHAOS_CHECK(a, sl_chan_elem_size(cx->ch[k]) == 8,
		    "channel %d: elem size %zu", k,
		    sl_chan_elem_size(cx->ch[k]));
		if (closed0)
			CHAOS_CHECK(a, isclosed,
			    "channel %d not closed after close", k);
		CHAOS_CHECK(a, !isclosed || atomic_load(&cx->closing[k]),
		    "channel %d closed before close", k);
		break;
	}
}

/* ---- select ------------------------------------------------------------- */

/* Case kinds beyond a channel index. */
#define K_NULL (-1) /* NULL channel */
#define K_DONE (-2) /* the done channel of the wait's context */

/*
 * A select over n random cases (or, for the coordinator's unsticking
 * select, rescue: a send and a receive on every open channel, without
 * waiting if rescue is 1, else for 1 ms), then every check of its
 * outcome.
 */
static void
op_select(struct agent *a, int rescue)
{
	struct chaos *cx = a->cx;
	sl_case       cs[SEL_MAX];
	uint64_t      sbuf[SEL_MAX], rbuf[SEL_MAX];
	int           kk[SEL_MAX];
	bool          closed0[SEL_MAX], drained0[SEL_MAX];
	struct wspec  w;
	sl_ctx       *ctxarg;
	size_t        n = 0;
	int           chosen = -1, rv;
	bool          any_closed = false, use_try = false;
	char          b[64];

	memset(&w, 0, sizeof(w));
	memset(cs, 0, sizeof(cs));
	a->st.selects++;
	if (rescue) {
		w.deadline = rescue == 1 ? 0 : sl_now() + SL_MILLISECOND;
		w.allowed = B(SL_ETIMEDOUT) | B(SL_EAGAIN);
		for (int k = 0; k < CH_N && n + 2 <= SEL_MAX; k++) {
			if (atomic_load(&cx->closed[k]))
				continue;
			kk[n] = k;
			cs[n++].op = SL_SEND;
			kk[n] = k;
			cs[n++].op = SL_RECV;
		}
	} else {
		uint32_t r = slt_rnd_below(&a->rng, 16);

		wspec_make(a, &w);
		n = r == 0 ? 9 + slt_rnd_below(&a->rng, SEL_MAX - 8) :
		    1 + slt_rnd_below(&a->rng, 6);
		for (size_t i = 0; i < n; i++) {
			uint32_t c = slt_rnd_below(&a->rng, 100);

			cs[i].op = (int) slt_rnd_below(&a->rng, 100) <
			    a->send_pct ? SL_SEND : SL_RECV;
			if (c < 8)
				kk[i] = K_NULL;
			else if (c < 14 && w.ctx != NULL)
				kk[i] = K_DONE;
			else if (c < 26 && i > 0 && kk[i - 1] >= 0)
				kk[i] = kk[i - 1]; /* the same channel again */
			else
				kk[i] = (int) slt_rnd_below(&a->rng, CH_N);
			if (kk[i] == K_DONE)
				cs[i].op = SL_RECV;
		}
		/* Never block for good on NULL channels alone. */
		if (w.ctx == NULL && w.deadline == SL_FOREVER &&
		    kk[0] == K_NULL)
			kk[0] = (int) slt_rnd_below(&a->rng, CH_N);
	}
	for (size_t i = 0; i < n; i++) {
		sbuf[i] = rbuf[i] = SENTINEL;
		closed0[i] = drained0[i] = false;
		if (kk[i] >= 0) {
			cs[i].ch = cx->ch[kk[i]];
			closed0[i] = atomic_load(&cx->closed[kk[i]]);
			drained0[i] = atomic_load(&cx->drained[kk[i]]);
			any_closed |= closed0[i];
		} else if (kk[i] == K_DONE) {
			cs[i].ch = sl_ctx_done(w.ctx);
		} else {
			cs[i].ch = NULL;
		}
		if (cs[i].op == SL_SEND) {
			sbuf[i] = fresh(a, kk[i] >= 0 ? kk[i] : 0);
			cs[i].buf = &sbuf[i];
		} else {
			cs[i].buf = kk[i] == K_DONE ? NULL : &rbuf[i];
		}
		/* must be overwritten: */
		cs[i].ok = slt_rnd_below(&a->rng, 2) != 0;
	}

	/* The context is the call's, or only its done channel is a case. */
	ctxarg = w.ctx;
	if (w.ctx != NULL && slt_rnd_below(&a->rng, 3) == 0) {
		bool has_done = false;

		for (size_t i = 0; i < n; i++)
			has_done |= kk[i] == K_DONE;
		if (has_done || w.deadline != SL_FOREVER) {
			ctxarg = NULL;
			w.allowed &= ~(B(SL_ECANCELED) | B(SL_EDEADLINE));
		}
	}
	if (ctxarg == NULL && w.deadline == 0)
		use_try = slt_rnd_below(&a->rng, 2) != 0;
	if (use_try)
		rv = sl_select_try(cs, n, &chosen);
	else
		rv = sl_select(cs, n, ctxarg, w.deadline, &chosen);

	check_rv(a, __LINE__, "select", rv, B(0) | w.allowed);
	check_wait(a, &w, ctxarg, rv);
	if (rv == SL_EAGAIN)
		CHAOS_CHECK(a, !any_closed,
		    "select of %zu cases with a closed channel returned "
		    "SL_EAGAIN", n);
	if (rv != 0) {
		for (size_t i = 0; i < n; i++)
			CHAOS_CHECK(a, rbuf[i] == SENTINEL,
			    "select failed with %s but wrote case %zu",
			    sl_errname(rv), i);
		goto out;
	}
	CHAOS_CHECK(a, chosen >= 0 && (size_t) chosen < n,
	    "select chose case %d of %zu", chosen, n);
	if (chosen < 0 || (size_t) chosen >= n)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (i != (size_t) chosen)
			CHAOS_CHECK(a, rbuf[i] == SENTINEL,
			    "select chose case %d but wrote case %zu (%s)",
			    chosen, i, vstr(rbuf[i], b, sizeof(b)));
	}
	{
		int      c = chosen, k = kk[c];
		sl_case *cc = &cs[c];

		CHAOS_CHECK(a, k != K_NULL, "select chose a NULL case");
		if (k == K_DONE) {
			CHAOS_CHECK(a, !cc->ok,
			    "a done channel delivered a value");
			CHAOS_CHECK(a, sl_ctx_err(w.ctx) != 0,
			    "done channel ready with the context live");
			a->st.closed++;
		} else if (k < 0) {
			/* reported above */
		} else if (cc->op == SL_SEND) {
			if (cc->ok) {
				CHAOS_CHECK(a, !closed0[c],
				    "select sent %s on channel %d after it "
				    "was closed", vstr(sbuf[c], b, sizeof(b)),
				    k);
				delivered(a, sbuf[c]);
			} else {
				a->st.closed++;
				CHAOS_CHECK(a, atomic_load(&cx->closing[k]),
				    "select send on channel %d: ok false "
				    "before close", k);
			}
		} else {
			if (cc->ok) {
				CHAOS_CHECK(a, !drained0[c],
				    "select received on channel %d after it "
				    "was seen closed and drained", k);
				take(a, k, rbuf[c]);
			} else {
				a->st.closed++;
				saw_closed(a, k, "select receive");
			}
		}
	}
out:
	wspec_done(a, &w);
}

/* ---- the parties --------------------------------------------------------- */

/* One random operation of agent a. */
static void
op_random(struct agent *a)
{
	uint32_t r = slt_rnd_below(&a->rng, 100);
	uint32_t f = slt_rnd_below(&a->rng, 100);
	enum form form = f < 20 ? F_BLOCK : f < 55 ? F_WAIT :
	    f < 80 ? F_TRY : F_MANY;

	if (r < 40)
		op_select(a, 0);
	else if (r < 44)
		op_misc(a);
	else if ((int) slt_rnd_below(&a->rng, 100) < a->send_pct)
		op_send(a, form);
	else
		op_recv(a, form);
}

/* The body of an agent: its quota of operations, or until the cap. */
static void
agent_run(struct agent *a)
{
	struct chaos *cx = a->cx;

	for (long i = 0; i < cx->quota; i++) {
		if ((i & 31) == 0 && sl_now() > cx->t_cap)
			break;
		op_random(a);
		a->st.ops++;
		atomic_fetch_add(&cx->ops, 1);
		if (slt_rnd_below(&a->rng, 8) == 0)
			sl_yield();
	}
	atomic_fetch_add(&cx->agents_done, 1);
}

static void
agent_goroutine(void *arg)
{
	agent_run(arg);
}

static void *
agent_thread(void *arg)
{
	agent_run(arg);
	sl_sched_release();
	return (NULL);
}

/* Cancels the contexts agents publish, at random moments. */
static void
canceller(void *arg)
{
	struct chaos *cx = arg;
	uint64_t      rng = cx->rseed ^ UINT64_C(0xc0ffee);

	while (!atomic_load(&cx->stop)) {
		int     i = (int) slt_rnd_below(&rng, AG_N);
		sl_ctx *c = atomic_exchange(&cx->slot[i], NULL);

		if (c != NULL) {
			sl_ctx_cancel(c);
			sl_ctx_release(c);
		}
		if (slt_rnd_below(&rng, 4) == 0)
			sl_yield();
		else
			sl_sleep((int64_t) slt_rnd_below(&rng, 60) *
			    SL_MICROSECOND);
	}
	sl_waitgroup_done(&cx->canceller_wg);
}

/* The coordinator closes channel k. */
static void
close_one(struct chaos *cx, int k)
{
	atomic_store(&cx->closing[k], 1);
	SL_CHECK_OK(sl_chan_close(cx->ch[k]));
	atomic_store(&cx->closed[k], 1);
	SL_CHECK(sl_chan_closed(cx->ch[k]));
	SL_CHECK_ERR(sl_chan_close(cx->ch[k]), SL_ECLOSED);
}

/* ---- the final accounting -------------------------------------------- */

/* Checks that the values received are exactly the values delivered:
 * each delivered value received once, nothing else received. */
static void
verify(struct chaos *cx)
{
	struct agent *co = &cx->ag[0];
	uint8_t *cnt[AG_N];
	long nsent = 0, nrecv = 0, lost = 0, dup = 0, phantom = 0;
	uint64_t sum_s = 0, xor_s = 0, sum_r = 0, xor_r = 0;
	char b[64];

	for (int p = 0; p < AG_N; p++) {
		cnt[p] = calloc(cx->ag[p].next_seq + 1, 1);
		if (cnt[p] == NULL)
			SLT_FATAL("out of memory");
	}
	for (int i = 0; i < AG_N; i++) {
		struct agent *a = &cx->ag[i];

		for (size_t j = 0; j < a->ngot; j++) {
			uint64_t v = a->got[j];
			unsigned p = V_PROD(v);

			nrecv++;
			sum_r += v;
			xor_r ^= v;
			if (p >= AG_N || V_SEQ(v) == 0 ||
			    V_SEQ(v) >= cx->ag[p].next_seq) {
				phantom++;
				CHAOS_CHECK(co, false, "agent %d received %s, "
				    "which nobody sent", i,
				    vstr(v, b, sizeof(b)));
				continue;
			}
			if (cnt[p][V_SEQ(v)] < 255)
				cnt[p][V_SEQ(v)]++;
		}
	}
	for (int p = 0; p < AG_N; p++) {
		struct agent *a = &cx->ag[p];

		for (uint64_t s = 1; s < a->next_seq; s++) {
			int d = a->delivered[s], c = cnt[p][s];

			if (d != 0) {
				uint64_t v = V_MAKE(p, d - 1, s);

				nsent++;
				sum_s += v;
				xor_s ^= v;
			}
			if (d != 0 && c == 0) {
				lost++;
				CHAOS_CHECK(co, false, "%s was sent but never "
				    "received", vstr(V_MAKE(p, d - 1, s), b,
				    sizeof(b)));
			} else if (c > 1) {
				dup++;
				CHAOS_CHECK(co, false, "p%d/#%" PRIu64 " was "
				    "received %d times", p, s, c);
			} else if (d == 0 && c > 0) {
				phantom++;
				CHAOS_CHECK(co, false, "p%d/#%" PRIu64 " was "
				    "received but its send failed", p, s);
			}
		}
	}
	if (nsent != nrecv || sum_s != sum_r || xor_s != xor_r || lost ||
	    dup || phantom) {
		CHAOS_CHECK(co, false, "conservation: %ld sent, %ld received: "
		    "%ld lost, %ld duplicated, %ld phantom; sent sum "
		    "0x%" PRIx64 " xor 0x%" PRIx64 ", received sum "
		    "0x%" PRIx64 " xor 0x%" PRIx64, nsent, nrecv, lost, dup,
		    phantom, sum_s, xor_s, sum_r, xor_r);
	}
	for (int p = 0; p < AG_N; p++)
		free(cnt[p]);
}

/* Adds the agents' counters of a round to t. */
static void
add_stats(struct stats *t, const struct chaos *cx)
{
	for (int i = 0; i < AG_N; i++) {
		const struct stats *s = &cx->ag[i].st;

		t->ops += s->ops;
		t->sent += s->sent;
		t->recvd += s->recvd;
		t->selects += s->selects;
		t->closed += s->closed;
		t->timeout += s->timeout;
		t->canceled += s->canceled;
		t->deadline += s->deadline;
		t->again += s->again;
	}
}

/* ---- the coordinator ------------------------------------------------------ */

/*
 * One round, run by the main goroutine: makes the channels, starts the
 * agents and the canceller, closes the channels at random moments while
 * the agents run, unsticks them when nothing moves, then drains and
 * checks.  Frees everything it made.
 */
static void
run_round(struct chaos *cx)
{
	struct agent *co = &cx->ag[0];
	static const size_t caps[4] = { 0, 1, 7, 64 };
	/* % sending: the coordinator; goroutines 1-6; threads 7-8 */
	static const int pct[AG_N] = { 50, 80, 80, 50, 20, 20, 50, 70, 30 };
	int order[CH_N];
	long at_ops[CH_N];
	int64_t at_time[CH_N];
	uint64_t rng = cx->rseed;
	int next = 0, nagents = AG_N - 1;
	long last_ops = -1;
	int64_t last_move, now;

	/* Every capacity at least once, the rest at random. */
	for (int k = 0; k < CH_N; k++) {
		cx->cap[k] = k < 4 ? caps[k] : caps[slt_rnd_below(&rng, 4)];
		cx->ch[k] = sl_chan_make(sizeof(uint64_t), cx->cap[k]);
		if (cx->ch[k] == NULL)
			SLT_FATAL("out of memory");
	}
	for (int k = 0; k < CH_N; k++)
		order[k] = k;
	for (int k = CH_N - 1; k > 0; k--) {
		int j = (int) slt_rnd_below(&rng, (uint32_t) k + 1);
		int t = order[k];

		order[k] = order[j];
		order[j] = t;
	}
	/* Close moments: between 30% and 95% of the work (or of the cap),
	 * in increasing order. */
	for (int i = 0; i < CH_N; i++) {
		double f = 0.30 + 0.65 * slt_rnd_below(&rng, 1000) / 1000.0;
		long o = (long) (f * (double) cx->quota * nagents);
		int j = i;

		while (j > 0 && at_ops[j - 1] > o) {
			at_ops[j] = at_ops[j - 1];
			at_time[j] = at_time[j - 1];
			j--;
		}
		at_ops[j] = o;
		at_time[j] = (int64_t) (f * (double) ROUND_CAP);
	}

	for (int i = 0; i < AG_N; i++) {
		struct agent *a = &cx->ag[i];

		a->cx = cx;
		a->id = i;
		a->thread = i > AG_GOROUTINES;
		a->rng = cx->rseed * UINT64_C(0x100000001b3) + (uint64_t) i;
		a->send_pct = pct[i];
		a->max_seq = (uint64_t) (i == 0 ? 1 << 12 :
		    cx->quota * SEQ_PER_OP) + 1;
		a->next_seq = 1;
		a->delivered = calloc(a->max_seq, 1);
		if (a->delivered == NULL)
			SLT_FATAL("out of memory");
	}

	cx->t0 = sl_now();
	cx->t_cap = cx->t0 + ROUND_CAP;
	sl_waitgroup_add(&cx->canceller_wg, 1);
	SL_ASSERT_OK(sl_go(canceller, cx));
	for (int i = 1; i < AG_N; i++) {
		struct agent *a = &cx->ag[i];

		if (a->thread) {
			sl_sched_hold();
			if (pthread_create(&a->th, NULL, agent_thread, a) != 0)
				SLT_FATAL("pthread_create failed");
		} else {
			SL_ASSERT_OK(sl_go(agent_goroutine, a));
		}
	}

	last_move = sl_now();
	while (atomic_load(&cx->agents_done) < nagents) {
		long ops = atomic_load(&cx->ops);

		now = sl_now();
		if (now - cx->t0 > ROUND_HUNG) {
			/* Every channel has been closed long ago: someone
			 * missed a wakeup. */
			CHAOS_CHECK(co, false, "round hung: %d of %d agents "
			    "done", atomic_load(&cx->agents_done), nagents);
			sl_dump_goroutines(stderr);
			SLT_FATAL("chaos round hung (seed 0x%" PRIx64 ")",
			    cx->seed);
		}
		if (next < CH_N && (ops >= at_ops[next] ||
		    now - cx->t0 >= at_time[next]))
			close_one(cx, order[next++]);
		if (ops != last_ops) {
			last_ops = ops;
			last_move = now;
		} else if (now - last_move > SL_MILLISECOND) {
			/* Everybody blocked on mismatched channels (or the
			 * machine is just slow): take a hand. */
			cx->stalls++;
			for (int i = 0; i < 16 && atomic_load(&cx->ops) ==
			    ops; i++)
				op_select(co, i < 15 ? 1 : 2);
			if (now - last_move > 200 * SL_MILLISECOND &&
			    next < CH_N) {
				cx->forced_closes++;
				close_one(cx, order[next++]);
				last_move = now;
			}
		}
		if (slt_rnd_below(&rng, 4) == 0)
			sl_yield();
		else
			sl_sleep((int64_t) (20 + slt_rnd_below(&rng, 200)) *
			    SL_MICROSECOND);
	}
	for (int i = 1; i < AG_N; i++)
		if (cx->ag[i].thread)
			SL_CHECK_EQ(pthread_join(cx->ag[i].th, NULL), 0);

	/* What is still open closes now; then everything is drained. */
	while (next < CH_N)
		close_one(cx, order[next++]);
	for (int k = 0; k < CH_N; k++) {
		uint64_t v = SENTINEL;
		int rv;

		while ((rv = sl_chan_recv(cx->ch[k], &v)) == 0) {
			take(co, k, v);
			v = SENTINEL;
		}
		CHAOS_CHECK(co, rv == SL_ECLOSED,
		    "draining channel %d: %s", k, sl_errname(rv));
		CHAOS_CHECK(co, sl_chan_len(cx->ch[k]) == 0,
		    "channel %d: len %zu after the drain", k,
		    sl_chan_len(cx->ch[k]));
		SL_CHECK_ERR(sl_chan_tryrecv(cx->ch[k], &v), SL_ECLOSED);
	}
	atomic_store(&cx->stop, 1);
	sl_waitgroup_wait(&cx->canceller_wg);
	for (int i = 0; i < AG_N; i++)
		sl_ctx_release(atomic_exchange(&cx->slot[i], NULL));

	verify(cx);

	for (int k = 0; k < CH_N; k++)
		sl_chan_release(cx->ch[k]);
	for (int i = 0; i < AG_N; i++) {
		free(cx->ag[i].delivered);
		free(cx->ag[i].got);
	}
}

/* ---- the cases ------------------------------------------------------------ */

/* One test case: the worker count, the seed, the work per round. */
struct chaos_case {
	int      procs;    /* workers */
	uint64_t seed;     /* the built-in seed */
	uint64_t run_seed; /* the seed in use */
	long     quota;    /* operations per agent and round */
};

/* The main goroutine of a case: ROUNDS rounds, then a summary. */
static void
body_chaos(void *arg)
{
	struct chaos_case *c = arg;
	struct stats t;
	long stalls = 0, forced = 0;
	int64_t t0 = sl_now();

	memset(&t, 0, sizeof(t));
	for (int r = 0; r < ROUNDS; r++) {
		struct chaos *cx = calloc(1, sizeof(*cx));
		uint64_t x = c->run_seed ^ ((uint64_t) r << 32);

		if (cx == NULL)
			SLT_FATAL("out of memory");
		cx->seed = c->run_seed;
		cx->round = r;
		cx->rseed = slt_rnd(&x);
		cx->procs = c->procs;
		cx->quota = c->quota;
		run_round(cx);
		add_stats(&t, cx);
		stalls += cx->stalls;
		forced += cx->forced_closes;
		free(cx);
	}
	printf("chaos seed 0x%" PRIx64 " procs %d: %d rounds, %ld ops in "
	    "%.2f s: %ld sent, %ld received, %ld selects; %ld closed, "
	    "%ld timed out, %ld canceled, %ld deadline, %ld would block; "
	    "%ld unsticks, %ld forced closes\n", c->run_seed, c->procs,
	    ROUNDS, t.ops, (double) (sl_now() - t0) / SL_SECOND, t.sent,
	    t.recvd, t.selects, t.closed, t.timeout, t.canceled, t.deadline,
	    t.again, stalls, forced);
	fflush(stdout);
	slt_replay_hint("chaos", c->run_seed, c->procs);
}

/* ---- the cases ------------------------------------------------------------ */

static void
test_chaos(void **state)
{
	struct chaos_case *c = *state;

	c->run_seed = slt_seed(c->seed);
	c->quota = slt_scaled(QUOTA);
#ifdef SLT_TSAN
	c->quota = c->quota / TSAN_DIVISOR > 0 ? c->quota / TSAN_DIVISOR : 1;
#endif
	slt_run_procs(c->procs, body_chaos, c);
}

static struct chaos_case cases[] = {
	{ .procs = 1, .seed = 0x5eed0001 }, { .procs = 1, .seed = 0x5eed0002 },
	{ .procs = 1, .seed = 0x5eed0003 }, { .procs = 2, .seed = 0x5eed0001 },
	{ .procs = 2, .seed = 0x5eed0002 }, { .procs = 2, .seed = 0x5eed0003 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_1_worker_seed_1", test_chaos, NULL, NULL,
		    &cases[0] },
		{ "test_chaos_1_worker_seed_2", test_chaos, NULL, NULL,
		    &cases[1] },
		{ "test_chaos_1_worker_seed_3", test_chaos, NULL, NULL,
		    &cases[2] },
		{ "test_chaos_2_workers_seed_1", test_chaos, NULL, NULL,
		    &cases[3] },
		{ "test_chaos_2_workers_seed_2", test_chaos, NULL, NULL,
		    &cases[4] },
		{ "test_chaos_2_workers_seed_3", test_chaos, NULL, NULL,
		    &cases[5] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
