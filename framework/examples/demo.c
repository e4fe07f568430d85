/*
 * demo.c — a tour of libsluice in one program (`sluice-demo`).
 *
 * Five small scenes, each checked, each timed:
 *
 *  1. A pipeline: a producer sends 1..N on an unbuffered channel, a pool
 *     of workers squares them into a buffered channel, a collector sums
 *     the squares.  A WaitGroup tells when the workers are done so the
 *     results channel can be closed (Go's "close after wg.Wait()").
 *  2. A select loop: a ticker goroutine ticks every 10 ms; the main
 *     goroutine selects on the ticks under a context with a 105 ms
 *     timeout and stops when the context's deadline passes.
 *  3. Cancellation: a slow goroutine would sleep for 10 s; a context with
 *     a 30 ms timeout cuts it short, and a select on its reply channel
 *     and ctx's done channel sees both ends.
 *  4. Sockets: a TCP echo server on 127.0.0.1 with a goroutine per
 *     connection, and 100 client goroutines that each send 20 lines and
 *     read them back; every read and accept parks its goroutine until
 *     the socket is ready.
 *  5. Signals: eight goroutines work under a context that SIGINT or
 *     SIGTERM cancels (Go's signal.NotifyContext); the process sends
 *     itself SIGTERM, and every goroutine stops, naming the signal.
 *
 * Usage: sluice-demo [N [WORKERS]]   (defaults: 100000 numbers, 4 workers)
 * Exits 0 when every scene produced what it should, 1 otherwise.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/signal.h"

/* ---- helpers ------------------------------------------------------------ */

/* Reports a failed call and marks the demo failed. */
#define CHECK(call)                                                            \
	do {                                                                   \
		int check_rv_ = (call);                                        \
		if (check_rv_ != 0) {                                          \
			fprintf(stderr, "demo: %s:%d: %s: %s (%s)\n",          \
			    __FILE__, __LINE__, #call, sl_strerror(check_rv_), \
			    sl_errname(check_rv_));                            \
			return (1);                                            \
		}                                                              \
	} while (0)

static double
ms_since(int64_t start)
{
	return ((double) (sl_now() - start) / (double) SL_MILLISECOND);
}

/* ---- scene 1: producer -> workers -> collector ------------------------- */

struct pipeline {
	uint64_t     n;          /* numbers to send: 1..n */
	sl_chan     *jobs;       /* uint64_t, unbuffered */
	sl_chan     *results;    /* uint64_t, buffered */
	sl_waitgroup wg;         /* running workers */
	uint64_t    *per_worker; /* squares computed by each worker */
};

struct worker_arg {
	struct pipeline *p;  /* shared state */
	int              id; /* index into p->per_worker */
};

/* Sends 1..n on jobs, then closes it so the workers' loops end.  Holds
 * its own reference to jobs (taken by the caller of sl_go), because the
 * collector may release the pipeline's as soon as the close lands. */
static void
producer(void *arg)
{
	struct pipeline *p = arg;
	sl_chan         *jobs = p->jobs;

	for (uint64_t i = 1; i <= p->n; i++) {
		if (sl_chan_send(jobs, &i) != 0)
			break;
	}
	sl_chan_close(jobs);
	sl_chan_release(jobs);
}

/* Squares every job until jobs is closed and drained. */
static void
worker(void *arg)
{
	struct worker_arg *w = arg;
	struct pipeline   *p = w->p;
	uint64_t           x;

	while (sl_chan_recv(p->jobs, &x) == 0) {
		uint64_t sq = x * x;
		if (sl_chan_send(p->results, &sq) != 0)
			break;
		p->per_worker[w->id]++;
	}
	sl_waitgroup_done(&p->wg);
}

/* Closes results once every worker has returned (Go: wg.Wait();
 * close(results)).  Holds its own reference to results, like producer. */
static void
closer(void *arg)
{
	struct pipeline *p = arg;
	sl_chan         *results = p->results;

	sl_waitgroup_wait(&p->wg);
	sl_chan_close(results);
	sl_chan_release(results);
}

static int
scene_pipeline(uint64_t n, int nworkers)
{
	struct pipeline    p = { .n = n };
	struct worker_arg *wargs;
	uint64_t           sum = 0, count = 0, v;
	uint64_t           want = n * (n + 1) * (2 * n + 1) / 6;
	int64_t            start = sl_now();
	int                rv = 1;

	printf("[pipeline] 1..%" PRIu64 " -> %d workers (x*x) -> collector\n",
	    n, nworkers);
	p.jobs = sl_chan_make(sizeof(uint64_t), 0);
	p.results = sl_chan_make(sizeof(uint64_t), 64);
	wargs = calloc((size_t) nworkers, sizeof(*wargs));
	p.per_worker = calloc((size_t) nworkers, sizeof(*p.per_worker));
	if (p.jobs == NULL || p.results == NULL || wargs == NULL ||
	    p.per_worker == NULL) {
		fprintf(stderr, "demo: out of memory\n");
		goto out;
	}

	sl_waitgroup_add(&p.wg, nworkers);
	for (int i = 0; i < nworkers; i++) {
		wargs[i] = (struct worker_arg){ .p = &p, .id = i };
		if (sl_go(worker, &wargs[i]) != 0) {
			fprintf(stderr, "demo: cannot start a worker\n");
			abort(); /* the WaitGroup would never reach zero */
		}
	}
	sl_chan_retain(p.jobs);    /* for producer */
	sl_chan_retain(p.results); /* for closer */
	if (sl_go(producer, &p) != 0 || sl_go(closer, &p) != 0) {
		fprintf(stderr, "demo: cannot start goroutines\n");
		abort();
	}

	/* The collector: this goroutine, until results is closed. */
	while (sl_chan_recv(p.results, &v) == 0) {
		sum += v;
		count++;
	}

	printf("[pipeline] %" PRIu64 " results, sum of squares %" PRIu64
	       " (expected %" PRIu64 ") in %.1f ms\n",
	    count, sum, want, ms_since(start));
	printf("[pipeline] per worker:");
	for (int i = 0; i < nworkers; i++)
		printf(" %" PRIu64, p.per_worker[i]);
	printf("\n");
	if (count == n && sum == want)
		rv = 0;
	else
		fprintf(stderr, "demo: pipeline checksum mismatch\n");
out:
	sl_chan_release(p.jobs);
	sl_chan_release(p.results);
	free(wargs);
	free(p.per_worker);
	return (rv);
}

/* ---- scene 2: a select loop with a ticker and a deadline --------------- */

struct ticker {
	sl_ctx      *ctx;     /* stops the ticker when done */
	sl_chan     *ticks;   /* int64_t tick times, cap 1 (ticks may drop) */
	int64_t      period;  /* ns between ticks */
	sl_waitgroup wg;      /* the ticker goroutine */
	int          sent;    /* ticks delivered */
	int          dropped; /* ticks dropped: nobody was ready */
};

/* Ticks every period until ctx is done, like Go's time.Ticker: a tick
 * nobody takes in time is dropped instead of queuing up. */
static void
ticker_loop(void *arg)
{
	struct ticker *t = arg;

	while (sl_sleep_ctx(t->ctx, t->period) == 0) {
		int64_t now = sl_now();
		if (sl_chan_trysend(t->ticks, &now) == 0)
			t->sent++;
		else
			t->dropped++;
	}
	sl_waitgroup_done(&t->wg);
}

static int
scene_ticker(void)
{
	struct ticker t = { .period = 10 * SL_MILLISECOND };
	int64_t       start = sl_now(), tick;
	int           got = 0, chosen, rv;

	printf("[ticker] select on ticks every 10 ms under a 105 ms "
	       "context timeout\n");
	CHECK(sl_ctx_with_timeout(
	    sl_ctx_background(), 105 * SL_MILLISECOND, &t.ctx));
	t.ticks = sl_chan_make(sizeof(int64_t), 1);
	if (t.ticks == NULL) {
		sl_ctx_release(t.ctx);
		return (1);
	}
	sl_waitgroup_add(&t.wg, 1);
	if (sl_go(ticker_loop, &t) != 0)
		abort();

	for (;;) {
		sl_case cases[] = { SL_CASE_RECV(t.ticks, &tick) };
		rv = sl_select(cases, 1, t.ctx, SL_FOREVER, &chosen);
		if (rv != 0)
			break;
		got++;
		printf("[ticker] tick %d at %5.1f ms\n", got,
		    (double) (tick - start) / (double) SL_MILLISECOND);
	}
	/* The ticker sees the same deadline and returns. */
	sl_waitgroup_wait(&t.wg);
	printf("[ticker] select returned %s after %.1f ms: %d ticks "
	       "received, %d dropped\n",
	    sl_errname(rv), ms_since(start), got, t.dropped);

	sl_chan_release(t.ticks);
	sl_ctx_release(t.ctx);
	/* A busy machine may drop or delay ticks; the deadline must hold. */
	if (rv != SL_EDEADLINE || got < 1) {
		fprintf(stderr, "demo: ticker: %s, %d ticks\n", sl_errname(rv),
		    got);
		return (1);
	}
	return (0);
}

/* ---- scene 3: a context with a timeout cancels a slow goroutine -------- */

struct slow {
	sl_ctx  *ctx;   /* the slow job's context */
	sl_chan *reply; /* int: the job's result code, cap 1 */
};

/* "Work" that takes 10 s unless its context ends it first.  *arg lives
 * on the starter's stack only until the reply is sent: copy it first. */
static void
slow_job(void *arg)
{
	struct slow s = *(struct slow *) arg;
	int         rv = sl_sleep_ctx(s.ctx, 10 * SL_SECOND);

	sl_chan_send(s.reply, &rv); /* buffered: never blocks */
	sl_chan_release(s.reply);
	sl_ctx_release(s.ctx);
}

static int
scene_cancel(void)
{
	struct slow s;
	sl_ctx     *ctx;
	sl_chan    *reply;
	int64_t     start = sl_now();
	int         result = -1, chosen;

	printf("[cancel] a 10 s job under a 30 ms context timeout\n");
	CHECK(sl_ctx_with_timeout(
	    sl_ctx_background(), 30 * SL_MILLISECOND, &ctx));
	reply = sl_chan_make(sizeof(int), 1);
	if (reply == NULL) {
		sl_ctx_release(ctx);
		return (1);
	}
	/* The goroutine holds its own references. */
	s.ctx = sl_ctx_retain(ctx);
	s.reply = sl_chan_retain(reply);
	if (sl_go(slow_job, &s) != 0)
		abort();

	/* Wait for whichever comes first: the reply or the deadline. */
	sl_case cases[] = {
		SL_CASE_RECV(reply, &result),
		SL_CASE_RECV(sl_ctx_done(ctx), NULL),
	};
	CHECK(sl_select(cases, 2, NULL, SL_FOREVER, &chosen));
	printf("[cancel] select woke on %s after %.1f ms: ctx err %s\n",
	    chosen == 0 ? "the reply" : "ctx.Done()", ms_since(start),
	    sl_errname(sl_ctx_err(ctx)));
	/* The job notices the same deadline; collect its answer. */
	if (chosen != 0)
		CHECK(sl_chan_recv(reply, &result));
	printf("[cancel] the job returned %s (%s) after %.1f ms\n",
	    sl_errname(result), sl_strerror(result), ms_since(start));

	sl_chan_release(reply);
	sl_ctx_release(ctx);
	if (result != SL_EDEADLINE || ms_since(start) > 5000.0) {
		fprintf(stderr, "demo: the slow job was not cancelled\n");
		return (1);
	}
	return (0);
}

/* ---- scene 4: a TCP echo server, a goroutine per connection ------------- */

#define ECHO_CLIENTS 100
#define ECHO_LINES   20

struct echo {
	int                lfd;
	struct sockaddr_in addr;
	sl_waitgroup       wg;      /* clients and connections */
	atomic_long        bytes;   /* echoed by the server */
	atomic_int         right;   /* clients that got all lines back */
};

struct echo_conn {
	struct echo *e;
	int          fd;
};

/* One connection: echo until the client shuts its side. */
static void
echo_conn(void *arg)
{
	struct echo_conn c = *(struct echo_conn *) arg;
	char   buf[512];
	size_t n;

	free(arg);
	while (sl_read(c.fd, buf, sizeof(buf), &n, NULL, SL_FOREVER) == 0 &&
	    n > 0 && sl_write(c.fd, buf, n, NULL, NULL, SL_FOREVER) == 0)
		atomic_fetch_add(&c.e->bytes, (long) n);
	sl_fd_close(c.fd);
	sl_waitgroup_done(&c.e->wg);
}

static void
echo_server(void *arg)
{
	struct echo *e = arg;

	for (int i = 0; i < ECHO_CLIENTS; i++) {
		struct echo_conn *c = malloc(sizeof(*c));

		if (c == NULL || sl_accept(e->lfd, &c->fd, NULL,
		    sl_now() + 10 * SL_SECOND) != 0) {
			free(c);
			sl_waitgroup_add(&e->wg, -(ECHO_CLIENTS - i));
			return;
		}
		c->e = e;
		if (sl_go(echo_conn, c) != 0)
			abort();
	}
}

static void
echo_client(void *arg)
{
	struct echo *e = arg;
	char   sent[ECHO_LINES * 32], got[sizeof(sent)];
	size_t len = 0, have = 0, n;
	int    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	for (int i = 0; i < ECHO_LINES; i++)
		len += (size_t) snprintf(sent + len, sizeof(sent) - len,
		    "line %d of goroutine %" PRIu64 "\n", i, sl_goid());
	if (fd >= 0 && sl_connect(fd, (struct sockaddr *) &e->addr,
	    sizeof(e->addr), NULL, sl_now() + 10 * SL_SECOND) == 0 &&
	    sl_write(fd, sent, len, NULL, NULL, SL_FOREVER) == 0 &&
	    shutdown(fd, SHUT_WR) == 0) {
		while (have < sizeof(got) && sl_read(fd, got + have,
		    sizeof(got) - have, &n, NULL, sl_now() + 10 * SL_SECOND)
		    == 0 && n > 0)
			have += n;
	}
	if (have == len && memcmp(got, sent, len) == 0)
		atomic_fetch_add(&e->right, 1);
	if (fd >= 0)
		sl_fd_close(fd);
	sl_waitgroup_done(&e->wg);
}

static int
scene_echo(void)
{
	static struct echo e;
	socklen_t alen = sizeof(e.addr);
	int64_t   start = sl_now();

	memset(&e, 0, sizeof(e));
	e.addr.sin_family = AF_INET;
	e.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	e.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (e.lfd < 0 || bind(e.lfd, (struct sockaddr *) &e.addr,
	    sizeof(e.addr)) != 0 || listen(e.lfd, SOMAXCONN) != 0 ||
	    getsockname(e.lfd, (struct sockaddr *) &e.addr, &alen) != 0) {
		perror("demo: echo server");
		return (1);
	}
	printf("[echo] a TCP echo server on 127.0.0.1:%d, a goroutine per "
	    "connection; %d clients x %d lines\n", ntohs(e.addr.sin_port),
	    ECHO_CLIENTS, ECHO_LINES);
	sl_waitgroup_add(&e.wg, 2 * ECHO_CLIENTS);
	if (sl_go(echo_server, &e) != 0)
		abort();
	for (int i = 0; i < ECHO_CLIENTS; i++)
		if (sl_go(echo_client, &e) != 0)
			abort();
	sl_waitgroup_wait(&e.wg);
	sl_fd_close(e.lfd);
	printf("[echo] %d/%d clients got every line back; %ld bytes echoed "
	    "in %.1f ms\n", atomic_load(&e.right), ECHO_CLIENTS,
	    atomic_load(&e.bytes), ms_since(start));
	if (atomic_load(&e.right) != ECHO_CLIENTS) {
		fprintf(stderr, "demo: echo: clients missed their lines\n");
		return (1);
	}
	return (0);
}

/* ---- scene 5: SIGTERM cancels every goroutine ------------------------------ */

#define SIG_WORKERS 8

struct sigscene {
	sl_ctx      *ctx;     /* canceled by SIGINT or SIGTERM */
	sl_waitgroup wg;
	atomic_int   stopped; /* workers that saw the cancellation */
	atomic_long  rounds;  /* work done meanwhile */
};

/* Works in 2 ms steps until the context ends. */
static void
sig_worker(void *arg)
{
	struct sigscene *s = arg;

	while (sl_sleep_ctx(s->ctx, 2 * SL_MILLISECOND) == 0)
		atomic_fetch_add(&s->rounds, 1);
	atomic_fetch_add(&s->stopped, 1);
	sl_waitgroup_done(&s->wg);
}

/* What `kill -TERM` would do from outside. */
static void
sig_terminator(void *arg)
{
	(void) arg;
	sl_sleep(30 * SL_MILLISECOND);
	(void) kill(getpid(), SIGTERM);
}

static int
scene_signal(void)
{
	static struct sigscene s;
	const int   sigs[] = { SIGINT, SIGTERM };
	const char *cause = NULL;
	int64_t     start = sl_now();
	bool        right;

	memset(&s, 0, sizeof(s));
	printf("[signal] %d goroutines under a context that SIGINT or SIGTERM "
	    "cancels; SIGTERM comes after 30 ms\n", SIG_WORKERS);
	CHECK(sl_signal_ctx(sl_ctx_background(), sigs, 2, &s.ctx));
	sl_waitgroup_add(&s.wg, SIG_WORKERS);
	for (int i = 0; i < SIG_WORKERS; i++)
		if (sl_go(sig_worker, &s) != 0)
			abort();
	if (sl_go(sig_terminator, NULL) != 0)
		abort();
	sl_waitgroup_wait(&s.wg);
	(void) sl_ctx_cause(s.ctx, &cause);
	printf("[signal] %d/%d goroutines stopped after %.1f ms (%ld steps of "
	    "work); the context's cause: \"%s\"\n", atomic_load(&s.stopped),
	    SIG_WORKERS, ms_since(start), atomic_load(&s.rounds),
	    cause != NULL ? cause : "(none)");
	right = atomic_load(&s.stopped) == SIG_WORKERS && cause != NULL &&
	    strcmp(cause, "signal SIGTERM") == 0;
	sl_signal_stop_ctx(s.ctx); /* SIGTERM is fatal again from here */
	sl_ctx_release(s.ctx);
	if (!right) {
		fprintf(stderr, "demo: signal: the goroutines did not all stop "
		    "on SIGTERM\n");
		return (1);
	}
	return (0);
}

/* ---- main ---------------------------------------------------------------- */

struct demo {
	uint64_t n;        /* pipeline length */
	int      nworkers; /* pipeline workers */
	int      failed;   /* scenes that failed */
};

static void
demo_main(void *arg)
{
	struct demo *d = arg;

	printf(
	    "sluice-demo: %d worker threads, %zu KiB stacks, goroutine %" PRIu64
	    "\n\n",
	    sl_procs(), sl_stack_size() / 1024, sl_goid());
	d->failed += scene_pipeline(d->n, d->nworkers);
	printf("\n");
	d->failed += scene_ticker();
	printf("\n");
	d->failed += scene_cancel();
	printf("\n");
	d->failed += scene_echo();
	printf("\n");
	d->failed += scene_signal();
	printf("\n%d goroutine(s) left at the end\n", (int) sl_numgoroutine());
}

int
main(int argc, char **argv)
{
	struct demo d = { .n = 100000, .nworkers = 4 };
	int64_t     start;
	int         rv;

	if (argc > 1)
		d.n = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		d.nworkers = atoi(argv[2]);
	if (d.n == 0 || d.n > 1000000 || d.nworkers < 1 || d.nworkers > 1000) {
		fprintf(stderr,
		    "usage: %s [N (1..1000000) [WORKERS (1..1000)]]\n",
		    argv[0]);
		return (2);
	}

	start = sl_now();
	rv = sl_main(demo_main, &d);
	if (rv != 0) {
		fprintf(stderr, "sluice-demo: sl_main: %s\n", sl_strerror(rv));
		return (1);
	}
	printf("sluice-demo: %s in %.1f ms\n",
	    d.failed == 0 ? "all scenes passed" : "FAILED", ms_since(start));
	return (d.failed == 0 ? 0 : 1);
}
