/*
 * sched.c — the M:N scheduler: workers, run queues, park/ready, sl_main.
 *
 * Each worker is an OS thread with a bounded run queue (a ring that its
 * owner pushes to and anyone pops from with a CAS, so idle workers can
 * steal half of it), plus a one-slot `runnext` for the goroutine most
 * recently readied by the running one: a receiver woken by a sender runs
 * next on the same worker, which keeps ping-pong traffic on one core and
 * its caches warm.  Overflow and wake-ups from foreign threads go to one
 * global queue.
 *
 * Every switch goes through the worker's own context (the thread stack):
 * goroutine -> scheduler -> goroutine.  A goroutine that parks states its
 * intent (state PARKING), switches out, and only then does its worker run
 * the commit callback and mark it WAITING; sli_ready() of a goroutine
 * still PARKING spins the few instructions until it is WAITING.  This is
 * what makes it safe to wake a goroutine from any thread.
 *
 * Idle workers sleep on a condition variable with a timeout at the next
 * timer.  When every worker is idle with nothing queued, no timer pending,
 * no blocking call in flight and no hold, yet goroutines are alive, they
 * can never run again: that is reported as a deadlock.
 */
#include "sluice_config.h"

#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SLI_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define SLI_TSAN 1
#endif

#include "chan/chan.h"
#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/error.h"

/*
 * The store-load fence between publishing something (work, or a worker's
 * idleness) and looking for the other side's: either side sees the
 * other's.  TSan does not model fences (GCC warns, and TSan could miss
 * the order), so under it a seq_cst read-modify-write of one shared word
 * does the same: of two such, the later synchronizes with the earlier.
 */
#ifdef SLI_TSAN
static atomic_int sch_fence_word;
#define SCH_FENCE() ((void) atomic_fetch_add(&sch_fence_word, 0))
#else
#define SCH_FENCE() atomic_thread_fence(memory_order_seq_cst)
#endif

sli_sched sli_S;

#define SLI_STEAL_TRACK 64 /* workers whose progress a thief watches */
#define SLI_RUNNEXT_WAIT (3 * SL_MICROSECOND) /* before taking a runnext */
#define SLI_PREFETCH_BYTES 512 /* of a stack, from its saved pointer up */

static __thread sli_worker *sch_tls_worker;

/* What a worker thread abandoned in a blocking call (sli_run_detached)
 * needs once fn returns, its worker being gone: its state word, where to
 * jump out, and its signal stack to free. */
static __thread atomic_int *sch_tls_call;
static __thread jmp_buf    *sch_tls_exit;
static __thread void       *sch_tls_sigstack;
static __thread stack_t     sch_tls_oss;

static struct sigaction sch_old_segv, sch_old_bus;

/* ---- small helpers ----------------------------------------------------- */

__attribute__((noinline)) sli_worker *
sli_self(void)
{
	sli_worker *w = sch_tls_worker;
	__asm__ __volatile__("" : : : "memory");
	return (w);
}

/* errno of the thread running now.  glibc declares __errno_location
 * const, so the compiler may keep &errno across a call; a goroutine that
 * parks in that call can resume on another worker, and would then read
 * or write the first thread's errno.  This call is never merged. */
__attribute__((noinline)) int *
sli_errno(void)
{
	int *e = &errno;
	__asm__ __volatile__("" : "+r"(e) : : "memory");
	return (e);
}

/* What the stall watchdog may read of w: which goroutine runs there. */
static inline void
sch_publish(sli_worker *w, sli_g *g)
{
	atomic_store_explicit(&w->run_id, g != NULL ? g->id : 0,
	    memory_order_relaxed);
	if (g != NULL)
		atomic_store_explicit(&w->run_fn, g->fn, memory_order_relaxed);
}

__attribute__((noinline)) sli_g *
sli_curg(void)
{
	sli_worker *w = sli_self();
	return (w != NULL ? w->cur : NULL);
}

void
sli_fatal(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("sluice: fatal error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

int64_t
sl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * SL_SECOND + ts.tv_nsec);
}

static uint32_t
sch_rand(sli_worker *w)
{
	uint64_t x = w->rand;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->rand = x;
	return ((uint32_t) (x >> 32));
}

/* ---- context switches (with sanitizer and valgrind hooks) -------------- */

static void sch_g_main(void *p);

/*
 * Readies g's stack for the switch to it.  A fresh goroutine's stack is
 * first written here, by the worker that first runs it (see stack.c): its
 * page fault is taken there, in parallel with other workers, not by the
 * spawner.  A parked one's stack is usually out of cache, and its return
 * path would miss on one frame after another: ask for the lines it reads
 * (its saved registers and the frames above them) all at once.
 */
static inline void
sch_stack_in(sli_g *g)
{
	char *sp = g->sp, *top = g->stack_lo + g->stack_size;

	if (sp == NULL) {
		sli_stack_prepare(g, sch_g_main);
		return;
	}
	for (char *p = sp; p < top && p < sp + SLI_PREFETCH_BYTES; p += 64)
		__builtin_prefetch(p, 1, 3);
}

/*
 * While one goroutine runs, start the cache and TLB misses of the ones
 * queued behind it: with many goroutines, each one's record and stack
 * are cold by the time its turn comes, and a wave of them woken at once
 * (a close, a broadcast) would otherwise take those misses one after
 * another.  Two deep: the record of the second in line, and the stack of
 * the first, whose record the last call asked for.  The queue is read
 * without claiming anything: a thief may take those goroutines and run
 * them, and then this only warmed memory that stays mapped (records and
 * stacks are never unmapped while sl_main runs).  Not under TSan, to
 * which reading a record's sp while its owner writes it is a race.
 */
static inline void
sch_prefetch_queued(sli_worker *w)
{
#ifndef SLI_TSAN
	unsigned h = atomic_load_explicit(&w->head, memory_order_relaxed);
	unsigned n = atomic_load_explicit(&w->tail, memory_order_relaxed) - h;
	sli_g   *q;
	char    *sp;

	if (n == 0 || n > SLI_RUNQ_SIZE)
		return;
	q = atomic_load_explicit(&w->runq[h % SLI_RUNQ_SIZE],
	    memory_order_relaxed);
	if (q != NULL) {
		sp = q->sp;
		__builtin_prefetch(sp != NULL ? sp :
		    q->stack_lo + q->stack_size - 64, 1, 3);
	}
	if (n >= 2 && (q = atomic_load_explicit(
	    &w->runq[(h + 1) % SLI_RUNQ_SIZE], memory_order_relaxed)) != NULL)
		__builtin_prefetch(q, 1, 3);
#else
	(void) w;
#endif
}

static void
sch_switch_to_g(sli_worker *w, sli_g *g)
{
	sch_stack_in(g);
	sch_prefetch_queued(w);
#ifdef SLI_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, g->stack_lo, g->stack_size);
#endif
#ifdef SLI_TSAN
	__tsan_switch_to_fiber(g->tsan_fiber, 0);
#endif
	sli_switch(&w->sp, g->sp);
#ifdef SLI_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

static void sch_runq_put(sli_worker *w, sli_g *g);

/*
 * Runs on the worker once g is switched out after sli_park: the commit
 * decides whether g stays parked (WAITING) or runs again at once.
 */
static void
sch_after_park(sli_worker *w, sli_g *g)
{
	sli_stack_check(g);
	if (g->commitf == NULL || g->commitf(g, g->commitarg)) {
		atomic_store_explicit(&g->state, SLI_G_WAITING,
		    memory_order_release);
	} else {
		/* Woken while switching out: run it again soon. */
		atomic_store_explicit(&g->state, SLI_G_RUNNABLE,
		    memory_order_relaxed);
		sli_g *old = atomic_exchange_explicit(&w->runnext, g,
		    memory_order_acq_rel);
		if (old != NULL)
			sch_runq_put(w, old);
	}
}

/* A goroutine that parked by switching straight to the one now running
 * left itself in w->handoff: finish its park.  Called at every point
 * where a goroutine resumes. */
static inline void
sch_finish_handoff(void)
{
	sli_worker *w = sli_self();
	sli_g      *h = w->handoff;

	if (h != NULL) {
		w->handoff = NULL;
		sch_after_park(w, h);
	}
}

static void
sch_switch_to_sched(sli_g *g, bool exiting)
{
	sli_worker *w = sli_self();

#ifdef SLI_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &g->asan_fake,
	    w->stack_lo, w->stack_size);
#else
	(void) exiting;
#endif
#ifdef SLI_TSAN
	__tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
	sli_switch(&g->sp, w->sp);
	/* Resumed, possibly on another worker thread. */
#ifdef SLI_ASAN
	__sanitizer_finish_switch_fiber(g->asan_fake, NULL, NULL);
#endif
	sch_finish_handoff();
}

/* Parks `from` by switching straight to `to` (no trip through the
 * scheduler's stack): the hot path of goroutines handing work to each
 * other on one worker. */
static void
sch_switch_g_to_g(sli_g *from, sli_g *to)
{
	sch_stack_in(to);
#ifdef SLI_ASAN
	__sanitizer_start_switch_fiber(&from->asan_fake, to->stack_lo,
	    to->stack_size);
#endif
#ifdef SLI_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	sli_switch(&from->sp, to->sp);
#ifdef SLI_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
	sch_finish_handoff();
}

/* ---- run queues -------------------------------------------------------- */

/*
 * The global queue is a ring of pointers, not a list through the
 * goroutine records: moving a batch in or out under S.lock then touches
 * no record, where a list made the lock holder wait on a cache miss per
 * goroutine (a spawn storm spills and takes 128 at a time).  It never
 * fills: every spawn makes room for the live count it brings about before
 * its goroutine can be queued, and only live goroutines are queued.
 */
#define SCH_GQ_MIN 256

/* Room for n goroutines in the global queue.  SL_ENOMEM if it cannot
 * grow. */
static int
sch_gq_room(unsigned long n)
{
	sli_g  **q;
	unsigned cap;

	if (n <= atomic_load_explicit(&sli_S.gq_room, memory_order_acquire))
		return (0);
	pthread_mutex_lock(&sli_S.lock);
	if (n > sli_S.gq_cap) {
		for (cap = sli_S.gq_cap ? sli_S.gq_cap : SCH_GQ_MIN; cap < n;)
			cap *= 2;
		if ((q = malloc(cap * sizeof(*q))) == NULL) {
			pthread_mutex_unlock(&sli_S.lock);
			return (SL_ENOMEM);
		}
		for (int i = 0; i < atomic_load(&sli_S.gq_len); i++)
			q[i] = sli_S.gq[(sli_S.gq_first + (unsigned) i) &
			    (sli_S.gq_cap - 1)];
		free(sli_S.gq);
		sli_S.gq = q;
		sli_S.gq_first = 0;
		sli_S.gq_cap = cap;
		atomic_store_explicit(&sli_S.gq_room, cap,
		    memory_order_release);
	}
	pthread_mutex_unlock(&sli_S.lock);
	return (0);
}

/* S.lock held. */
static void
sch_gq_put_locked(sli_g *g)
{
	int n = atomic_load_explicit(&sli_S.gq_len, memory_order_relaxed);

	sli_S.gq[(sli_S.gq_first + (unsigned) n) & (sli_S.gq_cap - 1)] = g;
	atomic_store_explicit(&sli_S.gq_len, n + 1, memory_order_relaxed);
}

/* S.lock held. */
static sli_g *
sch_gq_pop_locked(void)
{
	int    n = atomic_load_explicit(&sli_S.gq_len, memory_order_relaxed);
	sli_g *g;

	if (n == 0)
		return (NULL);
	g = sli_S.gq[sli_S.gq_first];
	sli_S.gq_first = (sli_S.gq_first + 1) & (sli_S.gq_cap - 1);
	atomic_store_explicit(&sli_S.gq_len, n - 1, memory_order_relaxed);
	return (g);
}

static void sch_runq_put(sli_worker *w, sli_g *g);

/* Takes one goroutine from the global queue, and a fair share more into
 * w's run queue.  S.lock held. */
static sli_g *
sch_gq_get_locked(sli_worker *w)
{
	int    n = atomic_load_explicit(&sli_S.gq_len, memory_order_relaxed);
	sli_g *g;

	if (n == 0)
		return (NULL);
	n = n / sli_S.nprocs + 1;
	if (n > SLI_RUNQ_SIZE / 2)
		n = SLI_RUNQ_SIZE / 2;
	/* Only what fits: sch_runq_put must not spill (we hold S.lock).
	 * Only the owner pushes, so the room can only grow meanwhile. */
	unsigned used = atomic_load_explicit(&w->tail, memory_order_relaxed) -
	    atomic_load_explicit(&w->head, memory_order_acquire);
	if ((unsigned) n > SLI_RUNQ_SIZE - used + 1)
		n = (int) (SLI_RUNQ_SIZE - used + 1);
	g = sch_gq_pop_locked();
	for (int i = 1; i < n; i++) {
		sli_g *x = sch_gq_pop_locked();
		if (x == NULL)
			break;
		sch_runq_put(w, x);
	}
	return (g);
}

/* Owner only.  A full ring moves half of itself to the global queue. */
static void
sch_runq_put(sli_worker *w, sli_g *g)
{
	for (;;) {
		unsigned h = atomic_load_explicit(&w->head,
		    memory_order_acquire);
		unsigned t = atomic_load_explicit(&w->tail,
		    memory_order_relaxed);

		if (t - h < SLI_RUNQ_SIZE) {
			atomic_store_explicit(&w->runq[t % SLI_RUNQ_SIZE], g,
			    memory_order_relaxed);
			atomic_store_explicit(&w->tail, t + 1,
			    memory_order_release);
			return;
		}
		unsigned n = (t - h) / 2;
		sli_g   *batch[SLI_RUNQ_SIZE / 2];
		for (unsigned i = 0; i < n; i++)
			batch[i] = atomic_load_explicit(
			    &w->runq[(h + i) % SLI_RUNQ_SIZE],
			    memory_order_relaxed);
		if (!atomic_compare_exchange_strong_explicit(&w->head, &h,
		    h + n, memory_order_release, memory_order_relaxed))
			continue; /* thieves took some: there is room now */
		pthread_mutex_lock(&sli_S.lock);
		for (unsigned i = 0; i < n; i++)
			sch_gq_put_locked(batch[i]);
		sch_gq_put_locked(g);
		pthread_mutex_unlock(&sli_S.lock);
		return;
	}
}

/* Owner only. */
static sli_g *
sch_runq_get(sli_worker *w)
{
	for (;;) {
		unsigned h = atomic_load_explicit(&w->head,
		    memory_order_acquire);
		unsigned t = atomic_load_explicit(&w->tail,
		    memory_order_relaxed);
		if (t == h)
			return (NULL);
		sli_g *g = atomic_load_explicit(&w->runq[h % SLI_RUNQ_SIZE],
		    memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&w->head, &h,
		    h + 1, memory_order_release, memory_order_relaxed))
			return (g);
	}
}

static bool
sch_runq_empty(sli_worker *w)
{
	unsigned h = atomic_load_explicit(&w->head, memory_order_acquire);
	unsigned t = atomic_load_explicit(&w->tail, memory_order_acquire);
	return (h == t &&
	    atomic_load_explicit(&w->runnext, memory_order_acquire) == NULL);
}

/* Steals half of victim's queue into w's; returns one to run.  With
 * stealnext, takes victim's runnext when its queue is empty. */
static sli_g *
sch_runq_steal(sli_worker *w, sli_worker *v, bool stealnext)
{
	sli_g   *batch[SLI_RUNQ_SIZE / 2];
	unsigned n;

	for (;;) {
		unsigned h = atomic_load_explicit(&v->head,
		    memory_order_acquire);
		unsigned t = atomic_load_explicit(&v->tail,
		    memory_order_acquire);
		n = t - h;
		n = n - n / 2;
		if (n == 0) {
			if (!stealnext)
				return (NULL);
			return (atomic_exchange_explicit(&v->runnext, NULL,
			    memory_order_acq_rel));
		}
		if (n > SLI_RUNQ_SIZE / 2)
			continue; /* torn read of head/tail */
		for (unsigned i = 0; i < n; i++)
			batch[i] = atomic_load_explicit(
			    &v->runq[(h + i) % SLI_RUNQ_SIZE],
			    memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&v->head, &h,
		    h + n, memory_order_acq_rel, memory_order_relaxed))
			break;
	}
	for (unsigned i = 0; i + 1 < n; i++)
		sch_runq_put(w, batch[i]);
	return (batch[n - 1]);
}

/* ---- waking idle workers ---------------------------------------------- */

/*
 * A plain thread (a timer stopped, a hold released, a goroutine started
 * from a callback) may wake a worker or queue a goroutine at any moment,
 * also while sl_main sets up or takes down what that touches: S.lock,
 * the workers, the global queue.  It comes in through sch_visit, which
 * refuses until sl_main has made them and once it starts taking them
 * down; sl_main then waits for the visitors inside to leave.  (Both
 * sides write one flag and read the other, seq_cst: one of them sees.)
 */
static bool
sch_visit(void)
{
	/* Closed: refused without touching the count, which sl_main waits
	 * to see at zero (a stream of refusals could keep it off zero). */
	if (!atomic_load(&sli_S.open))
		return (false);
	atomic_fetch_add(&sli_S.visitors, 1);
	if (atomic_load(&sli_S.open))
		return (true);
	atomic_fetch_sub(&sli_S.visitors, 1);
	return (false);
}

static void
sch_leave(void)
{
	atomic_fetch_sub(&sli_S.visitors, 1);
}

/* Wakes idle worker i: from epoll_wait if it owns the poll, else from its
 * condition variable; S.lock held. */
static void
sch_signal_locked(sli_worker *i)
{
	if (i->netpolling)
		sli_poll_break();
	else
		pthread_cond_signal(&i->cv);
}

/* Pops an idle worker and signals it; S.lock held. */
static bool
sch_wake_one_locked(bool spinning)
{
	sli_worker *i = sli_S.idle;

	if (i == NULL)
		return (false);
	sli_S.idle = i->idle_next;
	i->idle_next = NULL;
	i->idle = false;
	atomic_fetch_sub(&sli_S.nidle, 1);
	i->spinning = spinning;
	sch_signal_locked(i);
	return (true);
}

/* There is stealable work: make sure some worker looks for it. */
static void
sch_wakep(void)
{
	int zero = 0;

	SCH_FENCE();
	if (atomic_load_explicit(&sli_S.nidle, memory_order_relaxed) == 0)
		return;
	if (!atomic_compare_exchange_strong(&sli_S.nspinning, &zero, 1))
		return; /* a spinning worker will find it */
	pthread_mutex_lock(&sli_S.lock);
	if (!sch_wake_one_locked(true))
		atomic_fetch_sub(&sli_S.nspinning, 1);
	pthread_mutex_unlock(&sli_S.lock);
}

/* A spinning worker found work: stop spinning, and if more workers idle,
 * pass the baton so the rest of the work gets spread too. */
static void
sch_reset_spinning(sli_worker *w)
{
	if (!w->spinning)
		return;
	w->spinning = false;
	if (atomic_fetch_sub(&sli_S.nspinning, 1) == 1)
		sch_wakep();
}

void
sli_sched_timer_added(int64_t when)
{
	(void) when;
	sli_sched_poke();
}

/* ---- ready / park / yield / exit --------------------------------------- */

void
sli_ready(sli_g *g)
{
	int         s;
	sli_worker *w;

	while ((s = atomic_load_explicit(&g->state, memory_order_acquire)) ==
	    SLI_G_PARKING)
		sli_cpu_relax();
	if (s != SLI_G_WAITING)
		sli_fatal("ready of goroutine %llu in state %d",
		    (unsigned long long) g->id, s);
	atomic_store_explicit(&g->state, SLI_G_RUNNABLE, memory_order_relaxed);

	if ((w = sli_self()) != NULL && w->cur == NULL) {
		/* Readied by the scheduler itself, by a timer: in order at
		 * the tail, so that timers due together wake their goroutines
		 * in deadline order (through runnext the last would run
		 * first, and no hand-off locality is lost here). */
		bool busy = !sch_runq_empty(w);

		sch_runq_put(w, g);
		if (busy)
			sch_wakep();
		return;
	}
	if (w != NULL) {
		sli_g *old = atomic_exchange_explicit(&w->runnext, g,
		    memory_order_acq_rel);
		if (old != NULL) {
			sch_runq_put(w, old);
			sch_wakep();
		}
		return;
	}
	/* A plain thread: the global queue, unless sl_main is taking it
	 * down (g is abandoned then, as every goroutine left). */
	if (!sch_visit())
		return;
	pthread_mutex_lock(&sli_S.lock);
	sch_gq_put_locked(g);
	pthread_mutex_unlock(&sli_S.lock);
	sch_wakep();
	sch_leave();
}

void
sli_park(const char *reason, const void *obj,
    bool (*commit)(sli_g *, void *), void *arg)
{
	sli_g *g = sli_curg();

	__atomic_store_n(&g->wait_reason, reason, __ATOMIC_RELAXED);
	__atomic_store_n(&g->wait_obj, obj, __ATOMIC_RELAXED);
	g->commitf = commit;
	g->commitarg = arg;
	g->swreason = SLI_SW_PARK;
	atomic_store_explicit(&g->state, SLI_G_PARKING, memory_order_relaxed);

	/* Straight to the goroutine this one just readied, if any; every
	 * 16th schedule goes through the scheduler (timers, the global
	 * queue, shutdown). */
	sli_worker *w = sli_self();
	unsigned    tick = atomic_load_explicit(&w->tick,
	    memory_order_relaxed) + 1;
	sli_g      *next = NULL;
	if ((tick & 15) != 0 && atomic_load_explicit(&w->runnext,
	    memory_order_relaxed) != NULL)
		next = atomic_exchange_explicit(&w->runnext, NULL,
		    memory_order_acq_rel);
	if (next == NULL) {
		sch_switch_to_sched(g, false);
	} else {
		atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
		w->handoff = g;
		w->cur = next;
		sch_publish(w, next);
		atomic_store_explicit(&next->state, SLI_G_RUNNING,
		    memory_order_relaxed);
		sch_switch_g_to_g(g, next);
	}
	__atomic_store_n(&g->wait_reason, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&g->wait_obj, NULL, __ATOMIC_RELAXED);
}

void
sl_yield(void)
{
	sli_g *g = sli_curg();

	if (g == NULL) {
		sched_yield();
		return;
	}
	g->swreason = SLI_SW_YIELD;
	sch_switch_to_sched(g, false);
}

/* First and last frame of every goroutine. */
static void
sch_g_main(void *p)
{
	sli_g *g = p;

#ifdef SLI_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	sch_finish_handoff();
	g->fn(g->arg);
	g->swreason = SLI_SW_EXIT;
	sch_switch_to_sched(g, true);
	sli_fatal("dead goroutine %llu resumed", (unsigned long long) g->id);
}

static void
sch_stop_locked(int result)
{
	if (atomic_load(&sli_S.stopping))
		return;
	sli_S.result = result;
	atomic_store(&sli_S.stopping, true);
	for (int i = 0; i < sli_S.nprocs; i++)
		sch_signal_locked(&sli_S.workers[i]);
	pthread_cond_signal(&sli_S.stopped);
}

static void
sch_g_exit(sli_worker *w, sli_g *g)
{
	bool is_main = g->id == 1;

	atomic_store_explicit(&g->state, SLI_G_DEAD, memory_order_relaxed);
#ifdef SLI_TSAN
	__tsan_destroy_fiber(g->tsan_fiber);
	g->tsan_fiber = NULL;
#endif
	sli_stack_free(g);
	atomic_fetch_sub(&sli_S.live, 1);
	if (is_main) {
		pthread_mutex_lock(&sli_S.lock);
		sch_stop_locked(0);
		pthread_mutex_unlock(&sli_S.lock);
	}
	(void) w;
}

/* ---- spawning ---------------------------------------------------------- */

static int
sch_spawn(sl_fn fn, void *arg, uint64_t id)
{
	sli_g      *g;
	sli_worker *w;
	long        n = atomic_fetch_add(&sli_S.live, 1) + 1;

	if (sch_gq_room((unsigned long) n) != 0 ||
	    (g = sli_stack_alloc()) == NULL) {
		atomic_fetch_sub(&sli_S.live, 1);
		return (SL_ENOMEM);
	}
	/* fn, id and the wait fields are read by dumps from any thread:
	 * relaxed atomics (plain moves on x86-64 and aarch64). */
	__atomic_store_n(&g->fn, fn, __ATOMIC_RELAXED);
	g->arg = arg;
	__atomic_store_n(&g->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&g->wait_reason, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&g->wait_obj, NULL, __ATOMIC_RELAXED);
	g->commitf = NULL;
	g->asan_fake = NULL;
#ifdef SLI_TSAN
	g->tsan_fiber = __tsan_create_fiber(0);
#endif
	g->sp = NULL; /* sch_stack_in builds its first frame */
	atomic_store_explicit(&g->state, SLI_G_RUNNABLE, memory_order_release);

	if ((w = sli_self()) != NULL) {
		sch_runq_put(w, g);
		sch_wakep();
	} else {
		pthread_mutex_lock(&sli_S.lock);
		sch_gq_put_locked(g);
		pthread_mutex_unlock(&sli_S.lock);
		sch_wakep();
	}
	return (0);
}

int
sl_go(sl_fn fn, void *arg)
{
	if (fn == NULL)
		return (SL_EINVAL);
	if (!atomic_load(&sli_S.running) || atomic_load(&sli_S.stopping))
		return (SL_ESTATE);
	if (sli_self() == NULL) { /* a plain thread: see sch_visit */
		int rv;

		if (!sch_visit())
			return (SL_ESTATE);
		rv = sch_spawn(fn, arg, atomic_fetch_add(&sli_S.nextid, 1));
		sch_leave();
		return (rv);
	}
	return (sch_spawn(fn, arg, atomic_fetch_add(&sli_S.nextid, 1)));
}

/* ---- goroutine listing and deadlock reports ---------------------------- */

static const char *
sch_state_name(int s)
{
	switch (s) {
	case SLI_G_RUNNABLE: return ("runnable");
	case SLI_G_RUNNING: return ("running");
	case SLI_G_PARKING: return ("parking");
	case SLI_G_WAITING: return ("waiting");
	case SLI_G_DEAD: return ("dead");
	default: return ("free");
	}
}

/* A goroutine's function: its symbol if exported, else file and offset
 * (addr2line -f -e FILE OFFSET names it); "" if neither is known. */
void
sli_fn_where(sl_fn f, char *buf, size_t len)
{
	void    *fn;
	Dl_info  di;

	buf[0] = '\0';
	memcpy(&fn, &f, sizeof(fn));
	if (fn != NULL && dladdr(fn, &di) != 0) {
		if (di.dli_sname != NULL)
			snprintf(buf, len, " in %s", di.dli_sname);
		else if (di.dli_fname != NULL)
			snprintf(buf, len, " in %s+%#lx", di.dli_fname,
			    (unsigned long) ((char *) fn -
			    (char *) di.dli_fbase));
	}
}

static void
sch_dump_one(sli_g *g, void *arg)
{
	FILE       *out = arg;
	int         s = atomic_load(&g->state);
	sl_fn       f = __atomic_load_n(&g->fn, __ATOMIC_RELAXED);
	const char *why = __atomic_load_n(&g->wait_reason, __ATOMIC_RELAXED);
	const void *obj = __atomic_load_n(&g->wait_obj, __ATOMIC_RELAXED);
	unsigned long long id = __atomic_load_n(&g->id, __ATOMIC_RELAXED);
	char        where[320];

	if (s == SLI_G_DEAD)
		return;
	sli_fn_where(f, where, sizeof(where));
	if ((s == SLI_G_WAITING || s == SLI_G_PARKING) && obj != NULL)
		fprintf(out, "goroutine %llu [%s]: waiting on %p%s\n", id,
		    why != NULL ? why : "park", obj, where);
	else if (s == SLI_G_WAITING || s == SLI_G_PARKING)
		fprintf(out, "goroutine %llu [%s]%s\n", id,
		    why != NULL ? why : "park", where); /* says what it waits on */
	else
		fprintf(out, "goroutine %llu [%s]%s\n", id, sch_state_name(s),
		    where);
}

/* For debuggers: `call sli_stack_foreach(sch_dump_fn, 0)` prints each
 * goroutine's body address. */
void sch_dump_fn(sli_g *g, void *arg);
void
sch_dump_fn(sli_g *g, void *arg)
{
	void *fn;

	(void) arg;
	memcpy(&fn, &g->fn, sizeof(fn));
	fprintf(stderr, "goroutine %llu fn %p\n", (unsigned long long) g->id,
	    fn);
}

void
sl_dump_goroutines(FILE *out)
{
	if (!atomic_load(&sli_S.running))
		return;
	sli_stack_foreach(sch_dump_one, out);
	fflush(out);
}

size_t
sl_numgoroutine(void)
{
	long n = atomic_load(&sli_S.live);
	return (n > 0 ? (size_t) n : 0);
}

uint64_t
sl_goid(void)
{
	sli_g *g = sli_curg();
	return (g != NULL ? g->id : 0);
}

int
sl_procs(void)
{
	return (atomic_load(&sli_S.running) ? sli_S.nprocs : 0);
}

bool
sli_run_detached(sli_g *g, sl_fn fn, void *arg)
{
	sli_worker *w = sch_tls_worker;
	int         none = SLI_CALL_NONE, in = SLI_CALL_IN;

	if (!atomic_compare_exchange_strong(sch_tls_call, &none, SLI_CALL_IN))
		return (false); /* CLOSED: sl_main is stopping this worker */
	/* For the stall watchdog: a stretch of its own, the call's. */
	atomic_store_explicit(&w->tick, atomic_load_explicit(&w->tick,
	    memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_store_explicit(&w->run_fn, fn, memory_order_relaxed);
	atomic_store_explicit(&w->run_call, true, memory_order_relaxed);
	atomic_store_explicit(&w->run_id, g->id, memory_order_relaxed);
	sch_tls_worker = NULL;
	fn(arg);
	if (!atomic_compare_exchange_strong(sch_tls_call, &in, SLI_CALL_NONE))
		longjmp(*sch_tls_exit, 1); /* ABANDONED: w, g are gone */
	sch_tls_worker = w;
	sch_publish(w, NULL);
	atomic_store_explicit(&w->run_call, false, memory_order_relaxed);
	return (true);
}

int
sl_worker_id(void)
{
	sli_worker *w = sli_self();
	return (w != NULL ? w->id : -1);
}

size_t
sl_stack_size(void)
{
	return (sli_S.stack_size);
}

void
sl_sched_hold(void)
{
	atomic_fetch_add(&sli_S.holds, 1);
}

void (*sli_test_in_visit)(void);
atomic_int sli_sched_abandoned;

/* Wakes one idle worker, if any, to look at what changed (a new timer, a
 * thread waiting on a descriptor, a wake source a plain thread took away).
 * Nothing when no scheduler runs. */
void
sli_sched_poke(void)
{
	if (atomic_load(&sli_S.nidle) == 0 || !sch_visit())
		return;
	if (sli_test_in_visit != NULL)
		sli_test_in_visit();
	pthread_mutex_lock(&sli_S.lock);
	sch_wake_one_locked(false);
	pthread_mutex_unlock(&sli_S.lock);
	sch_leave();
}

void
sl_sched_release(void)
{
	atomic_fetch_sub(&sli_S.holds, 1);
	/* A quiet scheduler may now be deadlocked: let an idle worker look.
	 * Only needed when every worker is idle already.  A worker not idle
	 * yet looks itself when it goes idle: it counts itself in nidle
	 * before it reads holds, as this thread drops holds before it reads
	 * nidle (all seq_cst), so one of the two sees the other's write.
	 * This spares S.lock to every sl_blocking call of a busy program. */
	if (atomic_load(&sli_S.nidle) != sli_S.nprocs || !sch_visit())
		return;
	pthread_mutex_lock(&sli_S.lock);
	if (atomic_load(&sli_S.nidle) == sli_S.nprocs)
		sch_wake_one_locked(false);
	pthread_mutex_unlock(&sli_S.lock);
	sch_leave();
}

/* ---- the worker loop --------------------------------------------------- */

/* Removes w from the idle list if it is still there; S.lock held. */
static void
sch_unidle_locked(sli_worker *w)
{
	sli_worker **pp;

	if (!w->idle)
		return;
	for (pp = &sli_S.idle; *pp != NULL; pp = &(*pp)->idle_next) {
		if (*pp == w) {
			*pp = w->idle_next;
			break;
		}
	}
	w->idle_next = NULL;
	w->idle = false;
	atomic_fetch_sub(&sli_S.nidle, 1);
}

bool
sli_self_has_work(void)
{
	sli_worker *w = sli_self();

	return (w == NULL || atomic_load(&sli_S.gq_len) > 0 ||
	    atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL ||
	    atomic_load_explicit(&w->tail, memory_order_relaxed) !=
	    atomic_load_explicit(&w->head, memory_order_relaxed));
}

/* Does a worker other than w hold a runnext while it has not switched
 * since ticks were read (stuck in one goroutine)? */
static bool
sch_runnext_stuck(sli_worker *w, const unsigned *ticks)
{
	for (int k = 0; k < sli_S.nprocs && k < SLI_STEAL_TRACK; k++) {
		sli_worker *v = &sli_S.workers[k];

		if (v != w && atomic_load_explicit(&v->runnext,
		    memory_order_relaxed) != NULL &&
		    atomic_load_explicit(&v->tick, memory_order_relaxed) ==
		    ticks[k])
			return (true);
	}
	return (false);
}

/* Is there queued work?  A runnext slot only counts with withnext: it is
 * not for stealing while its worker is making progress. */
static bool
sch_any_work(bool withnext)
{
	if (atomic_load(&sli_S.gq_len) > 0)
		return (true);
	for (int i = 0; i < sli_S.nprocs; i++) {
		sli_worker *v = &sli_S.workers[i];
		if (atomic_load_explicit(&v->tail, memory_order_acquire) !=
		    atomic_load_explicit(&v->head, memory_order_acquire))
			return (true);
		if (withnext && atomic_load_explicit(&v->runnext,
		    memory_order_acquire) != NULL)
			return (true);
	}
	return (false);
}

/* Every worker idle, nothing queued: is anything able to wake a goroutine?
 * S.lock held. */
static bool
sch_deadlocked_locked(void)
{
	return (atomic_load(&sli_S.nidle) == sli_S.nprocs &&
	    atomic_load(&sli_S.gq_len) == 0 && !sli_timers_pending() &&
	    atomic_load(&sli_S.holds) == 0 && atomic_load(&sli_S.live) > 0 &&
	    atomic_load(&sli_signal_regs) == 0 && !sch_any_work(true));
}

static void
sch_sleep_locked(sli_worker *w)
{
	int64_t next = sli_timers_next();

	if (next == INT64_MAX) {
		pthread_cond_wait(&w->cv, &sli_S.lock);
	} else {
		struct timespec ts = {
			.tv_sec = next / SL_SECOND,
			.tv_nsec = next % SL_SECOND,
		};
		pthread_cond_timedwait(&w->cv, &sli_S.lock, &ts);
	}
}

static sli_g *
sch_find_runnable(sli_worker *w)
{
	sli_g *g;

	for (;;) {
		if (atomic_load_explicit(&sli_S.stopping, memory_order_relaxed))
			return (NULL);
		unsigned tick = atomic_load_explicit(&w->tick,
		    memory_order_relaxed) + 1;
		atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
		if ((tick & 15) == 0 || sch_runq_empty(w)) {
			int64_t next = sli_timers_next();
			if (next != INT64_MAX && next <= sl_now())
				sli_timers_run(sl_now());
		}
		if ((tick % 61) == 0 && sli_poll_pending())
			(void) sli_poll_nonblock(); /* busy workers look too */
		if ((tick % 61) == 0 &&
		    atomic_load_explicit(&sli_S.gq_len,
		    memory_order_relaxed) > 0) {
			pthread_mutex_lock(&sli_S.lock);
			g = sch_gq_get_locked(w);
			pthread_mutex_unlock(&sli_S.lock);
			if (g != NULL)
				return (g);
		}
		if ((g = atomic_exchange_explicit(&w->runnext, NULL,
		    memory_order_acq_rel)) != NULL)
			return (g);
		if ((g = sch_runq_get(w)) != NULL)
			return (g);
		if (atomic_load_explicit(&sli_S.gq_len,
		    memory_order_relaxed) > 0) {
			pthread_mutex_lock(&sli_S.lock);
			g = sch_gq_get_locked(w);
			pthread_mutex_unlock(&sli_S.lock);
			if (g != NULL) {
				sch_reset_spinning(w);
				return (g);
			}
		}

		/* Descriptors ready, nobody polling: their goroutines are
		 * local work. */
		if (sli_poll_pending() && sli_poll_nonblock())
			continue;

		/* Steal.  Runnext is only taken in the last round, so a
		 * goroutine just readied usually stays where it was. */
		if (sli_S.nprocs > 1) {
			if (!w->spinning) {
				w->spinning = true;
				atomic_fetch_add(&sli_S.nspinning, 1);
			}
			unsigned ticks[SLI_STEAL_TRACK];
			for (int k = 0; k < sli_S.nprocs &&
			    k < SLI_STEAL_TRACK; k++)
				ticks[k] = atomic_load_explicit(
				    &sli_S.workers[k].tick,
				    memory_order_relaxed);
			for (int round = 0; round < 4; round++) {
				int start = (int) (sch_rand(w) %
				    (uint32_t) sli_S.nprocs);
				if (round == 3) {
					/* A runnext is only taken from a
					 * worker stuck in one goroutine, and
					 * after giving it a moment to get
					 * there itself (Go sleeps 3 us).  No
					 * such runnext: nothing to wait for,
					 * and the CPU is better left to
					 * whoever this worker's idling would
					 * let run (the thread that readies
					 * its next goroutine, another stage
					 * process). */
					if (!sch_runnext_stuck(w, ticks))
						break;
					int64_t until = sl_now() +
					    SLI_RUNNEXT_WAIT;
					while (sl_now() < until)
						for (int i = 0; i < 16; i++)
							sli_cpu_relax();
				}
				for (int k = 0; k < sli_S.nprocs; k++) {
					int         vi = (start + k) %
					    sli_S.nprocs;
					sli_worker *v = &sli_S.workers[vi];
					if (v == w)
						continue;
					/* Runnext only from a worker stuck
					 * in one goroutine all along. */
					bool next = round == 3 &&
					    vi < SLI_STEAL_TRACK &&
					    atomic_load_explicit(&v->tick,
					    memory_order_relaxed) == ticks[vi];
					g = sch_runq_steal(w, v, next);
					if (g != NULL) {
						sch_reset_spinning(w);
						return (g);
					}
				}
			}
		}
		if (sli_timers_pending() && sli_timers_next() <= sl_now() &&
		    sli_timers_run(sl_now()))
			continue;

		/* Go idle. */
		pthread_mutex_lock(&sli_S.lock);
		if (atomic_load(&sli_S.stopping)) {
			pthread_mutex_unlock(&sli_S.lock);
			return (NULL);
		}
		if ((g = sch_gq_get_locked(w)) != NULL) {
			pthread_mutex_unlock(&sli_S.lock);
			sch_reset_spinning(w);
			return (g);
		}
		w->idle = true;
		w->idle_next = sli_S.idle;
		sli_S.idle = w;
		atomic_fetch_add(&sli_S.nidle, 1);
		if (w->spinning) {
			w->spinning = false;
			atomic_fetch_sub(&sli_S.nspinning, 1);
		}
		pthread_mutex_unlock(&sli_S.lock);

		/* Pairs with the fence in sch_wakep: either the pusher sees
		 * us idle, or we see its work here. */
		SCH_FENCE();
		if (sch_any_work(false)) {
			pthread_mutex_lock(&sli_S.lock);
			sch_unidle_locked(w);
			pthread_mutex_unlock(&sli_S.lock);
			continue;
		}

		pthread_mutex_lock(&sli_S.lock);
		if (w->idle && !atomic_load(&sli_S.stopping)) {
			if (sch_deadlocked_locked()) {
				sli_S.deadlock = true;
				fflush(stdout);
				fprintf(stderr, "sluice: fatal error: all "
				    "goroutines are asleep - deadlock!\n\n");
				sli_stack_foreach(sch_dump_one, stderr);
				fflush(stderr);
				sch_stop_locked(SL_EDEADLOCK);
			} else if (sli_poll_own()) {
				int64_t next = sli_timers_next();
				int     n;

				w->netpolling = true;
				pthread_mutex_unlock(&sli_S.lock);
				n = sli_poll_block(next);
				pthread_mutex_lock(&sli_S.lock);
				w->netpolling = false;
				sch_unidle_locked(w);
				pthread_mutex_unlock(&sli_S.lock);
				/* Not idle any more: what it readies is
				 * its own work, and wakep finds others. */
				sli_poll_dispatch(n);
				sli_poll_disown();
				continue;
			} else {
				sch_sleep_locked(w);
			}
		}
		sch_unidle_locked(w);
		pthread_mutex_unlock(&sli_S.lock);
	}
}

static void
sch_execute(sli_worker *w, sli_g *g)
{
	w->cur = g;
	sch_publish(w, g);
	atomic_store_explicit(&g->state, SLI_G_RUNNING, memory_order_relaxed);
	sch_switch_to_g(w, g);
	/* Whoever switched back here: g may have handed over directly to
	 * other goroutines before one of them returned to the scheduler. */
	g = w->cur;
	w->cur = NULL;
	sch_publish(w, NULL);

	switch (g->swreason) {
	case SLI_SW_PARK:
		sch_after_park(w, g);
		break;
	case SLI_SW_YIELD:
		sli_stack_check(g);
		atomic_store_explicit(&g->state, SLI_G_RUNNABLE,
		    memory_order_relaxed);
		/* Behind everything else, or yield would be a no-op. */
		pthread_mutex_lock(&sli_S.lock);
		sch_gq_put_locked(g);
		pthread_mutex_unlock(&sli_S.lock);
		break;
	case SLI_SW_EXIT:
		sch_g_exit(w, g);
		break;
	default:
		sli_fatal("goroutine %llu switched out for no reason",
		    (unsigned long long) g->id);
	}
}

/* ---- stack overflow reports -------------------------------------------- */

static void
sch_write_str(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void) r;
}

/* Writes v in base 10 or 16 (then after "0x"); async-signal-safe. */
static void
sch_write_num(unsigned long long v, unsigned base)
{
	char  buf[24];
	char *p = buf + sizeof(buf);

	*--p = '\0';
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0);
	if (base == 16) {
		*--p = 'x';
		*--p = '0';
	}
	sch_write_str(p);
}

/* The stack pointer of the interrupted code. */
static char *
sch_fault_sp(void *uc)
{
	ucontext_t *u = uc;

#if defined(__x86_64__)
	return ((char *) u->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
	return ((char *) u->uc_mcontext.sp);
#else
	(void) u;
	return (NULL);
#endif
}

/*
 * Whose stack overflowed, if a stack overflow is what faulted: the
 * goroutine running on this worker when its stack pointer is outside its
 * stack (whatever it then hit: its guard; or, below a stack that has no
 * guard, a guard further down, the records of a slab, memory not mapped);
 * else the goroutine whose guard page was hit.
 */
static sli_g *
sch_fault_overflow(siginfo_t *si, void *uc)
{
	sli_worker *w = sli_self();
	sli_g      *g = w != NULL ? w->cur : NULL;
	const char *a = si->si_addr, *sp = sch_fault_sp(uc);
	long        pg = sysconf(_SC_PAGESIZE);

	if (g != NULL && sp != NULL &&
	    (sp < g->stack_lo || sp > g->stack_lo + g->stack_size) &&
	    (w->sigstack == NULL || sp < (char *) w->sigstack ||
	    sp >= (char *) w->sigstack + SLI_SIGSTACK_SIZE))
		return (g);
	g = sli_stack_find(a);
	if (g != NULL && g->guarded && a >= g->stack_lo - pg &&
	    a < g->stack_lo)
		return (g);
	return (NULL);
}

static void
sch_fault(int sig, siginfo_t *si, void *uc)
{
	sli_g *g = sch_fault_overflow(si, uc);
	struct sigaction *old = sig == SIGSEGV ? &sch_old_segv : &sch_old_bus;

	if (g != NULL) {
		sch_write_str("sluice: fatal error: stack overflow in "
		    "goroutine ");
		sch_write_num(g->id, 10);
		sch_write_str(" (stack size ");
		sch_write_num(g->stack_size, 10);
		sch_write_str(" bytes; raise SLUICE_STACK_SIZE or "
		    "sl_opts.stack_size)\n");
		signal(sig, SIG_DFL);
		return; /* the fault repeats and kills the process */
	}
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction != NULL) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/* Nobody else handles it: say what and where, as Go's runtime
	 * does, before the default action kills the process.  In a
	 * goroutine the kernel's own report would name only the thread. */
	if (si->si_code > 0) { /* from the kernel, not kill(2) */
		sli_worker *w = sli_self();

		sch_write_str("sluice: fatal error: ");
		sch_write_str(sig == SIGSEGV ? "SIGSEGV: invalid memory access"
		    : "SIGBUS: bus error");
		sch_write_str(" at address ");
		sch_write_num((unsigned long long) (uintptr_t) si->si_addr, 16);
		if (w != NULL && w->cur != NULL) {
			sch_write_str(" in goroutine ");
			sch_write_num(w->cur->id, 10);
		}
		sch_write_str(sig == SIGSEGV && (uintptr_t) si->si_addr <
		    4096 ? " (a NULL pointer)\n" : "\n");
	}
	signal(sig, SIG_DFL);
}

static void
sch_install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sch_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &sch_old_segv);
	sigaction(SIGBUS, &sa, &sch_old_bus);
}

static void
sch_restore_fault_handler(void)
{
	sigaction(SIGSEGV, &sch_old_segv, NULL);
	sigaction(SIGBUS, &sch_old_bus, NULL);
}

/* ---- worker threads and sl_main ---------------------------------------- */

static void
sch_worker_loop(sli_worker *w)
{
	pthread_attr_t attr;
	stack_t        ss, oss;
	sli_g         *g;

	sch_tls_worker = w;
	w->rand = 0x9e3779b97f4a7c15ULL * (uint64_t) (w->id + 1);
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &w->stack_lo, &w->stack_size);
		pthread_attr_destroy(&attr);
	}
#ifdef SLI_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
	ss.ss_size = SLI_SIGSTACK_SIZE;
	ss.ss_flags = 0;
	ss.ss_sp = w->sigstack = malloc(ss.ss_size);
	if (ss.ss_sp != NULL)
		sigaltstack(&ss, &oss);
	sch_tls_sigstack = w->sigstack;
	sch_tls_oss = oss;

	while ((g = sch_find_runnable(w)) != NULL) {
		/* Woken spinning by sch_wakep, it may have found g where
		 * nothing resets that (runnext, its own queue, the 61st-tick
		 * look at the global queue): stop spinning now, or nspinning
		 * stays 1 while g runs and every sch_wakep returns early. */
		sch_reset_spinning(w);
		sch_execute(w, g);
	}

	if (w->sigstack != NULL) {
		sigaltstack(&oss, NULL);
		free(w->sigstack);
		w->sigstack = NULL;
	}
	sch_tls_sigstack = NULL;
	sch_tls_worker = NULL;
}

static void *
sch_worker_thread(void *arg)
{
	sli_worker *w = arg;
	jmp_buf     out;

	sch_tls_call = w->call;
	sch_tls_exit = &out;
	if (setjmp(out) == 0) {
		sch_worker_loop(w);
		return (NULL);
	}
	/* Abandoned in a blocking call (sli_run_detached), which has now
	 * returned: sl_main took the scheduler down meanwhile, and left this
	 * thread's state word and signal stack to it. */
	free(sch_tls_call);
	if (sch_tls_sigstack != NULL) {
		sigaltstack(&sch_tls_oss, NULL);
		free(sch_tls_sigstack);
	}
	sch_tls_worker = NULL;
	return (NULL);
}

/* Takes worker w's thread back once the scheduler is stopping: joins it,
 * or, if it is in a blocking call made inline, leaves it to exit by itself
 * when that returns (pthread_detach), as every goroutine left is
 * abandoned: sl_main does not wait for what such a call waits for.
 * Either way the thread runs no goroutine any more. */
static void
sch_take_worker(sli_worker *w)
{
	for (;;) {
		int none = SLI_CALL_NONE, in = SLI_CALL_IN;

		if (atomic_compare_exchange_strong(w->call, &none,
		    SLI_CALL_CLOSED)) {
			pthread_join(w->thread, NULL);
			free(w->call);
			break;
		}
		if (atomic_compare_exchange_strong(w->call, &in,
		    SLI_CALL_ABANDONED)) {
			pthread_detach(w->thread); /* it frees w->call */
			atomic_fetch_add(&sli_sched_abandoned, 1);
			break;
		}
		/* it went into a call or out of one just now: look again */
	}
	w->call = NULL;
}

#define SLI_MAX_PROCS 256                   /* as Go's _MaxGomaxprocs */
#define SLI_MAX_STACK ((long) 1 << 30)       /* 1 GiB */
#define SLI_MAX_STALL_MS (86400L * 1000)      /* a day */
#define SLI_DEFAULT_STALL (10 * SL_SECOND)
#ifdef SLI_ASAN
#define SLI_DEFAULT_STACK (256 * 1024L)      /* ASan's frames are larger */
#else
#define SLI_DEFAULT_STACK (64 * 1024L)
#endif

/* Refuses a value over max: what shows where it came from and as what
 * ("SLUICE_PROCS=\"257\"", "sl_opts.procs=300"). */
static int
sch_over(const char *what, long max, bool sized)
{
	fprintf(stderr, "sluice: %s: more than %ld%s\n", what,
	    sized ? max >> 20 : max, sized ? " MiB" : "");
	return (SL_EINVAL);
}

/*
 * Reads $name: unset or empty leaves *out alone; else a decimal number
 * (with sized, optionally followed by k or m for KiB or MiB) of at least
 * min and at most max.  Anything else is refused with a message on stderr
 * naming the variable, and SL_EINVAL.
 */
static int
sch_env_num(const char *name, bool sized, long min, long max, long *out)
{
	const char *v = getenv(name);
	char       *end;
	long        n, unit = 1;

	if (v == NULL || *v == '\0')
		return (0);
	errno = 0;
	n = strtol(v, &end, 10);
	if (sized && (*end == 'k' || *end == 'K'))
		unit = 1024;
	else if (sized && (*end == 'm' || *end == 'M'))
		unit = 1024 * 1024;
	if (unit != 1)
		end++;
	if (end == v || *end != '\0' || (v[0] < '0' || v[0] > '9')) {
		fprintf(stderr, "sluice: %s=\"%s\": not a %s\n", name, v,
		    sized ? "size (bytes, or a number with k or m)" :
		    "number");
		return (SL_EINVAL);
	}
	if (n < min) {
		fprintf(stderr, "sluice: %s=\"%s\": must be at least %ld\n",
		    name, v, min);
		return (SL_EINVAL);
	}
	if (errno == ERANGE || n > max / unit) {
		char what[128];

		snprintf(what, sizeof(what), "%s=\"%s\"", name, v);
		return (sch_over(what, max, sized));
	}
	*out = n * unit;
	return (0);
}

/* The stall limit: opts wins (negative: none), then $SLUICE_STALL_MS (a
 * number of milliseconds, 0: none), then the default. */
static int
sch_stall_limit(const sl_opts *opts, int64_t *limit)
{
	long ms = SLI_DEFAULT_STALL / SL_MILLISECOND;
	int  rv;

	if (opts != NULL && opts->stall != 0) {
		*limit = opts->stall > 0 ? opts->stall : 0;
		return (0);
	}
	if ((rv = sch_env_num("SLUICE_STALL_MS", false, 0, SLI_MAX_STALL_MS,
	    &ms)) != 0)
		return (rv);
	*limit = (int64_t) ms * SL_MILLISECOND;
	return (0);
}

/*
 * A goroutine left when sl_main returns.  Its waits may still be linked
 * where plain threads reach them after sl_main (a channel's queue, a
 * context's watchers: a send, a cancel): its stack stays mapped
 * (sli_stack_fini), and the wait it is parked in is claimed here, so
 * that whatever comes later passes it over as it passes over a wait
 * another source ended: a value sent then waits for a live receiver, it
 * does not go to a dead one.  A wake-up in flight already won its claim;
 * sli_ready refuses it (sch_visit).
 */
static void
sch_abandon(sli_g *g, void *arg)
{
	sli_wait *w;

	++*(long *) arg;
	if (atomic_load(&g->state) == SLI_G_WAITING &&
	    (w = sli_wait_of(g)) != NULL)
		(void) sli_wait_claim(w, SLI_WAIT_ABANDONED);
#ifdef SLI_TSAN
	if (g->tsan_fiber != NULL) {
		__tsan_destroy_fiber(g->tsan_fiber);
		g->tsan_fiber = NULL;
	}
#endif
}

int
sl_main_opts(const sl_opts *opts, sl_fn fn, void *arg)
{
	pthread_condattr_t ca;
	cpu_set_t          oldcpus;
	const char        *cpus, *cpus_from;
	long               nprocs = 0, stack = SLI_DEFAULT_STACK;
	int64_t            stall;
	int                rv, abandoned;

	if (fn == NULL)
		return (SL_EINVAL);
	if (atomic_exchange(&sli_S.running, true))
		return (SL_ESTATE);
	abandoned = atomic_load(&sli_sched_abandoned); /* by earlier runs */

	/* Options over the environment; a bad value is refused, with its
	 * name and why on stderr, before anything changes. */
	if (opts != NULL && opts->procs > SLI_MAX_PROCS) {
		char what[64];

		snprintf(what, sizeof(what), "sl_opts.procs=%d", opts->procs);
		rv = sch_over(what, SLI_MAX_PROCS, false);
		goto refused;
	}
	if (opts != NULL && opts->stack_size > (size_t) SLI_MAX_STACK) {
		char what[64];

		snprintf(what, sizeof(what), "sl_opts.stack_size=%zu",
		    opts->stack_size);
		rv = sch_over(what, SLI_MAX_STACK, true);
		goto refused;
	}
	if (opts != NULL && opts->procs > 0)
		nprocs = opts->procs;
	else if ((rv = sch_env_num("SLUICE_PROCS", false, 1, SLI_MAX_PROCS,
	    &nprocs)) != 0)
		goto refused;
	if (opts != NULL && opts->stack_size > 0)
		stack = (long) opts->stack_size;
	else if ((rv = sch_env_num("SLUICE_STACK_SIZE", true, 1, SLI_MAX_STACK,
	    &stack)) != 0)
		goto refused;
	if ((rv = sch_stall_limit(opts, &stall)) != 0)
		goto refused;
	if ((rv = sli_chan_panic_check()) != 0)
		goto refused;
	cpus_from = "sl_opts.cpus";
	if ((cpus = opts ? opts->cpus : NULL) == NULL) {
		cpus_from = "SLUICE_CPUS";
		cpus = getenv("SLUICE_CPUS");
		if (cpus != NULL && *cpus == '\0')
			cpus = NULL; /* set but empty: as unset */
	}
	if (cpus != NULL &&
	    (rv = sli_cpus_apply(cpus, cpus_from, &oldcpus)) != 0)
		goto refused;
	if (nprocs == 0)
		nprocs = sli_cpus_count(); /* of the affinity just set */
	if (nprocs > SLI_MAX_PROCS)
		nprocs = SLI_MAX_PROCS; /* a machine of more CPUs */

	sli_S.nprocs = (int) nprocs;
	sli_S.stack_size = (size_t) stack;
	sli_S.gq = NULL;
	sli_S.gq_first = sli_S.gq_cap = 0;
	atomic_store(&sli_S.gq_room, 0);
	atomic_store(&sli_S.gq_len, 0);
	sli_S.idle = NULL;
	atomic_store(&sli_S.nidle, 0);
	atomic_store(&sli_S.nspinning, 0);
	atomic_store(&sli_S.stopping, false);
	sli_S.deadlock = false;
	atomic_store(&sli_S.live, 0);
	atomic_store(&sli_S.holds, 0);
	atomic_store(&sli_S.nextid, 2);
	sli_S.result = 0;
	pthread_mutex_init(&sli_S.lock, NULL);
	pthread_cond_init(&sli_S.stopped, NULL);
	sli_S.workers = calloc((size_t) nprocs, sizeof(sli_worker));
	for (int i = 0; sli_S.workers != NULL && i < nprocs; i++) {
		if ((sli_S.workers[i].call = calloc(1, sizeof(atomic_int))) ==
		    NULL) {
			while (i-- > 0)
				free(sli_S.workers[i].call);
			free(sli_S.workers);
			sli_S.workers = NULL;
		}
	}
	if (sli_S.workers == NULL) {
		pthread_cond_destroy(&sli_S.stopped);
		pthread_mutex_destroy(&sli_S.lock);
		rv = SL_ENOMEM;
		goto unwind;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int i = 0; i < nprocs; i++) {
		sli_S.workers[i].id = i;
		pthread_cond_init(&sli_S.workers[i].cv, &ca);
	}
	pthread_condattr_destroy(&ca);
	sli_stack_init(stack);
	sli_S.stack_size = sli_stack_slot_size(); /* what sl_stack_size says */
	sli_timers_reset();
	sch_install_fault_handler();
	sli_signal_init();

	sch_tls_worker = NULL;
	atomic_store(&sli_S.open, true);
	if ((rv = sch_spawn(fn, arg, 1)) != 0)
		goto out;

	/* Every worker is a thread of its own, and this one waits: it can
	 * then return when main does, even with a worker held in a blocking
	 * call (sch_take_worker). */
	int started = 0;
	for (int i = 0; i < nprocs; i++) {
		if (pthread_create(&sli_S.workers[i].thread, NULL,
		    sch_worker_thread, &sli_S.workers[i]) != 0)
			break;
		started++;
	}
	pthread_mutex_lock(&sli_S.lock);
	if (started < nprocs) {
		/* Run with the workers we got, if any; idle lists only hold
		 * those. */
		sli_S.nprocs = started;
		if (started == 0)
			sch_stop_locked(SL_ESYSTEM);
	}
	pthread_mutex_unlock(&sli_S.lock);
	if (started > 0)
		(void) sli_stall_start(stall); /* without it, unwatched */
	/* Signals sent to the process go to the workers (created with the
	 * caller's mask), not to this thread asleep: a handler that ran
	 * here would run late, behind later signals that others took, most
	 * of all under valgrind, which serializes threads. */
	sigset_t all, oldmask;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &oldmask);
	pthread_mutex_lock(&sli_S.lock);
	while (!atomic_load(&sli_S.stopping))
		pthread_cond_wait(&sli_S.stopped, &sli_S.lock);
	pthread_mutex_unlock(&sli_S.lock);
	pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	for (int i = 0; i < started; i++)
		sch_take_worker(&sli_S.workers[i]);
	sli_stall_stop();
	rv = sli_S.result;

out:
	atomic_store(&sli_S.open, false);
	while (atomic_load(&sli_S.visitors) != 0)
		sched_yield();
	sli_signal_fini();
	sli_poll_fini();
	sli_blocking_fini();
	sli_timers_reset();
	long left = 0;
	sli_stack_foreach(sch_abandon, &left);
	sli_stack_fini(left > 0 ||
	    atomic_load(&sli_sched_abandoned) != abandoned);
	sch_restore_fault_handler();
	for (int i = 0; i < nprocs; i++) {
		pthread_cond_destroy(&sli_S.workers[i].cv);
		free(sli_S.workers[i].call); /* of workers never started */
	}
	free(sli_S.workers);
	sli_S.workers = NULL;
	free(sli_S.gq);
	sli_S.gq = NULL;
	pthread_cond_destroy(&sli_S.stopped);
	pthread_mutex_destroy(&sli_S.lock);
unwind:
	if (cpus != NULL)
		sched_setaffinity(0, sizeof(oldcpus), &oldcpus);
	atomic_store(&sli_S.live, 0);
	atomic_store(&sli_S.running, false);
	return (rv);

refused:
	atomic_store(&sli_S.running, false);
	return (rv);
}

int
sl_main(sl_fn fn, void *arg)
{
	return (sl_main_opts(NULL, fn, arg));
}
