/*
 * blocking.c — the thread pool behind sl_blocking().
 *
 * A goroutine that must make a blocking call (file I/O, DNS, a blocking
 * library) hands it to this pool and parks; its worker runs other
 * goroutines meanwhile.  Threads are started on demand up to
 * SLI_BLOCKING_MAX and stay until sl_main returns.  An in-flight call holds
 * the scheduler (sli_S.holds) so that waiting for it is not mistaken for a
 * deadlock.
 */
#include <stdlib.h>

#include "sched/sched.h"
#include "sluice/error.h"

#define SLI_BLOCKING_MAX 32

typedef struct bp_job {
	sl_fn          fn;   /* the blocking call */
	void          *arg;
	sli_wait       wait; /* the parked caller */
	struct bp_job *next;
} bp_job;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bp_job         *head, *tail; /* queued jobs */
	int             nthreads;
	int             nidle;
	bool            stop;
	pthread_t       threads[SLI_BLOCKING_MAX];
} bp = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *
bp_thread(void *unused)
{
	(void) unused;
	pthread_mutex_lock(&bp.mu);
	for (;;) {
		bp_job *j;

		while (bp.head == NULL && !bp.stop) {
			bp.nidle++;
			pthread_cond_wait(&bp.cv, &bp.mu);
			bp.nidle--;
		}
		if (bp.head == NULL)
			break;
		j = bp.head;
		bp.head = j->next;
		if (bp.head == NULL)
			bp.tail = NULL;
		pthread_mutex_unlock(&bp.mu);

		j->fn(j->arg);
		/* j lives on the caller's stack: last touch is the wake. */
		if (sli_wait_claim(&j->wait, 0))
			sli_wait_wake(&j->wait);
		atomic_fetch_sub(&sli_S.holds, 1);

		pthread_mutex_lock(&bp.mu);
	}
	pthread_mutex_unlock(&bp.mu);
	return (NULL);
}

int
sl_blocking(sl_fn fn, void *arg)
{
	bp_job j = { .fn = fn, .arg = arg, .next = NULL };

	if (fn == NULL)
		return (SL_EINVAL);
	if (sli_curg() == NULL) {
		fn(arg);
		return (0);
	}
	sli_wait_init(&j.wait);
	atomic_fetch_add(&sli_S.holds, 1);

	pthread_mutex_lock(&bp.mu);
	bp.stop = false;
	if (bp.nidle == 0 && bp.nthreads < SLI_BLOCKING_MAX &&
	    pthread_create(&bp.threads[bp.nthreads], NULL, bp_thread,
	    NULL) == 0)
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
	pthread_cond_signal(&bp.cv);
	pthread_mutex_unlock(&bp.mu);

	sli_wait_block(&j.wait, NULL, SL_FOREVER, "blocking call",
	    NULL, NULL, NULL);
	return (0);
}

/* Stops the pool once running calls return; called by sl_main on exit. */
void
sli_blocking_fini(void)
{
	int n;

	pthread_mutex_lock(&bp.mu);
	bp.stop = true;
	pthread_cond_broadcast(&bp.cv);
	n = bp.nthreads;
	pthread_mutex_unlock(&bp.mu);
	for (int i = 0; i < n; i++)
		pthread_join(bp.threads[i], NULL);
	pthread_mutex_lock(&bp.mu);
	bp.nthreads = 0;
	bp.head = bp.tail = NULL;
	bp.stop = false;
	pthread_mutex_unlock(&bp.mu);
}
