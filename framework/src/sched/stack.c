/*
 * stack.c — goroutine stacks and records.
 *
 * Stacks are carved from slabs: a slab holds SLI_SLAB_SLOTS stacks and
 * their records, and slabs are cut from address space reserved for up to
 * SLI_RESERVE_MAX of them at once, so a million goroutines need a few
 * dozen mmap calls and no more mappings than that, far below the
 * kernel's vm.max_map_count (65530 by default; one mapping per stack is
 * what caps libdill near 32k coroutines).  Mappings are MAP_NORESERVE and
 * pages are only touched as a stack grows, so a parked goroutine costs
 * the pages it used (usually one).
 *
 * A slab, from low to high addresses:
 *
 *	[records of its SLI_SLAB_SLOTS goroutines][canary of slot 0]
 *	[slot 0][slot 1] ...
 *
 * and each slot:
 *
 *	[guard page: a guard marker, or PROT_NONE while the budget lasts]
 *	[stack, growing down ...................................]
 *	[canary of the slot above (64 bytes)]
 *
 * The records sit apart from the stacks so that spawning a goroutine
 * touches only its record (dense: 32 per page).  Its stack is first
 * written by the worker that first runs it (sli_stack_prepare), so the
 * page fault of a fresh stack is taken there, in parallel on every
 * worker, not one after another on the spawning thread; on the VMs we
 * run on a fresh page costs ~3 us, more than the rest of a spawn.
 *
 * Overflow detection is twofold.  A guard page turns an overflow into a
 * SIGSEGV that the fault handler (sched.c) reports as a stack overflow
 * of the goroutine whose guard it is.  Where the kernel has guard markers
 * (MADV_GUARD_INSTALL, Linux 6.13: a page-table entry, no new mapping)
 * every stack gets one, installed for a whole slab in one
 * process_madvise call (~0.8 us a stack).  Elsewhere guards are PROT_NONE
 * pages, and each splits a mapping (two more) that counts against
 * vm.max_map_count, so only the first stacks get one: as many as use a
 * quarter of that limit (8191 with the default 65530; hosts that raise
 * it, as many distributions now do, guard more).  Every stack also
 * has a canary just below its lowest byte (in the top of the slot
 * beneath, a page that is resident while that slot is in use, or else at
 * the end of the records), checked at every switch away from the
 * goroutine: an overwritten canary aborts with a stack overflow report
 * instead of running on with a corrupt neighbour.  Without a guard, a
 * goroutine that recurses without ever switching runs down into the
 * stacks below before anything stops it: hence markers wherever the
 * kernel has them.  When it does fault at last (another stack's guard,
 * memory not mapped), the fault handler still names it, by its stack
 * pointer.  A frame larger than the guard could step over it: code is
 * built with -fstack-clash-protection (meson.build).
 *
 * Freed records keep their stacks: they go to a per-worker cache, which
 * trades batches with a global free list, and are reused before any new
 * slot is carved.
 */
#include "sluice_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if SLUICE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "core/lock.h"
#include "sched/sched.h"

#define SLI_SLAB_SLOTS   256
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#define SLI_RESERVE_MAX  64    /* slabs reserved by one mmap, at most */
#define SLI_CACHE_BATCH  32    /* records moved between caches at once */
#define SLI_CANARY_SIZE  64
#define SLI_RECORD_SIZE  ((sizeof(sli_g) + 63) & ~(size_t) 63)
#define SLI_CANARY_WORD  0x5ca1ab1e0ddba11ULL

typedef struct sli_slab {
	char   *base;   /* start of the mapping: the records */
	size_t  len;    /* its length */
	char   *slots;  /* first slot */
	atomic_int carved; /* slots handed out so far */
	bool    guarded; /* every slot has its guard page */
} sli_slab;

static struct {
	atomic_int  lock;      /* guards everything below */
	size_t      page;      /* system page size */
	size_t      stride;    /* bytes per slot */
	size_t      recs;      /* bytes of records (and slot 0's canary) */
	size_t      stack_size; /* requested usable size */
	/* Every slab, in creation order.  The fault handler reads the table
	 * without the lock: a slab and its slots are filled in before they
	 * are counted (release), and a table outgrown is kept (chained from
	 * the last entry of its successor) until sli_stack_fini. */
	_Atomic(sli_slab **) slabs;
	atomic_int  nslabs;
	int         capslabs;
	sli_g      *free;      /* global free list: batches (below) */
	long        nguarded;  /* stacks given a guard page by mprotect */
	long        budget;    /* ... at most */
	bool        no_marker; /* MADV_GUARD_INSTALL refused: mprotect */
	int         pidfd;     /* this process, for process_madvise; or -1 */
	struct iovec iov[SLI_SLAB_SLOTS]; /* its ranges (under lock) */
	char       *room;      /* reserved address space not yet a slab */
	size_t      roomlen;   /* ... its length */
	int         nreserve;  /* slabs the next reservation holds */
	int         max_slabs; /* sli_stack_max_slabs at init: 0, none */
	char       *lastroom;  /* where the last reservation starts */
} st;

bool sli_stack_no_markers;
int  sli_stack_max_slabs;

long
sli_stack_guard_budget(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	long  max = 0;

	if (f != NULL) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 0;
		fclose(f);
	}
	if (max <= 0)
		max = 65530; /* the kernel's default */
	return (max / 8);
}

/* Where the canary that guards g's stack lives. */
static inline uint64_t *
stk_canary(sli_g *g)
{
	char *lo = g->guarded ? g->stack_lo - st.page : g->stack_lo;
	return ((uint64_t *) (lo - SLI_CANARY_SIZE));
}

/* Record j of slab s. */
static inline sli_g *
stk_record(sli_slab *s, size_t j)
{
	return ((sli_g *) (s->base + j * SLI_RECORD_SIZE));
}

size_t
sli_stack_slot_size(void)
{
	return (st.stride);
}

int
sli_stack_init(size_t stack_size)
{
	long pg = sysconf(_SC_PAGESIZE);

	st.page = pg > 0 ? (size_t) pg : 4096;
	if (stack_size < 4 * st.page)
		stack_size = 4 * st.page;
	st.stack_size = stack_size;
	st.stride = (stack_size + st.page - 1) & ~(st.page - 1);
	st.recs = (SLI_SLAB_SLOTS * SLI_RECORD_SIZE + SLI_CANARY_SIZE +
	    st.page - 1) & ~(st.page - 1);
	atomic_store(&st.slabs, NULL);
	atomic_store(&st.nslabs, 0);
	st.capslabs = 0;
	st.free = NULL;
	st.nguarded = 0;
	st.budget = sli_stack_guard_budget();
	st.no_marker = sli_stack_no_markers;
	st.max_slabs = sli_stack_max_slabs;
	st.pidfd = -1;
	st.room = NULL;
	st.roomlen = 0;
	st.nreserve = 1;
	st.lastroom = NULL;
#ifdef SYS_pidfd_open
#if SLUICE_HAVE_VALGRIND_H
	/* valgrind 3.19 knows neither pidfd_open nor process_madvise and
	 * warns at every call: slot by slot is as good there. */
	if (!RUNNING_ON_VALGRIND)
#endif
		st.pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
#endif
	return (0);
}

/* Gives back the pages of len bytes at p, and under ASan those of their
 * shadow, whole pages of it (zero: unpoisoned), which a kept slab would
 * otherwise hold for good. */
static void
stk_release(char *p, size_t len)
{
	(void) madvise(p, len, MADV_DONTNEED);
#if defined(__SANITIZE_ADDRESS__)
	size_t    scale, offset;
	uintptr_t lo, hi;

	__asan_get_shadow_mapping(&scale, &offset);
	lo = (((uintptr_t) p >> scale) + offset + st.page - 1) & ~(st.page - 1);
	hi = (((uintptr_t) (p + len) >> scale) + offset) & ~(st.page - 1);
	if (hi > lo)
		(void) madvise((void *) lo, hi - lo, MADV_DONTNEED);
#endif
}

/* Gives back the pages of the free stacks of s (runs of them at once):
 * nothing refers to those. */
static void
stk_release_free(sli_slab *s)
{
	int n = atomic_load(&s->carved);

	for (int j = 0; j < n;) {
		int k = j;

		while (k < n && atomic_load(&stk_record(s, (size_t) k)->state) ==
		    SLI_G_FREE)
			k++;
		if (k > j)
			stk_release(s->slots + (size_t) j * st.stride,
			    (size_t) (k - j) * st.stride);
		j = k + 1;
	}
}

/*
 * Unmaps every slab, unless keep; every goroutine record becomes invalid
 * either way.  keep: goroutines were abandoned, and what they left may
 * still be reached after sl_main returns: their waits, linked in channel
 * queues and context watcher lists that plain threads go on using (a
 * send, a cancel), and the arguments and results of a blocking call that
 * is still running, which usually live on its goroutine's stack.  Their
 * memory stays (until the process exits, which it usually does next);
 * only the pages of stacks that were free are given back.
 */
void
sli_stack_fini(bool keep)
{
	sli_slab **tab = atomic_load(&st.slabs);
	int        n = atomic_load(&st.nslabs);

	for (int i = 0; i < n; i++) {
		sli_slab *s = tab[i];
#if defined(__SANITIZE_ADDRESS__)
		/* Frames of abandoned goroutines stay poisoned in ASan's
		 * shadow, which outlives the mapping: clear it, or a later
		 * mapping at the same address trips ASan.  A slab kept is
		 * never mapped again (and clearing would make its whole
		 * shadow resident: an eighth of the slab). */
		if (!keep)
			__asan_unpoison_memory_region(s->base, s->len);
#endif
#if SLUICE_HAVE_VALGRIND_H
		for (int j = 0; j < atomic_load(&s->carved); j++)
			VALGRIND_STACK_DEREGISTER(
			    stk_record(s, (size_t) j)->vg_stack_id);
#endif
		if (!keep)
			munmap(s->base, s->len);
		else
			stk_release_free(s);
		free(s);
	}
	for (int cap = st.capslabs; tab != NULL;) {
		sli_slab **old = (sli_slab **) (void *) tab[cap];
		free(tab);
		tab = old;
		cap /= 2;
	}
	if (st.roomlen > 0)
		munmap(st.room, st.roomlen);
	st.room = NULL;
	st.roomlen = 0;
	atomic_store(&st.slabs, NULL);
	if (st.pidfd >= 0)
		close(st.pidfd);
	st.pidfd = -1;
	atomic_store(&st.nslabs, 0);
	st.capslabs = 0;
	st.free = NULL;
}

/* Guard markers for the first page of every slot of s, in one system
 * call (0.8 us a page against 1.3 us for one madvise each). */
static bool
stk_guard_slab(sli_slab *s)
{
#ifdef SYS_process_madvise
	size_t want = (size_t) SLI_SLAB_SLOTS * st.page;

	if (st.no_marker || st.pidfd < 0)
		return (false);
	for (int i = 0; i < SLI_SLAB_SLOTS; i++) {
		st.iov[i].iov_base = s->slots + (size_t) i * st.stride;
		st.iov[i].iov_len = st.page;
	}
	if (syscall(SYS_process_madvise, st.pidfd, st.iov, SLI_SLAB_SLOTS,
	    MADV_GUARD_INSTALL, 0) == (long) want)
		return (true);
	/* Not this kernel: one call a slot from now on.  A partial result
	 * leaves some markers in place, which carving simply repeats. */
	close(st.pidfd);
	st.pidfd = -1;
#else
	(void) s;
#endif
	return (false);
}

/*
 * Where to ask for the next reservation of len bytes: a page below the
 * last one.  The kernel would put it right under the last one, and the
 * two would merge into one mapping; growing a mapping waits for the page
 * faults in progress in it (the workers starting fresh goroutines) and
 * sends those that follow to the address space's lock, behind the mmap:
 * each such wait put both workers to sleep.  A hole of a page keeps the
 * mappings apart.  Only a hint: the kernel goes elsewhere if that range
 * is taken.
 */
static void *
stk_room_hint(size_t len)
{
	uintptr_t last = (uintptr_t) st.lastroom;

	if (last == 0 || last < len + 2 * st.page)
		return (NULL);
	return ((void *) (last - st.page - len));
}

static void *
stk_map(void *hint, size_t len)
{
	return (mmap(hint, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
}

static sli_slab *
stk_slab_new(void)
{
	sli_slab  *s, **tab = atomic_load_explicit(&st.slabs,
	    memory_order_relaxed);
	int        n = atomic_load_explicit(&st.nslabs, memory_order_relaxed);
	size_t     len = st.recs + st.stride * SLI_SLAB_SLOTS;
	void      *p;

	if (st.max_slabs > 0 && n >= st.max_slabs)
		return (NULL); /* a test's stand-in for a full address space */
	if (n == st.capslabs) {
		/* One entry more than the capacity: the outgrown table, which
		 * the fault handler may be reading. */
		int        ncap = st.capslabs ? st.capslabs * 2 : 16;
		sli_slab **t = calloc((size_t) ncap + 1, sizeof(*t));
		if (t == NULL)
			return (NULL);
		if (n > 0)
			memcpy(t, tab, sizeof(*t) * (size_t) n);
		t[ncap] = (sli_slab *) (void *) tab;
		atomic_store_explicit(&st.slabs, t, memory_order_release);
		st.capslabs = ncap;
		tab = t;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	if (st.roomlen < len) {
		/* Reserve room for more slabs than this one: twice as many
		 * each time, up to SLI_RESERVE_MAX.  Every mmap takes the
		 * address space's write lock, which waits for the page faults
		 * of the workers running fresh goroutines while they stall
		 * behind it: with a mapping a slab, each worker slept ~300
		 * times while 100k goroutines started, against ~15 now.  A
		 * reservation costs nothing until its pages are touched
		 * (MAP_NORESERVE); where it is refused (strict overcommit, a
		 * small RLIMIT_AS), one slab is asked for alone. */
		size_t want = len * (size_t) st.nreserve;
		p = stk_map(stk_room_hint(want), want);
		if (p == MAP_FAILED && want > len)
			p = stk_map(NULL, want = len);
		if (p == MAP_FAILED) {
			free(s);
			return (NULL);
		}
		st.room = p; /* the last one is used up: slabs divide it */
		st.lastroom = p;
		st.roomlen = want;
		if (st.nreserve < SLI_RESERVE_MAX)
			st.nreserve *= 2;
	}
	p = st.room;
	st.room += len;
	st.roomlen -= len;
	s->base = p;
	s->len = len;
	s->slots = s->base + st.recs;
	atomic_init(&s->carved, 0);
	s->guarded = stk_guard_slab(s);
	tab[n] = s;
	atomic_store_explicit(&st.nslabs, n + 1, memory_order_release);
	return (s);
}

/* Makes the page at p inaccessible: a guard marker, or PROT_NONE while
 * the budget lasts (always for slot 0 of a slab: below, see stk_carve).
 * False if it stays accessible. */
static bool
stk_guard(char *p, bool slot0)
{
	if (!st.no_marker && madvise(p, st.page, MADV_GUARD_INSTALL) == 0)
		return (true);
	st.no_marker = true; /* an older kernel: EINVAL, every time */
	if ((st.nguarded >= st.budget && !slot0) ||
	    mprotect(p, st.page, PROT_NONE) != 0)
		return (false);
	st.nguarded++;
	return (true);
}

/* Carves the next slot of the newest slab (making one if needed). */
static sli_g *
stk_carve(void)
{
	int       n = atomic_load_explicit(&st.nslabs, memory_order_relaxed);
	sli_slab *s = n ? atomic_load_explicit(&st.slabs,
	    memory_order_relaxed)[n - 1] : NULL;
	char     *slot;
	sli_g    *g;
	bool      guarded;
	int       j;

	if (s == NULL || atomic_load_explicit(&s->carved,
	    memory_order_relaxed) == SLI_SLAB_SLOTS) {
		if ((s = stk_slab_new()) == NULL)
			return (NULL);
	}
	j = atomic_load_explicit(&s->carved, memory_order_relaxed);
	slot = s->slots + (size_t) j * st.stride;
	/* Slot 0 is guarded even past the budget: a goroutine of this slab
	 * that overflows a stack without a guard then runs down through the
	 * stacks below it and faults there, before it reaches the records
	 * (its own among them: the fault handler reads them) or another
	 * slab.  Two mappings more per 256 stacks. */
	guarded = s->guarded || stk_guard(slot, j == 0);
	g = stk_record(s, (size_t) j);
	g->guarded = guarded;
	g->stack_lo = slot + (guarded ? st.page : 0);
	g->stack_size = (size_t) (slot + st.stride - SLI_CANARY_SIZE -
	    g->stack_lo) & ~(size_t) 15;
#if SLUICE_HAVE_VALGRIND_H
	g->vg_stack_id = VALGRIND_STACK_REGISTER(g->stack_lo,
	    g->stack_lo + g->stack_size);
#endif
	atomic_store_explicit(&s->carved, j + 1, memory_order_release);
	return (g);
}

/*
 * The global free list is a stack of batches, each a list of records
 * through their next.  Its first record holds the batch's length and the
 * next batch, in fields a free record has no use for (sched.h).  A
 * worker gives or takes a whole batch in a few stores under st.lock
 * (taking is stk_alloc_global's, with the carving of a fresh slot):
 * walking a batch there would take a cache miss per record, one after
 * another, since the records were last touched by whichever worker freed
 * them, long ago.
 */
static void
stk_push_batch(sli_g *head, long n)
{
	sli_lock(&st.lock);
	head->batch_next = st.free;
	head->batch_len = n;
	st.free = head;
	sli_unlock(&st.lock);
}

static sli_g *
stk_pop_batch_locked(long *n)
{
	sli_g *head = st.free;

	if (head != NULL) {
		st.free = head->batch_next;
		*n = head->batch_len;
	}
	return (head);
}

/* Moves every record in the workers' own caches to the global list.  For
 * a spawner that found no address space for a new slab: stacks freed on
 * other workers wait in their caches, and sl_go must not report
 * SL_ENOMEM while any of them is free.  Called without st.lock. */
static void
stk_reclaim_caches(void)
{
	for (int i = 0; i < sli_S.nprocs; i++) {
		sli_worker *w = &sli_S.workers[i];
		sli_g      *head;
		long        n;

		sli_lock(&w->gfree_lock);
		head = w->gfree;
		n = w->ngfree;
		w->gfree = NULL;
		w->ngfree = 0;
		sli_unlock(&w->gfree_lock);
		if (head != NULL)
			stk_push_batch(head, n);
	}
}

/* A batch from the global list, or else a fresh slot (a batch of one);
 * NULL if neither. */
static sli_g *
stk_alloc_global(long *n)
{
	sli_g *g;

	sli_lock(&st.lock);
	if ((g = stk_pop_batch_locked(n)) == NULL &&
	    (g = stk_carve()) != NULL) {
		g->next = NULL;
		*n = 1;
	}
	sli_unlock(&st.lock);
	return (g);
}

sli_g *
sli_stack_alloc(void)
{
	sli_worker *w = sli_self();
	sli_g      *g, *rest;
	long        n;

	if (w != NULL) {
		/* The cache's lock is the owner's alone but for a spawner
		 * out of address space: never contended otherwise. */
		sli_lock(&w->gfree_lock);
		if ((g = w->gfree) != NULL) {
			w->gfree = g->next;
			w->ngfree--;
			/* The next spawn's record: its miss now, not then. */
			if (w->gfree != NULL)
				__builtin_prefetch(w->gfree, 1, 3);
		}
		sli_unlock(&w->gfree_lock);
		if (g != NULL) {
			g->next = NULL;
			return (g);
		}
	}
	if ((g = stk_alloc_global(&n)) == NULL) {
		stk_reclaim_caches();
		if ((g = stk_alloc_global(&n)) == NULL)
			return (NULL);
	}
	/* The rest of the batch fills the worker's cache, which is empty:
	 * it was when we looked, and only a reclaim (which empties it) may
	 * touch it meanwhile.  A plain thread gives it back. */
	if ((rest = g->next) != NULL) {
		g->next = NULL;
		if (w != NULL) {
			sli_lock(&w->gfree_lock);
			w->gfree = rest;
			w->ngfree = (int) n - 1;
			sli_unlock(&w->gfree_lock);
		} else {
			stk_push_batch(rest, n - 1);
		}
	}
	return (g);
}

void
sli_stack_free(sli_g *g)
{
	sli_worker *w = sli_self();
	sli_g      *head = NULL, *tail;

	atomic_store_explicit(&g->state, SLI_G_FREE, memory_order_relaxed);
	if (w == NULL) {
		g->next = NULL;
		stk_push_batch(g, 1);
		return;
	}
	sli_lock(&w->gfree_lock);
	if (w->ngfree >= 2 * SLI_CACHE_BATCH) {
		/* Spill half the cache as one batch.  These records were
		 * freed here lately: walking them is cheap. */
		head = tail = w->gfree;
		for (int i = 1; i < SLI_CACHE_BATCH; i++)
			tail = tail->next;
		w->gfree = tail->next;
		tail->next = NULL;
		w->ngfree -= SLI_CACHE_BATCH;
	}
	g->next = w->gfree;
	w->gfree = g;
	w->ngfree++;
	sli_unlock(&w->gfree_lock);
	if (head != NULL)
		stk_push_batch(head, SLI_CACHE_BATCH);
}

/* Arms g's canary and builds the frame a fresh goroutine starts from:
 * the first switch to it pops zeroed callee-saved registers and "returns"
 * into sli_go_entry, which calls entry(g).  The first write to the stack:
 * called by the worker about to run g, so the fault of a fresh page is
 * taken there. */
void
sli_stack_prepare(sli_g *g, void (*entry)(void *))
{
	uintptr_t top = (uintptr_t) (g->stack_lo + g->stack_size);
	void    **sp;
	void     *entry_p, *go_entry_p;

	/* Code addresses stored as data words (ISO C has no cast for it). */
	void (*go_entry)(void) = sli_go_entry;
	memcpy(&entry_p, &entry, sizeof(entry_p));
	memcpy(&go_entry_p, &go_entry, sizeof(go_entry_p));
	for (int i = 0; i < SLI_CANARY_SIZE / 8; i++)
		stk_canary(g)[i] = SLI_CANARY_WORD;

#if defined(__x86_64__)
	/* After `ret` pops the entry address, rsp must be 16-byte aligned
	 * (sli_go_entry then calls, as a normal function would). */
	sp = (void **) (top - 16);
	sp[0] = NULL;                    /* fake return address, aligned */
	sp--;
	*sp = go_entry_p;                /* popped by ret */
	sp -= 6;                         /* r15 r14 r13 r12 rbx rbp */
	memset(sp, 0, 6 * sizeof(void *));
	sp[3] = (void *) g;              /* r12: argument */
	sp[2] = entry_p;                 /* r13: function */
#elif defined(__aarch64__)
	sp = (void **) (top - 160);
	memset(sp, 0, 160);
	sp[0] = (void *) g;              /* x19: argument */
	sp[1] = entry_p;                 /* x20: function */
	sp[11] = go_entry_p;             /* x30: link register */
#endif
	g->sp = sp;
}

void
sli_stack_check(sli_g *g)
{
	uint64_t *c = stk_canary(g);
	char     *sp = g->sp;

	/* The top and bottom words: an overflow writes downward through
	 * the top one first; the bottom one catches a frame that skipped. */
	for (int i = 0; i < SLI_CANARY_SIZE / 8; i += SLI_CANARY_SIZE / 8 - 1) {
		if (c[i] != SLI_CANARY_WORD)
			sli_fatal("stack overflow in goroutine %llu (stack "
			    "size %zu bytes; raise SLUICE_STACK_SIZE or "
			    "sl_opts.stack_size)",
			    (unsigned long long) g->id, g->stack_size);
	}
	if (sp != NULL && (sp < g->stack_lo || sp > g->stack_lo +
	    g->stack_size))
		sli_fatal("stack overflow in goroutine %llu (stack pointer "
		    "%p outside its stack)", (unsigned long long) g->id,
		    (void *) sp);
}

/* Without the lock: called from the fault handler, maybe while another
 * thread carves (see st.slabs). */
sli_g *
sli_stack_find(const void *addr)
{
	const char *a = addr;
	int         n = atomic_load_explicit(&st.nslabs, memory_order_acquire);
	sli_slab  **tab = atomic_load_explicit(&st.slabs, memory_order_acquire);

	for (int i = 0; i < n; i++) {
		sli_slab *s = tab[i];
		if (a < s->base || a >= s->base + s->len)
			continue;
		if (a < s->slots)
			return (NULL);
		size_t j = (size_t) (a - s->slots) / st.stride;
		if ((int) j >= atomic_load_explicit(&s->carved,
		    memory_order_acquire))
			return (NULL);
		return (stk_record(s, j));
	}
	return (NULL);
}

void
sli_stack_foreach(void (*fn)(sli_g *, void *), void *arg)
{
	sli_lock(&st.lock);
	for (int i = 0; i < atomic_load(&st.nslabs); i++) {
		sli_slab *s = atomic_load(&st.slabs)[i];
		for (int j = 0; j < atomic_load(&s->carved); j++) {
			sli_g *g = stk_record(s, (size_t) j);
			if (atomic_load(&g->state) != SLI_G_FREE)
				fn(g, arg);
		}
	}
	sli_unlock(&st.lock);
}
