/*
 * blocking.c — sl_blocking(): a thread pool, and quick calls run inline.
 *
 * A goroutine that must make a blocking call (file I/O, DNS, a blocking
 * library) hands it to this pool and parks; its worker runs other
 * goroutines meanwhile.  Threads are started on demand up to
 * SLI_BLOCKING_MAX, so that below it a call never waits for another to
 * return, and stay until sl_main returns.  An in-flight call holds
 * the scheduler (sli_S.holds) so that waiting for it is not mistaken for a
 * deadlock.
 *
 * A job is QUEUED until a pool thread takes it, then RUNNING.  The caller
 * waits on j.wait, which the thread claims once fn returns.  When the
 * caller's context or deadline claims it first (sl_blocking_ctx), the
 * caller withdraws a QUEUED job, or else, fn being plain C code that
 * nothing can stop, waits for it on j.rest: j and arg live on the
 * caller's stack and must outlive fn.  Whichever of the thread (fn
 * returned) and the caller (rest ready) sets j.finished second is the
 * one that knows both are there, and ends the handshake.
 *
 * A call that recent calls of the same fn say is short (under
 * SLI_BLOCKING_INLINE, the most a caller would spin for it below) runs on
 * the caller's own worker thread instead, when that worker has nothing
 * else to run: the goroutine parks, and the worker calls fn from the
 * park's commit, on its own thread stack (not the goroutine's 64 KiB),
 * as a plain thread (sli_run_detached: what fn readies goes to the other
 * workers), then resumes the goroutine.  That is Go's way with a system
 * call, without the hand-off Go makes when one takes long: sluice cannot
 * take a worker back from a thread stuck in a call.  So a call is only
 * run inline when the history of its fn says it is short (a table keyed
 * by fn; a call of a fn never seen goes to the pool, and every call,
 * inline or pooled, updates the table: up at once after a long one, down
 * slowly after short ones), one call of a fn at a time, and never on
 * the last worker not already in such a call: whatever an inline call
 * waits for (the writer of the pipe it reads), a worker is left to run
 * it.  With one worker, never.  A
 * goroutine reading a cached file in small pieces then pays about 350 ns
 * a call on top of the read itself, against 1.1 us through a pool
 * thread (benchmark (g), README).
 *
 * When sl_main returns, calls in flight are abandoned with their
 * goroutines (sli_blocking_fini; inline ones by sched.c, which leaves
 * their worker threads to them): a call may wait for what never comes.
 *
 * Both sides spin a moment (SLI_BLOCKING_SPIN) before they sleep: a pool
 * thread for the next job, a caller whose worker has nothing else to run
 * for its call to return.  Most blocking calls (a read of a cached file,
 * a stat) take a microsecond or two, while a sleeping thread takes tens
 * of them to wake on the VMs we run on: a goroutine reading a file in
 * small pieces made one call every ~70 us, parking and waking twice each
 * time.  The spin yields the CPU at each turn, so that on a busy machine
 * it lets the other side run rather than keep it off; it never delays
 * other goroutines (the caller parks as soon as its worker has any) and
 * is bounded.
 */
#include <sched.h>
#include <stdlib.h>

#include "sched/sched.h"
#include "sluice/context.h"
#include "sluice/error.h"

#define SLI_BLOCKING_MAX  32
#define SLI_BLOCKING_SPIN (20 * SL_MICROSECOND)
#define SLI_BLOCKING_INLINE SLI_BLOCKING_SPIN /* runs inline below this */
#define BP_HIST_BITS      6   /* the table of call times: 64 entries */

enum { BP_QUEUED, BP_RUNNING };

typedef struct bp_job {
	sl_fn          fn;    /* the blocking call */
	void          *arg;
	sli_wait       wait;  /* the parked caller */
	sli_wait       rest;  /* its wait for fn after its context ended */
	atomic_int     finished; /* set by the first of fn's end and the
	                            caller's ready rest: the second wakes */
	int            state; /* BP_* (under bp.mu) */
	struct bp_job *next;
} bp_job;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	pthread_cond_t  woken;    /* nwaking fell to 0 while stop */
	bp_job         *head, *tail; /* queued jobs */
	int             nqueued;  /* their number */
	int             nthreads;
	int             nidle;    /* threads in the wait, woken or not */
	int             nspin;    /* ... of them spinning (they look at the
	                             queue before they sleep) */
	int             nwaking;  /* threads waking a caller (fn returned) */
	atomic_int      avail;    /* nqueued, read without the lock */
	bool            stop;
	unsigned        gen;      /* sl_main runs ended: a thread whose call
	                             began in an earlier one is abandoned */
	pthread_t       threads[SLI_BLOCKING_MAX];
	bool            busy[SLI_BLOCKING_MAX]; /* thread i in a call */
} bp = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	.woken = PTHREAD_COND_INITIALIZER };

/*
 * How long calls of one fn took lately: a slot of a table keyed by fn,
 * shared by fns whose hashes meet (the last one seen owns it, unless an
 * inline call of the other is in flight).  A slot is one word, read and
 * changed whole:
 *
 *	bits 63-32  which fn: a tag from the hash of its address (never 0,
 *	            so an empty slot is nobody's)
 *	bit  31     an inline call of that fn is in flight: one at a time,
 *	            so that a fn whose calls turn long when several
 *	            goroutines call it at once (reads of peers that all go
 *	            quiet) holds up one worker, not every worker but one
 *	bits 30-0   the estimate, ns: up at once, down by quarters (2.1 s
 *	            at most: anything over 20 us is long)
 *
 * Two fns with the same tag in the same slot (a 1 in 2^38 chance for a
 * pair) share an estimate, which only misjudges their calls.
 */
#define BP_TAG    (~(uint64_t) 0 << 32)
#define BP_BUSY   ((uint64_t) 1 << 31)
#define BP_NS_MAX (BP_BUSY - 1)

static _Atomic uint64_t bp_hist[1 << BP_HIST_BITS];

static atomic_int bp_ninline; /* workers in an inline call */

/* fn's slot, and its tag there. */
static _Atomic uint64_t *
bp_slot(sl_fn fn, uint64_t *tag)
{
	uint64_t h = (uint64_t) (uintptr_t) fn * 0x9e3779b97f4a7c15ULL;

	*tag = (((h >> 26) & 0xffffffffu) | 1) << 32;
	return (&bp_hist[h >> (64 - BP_HIST_BITS)]);
}

/* Notes that a call of fn took ns; inl: it was the inline one in flight. */
static void
bp_note(sl_fn fn, int64_t ns, bool inl)
{
	uint64_t          tag, v, w, nw;
	_Atomic uint64_t *e = bp_slot(fn, &tag);

	v = ns <= 0 ? 0 : (uint64_t) ns > BP_NS_MAX ? BP_NS_MAX :
	    (uint64_t) ns;
	w = atomic_load_explicit(e, memory_order_relaxed);
	do {
		uint64_t old = w & BP_NS_MAX;

		if ((w & BP_TAG) == tag)
			nw = tag | (v >= old ? v : old - (old - v) / 4) |
			    (inl ? 0 : w & BP_BUSY);
		else if (w & BP_BUSY)
			return; /* another fn's inline call holds it */
		else
			nw = tag | v;
	} while (!atomic_compare_exchange_weak_explicit(e, &w, nw,
	    memory_order_relaxed, memory_order_relaxed));
}

/* If recent calls of fn say that the next one is short, and none runs
 * inline now, marks one in flight: true. */
static bool
bp_claim(sl_fn fn)
{
	uint64_t          tag, w;
	_Atomic uint64_t *e = bp_slot(fn, &tag);

	w = atomic_load_explicit(e, memory_order_relaxed);
	do {
		if ((w & BP_TAG) != tag || (w & BP_BUSY) ||
		    (w & BP_NS_MAX) >= (uint64_t) SLI_BLOCKING_INLINE)
			return (false);
	} while (!atomic_compare_exchange_weak_explicit(e, &w, w | BP_BUSY,
	    memory_order_relaxed, memory_order_relaxed));
	return (true);
}

/* Undoes bp_claim (no one else changes the tag of a busy slot). */
static void
bp_unclaim(sl_fn fn)
{
	uint64_t tag;

	atomic_fetch_and_explicit(bp_slot(fn, &tag), ~BP_BUSY,
	    memory_order_relaxed);
}

typedef struct bp_inline {
	sl_fn fn;
	void *arg;
} bp_inline;

/* The commit of an inline call's park: runs on the worker's stack once
 * the caller has switched out. */
static bool
bp_commit_inline(sli_g *g, void *p)
{
	bp_inline *in = p;
	sl_fn      fn = in->fn;
	int64_t    t0;

	if (sli_curg() != NULL) /* only if sli_park switched to another */
		sli_fatal("blocking call of goroutine %llu run on another "
		    "goroutine's stack", (unsigned long long) g->id);
	t0 = sl_now();
	if (!sli_run_detached(g, fn, in->arg)) {
		/* sl_main is stopping this worker: g, like every goroutine
		 * left, is abandoned, and stays parked. */
		bp_unclaim(fn);
		atomic_fetch_sub(&bp_ninline, 1);
		return (true);
	}
	bp_note(fn, sl_now() - t0, true);
	atomic_fetch_sub(&bp_ninline, 1);
	return (false); /* run the caller again at once */
}

/* Runs fn(arg) on this worker's thread if that is safe and worth it (see
 * the top of the file); false if the pool should. */
static bool
bp_try_inline(sl_fn fn, void *arg)
{
	bp_inline in = { .fn = fn, .arg = arg };

	/* Nothing queued here: nor can anything be by the time sli_park
	 * looks (only this goroutine fills its worker's runnext), so the
	 * park goes through the scheduler, whose stack runs the commit. */
	if (sli_S.nprocs < 2 || sli_self_has_work() || !bp_claim(fn))
		return (false);
	if (atomic_fetch_add(&bp_ninline, 1) >= sli_S.nprocs - 1) {
		atomic_fetch_sub(&bp_ninline, 1);
		bp_unclaim(fn);
		return (false);
	}
	sli_park("blocking call", NULL, bp_commit_inline, &in);
	return (true);
}

static void *
bp_thread(void *p)
{
	int self = (int) (intptr_t) p;

	pthread_mutex_lock(&bp.mu);
	for (;;) {
		bp_job  *j;
		sl_fn    fn;
		void    *arg;
		unsigned gen;
		int64_t  t0, ns;

		if (bp.head == NULL && !bp.stop) {
			int64_t until = sl_now() + SLI_BLOCKING_SPIN;

			bp.nidle++;
			bp.nspin++;
			pthread_mutex_unlock(&bp.mu);
			while (atomic_load_explicit(&bp.avail,
			    memory_order_relaxed) == 0 && sl_now() < until)
				sched_yield();
			pthread_mutex_lock(&bp.mu);
			bp.nspin--;
			while (bp.head == NULL && !bp.stop)
				pthread_cond_wait(&bp.cv, &bp.mu);
			bp.nidle--;
		}
		/* Stopped: calls still queued are dropped with their callers,
		 * abandoned as every goroutine left when sl_main returns. */
		if (bp.stop || bp.head == NULL)
			break;
		j = bp.head;
		bp.head = j->next;
		if (bp.head == NULL)
			bp.tail = NULL;
		atomic_store_explicit(&bp.avail, --bp.nqueued,
		    memory_order_relaxed);
		j->state = BP_RUNNING;
		fn = j->fn;
		arg = j->arg;
		gen = bp.gen;
		bp.busy[self] = true;
		pthread_mutex_unlock(&bp.mu);

		t0 = sl_now();
		fn(arg);
		ns = sl_now() - t0;

		pthread_mutex_lock(&bp.mu);
		if (bp.gen != gen) {
			/* sl_main returned meanwhile and left this thread to
			 * exit now, detached: j (on its caller's stack) and
			 * the scheduler are gone. */
			pthread_mutex_unlock(&bp.mu);
			return (NULL);
		}
		bp.busy[self] = false;
		bp.nwaking++;
		pthread_mutex_unlock(&bp.mu);

		bp_note(fn, ns, false);
		/* j lives on the caller's stack: last touch is the wake. */
		if (sli_wait_claim(&j->wait, 0)) {
			sli_wait_wake(&j->wait);
		} else if (atomic_exchange(&j->finished, 1) == 1) {
			/* The caller's context ended first, and it waits. */
			(void) sli_wait_claim(&j->rest, 0);
			sli_wait_wake(&j->rest);
		}
		/* After the wake, so that the call holds the scheduler until
		 * its goroutine is runnable; and a release, not a bare
		 * decrement: if that goroutine has meanwhile run and parked
		 * for good, every worker may be asleep on the strength of
		 * this hold, and one must look again. */
		sl_sched_release();

		pthread_mutex_lock(&bp.mu);
		if (--bp.nwaking == 0 && bp.stop)
			pthread_cond_broadcast(&bp.woken);
	}
	pthread_mutex_unlock(&bp.mu);
	return (NULL);
}

/* Takes j off the queue (under bp.mu). */
static void
bp_withdraw(bp_job *j)
{
	bp_job **pp = &bp.head, *prev = NULL;

	while (*pp != j) {
		prev = *pp;
		pp = &prev->next;
	}
	*pp = j->next;
	if (bp.tail == j)
		bp.tail = prev;
	atomic_store_explicit(&bp.avail, --bp.nqueued, memory_order_relaxed);
}

int
sl_blocking(sl_fn fn, void *arg)
{
	return (sl_blocking_ctx(fn, arg, NULL, SL_FOREVER));
}

int
sl_blocking_ctx(sl_fn fn, void *arg, sl_ctx *ctx, int64_t deadline)
{
	bp_job j = { .fn = fn, .arg = arg, .state = BP_QUEUED };
	int r;

	if (fn == NULL)
		return (SL_EINVAL);
	if ((r = sl_ctx_err(ctx)) != 0)
		return (r);
	if (deadline != SL_FOREVER && sl_now() >= deadline)
		return (SL_ETIMEDOUT);
	if (sli_curg() == NULL) {
		fn(arg);
		return (0);
	}
	if (bp_try_inline(fn, arg))
		return (0);
	sli_wait_init(&j.wait);
	atomic_fetch_add(&sli_S.holds, 1);

	pthread_mutex_lock(&bp.mu);
	bp.stop = false;
	/* Each idle thread takes one queued job.  One signalled a moment ago
	 * still counts in nidle until it wakes, so a thread is started unless
	 * the idle ones outnumber the jobs already queued: else this job
	 * would wait behind a running call, which may never return before
	 * this one runs (a pipe's reader and its writer). */
	if (bp.nidle <= bp.nqueued && bp.nthreads < SLI_BLOCKING_MAX &&
	    pthread_create(&bp.threads[bp.nthreads], NULL, bp_thread,
	    (void *) (intptr_t) bp.nthreads) == 0)
		bp.nthreads++;
	if (bp.nthreads == 0) {
		pthread_mutex_unlock(&bp.mu);
		atomic_fetch_sub(&sli_S.holds, 1);
		return (SL_ESYSTEM);
	}
	if (bp.tail != NULL)
		bp.tail->next = &j;
	else
		bp.head = &j;
	bp.tail = &j;
	atomic_store_explicit(&bp.avail, ++bp.nqueued, memory_order_relaxed);
	/* A spinning thread takes the lock and looks at the queue once more
	 * before it sleeps: one per queued job is enough. */
	if (bp.nqueued > bp.nspin)
		pthread_cond_signal(&bp.cv);
	pthread_mutex_unlock(&bp.mu);

	/* Wait here a moment while this worker has nothing else to run: a
	 * quick call is back before a park and wake would be. */
	int64_t until = sl_now() + SLI_BLOCKING_SPIN;
	while (atomic_load_explicit(&j.wait.fired, memory_order_acquire) ==
	    SLI_WAIT_PENDING && !sli_self_has_work() && sl_now() < until)
		sched_yield();
	r = sli_wait_block(&j.wait, ctx, deadline, "blocking call", NULL,
	    NULL, NULL);
	if (r == 0)
		return (0);

	pthread_mutex_lock(&bp.mu);
	if (j.state == BP_QUEUED) {
		bp_withdraw(&j);
		pthread_mutex_unlock(&bp.mu);
		atomic_fetch_sub(&sli_S.holds, 1);
		return (sli_wait_err(r, ctx));
	}
	pthread_mutex_unlock(&bp.mu);
	/* Running: wait for fn to return. */
	sli_wait_init(&j.rest);
	if (atomic_exchange(&j.finished, 1) == 0)
		(void) sli_wait_block(&j.rest, NULL, SL_FOREVER,
		    "blocking call (its context ended; waiting for it to "
		    "return)", NULL, NULL, NULL);
	return (0);
}

/*
 * Stops the pool; called by sl_main on exit, once no worker runs.  Calls
 * still queued are dropped, and threads in a call are left to it
 * (detached): each exits when its fn returns, touching nothing else.  So
 * sl_main returns when main does, as Go's program ends then, even while
 * a goroutine waits in a call for what never comes (a read of a pipe
 * whose writer was another goroutine, of a terminal).
 */
void
sli_blocking_fini(void)
{
	bool left[SLI_BLOCKING_MAX] = { false };
	int  n;

	pthread_mutex_lock(&bp.mu);
	bp.stop = true;
	bp.gen++;
	pthread_cond_broadcast(&bp.cv);
	/* A thread past its call's end still touches its caller's stack
	 * and the scheduler: wait for those.  The rest are idle (they exit
	 * now) or in a call (left to it). */
	while (bp.nwaking > 0)
		pthread_cond_wait(&bp.woken, &bp.mu);
	n = bp.nthreads;
	for (int i = 0; i < n; i++) {
		if ((left[i] = bp.busy[i])) {
			pthread_detach(bp.threads[i]);
			bp.busy[i] = false;
			atomic_fetch_add(&sli_sched_abandoned, 1);
		}
	}
	pthread_mutex_unlock(&bp.mu);
	for (int i = 0; i < n; i++)
		if (!left[i])
			pthread_join(bp.threads[i], NULL);
	pthread_mutex_lock(&bp.mu);
	bp.nthreads = 0;
	bp.head = bp.tail = NULL;
	bp.nqueued = 0;
	atomic_store(&bp.avail, 0);
	bp.stop = false;
	pthread_mutex_unlock(&bp.mu);
	/* Each run learns its calls afresh; an inline call abandoned by
	 * sch_take_worker never counted itself out. */
	for (size_t i = 0; i < sizeof(bp_hist) / sizeof(bp_hist[0]); i++)
		atomic_store(&bp_hist[i], 0);
	atomic_store(&bp_ninline, 0);
}
