/*
 * test_chaos_stack.c — a randomized, seeded stress test of goroutine
 * stacks (sched/stack.c) and of the stack overflow report (sched.c's
 * fault handler, stack.c's canaries; promised in sluice/runtime.h).
 *
 * Why: test_stack.c pins down one layout per case: a handful of
 * goroutines, one overflow at a time in a known slot.  Stacks are carved
 * from slabs of 256 slots, each with its guard page (a guard marker, or
 * an mprotect page for the first few thousand stacks and for slot 0
 * of every slab on kernels without markers) and a canary in the slot beneath; freed records go
 * through per-worker caches and a global free list.  A record handed out
 * twice, a slot whose guard or canary is off by a page, a stack bound
 * that the fault handler reads wrong: these show up only when many
 * goroutines with deep, varied frames come and go while others stay
 * parked, or when the overflow happens in a slot at a slab's edge, past
 * the guard budget, on another worker.
 *
 * How: two kinds of case.
 *
 *   conserve: several sl_main runs in one process (stacks are unmapped
 *   when sl_main ends), each with a random sl_opts.stack_size (16 KiB to
 *   256 KiB, some not a page multiple) and 1 or 2 workers, each run a few
 *   rounds.  A round starts a first wave of goroutines (from the main
 *   goroutine and from plain pthreads); each recurses to a random depth
 *   through frames of random kinds and sizes (fixed arrays smaller and
 *   larger than a page, VLAs, alloca), fills every frame with a pattern
 *   of (goroutine, depth), and at random depths blocks: yields, sleeps,
 *   takes and returns a token on a channel, selects on it with a
 *   timeout, holds a mutex, runs an sl_blocking call that writes into
 *   the frame, or starts a child goroutine (which does the same, with a
 *   smaller budget) and waits for it on a WaitGroup in the frame.  Some
 *   park deep on a gate.  Once the rest of the first wave is done, a
 *   second wave runs on the stacks they freed while the gated ones stay
 *   parked; then the gate opens.  The main goroutine runs each round from
 *   a random depth of its own frames.  One goroutine in eight goes as
 *   deep as the stack size less HEADROOM (the guard page, canary and
 *   what the blocking calls at the bottom need).
 *
 *   overflow: each in a forked child (slt_fork).  The main goroutine
 *   starts a random number of goroutines that park at a small depth
 *   (sometimes enough for the overflowing one to land in slot 0 or slot
 *   255 of a slab, or past the mprotect guard budget), and among
 *   them, at a chosen position, one that overflows its stack, having
 *   tried to get onto a chosen worker and printed its sl_goid(): by deep
 *   recursion of small frames; by one VLA or one alloca larger than its
 *   stack; by recursion that blocks half-way (yield, sleep, channel,
 *   mutex, sl_blocking) and then goes on; by recursion that yields
 *   every few frames; or by a VLA a little larger than its stack, written
 *   whole and returned from before its next switch (without a guard only
 *   the canary sees it).  Sometimes the child sets sli_stack_no_markers, as
 *   on a kernel without guard markers.
 *
 * Checked:
 *
 *   conserve
 *     - every byte of every frame holds its pattern when the recursion
 *       comes back to it (after every switch, every wave and child that
 *       ran meanwhile on pooled stacks), and so does what an sl_blocking
 *       call wrote into a frame from a pool thread; a frame is never
 *       verified that was not filled, and every filled frame is verified
 *       (counts per round);
 *     - sl_stack_size() is the configured size as stack.c uses it
 *       (raised to 16 KiB, whole pages), in every goroutine;
 *     - a goroutine told to go deep reaches stack size - HEADROOM below
 *       its first frame, with no overflow report (the process would die);
 *     - every goroutine started runs to its end exactly once; after a
 *       round sl_numgoroutine() is back to 1;
 *   overflow
 *     - the child dies by SIGSEGV, SIGBUS or SIGABRT (not SIGABRT when
 *       the stack has a guard page: the guard stops the overflow before
 *       it writes below, so the canary never needs to), and its stderr holds
 *       exactly one "stack overflow in goroutine N " where N is the id the
 *       overflowing goroutine printed: not a neighbour's, not the owner of
 *       the guard it ran into.  Under ASan, running down into neighbours'
 *       poisoned frames (a stack without a guard) may be reported by ASan
 *       first: accepted there only.
 *
 * Each case runs with one seed and 1 or 2 workers.  A failure prints the
 * seed, worker count and round (or child); SLUICE_CHAOS_SEED=<number> runs
 * every case with that seed instead of the built-in ones,
 * SLUICE_CHAOS_SEED=random with a new one (printed).  The work scales
 * with SLUICE_TEST_SCALE (valgrind runs 2% of it; no child goes past
 * the guard budget there, which would take minutes).  Under TSan each run
 * has one round, waves and children are a third, and, as TSan holds at
 * most about 8000 fibers, no child parks more than slt_max_goroutines():
 * the cases past the guard budget do not run.  Under ASan stacks are 64
 * KiB to 256 KiB and HEADROOM is larger (its frames are).
 */
#include <alloca.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/mman.h>

#define SLT_CHAOS /* CHK, rnd: see sltest.h */
#include "sltest.h"

#include "sched/sched.h" /* sli_stack_no_markers, sli_stack_guard_budget */

#if defined(__SANITIZE_ADDRESS__)
#define SLT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLT_ASAN 1
#endif
#endif

enum {
	SLAB = 256,         /* stack.c's SLI_SLAB_SLOTS */
	RUNS = 3,           /* sl_main runs per conserve case */
	ROUNDS = 3,         /* rounds per run */
	WAVE = 48,          /* goroutines per wave, before scaling */
	WAVE_MIN = 4,
	THREADS = 2,        /* plain pthreads starting goroutines */
	T_SPAWN = 6,        /* ... each, before scaling */
	TOKENS = 3,         /* tokens on a round's channel */
	GENS = 2,           /* how deep children nest */
	OVERFLOWS = 12,     /* children per overflow case, before scaling */
	OVERFLOWS_MIN = 2,
	TSAN_DIVISOR = 3,   /* less work under TSan (fibers are slow) */
};

/* Stacks given an mprotect guard where the kernel has no guard markers
 * (stack.c; an eighth of vm.max_map_count); after them only slot 0 of
 * each slab is guarded. */
#define GUARD_BUDGET ((int) sli_stack_guard_budget())

#define KIB 1024
#define US  SL_MICROSECOND
#define MS  SL_MILLISECOND
#define HUNG (60 * SL_SECOND) /* a round longer than this is stuck */

/* What a goroutine that goes deep leaves unused: the guard page and the
 * canary (inside stack_size, runtime.h), the frames above its first one
 * and what a blocking call at the bottom needs. */
#ifdef SLT_ASAN
#define HEADROOM (24 * KIB) /* ASan's frames are larger */
#else
#define HEADROOM (8 * KIB)
#endif
/* Room kept below the deepest frame for its own overhead (saved
 * registers, ASan's redzones). */
#ifdef SLT_ASAN
#define SLACK 1024
#else
#define SLACK 256
#endif

/* ---- helpers ------------------------------------------------------------- */

static uint64_t   g_seed;               /* the seed of the running case */
static int        g_procs;              /* its workers */
static atomic_int g_round;              /* the round (or child) being run */

/* What is running, for failure messages (CHK, sltest.h). */
static void
slt_chaos_where(char *where, size_t len)
{
	snprintf(where, len, "seed 0x%" PRIx64 " procs %d round %d", g_seed,
	    g_procs, atomic_load(&g_round));
}

/* The stack sizes drawn from: page multiples and not, 16 KiB (stack.c's
 * least with 4 KiB pages) to 256 KiB. */
static const size_t sizes[] = {
#ifdef SLT_ASAN
	/* ASan's default is 256 KiB: its frames are larger, and so are
	 * the library's at the bottom of a walk */
	64 * KIB, 80 * KIB, 100 * KIB + 8, 128 * KIB, 256 * KIB,
#else
	16 * KIB, 20 * KIB, 24 * KIB, 32 * KIB, 40 * KIB + 1000, 64 * KIB,
	100 * KIB + 8, 128 * KIB, 256 * KIB,
#endif
};

static size_t
rnd_stack_size(uint64_t *s)
{
	return (sizes[rnd(s, sizeof(sizes) / sizeof(sizes[0]))]);
}

/* The size sl_stack_size() reports for a configured one: raised to 16
 * KiB, rounded up to whole pages (runtime.h). */
static size_t
in_use(size_t configured)
{
	size_t pg = (size_t) sysconf(_SC_PAGESIZE);

	if (configured < 16 * KIB)
		configured = 16 * KIB;
	return ((configured + pg - 1) / pg * pg);
}

/* Tells the compiler that *p may be read and written behind its back: it
 * must store a frame's pattern, and load it again to verify it. */
static inline void
escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* ---- frames and patterns --------------------------------------------------- */

/* The pattern word of frame depth of the goroutine with key. */
static inline uint64_t
pat_word(uint64_t key, int depth)
{
	uint64_t x = key * 0x100000001b3ULL ^ (uint64_t) depth;

	return (slt_rnd(&x));
}

static inline unsigned char
pat_byte(uint64_t w, size_t i)
{
	return ((unsigned char) ((w >> (8 * (i & 7))) + (i >> 3)));
}

static void
fill(unsigned char *p, size_t n, uint64_t key, int depth)
{
	uint64_t w = pat_word(key, depth);

	for (size_t i = 0; i < n; i++)
		p[i] = pat_byte(w, i);
	escape(p);
}

struct round;

/* One goroutine's walk down its stack, in its first frame. */
struct walker {
	uint64_t      key;     /* unique in the process: the pattern's seed */
	uint64_t      rs;      /* its random sequence */
	struct round *rd;
	char         *top;     /* its first frame */
	size_t        budget;  /* bytes below top it goes down to */
	size_t        maxused; /* the deepest it got */
	int           depth;   /* frames so far */
	int           gen;     /* 0, or how deep a child it is */
	bool          gated;   /* parks at the gate (once) */
	bool          deep;    /* told to use most of its stack */
	long          filled;  /* frames filled */
	long          checked; /* ... and verified */
	void        (*bottom)(struct walker *); /* at the deepest point */
	void         *arg;     /* for bottom */
};

static void descend(struct walker *w);

static void
verify(struct walker *w, const unsigned char *p, size_t n, int depth,
    const char *kind)
{
	uint64_t wd = pat_word(w->key, depth);

	escape((void *) p);
	for (size_t i = 0; i < n; i++) {
		if (p[i] != pat_byte(wd, i)) {
			CHK(false, "goroutine %llu (key %" PRIu64 ", gen %d): "
			    "%s frame at depth %d of %zu bytes: byte %zu of "
			    "%p is 0x%02x, not 0x%02x", (unsigned long long)
			    sl_goid(), w->key, w->gen, kind, depth, n, i,
			    (const void *) p, p[i], pat_byte(wd, i));
			break;
		}
	}
	w->checked++;
}

/* How far below its first frame w is. */
static inline size_t
used(struct walker *w)
{
	return ((size_t) (w->top - (char *) __builtin_frame_address(0)));
}

static void __attribute__((noinline))
frame_small(struct walker *w)
{
	unsigned char buf[200];
	int d = w->depth++;

	fill(buf, sizeof(buf), w->key, d);
	w->filled++;
	descend(w);
	verify(w, buf, sizeof(buf), d, "small");
}

/* Larger than a page: probed page by page (-fstack-clash-protection). */
static void __attribute__((noinline))
frame_large(struct walker *w)
{
	unsigned char buf[5000];
	int d = w->depth++;

	fill(buf, sizeof(buf), w->key, d);
	w->filled++;
	descend(w);
	verify(w, buf, sizeof(buf), d, "large");
}

static void __attribute__((noinline))
frame_vla(struct walker *w, size_t n)
{
	unsigned char buf[n];
	int d = w->depth++;

	fill(buf, n, w->key, d);
	w->filled++;
	descend(w);
	verify(w, buf, n, d, "vla");
}

static void __attribute__((noinline))
frame_alloca(struct walker *w, size_t n)
{
	unsigned char *buf = alloca(n);
	int d = w->depth++;

	fill(buf, n, w->key, d);
	w->filled++;
	descend(w);
	verify(w, buf, n, d, "alloca");
}

/* ---- rounds ------------------------------------------------------------------ */

struct round {
	int          r;
	size_t       stack_size; /* configured */
	sl_chan     *tokens;     /* TOKENS ints */
	sl_chan     *gate;       /* closed when the gated may go on */
	sl_mutex     mu;
	sl_waitgroup wg;         /* every top-level goroutine */
	atomic_int   at_gate;
	atomic_int   ended[2];   /* top-level goroutines of each wave done */
	atomic_int   children;   /* children started */
	atomic_int   children_ended;
	atomic_long  filled, checked;
	atomic_long  acts, blocking, deep_ok;
	atomic_ullong next_key;
};

/* A top-level goroutine: what main drew for it. */
struct spec {
	struct round *rd;
	uint64_t      seed;
	size_t        budget;
	bool          gated;
	bool          deep;
	int           wave;
};

/* What an sl_blocking call writes into a frame. */
struct bcall {
	uint64_t      key;
	unsigned char buf[256];
	bool          ran;
};

static void
bcall_fn(void *arg)
{
	struct bcall *b = arg;

	fill(b->buf, sizeof(b->buf), b->key, -1);
	b->ran = true;
}

static void walk(struct round *rd, uint64_t seed, size_t budget, int gen,
    bool gated, bool deep);

struct child {
	struct round *rd;
	uint64_t      seed;
	size_t        budget;
	int           gen;
	sl_waitgroup *wg; /* in the parent's frame */
};

static void
child_main(void *arg)
{
	struct child *c = arg;

	walk(c->rd, c->seed, c->budget, c->gen, false, false);
	atomic_fetch_add(&c->rd->children_ended, 1);
	sl_waitgroup_done(c->wg);
}

/* Blocks, one way or another, at depth in w's walk. */
static void
act(struct walker *w)
{
	struct round *rd = w->rd;
	int tok = 0, chosen = -1, rv;

	atomic_fetch_add(&rd->acts, 1);
	switch (rnd(&w->rs, 8)) {
	case 0:
		sl_yield();
		break;
	case 1:
		sl_sleep((int64_t) rnd(&w->rs, 50) * US);
		break;
	case 2:
		SL_CHECK_OK(sl_chan_recv(rd->tokens, &tok));
		if (rnd(&w->rs, 2))
			sl_yield();
		SL_CHECK_OK(sl_chan_send(rd->tokens, &tok));
		break;
	case 3: {
		sl_case c[1] = { SL_CASE_RECV(rd->tokens, &tok) };

		rv = sl_select(c, 1, NULL, sl_now() + (int64_t) rnd(&w->rs,
		    30) * US, &chosen);
		CHK(rv == 0 || rv == SL_ETIMEDOUT, "sl_select returned %s",
		    sl_errname(rv));
		if (rv == 0)
			SL_CHECK_OK(sl_chan_send(rd->tokens, &tok));
		break;
	}
	case 4:
		sl_mutex_lock(&rd->mu);
		if (rnd(&w->rs, 2))
			sl_yield();
		sl_mutex_unlock(&rd->mu);
		break;
	case 5: {
		struct bcall b;

		b.key = w->key;
		b.ran = false;
		SL_CHECK_OK(sl_blocking(bcall_fn, &b));
		CHK(b.ran, "sl_blocking returned 0 and its fn did not run");
		verify(w, b.buf, sizeof(b.buf), -1, "sl_blocking");
		w->checked--; /* not a frame */
		atomic_fetch_add(&rd->blocking, 1);
		break;
	}
	case 6:
		if (w->gated) {
			w->gated = false;
			atomic_fetch_add(&rd->at_gate, 1);
			CHK(sl_chan_recv(rd->gate, NULL) == SL_ECLOSED,
			    "the gate let a goroutine through open");
			break;
		}
		/* FALLTHROUGH */
	case 7:
		if (w->gen < GENS && !w->deep) {
			sl_waitgroup wg = SL_WAITGROUP_INIT;
			struct child  c;

			c.rd = rd;
			c.seed = slt_rnd(&w->rs);
			c.budget = (size_t) rnd(&w->rs, (uint32_t) (rd->stack_size
			    - HEADROOM));
			c.gen = w->gen + 1;
			c.wg = &wg;
			sl_waitgroup_add(&wg, 1);
			atomic_fetch_add(&rd->children, 1);
			SL_CHECK_OK(sl_go(child_main, &c));
			sl_waitgroup_wait(&wg);
		} else {
			sl_yield();
		}
		break;
	}
}

/* One more frame, or the bottom: what fits in what is left of w's
 * budget. */
static void
descend(struct walker *w)
{
	size_t u = used(w), left = u < w->budget ? w->budget - u : 0;

	if (u > w->maxused)
		w->maxused = u;
	if (left < SLACK + 64) {
		if (w->bottom != NULL)
			w->bottom(w);
		else if (w->gated || rnd(&w->rs, 2))
			act(w);
		return;
	}
	left -= SLACK;
	if (rnd(&w->rs, 6) == 0)
		act(w);
	switch (rnd(&w->rs, 4)) {
	case 0:
		if (left >= 200 + SLACK) {
			frame_small(w);
			break;
		}
		/* FALLTHROUGH */
	case 1:
		if (left >= 5000 + SLACK) {
			frame_large(w);
			break;
		}
		/* FALLTHROUGH */
	case 2:
		frame_vla(w, 1 + rnd(&w->rs, (uint32_t) (left < 6000 ? left :
		    6000)));
		break;
	default:
		frame_alloca(w, 1 + rnd(&w->rs, (uint32_t) (left < 6000 ?
		    left : 6000)));
		break;
	}
}

/* Walks down to budget and back, verifying on the way back; gated: parks
 * at the gate on the way (at the bottom if not before). */
static void
walk(struct round *rd, uint64_t seed, size_t budget, int gen, bool gated,
    bool deep)
{
	struct walker w;

	memset(&w, 0, sizeof(w));
	w.key = atomic_fetch_add(&rd->next_key, 1);
	w.rs = seed;
	w.rd = rd;
	w.top = __builtin_frame_address(0);
	w.budget = budget;
	w.gen = gen;
	w.gated = gated;
	w.deep = deep;
	CHK(sl_stack_size() == in_use(rd->stack_size), "sl_stack_size() is "
	    "%zu, configured %zu", sl_stack_size(), rd->stack_size);
	descend(&w);
	if (w.gated) { /* never got to act 6 */
		atomic_fetch_add(&rd->at_gate, 1);
		CHK(sl_chan_recv(rd->gate, NULL) == SL_ECLOSED,
		    "the gate let a goroutine through open");
	}
	CHK(w.filled == w.checked, "goroutine %llu: %ld frames filled, %ld "
	    "verified", (unsigned long long) sl_goid(), w.filled, w.checked);
	if (deep) {
		CHK(w.maxused + SLACK + 64 >= budget, "goroutine %llu told to "
		    "use %zu bytes of its %zu got down %zu only",
		    (unsigned long long) sl_goid(), budget, rd->stack_size,
		    w.maxused);
		atomic_fetch_add(&rd->deep_ok, 1);
	}
	atomic_fetch_add(&rd->filled, w.filled);
	atomic_fetch_add(&rd->checked, w.checked);
}

static void
top_main(void *arg)
{
	struct spec *s = arg;

	walk(s->rd, s->seed, s->budget, 0, s->gated, s->deep);
	atomic_fetch_add(&s->rd->ended[s->wave], 1);
	sl_waitgroup_done(&s->rd->wg);
}

static void
draw_spec(struct round *rd, uint64_t *rs, struct spec *s, int wave)
{
	size_t most = rd->stack_size - HEADROOM;

	s->rd = rd;
	s->seed = slt_rnd(rs);
	s->wave = wave;
	s->gated = wave == 0 && rnd(rs, 3) == 0;
	s->deep = rnd(rs, 8) == 0;
	s->budget = s->deep ? most : (size_t) rnd(rs, (uint32_t) most);
}

/* A plain pthread starting goroutines of the first wave. */
struct starter {
	pthread_t    t;
	struct spec *specs;
	int          n;
};

static void *
starter_main(void *arg)
{
	struct starter *st = arg;

	for (int i = 0; i < st->n; i++)
		SL_CHECK_OK(sl_go(top_main, &st->specs[i]));
	return (NULL);
}

static void
join_fn(void *arg)
{
	struct starter *st = arg;

	pthread_join(st->t, NULL);
}

/* Waits (sleeping, bounded by HUNG) until *n reaches want. */
static bool
settle(atomic_int *a, atomic_int *b, int want)
{
	int64_t end = sl_now() + HUNG;

	while (atomic_load(a) + (b ? atomic_load(b) : 0) < want &&
	    sl_now() < end)
		sl_sleep(200 * US);
	return (atomic_load(a) + (b ? atomic_load(b) : 0) == want);
}

struct conserve {
	int      procs;
	uint64_t seed;
	uint64_t run_seed;
	int      runs, rounds;
	long     wave, tspawn;
	/* totals, for the summary */
	long     goroutines, children, frames, acts, blocking, deep, gated;
};

struct run {
	struct conserve *c;
	size_t           stack_size;
	uint64_t         rs;
};

/* A round, run by the main goroutine at the bottom of its own walk. */
static void
round_bottom(struct walker *mw)
{
	struct run     *run = mw->arg;
	struct conserve *c = run->c;
	struct round   *rd = mw->rd;
	struct spec    *specs;
	struct starter  st[THREADS];
	int             n0 = (int) c->wave + THREADS * (int) c->tspawn;
	int             n1 = (int) c->wave, ngated = 0;

	specs = calloc((size_t) (n0 + n1), sizeof(*specs));
	if (specs == NULL)
		SLT_FATAL("out of memory");
	for (int i = 0; i < n0 + n1; i++) {
		draw_spec(rd, &run->rs, &specs[i], i < n0 ? 0 : 1);
		ngated += specs[i].gated;
	}
	sl_waitgroup_add(&rd->wg, n0 + n1);
	/* The first wave: from pthreads and from here, at once. */
	for (int t = 0; t < THREADS; t++) {
		st[t].specs = specs + c->wave + t * c->tspawn;
		st[t].n = (int) c->tspawn;
		if (pthread_create(&st[t].t, NULL, starter_main, &st[t]) != 0)
			SLT_FATAL("pthread_create failed");
	}
	for (int i = 0; i < c->wave; i++) {
		SL_CHECK_OK(sl_go(top_main, &specs[i]));
		if (rnd(&run->rs, 8) == 0)
			sl_yield();
	}
	for (int t = 0; t < THREADS; t++)
		SL_CHECK_OK(sl_blocking(join_fn, &st[t]));
	/* The gated park deep; the rest end and free their stacks. */
	CHK(settle(&rd->ended[0], &rd->at_gate, n0), "first wave: %d ended "
	    "and %d at the gate of %d after %d s", atomic_load(&rd->ended[0]),
	    atomic_load(&rd->at_gate), n0, (int) (HUNG / SL_SECOND));
	CHK(atomic_load(&rd->at_gate) == ngated, "%d at the gate, %d gated",
	    atomic_load(&rd->at_gate), ngated);
	/* The second wave reuses those stacks, beside the parked ones. */
	for (int i = n0; i < n0 + n1; i++)
		SL_CHECK_OK(sl_go(top_main, &specs[i]));
	CHK(settle(&rd->ended[1], NULL, n1), "second wave: %d of %d ended "
	    "after %d s", atomic_load(&rd->ended[1]), n1,
	    (int) (HUNG / SL_SECOND));
	SL_CHECK_OK(sl_chan_close(rd->gate));
	sl_waitgroup_wait(&rd->wg);
	CHK(atomic_load(&rd->ended[0]) == n0 && atomic_load(&rd->ended[1]) ==
	    n1, "ended %d + %d goroutines of %d + %d",
	    atomic_load(&rd->ended[0]), atomic_load(&rd->ended[1]), n0, n1);
	CHK(atomic_load(&rd->children) == atomic_load(&rd->children_ended),
	    "%d children started, %d ended", atomic_load(&rd->children),
	    atomic_load(&rd->children_ended));
	/* Every goroutine gone (an ended one is gone once its switch away
	 * is done). */
	for (int64_t end = sl_now() + HUNG; sl_numgoroutine() > 1 &&
	    sl_now() < end;)
		sl_sleep(100 * US);
	CHK(sl_numgoroutine() == 1, "%zu goroutines left after the round",
	    sl_numgoroutine());
	CHK(atomic_load(&rd->filled) == atomic_load(&rd->checked), "%ld "
	    "frames filled, %ld verified", atomic_load(&rd->filled),
	    atomic_load(&rd->checked));
	c->goroutines += n0 + n1;
	c->children += atomic_load(&rd->children);
	c->frames += atomic_load(&rd->filled);
	c->acts += atomic_load(&rd->acts);
	c->blocking += atomic_load(&rd->blocking);
	c->deep += atomic_load(&rd->deep_ok);
	c->gated += ngated;
	free(specs);
}

static void
run_body(void *arg)
{
	struct run *run = arg;
	struct conserve *c = run->c;

	CHK(sl_stack_size() == in_use(run->stack_size), "main: "
	    "sl_stack_size() is %zu, configured %zu", sl_stack_size(),
	    run->stack_size);
	for (int r = 0; r < c->rounds; r++) {
		struct round *rd = calloc(1, sizeof(*rd));
		struct walker mw;
		int           tok = 0;

		if (rd == NULL)
			SLT_FATAL("out of memory");
		atomic_store(&g_round, r);
		rd->r = r;
		rd->stack_size = run->stack_size;
		rd->tokens = sl_chan_make(sizeof(int), TOKENS);
		rd->gate = sl_chan_make(0, 0);
		atomic_store(&rd->next_key, ((uint64_t) run->rs << 20) + 1);
		for (int i = 0; i < TOKENS; i++)
			SL_CHECK_OK(sl_chan_send(rd->tokens, &tok));
		/* The main goroutine's own walk, the round at its bottom
		 * (which needs some stack of its own). */
		memset(&mw, 0, sizeof(mw));
		mw.key = atomic_fetch_add(&rd->next_key, 1);
		mw.rs = slt_rnd(&run->rs);
		mw.rd = rd;
		mw.top = __builtin_frame_address(0);
		mw.budget = (size_t) rnd(&run->rs, (uint32_t) (run->stack_size -
		    2 * HEADROOM + 1));
		mw.bottom = round_bottom;
		mw.arg = run;
		descend(&mw);
		CHK(mw.filled == mw.checked, "main: %ld frames filled, %ld "
		    "verified", mw.filled, mw.checked);
		sl_chan_release(rd->tokens);
		sl_chan_release(rd->gate);
		free(rd);
	}
}

static void
test_conserve(void **state)
{
	struct conserve *c = *state;
	int64_t t0 = sl_now();

	c->run_seed = slt_seed(c->seed);
	c->runs = RUNS;
	c->rounds = (int) slt_scaled_min(ROUNDS, 1);
	c->wave = slt_scaled_min(WAVE, WAVE_MIN);
	c->tspawn = slt_scaled_min(T_SPAWN, 1);
#ifdef SLT_TSAN
	c->rounds = 1;
	c->wave = c->wave / TSAN_DIVISOR > WAVE_MIN ? c->wave / TSAN_DIVISOR :
	    WAVE_MIN;
#endif
	c->goroutines = c->children = c->frames = c->acts = c->blocking =
	    c->deep = c->gated = 0;
	g_seed = c->run_seed;
	g_procs = c->procs;
	slt_chaos_reset();
	atomic_store(slt_failures(), 0);
	for (int k = 0; k < c->runs; k++) {
		struct run run;
		sl_opts o;
		int rv;

		run.c = c;
		run.rs = c->run_seed ^ ((uint64_t) k << 40);
		(void) slt_rnd(&run.rs);
		run.stack_size = rnd_stack_size(&run.rs);
		memset(&o, 0, sizeof(o));
		o.procs = c->procs;
		o.stack_size = run.stack_size;
		rv = sl_main_opts(&o, run_body, &run);
		CHK(rv == 0, "run %d (stack size %zu): sl_main returned %s", k,
		    run.stack_size, sl_errname(rv));
	}
	printf("chaos_stack conserve seed 0x%" PRIx64 " procs %d: %d runs of "
	    "%d rounds in %.2f s: %ld goroutines (%ld gated, %ld deep), %ld "
	    "children, %ld frames verified, %ld blocking acts (%ld "
	    "sl_blocking)\n", c->run_seed, c->procs, c->runs, c->rounds,
	    (double) (sl_now() - t0) / SL_SECOND, c->goroutines, c->gated,
	    c->deep, c->children, c->frames, c->acts, c->blocking);
	fflush(stdout);
	slt_replay_hint("chaos_stack", c->run_seed, c->procs);
	slt_assert_no_failures();
}

/* ---- overflow (child processes) --------------------------------------------- */

enum ov_kind {
	OV_RECURSE,  /* small frames, no end */
	OV_VLA,      /* one VLA larger than the stack */
	OV_ALLOCA,   /* one alloca larger than the stack */
	OV_HALFWAY,  /* recursion that blocks half-way, then goes on */
	OV_YIELDING, /* recursion that yields every few frames */
	OV_TRANSIENT, /* a VLA a little larger than the stack, written
	                 whole and returned from before a switch */
	OV_KINDS
};

static const char *const ov_names[] = {
	"recursion", "vla", "alloca", "half-way", "yielding", "transient",
};

enum ov_where {
	W_ANY,    /* anywhere among a few hundred */
	W_SLAB,   /* slot 0 or 255 of a slab */
	W_BUDGET, /* past the mprotect guard budget */
};

static const char *const where_names[] = { "any", "slab edge", "past budget" };

struct ov_plan {
	int      procs;
	size_t   stack_size;
	int      nparked;    /* goroutines parked besides it */
	int      pos;        /* it is started after pos of them */
	int      worker;     /* the worker it tries to get onto */
	bool     no_markers;
	int      kind;
	int      where;
	size_t   slot_size;  /* stack.c's stride: no stack is larger */
	size_t   extra;      /* OV_VLA, OV_ALLOCA: bytes past the slot */
	int      frame;      /* OV_RECURSE...: bytes a frame */
	uint64_t seed;
};

static struct ov_plan g_plan; /* the child's (copied by fork) */

static void
parked(void *arg)
{
	volatile unsigned char mark[96];

	mark[0] = 1;
	mark[sizeof(mark) - 1] = mark[0];
	(void) sl_chan_recv(arg, NULL);
}

static volatile int ov_sink;
static volatile int ov_limit = 1 << 30; /* never reached: keeps the
                                           compiler from calling the
                                           recursion infinite */

static void
noop(void *arg)
{
	(void) arg;
}

/* Recursion without end; every `every` frames (0: never) blocks as
 * act_kind says, and OV_HALFWAY blocks once at frame `half`. */
static int __attribute__((noinline))
ov_deep(int n, int size, int every, int half)
{
	unsigned char buf[size];

	buf[0] = (unsigned char) n;
	buf[size - 1] = (unsigned char) (n >> 8);
	escape(buf);
	if (every != 0 && n % every == 0)
		sl_yield();
	if (n == half) {
		uint64_t s = g_plan.seed;
		sl_mutex mu = SL_MUTEX_INIT;
		sl_chan *ch = sl_chan_make(sizeof(int), 1);
		int v = 1;

		switch (rnd(&s, 5)) {
		case 0:
			sl_yield();
			break;
		case 1:
			sl_sleep(100 * US);
			break;
		case 2:
			(void) sl_chan_send(ch, &v);
			(void) sl_chan_recv(ch, &v);
			break;
		case 3:
			sl_mutex_lock(&mu);
			sl_yield();
			sl_mutex_unlock(&mu);
			break;
		default:
			(void) sl_blocking(noop, NULL);
			break;
		}
		sl_chan_release(ch);
	}
	if (n >= ov_limit)
		return (0);
	return (ov_deep(n + 1, size, every, half) + buf[size - 1] + buf[0]);
}

static void __attribute__((noinline))
ov_vla(size_t n)
{
	unsigned char buf[n];

	/* Its lowest part, as a read() into it would; then a switch, where
	 * the stack pointer is checked if nothing faulted. */
	memset(buf, 0x55, 512);
	escape(buf);
	sl_yield();
	ov_sink = buf[0];
}

static void __attribute__((noinline))
ov_alloca(size_t n)
{
	unsigned char *buf = alloca(n);

	memset(buf, 0x66, 512);
	escape(buf);
	sl_yield();
	ov_sink = buf[0];
}

/* Without a guard the probes and writes pass into the slot below
 * unseen, and the stack pointer is back inside its stack by the next
 * switch: only the canary can tell. */
static void __attribute__((noinline))
ov_transient(size_t n)
{
	unsigned char buf[n];

	memset(buf, 0x77, n);
	escape(buf);
	ov_sink = buf[n / 2];
}

static void
overflower(void *arg)
{
	struct ov_plan *p = &g_plan;
	int frames = (int) (p->stack_size / (size_t) (p->frame + 64));

	(void) arg;
	/* Onto the chosen worker, if the scheduler obliges soon. */
	for (int i = 0; i < 200 && sl_worker_id() != p->worker; i++) {
		if (i % 2)
			sl_yield();
		else
			sl_sleep(20 * US);
	}
	fprintf(stderr, "overflowing goroutine %llu on worker %d\n",
	    (unsigned long long) sl_goid(), sl_worker_id());
	switch (p->kind) {
	case OV_RECURSE:
		ov_sink = ov_deep(0, p->frame, 0, -1);
		break;
	case OV_VLA:
		ov_vla(p->slot_size + p->extra);
		break;
	case OV_ALLOCA:
		ov_alloca(p->slot_size + p->extra);
		break;
	case OV_HALFWAY:
		ov_deep(0, p->frame, 0, frames / 2);
		break;
	case OV_TRANSIENT:
		ov_transient(p->slot_size + 256);
		sl_yield();
		break;
	default:
		ov_deep(0, p->frame, 1 + (int) (p->seed % 4), -1);
		break;
	}
	fprintf(stderr, "overflow returned\n");
}

static void
ov_body(void *arg)
{
	struct ov_plan *p = &g_plan;
	sl_chan *gate = sl_chan_make(0, 0);
	sl_chan *never = sl_chan_make(0, 0);

	(void) arg;
	for (int i = 0; i <= p->nparked; i++) {
		if (i == p->pos)
			(void) sl_go(overflower, NULL);
		if (i < p->nparked)
			(void) sl_go(parked, gate);
	}
	(void) sl_chan_recv(never, NULL);
}

static void
ov_child(void *arg)
{
	sl_opts o;
	int rv;

	(void) arg;
	sli_stack_no_markers = g_plan.no_markers;
	memset(&o, 0, sizeof(o));
	o.procs = g_plan.procs;
	o.stack_size = g_plan.stack_size;
	rv = sl_main_opts(&o, ov_body, NULL);
	fprintf(stderr, "sl_main returned %s\n", sl_errname(rv));
	_exit(3);
}

struct overflow {
	int      procs;
	uint64_t seed;
	uint64_t run_seed;
	long     children;
	/* totals */
	long     kinds[OV_KINDS], wheres[3], unmarked, on_worker, asan;
};

static bool
have_guard_markers(void)
{
	long  pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t) pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool  ok;

	if (p == MAP_FAILED)
		return (false);
	ok = madvise(p, (size_t) pg, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(p, (size_t) pg);
	return (ok);
}

/* Draws child i's plan. */
static void
draw_plan(struct overflow *o, uint64_t *rs, struct ov_plan *p, bool markers)
{
	long cap = slt_max_goroutines() - 16;
	long pg = sysconf(_SC_PAGESIZE);
	int slot;

	memset(p, 0, sizeof(*p));
	p->procs = o->procs;
	p->seed = slt_rnd(rs);
	p->stack_size = rnd_stack_size(rs);
	/* A stack without a guard page has that page too: sizes rounded
	 * up to pages, less the canary. */
	p->slot_size = ((p->stack_size < 4 * (size_t) pg ? 4 * (size_t) pg :
	    p->stack_size) + (size_t) pg - 1) & ~((size_t) pg - 1);
	p->no_markers = !markers || rnd(rs, 2) == 0;
	p->kind = (int) rnd(rs, OV_KINDS);
	p->worker = (int) rnd(rs, (uint32_t) o->procs);
	p->frame = (int) (16 + rnd(rs, 1024));
	switch (rnd(rs, 4)) {
	case 0:
		p->extra = (size_t) pg / 2;
		break;
	case 1:
		p->extra = (size_t) pg + 2048;
		break;
	case 2:
		p->extra = 16 * (size_t) pg;
		break;
	default:
		p->extra = p->stack_size;
		break;
	}
	/* Slab edges twice as often: slot 0 is next to the records. */
	p->where = (int) rnd(rs, 4);
	p->where = p->where > W_BUDGET ? W_SLAB : p->where;
	if (p->where == W_BUDGET && (cap < GUARD_BUDGET + 2 * SLAB ||
	    slt_under_valgrind()))
		p->where = W_SLAB;
	/* Past the budget is what matters without markers. */
	if (p->where == W_BUDGET && markers && rnd(rs, 4) != 0)
		p->no_markers = true;
	/* Its slot is pos + 1: the main goroutine has slot 0, and nothing
	 * is freed before it starts. */
	switch (p->where) {
	case W_ANY:
		p->nparked = (int) rnd(rs, 300);
		p->pos = (int) rnd(rs, (uint32_t) p->nparked + 1);
		break;
	case W_SLAB:
		slot = SLAB * (int) (1 + rnd(rs, 3)) - (rnd(rs, 3) == 0);
		p->pos = slot - 1;
		p->nparked = p->pos + (int) rnd(rs, 64);
		break;
	default:
		slot = GUARD_BUDGET + (rnd(rs, 2) ? SLAB * (int) rnd(rs, 3) -
		    (int) rnd(rs, 2) : (int) rnd(rs, 600));
		p->pos = slot - 1;
		p->nparked = p->pos + (int) rnd(rs, 64);
		break;
	}
	if (p->nparked > cap) {
		p->nparked = (int) cap;
		if (p->pos > p->nparked)
			p->pos = p->nparked;
	}
}

/* Child i: its plan, then the verdict on how it died. */
static void
run_child(struct overflow *o, int i, struct ov_plan *p)
{
	slt_child         *res = malloc(sizeof(*res));
	char               sbuf[128], want[96];
	const char        *q;
	unsigned long long id = 0;
	int                worker = -1, reports = 0;
	bool               ok, guarded;

	if (res == NULL)
		fail_msg("out of memory");
	atomic_store(&g_round, i);
	g_plan = *p;
	assert_int_equal(slt_fork(ov_child, NULL, res), 0);
	if ((q = strstr(res->err, "overflowing goroutine ")) == NULL ||
	    sscanf(q, "overflowing goroutine %llu on worker %d", &id,
	    &worker) != 2) {
		CHK(false, "child %d (%s, %s, slot %d, %s, %d parked, stack "
		    "%zu): no goroutine id in its stderr:\n%s", i,
		    ov_names[p->kind], where_names[p->where], p->pos + 1,
		    p->no_markers ? "no markers" : "markers", p->nparked,
		    p->stack_size, res->err);
		free(res);
		return;
	}
	o->on_worker += worker == p->worker;
	snprintf(want, sizeof(want), "stack overflow in goroutine %llu ", id);
	/* Exactly one report, and of that goroutine. */
	for (q = res->err; (q = strstr(q, "stack overflow in goroutine ")) !=
	    NULL; q++)
		reports++;
	/* A stack with a guard page (a marker; or mprotect, slots 0 to
	 * GUARD_BUDGET - 1 and slot 0 of every slab) is stopped by it before
	 * a byte is written below: the fault handler reports it, never the
	 * canary check.  One without runs down through the stacks below it
	 * to slot 0's guard, and the report must still name it. */
	guarded = !p->no_markers || p->pos + 1 < GUARD_BUDGET ||
	    (p->pos + 1) % SLAB == 0;
	ok = WIFSIGNALED(res->status) && (WTERMSIG(res->status) == SIGSEGV ||
	    WTERMSIG(res->status) == SIGBUS ||
	    (!guarded && WTERMSIG(res->status) == SIGABRT)) &&
	    strstr(res->err, want) != NULL && reports == 1;
#ifdef SLT_ASAN
	/* Without a guard it runs down into the frames of the goroutines
	 * parked below, which ASan keeps poisoned: ASan may see that
	 * first. */
	if (!ok && !guarded &&
	    strstr(res->err, "ERROR: AddressSanitizer: ") != NULL) {
		o->asan++;
		ok = true;
	}
#endif
	CHK(ok, "child %d (%s, %s, slot %d, %s, %d parked, stack %zu, "
	    "extra %zu, frame %d, worker %d): %s, %d report(s); expected "
	    "death by %s with one \"%s\"; stderr:\n%s", i,
	    ov_names[p->kind], where_names[p->where], p->pos + 1,
	    p->no_markers ? "no markers" : "markers", p->nparked,
	    p->stack_size, p->extra, p->frame, worker,
	    slt_status_str(res->status, sbuf, sizeof(sbuf)), reports,
	    guarded ? "SIGSEGV or SIGBUS (a guard)" : "a signal", want,
	    res->err);
	o->kinds[p->kind]++;
	o->wheres[p->where]++;
	o->unmarked += p->no_markers;
	free(res);
}

static void
test_overflow(void **state)
{
	struct overflow *o = *state;
	bool markers = have_guard_markers();
	int64_t t0 = sl_now();
	uint64_t rs;

	o->run_seed = slt_seed(o->seed);
	o->children = slt_scaled_min(OVERFLOWS, OVERFLOWS_MIN);
#ifdef SLT_TSAN
	o->children = o->children / TSAN_DIVISOR > OVERFLOWS_MIN ?
	    o->children / TSAN_DIVISOR : OVERFLOWS_MIN;
	print_message("TSan cannot hold %d goroutines: no child goes past "
	    "the guard budget\n", GUARD_BUDGET + 2);
#endif
	memset(o->kinds, 0, sizeof(o->kinds));
	memset(o->wheres, 0, sizeof(o->wheres));
	o->unmarked = o->on_worker = o->asan = 0;
	g_seed = o->run_seed;
	g_procs = o->procs;
	slt_chaos_reset();
	atomic_store(slt_failures(), 0);
	if (!markers)
		print_message("kernel without MADV_GUARD_INSTALL: every child "
		    "runs with mprotect guards\n");
	rs = o->run_seed;
	for (int i = 0; i < o->children; i++) {
		struct ov_plan p;

		draw_plan(o, &rs, &p, markers);
		run_child(o, i, &p);
	}
	printf("chaos_stack overflow seed 0x%" PRIx64 " procs %d: %ld "
	    "children in %.2f s: %ld recursion, %ld vla, %ld alloca, %ld "
	    "half-way, %ld yielding, %ld transient; %ld anywhere, %ld at a "
	    "slab edge, %ld past the guard budget; %ld without markers; %ld "
	    "on the chosen worker; %ld reported by ASan\n", o->run_seed,
	    o->procs, o->children, (double) (sl_now() - t0) / SL_SECOND,
	    o->kinds[0], o->kinds[1], o->kinds[2], o->kinds[3], o->kinds[4],
	    o->kinds[5], o->wheres[0], o->wheres[1], o->wheres[2], o->unmarked,
	    o->on_worker, o->asan);
	fflush(stdout);
	slt_replay_hint("chaos_stack", o->run_seed, o->procs);
	slt_assert_no_failures();
}

static struct conserve conserves[] = {
	{ .procs = 1, .seed = 0xc57a0001 }, { .procs = 1, .seed = 0xc57a0002 },
	{ .procs = 2, .seed = 0xc57a0001 }, { .procs = 2, .seed = 0xc57a0002 },
};

/* Seeds whose draws include a goroutine past the guard budget, without
 * markers, running down to slot 0 of its slab (a stack.c bug was there:
 * slot 0 unguarded let it run on into the records). */
static struct overflow overflows[] = {
	{ .procs = 1, .seed = 0xe14a72b2457b804cULL },
	{ .procs = 2, .seed = 0x908861da45a003d0ULL },
	{ .procs = 2, .seed = 0xca5d6afa68fe57bfULL },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_stack_conserve_1_worker_seed_1", test_conserve,
		    NULL, NULL, &conserves[0] },
		{ "test_chaos_stack_conserve_1_worker_seed_2", test_conserve,
		    NULL, NULL, &conserves[1] },
		{ "test_chaos_stack_conserve_2_workers_seed_1", test_conserve,
		    NULL, NULL, &conserves[2] },
		{ "test_chaos_stack_conserve_2_workers_seed_2", test_conserve,
		    NULL, NULL, &conserves[3] },
		{ "test_chaos_stack_overflow_1_worker_seed_1", test_overflow,
		    NULL, NULL, &overflows[0] },
		{ "test_chaos_stack_overflow_2_workers_seed_1", test_overflow,
		    NULL, NULL, &overflows[1] },
		{ "test_chaos_stack_overflow_2_workers_seed_2", test_overflow,
		    NULL, NULL, &overflows[2] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
