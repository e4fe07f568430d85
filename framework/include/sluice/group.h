/*
 * sluice/group.h — Go's errgroup (golang.org/x/sync/errgroup): goroutines
 * that each do a part of one task, where the first to fail stops the
 * others and its error is the task's.
 *
 *	sl_group *g;
 *	sl_group_make(ctx, &g);
 *	for (int i = 0; i < nparts; i++)
 *		sl_group_go(g, fetch_part, &parts[i]);   // fn(group ctx, arg)
 *	int err = sl_group_wait(g);                   // first error, or 0
 *	sl_group_free(g);
 *
 * Each function gets the group's context, a child of the parent given to
 * sl_group_make.  The first function to return non-zero cancels it, with
 * that code as the cause (sl_ctx_cause); the others see it done and should
 * return.  Wait cancels it too, once all have returned.  A limit bounds
 * how many functions run at once: sl_group_go then waits for one to
 * finish before it starts another (Go's SetLimit).
 */
#ifndef SLUICE_GROUP_H
#define SLUICE_GROUP_H

#include "sluice/context.h"
#include "sluice/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_group sl_group;

/* A part of the task: returns 0 or an error code (an sl_err or the
 * caller's own non-zero codes). */
typedef int (*sl_group_fn)(sl_ctx *ctx, void *arg);

/*
 * A new group under parent (NULL: background).  Returns 0, SL_EINVAL (out
 * NULL) or SL_ENOMEM.
 */
int sl_group_make(sl_ctx *parent, sl_group **out);

/* At most n functions run at once (n <= 0: no limit, the default).  Set it
 * before the first sl_group_go. */
void sl_group_limit(sl_group *g, int n);

/*
 * Starts fn(ctx, arg) in a new goroutine, first waiting for a free slot if
 * the group has a limit.  Returns 0, or SL_EINVAL (g or fn NULL), SL_ENOMEM,
 * SL_ESTATE (no scheduler, or after sl_group_wait returned): fn then does
 * not run and the group is as before.
 */
int sl_group_go(sl_group *g, sl_group_fn fn, void *arg);

/*
 * Go's TryGo: as sl_group_go, but where sl_group_go would wait for a free
 * slot it returns SL_EAGAIN at once, and fn does not run.  For a producer
 * that would rather do the work itself, or drop it, than wait.
 */
int sl_group_trygo(sl_group *g, sl_group_fn fn, void *arg);

/* The group's context (owned by the group: valid until sl_group_free). */
sl_ctx *sl_group_ctx(sl_group *g);

/*
 * Waits for every function started so far, cancels the group's context and
 * returns the first non-zero code one of them returned, or 0.  Call once,
 * from one goroutine.  As with a WaitGroup, every sl_group_go must happen
 * before this call or inside a function of the group (which may start
 * more), not race with it from elsewhere.
 */
int sl_group_wait(sl_group *g);

/* Frees g (after sl_group_wait).  NULL is fine. */
void sl_group_free(sl_group *g);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_GROUP_H */
