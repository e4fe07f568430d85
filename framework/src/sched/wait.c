/*
 * wait.c — parking a goroutine or a thread until one of several sources
 * (a wait queue, a deadline, a context) ends the wait.  See wait.h.
 *
 * Goroutines park through sli_park.  The handshake in w->woken closes the
 * window between "enqueued on a channel" and "actually switched out": a
 * waker that comes first flips RUNNING -> WOKEN and the commit step sees it
 * and resumes at once; a waker that comes after the commit (RUNNING ->
 * PARKED) readies the goroutine.  Plain threads wait on a per-thread
 * condition variable, with the deadline handled by pthread_cond_timedwait.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/context.h"
#include "sluice/error.h"

void
sli_unlock_cb(void *lockp)
{
	sli_unlock(lockp);
}

/* ---- per-thread parker ------------------------------------------------- */

typedef struct wt_parker {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
} wt_parker;

static pthread_key_t  wt_key;
static pthread_once_t wt_once = PTHREAD_ONCE_INIT;

static void
wt_destroy(void *p)
{
	wt_parker *tp = p;

	pthread_cond_destroy(&tp->cv);
	pthread_mutex_destroy(&tp->mu);
	free(tp);
}

static void
wt_init(void)
{
	pthread_key_create(&wt_key, wt_destroy);
}

void
sli_thread_parker(pthread_mutex_t **mu, pthread_cond_t **cv)
{
	wt_parker *tp;

	pthread_once(&wt_once, wt_init);
	if ((tp = pthread_getspecific(wt_key)) == NULL) {
		pthread_condattr_t ca;

		if ((tp = malloc(sizeof(*tp))) == NULL)
			sli_fatal("out of memory for a thread parker");
		pthread_mutex_init(&tp->mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&tp->cv, &ca);
		pthread_condattr_destroy(&ca);
		pthread_setspecific(wt_key, tp);
	}
	*mu = &tp->mu;
	*cv = &tp->cv;
}

/* ---- sli_wait ---------------------------------------------------------- */

void
sli_wait_init(sli_wait *w)
{
	atomic_init(&w->fired, SLI_WAIT_PENDING);
	atomic_init(&w->woken, 0);
	w->g = sli_curg();
	w->tmu = NULL;
	w->tcv = NULL;
	if (w->g == NULL)
		sli_thread_parker(&w->tmu, &w->tcv);
	w->timer.heapidx = -1;
	atomic_init(&w->timer.state, SLI_TIMER_IDLE);
	w->timer.period = 0;
	w->timer.fn = NULL;
	w->timer.done = NULL;
	w->cw.next = w->cw.prev = NULL;
	w->cw.ctx = NULL;
	w->cw.wait = w;
}

int
sli_wait_err(int fired, sl_ctx *ctx)
{
	int e;

	if (fired >= 0)
		return (0);
	if (fired == SLI_WAIT_TIMEOUT)
		return (SL_ETIMEDOUT);
	e = sl_ctx_err(ctx);
	return (e != 0 ? e : SL_ECANCELED);
}

void
sli_wait_wake(sli_wait *w)
{
	if (w->g != NULL) {
		int    expect = SLI_WS_RUNNING;
		sli_g *g = w->g; /* w may be gone once the CAS succeeds */
		if (atomic_load_explicit(&w->woken, memory_order_acquire) !=
		    SLI_WS_PARKED &&
		    atomic_compare_exchange_strong(&w->woken, &expect,
		    SLI_WS_WOKEN))
			return; /* its commit step will see WOKEN */
		sli_ready(g);
		return;
	}
	pthread_mutex_t *mu = w->tmu;
	pthread_cond_t  *cv = w->tcv;
	pthread_mutex_lock(mu);
	atomic_store(&w->woken, 1);
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
}

static void
wt_timer_fire(sli_timer *t)
{
	sli_wait *w = t->arg;

	if (sli_wait_claim(w, SLI_WAIT_TIMEOUT))
		sli_wait_wake(w);
}

typedef struct wt_commit {
	bool      lockonly; /* only holders of unlock's lock can wake w */
	sli_wait *w;
	void    (*unlock)(void *);
	void     *arg;
} wt_commit;

static bool wt_commit_fn(sli_g *g, void *p);

sli_wait *
sli_wait_of(sli_g *g)
{
	if (g->commitf != wt_commit_fn)
		return (NULL);
	return (((wt_commit *) g->commitarg)->w);
}

static bool
wt_commit_fn(sli_g *g, void *p)
{
	wt_commit *c = p;
	sli_wait  *w = c->w;
	int        expect = SLI_WS_RUNNING;

	(void) g;
	if (c->lockonly) {
		/* Every source that can end this wait takes the lock that
		 * unlock releases, so none can have come yet: no race. */
		atomic_store_explicit(&w->woken, SLI_WS_PARKED,
		    memory_order_relaxed);
		c->unlock(c->arg);
		return (true);
	}
	if (c->unlock != NULL)
		c->unlock(c->arg);
	/* After this CAS, w belongs to whoever wakes us. */
	return (atomic_compare_exchange_strong(&w->woken, &expect,
	    SLI_WS_PARKED));
}

/* Waits (briefly) for the party that claimed w to finish sli_wait_wake. */
static void
wt_await_waker(sli_wait *w)
{
	if (w->g != NULL) {
		for (unsigned spins = 0; atomic_load_explicit(&w->woken,
		    memory_order_acquire) != SLI_WS_WOKEN; spins++) {
			if (spins < 256)
				sli_cpu_relax();
			else
				sched_yield();
		}
		return;
	}
	pthread_mutex_lock(w->tmu);
	while (!atomic_load(&w->woken))
		pthread_cond_wait(w->tcv, w->tmu);
	pthread_mutex_unlock(w->tmu);
}

static void
wt_thread_block(sli_wait *w, int64_t deadline)
{
	pthread_mutex_lock(w->tmu);
	while (!atomic_load(&w->woken)) {
		if (deadline == SL_FOREVER) {
			pthread_cond_wait(w->tcv, w->tmu);
			continue;
		}
		struct timespec ts = {
			.tv_sec = deadline / SL_SECOND,
			.tv_nsec = deadline % SL_SECOND,
		};
		if (pthread_cond_timedwait(w->tcv, w->tmu, &ts) == ETIMEDOUT &&
		    sli_wait_claim(w, SLI_WAIT_TIMEOUT))
			break;
		/* Lost the race: the winner wakes us shortly. */
		if (sl_now() >= deadline)
			deadline = SL_FOREVER;
	}
	pthread_mutex_unlock(w->tmu);
}

int
sli_wait_block(sli_wait *w, sl_ctx *ctx, int64_t deadline,
    const char *reason, const void *obj, void (*unlock)(void *), void *arg)
{
	bool watched = false, timed = false, self = false;

	if (ctx != NULL) {
		if (sli_ctx_watch(ctx, &w->cw) != 0)
			self = sli_wait_claim(w, SLI_WAIT_CANCELED);
		else
			watched = __atomic_load_n(&w->cw.ctx,
			    __ATOMIC_ACQUIRE) != NULL;
	}
	if (deadline != SL_FOREVER &&
	    atomic_load(&w->fired) == SLI_WAIT_PENDING) {
		if (deadline <= sl_now()) {
			self = sli_wait_claim(w, SLI_WAIT_TIMEOUT);
		} else if (w->g != NULL) {
			w->timer.when = deadline;
			w->timer.fn = wt_timer_fire;
			w->timer.arg = w;
			timed = sli_timer_start(&w->timer) == 0;
		}
	}

	if (atomic_load(&w->fired) != SLI_WAIT_PENDING) {
		if (unlock != NULL)
			unlock(arg);
		/* Someone else claimed w and is about to wake us: it still
		 * touches w, so wait for its wake before w can go away. */
		if (!self)
			wt_await_waker(w);
	} else if (w->g != NULL) {
		wt_commit c = { .w = w, .unlock = unlock, .arg = arg,
			.lockonly = unlock != NULL && !watched && !timed };
		sli_park(reason, obj, wt_commit_fn, &c);
	} else {
		if (unlock != NULL)
			unlock(arg);
		wt_thread_block(w, deadline);
	}

	if (timed)
		sli_timer_stop(&w->timer);
	if (watched)
		sli_ctx_unwatch(&w->cw);
	return (atomic_load(&w->fired));
}

/* ---- sleeping ---------------------------------------------------------- */

void
sl_sleep(int64_t ns)
{
	(void) sl_sleep_ctx(NULL, ns);
}

int
sl_sleep_ctx(sl_ctx *ctx, int64_t ns)
{
	sli_wait w;
	int      r;

	if (ns < 0)
		ns = 0;
	sli_wait_init(&w);
	if (w.g == NULL && ctx == NULL) {
		struct timespec ts = { .tv_sec = ns / SL_SECOND,
			.tv_nsec = ns % SL_SECOND };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		return (0);
	}
	/* Saturated: sl_now() + SL_FOREVER would wrap to the past. */
	int64_t now = sl_now();
	int64_t deadline = ns >= SL_FOREVER - now ? SL_FOREVER : now + ns;

	r = sli_wait_block(&w, ctx, deadline, "sleep", NULL, NULL, NULL);
	if (r == SLI_WAIT_CANCELED)
		return (sl_ctx_err(ctx));
	return (0);
}
