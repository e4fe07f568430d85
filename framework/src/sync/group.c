/*
 * group.c — sl_group: Go's errgroup on a WaitGroup, a cancelable context,
 * and for the limit a count of running functions under a mutex and cond.
 */
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/group.h"
#include "sluice/sync.h"

struct sl_group {
	sl_ctx       *ctx;     /* child of the parent; canceled by the first
	                          error and by wait */
	sl_waitgroup  wg;      /* functions started and not returned */
	sl_mutex      mu;      /* guards the fields below */
	sl_cond       slot;    /* signaled when a limited function ends */
	int           limit;   /* 0: none */
	int           running; /* functions started and not returned */
	int           err;     /* the first non-zero code, or 0 */
	bool          waited;  /* sl_group_wait has returned */
};

struct group_job {
	sl_group    *g;
	sl_group_fn  fn;
	void        *arg;
};

/* A function started by sl_group_go has ended (or never started): frees
 * its slot.  The WaitGroup is the last touch, as wait may then free g. */
static void
group_leave(sl_group *g)
{
	sl_mutex_lock(&g->mu);
	g->running--;
	if (g->limit > 0)
		sl_cond_signal(&g->slot);
	sl_mutex_unlock(&g->mu);
	sl_waitgroup_done(&g->wg);
}

static void
group_run(void *p)
{
	struct group_job job = *(struct group_job *) p;
	sl_group *g = job.g;
	int       err;

	free(p);
	if ((err = job.fn(g->ctx, job.arg)) != 0) {
		sl_mutex_lock(&g->mu);
		if (g->err == 0) {
			g->err = err;
			sl_ctx_cancel_cause(g->ctx, err, NULL);
		}
		sl_mutex_unlock(&g->mu);
	}
	group_leave(g);
}

int
sl_group_make(sl_ctx *parent, sl_group **out)
{
	sl_group *g;
	int       err;

	if (out == NULL)
		return (SL_EINVAL);
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return (SL_ENOMEM);
	if ((err = sl_ctx_with_cancel(parent != NULL ? parent :
	    sl_ctx_background(), &g->ctx)) != 0) {
		free(g);
		return (err);
	}
	*out = g;
	return (0);
}

void
sl_group_limit(sl_group *g, int n)
{
	if (g == NULL)
		return;
	sl_mutex_lock(&g->mu);
	g->limit = n > 0 ? n : 0;
	sl_cond_broadcast(&g->slot); /* a raised limit frees slots */
	sl_mutex_unlock(&g->mu);
}

/* sl_group_go (wait: for a free slot) and sl_group_trygo (no wait). */
static int
group_start(sl_group *g, sl_group_fn fn, void *arg, bool wait)
{
	struct group_job *job;
	int err;

	if (g == NULL || fn == NULL)
		return (SL_EINVAL);
	if ((job = malloc(sizeof(*job))) == NULL)
		return (SL_ENOMEM);
	job->g = g;
	job->fn = fn;
	job->arg = arg;

	sl_mutex_lock(&g->mu);
	while (wait && g->limit > 0 && g->running >= g->limit && !g->waited)
		sl_cond_wait(&g->slot, &g->mu);
	err = g->waited ? SL_ESTATE :
	    g->limit > 0 && g->running >= g->limit ? SL_EAGAIN : 0;
	if (err != 0) {
		sl_mutex_unlock(&g->mu);
		free(job);
		return (err);
	}
	g->running++;
	sl_waitgroup_add(&g->wg, 1);
	sl_mutex_unlock(&g->mu);

	if ((err = sl_go(group_run, job)) != 0) {
		free(job);
		group_leave(g);
	}
	return (err);
}

int
sl_group_go(sl_group *g, sl_group_fn fn, void *arg)
{
	return (group_start(g, fn, arg, true));
}

int
sl_group_trygo(sl_group *g, sl_group_fn fn, void *arg)
{
	return (group_start(g, fn, arg, false));
}

sl_ctx *
sl_group_ctx(sl_group *g)
{
	return (g != NULL ? g->ctx : NULL);
}

int
sl_group_wait(sl_group *g)
{
	int err;

	if (g == NULL)
		return (SL_EINVAL);
	sl_waitgroup_wait(&g->wg);
	sl_ctx_cancel(g->ctx);
	sl_mutex_lock(&g->mu);
	g->waited = true;
	err = g->err;
	sl_cond_broadcast(&g->slot);
	sl_mutex_unlock(&g->mu);
	return (err);
}

void
sl_group_free(sl_group *g)
{
	if (g == NULL)
		return;
	sl_ctx_release(g->ctx);
	free(g);
}
