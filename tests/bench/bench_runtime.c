/*
 * bench_runtime.c — runtime micro-benchmarks of libsluice, the C half of
 * the sluice-versus-Go comparison (the Go half is go/bench_runtime.go and
 * does exactly the same work; tests/bench/run.sh runs both).
 *
 * Usage: bench_runtime CASE [N]
 *
 *	chan      (a) buffered channel (cap 1024) of int64, one goroutine
 *	              sends N, another receives: ns/message
 *	pingpong  (b) unbuffered ping-pong between two goroutines: ns/round trip
 *	spawn     (c) N goroutines (default 100000) each block receiving on one
 *	              channel, which is then closed; a WaitGroup waits for all:
 *	              total time, us/goroutine, RSS/parked goroutine
 *	spawnwarm (c') the same, measuring a second round in the process
 *	              (stacks cached by the first): the runtime's own cost
 *	select    (d) select over 4 channels, exactly one ready (a prefilled
 *	              buffered channel): ns/select
 *	selectfed (d') the same, the ready channel kept fed by a sender
 *	              goroutine: ns/select
 *	million   (e) spawn with N = 1000000
 *	pipe      (f) ping-pong of one byte between two goroutines over two
 *	              non-blocking pipes (sl_read, sl_write: each read
 *	              parks on the poller): ns/round trip
 *	blocking  (g) one goroutine makes N blocking calls one after another,
 *	              each a 64-byte pread of a small file through
 *	              sl_blocking (Go: File.ReadAt, a blocking system call
 *	              that Go makes on the goroutine's own thread): ns/call
 *	blocking4 (g') the same calls made by 4 goroutines at once, N in
 *	              all: wall ns/call (with 2 workers at most one call
 *	              runs inline, the others go to the pool)
 *	fault     no goroutines: maps N pages (default 100000) and writes one
 *	              byte to each: us/page, what a first-touch page fault
 *	              costs on this machine.  Every cold goroutine of (c)
 *	              takes one such fault (the top page of its stack).
 *	              Then the same with one thread per worker writing at
 *	              once (wall time per page): the floor under (c) for
 *	              any runtime that gives each goroutine a private stack
 *	              page.  Also the pages filled in one
 *	              madvise(MADV_POPULATE_WRITE), and the first write to
 *	              each after that: what fresh memory costs with no
 *	              fault per page, and whether a trap per page remains.
 *	              Last, where the kernel has guard markers, what
 *	              installing one under each fresh stack costs, batched
 *	              as the runtime does it: us/stack.
 *
 * One case per process, so that RSS deltas are not hidden by stacks cached
 * from an earlier round.  The timed cases (a, b, d) run a warm-up round
 * first.  Output is one line per metric:
 *
 *	RESULT <case> <metric> <value>
 *
 * and a line "INFO procs <n>" with the number of worker threads.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sluice/chan.h"
#include "sluice/error.h"
#include "sluice/fd.h"
#include "sluice/runtime.h"
#include "sluice/sync.h"

struct bench {
	const char *name;
	long        n;
	int         rc;
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Resident set size of this process, in bytes (from /proc/self/statm). */
static long
rss_bytes(void)
{
	FILE *f;
	long size, res;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return (-1);
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return (res < 0 ? -1 : res * sysconf(_SC_PAGESIZE));
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "bench_runtime: %s: %s\n", what, sl_strerror(err));
	exit(1);
}

static void
result(const char *name, const char *metric, double v)
{
	printf("RESULT %s %s %.3f\n", name, metric, v);
}

/* ---- (a) buffered channel ---------------------------------------------- */

struct pair {
	sl_chan      *a, *b;
	long          n;
	sl_waitgroup  wg; /* the helper goroutine has returned */
};

static void
sender(void *arg)
{
	struct pair *p = arg;
	int64_t v;

	for (v = 0; v < p->n; v++)
		if (sl_chan_send(p->a, &v) != 0)
			die("send", SL_ECLOSED);
	sl_waitgroup_done(&p->wg);
}

static double
chan_round(long n)
{
	struct pair p = { 0 };
	int64_t t0, v, sum = 0;
	long i;
	int err;

	p.a = sl_chan_make(sizeof(int64_t), 1024);
	p.n = n;
	if (p.a == NULL)
		die("sl_chan_make", SL_ENOMEM);
	t0 = now_ns();
	sl_waitgroup_add(&p.wg, 1);
	if ((err = sl_go(sender, &p)) != 0)
		die("sl_go", err);
	for (i = 0; i < n; i++) {
		if ((err = sl_chan_recv(p.a, &v)) != 0)
			die("recv", err);
		sum += v;
	}
	t0 = now_ns() - t0;
	if (sum != (int64_t) n * (n - 1) / 2)
		die("chan: wrong sum", SL_EPROTO);
	sl_waitgroup_wait(&p.wg);
	sl_chan_release(p.a);
	return ((double) t0 / (double) n);
}

static void
bench_chan(struct bench *b)
{
	chan_round(b->n / 10);
	result(b->name, "ns_per_msg", chan_round(b->n));
}

/* ---- (b) unbuffered ping-pong ------------------------------------------ */

static void
echo(void *arg)
{
	struct pair *p = arg;
	int64_t v;

	while (sl_chan_recv(p->a, &v) == 0)
		if (sl_chan_send(p->b, &v) != 0)
			die("pong", SL_ECLOSED);
	sl_waitgroup_done(&p->wg);
}

static double
pingpong_round(long n)
{
	struct pair p = { 0 };
	int64_t t0, v;
	long i;
	int err;

	p.a = sl_chan_make(sizeof(int64_t), 0);
	p.b = sl_chan_make(sizeof(int64_t), 0);
	if (p.a == NULL || p.b == NULL)
		die("sl_chan_make", SL_ENOMEM);
	sl_waitgroup_add(&p.wg, 1);
	if ((err = sl_go(echo, &p)) != 0)
		die("sl_go", err);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		v = i;
		if ((err = sl_chan_send(p.a, &v)) != 0)
			die("ping", err);
		if ((err = sl_chan_recv(p.b, &v)) != 0 || v != i)
			die("pong recv", err != 0 ? err : SL_EPROTO);
	}
	t0 = now_ns() - t0;
	sl_chan_close(p.a);
	sl_waitgroup_wait(&p.wg);
	sl_chan_release(p.a);
	sl_chan_release(p.b);
	return ((double) t0 / (double) n);
}

static void
bench_pingpong(struct bench *b)
{
	pingpong_round(b->n / 10);
	result(b->name, "ns_per_roundtrip", pingpong_round(b->n));
}

/* ---- (c) and (e) parked goroutines ------------------------------------ */

struct park {
	sl_chan      *gate;
	sl_waitgroup  started;
	sl_waitgroup  done;
};

static void
parker(void *arg)
{
	struct park *pk = arg;

	sl_waitgroup_done(&pk->started);
	if (sl_chan_recv(pk->gate, NULL) != SL_ECLOSED)
		die("parker: recv did not report close", SL_EPROTO);
	sl_waitgroup_done(&pk->done);
}

/* One round; prints its metrics unless quiet. */
static void
spawn_round(struct bench *b, bool quiet)
{
	struct park pk = { 0 };
	int64_t t0, t1, t2;
	long rss0, rss1, i;
	int err;

	pk.gate = sl_chan_make(0, 0);
	if (pk.gate == NULL)
		die("sl_chan_make", SL_ENOMEM);
	rss0 = rss_bytes();
	t0 = now_ns();
	sl_waitgroup_add(&pk.started, b->n);
	sl_waitgroup_add(&pk.done, b->n);
	for (i = 0; i < b->n; i++) {
		if ((err = sl_go(parker, &pk)) != 0) {
			fprintf(stderr, "bench_runtime: sl_go failed after "
			    "%ld goroutines: %s\n", i, sl_strerror(err));
			result(b->name, "spawned", (double) i);
			result(b->name, "ok", 0);
			exit(1);
		}
	}
	sl_waitgroup_wait(&pk.started);
	t1 = now_ns();
	rss1 = rss_bytes();
	sl_chan_close(pk.gate);
	sl_waitgroup_wait(&pk.done);
	t2 = now_ns();
	sl_chan_release(pk.gate);

	if (quiet)
		return;
	result(b->name, "goroutines", (double) b->n);
	result(b->name, "total_ms", (double) (t2 - t0) / 1e6);
	result(b->name, "us_per_goroutine", (double) (t2 - t0) / 1e3 /
	    (double) b->n);
	result(b->name, "spawn_park_ms", (double) (t1 - t0) / 1e6);
	result(b->name, "release_ms", (double) (t2 - t1) / 1e6);
	result(b->name, "rss_kib_per_goroutine",
	    (double) (rss1 - rss0) / 1024.0 / (double) b->n);
	result(b->name, "rss_parked_mib", (double) rss1 / 1048576.0);
	result(b->name, "ok", 1);
}

static void
bench_spawn(struct bench *b)
{
	spawn_round(b, false);
}

/* (c) again after a first round, with the stacks of that round cached:
 * the runtime's own cost, without first-touch page faults. */
static void
bench_spawnwarm(struct bench *b)
{
	spawn_round(b, true);
	spawn_round(b, false);
}

/* ---- (d) select, one of four ready ------------------------------------- */

#define SEL_CHUNK 1024

static double
select_round(long n)
{
	sl_chan *ch[4];
	sl_case cs[4];
	int64_t v, t, total = 0;
	long i, j, done;
	int k, chosen, err;

	for (k = 0; k < 4; k++)
		if ((ch[k] = sl_chan_make(sizeof(int64_t), SEL_CHUNK)) == NULL)
			die("sl_chan_make", SL_ENOMEM);
	for (k = 0; k < 4; k++)
		cs[k] = SL_CASE_RECV(ch[k], &v);
	for (done = 0; done < n; done += SEL_CHUNK) {
		/* Refill the one ready channel (index 2), untimed. */
		for (j = 0; j < SEL_CHUNK; j++)
			if (sl_chan_trysend(ch[2], &j) != 0)
				die("trysend", SL_EAGAIN);
		t = now_ns();
		for (i = 0; i < SEL_CHUNK; i++) {
			err = sl_select(cs, 4, NULL, SL_FOREVER, &chosen);
			if (err != 0 || chosen != 2 || v != i)
				die("select", err != 0 ? err : SL_EPROTO);
		}
		total += now_ns() - t;
	}
	for (k = 0; k < 4; k++)
		sl_chan_release(ch[k]);
	return ((double) total / (double) done);
}

static void
bench_select(struct bench *b)
{
	select_round(b->n / 10);
	result(b->name, "ns_per_select", select_round(b->n));
}

static double
selectfed_round(long n)
{
	struct pair p = { 0 };
	sl_chan *ch[4];
	sl_case cs[4];
	int64_t v, t0, sum = 0;
	long i;
	int k, chosen, err;

	for (k = 0; k < 4; k++)
		if ((ch[k] = sl_chan_make(sizeof(int64_t), SEL_CHUNK)) == NULL)
			die("sl_chan_make", SL_ENOMEM);
	for (k = 0; k < 4; k++)
		cs[k] = SL_CASE_RECV(ch[k], &v);
	p.a = ch[2];
	p.n = n;
	t0 = now_ns();
	sl_waitgroup_add(&p.wg, 1);
	if ((err = sl_go(sender, &p)) != 0)
		die("sl_go", err);
	for (i = 0; i < n; i++) {
		err = sl_select(cs, 4, NULL, SL_FOREVER, &chosen);
		if (err != 0 || chosen != 2)
			die("select", err != 0 ? err : SL_EPROTO);
		sum += v;
	}
	t0 = now_ns() - t0;
	if (sum != (int64_t) n * (n - 1) / 2)
		die("selectfed: wrong sum", SL_EPROTO);
	sl_waitgroup_wait(&p.wg);
	for (k = 0; k < 4; k++)
		sl_chan_release(ch[k]);
	return ((double) t0 / (double) n);
}

static void
bench_selectfed(struct bench *b)
{
	selectfed_round(b->n / 10);
	result(b->name, "ns_per_select", selectfed_round(b->n));
}

/* ---- the machine's page fault cost ------------------------------------- */

struct toucher {
	char      *p;
	size_t     pg;
	int        k, nt;
	long       n;
	pthread_t  thread;
};

/* Writes one byte to pages k, k + nt, k + 2nt, ... */
static void *
touch_pages(void *arg)
{
	struct toucher *t = arg;

	for (long i = t->k; i < t->n; i += t->nt)
		((volatile char *) t->p)[(size_t) i * t->pg] = 1;
	return (NULL);
}

/*
 * What the runtime pays per fresh stack besides its fault: a guard
 * marker (MADV_GUARD_INSTALL, Linux 6.13) on the page under each stack,
 * SLAB_GUARDS of them per process_madvise call, stacks the runtime's
 * stack size apart, as framework/src/sched/stack.c installs them.
 * Silent where the kernel has no markers (the runtime then guards only
 * the first 8192 stacks, with mprotect).
 */
#define SLAB_GUARDS 256

static void
bench_guards(struct bench *b, size_t pg)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
	long         nslabs = b->n / SLAB_GUARDS;
	size_t       stride = (sl_stack_size() + pg - 1) & ~(pg - 1);
	size_t       len = SLAB_GUARDS * stride;
	struct iovec iov[SLAB_GUARDS];
	int64_t      spent = 0;
	int          pidfd;

	if (nslabs < 1 ||
	    (pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0)) < 0)
		return;
	for (long s = 0; s < nslabs; s++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		int64_t t0;
		long    rv;

		if (p == MAP_FAILED)
			die("mmap", SL_ENOMEM);
		for (int i = 0; i < SLAB_GUARDS; i++) {
			iov[i].iov_base = p + (size_t) i * stride;
			iov[i].iov_len = pg;
		}
		t0 = now_ns();
		rv = syscall(SYS_process_madvise, pidfd, iov, SLAB_GUARDS,
		    102 /* MADV_GUARD_INSTALL */, 0);
		spent += now_ns() - t0;
		munmap(p, len);
		if (rv != (long) (SLAB_GUARDS * pg)) {
			close(pidfd);
			return; /* no markers here */
		}
	}
	close(pidfd);
	result(b->name, "guard_us_per_stack",
	    (double) spent / 1e3 / (double) (nslabs * SLAB_GUARDS));
#else
	(void) b;
	(void) pg;
#endif
}

static void
bench_fault(struct bench *b)
{
	long    pg = sysconf(_SC_PAGESIZE);
	size_t  len = (size_t) b->n * (size_t) pg;
	char   *p;
	int64_t t0;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap", SL_ENOMEM);
	t0 = now_ns();
	for (long i = 0; i < b->n; i++)
		((volatile char *) p)[(size_t) i * (size_t) pg] = 1;
	t0 = now_ns() - t0;
	munmap(p, len);
	result(b->name, "us_per_page", (double) t0 / 1e3 / (double) b->n);

	/* The same from one thread per worker at once, as the workers take
	 * the faults of fresh goroutine stacks (interleaved pages of one
	 * mapping). */
	struct toucher tt[64];
	int            nt = sl_procs() < 64 ? sl_procs() : 64;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap", SL_ENOMEM);
	t0 = now_ns();
	for (int k = 0; k < nt; k++) {
		tt[k] = (struct toucher) { .p = p, .pg = (size_t) pg, .k = k,
		    .nt = nt, .n = b->n };
		if (pthread_create(&tt[k].thread, NULL, touch_pages,
		    &tt[k]) != 0)
			die("pthread_create", SL_ENOMEM);
	}
	for (int k = 0; k < nt; k++)
		pthread_join(tt[k].thread, NULL);
	t0 = now_ns() - t0;
	munmap(p, len);
	result(b->name, "parallel_us_per_page",
	    (double) t0 / 1e3 / (double) b->n);

	/* The same pages filled by the kernel in one call, with no trap per
	 * page: what fresh memory costs however a runtime asks for it. */
#ifdef MADV_POPULATE_WRITE
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap", SL_ENOMEM);
	t0 = now_ns();
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0) {
		int64_t t1 = now_ns();

		result(b->name, "populate_us_per_page",
		    (double) (t1 - t0) / 1e3 / (double) b->n);
		/* Where the hypervisor maps guest pages lazily (shadow
		 * paging), the first touch after the kernel filled a page
		 * still traps: the bulk fill only pays if this is cheap. */
		for (long i = 0; i < b->n; i++)
			((volatile char *) p)[(size_t) i * (size_t) pg] = 1;
		result(b->name, "touch_after_populate_us_per_page",
		    (double) (now_ns() - t1) / 1e3 / (double) b->n);
	}
	munmap(p, len);
#endif
	bench_guards(b, (size_t) pg);
}

/* ---- (f) ping-pong over pipes ------------------------------------------ */

struct pipes {
	int          ping[2];
	int          pong[2];
	sl_waitgroup wg;
};

static void
pipe_echo(void *arg)
{
	struct pipes *p = arg;
	char c;
	size_t n;
	int err;

	while ((err = sl_read(p->ping[0], &c, 1, &n, NULL, SL_FOREVER)) == 0
	    && n == 1)
		if ((err = sl_write(p->pong[1], &c, 1, NULL, NULL,
		    SL_FOREVER)) != 0)
			die("pipe pong", err);
	if (err != 0)
		die("pipe echo read", err);
	sl_waitgroup_done(&p->wg);
}

static double
pipe_round(long n)
{
	struct pipes p = { 0 };
	int64_t t0;
	size_t got;
	int err;

	if (pipe2(p.ping, O_NONBLOCK) != 0 || pipe2(p.pong, O_NONBLOCK) != 0)
		die("pipe2", SL_ESYSTEM);
	sl_waitgroup_add(&p.wg, 1);
	if ((err = sl_go(pipe_echo, &p)) != 0)
		die("sl_go", err);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		char c = (char) i, back;

		if ((err = sl_write(p.ping[1], &c, 1, NULL, NULL,
		    SL_FOREVER)) != 0)
			die("pipe ping", err);
		if ((err = sl_read(p.pong[0], &back, 1, &got, NULL,
		    SL_FOREVER)) != 0 || got != 1 || back != c)
			die("pipe pong read", err != 0 ? err : SL_EPROTO);
	}
	t0 = now_ns() - t0;
	close(p.ping[1]); /* end of file for the echo */
	sl_waitgroup_wait(&p.wg);
	close(p.ping[0]);
	close(p.pong[0]);
	close(p.pong[1]);
	return ((double) t0 / (double) n);
}

static void
bench_pipe(struct bench *b)
{
	pipe_round(b->n / 10);
	result(b->name, "ns_per_roundtrip", pipe_round(b->n));
}

/* ---- (g) blocking calls --------------------------------------------------- */

static int blocking_fd = -1;

static void
blocking_pread(void *arg)
{
	char buf[64];

	if (pread(blocking_fd, buf, sizeof(buf), 0) != (ssize_t) sizeof(buf))
		*(int *) arg = 1;
}

static double
blocking_round(long n)
{
	int64_t t0;
	int     bad = 0, err;

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if ((err = sl_blocking(blocking_pread, &bad)) != 0)
			die("sl_blocking", err);
	t0 = now_ns() - t0;
	if (bad)
		die("pread", SL_ESYSTEM);
	return ((double) t0 / (double) n);
}

/* blocking_fd: a 4 KiB file, already unlinked. */
static void
blocking_open(void)
{
	char path[] = "/tmp/sluice-bench-XXXXXX";
	char data[4096];

	memset(data, 'x', sizeof(data));
	if ((blocking_fd = mkstemp(path)) < 0 ||
	    write(blocking_fd, data, sizeof(data)) != (ssize_t) sizeof(data))
		die("temporary file", SL_ESYSTEM);
	unlink(path);
}

static void
bench_blocking(struct bench *b)
{
	blocking_open();
	blocking_round(b->n / 10);
	result(b->name, "ns_per_call", blocking_round(b->n));
	close(blocking_fd);
}

#define BLOCKING_CALLERS 4

struct blocking_caller {
	long         n;
	sl_waitgroup *wg;
};

static void
blocking_caller(void *arg)
{
	struct blocking_caller *c = arg;

	(void) blocking_round(c->n);
	sl_waitgroup_done(c->wg);
}

/* N calls split among BLOCKING_CALLERS goroutines: wall ns per call. */
static double
blocking4_round(long n)
{
	struct blocking_caller c = { .n = n / BLOCKING_CALLERS };
	sl_waitgroup wg;
	int64_t      t0;
	int          err;

	memset(&wg, 0, sizeof(wg));
	c.wg = &wg;
	sl_waitgroup_add(&wg, BLOCKING_CALLERS);
	t0 = now_ns();
	for (int i = 0; i < BLOCKING_CALLERS; i++)
		if ((err = sl_go(blocking_caller, &c)) != 0)
			die("sl_go", err);
	sl_waitgroup_wait(&wg);
	return ((double) (now_ns() - t0) / (double) (c.n * BLOCKING_CALLERS));
}

static void
bench_blocking4(struct bench *b)
{
	blocking_open();
	blocking4_round(b->n / 10);
	result(b->name, "ns_per_call", blocking4_round(b->n));
	close(blocking_fd);
}

/* ---- driver ------------------------------------------------------------- */

static const struct {
	const char *name;
	void      (*fn)(struct bench *);
	long        n; /* default size */
} cases[] = {
	{ "chan",      bench_chan,      5000000 },
	{ "pingpong",  bench_pingpong,  1000000 },
	{ "spawn",     bench_spawn,     100000 },
	{ "spawnwarm", bench_spawnwarm, 100000 },
	{ "select",    bench_select,    5000000 },
	{ "selectfed", bench_selectfed, 5000000 },
	{ "million",   bench_spawn,     1000000 },
	{ "fault",     bench_fault,     100000 },
	{ "pipe",      bench_pipe,      200000 },
	{ "blocking",  bench_blocking,  200000 },
	{ "blocking4", bench_blocking4, 200000 },
};

static void (*run_fn)(struct bench *);

static void
bench_main(void *arg)
{
	struct bench *b = arg;

	printf("INFO procs %d\n", sl_procs());
	printf("INFO stack_size %zu\n", sl_stack_size());
	run_fn(b);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct bench b = { 0 };
	size_t i;
	int err;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_runtime CASE [N]\ncases:");
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			fprintf(stderr, " %s", cases[i].name);
		fprintf(stderr, "\n");
		return (2);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(argv[1], cases[i].name) == 0)
			break;
	if (i == sizeof(cases) / sizeof(cases[0])) {
		fprintf(stderr, "bench_runtime: unknown case %s\n", argv[1]);
		return (2);
	}
	b.name = cases[i].name;
	b.n = argc == 3 ? strtol(argv[2], NULL, 10) : cases[i].n;
	if (b.n <= 0) {
		fprintf(stderr, "bench_runtime: bad N\n");
		return (2);
	}
	run_fn = cases[i].fn;
	if ((err = sl_main(bench_main, &b)) != 0)
		die("sl_main", err);
	return (0);
}
