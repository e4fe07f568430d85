/*
 * lock.h — the short spinlock that guards channel, sync and context state.
 *
 * Critical sections under it are a handful of instructions and never park,
 * so spinning beats a futex; after a while the spinner yields the thread so
 * a preempted holder can finish.  Zero is unlocked.
 */
#ifndef SLI_LOCK_H
#define SLI_LOCK_H

#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#define sli_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define sli_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define sli_cpu_relax() ((void) 0)
#endif

static inline void
sli_lock(atomic_int *l)
{
	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		if (spins < 64)
			sli_cpu_relax();
		else
			sched_yield();
	}
}

static inline int
sli_trylock(atomic_int *l)
{
	return (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
	    !atomic_exchange_explicit(l, 1, memory_order_acquire));
}

static inline void
sli_unlock(atomic_int *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* An unlock callback for sli_wait_block that releases one sli_lock. */
void sli_unlock_cb(void *lockp);

#endif /* SLI_LOCK_H */
