/*
 * test_stack.c — goroutine stacks: the configured size (default, sl_opts,
 * SLUICE_STACK_SIZE) as reported by sl_stack_size(), that a goroutine can
 * use a good part of it, that stacks are pooled (spawning and finishing
 * 10000 goroutines does not grow RSS without bound), and that overflowing
 * a stack kills the process with a "stack overflow" report (in a child).
 */
#include "sltest.h"

#include "sched/sched.h" /* sli_stack_no_markers, sli_stack_guard_budget */

#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLT_ASAN 1
#endif
#endif

/* ---- reported size ------------------------------------------------------- */

static void
body_stack_size(void *arg)
{
	size_t *out = arg;

	*out = sl_stack_size();
}

struct sz {
	size_t       main_sz;
	size_t       child_sz;
	sl_waitgroup wg;
};

static void
child_stack_size(void *arg)
{
	struct sz *s = arg;

	s->child_sz = sl_stack_size();
	sl_waitgroup_done(&s->wg);
}

static void
body_sizes(void *arg)
{
	struct sz *s = arg;

	s->main_sz = sl_stack_size();
	sl_waitgroup_add(&s->wg, 1);
	SL_CHECK_OK(sl_go(child_stack_size, s));
	sl_waitgroup_wait(&s->wg);
}

/* sl_stack_size reports the size from sl_opts, from SLUICE_STACK_SIZE, or
 * the documented default. */
static void
test_stack_size(void **state)
{
	const char *old = getenv("SLUICE_STACK_SIZE");
	char *saved = old != NULL ? strdup(old) : NULL;
	sl_opts o;
	struct sz s;
	size_t got = 0;

	(void) state;
	memset(&o, 0, sizeof(o));
	o.stack_size = 128 * 1024;
	atomic_store(slt_failures(), 0);
	assert_int_equal(sl_main_opts(&o, body_stack_size, &got), 0);
	assert_int_equal(got, 128 * 1024);

	o.stack_size = 512 * 1024;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sl_main_opts(&o, body_sizes, &s), 0);
	assert_int_equal(s.main_sz, 512 * 1024);
	assert_int_equal(s.child_sz, 512 * 1024);
	slt_assert_no_failures();

	/* What is in use: raised to 16 KiB, rounded up to whole pages. */
	o.stack_size = 8192;
	assert_int_equal(sl_main_opts(&o, body_stack_size, &got), 0);
	assert_int_equal(got, 16 * 1024);
	o.stack_size = 100000;
	assert_int_equal(sl_main_opts(&o, body_stack_size, &got), 0);
	assert_int_equal(got, (100000 + sysconf(_SC_PAGESIZE) - 1) /
	    sysconf(_SC_PAGESIZE) * sysconf(_SC_PAGESIZE));

	setenv("SLUICE_STACK_SIZE", "196608", 1);
	slt_run(body_stack_size, &got);
	assert_int_equal(got, 196608);

	unsetenv("SLUICE_STACK_SIZE");
	slt_run(body_stack_size, &got);
#ifdef SLT_ASAN
	assert_int_equal(got, 256 * 1024);
#else
	assert_int_equal(got, 64 * 1024);
#endif
	if (saved != NULL) {
		setenv("SLUICE_STACK_SIZE", saved, 1);
		free(saved);
	}
}

/* ---- using the stack ---------------------------------------------------- */

static volatile int depth_limit = 1 << 30;

/* Recursion that cannot become a loop: a volatile array per frame and
 * work after the call. */
static int __attribute__((noinline))
deep(int n, int stop)
{
	volatile char pad[1024];

	pad[0] = (char) n;
	pad[sizeof(pad) - 1] = (char) (n >> 8);
	if (n >= stop || n >= depth_limit)
		return (pad[0]);
	return (deep(n + 1, stop) + pad[sizeof(pad) - 1] - (char) (n >> 8));
}

struct use {
	int          frames;
	int          result;
	sl_waitgroup wg;
};

static void
use_stack(void *arg)
{
	struct use *u = arg;

	u->result = deep(0, u->frames);
	sl_waitgroup_done(&u->wg);
}

/* A goroutine can use a large part of its stack (a quarter of it here,
 * in 1 KiB frames). */
static void
body_use_stack(void *arg)
{
	struct use u;

	(void) arg;
	memset(&u, 0, sizeof(u));
	u.frames = (int) (sl_stack_size() / 4 / 1024 / 2);
	sl_waitgroup_add(&u.wg, 1);
	SL_CHECK_OK(sl_go(use_stack, &u));
	sl_waitgroup_wait(&u.wg);
	SL_CHECK_EQ(u.result, (char) u.frames);
	/* the main goroutine too */
	SL_CHECK_EQ(deep(0, u.frames), (char) u.frames);
}

static void
test_use_stack(void **state)
{
	sl_opts o;

	(void) state;
	memset(&o, 0, sizeof(o));
	o.stack_size = 256 * 1024;
	atomic_store(slt_failures(), 0);
	assert_int_equal(sl_main_opts(&o, body_use_stack, NULL), 0);
	slt_assert_no_failures();
}

/* ---- pooling ------------------------------------------------------------ */

static void
touch_and_signal(void *arg)
{
	sl_chan *done = arg;
	volatile char buf[8192];

	buf[0] = 1;
	buf[sizeof(buf) - 1] = buf[0];
	SL_CHECK_OK(sl_chan_send(done, NULL));
}

struct pool {
	long n;
	long rss_early;
	long rss_late;
};

/* Spawn, finish, repeat: stacks are reused, so RSS after 10000 goroutines
 * is about what it was after the first 100 (loose bound: 64 MiB). */
static void
body_pool_sequential(void *arg)
{
	struct pool *p = arg;
	sl_chan *done = sl_chan_make(0, 0);

	for (long i = 0; i < p->n; i++) {
		SL_CHECK_OK(sl_go(touch_and_signal, done));
		SL_CHECK_OK(sl_chan_recv(done, NULL));
		if (i == 99)
			p->rss_early = slt_rss_kib();
	}
	p->rss_late = slt_rss_kib();
	while (sl_numgoroutine() > 1)
		sl_yield();
	sl_chan_release(done);
}

static void
test_pool_sequential(void **state)
{
	struct pool p = { slt_scaled_min(10000, 200), 0, 0 };

	(void) state;
	slt_run(body_pool_sequential, &p);
	print_message("rss after 100: %ld KiB, after %ld: %ld KiB\n",
	    p.rss_early, p.n, p.rss_late);
	assert_true(p.rss_early > 0);
	assert_true(p.rss_late - p.rss_early < 64 * 1024);
}

/* Batches of 1000 concurrent goroutines, ten times: after the first batch
 * RSS stays put (loose bound: 128 MiB more than after batch one). */
static void
body_pool_batches(void *arg)
{
	struct pool *p = arg;
	sl_chan *done = sl_chan_make(0, 16);
	long batch = slt_scaled_min(1000, 50);

	for (int b = 0; b < 10; b++) {
		for (long i = 0; i < batch; i++)
			SL_CHECK_OK(sl_go(touch_and_signal, done));
		for (long i = 0; i < batch; i++)
			SL_CHECK_OK(sl_chan_recv(done, NULL));
		while (sl_numgoroutine() > 1)
			sl_yield();
		if (b == 0)
			p->rss_early = slt_rss_kib();
	}
	p->rss_late = slt_rss_kib();
	sl_chan_release(done);
}

static void
test_pool_batches(void **state)
{
	struct pool p = { 0, 0, 0 };

	(void) state;
	slt_run(body_pool_batches, &p);
	print_message("rss after batch 1: %ld KiB, after 10: %ld KiB\n",
	    p.rss_early, p.rss_late);
	assert_true(p.rss_late - p.rss_early < 128 * 1024);
}

/* ---- a stack is first touched by the goroutine's first run ---------------- */

#define LAZY_N 2000

struct lazy {
	long         rss0, rss_spawned, rss_ran;
	sl_waitgroup wg;
};

static void
lazy_child(void *arg)
{
	struct lazy *l = arg;

	sl_waitgroup_done(&l->wg);
}

static void
body_lazy(void *arg)
{
	struct lazy *l = arg;

	l->rss0 = slt_rss_kib();
	sl_waitgroup_add(&l->wg, LAZY_N);
	for (int i = 0; i < LAZY_N; i++)
		SL_CHECK_OK(sl_go(lazy_child, l));
	l->rss_spawned = slt_rss_kib();
	sl_waitgroup_wait(&l->wg);
	l->rss_ran = slt_rss_kib();
}

/* On one worker, 2000 spawns by a goroutine that does not yield cost
 * their records only (under a quarter page each, guards included); the
 * stacks' pages come when the goroutines run, on the worker that runs
 * them, which is what lets several workers take those faults at once. */
static void
test_stack_untouched_until_run(void **state)
{
	struct lazy l = { 0 };
	sl_opts     o;

	(void) state;
	if (slt_under_valgrind()) {
		print_message("RSS under valgrind is valgrind's\n");
		skip();
	}
#ifdef SLT_TSAN
	print_message("TSan makes a fiber per goroutine at spawn\n");
	skip();
#endif
	memset(&o, 0, sizeof(o));
	o.procs = 1;
	atomic_store(slt_failures(), 0);
	assert_int_equal(sl_main_opts(&o, body_lazy, &l), 0);
	slt_assert_no_failures();
	print_message("rss: %ld KiB, %ld after %d spawns, %ld after they ran\n",
	    l.rss0, l.rss_spawned, LAZY_N, l.rss_ran);
	assert_true(l.rss0 > 0);
	assert_true(l.rss_spawned - l.rss0 < LAZY_N * 4 / 4);
	assert_true(l.rss_ran - l.rss0 >= LAZY_N * 3);
}

/* ---- overflow (child process) ------------------------------------------- */

static void
overflow_goroutine(void *arg)
{
	sl_chan *done = arg;

	(void) deep(0, 1 << 30); /* never returns */
	(void) sl_chan_send(done, NULL);
}

static void
body_overflow_spawned(void *arg)
{
	sl_chan *done = sl_chan_make(0, 0);

	(void) arg;
	(void) sl_go(overflow_goroutine, done);
	(void) sl_chan_recv(done, NULL);
	sl_chan_release(done);
}

static void
body_overflow_main(void *arg)
{
	(void) arg;
	(void) deep(0, 1 << 30);
}

struct ov_arg {
	sl_fn body;
	bool  no_markers; /* as on a kernel without guard markers */
};

static void
overflow_child(void *arg)
{
	struct ov_arg *a = arg;
	int rv;

	sli_stack_no_markers = a->no_markers;
	rv = sl_main(a->body, NULL);

	fprintf(stderr, "sl_main returned %s\n", sl_errname(rv));
	_exit(3);
}

static void
expect_overflow(sl_fn body, bool no_markers)
{
	struct ov_arg a = { body, no_markers };
	slt_child res;
	char sbuf[128];

	assert_int_equal(slt_fork(overflow_child, &a, &res), 0);
	if (!WIFSIGNALED(res.status) ||
	    strstr(res.err, "stack overflow") == NULL) {
		print_message("child %s; stderr:\n%s\n",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("expected death by signal with \"stack overflow\"");
	}
	assert_true(WTERMSIG(res.status) == SIGABRT ||
	    WTERMSIG(res.status) == SIGSEGV || WTERMSIG(res.status) == SIGBUS);
}

/* A goroutine recursing without end kills the process with a "stack
 * overflow" report instead of corrupting memory. */
static void
test_overflow_spawned(void **state)
{
	(void) state;
	expect_overflow(body_overflow_spawned, false);
	expect_overflow(body_overflow_spawned, true);
}

/* The same for the main goroutine. */
static void
test_overflow_main(void **state)
{
	(void) state;
	expect_overflow(body_overflow_main, false);
	expect_overflow(body_overflow_main, true);
}

/* ---- a NULL pointer is not a stack overflow (child process) ------------ */

static volatile uintptr_t null_field = 4;

static void
body_null_write(void *arg)
{
	(void) arg;
	fprintf(stderr, "writing in goroutine %llu\n",
	    (unsigned long long) sl_goid());
	/* As a field of a struct behind a NULL pointer (an integer address,
	 * which UBSan does not stop at first, as it does a NULL member; read
	 * from a volatile, so the compiler cannot see it either). */
	*(volatile int *) null_field = 1;
}

static void
body_null_spawn(void *arg)
{
	sl_chan *never = sl_chan_make(0, 0);

	(void) arg;
	SL_CHECK_OK(sl_go(body_null_write, NULL));
	(void) sl_chan_recv(never, NULL);
}

/* The child: without cmocka's crash handler, which would otherwise get
 * the fault (sl_main's handler passes on what is not an overflow). */
static void
null_child(void *arg)
{
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	overflow_child(arg);
}

/* A goroutine that faults elsewhere than on its guard dies of the signal
 * with a line that says what, where, and in which goroutine; not with a
 * stack overflow report, and not in silence. */
static void
test_null_pointer_is_named(void **state)
{
	struct ov_arg      a = { body_null_spawn, false };
	slt_child          res;
	char               sbuf[128], want[160];
	const char        *p;
	unsigned long long id;

	(void) state;
	assert_int_equal(slt_fork(null_child, &a, &res), 0);
	if ((p = strstr(res.err, "writing in goroutine ")) == NULL ||
	    sscanf(p, "writing in goroutine %llu", &id) != 1)
		fail_msg("no goroutine id in the child's stderr:\n%s",
		    res.err);
	assert_true(id > 1);
	if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGSEGV)
		fail_msg("child %s; stderr:\n%s", slt_status_str(res.status,
		    sbuf, sizeof(sbuf)), res.err);
	assert_null(strstr(res.err, "stack overflow"));
#ifdef SLT_ASAN
	/* ASan's handler, installed first, reports it. */
	if (strstr(res.err, "AddressSanitizer: SEGV") != NULL)
		return;
#endif
	snprintf(want, sizeof(want), "sluice: fatal error: SIGSEGV: invalid "
	    "memory access at address 0x4 in goroutine %llu (a NULL "
	    "pointer)\n", id);
	if (strstr(res.err, want) == NULL)
		fail_msg("expected \"%s\" in the child's stderr:\n%s", want,
		    res.err);
}

/* ---- a frame larger than the guard (child process) --------------------- */

/*
 * A function whose frame is bigger than what is left of its stack moves
 * the stack pointer past the guard page in one step.  Unless the compiler
 * probes the frame page by page (-fstack-clash-protection, which meson.build
 * adds to libsluice and to every program built with sluice_dep), its writes
 * land in the stack of another goroutine and nothing notices.  Neighbours
 * are parked around the big frame with marked frames of their own; if the
 * process lived on, each would check its marks when released.
 */
#define NEIGHBOURS 8

static long big_extra; /* the frame is the stack size plus this */

static void
neighbour(void *arg)
{
	volatile uint64_t mark[64];

	for (int i = 0; i < 64; i++)
		mark[i] = 0x6e656967686272ULL + (uint64_t) i;
	(void) sl_chan_recv(arg, NULL);
	for (int i = 0; i < 64; i++)
		if (mark[i] != 0x6e656967686272ULL + (uint64_t) i) {
			fprintf(stderr, "neighbour %llu corrupted\n",
			    (unsigned long long) sl_goid());
			break;
		}
}

static void __attribute__((noinline))
big_frame(size_t n)
{
	char buf[n];

	/* Write its lowest part, as a read() into a local buffer would. */
	memset(buf, 0x55, 512);
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static void
big_goroutine(void *arg)
{
	(void) arg;
	fprintf(stderr, "big frame in goroutine %llu\n",
	    (unsigned long long) sl_goid());
	big_frame(sl_stack_size() + (size_t) big_extra);
	fprintf(stderr, "big frame returned\n");
}

static void
body_big_frame(void *arg)
{
	sl_chan     *gate = sl_chan_make(0, 0);
	sl_waitgroup wg;

	(void) arg;
	memset(&wg, 0, sizeof(wg));
	/* Neighbours on both sides of the big goroutine's slot, whichever
	 * order stack.c hands slots out in. */
	for (int i = 0; i < NEIGHBOURS; i++) {
		if (i == NEIGHBOURS / 2) {
			sl_waitgroup_add(&wg, 1);
			(void) sl_go(big_goroutine, NULL);
		}
		(void) sl_go(neighbour, gate);
	}
	sl_sleep(50 * 1000 * 1000);
	sl_chan_close(gate);
	sl_sleep(50 * 1000 * 1000);
	fprintf(stderr, "process lived on\n");
}

static void
expect_big_frame_overflow(long extra, bool no_markers)
{
	struct ov_arg      a = { body_big_frame, no_markers };
	slt_child          res;
	char               sbuf[128], want[96];
	const char        *p;
	unsigned long long id;

	big_extra = extra;
	assert_int_equal(slt_fork(overflow_child, &a, &res), 0);
	if ((p = strstr(res.err, "big frame in goroutine ")) == NULL ||
	    sscanf(p, "big frame in goroutine %llu", &id) != 1)
		fail_msg("no goroutine id in the child's stderr:\n%s",
		    res.err);
	snprintf(want, sizeof(want), "stack overflow in goroutine %llu ",
	    id);
	if (!WIFSIGNALED(res.status) || strstr(res.err, want) == NULL ||
	    strstr(res.err, "corrupted") != NULL) {
		print_message("frame of stack size + %ld bytes: child %s; "
		    "stderr:\n%s\n", extra,
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("expected death by signal with \"%s\"", want);
	}
}

/* A frame that ends inside the guard page, one that ends just past it
 * (in the top page of the stack below, where a parked goroutine keeps its
 * frames) and one that ends far below: each is reported as a stack
 * overflow of the goroutine that made it, none runs on over another
 * goroutine's stack. */
static void
test_overflow_big_frame(void **state)
{
	long pg = sysconf(_SC_PAGESIZE);
	long extra[] = { pg / 2, pg + 2048, 2 * pg + 512, 16 * pg,
	    (long) sl_stack_size() };

	(void) state;
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		expect_big_frame_overflow(extra[i], false);
		expect_big_frame_overflow(extra[i], true);
	}
}

/* ---- overflow past the first 8192 stacks ---------------------------------- */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* More stacks than stack.c gives guard pages by mprotect, where the
 * kernel has no guard markers: with markers, every stack has its guard. */
static int many_parked;

static void
parked(void *arg)
{
	(void) sl_chan_recv(arg, NULL);
}

static void
overflow_named(void *arg)
{
	(void) arg;
	fprintf(stderr, "overflowing goroutine %llu\n",
	    (unsigned long long) sl_goid());
	(void) deep(0, 1 << 30); /* never returns */
}

static void
body_overflow_after_many(void *arg)
{
	sl_chan *gate = sl_chan_make(0, 0);
	sl_chan *never = sl_chan_make(0, 0);

	(void) arg;
	for (int i = 0; i < many_parked; i++)
		(void) sl_go(parked, gate);
	(void) sl_go(overflow_named, NULL);
	(void) sl_chan_recv(never, NULL);
}

static bool
have_guard_markers(void)
{
	long  pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t) pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool  ok;

	if (p == MAP_FAILED)
		return (false);
	ok = madvise(p, (size_t) pg, MADV_GUARD_INSTALL) == 0;
	munmap(p, (size_t) pg);
	return (ok);
}

static void
expect_named_overflow_after_many(bool no_markers)
{
	struct ov_arg      a = { body_overflow_after_many, no_markers };
	slt_child          res;
	char               sbuf[128], want[96];
	const char        *p;
	unsigned long long id;

	assert_int_equal(slt_fork(overflow_child, &a, &res), 0);
	if ((p = strstr(res.err, "overflowing goroutine ")) == NULL ||
	    sscanf(p, "overflowing goroutine %llu", &id) != 1)
		fail_msg("no goroutine id in the child's stderr:\n%s",
		    res.err);
	assert_true(id > (unsigned long long) many_parked);
#ifdef SLT_ASAN
	/* Running down into the frames of the goroutines parked below,
	 * which ASan keeps poisoned, is reported by ASan first: as an
	 * underflow or an overflow, by which redzone of which local the
	 * first write lands in (that moves with the frames' layout). */
	if (no_markers && (strstr(res.err, "AddressSanitizer: "
	    "stack-buffer-underflow") != NULL || strstr(res.err,
	    "AddressSanitizer: stack-buffer-overflow") != NULL))
		return;
#endif
	snprintf(want, sizeof(want), "stack overflow in goroutine %llu ",
	    id);
	if (!WIFSIGNALED(res.status) || strstr(res.err, want) == NULL) {
		print_message("%s: child %s; stderr:\n%s\n", no_markers ?
		    "mprotect guards" : "guard markers",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("expected death by signal with \"%s\"", want);
	}
}

/* A goroutine recursing without end, its stack in a slab far from the
 * first: the report names stack overflow and that very goroutine.  With
 * guard markers its own guard stops it.  Without them (an older kernel)
 * stacks past the first sli_stack_guard_budget() have canaries only, and it runs
 * down through the stacks below until something faults; the report must
 * still name it, not the owner of the guard it ran into. */
static void
test_overflow_after_many(void **state)
{
	(void) state;
#ifdef SLT_TSAN
	/* Every goroutine is a TSan fiber, and TSan dies past 8128. */
	print_message("TSan cannot hold that many goroutines\n");
	skip();
#endif
	many_parked = (int) sli_stack_guard_budget() + 800;
	if (many_parked <= 40000)
		expect_named_overflow_after_many(true);
	else
		print_message("vm.max_map_count is raised here: %d goroutines "
		    "are too many for the case without markers\n",
		    many_parked);
	many_parked = 9000;
	if (!have_guard_markers()) {
		print_message("kernel without MADV_GUARD_INSTALL: the case "
		    "with markers cannot run\n");
		return;
	}
	expect_named_overflow_after_many(false);
}

/* ---- mprotect guards: as many as vm.max_map_count allows ---------------- */

/* One-page mappings with no access: the guards of the stacks, and those
 * of thread stacks. */
static long
count_guard_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char  line[512];
	long  pg = sysconf(_SC_PAGESIZE), n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char          perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
		    strcmp(perms, "---p") == 0 && hi - lo == (unsigned long) pg)
			n++;
	}
	fclose(f);
	return (n);
}

struct budget {
	int          extra;  /* goroutines past the budget */
	long         before; /* guard mappings before them */
	long         after;  /* ... while they are parked */
	sl_waitgroup wg;
};

static void
budget_parked(void *arg)
{
	void **a = arg;

	sl_waitgroup_done(a[1]);
	(void) sl_chan_recv(a[0], NULL);
}

static void
body_budget(void *arg)
{
	struct budget *b = arg;
	sl_chan       *gate = sl_chan_make(0, 0);
	void          *a[2] = { gate, &b->wg };
	long           n = sli_stack_guard_budget() + b->extra;

	b->before = count_guard_mappings();
	for (long i = 0; i < n; i++) {
		sl_waitgroup_add(&b->wg, 1);
		SL_CHECK_OK(sl_go(budget_parked, a));
	}
	sl_waitgroup_wait(&b->wg);
	b->after = count_guard_mappings();
	sl_chan_close(gate);
	sl_chan_release(gate);
}

/* Without guard markers, the first sli_stack_guard_budget() stacks (an
 * eighth of vm.max_map_count: each guard costs two mappings) get a
 * PROT_NONE guard page, and after them only the first stack of each slab
 * of 256 (where a runaway overflow from the unguarded stacks above it
 * stops): the main goroutine's and the budget's worth of parked ones,
 * then 300 more. */
static void
test_mprotect_guard_budget(void **state)
{
	struct budget b;
	long          budget = sli_stack_guard_budget();

	(void) state;
#ifdef SLT_TSAN
	print_message("TSan cannot hold that many goroutines\n");
	skip();
#endif
	if (budget > 40000) {
		print_message("vm.max_map_count is raised here: %ld guards are "
		    "too many for a test\n", budget);
		skip();
	}
	memset(&b, 0, sizeof(b));
	b.extra = 300;
	sli_stack_no_markers = true;
	slt_run_procs(2, body_budget, &b);
	sli_stack_no_markers = false;
	/* The main goroutine's stack (slot 0) was guarded before the count;
	 * slots 1 to budget + 300 are the parked ones. */
	long want = budget - 1;
	for (long k = budget; k <= budget + b.extra; k++)
		want += k % 256 == 0;
	assert_true(want > budget - 1); /* the test covers a forced one */
	assert_int_equal(b.after - b.before, want);
}

/* ---- running out of address space ---------------------------------------- */

static void
as_parked(void *arg)
{
	void **a = arg;

	(void) sl_chan_recv(a[0], NULL);
	sl_waitgroup_done(a[1]);
}

/* Parks up to max goroutines on a fresh gate, stopping early if sl_go
 * fails, then lets them end and waits for them.  Returns how many
 * started; *err is what sl_go last returned. */
static long
park_upto(long max, int *err)
{
	sl_chan      *gate = sl_chan_make(0, 0);
	sl_waitgroup  wg;
	void         *a[2] = { gate, &wg };
	long          n = 0;

	memset(&wg, 0, sizeof(wg));
	*err = SL_OK;
	while (n < max) {
		sl_waitgroup_add(&wg, 1);
		if ((*err = sl_go(as_parked, a)) != SL_OK) {
			sl_waitgroup_done(&wg);
			break;
		}
		n++;
	}
	sl_chan_close(gate);
	sl_waitgroup_wait(&wg);
	sl_chan_release(gate);
	return (n);
}

/* park_upto with no bound: it must stop at SL_ENOMEM. */
static long
park_until_full(void)
{
	int  err;
	long n = park_upto(LONG_MAX, &err);

	SL_CHECK_ERR(err, SL_ENOMEM);
	return (n);
}

struct churn {
	atomic_bool  stop;
	atomic_long  made;   /* goroutines it started */
	sl_waitgroup wg;     /* they and it */
};

static void
churn_short(void *arg)
{
	sl_waitgroup_done(arg);
}

/* Starts goroutines that end at once, on whichever worker runs it: their
 * stacks go round that worker's cache while another spawns. */
static void
churner(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		sl_waitgroup_add(&c->wg, 1);
		if (sl_go(churn_short, &c->wg) != SL_OK)
			sl_waitgroup_done(&c->wg);
		else
			atomic_fetch_add(&c->made, 1);
		sl_yield();
	}
	sl_waitgroup_done(&c->wg);
}

struct reclaim {
	long first, during[3], last;
	long churned;
};

static void
body_reclaim(void *arg)
{
	struct reclaim *r = arg;

	r->first = park_until_full();
	for (int i = 0; i < 3; i++) {
		struct churn c;

		memset(&c, 0, sizeof(c));
		sl_waitgroup_add(&c.wg, 1);
		SL_CHECK_OK(sl_go(churner, &c));
		r->during[i] = park_until_full();
		atomic_store(&c.stop, true);
		sl_waitgroup_wait(&c.wg);
		r->churned += atomic_load(&c.made);
	}
	/* The churner and its goroutines call done just before they end:
	 * their stacks are back once they are not counted (sch_g_exit). */
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	r->last = park_until_full();
}

/* Stacks freed on one worker wait in its own cache.  A spawner that finds
 * no room for a new slab takes them from every worker's cache before
 * sl_go reports SL_ENOMEM, so the limit is the same each time, while
 * other workers use their caches at the same moment.  The slab limit is a
 * white-box stand-in for the address space running out, so this runs
 * under the sanitizers and valgrind too; test_address_space_limit below
 * does the same with a real RLIMIT_AS. */
static void
test_cache_reclaim(void **state)
{
	struct reclaim r;

	(void) state;
	memset(&r, 0, sizeof(r));
	sli_stack_max_slabs = 3;
	slt_run_procs(2, body_reclaim, &r);
	sli_stack_max_slabs = 0;
	print_message("%ld, %ld %ld %ld while %ld others came and went, "
	    "%ld\n", r.first, r.during[0], r.during[1], r.during[2],
	    r.churned, r.last);
	/* Three slabs of 256 stacks, one of them the main goroutine's. */
	assert_int_equal(r.first, 3 * 256 - 1);
	for (int i = 0; i < 3; i++)
		assert_true(r.during[i] > 0 && r.during[i] <= r.first - 1);
	assert_int_equal(r.last, r.first);
}


#define AS_SLABS 24 /* room left under RLIMIT_AS, in slabs of stacks */

struct as_limit {
	long         spawned; /* before sl_go failed */
	int          err;     /* what it returned */
	long         again;   /* spawned after the first ones ended */
};

static long
vm_size_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char  line[256];
	long  kib = -1;

	if (f == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return (kib < 0 ? -1 : kib * 1024);
}

static void
body_as_limit(void *arg)
{
	struct as_limit *r = arg;
	long             slab = 256 * (long) sl_stack_size();
	long             vm = vm_size_bytes();
	struct rlimit    rl;
	int              err;

	rl.rlim_cur = rl.rlim_max = (rlim_t) (vm + AS_SLABS * slab);
	if (vm < 0 || setrlimit(RLIMIT_AS, &rl) != 0) {
		r->err = -1;
		return;
	}
	r->spawned = park_upto(LONG_MAX, &r->err);
	/* Their stacks are free again: as many can park as before. */
	r->again = park_upto(r->spawned, &err);
}

static void
as_limit_child(void *arg)
{
	struct as_limit r;
	sl_opts         o;
	int             rv;

	(void) arg;
	memset(&r, 0, sizeof(r));
	memset(&o, 0, sizeof(o));
	o.stack_size = 16 * 1024;
	o.procs = 2;
	rv = sl_main_opts(&o, body_as_limit, &r);
	fprintf(stderr, "sl_main %s spawned %ld err %s again %ld\n",
	    sl_errname(rv), r.spawned, r.err < 0 ? "setup" :
	    sl_errname(r.err), r.again);
}

/* Stacks are carved from address space reserved for several slabs at a
 * time (fewer mmap calls while goroutines start).  Under an RLIMIT_AS
 * that refuses the next reservation, slabs are asked for one at a time:
 * goroutines start until the limit is truly reached, then sl_go reports
 * SL_ENOMEM, and the program goes on: once they end, exactly as many
 * start again.  Without that fallback they stopped at 15 slabs of the
 * 24 (the next reservation asks for 16). */
static void
test_address_space_limit(void **state)
{
	slt_child res;
	char      sbuf[128], err[32];
	long      spawned = -1, again = -1;
	char      rv[32];
	const char *line;

	(void) state;
#if defined(SLT_ASAN) || defined(SLT_TSAN)
	print_message("sanitizers reserve terabytes of shadow memory: no "
	    "RLIMIT_AS under them\n");
	skip();
#endif
	if (slt_under_valgrind()) {
		print_message("valgrind manages the address space itself\n");
		skip();
	}
	assert_int_equal(slt_fork(as_limit_child, NULL, &res), 0);
	if ((line = strstr(res.err, "sl_main ")) == NULL ||
	    sscanf(line, "sl_main %31s spawned %ld err %31s again %ld", rv,
	    &spawned, err, &again) != 4)
		spawned = -1;
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0 ||
	    spawned < 0)
		fail_msg("child %s, stderr:\n%s",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
	assert_string_equal(rv, "SL_OK");
	assert_string_equal(err, "SL_ENOMEM");
	/* The main goroutine's slab was made before the limit, which
	 * leaves room for AS_SLABS more, less what malloc and the records
	 * of each slab take. */
	print_message("%ld goroutines started under the limit\n", spawned);
	assert_true(spawned >= (AS_SLABS - 3) * 256);
	assert_true(spawned <= (AS_SLABS + 1) * 256);
	/* Every stack is free again, wherever it waits: the other worker
	 * keeps up to 64 in its own cache (stack.c), and a spawner out of
	 * address space takes them from there before it gives up. */
	print_message("%ld again once they ended\n", again);
	assert_int_equal(again, spawned);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stack_size),
		cmocka_unit_test(test_use_stack),
		cmocka_unit_test(test_pool_sequential),
		cmocka_unit_test(test_pool_batches),
		cmocka_unit_test(test_stack_untouched_until_run),
		cmocka_unit_test(test_overflow_spawned),
		cmocka_unit_test(test_overflow_main),
		cmocka_unit_test(test_null_pointer_is_named),
		cmocka_unit_test(test_overflow_big_frame),
		cmocka_unit_test(test_overflow_after_many),
		cmocka_unit_test(test_mprotect_guard_budget),
		cmocka_unit_test(test_cache_reclaim),
		cmocka_unit_test(test_address_space_limit),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
