/*
 * sluice/sync.h — WaitGroup, Mutex, RWMutex, Cond, Once (Go's sync
 * package).
 *
 * These live in caller memory.  A zero-filled object is ready to use (the
 * SL_*_INIT macros spell that), so no init/finish calls are needed; do not
 * copy one after first use.  Waiting parks the goroutine (or blocks a plain
 * thread); it never spins a worker thread.  The _ctx forms return
 * sl_ctx_err(ctx) when ctx is done first, or SL_ETIMEDOUT at deadline.
 */
#ifndef SLUICE_SYNC_H
#define SLUICE_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sli_waitq {
	void *head; /* first waiter (internal type) */
	void *tail; /* last waiter */
};

/* ---- WaitGroup --------------------------------------------------------- */

typedef struct sl_waitgroup {
	atomic_int       lock;    /* internal spinlock */
	int64_t          count;   /* outstanding add()s */
	struct sli_waitq waiters; /* goroutines in wait() */
} sl_waitgroup;

#define SL_WAITGROUP_INIT { 0 }

/* Adds delta (may be negative) to the counter; when it reaches zero every
 * waiter is released.  A negative counter aborts with a message (as Go
 * panics). */
void sl_waitgroup_add(sl_waitgroup *wg, int64_t delta);
void sl_waitgroup_done(sl_waitgroup *wg);
void sl_waitgroup_wait(sl_waitgroup *wg);
int  sl_waitgroup_wait_ctx(sl_waitgroup *wg, sl_ctx *ctx, int64_t deadline);

/* ---- Mutex -------------------------------------------------------------- */

typedef struct sl_mutex {
	atomic_int       lock;    /* internal spinlock guarding the fields */
	atomic_int       locked;  /* 1 while held */
	struct sli_waitq waiters; /* FIFO of blocked lockers */
} sl_mutex;

#define SL_MUTEX_INIT { 0 }

/* Ownership passes straight to the longest waiter on unlock (FIFO, no
 * starvation).  Unlocking an unlocked mutex aborts with a message. */
void sl_mutex_lock(sl_mutex *mu);
int  sl_mutex_lock_ctx(sl_mutex *mu, sl_ctx *ctx, int64_t deadline);
bool sl_mutex_trylock(sl_mutex *mu);
void sl_mutex_unlock(sl_mutex *mu);

/* ---- RWMutex ------------------------------------------------------------ */

typedef struct sl_rwmutex {
	atomic_int       lock;     /* internal spinlock guarding the fields */
	int              readers;  /* active readers */
	bool             writer;   /* a writer holds it */
	struct sli_waitq waiters;  /* FIFO of blocked readers and writers */
} sl_rwmutex;

#define SL_RWMUTEX_INIT { 0 }

/* A waiting writer blocks new readers (no writer starvation). */
void sl_rwmutex_rlock(sl_rwmutex *rw);
int  sl_rwmutex_rlock_ctx(sl_rwmutex *rw, sl_ctx *ctx, int64_t deadline);
void sl_rwmutex_runlock(sl_rwmutex *rw);
void sl_rwmutex_lock(sl_rwmutex *rw);
int  sl_rwmutex_lock_ctx(sl_rwmutex *rw, sl_ctx *ctx, int64_t deadline);
void sl_rwmutex_unlock(sl_rwmutex *rw);

/*
 * Go's TryRLock and TryLock: take the lock only if that needs no wait,
 * and report whether they did.  A queued writer makes sl_rwmutex_tryrlock
 * fail as it holds back sl_rwmutex_rlock; sl_rwmutex_trylock fails while
 * anyone holds the lock or waits for it.
 */
bool sl_rwmutex_tryrlock(sl_rwmutex *rw);
bool sl_rwmutex_trylock(sl_rwmutex *rw);


/* ---- Cond --------------------------------------------------------------- */

/*
 * Go's sync.Cond, over an sl_mutex.  sl_cond_wait unlocks mu, parks
 * until signaled, and locks mu again before it returns; as in Go, a
 * waiter must re-check its condition in a loop.  Signal wakes the longest
 * waiter, broadcast all; with nobody waiting they do nothing (a signal is
 * not remembered).  The _ctx form also returns on ctx or the deadline,
 * with SL_ETIMEDOUT or the context's error, and mu locked again all the
 * same.  Zero-initialised (SL_COND_INIT) is ready to use; no destroy.
 */
typedef struct sl_cond {
	atomic_int       lock;    /* internal spinlock guarding waiters */
	struct sli_waitq waiters; /* FIFO of parked waiters */
} sl_cond;

#define SL_COND_INIT { 0 }

void sl_cond_wait(sl_cond *c, sl_mutex *mu);
int  sl_cond_wait_ctx(sl_cond *c, sl_mutex *mu, sl_ctx *ctx,
    int64_t deadline);
void sl_cond_signal(sl_cond *c);
void sl_cond_broadcast(sl_cond *c);


/* ---- Once --------------------------------------------------------------- */

typedef struct sl_once {
	atomic_int done; /* 1 once fn has returned */
	sl_mutex   mu;   /* serialises the first callers */
} sl_once;

#define SL_ONCE_INIT { 0 }

/* Calls fn(arg) exactly once over all callers; every caller returns only
 * after that call has finished. */
void sl_once_do(sl_once *once, sl_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_SYNC_H */
