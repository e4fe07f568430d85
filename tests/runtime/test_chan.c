/*
 * test_chan.c — channels: unbuffered rendezvous, buffered FIFO, len/cap,
 * close and drain, close waking blocked parties, closed-channel errors and
 * the Go-style panic, the abort of a release under a blocked thread, the
 * NULL channel, zero-size and struct elements, deadlines/contexts on send
 * and receive, channels used from plain threads,
 * a many-producer many-consumer stress, cancellation racing with
 * transfers, the batch forms (sl_chan_send_many, sl_chan_recv_many), a
 * NULL element (refused for a send, discarding for a receive), and Go's
 * prime sieve.
 */
#include <pthread.h>

#include "sltest.h"
#include "chan/chan.h"
#include "core/lock.h"

/* ---- unbuffered rendezvous ---------------------------------------------- */

struct rdv {
	sl_chan     *ch;
	atomic_int   step;      /* 0: receiver not there yet; 1: it arrived */
	atomic_int   sent;      /* the sender's send returned */
	int          seen_step; /* step as the sender saw it after its send */
	sl_waitgroup wg;
};

static void
rdv_sender(void *arg)
{
	struct rdv *r = arg;
	int v = 42;

	SL_CHECK_OK(sl_chan_send(r->ch, &v));
	r->seen_step = atomic_load(&r->step);
	atomic_store(&r->sent, 1);
	sl_waitgroup_done(&r->wg);
}

static void
rdv_receiver(void *arg)
{
	struct rdv *r = arg;
	int v = 0;

	SL_CHECK_OK(sl_chan_recv(r->ch, &v));
	SL_CHECK_EQ(v, 7);
	r->seen_step = atomic_load(&r->step);
	atomic_store(&r->sent, 1);
	sl_waitgroup_done(&r->wg);
}

/* A send on an unbuffered channel does not complete before a receiver
 * arrives, and a receive does not complete before a sender arrives. */
static void
body_unbuffered_rendezvous(void *arg)
{
	struct rdv r;
	int v = 0;

	(void) arg;
	memset(&r, 0, sizeof(r));
	r.ch = sl_chan_make(sizeof(int), 0);
	SL_CHECK(r.ch != NULL);
	SL_CHECK_EQ(sl_chan_cap(r.ch), 0);

	/* Sender first: it must still be blocked after a while. */
	sl_waitgroup_add(&r.wg, 1);
	SL_CHECK_OK(sl_go(rdv_sender, &r));
	for (int i = 0; i < 10; i++) {
		sl_yield();
		sl_sleep(2 * SL_MILLISECOND);
		SL_CHECK_EQ(atomic_load(&r.sent), 0);
	}
	atomic_store(&r.step, 1);
	SL_CHECK_OK(sl_chan_recv(r.ch, &v));
	SL_CHECK_EQ(v, 42);
	sl_waitgroup_wait(&r.wg);
	SL_CHECK_EQ(atomic_load(&r.sent), 1);
	SL_CHECK_EQ(r.seen_step, 1);

	/* Receiver first. */
	atomic_store(&r.step, 0);
	atomic_store(&r.sent, 0);
	sl_waitgroup_add(&r.wg, 1);
	SL_CHECK_OK(sl_go(rdv_receiver, &r));
	for (int i = 0; i < 10; i++) {
		sl_yield();
		sl_sleep(2 * SL_MILLISECOND);
		SL_CHECK_EQ(atomic_load(&r.sent), 0);
	}
	atomic_store(&r.step, 1);
	v = 7;
	SL_CHECK_OK(sl_chan_send(r.ch, &v));
	sl_waitgroup_wait(&r.wg);
	SL_CHECK_EQ(r.seen_step, 1);

	/* Nobody on the other side: the non-blocking forms would block. */
	SL_CHECK_ERR(sl_chan_trysend(r.ch, &v), SL_EAGAIN);
	SL_CHECK_ERR(sl_chan_tryrecv(r.ch, &v), SL_EAGAIN);
	SL_CHECK_EQ(sl_chan_len(r.ch), 0);
	sl_chan_release(r.ch);
}

static void
test_unbuffered_rendezvous(void **state)
{
	slt_run(body_unbuffered_rendezvous, *state);
}

/* ---- buffered FIFO -------------------------------------------------------- */

struct fifo {
	sl_chan *ch;
	int      n;
};

static void
fifo_producer(void *arg)
{
	struct fifo *f = arg;

	for (int i = 0; i < f->n; i++)
		SL_CHECK_OK(sl_chan_send(f->ch, &i));
	SL_CHECK_OK(sl_chan_close(f->ch));
	sl_chan_release(f->ch); /* taken for us by the spawner */
}

/* A buffered channel keeps FIFO order, accepts exactly cap elements without
 * a receiver, and keeps the order with a concurrent producer. */
static void
body_buffered_fifo(void *arg)
{
	enum { CAP = 8 };
	sl_chan *ch = sl_chan_make(sizeof(int), CAP);
	struct fifo f;
	int v;

	(void) arg;
	SL_CHECK(ch != NULL);
	for (int i = 0; i < CAP; i++) {
		v = 100 + i;
		SL_CHECK_OK(sl_chan_trysend(ch, &v));
		SL_CHECK_EQ(sl_chan_len(ch), i + 1);
	}
	v = 999;
	SL_CHECK_ERR(sl_chan_trysend(ch, &v), SL_EAGAIN);
	SL_CHECK_EQ(sl_chan_len(ch), CAP);
	for (int i = 0; i < CAP; i++) {
		v = -1;
		SL_CHECK_OK(sl_chan_recv(ch, &v));
		SL_CHECK_EQ(v, 100 + i);
	}
	SL_CHECK_ERR(sl_chan_tryrecv(ch, &v), SL_EAGAIN);

	/* Wrap around the ring several times with a concurrent producer. */
	f.ch = ch;
	f.n = (int) slt_scaled_min(10000, 100);
	sl_chan_retain(ch);
	SL_CHECK_OK(sl_go(fifo_producer, &f));
	for (int i = 0; i < f.n; i++) {
		v = -1;
		SL_CHECK_OK(sl_chan_recv(ch, &v));
		if (v != i) {
			SL_CHECK_EQ(v, i);
			break;
		}
	}
	SL_CHECK_ERR(sl_chan_recv(ch, &v), SL_ECLOSED);
	sl_chan_release(ch);
}

static void
test_buffered_fifo(void **state)
{
	slt_run(body_buffered_fifo, *state);
}

/* ---- len / cap / elem_size / retain ----------------------------------- */

static void
body_len_cap(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 5);
	sl_chan *un = sl_chan_make(sizeof(double), 0);
	int v = 1;

	(void) arg;
	SL_CHECK(ch != NULL && un != NULL);
	SL_CHECK_EQ(sl_chan_cap(ch), 5);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK_EQ(sl_chan_elem_size(ch), sizeof(int));
	SL_CHECK_EQ(sl_chan_cap(un), 0);
	SL_CHECK_EQ(sl_chan_len(un), 0);
	SL_CHECK_EQ(sl_chan_elem_size(un), sizeof(double));
	for (int i = 0; i < 3; i++)
		SL_CHECK_OK(sl_chan_send(ch, &v));
	SL_CHECK_EQ(sl_chan_len(ch), 3);
	SL_CHECK_OK(sl_chan_recv(ch, NULL)); /* NULL discards */
	SL_CHECK_EQ(sl_chan_len(ch), 2);
	SL_CHECK_EQ(sl_chan_cap(ch), 5);
	SL_CHECK(!sl_chan_closed(ch));
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK(sl_chan_closed(ch));
	SL_CHECK_EQ(sl_chan_len(ch), 2); /* still buffered after close */

	/* retain returns the channel; it survives one release. */
	SL_CHECK(sl_chan_retain(ch) == ch);
	sl_chan_release(ch);
	SL_CHECK_EQ(sl_chan_cap(ch), 5);
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	sl_chan_release(ch);
	sl_chan_release(un);
	sl_chan_release(NULL);
}

static void
test_len_cap(void **state)
{
	slt_run(body_len_cap, *state);
}

/* ---- close / drain ------------------------------------------------------ */

/* After close, every buffered element is delivered first; then receives
 * report SL_ECLOSED (Go's ok == false), again and again. */
static void
body_close_drain(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 4);
	int v;

	(void) arg;
	for (v = 1; v <= 3; v++)
		SL_CHECK_OK(sl_chan_send(ch, &v));
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK(sl_chan_closed(ch));
	v = 0;
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK_EQ(v, 1);
	SL_CHECK_OK(sl_chan_tryrecv(ch, &v));
	SL_CHECK_EQ(v, 2);
	SL_CHECK_OK(sl_chan_recv_ctx(ch, &v, NULL, SL_FOREVER));
	SL_CHECK_EQ(v, 3);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	for (int i = 0; i < 3; i++) {
		SL_CHECK_ERR(sl_chan_recv(ch, &v), SL_ECLOSED);
		SL_CHECK_ERR(sl_chan_tryrecv(ch, &v), SL_ECLOSED);
		SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL,
		    sl_now() + SL_SECOND), SL_ECLOSED);
		SL_CHECK_ERR(sl_chan_recv(ch, NULL), SL_ECLOSED);
	}
	sl_chan_release(ch);

	/* An unbuffered closed channel is drained at once. */
	ch = sl_chan_make(sizeof(int), 0);
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK_ERR(sl_chan_recv(ch, &v), SL_ECLOSED);
	sl_chan_release(ch);
}

static void
test_close_drain(void **state)
{
	slt_run(body_close_drain, *state);
}

/* ---- close wakes everybody ------------------------------------------- */

enum { CW_N = 20 };

struct cw {
	sl_chan     *rch;   /* receivers block here (unbuffered) */
	sl_chan     *sch;   /* senders block here (full buffer) */
	atomic_int   started;
	atomic_int   r_closed, s_closed, other;
	sl_waitgroup wg;
};

static void
cw_receiver(void *arg)
{
	struct cw *c = arg;
	int v, rv;

	atomic_fetch_add(&c->started, 1);
	rv = sl_chan_recv(c->rch, &v);
	if (rv == SL_ECLOSED)
		atomic_fetch_add(&c->r_closed, 1);
	else
		atomic_fetch_add(&c->other, 1);
	sl_waitgroup_done(&c->wg);
}

static void
cw_sender(void *arg)
{
	struct cw *c = arg;
	int v = 5, rv;

	atomic_fetch_add(&c->started, 1);
	rv = sl_chan_send(c->sch, &v);
	if (rv == SL_ECLOSED)
		atomic_fetch_add(&c->s_closed, 1);
	else
		atomic_fetch_add(&c->other, 1);
	sl_waitgroup_done(&c->wg);
}

/* Closing wakes every blocked receiver (SL_ECLOSED) and every blocked
 * sender (SL_ECLOSED); the buffered elements remain receivable. */
static void
body_close_wakes_all(void *arg)
{
	struct cw c;
	int v;

	(void) arg;
	memset(&c, 0, sizeof(c));
	c.rch = sl_chan_make(sizeof(int), 0);
	c.sch = sl_chan_make(sizeof(int), 2);
	for (v = 1; v <= 2; v++)
		SL_CHECK_OK(sl_chan_send(c.sch, &v));
	sl_waitgroup_add(&c.wg, 2 * CW_N);
	for (int i = 0; i < CW_N; i++) {
		SL_CHECK_OK(sl_go(cw_receiver, &c));
		SL_CHECK_OK(sl_go(cw_sender, &c));
	}
	while (atomic_load(&c.started) < 2 * CW_N)
		sl_sleep(SL_MILLISECOND);
	sl_sleep(20 * SL_MILLISECOND); /* let them all park */
	SL_CHECK_EQ(atomic_load(&c.r_closed) + atomic_load(&c.s_closed) +
	    atomic_load(&c.other), 0);
	SL_CHECK_EQ(sl_numgoroutine(), 1 + 2 * CW_N);

	SL_CHECK_OK(sl_chan_close(c.rch));
	SL_CHECK_OK(sl_chan_close(c.sch));
	sl_waitgroup_wait(&c.wg);
	SL_CHECK_EQ(atomic_load(&c.r_closed), CW_N);
	SL_CHECK_EQ(atomic_load(&c.s_closed), CW_N);
	SL_CHECK_EQ(atomic_load(&c.other), 0);

	/* Exactly the two elements sent before close remain. */
	SL_CHECK_EQ(sl_chan_len(c.sch), 2);
	SL_CHECK_OK(sl_chan_recv(c.sch, &v));
	SL_CHECK_EQ(v, 1);
	SL_CHECK_OK(sl_chan_recv(c.sch, &v));
	SL_CHECK_EQ(v, 2);
	SL_CHECK_ERR(sl_chan_recv(c.sch, &v), SL_ECLOSED);
	sl_chan_release(c.rch);
	sl_chan_release(c.sch);
}

static void
test_close_wakes_all(void **state)
{
	slt_run(body_close_wakes_all, *state);
}

/* ---- closed-channel errors ---------------------------------------------- */

static void
body_closed_errors(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 3);
	int v = 1;

	(void) arg;
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK_ERR(sl_chan_send(ch, &v), SL_ECLOSED);
	SL_CHECK_ERR(sl_chan_trysend(ch, &v), SL_ECLOSED);
	SL_CHECK_ERR(sl_chan_send_ctx(ch, &v, NULL, SL_FOREVER), SL_ECLOSED);
	SL_CHECK_ERR(sl_chan_close(ch), SL_ECLOSED);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK_ERR(sl_chan_close(NULL), SL_ECLOSED);
	sl_chan_release(ch);

	ch = sl_chan_make(sizeof(int), 0);
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK_ERR(sl_chan_send(ch, &v), SL_ECLOSED);
	SL_CHECK_ERR(sl_chan_close(ch), SL_ECLOSED);
	sl_chan_release(ch);
}

static void
test_closed_errors(void **state)
{
	slt_run(body_closed_errors, *state);
}

/* ---- panic mode (child process) ----------------------------------------- */

static void
panic_send_body(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);
	int v = 1;

	(void) arg;
	sl_chan_set_panic(true);
	(void) sl_chan_close(ch);
	(void) sl_chan_send(ch, &v); /* aborts */
	fprintf(stderr, "send on closed channel returned\n");
	sl_chan_release(ch);
}

static void
panic_close_body(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);

	(void) arg;
	sl_chan_set_panic(true);
	(void) sl_chan_close(ch);
	(void) sl_chan_close(ch); /* aborts */
	fprintf(stderr, "close of closed channel returned\n");
	sl_chan_release(ch);
}

struct panic_arg {
	sl_fn body;
};

static void
panic_child(void *arg)
{
	struct panic_arg *pa = arg;
	int rv = sl_main(pa->body, NULL);

	fprintf(stderr, "sl_main returned %s\n", sl_errname(rv));
	_exit(3);
}

static void
expect_abort_with(sl_fn body, const char *text)
{
	struct panic_arg pa = { body };
	slt_child res;
	char sbuf[128];

	assert_int_equal(slt_fork(panic_child, &pa, &res), 0);
	if (!WIFSIGNALED(res.status) || strstr(res.err, text) == NULL) {
		print_message("child %s; stderr:\n%s\n",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("expected an abort mentioning \"%s\"", text);
	}
}

/* With sl_chan_set_panic(true), sending on a closed channel aborts with
 * Go's message. */
static void
test_panic_send_on_closed(void **state)
{
	(void) state;
	expect_abort_with(panic_send_body, "send on closed channel");
}

/* ... and so does closing a closed channel. */
static void
test_panic_close_of_closed(void **state)
{
	(void) state;
	expect_abort_with(panic_close_body, "close of closed channel");
}

/* Misuse without sl_chan_set_panic: what SLUICE_PANIC says decides. */
static void
panic_env_body(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);
	int v = 1;

	(void) arg;
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK_ERR(sl_chan_send(ch, &v), SL_ECLOSED); /* or aborts */
	SL_CHECK_ERR(sl_chan_close(ch), SL_ECLOSED);
	sl_chan_release(ch);
}

static void
panic_quiet_body(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);

	(void) arg;
	SL_CHECK_OK(sl_chan_close(ch));
	sl_chan_release(ch);
}

static void
panic_env_child(void *arg)
{
	setenv("SLUICE_PANIC", arg, 1);
	panic_child(&(struct panic_arg){ panic_env_body });
}

/* SLUICE_PANIC=1 turns the aborts on, as sl_chan_set_panic(true) does;
 * 0, empty or unset leaves SL_ECLOSED.  sl_main reads it at each start,
 * so one process sees both. */
static void
test_panic_env(void **state)
{
	slt_child res;
	char sbuf[128];

	(void) state;
	assert_int_equal(slt_fork(panic_env_child, "1", &res), 0);
	if (!WIFSIGNALED(res.status) ||
	    strstr(res.err, "send on closed channel") == NULL) {
		print_message("child %s; stderr:\n%s\n",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("SLUICE_PANIC=1: expected an abort");
	}
	/* on for one run that does no harm, then off for the next */
	setenv("SLUICE_PANIC", "1", 1);
	slt_run(panic_quiet_body, NULL);
	setenv("SLUICE_PANIC", "0", 1);
	slt_run(panic_env_body, NULL);
	setenv("SLUICE_PANIC", "", 1);
	slt_run(panic_env_body, NULL);
	unsetenv("SLUICE_PANIC");
	slt_run(panic_env_body, NULL);
}

/* ---- freeing a channel under a blocked thread ---------------------------- */

struct lone {
	sl_chan *ch;
	int      rv;
};

/* A plain thread's receive that gives up after a while. */
static void *
lone_recv(void *arg)
{
	struct lone *l = arg;
	int v;

	l->rv = sl_chan_recv_ctx(l->ch, &v, NULL,
	    sl_now() + 200 * SL_MILLISECOND);
	return (NULL);
}

/* In the child, with no sl_main: releases the last reference while a
 * plain thread is blocked in a receive, which must abort. */
static void
release_blocked_child(void *arg)
{
	struct lone l = { .ch = sl_chan_make(sizeof(int), 0), .rv = -1 };
	pthread_t th;
	bool queued = false;

	(void) arg;
	alarm(10); /* a thread spinning on the freed lock fails, not hangs */
	if (pthread_create(&th, NULL, lone_recv, &l) != 0)
		_exit(4);
	while (!queued) {
		usleep(1000);
		sli_lock(&l.ch->lock);
		queued = l.ch->recvq.head != NULL;
		sli_unlock(&l.ch->lock);
	}
	sl_chan_release(l.ch); /* aborts */
	(void) pthread_join(th, NULL);
	fprintf(stderr, "release returned; the receive returned %s\n",
	    sl_errname(l.rv));
}

/* The header's promise that releasing the last reference under a blocked
 * party aborts holds for a plain thread too, with no sl_main running (a
 * thread, unlike an abandoned goroutine, comes back to the channel). */
static void
test_release_under_blocked_thread(void **state)
{
	slt_child res;
	char sbuf[128];

	(void) state;
	assert_int_equal(slt_fork(release_blocked_child, NULL, &res), 0);
	if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT ||
	    strstr(res.err, "freed while goroutines or threads are "
	    "blocked on it") == NULL) {
		print_message("child %s; stderr:\n%s\n",
		    slt_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
		fail_msg("expected an abort: channel freed under a thread");
	}
}

/* ---- NULL channel ------------------------------------------------------ */

static void
body_nil_channel(void *arg)
{
	sl_ctx *ctx;
	int64_t t0, dl;
	int v = 3;

	(void) arg;
	SL_CHECK_ERR(sl_chan_trysend(NULL, &v), SL_EAGAIN);
	SL_CHECK_ERR(sl_chan_tryrecv(NULL, &v), SL_EAGAIN);
	/* deadline 0 is a try on any channel, a NULL one too */
	SL_CHECK_ERR(sl_chan_send_ctx(NULL, &v, NULL, 0), SL_EAGAIN);
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, &v, NULL, 0), SL_EAGAIN);
	{
		size_t n = 9;

		SL_CHECK_ERR(sl_chan_recv_many(NULL, &v, 1, &n, NULL, 0),
		    SL_EAGAIN);
		SL_CHECK_EQ(n, 0);
		SL_CHECK_ERR(sl_chan_send_many(NULL, &v, 1, &n, NULL, 0),
		    SL_EAGAIN);
		SL_CHECK_EQ(n, 0);
	}

	t0 = sl_now();
	dl = t0 + 20 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, &v, NULL, dl), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);
	SL_CHECK(sl_now() - t0 < 5 * SL_SECOND);
	dl = sl_now() + 20 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_chan_send_ctx(NULL, &v, NULL, dl), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);

	/* A canceled context ends the wait too. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	sl_ctx_cancel(ctx);
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, &v, ctx, SL_FOREVER),
	    SL_ECANCELED);
	SL_CHECK_ERR(sl_chan_send_ctx(NULL, &v, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);
	SL_CHECK_EQ(v, 3);
}

static void
test_nil_channel(void **state)
{
	slt_run(body_nil_channel, *state);
}

/* ---- zero-size elements ------------------------------------------------- */

static void
zero_signaller(void *arg)
{
	sl_chan *ch = arg;
	char dummy = 0;

	for (int i = 0; i < 100; i++)
		SL_CHECK_OK(sl_chan_send(ch, &dummy));
	SL_CHECK_OK(sl_chan_close(ch));
	sl_chan_release(ch); /* taken for us by the spawner */
}

/* Channels of zero-size elements count signals exactly. */
static void
body_zero_size(void *arg)
{
	sl_chan *ch = sl_chan_make(0, 3);
	char dummy = 0;
	int n = 0;

	(void) arg;
	SL_CHECK(ch != NULL);
	SL_CHECK_EQ(sl_chan_elem_size(ch), 0);
	SL_CHECK_EQ(sl_chan_cap(ch), 3);
	for (int i = 0; i < 3; i++)
		SL_CHECK_OK(sl_chan_trysend(ch, &dummy));
	SL_CHECK_ERR(sl_chan_trysend(ch, &dummy), SL_EAGAIN);
	SL_CHECK_EQ(sl_chan_len(ch), 3);
	for (int i = 0; i < 3; i++)
		SL_CHECK_OK(sl_chan_recv(ch, NULL));
	SL_CHECK_ERR(sl_chan_tryrecv(ch, NULL), SL_EAGAIN);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	sl_chan_release(ch);

	ch = sl_chan_make(0, 0);
	SL_CHECK(ch != NULL);
	SL_CHECK_OK(sl_go(zero_signaller, sl_chan_retain(ch)));
	while (sl_chan_recv(ch, NULL) == 0)
		n++;
	SL_CHECK_EQ(n, 100);
	sl_chan_release(ch);
}

static void
test_zero_size(void **state)
{
	slt_run(body_zero_size, *state);
}

/* ---- struct elements by value ------------------------------------------ */

struct rec {
	int    id;
	double x;
	char   name[40];
	int    pad[64]; /* makes the element big: 256+ bytes */
};

static void
rec_fill(struct rec *r, int id)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->x = id * 0.5;
	snprintf(r->name, sizeof(r->name), "record-%d", id);
	for (int i = 0; i < 64; i++)
		r->pad[i] = id * 64 + i;
}

static bool
rec_ok(const struct rec *r, int id)
{
	struct rec want;

	rec_fill(&want, id);
	return (memcmp(r, &want, sizeof(want)) == 0);
}

static void
rec_producer(void *arg)
{
	sl_chan *ch = arg;
	struct rec r;

	for (int i = 0; i < 500; i++) {
		rec_fill(&r, i);
		SL_CHECK_OK(sl_chan_send(ch, &r));
		memset(&r, 0xee, sizeof(r)); /* the channel has its copy */
	}
	SL_CHECK_OK(sl_chan_close(ch));
	sl_chan_release(ch); /* taken for us by the spawner */
}

/* Elements are copied by value on send and on receive. */
static void
body_struct_by_value(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(struct rec), 4);
	struct rec r, out;
	int n = 0;

	(void) arg;
	rec_fill(&r, 7);
	SL_CHECK_OK(sl_chan_send(ch, &r));
	r.id = 8;
	strcpy(r.name, "changed");
	SL_CHECK_OK(sl_chan_recv(ch, &out));
	SL_CHECK(rec_ok(&out, 7));

	/* Through unbuffered and buffered channels with a live producer. */
	for (int cap = 0; cap <= 4; cap += 4) {
		sl_chan *c = sl_chan_make(sizeof(struct rec), (size_t) cap);

		SL_CHECK_OK(sl_go(rec_producer, sl_chan_retain(c)));
		n = 0;
		while (sl_chan_recv(c, &out) == 0) {
			if (!rec_ok(&out, n))
				SL_CHECK(rec_ok(&out, n));
			n++;
		}
		SL_CHECK_EQ(n, 500);
		sl_chan_release(c);
	}
	sl_chan_release(ch);
}

static void
test_struct_by_value(void **state)
{
	slt_run(body_struct_by_value, *state);
}

/* ---- send/recv with deadlines and contexts ------------------------------- */

struct canceller {
	sl_ctx *ctx;
	int64_t after;
};

static void
cancel_later(void *arg)
{
	struct canceller *c = arg;

	sl_sleep(c->after);
	sl_ctx_cancel(c->ctx);
	sl_ctx_release(c->ctx); /* taken for us by the spawner */
}

static void
body_ctx_and_deadline(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 1);
	struct canceller cn;
	sl_ctx *ctx;
	int64_t t0, dl;
	int v = 1;

	(void) arg;
	/* receive on empty, send on full: time out at the deadline */
	dl = sl_now() + 20 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, dl), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);
	SL_CHECK_OK(sl_chan_send(ch, &v));
	dl = sl_now() + 20 * SL_MILLISECOND;
	SL_CHECK_ERR(sl_chan_send_ctx(ch, &v, NULL, dl), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= dl);
	SL_CHECK_EQ(sl_chan_len(ch), 1);

	/* a ready operation with a far deadline succeeds */
	v = 0;
	SL_CHECK_OK(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + SL_SECOND));
	SL_CHECK_EQ(v, 1);

	/* a context canceled while blocked */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	cn.ctx = sl_ctx_retain(ctx);
	cn.after = 20 * SL_MILLISECOND;
	t0 = sl_now(); /* before the canceller can start its sleep */
	SL_CHECK_OK(sl_go(cancel_later, &cn));
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, ctx, SL_FOREVER), SL_ECANCELED);
	SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
	SL_CHECK(sl_now() - t0 < 10 * SL_SECOND);

	/* a done context is checked first, even when the op could proceed */
	v = 9;
	SL_CHECK_ERR(sl_chan_send_ctx(ch, &v, ctx, SL_FOREVER), SL_ECANCELED);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK_OK(sl_chan_send(ch, &v));
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, ctx, SL_FOREVER), SL_ECANCELED);
	SL_CHECK_EQ(sl_chan_len(ch), 1);
	sl_ctx_release(ctx);

	/* a context with a timeout reports SL_EDEADLINE */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    20 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_chan_send_ctx(ch, &v, ctx, SL_FOREVER), SL_EDEADLINE);
	sl_ctx_release(ctx);
	sl_chan_release(ch);
}

static void
test_ctx_and_deadline(void **state)
{
	slt_run(body_ctx_and_deadline, *state);
}

/* ---- plain threads ------------------------------------------------------ */

enum { TH_N = 10000 };

struct thr {
	sl_chan  *data;
	sl_chan  *done;
	long long sum;
};

static void *
thread_sender(void *arg)
{
	struct thr *t = arg;
	long long s = 0;

	for (int i = 1; i <= TH_N; i++) {
		SL_CHECK_OK(sl_chan_send(t->data, &i));
		s += i;
	}
	SL_CHECK_OK(sl_chan_close(t->data));
	SL_CHECK_OK(sl_chan_send(t->done, &s));
	sl_sched_release();
	return (NULL);
}

static void *
thread_receiver(void *arg)
{
	struct thr *t = arg;
	long long s = 0;
	int v, n = 0;

	while (sl_chan_recv(t->data, &v) == 0) {
		s += v;
		n++;
	}
	SL_CHECK_EQ(n, TH_N);
	SL_CHECK_OK(sl_chan_send(t->done, &s));
	sl_sched_release();
	return (NULL);
}

static void
goroutine_sender(void *arg)
{
	struct thr *t = arg;
	sl_chan *data = t->data; /* *t is reused once data is closed */

	for (int i = 1; i <= TH_N; i++)
		SL_CHECK_OK(sl_chan_send(data, &i));
	SL_CHECK_OK(sl_chan_close(data));
	sl_chan_release(data); /* taken for us by the spawner */
}

/* A plain pthread sends 10000 ints that a goroutine receives, and a
 * goroutine sends 10000 ints that a plain pthread receives; the sums are
 * exact.  Done over unbuffered and buffered channels. */
static void
body_threads(void *arg)
{
	const long long want = (long long) TH_N * (TH_N + 1) / 2;

	(void) arg;
	for (size_t cap = 0; cap <= 16; cap += 16) {
		struct thr t;
		pthread_t th;
		long long s = 0, ts = 0;
		int v;

		/* thread -> goroutine */
		t.data = sl_chan_make(sizeof(int), cap);
		t.done = sl_chan_make(sizeof(long long), 1);
		sl_sched_hold();
		SL_CHECK_EQ(pthread_create(&th, NULL, thread_sender, &t), 0);
		while (sl_chan_recv(t.data, &v) == 0)
			s += v;
		SL_CHECK_OK(sl_chan_recv(t.done, &ts));
		SL_CHECK_EQ(s, want);
		SL_CHECK_EQ(ts, want);
		SL_CHECK_EQ(pthread_join(th, NULL), 0);
		sl_chan_release(t.data);
		sl_chan_release(t.done);

		/* goroutine -> thread */
		t.data = sl_chan_make(sizeof(int), cap);
		t.done = sl_chan_make(sizeof(long long), 0);
		sl_sched_hold();
		SL_CHECK_EQ(pthread_create(&th, NULL, thread_receiver, &t), 0);
		sl_chan_retain(t.data);
		SL_CHECK_OK(sl_go(goroutine_sender, &t));
		ts = 0;
		SL_CHECK_OK(sl_chan_recv(t.done, &ts));
		SL_CHECK_EQ(ts, want);
		SL_CHECK_EQ(pthread_join(th, NULL), 0);
		sl_chan_release(t.data);
		sl_chan_release(t.done);
	}
}

static void
test_threads(void **state)
{
	slt_run(body_threads, *state);
}

/* ---- many producers, many consumers -------------------------------------- */

enum { MP_P = 4, MP_C = 4 };

struct mpmc {
	sl_chan     *ch;
	int          per;       /* values per producer */
	atomic_llong sum;
	atomic_int   count;
	atomic_int   seen[MP_P];  /* per producer: values received */
	sl_waitgroup prod, cons;
};

struct mp_arg {
	struct mpmc *m;
	int          id;
};

static void
mp_producer(void *arg)
{
	struct mp_arg *a = arg;

	for (int i = 0; i < a->m->per; i++) {
		int v = a->id * a->m->per + i;

		SL_CHECK_OK(sl_chan_send(a->m->ch, &v));
		if ((i & 63) == 0)
			sl_yield();
	}
	sl_waitgroup_done(&a->m->prod);
}

static void
mp_consumer(void *arg)
{
	struct mpmc *m = arg;
	int v;

	while (sl_chan_recv(m->ch, &v) == 0) {
		atomic_fetch_add(&m->sum, v);
		atomic_fetch_add(&m->count, 1);
		atomic_fetch_add(&m->seen[v / m->per], 1);
	}
	sl_waitgroup_done(&m->cons);
}

/* Every value is received exactly once with several producers and
 * consumers racing, unbuffered and buffered. */
static void
body_mpmc(void *arg)
{
	(void) arg;
	for (size_t cap = 0; cap <= 16; cap += 16) {
		struct mpmc m;
		struct mp_arg a[MP_P];
		long long total, want;

		memset(&m, 0, sizeof(m));
		m.ch = sl_chan_make(sizeof(int), cap);
		m.per = (int) slt_scaled_min(5000, 50);
		total = (long long) MP_P * m.per;
		want = total * (total - 1) / 2;
		sl_waitgroup_add(&m.prod, MP_P);
		sl_waitgroup_add(&m.cons, MP_C);
		for (int i = 0; i < MP_C; i++)
			SL_CHECK_OK(sl_go(mp_consumer, &m));
		for (int i = 0; i < MP_P; i++) {
			a[i].m = &m;
			a[i].id = i;
			SL_CHECK_OK(sl_go(mp_producer, &a[i]));
		}
		sl_waitgroup_wait(&m.prod);
		SL_CHECK_OK(sl_chan_close(m.ch));
		sl_waitgroup_wait(&m.cons);
		SL_CHECK_EQ(atomic_load(&m.count), total);
		SL_CHECK_EQ(atomic_load(&m.sum), want);
		for (int i = 0; i < MP_P; i++)
			SL_CHECK_EQ(atomic_load(&m.seen[i]), m.per);
		sl_chan_release(m.ch);
	}
}

static void
test_mpmc(void **state)
{
	slt_run(body_mpmc, *state);
}

/* ---- batch forms: sl_chan_send_many / sl_chan_recv_many ---------------- */

struct bat {
	sl_chan     *ch;
	int          n;      /* elements the helper moves */
	int          got[64];
	int          ngot;
	int          rv;
	size_t       sent;
	sl_waitgroup wg;
};

/* Receives b->n ints one at a time. */
static void
bat_recv_one_by_one(void *arg)
{
	struct bat *b = arg;

	for (b->ngot = 0; b->ngot < b->n; b->ngot++)
		SL_CHECK_OK(sl_chan_recv(b->ch, &b->got[b->ngot]));
	sl_waitgroup_done(&b->wg);
}

/* Receives b->n ints with sl_chan_recv_many, 4 at most at a time. */
static void
bat_recv_many(void *arg)
{
	struct bat *b = arg;

	b->ngot = 0;
	while (b->ngot < b->n) {
		size_t k = 0;
		SL_CHECK_OK(sl_chan_recv_many(b->ch, &b->got[b->ngot], 4, &k,
		    NULL, SL_FOREVER));
		SL_CHECK(k >= 1 && k <= 4);
		b->ngot += (int) k;
	}
	sl_waitgroup_done(&b->wg);
}

/* Sends 0..b->n-1 with one sl_chan_send_many, keeping what it says. */
static void
bat_send_many(void *arg)
{
	struct bat *b = arg;
	int v[64];

	for (int i = 0; i < b->n; i++)
		v[i] = i;
	b->rv = sl_chan_send_many(b->ch, v, (size_t) b->n, &b->sent, NULL,
	    SL_FOREVER);
	sl_waitgroup_done(&b->wg);
}

/* Blocks in a one-element receive (to have receivers queued). */
static void
bat_recv_one(void *arg)
{
	struct bat *b = arg;
	int v = -1;

	SL_CHECK_OK(sl_chan_recv(b->ch, &v));
	b->got[v] = 1;
	sl_waitgroup_done(&b->wg);
}

/* The batch forms keep FIFO order across the ring's wrap, hand elements
 * to receivers already waiting before they touch the buffer, wait for
 * room or for a first element, and report closed, timeouts and bad
 * arguments as the one-element forms do. */
static void
body_batch(void *arg)
{
	sl_chan   *ch = sl_chan_make(sizeof(int), 8);
	int        v[32], out[32];
	size_t     n = 99, sent = 99;
	struct bat b;

	(void) arg;
	for (int i = 0; i < 32; i++)
		v[i] = 100 + i;

	/* Buffered: in, partly out, the rest out. */
	SL_CHECK_OK(sl_chan_send_many(ch, v, 5, &sent, NULL, SL_FOREVER));
	SL_CHECK_EQ(sent, 5);
	SL_CHECK_EQ(sl_chan_len(ch), 5);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 3, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 3);
	SL_CHECK(out[0] == 100 && out[1] == 101 && out[2] == 102);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 2);
	SL_CHECK(out[0] == 103 && out[1] == 104);

	/* Across the wrap: the ring's head is at 5; 8 in, 8 out. */
	SL_CHECK_OK(sl_chan_send_many(ch, v + 10, 8, &sent, NULL,
	    SL_FOREVER));
	SL_CHECK_EQ(sent, 8);
	SL_CHECK_EQ(sl_chan_len(ch), 8);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 8);
	for (int i = 0; i < 8; i++)
		SL_CHECK_EQ(out[i], 110 + i);

	/* Nothing there: a deadline ends the wait; a full channel makes
	 * a send wait, and what fitted is reported. */
	SL_CHECK_ERR(sl_chan_recv_many(ch, out, 4, &n, NULL,
	    sl_now() + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK_EQ(n, 0);
	SL_CHECK_ERR(sl_chan_send_many(ch, v, 11, &sent, NULL,
	    sl_now() + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK_EQ(sent, 8);
	SL_CHECK_ERR(sl_chan_recv_many(ch, out, 0, &n, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 8);
	SL_CHECK_EQ(out[7], 107);

	/* More than fits, a one-by-one receiver draining: all of it, in
	 * order. */
	memset(&b, 0, sizeof(b));
	b.ch = ch;
	b.n = 30;
	sl_waitgroup_add(&b.wg, 1);
	SL_CHECK_OK(sl_go(bat_recv_one_by_one, &b));
	SL_CHECK_OK(sl_chan_send_many(ch, v, 30, &sent, NULL, SL_FOREVER));
	SL_CHECK_EQ(sent, 30);
	sl_waitgroup_wait(&b.wg);
	for (int i = 0; i < 30; i++)
		SL_CHECK_EQ(b.got[i], 100 + i);

	/* Two receivers already waiting get the first two elements
	 * directly; the other three are buffered. */
	memset(&b, 0, sizeof(b));
	b.ch = ch;
	sl_waitgroup_add(&b.wg, 2);
	SL_CHECK_OK(sl_go(bat_recv_one, &b));
	SL_CHECK_OK(sl_go(bat_recv_one, &b));
	sl_sleep(20 * SL_MILLISECOND); /* let them park */
	for (int i = 0; i < 5; i++)
		out[i] = i;
	SL_CHECK_OK(sl_chan_send_many(ch, out, 5, &sent, NULL, SL_FOREVER));
	sl_waitgroup_wait(&b.wg);
	SL_CHECK(b.got[0] == 1 && b.got[1] == 1);
	SL_CHECK_EQ(sl_chan_len(ch), 3);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER));
	SL_CHECK(n == 3 && out[0] == 2 && out[1] == 3 && out[2] == 4);

	/* Closed with elements buffered: they come first, then
	 * SL_ECLOSED; a send on it sends nothing. */
	SL_CHECK_OK(sl_chan_send_many(ch, v, 2, NULL, NULL, SL_FOREVER));
	SL_CHECK_OK(sl_chan_close(ch));
	SL_CHECK_ERR(sl_chan_send_many(ch, v, 2, &sent, NULL, SL_FOREVER),
	    SL_ECLOSED);
	SL_CHECK_EQ(sent, 0);
	SL_CHECK_OK(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER));
	SL_CHECK(n == 2 && out[0] == 100 && out[1] == 101);
	SL_CHECK_ERR(sl_chan_recv_many(ch, out, 32, &n, NULL, SL_FOREVER),
	    SL_ECLOSED);
	SL_CHECK_EQ(n, 0);
	sl_chan_release(ch);

	/* A sender waiting for room when the channel closes: SL_ECLOSED,
	 * and it says how many went. */
	memset(&b, 0, sizeof(b));
	b.ch = ch = sl_chan_make(sizeof(int), 2);
	b.n = 5;
	sl_waitgroup_add(&b.wg, 1);
	SL_CHECK_OK(sl_go(bat_send_many, &b));
	/* Two fit; whether or not it waits for room yet, the close
	 * stops the third. */
	while (sl_chan_len(ch) < 2)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(sl_chan_close(ch));
	sl_waitgroup_wait(&b.wg);
	SL_CHECK_ERR(b.rv, SL_ECLOSED);
	SL_CHECK_EQ(b.sent, 2);
	sl_chan_release(ch);

	/* Unbuffered: every element is a rendezvous, in order. */
	memset(&b, 0, sizeof(b));
	b.ch = ch = sl_chan_make(sizeof(int), 0);
	b.n = 9;
	sl_waitgroup_add(&b.wg, 1);
	SL_CHECK_OK(sl_go(bat_recv_many, &b));
	SL_CHECK_OK(sl_chan_send_many(ch, v, 9, &sent, NULL, SL_FOREVER));
	SL_CHECK_EQ(sent, 9);
	sl_waitgroup_wait(&b.wg);
	SL_CHECK_EQ(b.ngot, 9);
	for (int i = 0; i < 9; i++)
		SL_CHECK_EQ(b.got[i], 100 + i);
	sl_chan_release(ch);
}

static void
test_batch(void **state)
{
	slt_run(body_batch, *state);
}

/* ---- a NULL element ------------------------------------------------------ */

/* Starts fn(b) on ch to move n elements, b fresh. */
static void
bat_start(struct bat *b, sl_chan *ch, int n, sl_fn fn)
{
	memset(b, 0, sizeof(*b));
	b->ch = ch;
	b->n = n;
	sl_waitgroup_add(&b->wg, 1);
	SL_CHECK_OK(sl_go(fn, b));
}

/* Sends from NULL, keeping what the send returned. */
static void
bat_send_null(void *arg)
{
	struct bat *b = arg;

	b->rv = sl_chan_send(b->ch, NULL);
	sl_waitgroup_done(&b->wg);
}

/* A send from NULL on a channel whose elements have a size is refused
 * with SL_EINVAL before anything moves: there is nothing to copy, and a
 * sender left waiting would have its receiver read through NULL.  On a
 * zero-size channel NULL is the usual argument.  A receive into NULL
 * discards, in the batch form as in the one-element one. */
static void
body_null_elem(void *arg)
{
	sl_chan   *ch = sl_chan_make(sizeof(int), 4);
	sl_chan   *sig = sl_chan_make(0, 1);
	int        v[3] = { 7, 8, 9 }, got = -1;
	size_t     n = 99;
	struct bat b;

	(void) arg;
	SL_CHECK_ERR(sl_chan_trysend(ch, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_chan_send(ch, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_chan_send_many(ch, NULL, 2, &n, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_EQ(n, 0);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK_OK(sl_chan_send(sig, NULL));
	SL_CHECK_OK(sl_chan_recv(sig, NULL));

	/* Discarded in a batch: from the ring, then from a full ring with a
	 * sender waiting for room (or about to), then after a wait for the
	 * first element. */
	SL_CHECK_OK(sl_chan_send_many(ch, v, 3, &n, NULL, SL_FOREVER));
	SL_CHECK_ERR(sl_chan_recv_many(ch, &got, 4, NULL, NULL, SL_FOREVER),
	    SL_EINVAL);
	SL_CHECK_EQ(sl_chan_len(ch), 3);
	SL_CHECK_OK(sl_chan_recv_many(ch, NULL, 2, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 2);
	SL_CHECK_OK(sl_chan_recv(ch, &got));
	SL_CHECK_EQ(got, 9);
	SL_CHECK_OK(sl_chan_send_many(ch, v, 3, &n, NULL, SL_FOREVER));
	bat_start(&b, ch, 3, bat_send_many);
	while (sl_chan_len(ch) < 4)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(sl_chan_recv_many(ch, NULL, 3, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 3);
	sl_waitgroup_wait(&b.wg);
	SL_CHECK_OK(b.rv);
	SL_CHECK_EQ(b.sent, 3);
	SL_CHECK_OK(sl_chan_recv_many(ch, v, 3, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 3);
	SL_CHECK(v[0] == 0 && v[1] == 1 && v[2] == 2);
	bat_start(&b, ch, 3, bat_send_many);
	SL_CHECK_OK(sl_chan_recv_many(ch, NULL, 4, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 3);
	sl_waitgroup_wait(&b.wg);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	sl_chan_release(ch);

	/* Unbuffered: whichever of the two comes first, the sender from
	 * NULL is refused and the receiver gets nothing. */
	ch = sl_chan_make(sizeof(int), 0);
	bat_start(&b, ch, 1, bat_send_null);
	got = -1;
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &got, NULL,
	    sl_now() + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	SL_CHECK_EQ(got, -1);
	sl_waitgroup_wait(&b.wg);
	SL_CHECK_ERR(b.rv, SL_EINVAL);
	sl_chan_release(ch);
	sl_chan_release(sig);
}

static void
test_null_elem(void **state)
{
	slt_run(body_null_elem, *state);
}

/* A batch receive writes nothing past what it returns: here the first
 * element comes from a blocked wait, and the channel is closed before
 * the receiver runs again, so the rest of the batch finds it closed and
 * drained (which once zeroed elems[1]; found by test_chaos). */
static void
bb_send_close(void *arg)
{
	sl_chan *ch = arg;
	uint64_t v = 42;

	SL_CHECK_OK(sl_chan_send(ch, &v)); /* to the parked receiver */
	SL_CHECK_OK(sl_chan_close(ch));
}

static void
body_batch_bounds(void *arg)
{
	(void) arg;
	for (size_t cap = 0; cap <= 4; cap += 4) {
		sl_chan *ch = sl_chan_make(sizeof(uint64_t), cap);
		uint64_t buf[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
		size_t   n = 0;

		SL_CHECK_OK(sl_go(bb_send_close, ch));
		SL_CHECK_OK(sl_chan_recv_many(ch, buf, 3, &n, NULL,
		    SL_FOREVER));
		SL_CHECK_EQ(n, 1);
		SL_CHECK_EQ(buf[0], 42);
		SL_CHECK(buf[1] == UINT64_MAX && buf[2] == UINT64_MAX);
		/* Closed and drained: SL_ECLOSED, only elems[0] zeroed. */
		buf[0] = UINT64_MAX;
		SL_CHECK_ERR(sl_chan_recv_many(ch, buf, 3, &n, NULL,
		    SL_FOREVER), SL_ECLOSED);
		SL_CHECK_EQ(n, 0);
		SL_CHECK_EQ(buf[0], 0);
		SL_CHECK(buf[1] == UINT64_MAX && buf[2] == UINT64_MAX);
		sl_chan_release(ch);
	}
}

static void
test_batch_bounds(void **state)
{
	slt_run_procs(1, body_batch_bounds, *state);
	slt_run_procs(2, body_batch_bounds, *state);
}

/* Batch producers and consumers racing (several threads): every value
 * arrives exactly once. */
enum { BM_P = 3, BM_C = 3 };

struct bmpmc {
	sl_chan     *ch;
	int          per;
	atomic_llong sum, count;
	sl_waitgroup prod, cons;
};

struct bm_arg {
	struct bmpmc *m;
	int           id;
};

static void
bm_producer(void *arg)
{
	struct bmpmc *m = ((struct bm_arg *) arg)->m;
	int id = ((struct bm_arg *) arg)->id;
	int v[37];

	for (int i = 0; i < m->per; ) {
		int k = 0;
		/* Chunks of 1..37 values. */
		for (; k < 1 + (i % 37) && i < m->per; k++, i++)
			v[k] = id * m->per + i;
		SL_CHECK_OK(sl_chan_send_many(m->ch, v, (size_t) k, NULL,
		    NULL, SL_FOREVER));
	}
	sl_waitgroup_done(&m->prod);
}

static void
bm_consumer(void *arg)
{
	struct bmpmc *m = arg;
	int v[16];
	size_t n;
	long long sum = 0, count = 0;

	while (sl_chan_recv_many(m->ch, v, 16, &n, NULL, SL_FOREVER) == 0) {
		for (size_t i = 0; i < n; i++)
			sum += v[i];
		count += (long long) n;
	}
	atomic_fetch_add(&m->sum, sum);
	atomic_fetch_add(&m->count, count);
	sl_waitgroup_done(&m->cons);
}

static void
body_batch_mpmc(void *arg)
{
	(void) arg;
	for (size_t cap = 0; cap <= 64; cap += 64) {
		struct bmpmc   m;
		struct bm_arg  a[BM_P];
		long long      total;

		memset(&m, 0, sizeof(m));
		m.ch = sl_chan_make(sizeof(int), cap);
		m.per = (int) slt_scaled_min(20000, 200);
		total = (long long) BM_P * m.per;
		sl_waitgroup_add(&m.prod, BM_P);
		sl_waitgroup_add(&m.cons, BM_C);
		for (int i = 0; i < BM_C; i++)
			SL_CHECK_OK(sl_go(bm_consumer, &m));
		for (int i = 0; i < BM_P; i++) {
			a[i].m = &m;
			a[i].id = i;
			SL_CHECK_OK(sl_go(bm_producer, &a[i]));
		}
		sl_waitgroup_wait(&m.prod);
		SL_CHECK_OK(sl_chan_close(m.ch));
		sl_waitgroup_wait(&m.cons);
		SL_CHECK_EQ(atomic_load(&m.count), total);
		SL_CHECK_EQ(atomic_load(&m.sum), total * (total - 1) / 2);
		sl_chan_release(m.ch);
	}
}

static void
test_batch_mpmc(void **state)
{
	slt_run(body_batch_mpmc, *state);
}

/* ---- cancellation racing with transfers ------------------------------ */

enum { CR_SEND = 4, CR_RECV = 4 };

struct crace {
	sl_chan     *ch;
	int          per;      /* attempts per sender */
	atomic_int   stop;     /* senders finished */
	atomic_int   sent, recvd;
	atomic_llong sent_sum, recvd_sum;
	atomic_int   canceled;  /* operations ended by their context */
	sl_waitgroup senders, receivers;
};

static uint64_t
cr_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s);
}

static void
cr_sender(void *arg)
{
	struct crace *c = arg;
	uint64_t rng = 0x1234567ULL + sl_goid();

	for (int i = 1; i <= c->per; i++) {
		sl_ctx *ctx;
		int rv;

		SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
		    (int64_t) (cr_rand(&rng) % 40) * SL_MICROSECOND, &ctx));
		rv = sl_chan_send_ctx(c->ch, &i, ctx, SL_FOREVER);
		if (rv == 0) {
			atomic_fetch_add(&c->sent, 1);
			atomic_fetch_add(&c->sent_sum, i);
		} else {
			SL_CHECK_ERR(rv, SL_EDEADLINE);
			atomic_fetch_add(&c->canceled, 1);
		}
		sl_ctx_release(ctx);
	}
	sl_waitgroup_done(&c->senders);
}

static void
cr_receiver(void *arg)
{
	struct crace *c = arg;
	uint64_t rng = 0x7654321ULL + sl_goid();

	for (;;) {
		int stop = atomic_load(&c->stop);
		sl_ctx *ctx;
		int v = 0, rv;

		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
		if (cr_rand(&rng) % 2 == 0) {
			/* canceled explicitly, maybe while a sender hands
			 * over */
			sl_yield();
			sl_ctx_cancel(ctx);
		}
		rv = sl_chan_recv_ctx(c->ch, &v, ctx,
		    sl_now() + (int64_t) (cr_rand(&rng) % 40) *
		    SL_MICROSECOND);
		if (rv == 0) {
			atomic_fetch_add(&c->recvd, 1);
			atomic_fetch_add(&c->recvd_sum, v);
		} else {
			SL_CHECK(rv == SL_ECANCELED || rv == SL_ETIMEDOUT);
		}
		sl_ctx_release(ctx);
		if (stop && rv != 0)
			break;
	}
	sl_waitgroup_done(&c->receivers);
}

/* Senders whose contexts time out and receivers whose contexts are
 * canceled or whose deadlines pass race on one unbuffered channel: every
 * send that reported success was received exactly once, and no receive
 * succeeded without a send. */
static void
body_cancel_race(void *arg)
{
	struct crace c;

	(void) arg;
	memset(&c, 0, sizeof(c));
	c.ch = sl_chan_make(sizeof(int), 0);
	c.per = (int) slt_scaled_min(3000, 100);
	sl_waitgroup_add(&c.senders, CR_SEND);
	sl_waitgroup_add(&c.receivers, CR_RECV);
	for (int i = 0; i < CR_RECV; i++)
		SL_CHECK_OK(sl_go(cr_receiver, &c));
	for (int i = 0; i < CR_SEND; i++)
		SL_CHECK_OK(sl_go(cr_sender, &c));
	sl_waitgroup_wait(&c.senders);
	atomic_store(&c.stop, 1);
	sl_waitgroup_wait(&c.receivers);
	printf("cancel race: %d sent, %d received, %d sends timed out\n",
	    atomic_load(&c.sent), atomic_load(&c.recvd),
	    atomic_load(&c.canceled));
	SL_CHECK_EQ(atomic_load(&c.sent) + atomic_load(&c.canceled),
	    CR_SEND * c.per);
	SL_CHECK_EQ(atomic_load(&c.recvd), atomic_load(&c.sent));
	SL_CHECK_EQ(atomic_load(&c.recvd_sum), atomic_load(&c.sent_sum));
	SL_CHECK(atomic_load(&c.sent) > 0);
	sl_chan_release(c.ch);
}

static void
test_cancel_race(void **state)
{
	slt_run(body_cancel_race, *state);
}

/* ---- prime sieve --------------------------------------------------------- */

enum { SIEVE_N = 100 };

struct sieve {
	sl_chan     *chans[SIEVE_N + 1]; /* chans[i]: output of stage i */
	sl_waitgroup wg;
};

struct sieve_stage {
	struct sieve *s;
	sl_chan      *in, *out;
	int           prime;
};

/* Sends 2, 3, 4, ... until the channel is closed under it. */
static void
sieve_generate(void *arg)
{
	struct sieve_stage *st = arg;

	for (int i = 2;; i++) {
		if (sl_chan_send(st->out, &i) != 0)
			break;
	}
	sl_waitgroup_done(&st->s->wg);
}

/* Passes on what prime does not divide.  When its output is closed it
 * closes its input, so the shutdown ripples back to the generator. */
static void
sieve_filter(void *arg)
{
	struct sieve_stage *st = arg;
	int v;

	while (sl_chan_recv(st->in, &v) == 0) {
		if (v % st->prime != 0 && sl_chan_send(st->out, &v) != 0)
			break;
	}
	(void) sl_chan_close(st->in);
	sl_waitgroup_done(&st->s->wg);
}

/* Go's concurrent prime sieve: a chain of goroutines, one per prime,
 * yields exactly the first 100 primes (the 100th is 541). */
static void
body_prime_sieve(void *arg)
{
	struct sieve s;
	struct sieve_stage st[SIEVE_N];
	int primes[SIEVE_N], want[SIEVE_N], nwant = 0;
	sl_chan *ch;

	(void) arg;
	/* the reference list, by trial division */
	for (int n = 2; nwant < SIEVE_N; n++) {
		bool prime = true;

		for (int d = 2; d * d <= n; d++)
			prime = prime && n % d != 0;
		if (prime)
			want[nwant++] = n;
	}
	memset(&s, 0, sizeof(s));
	ch = s.chans[0] = sl_chan_make(sizeof(int), 0);
	st[0].s = &s;
	st[0].in = NULL;
	st[0].out = ch;
	sl_waitgroup_add(&s.wg, 1);
	SL_CHECK_OK(sl_go(sieve_generate, &st[0]));
	for (int i = 0; i < SIEVE_N; i++) {
		primes[i] = -1;
		SL_CHECK_OK(sl_chan_recv(ch, &primes[i]));
		if (i == SIEVE_N - 1)
			break;
		st[i + 1].s = &s;
		st[i + 1].in = ch;
		st[i + 1].out = s.chans[i + 1] = sl_chan_make(sizeof(int), 0);
		st[i + 1].prime = primes[i];
		ch = st[i + 1].out;
		sl_waitgroup_add(&s.wg, 1);
		SL_CHECK_OK(sl_go(sieve_filter, &st[i + 1]));
	}
	SL_CHECK_EQ(primes[SIEVE_N - 1], 541);
	SL_CHECK_EQ(want[SIEVE_N - 1], 541);
	for (int i = 0; i < SIEVE_N; i++) {
		if (primes[i] != want[i]) {
			SL_CHECK_EQ(primes[i], want[i]);
			break;
		}
	}
	SL_CHECK_EQ(sl_numgoroutine(), 1 + SIEVE_N);
	/* shut the chain down from its end */
	SL_CHECK_OK(sl_chan_close(ch));
	sl_waitgroup_wait(&s.wg);
	for (int i = 0; i < SIEVE_N; i++)
		sl_chan_release(s.chans[i]);
}

static void
test_prime_sieve(void **state)
{
	slt_run(body_prime_sieve, *state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unbuffered_rendezvous),
		cmocka_unit_test(test_buffered_fifo),
		cmocka_unit_test(test_len_cap),
		cmocka_unit_test(test_close_drain),
		cmocka_unit_test(test_close_wakes_all),
		cmocka_unit_test(test_closed_errors),
		cmocka_unit_test(test_panic_send_on_closed),
		cmocka_unit_test(test_panic_close_of_closed),
		cmocka_unit_test(test_panic_env),
		cmocka_unit_test(test_release_under_blocked_thread),
		cmocka_unit_test(test_nil_channel),
		cmocka_unit_test(test_zero_size),
		cmocka_unit_test(test_struct_by_value),
		cmocka_unit_test(test_ctx_and_deadline),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_mpmc),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_batch_bounds),
		cmocka_unit_test(test_null_elem),
		cmocka_unit_test(test_batch_mpmc),
		cmocka_unit_test(test_cancel_race),
		cmocka_unit_test(test_prime_sieve),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
