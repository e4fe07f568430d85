/*
 * stall.c — the stall watchdog: says so when a goroutine keeps its worker
 * too long without a switch.
 *
 * Scheduling is cooperative.  A goroutine that computes for seconds
 * without sl_yield(), or makes a blocking system call itself instead of
 * through sl_blocking(), holds its worker thread, and whatever else is
 * queued there waits: a link's heartbeat, a timer, and with
 * SLUICE_PROCS=1 the whole process.  Go would preempt it; C code cannot be
 * preempted safely, but the runtime can name it.  A thread wakes a few
 * times per limit and compares each worker's schedule count (w->tick) and
 * running goroutine (w->run_id) with what it saw before; one that has run
 * the same goroutine for the limit or longer gets one line on stderr, and
 * another when it lets go:
 *
 *   sluice: goroutine 7 in stage+0x52d0 has held worker 0 for 10.0 s
 *   without a switch; nothing else runs there meanwhile (a long loop
 *   wants sl_yield(), a blocking call sl_blocking())
 *   sluice: goroutine 7 let worker 0 go after 12.3 s
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sched/sched.h"
#include "sluice/error.h"

typedef struct sw_seen {
	unsigned tick;  /* w->tick when this stretch began */
	uint64_t id;    /* the goroutine running through it, 0: none */
	int64_t  since; /* sl_now() when first seen */
	bool     told;  /* reported */
} sw_seen;

static struct {
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop;    /* under mu */
	bool            running; /* the thread exists */
	int64_t         limit;
} sw;

static void
sw_check(sw_seen *seen, int64_t now)
{
	for (int i = 0; i < sli_S.nprocs; i++) {
		sli_worker *w = &sli_S.workers[i];
		sw_seen    *s = &seen[i];
		unsigned    tick = atomic_load_explicit(&w->tick,
		    memory_order_relaxed);
		uint64_t    id = atomic_load_explicit(&w->run_id,
		    memory_order_relaxed);

		if (id != 0 && tick == s->tick && id == s->id) {
			if (!s->told && now - s->since >= sw.limit) {
				char where[320];

				sli_fn_where(atomic_load_explicit(&w->run_fn,
				    memory_order_relaxed), where,
				    sizeof(where));
				if (atomic_load_explicit(&w->run_call,
				    memory_order_relaxed))
					fprintf(stderr, "sluice: a blocking "
					    "call%s of goroutine %llu has "
					    "held worker %d for %.1f s; its "
					    "calls were short before, so it "
					    "runs there, and nothing else "
					    "does meanwhile (its later calls "
					    "go to the pool)\n", where,
					    (unsigned long long) id, i,
					    (double) (now - s->since) / 1e9);
				else
					fprintf(stderr, "sluice: goroutine "
					    "%llu%s has held worker %d for "
					    "%.1f s without a switch; nothing "
					    "else runs there meanwhile (a long "
					    "loop wants sl_yield(), a blocking "
					    "call sl_blocking())\n",
					    (unsigned long long) id, where, i,
					    (double) (now - s->since) / 1e9);
				s->told = true;
			}
			continue;
		}
		if (s->told)
			fprintf(stderr, "sluice: goroutine %llu let worker %d "
			    "go after %.1f s\n", (unsigned long long) s->id,
			    i, (double) (now - s->since) / 1e9);
		s->tick = tick;
		s->id = id;
		s->since = now;
		s->told = false;
	}
}

static void *
sw_thread(void *arg)
{
	sw_seen *seen = arg;
	int64_t  period = sw.limit / 4;

	if (period < SL_MILLISECOND)
		period = SL_MILLISECOND;
	if (period > SL_SECOND)
		period = SL_SECOND;
	pthread_mutex_lock(&sw.mu);
	while (!sw.stop) {
		int64_t         at = sl_now() + period;
		struct timespec ts = { .tv_sec = at / SL_SECOND,
			.tv_nsec = at % SL_SECOND };

		while (!sw.stop && pthread_cond_timedwait(&sw.cv, &sw.mu,
		    &ts) != ETIMEDOUT)
			;
		if (sw.stop)
			break;
		pthread_mutex_unlock(&sw.mu);
		sw_check(seen, sl_now());
		pthread_mutex_lock(&sw.mu);
	}
	pthread_mutex_unlock(&sw.mu);
	free(seen);
	return (NULL);
}

/* Starts the watchdog over sli_S.workers (limit <= 0: none).  Without
 * memory or a thread the program runs on unwatched. */
int
sli_stall_start(int64_t limit)
{
	pthread_condattr_t ca;
	sw_seen           *seen;

	sw.running = false;
	if (limit <= 0)
		return (0);
	if ((seen = calloc((size_t) sli_S.nprocs, sizeof(*seen))) == NULL)
		return (SL_ENOMEM);
	sw.limit = limit;
	sw.stop = false;
	pthread_mutex_init(&sw.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sw.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&sw.thread, NULL, sw_thread, seen) != 0) {
		pthread_cond_destroy(&sw.cv);
		pthread_mutex_destroy(&sw.mu);
		free(seen);
		return (SL_ESYSTEM);
	}
	sw.running = true;
	return (0);
}

/* Stops the watchdog (before the workers go away). */
void
sli_stall_stop(void)
{
	if (!sw.running)
		return;
	pthread_mutex_lock(&sw.mu);
	sw.stop = true;
	pthread_cond_signal(&sw.cv);
	pthread_mutex_unlock(&sw.mu);
	pthread_join(sw.thread, NULL);
	pthread_cond_destroy(&sw.cv);
	pthread_mutex_destroy(&sw.mu);
	sw.running = false;
}
