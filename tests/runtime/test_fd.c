/*
 * test_fd.c — goroutines waiting on file descriptors (sluice/fd.h).
 *
 * A read on an empty pipe parks the goroutine and leaves its worker to
 * the others (one worker); streams through a socketpair, both directions
 * at once on the same descriptors, arrive whole (exact length and
 * checksum); deadlines and contexts end waits, and nothing is read after
 * they passed; sl_fd_close wakes readers and writers with SL_ECLOSED;
 * end of file and a vanished reader are reported; hundreds of goroutines
 * waiting on their own pipes each get exactly their byte; a regular file
 * is always ready; plain threads wait too and are released when sl_main
 * ends (one that leaves only after the next sl_main began leaves that
 * run's waits polled); a goroutine waiting on a descriptor is not a
 * deadlock; the dump names the descriptor, also while waits come and
 * go; a number reused after a plain close(2), even with a waiter of the
 * old file still queued, is watched for the new file; bad input gets its
 * error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "sltest.h"

static void
nb_pipe(int fds[2])
{
	SL_ASSERT_OK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 ? 0 : -1);
}

/* Fills the pipe or socket behind w until a write would block. */
static size_t
fill(int w)
{
	static char junk[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = write(w, junk, sizeof(junk))) > 0)
		total += (size_t) n;
	SL_CHECK(n < 0 && errno == EAGAIN);
	return (total);
}

/* ---- a wait parks: the worker runs the others --------------------------- */

struct park {
	int        fds[2];
	atomic_int stop;
	atomic_int ticks;
	atomic_int ticks_at_read; /* ticks when the reader got its data */
};

static void
park_ticker(void *arg)
{
	struct park *p = arg;

	while (!atomic_load(&p->stop)) {
		atomic_fetch_add(&p->ticks, 1);
		sl_sleep(SL_MILLISECOND);
	}
}

/* Writes once the ticker has ticked ten times (or after ten seconds):
 * counted, not timed, so a loaded machine cannot fail the test. */
static void
park_writer(void *arg)
{
	struct park *p = arg;
	int64_t give_up = sl_now() + 10 * SL_SECOND;
	size_t n;

	while (atomic_load(&p->ticks) < 10 && sl_now() < give_up)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(sl_write(p->fds[1], "hello", 5, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 5);
}

static void
body_parks(void *arg)
{
	struct park p = { 0 };
	char buf[16];
	size_t n = 99;
	int64_t t0;

	(void) arg;
	nb_pipe(p.fds);
	SL_CHECK_OK(sl_go(park_ticker, &p));
	SL_CHECK_OK(sl_go(park_writer, &p));
	t0 = sl_now();
	SL_CHECK_OK(sl_read(p.fds[0], buf, sizeof(buf), &n, NULL, SL_FOREVER));
	/* One worker, and the ticker kept ticking while we waited: ten
	 * ticks, nine sleeps of a millisecond between them. */
	SL_CHECK(atomic_load(&p.ticks) >= 10);
	SL_CHECK(sl_now() - t0 >= 9 * SL_MILLISECOND);
	SL_CHECK_EQ(n, 5);
	SL_CHECK(memcmp(buf, "hello", 5) == 0);
	atomic_store(&p.stop, 1);
	sl_sleep(5 * SL_MILLISECOND);
	close(p.fds[0]);
	close(p.fds[1]);
}

static void
test_wait_parks(void **state)
{
	(void) state;
	slt_run_procs(1, body_parks, NULL);
}

/* ---- workers that never go idle still notice descriptors ----------------- */

struct busy {
	int        fds[2];
	atomic_int done;
	int64_t    woke_after; /* ns from the write to the reader's return */
	_Atomic int64_t written;
};

static void
busy_spinner(void *arg)
{
	struct busy *b = arg;
	int64_t end = sl_now() + 10 * SL_SECOND;

	/* Always runnable: its worker never idles, so never blocks in
	 * epoll; only the polls a busy worker makes can see the pipe. */
	while (!atomic_load(&b->done) && sl_now() < end)
		sl_yield();
}

static void *
busy_writer(void *arg)
{
	struct busy *b = arg;

	usleep(50 * 1000);
	atomic_store(&b->written, sl_now());
	if (write(b->fds[1], "b", 1) != 1)
		abort();
	return (NULL);
}

static void
body_busy(void *arg)
{
	struct busy *b = arg;
	pthread_t t;
	char c = 0;
	size_t n;

	nb_pipe(b->fds);
	for (int i = 0; i < sl_procs(); i++)
		SL_CHECK_OK(sl_go(busy_spinner, b));
	SL_ASSERT_OK(pthread_create(&t, NULL, busy_writer, b));
	SL_CHECK_OK(sl_read(b->fds[0], &c, 1, &n, NULL, SL_FOREVER));
	b->woke_after = sl_now() - atomic_load(&b->written);
	atomic_store(&b->done, 1);
	SL_CHECK_EQ(c, 'b');
	pthread_join(t, NULL);
	close(b->fds[0]);
	close(b->fds[1]);
}

static void
test_busy_workers_poll(void **state)
{
	struct busy b;

	(void) state;
	for (int procs = 1; procs <= 2; procs++) {
		memset(&b, 0, sizeof(b));
		slt_run_procs(procs, body_busy, &b);
		/* Seen long before the spinners' 10 s are up (typically well
		 * under a millisecond; generous for sanitizers and valgrind). */
		if (b.woke_after > 2 * SL_SECOND)
			fail_msg("procs %d: woke %.3f s after the write", procs,
			    (double) b.woke_after / 1e9);
	}
}

/* ---- streams both ways through one socketpair --------------------------- */

#define STREAM_BYTES (4u << 20)

struct stream {
	int           fd;      /* this side's socket */
	uint64_t      seed;    /* of the bytes this side sends */
	uint64_t      sum;     /* FNV-1a of what it received */
	size_t        got;
	sl_waitgroup *wg;
	unsigned char out[70000]; /* the sender's buffer (goroutines on one
	                             worker share its thread-locals) */
};

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s);
}

static uint64_t
fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return (h);
}

/* The checksum of STREAM_BYTES made from seed, computed directly. */
static uint64_t
expected_sum(uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < STREAM_BYTES; i++) {
		unsigned char c = (unsigned char) xorshift(&seed);
		h = fnv(h, &c, 1);
	}
	return (h);
}

static void
stream_sender(void *arg)
{
	struct stream *s = arg;
	unsigned char *buf = s->out;
	uint64_t seed = s->seed, sizes = s->seed * 7 + 1;
	size_t left = STREAM_BYTES;

	while (left > 0) {
		size_t chunk = 1 + (size_t) (xorshift(&sizes) % sizeof(s->out));
		size_t n;

		if (chunk > left)
			chunk = left;
		for (size_t i = 0; i < chunk; i++)
			buf[i] = (unsigned char) xorshift(&seed);
		SL_CHECK_OK(sl_write(s->fd, buf, chunk, &n, NULL, SL_FOREVER));
		SL_CHECK_EQ(n, chunk);
		left -= chunk;
		if (n != chunk)
			break;
	}
	SL_CHECK(shutdown(s->fd, SHUT_WR) == 0);
	sl_waitgroup_done(s->wg);
}

static void
stream_receiver(void *arg)
{
	struct stream *s = arg;
	unsigned char buf[9000];
	size_t n;

	s->sum = 0xcbf29ce484222325ULL;
	for (;;) {
		int rv = sl_read(s->fd, buf, sizeof(buf), &n, NULL, SL_FOREVER);

		SL_CHECK_OK(rv);
		if (rv != 0 || n == 0)
			break;
		s->sum = fnv(s->sum, buf, n);
		s->got += n;
	}
	sl_waitgroup_done(s->wg);
}

static void
body_stream(void *arg)
{
	sl_waitgroup wg = SL_WAITGROUP_INIT;
	static struct stream a, b;
	int sv[2];

	(void) arg;
	SL_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv) == 0 ? 0 : -1);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.fd = sv[0];
	b.fd = sv[1];
	a.seed = 0x1234567;
	b.seed = 0x89abcdef;
	a.wg = b.wg = &wg;
	sl_waitgroup_add(&wg, 4);
	/* Each socket has a sender and a receiver waiting on it at once. */
	SL_CHECK_OK(sl_go(stream_sender, &a));
	SL_CHECK_OK(sl_go(stream_receiver, &a));
	SL_CHECK_OK(sl_go(stream_sender, &b));
	SL_CHECK_OK(sl_go(stream_receiver, &b));
	sl_waitgroup_wait(&wg);
	SL_CHECK_EQ(a.got, STREAM_BYTES);
	SL_CHECK_EQ(b.got, STREAM_BYTES);
	SL_CHECK(a.sum == expected_sum(b.seed));
	SL_CHECK(b.sum == expected_sum(a.seed));
	close(sv[0]);
	close(sv[1]);
}

static void
test_stream_both_ways(void **state)
{
	(void) state;
	slt_run_procs(1, body_stream, NULL);
	slt_run_procs(2, body_stream, NULL);
}

/* ---- deadlines and contexts ------------------------------------------- */

struct canceler {
	sl_ctx *ctx;
	int64_t after;
};

static void
cancel_later(void *arg)
{
	struct canceler *c = arg;

	sl_sleep(c->after);
	sl_ctx_cancel(c->ctx);
}

static void
body_deadlines(void *arg)
{
	int fds[2];
	char buf[8];
	size_t n = 7;
	int64_t t0;
	struct canceler c;
	sl_ctx *ctx;

	(void) arg;
	nb_pipe(fds);
	/* A deadline ends a wait, not before it. */
	t0 = sl_now();
	SL_CHECK_ERR(sl_read(fds[0], buf, sizeof(buf), &n,
	    NULL, t0 + 50 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK(sl_now() - t0 >= 50 * SL_MILLISECOND);
	SL_CHECK(sl_now() - t0 < 5 * SL_SECOND);
	SL_CHECK_EQ(n, 0);

	/* A cancel from another goroutine ends it. */
	SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	c.ctx = ctx;
	c.after = 20 * SL_MILLISECOND;
	SL_CHECK_OK(sl_go(cancel_later, &c));
	t0 = sl_now();
	SL_CHECK_ERR(sl_fd_wait(fds[0], SL_FD_READ, ctx, SL_FOREVER),
	    SL_ECANCELED);
	SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
	sl_ctx_release(ctx);

	/* A timeout context gives its own error. */
	SL_ASSERT_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    30 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_read(fds[0], buf, sizeof(buf), &n, ctx, SL_FOREVER),
	    SL_EDEADLINE);
	sl_ctx_release(ctx);

	/* Over before the call: nothing is read even though data waits. */
	SL_CHECK(write(fds[1], "abc", 3) == 3);
	SL_CHECK_ERR(sl_read(fds[0], buf, sizeof(buf), &n, NULL,
	    sl_now() - 1), SL_ETIMEDOUT);
	SL_CHECK_EQ(n, 0);
	SL_CHECK_ERR(sl_fd_wait(fds[0], SL_FD_READ, NULL, sl_now() - 1),
	    SL_ETIMEDOUT);
	SL_CHECK_OK(sl_read(fds[0], buf, sizeof(buf), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 3);

	/* After all those abandoned waits the descriptor still works. */
	SL_CHECK(write(fds[1], "z", 1) == 1);
	SL_CHECK_OK(sl_fd_wait(fds[0], SL_FD_READ, NULL,
	    sl_now() + 5 * SL_SECOND));
	SL_CHECK_OK(sl_read(fds[0], buf, sizeof(buf), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 1);
	SL_CHECK_EQ(buf[0], 'z');
	close(fds[0]);
	close(fds[1]);
}

static void
test_deadlines(void **state)
{
	(void) state;
	slt_run(body_deadlines, NULL);
}

/* ---- one read or one write, and what it returned ------------------------ */

struct op {
	int           fd;
	int           rv;    /* of sl_read or sl_write */
	int           err;   /* errno after it */
	size_t        n;     /* bytes moved */
	sl_waitgroup *wg;
};

static void
op_read(void *arg)
{
	struct op *o = arg;
	char buf[4];

	o->rv = sl_read(o->fd, buf, sizeof(buf), &o->n, NULL, SL_FOREVER);
	o->err = errno;
	sl_waitgroup_done(o->wg);
}

/* Writes more than a full pipe takes. */
static void
op_write(void *arg)
{
	struct op *o = arg;
	static char big[100000];

	o->rv = sl_write(o->fd, big, sizeof(big), &o->n, NULL, SL_FOREVER);
	o->err = errno;
	sl_waitgroup_done(o->wg);
}

/* ---- sl_fd_close wakes the waiters ------------------------------------- */

static void
body_close(void *arg)
{
	sl_waitgroup wg = SL_WAITGROUP_INIT;
	struct op r1 = { 0 }, r2 = { 0 }, w = { 0 };
	int fds[2], rp[2];

	(void) arg;
	nb_pipe(fds);
	(void) fill(fds[1]);
	/* Two readers of an empty pipe, one writer of a full one. */
	nb_pipe(rp);
	r1.fd = r2.fd = rp[0];
	w.fd = fds[1];
	r1.wg = r2.wg = w.wg = &wg;
	r1.rv = r2.rv = w.rv = -1;
	sl_waitgroup_add(&wg, 3);
	SL_CHECK_OK(sl_go(op_read, &r1));
	SL_CHECK_OK(sl_go(op_read, &r2));
	SL_CHECK_OK(sl_go(op_write, &w));
	sl_sleep(30 * SL_MILLISECOND);
	SL_CHECK_EQ(r1.rv, -1); /* all still waiting */
	SL_CHECK_EQ(w.rv, -1);
	SL_CHECK_OK(sl_fd_close(rp[0]));
	SL_CHECK_OK(sl_fd_close(fds[1]));
	sl_waitgroup_wait(&wg);
	SL_CHECK_ERR(r1.rv, SL_ECLOSED);
	SL_CHECK_ERR(r2.rv, SL_ECLOSED);
	SL_CHECK_EQ(r1.n, 0);
	SL_CHECK_ERR(w.rv, SL_ECLOSED);
	SL_CHECK(w.n < 100000);
	/* Closed for real, and closing again says so. */
	SL_CHECK(fcntl(rp[0], F_GETFD) == -1 && errno == EBADF);
	SL_CHECK_ERR(sl_fd_close(rp[0]), SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(rp[0], SL_FD_READ, NULL, SL_FOREVER),
	    SL_EBADF);
	close(rp[1]);
	close(fds[0]);
}

static void
test_close_wakes(void **state)
{
	(void) state;
	slt_run(body_close, NULL);
}

/* ---- end of file, and a reader that went away ---------------------------- */

static void
body_hup(void *arg)
{
	sl_waitgroup wg = SL_WAITGROUP_INIT;
	struct op r = { 0 }, w = { 0 };
	int a[2], b[2];

	(void) arg;
	nb_pipe(a);
	nb_pipe(b);
	(void) fill(b[1]);
	r.fd = a[0];
	w.fd = b[1];
	r.rv = w.rv = -1;
	r.n = 99;
	r.wg = w.wg = &wg;
	sl_waitgroup_add(&wg, 2);
	SL_CHECK_OK(sl_go(op_read, &r));
	SL_CHECK_OK(sl_go(op_write, &w));
	sl_sleep(20 * SL_MILLISECOND);
	close(a[1]); /* the writer of a goes: end of file */
	close(b[0]); /* the reader of b goes: EPIPE */
	sl_waitgroup_wait(&wg);
	SL_CHECK_OK(r.rv);
	SL_CHECK_EQ(r.n, 0);
	SL_CHECK_ERR(w.rv, SL_ESYSTEM);
	SL_CHECK_EQ(w.err, EPIPE);
	SL_CHECK(w.n < 100000);
	close(a[0]);
	close(b[1]);
}

static void
test_eof_and_epipe(void **state)
{
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);

	(void) state;
	slt_run(body_hup, NULL);
	signal(SIGPIPE, old);
}

/* ---- many descriptors, each waiter gets exactly its byte ---------------- */

struct many {
	int           n;
	int         (*fds)[2];
	atomic_int    right;
	atomic_long   sum;
	sl_waitgroup  wg;
};

struct many_arg {
	struct many *m;
	int          i;
};

static void
many_reader(void *arg)
{
	struct many_arg *a = arg;
	struct many *m = a->m;
	unsigned char c;
	size_t n;

	SL_CHECK_OK(sl_read(m->fds[a->i][0], &c, 1, &n, NULL,
	    sl_now() + 60 * SL_SECOND));
	if (n == 1 && c == (unsigned char) (a->i * 7 + 1))
		atomic_fetch_add(&m->right, 1);
	atomic_fetch_add(&m->sum, c);
	sl_waitgroup_done(&m->wg);
}

static void
body_many(void *arg)
{
	struct rlimit rl;
	struct many m = { 0 };
	struct many_arg *args;
	int *order;
	long want = 0;

	(void) arg;
	SL_ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
	m.n = 400;
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t) m.n * 2 + 100 > rl.rlim_cur)
		m.n = (int) (rl.rlim_cur - 100) / 2;
	m.fds = calloc((size_t) m.n, sizeof(*m.fds));
	args = calloc((size_t) m.n, sizeof(*args));
	order = calloc((size_t) m.n, sizeof(*order));
	SL_ASSERT_OK(m.fds && args && order ? 0 : -1);
	for (int i = 0; i < m.n; i++) {
		nb_pipe(m.fds[i]);
		args[i].m = &m;
		args[i].i = i;
		order[i] = i;
		want += (unsigned char) (i * 7 + 1);
	}
	sl_waitgroup_add(&m.wg, m.n);
	for (int i = 0; i < m.n; i++)
		SL_CHECK_OK(sl_go(many_reader, &args[i]));
	sl_sleep(20 * SL_MILLISECOND); /* let them all park */
	srand(7);
	for (int i = m.n - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < m.n; k++) {
		unsigned char c = (unsigned char) (order[k] * 7 + 1);
		SL_CHECK(write(m.fds[order[k]][1], &c, 1) == 1);
		if (k % 16 == 0)
			sl_yield();
	}
	sl_waitgroup_wait(&m.wg);
	SL_CHECK_EQ(atomic_load(&m.right), m.n);
	SL_CHECK_EQ(atomic_load(&m.sum), want);
	for (int i = 0; i < m.n; i++) {
		close(m.fds[i][0]);
		close(m.fds[i][1]);
	}
	free(m.fds);
	free(args);
	free(order);
}

static void
test_many_descriptors(void **state)
{
	(void) state;
	slt_run(body_many, NULL);
}

/* ---- regular files, both directions at once ------------------------------ */

static void
body_file_and_both(void *arg)
{
	char path[] = "/tmp/sluice-test-fd-XXXXXX";
	int fd = mkstemp(path), sv[2];
	char buf[16];
	size_t n;

	(void) arg;
	SL_ASSERT_OK(fd >= 0 ? 0 : -1);
	unlink(path);
	/* epoll does not watch regular files: always ready. */
	SL_CHECK_OK(sl_write(fd, "data", 4, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 4);
	SL_CHECK_OK(sl_fd_wait(fd, SL_FD_READ | SL_FD_WRITE, NULL,
	    sl_now() + SL_SECOND));
	SL_CHECK(lseek(fd, 0, SEEK_SET) == 0);
	SL_CHECK_OK(sl_read(fd, buf, sizeof(buf), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 4);
	SL_CHECK_OK(sl_read(fd, buf, sizeof(buf), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 0);
	close(fd);

	/* READ|WRITE on a full socket with nothing to read: waits until the
	 * peer writes, then reports ready. */
	SL_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)
	    == 0 ? 0 : -1);
	SL_CHECK_OK(sl_fd_wait(sv[0], SL_FD_READ | SL_FD_WRITE, NULL,
	    sl_now() + SL_SECOND)); /* writable now */
	(void) fill(sv[0]);
	SL_CHECK_ERR(sl_fd_wait(sv[0], SL_FD_READ | SL_FD_WRITE, NULL,
	    sl_now() + 30 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK(write(sv[1], "x", 1) == 1);
	SL_CHECK_OK(sl_fd_wait(sv[0], SL_FD_READ | SL_FD_WRITE, NULL,
	    sl_now() + 5 * SL_SECOND));
	SL_CHECK_OK(sl_read(sv[0], buf, sizeof(buf), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 1);
	close(sv[0]);
	close(sv[1]);
}

static void
test_file_and_both_directions(void **state)
{
	(void) state;
	slt_run(body_file_and_both, NULL);
}

/* ---- plain threads ---------------------------------------------------- */

struct thr {
	int    fd;
	int    rv;
	size_t n;
	char   buf[8];
};

static void *
thread_reader(void *arg)
{
	struct thr *t = arg;

	t->rv = sl_read(t->fd, t->buf, sizeof(t->buf), &t->n, NULL,
	    SL_FOREVER);
	return (NULL);
}

struct thr_main {
	int        fds[2];
	int        gone[2];
	struct thr got, left;
	pthread_t  a, b;
};

static void
body_threads(void *arg)
{
	struct thr_main *m = arg;
	size_t n;

	nb_pipe(m->fds);
	nb_pipe(m->gone);
	m->got.fd = m->fds[0];
	m->left.fd = m->gone[0];
	m->got.rv = m->left.rv = -1;
	SL_ASSERT_OK(pthread_create(&m->a, NULL, thread_reader, &m->got));
	SL_ASSERT_OK(pthread_create(&m->b, NULL, thread_reader, &m->left));
	sl_sleep(30 * SL_MILLISECOND);
	SL_CHECK_OK(sl_write(m->fds[1], "thread", 6, &n, NULL, SL_FOREVER));
	SL_ASSERT_OK(pthread_join(m->a, NULL));
	/* m->b still waits when this returns: sl_main releases it. */
}

static void
test_threads(void **state)
{
	struct thr_main m;
	char c;
	size_t n;

	(void) state;
	memset(&m, 0, sizeof(m));
	slt_run(body_threads, &m);
	assert_int_equal(m.got.rv, 0);
	assert_int_equal(m.got.n, 6);
	assert_memory_equal(m.got.buf, "thread", 6);
	assert_int_equal(pthread_join(m.b, NULL), 0);
	assert_int_equal(m.left.rv, SL_ESTATE);
	/* No scheduler now: a thread cannot wait. */
	assert_int_equal(sl_read(m.gone[0], &c, 1, &n, NULL, SL_FOREVER),
	    SL_ESTATE);
	for (int i = 0; i < 2; i++) {
		close(m.fds[i]);
		close(m.gone[i]);
	}
}

/* A thread released by the end of sl_main may count itself out of the
 * waiters only after the next sl_main has begun polling: the next run's
 * waits must be polled all the same.  A signal handler holds it. */
struct slow {
	int        fds[2];
	pthread_t  t;
	int        rv;
	atomic_int in;  /* the handler runs */
	atomic_int go;  /* the handler may return */
};

static struct slow *slow_now;

static void
slow_handler(int sig)
{
	struct timespec ms = { 0, 1000 * 1000 };

	(void) sig;
	atomic_store(&slow_now->in, 1);
	while (!atomic_load(&slow_now->go))
		nanosleep(&ms, NULL);
}

static void *
slow_waiter(void *arg)
{
	struct slow *s = arg;

	s->rv = sl_fd_wait(s->fds[0], SL_FD_READ, NULL, SL_FOREVER);
	return (NULL);
}

static void
body_slow_first(void *arg)
{
	struct slow *s = arg;
	int64_t give_up;

	SL_ASSERT_OK(pthread_create(&s->t, NULL, slow_waiter, s));
	sl_sleep(100 * SL_MILLISECOND); /* it waits */
	SL_ASSERT_OK(pthread_kill(s->t, SIGUSR1));
	give_up = sl_now() + SL_SECOND;
	while (!atomic_load(&s->in) && sl_now() < give_up)
		sl_sleep(SL_MILLISECOND);
	/* Returning releases the thread, still in its handler. */
}

static void
slow_write(void *arg)
{
	struct slow *s = arg;

	sl_sleep(30 * SL_MILLISECOND);
	SL_CHECK_EQ(write(s->fds[1], "w", 1), 1);
}

static void
body_slow_second(void *arg)
{
	struct slow *s = arg;
	int64_t t0;

	/* The poller of this run is up before the thread leaves. */
	SL_CHECK_OK(sl_fd_wait(s->fds[1], SL_FD_WRITE, NULL, SL_FOREVER));
	atomic_store(&s->go, 1);
	SL_ASSERT_OK(pthread_join(s->t, NULL));
	SL_CHECK_EQ(s->rv, SL_ESTATE);
	SL_CHECK_OK(sl_go(slow_write, s));
	t0 = sl_now();
	SL_CHECK_OK(sl_fd_wait(s->fds[0], SL_FD_READ, NULL,
	    sl_now() + 3 * SL_SECOND));
	SL_CHECK(sl_now() - t0 < 2 * SL_SECOND);
}

static void
test_thread_leaves_late(void **state)
{
	static struct slow s;
	struct sigaction sa, old;

	(void) state;
	memset(&s, 0, sizeof(s));
	slow_now = &s;
	nb_pipe(s.fds);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = slow_handler;
	SL_ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
	slt_run_procs(1, body_slow_first, &s);
	slt_run_procs(1, body_slow_second, &s);
	SL_ASSERT_OK(sigaction(SIGUSR1, &old, NULL));
	close(s.fds[0]);
	close(s.fds[1]);
}

/* ---- a wait on a descriptor is not a deadlock --------------------------- */

static void *
late_writer(void *arg)
{
	int fd = *(int *) arg;

	usleep(100 * 1000);
	if (write(fd, "!", 1) != 1)
		abort();
	return (NULL);
}

static void
body_not_deadlock(void *arg)
{
	int fds[2];
	pthread_t t;
	char c = 0, *dump = NULL;
	size_t n, len = 0;
	FILE *f;
	sl_waitgroup wg = SL_WAITGROUP_INIT;
	struct op h = { 0 };

	(void) arg;
	nb_pipe(fds);
	SL_ASSERT_OK(pthread_create(&t, NULL, late_writer, &fds[1]));
	/* The only goroutine, no timer, no deadline: only the descriptor
	 * can end this, and the detector must not call it a deadlock. */
	SL_CHECK_OK(sl_read(fds[0], &c, 1, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(c, '!');
	pthread_join(t, NULL);

	/* The dump names the descriptor a goroutine waits on. */
	h.fd = fds[0];
	h.wg = &wg;
	sl_waitgroup_add(&wg, 1);
	SL_CHECK_OK(sl_go(op_read, &h));
	sl_sleep(20 * SL_MILLISECOND);
	f = open_memstream(&dump, &len);
	SL_ASSERT_OK(f != NULL ? 0 : -1);
	sl_dump_goroutines(f);
	fclose(f);
	char want[32];
	snprintf(want, sizeof(want), "[fd %d read]", fds[0]);
	if (strstr(dump, want) == NULL)
		SLT_FATAL("dump lacks %s:\n%s", want, dump);
	free(dump);
	SL_CHECK_OK(sl_fd_close(fds[0]));
	sl_waitgroup_wait(&wg);
	SL_CHECK_ERR(h.rv, SL_ECLOSED);
	close(fds[1]);
}

static void
test_not_deadlock(void **state)
{
	(void) state;
	slt_run(body_not_deadlock, NULL);
}

/*
 * Dumps taken while fd waits come and go: every fd line names the
 * descriptor whole.  The reason text once lived on the waiter's stack,
 * which the next wait overwrote while a dump read it (torn lines; TSan
 * reported the race).
 */
struct churn {
	int        fd;
	atomic_int stop;
	sl_waitgroup wg;
};

static void
churn_waits(void *arg)
{
	struct churn *c = arg;

	for (int i = 0; !atomic_load(&c->stop); i++)
		(void) sl_fd_wait(c->fd, i % 2 == 0 ? SL_FD_READ :
		    SL_FD_READ | SL_FD_WRITE, NULL,
		    sl_now() + 20 * SL_MICROSECOND);
	sl_waitgroup_done(&c->wg);
}

static void
body_dump_churn(void *arg)
{
	struct churn c = { .wg = SL_WAITGROUP_INIT };
	int          fds[2], rounds = (int) slt_scaled(500), torn = 0;
	char         want[2][32];

	(void) arg;
	nb_pipe(fds);
	c.fd = fds[0];
	snprintf(want[0], sizeof(want[0]), "[fd %d read]", fds[0]);
	snprintf(want[1], sizeof(want[1]), "[fd %d read/write]", fds[0]);
	sl_waitgroup_add(&c.wg, 2);
	SL_CHECK_OK(sl_go(churn_waits, &c));
	SL_CHECK_OK(sl_go(churn_waits, &c));
	for (int i = 0; i < rounds; i++) {
		char  *dump = NULL, *at;
		size_t len = 0;
		FILE  *f = open_memstream(&dump, &len);

		SL_ASSERT_OK(f != NULL ? 0 : -1);
		sl_dump_goroutines(f);
		fclose(f);
		for (at = dump; (at = strstr(at, "[fd ")) != NULL; at++)
			if (strncmp(at, want[0], strlen(want[0])) != 0 &&
			    strncmp(at, want[1], strlen(want[1])) != 0)
				torn++;
		free(dump);
		sl_yield();
	}
	atomic_store(&c.stop, 1);
	sl_waitgroup_wait(&c.wg);
	SL_CHECK_EQ(torn, 0);
	close(fds[0]);
	close(fds[1]);
}

static void
test_dump_while_waits_churn(void **state)
{
	(void) state;
	slt_run_procs(2, body_dump_churn, NULL);
}

/* ---- a descriptor number reused after a plain close ---------------------- */

static void
body_reused(void *arg)
{
	int a[2], b[2];
	char c = 0;
	size_t n;

	(void) arg;
	for (int round = 0; round < 3; round++) {
		nb_pipe(a);
		/* A wait that gives up leaves the kernel's one-shot armed. */
		SL_CHECK_ERR(sl_fd_wait(a[0], SL_FD_READ, NULL,
		    sl_now() + 10 * SL_MILLISECOND), SL_ETIMEDOUT);
		close(a[0]); /* plain close: epoll forgets the file */
		close(a[1]);
		nb_pipe(b);  /* the lowest numbers again */
		SL_CHECK_EQ(b[0], a[0]);
		SL_CHECK(write(b[1], "r", 1) == 1);
		SL_CHECK_OK(sl_read(b[0], &c, 1, &n, NULL,
		    sl_now() + 5 * SL_SECOND));
		SL_CHECK_EQ(c, 'r');
		/* And one that waits for data to come. */
		SL_CHECK_ERR(sl_fd_wait(b[0], SL_FD_READ, NULL,
		    sl_now() + 10 * SL_MILLISECOND), SL_ETIMEDOUT);
		SL_CHECK(write(b[1], "s", 1) == 1);
		SL_CHECK_OK(sl_fd_wait(b[0], SL_FD_READ, NULL,
		    sl_now() + 5 * SL_SECOND));
		close(b[0]);
		close(b[1]);
	}
}

static void
test_number_reused(void **state)
{
	(void) state;
	slt_run_procs(1, body_reused, NULL);
}

/* A goroutine still waits on a number closed with plain close(2) (it
 * waits for its deadline, as fd.h says) when the number is reused: a
 * wait on the new file still sees the new file's data at once. */
static void
reused_old_waiter(void *arg)
{
	int rv = sl_fd_wait((int) (intptr_t) arg, SL_FD_READ, NULL,
	    sl_now() + SL_SECOND);

	SL_CHECK(rv == 0 || rv == SL_ETIMEDOUT);
}

static void
body_reused_live(void *arg)
{
	int a[2], b[2];
	char c = 0;
	int64_t t0;

	(void) arg;
	nb_pipe(a);
	SL_CHECK_OK(sl_go(reused_old_waiter, (void *) (intptr_t) a[0]));
	/* One worker: it runs when this one parks, and queues (arms). */
	sl_sleep(20 * SL_MILLISECOND);
	close(a[0]); /* plain close: epoll forgets the file */
	close(a[1]);
	nb_pipe(b);
	SL_CHECK_EQ(b[0], a[0]);
	SL_CHECK(write(b[1], "n", 1) == 1);
	t0 = sl_now();
	SL_CHECK_OK(sl_fd_wait(b[0], SL_FD_READ, NULL,
	    sl_now() + 5 * SL_SECOND));
	SL_CHECK(sl_now() - t0 < 500 * SL_MILLISECOND);
	SL_CHECK(read(b[0], &c, 1) == 1);
	SL_CHECK_EQ(c, 'n');
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	close(b[0]);
	close(b[1]);
}

static void
test_number_reused_while_waited(void **state)
{
	(void) state;
	slt_run_procs(1, body_reused_live, NULL);
}

/* ---- a TCP echo server: a goroutine per connection ----------------------- */

#define ECHO_CLIENTS 200
#define ECHO_BYTES   3000

struct echo {
	int                lfd;
	struct sockaddr_in addr;
	sl_waitgroup       clients;  /* client goroutines */
	sl_waitgroup       served;   /* connection goroutines */
	atomic_int         right;    /* clients that got their bytes back */
	atomic_int         accepted;
	atomic_long        echoed;   /* bytes the server sent back */
};

struct echo_conn {
	struct echo *e;
	int          fd;
	int          id;
};

static void
echo_serve(void *arg)
{
	struct echo_conn *c = arg;
	char buf[1000];
	size_t n;

	for (;;) {
		SL_CHECK_OK(sl_read(c->fd, buf, sizeof(buf), &n, NULL,
		    sl_now() + 60 * SL_SECOND));
		if (n == 0)
			break;
		SL_CHECK_OK(sl_write(c->fd, buf, n, NULL, NULL,
		    sl_now() + 60 * SL_SECOND));
		atomic_fetch_add(&c->e->echoed, (long) n);
	}
	SL_CHECK_OK(sl_fd_close(c->fd));
	sl_waitgroup_done(&c->e->served);
	free(c);
}

static void
echo_listen(void *arg)
{
	struct echo *e = arg;

	for (int i = 0; i < ECHO_CLIENTS; i++) {
		struct echo_conn *c = calloc(1, sizeof(*c));
		int fd;

		SL_ASSERT_OK(c != NULL ? 0 : -1);
		SL_CHECK_OK(sl_accept(e->lfd, &fd, NULL,
		    sl_now() + 60 * SL_SECOND));
		SL_CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
		c->e = e;
		c->fd = fd;
		atomic_fetch_add(&e->accepted, 1);
		sl_waitgroup_add(&e->served, 1);
		SL_CHECK_OK(sl_go(echo_serve, c));
	}
}

static void
echo_client(void *arg)
{
	struct echo_conn *c = arg;
	unsigned char out[ECHO_BYTES], in[ECHO_BYTES + 1]; /* room for 1 too many */
	size_t got = 0, n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);

	for (int i = 0; i < ECHO_BYTES; i++)
		out[i] = (unsigned char) (i * 31 + c->id);
	SL_CHECK_OK(sl_connect(fd, (struct sockaddr *) &c->e->addr,
	    sizeof(c->e->addr), NULL, sl_now() + 60 * SL_SECOND));
	SL_CHECK_OK(sl_write(fd, out, sizeof(out), &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, ECHO_BYTES);
	SL_CHECK(shutdown(fd, SHUT_WR) == 0);
	for (;;) {
		int rv = sl_read(fd, in + got, sizeof(in) - got, &n, NULL,
		    sl_now() + 60 * SL_SECOND);

		if (rv != 0)
			SLT_FATAL("client %d: sl_read: %s (%s)", c->id,
			    sl_errname(rv), strerror(errno));
		got += n;
		if (n == 0 || got == sizeof(in))
			break;
	}
	if (got == ECHO_BYTES && memcmp(in, out, sizeof(out)) == 0)
		atomic_fetch_add(&c->e->right, 1);
	SL_CHECK_OK(sl_fd_close(fd));
	sl_waitgroup_done(&c->e->clients);
}

static void
body_echo(void *arg)
{
	static struct echo e;
	static struct echo_conn cl[ECHO_CLIENTS];
	socklen_t alen = sizeof(e.addr);
	int fd;

	(void) arg;
	memset(&e, 0, sizeof(e));
	e.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	e.addr.sin_family = AF_INET;
	e.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	SL_ASSERT_OK(bind(e.lfd, (struct sockaddr *) &e.addr,
	    sizeof(e.addr)));
	SL_ASSERT_OK(listen(e.lfd, SOMAXCONN));
	SL_ASSERT_OK(getsockname(e.lfd, (struct sockaddr *) &e.addr, &alen));
	SL_CHECK_OK(sl_go(echo_listen, &e));
	sl_waitgroup_add(&e.clients, ECHO_CLIENTS);
	for (int i = 0; i < ECHO_CLIENTS; i++) {
		cl[i].e = &e;
		cl[i].id = i;
		SL_CHECK_OK(sl_go(echo_client, &cl[i]));
	}
	sl_waitgroup_wait(&e.clients);
	sl_waitgroup_wait(&e.served);
	SL_CHECK_EQ(atomic_load(&e.accepted), ECHO_CLIENTS);
	SL_CHECK_EQ(atomic_load(&e.right), ECHO_CLIENTS);
	SL_CHECK_EQ(atomic_load(&e.echoed), (long) ECHO_CLIENTS * ECHO_BYTES);

	/* No one connecting: accept gives up at its deadline, or when the
	 * listener is closed under it. */
	SL_CHECK_ERR(sl_accept(e.lfd, &fd, NULL,
	    sl_now() + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK_EQ(fd, -1);
	SL_CHECK_OK(sl_fd_close(e.lfd));

	/* Nobody listens there now: refused. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SL_CHECK_ERR(sl_connect(fd, (struct sockaddr *) &e.addr,
	    sizeof(e.addr), NULL, sl_now() + 10 * SL_SECOND),
	    SL_ECONNREFUSED);
	SL_CHECK_EQ(errno, ECONNREFUSED);
	close(fd);
	SL_CHECK_ERR(sl_connect(fd, NULL, 0, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_accept(e.lfd, NULL, NULL, SL_FOREVER), SL_EINVAL);
}

static void
test_tcp_echo(void **state)
{
	(void) state;
	slt_run_procs(1, body_echo, NULL);
	slt_run_procs(2, body_echo, NULL);
}

/* ---- bad input ------------------------------------------------------- */

static void
body_bad(void *arg)
{
	int fds[2], closed;
	char c;
	size_t n;

	(void) arg;
	nb_pipe(fds);
	/* A first wait starts the poller (its descriptors taken first). */
	SL_CHECK_OK(sl_fd_wait(fds[1], SL_FD_WRITE, NULL, SL_FOREVER));
	/* A number far above the lowest free one: the kernel hands out the
	 * lowest, so a descriptor that some other thread opens meanwhile
	 * (valgrind's own, once in a CI run) does not take it. */
	closed = fcntl(fds[0], F_DUPFD_CLOEXEC, 500);
	if (closed < 0)
		SLT_FATAL("F_DUPFD_CLOEXEC: %s", strerror(errno));
	close(closed);
	SL_CHECK_ERR(sl_fd_wait(-1, SL_FD_READ, NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(closed, SL_FD_READ, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(fds[0], 0, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_fd_wait(fds[0], 4, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_fd_wait(1 << 22, SL_FD_READ, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_ERR(sl_read(fds[0], &c, 1, NULL, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_ERR(sl_read(fds[0], NULL, 1, &n, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_ERR(sl_read(closed, &c, 1, &n, NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_ERR(sl_write(fds[1], NULL, 1, &n, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_ERR(sl_write(closed, "x", 1, &n, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_OK(sl_write(fds[1], NULL, 0, NULL, NULL, SL_FOREVER));
	SL_CHECK_OK(sl_read(fds[0], NULL, 0, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 0);
	SL_CHECK_ERR(sl_fd_close(-1), SL_EBADF);
	SL_CHECK_ERR(sl_fd_close(closed), SL_EBADF);
	SL_CHECK(strcmp(sl_strerror(SL_EBADF), "bad file descriptor") == 0);
	close(fds[0]);
	close(fds[1]);
}

static void
test_bad_input(void **state)
{
	(void) state;
	slt_run(body_bad, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_parks),
		cmocka_unit_test(test_busy_workers_poll),
		cmocka_unit_test(test_stream_both_ways),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_close_wakes),
		cmocka_unit_test(test_eof_and_epipe),
		cmocka_unit_test(test_many_descriptors),
		cmocka_unit_test(test_file_and_both_directions),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_thread_leaves_late),
		cmocka_unit_test(test_not_deadlock),
		cmocka_unit_test(test_dump_while_waits_churn),
		cmocka_unit_test(test_number_reused),
		cmocka_unit_test(test_number_reused_while_waited),
		cmocka_unit_test(test_tcp_echo),
		cmocka_unit_test(test_bad_input),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
