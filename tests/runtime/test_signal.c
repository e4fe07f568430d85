/*
 * test_signal.c — signals as channel values and context cancellation
 * (sluice/signal.h, Go's os/signal).
 *
 * A signal reaches every channel registered for it and no other, exactly
 * once per signal when each is received before the next is sent (200
 * round trips); a channel without room misses it; sl_signal_stop ends
 * delivery at once and gives the signal its previous disposition back
 * (default: the process dies of it; ignored; a handler of the program's);
 * the end of sl_main drops every registration; sl_signal_ctx cancels its
 * context with the signal's name as the cause, and its stop restores the
 * default, and a signal leaves alone the contexts registered after it
 * came (also while the reader cancels the earlier ones); a goroutine
 * waiting for a signal is not reported as a deadlock; bursts from
 * several threads while goroutines switch leave the process running;
 * bad input gets SL_EINVAL and registers nothing, and a call with no
 * scheduler gets SL_ESTATE.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "sltest.h"

#include "sluice/signal.h"

/*
 * Under TSan, the dispositions as the kernel has them.  libsluice installs
 * its handler around TSan's sigaction interceptor (see signal.c), and the
 * interceptor answers a query from a table of its own.
 */
#if defined(__SANITIZE_THREAD__)
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
#define kernel_sigaction __sigaction
#else
#define kernel_sigaction sigaction
#endif

static const int usr1[] = { SIGUSR1 };
static const int usr2[] = { SIGUSR2 };

/* Receives one signal number from ch, or -1 after 5 s. */
static int
recv_sig(sl_chan *ch)
{
	int sig = -1;
	int rv = sl_chan_recv_ctx(ch, &sig, NULL, sl_now() + 5 * SL_SECOND);

	SL_CHECK_OK(rv);
	return (rv == 0 ? sig : -1);
}

/* The disposition of sig now: SIG_DFL, SIG_IGN or a handler. */
static void (*disposition(int sig))(int)
{
	struct sigaction sa;

	SL_ASSERT_OK(kernel_sigaction(sig, NULL, &sa));
	return (sa.sa_handler);
}

/* ---- delivery to channels ---------------------------------------------- */

static void
body_channels(void *arg)
{
	sl_chan *a = sl_chan_make(sizeof(int), 4);
	sl_chan *b = sl_chan_make(sizeof(int), 4);
	sl_chan *other = sl_chan_make(sizeof(int), 4);
	int      both[] = { SIGUSR1, SIGUSR2 };
	int      sig;

	(void) arg;
	SL_CHECK_OK(sl_signal_notify(a, usr1, 1));
	SL_CHECK_OK(sl_signal_notify(b, usr1, 1));
	SL_CHECK_OK(sl_signal_notify(other, usr2, 1));
	SL_CHECK(disposition(SIGUSR1) != SIG_DFL);

	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	SL_CHECK_EQ(recv_sig(a), SIGUSR1);
	SL_CHECK_EQ(recv_sig(b), SIGUSR1);
	/* A stop waits out a delivery in flight: after it, other has all
	 * it will get of that signal (nothing). */
	sl_signal_stop(a);
	SL_CHECK_ERR(sl_chan_tryrecv(other, &sig), SL_EAGAIN);
	SL_CHECK_ERR(sl_chan_tryrecv(a, &sig), SL_EAGAIN);

	/* a is stopped, b still wants SIGUSR1; other gets SIGUSR2. */
	SL_CHECK_OK(kill(getpid(), SIGUSR2));
	SL_CHECK_EQ(recv_sig(other), SIGUSR2);
	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	SL_CHECK_EQ(recv_sig(b), SIGUSR1);
	sl_signal_stop(b);
	SL_CHECK_ERR(sl_chan_tryrecv(a, &sig), SL_EAGAIN);
	SL_CHECK_ERR(sl_chan_tryrecv(other, &sig), SL_EAGAIN);

	/* Registering again adds to the set; a list may name both. */
	SL_CHECK_OK(sl_signal_notify(other, both, 2));
	SL_CHECK_OK(sl_signal_notify(other, usr1, 1));
	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	SL_CHECK_EQ(recv_sig(other), SIGUSR1);
	SL_CHECK_OK(kill(getpid(), SIGUSR2));
	SL_CHECK_EQ(recv_sig(other), SIGUSR2);
	sl_signal_stop(other);
	sl_signal_stop(other); /* twice is fine */
	SL_CHECK(disposition(SIGUSR1) == SIG_DFL);
	SL_CHECK(disposition(SIGUSR2) == SIG_DFL);

	sl_chan_release(a);
	sl_chan_release(b);
	sl_chan_release(other);
}

static void
test_channels(void **state)
{
	(void) state;
	slt_run_procs(2, body_channels, NULL);
	slt_run_procs(1, body_channels, NULL);
}

/* ---- exactly once per signal ------------------------------------------ */

#define ROUNDS 200

struct rounds {
	sl_chan *ack;  /* main -> sender: received, send the next */
	int      sent;
};

/* A plain thread (no goroutine, no hold on the scheduler) sends. */
static void *
sender_thread(void *arg)
{
	struct rounds *r = arg;

	for (int i = 0; i < ROUNDS; i++) {
		if (kill(getpid(), SIGUSR1) != 0)
			break;
		r->sent++;
		if (sl_chan_recv(r->ack, NULL) != 0)
			break;
	}
	return (NULL);
}

static void
body_rounds(void *arg)
{
	sl_chan      *sigs = sl_chan_make(sizeof(int), 8);
	struct rounds r = { sl_chan_make(0, 1), 0 };
	pthread_t     t;
	int           got = 0, sig;

	(void) arg;
	SL_CHECK_OK(sl_signal_notify(sigs, usr1, 1));
	SL_CHECK_OK(pthread_create(&t, NULL, sender_thread, &r));
	for (int i = 0; i < ROUNDS; i++) {
		if (recv_sig(sigs) != SIGUSR1)
			break;
		got++;
		SL_CHECK_OK(sl_chan_send(r.ack, NULL));
	}
	/* The sender is past its last receive: joining blocks briefly. */
	SL_CHECK_OK(pthread_join(t, NULL));
	SL_CHECK_EQ(got, ROUNDS);
	SL_CHECK_EQ(r.sent, ROUNDS);
	sl_signal_stop(sigs);
	SL_CHECK_ERR(sl_chan_tryrecv(sigs, &sig), SL_EAGAIN);
	sl_chan_release(sigs);
	sl_chan_release(r.ack);
}

static void
test_exactly_once(void **state)
{
	(void) state;
	slt_run_procs(2, body_rounds, NULL);
}

/* ---- a channel without room misses the signal ------------------------- */

static void
body_full(void *arg)
{
	sl_chan *full = sl_chan_make(sizeof(int), 1);
	sl_chan *witness = sl_chan_make(sizeof(int), 1);
	int      zero = 0, sig = -1;

	(void) arg;
	SL_CHECK_OK(sl_chan_send(full, &zero));
	SL_CHECK_OK(sl_signal_notify(full, usr1, 1));
	SL_CHECK_OK(sl_signal_notify(witness, usr1, 1));
	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	SL_CHECK_EQ(recv_sig(witness), SIGUSR1);
	sl_signal_stop(witness); /* the delivery is over */
	sl_signal_stop(full);
	SL_CHECK_EQ(sl_chan_len(full), 1);
	SL_CHECK_OK(sl_chan_tryrecv(full, &sig));
	SL_CHECK_EQ(sig, 0);
	SL_CHECK_ERR(sl_chan_tryrecv(full, &sig), SL_EAGAIN);
	sl_chan_release(full);
	sl_chan_release(witness);
}

static void
test_full_channel(void **state)
{
	(void) state;
	slt_run(body_full, NULL);
}

/* ---- previous dispositions come back ---------------------------------- */

static atomic_int hup_seen; /* lock-free: async-signal-safe */

static void
on_hup(int sig)
{
	(void) sig;
	atomic_store(&hup_seen, 1);
}

static void
body_restore(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 4);
	int      three[] = { SIGUSR1, SIGUSR2, SIGHUP };

	(void) arg;
	SL_CHECK_OK(sl_signal_notify(ch, three, 3));
	SL_CHECK_OK(kill(getpid(), SIGHUP));
	SL_CHECK_EQ(recv_sig(ch), SIGHUP);
	/* Ours runs, not the program's handler. */
	SL_CHECK_EQ(atomic_load(&hup_seen), 0);
	sl_signal_stop(ch);
	sl_chan_release(ch);
	/* SIGUSR2 was ignored, SIGHUP had a handler: both are back. */
	SL_CHECK_OK(kill(getpid(), SIGUSR2));
	SL_CHECK_OK(kill(getpid(), SIGHUP));
	/* Another thread may take it: give it time. */
	for (int i = 0; i < 500 && !atomic_load(&hup_seen); i++)
		sl_sleep(10 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&hup_seen), 1);
	/* SIGUSR1 had the default action: it ends the process. */
	(void) kill(getpid(), SIGUSR1);
	sl_sleep(5 * SL_SECOND);
	fprintf(stderr, "still alive after SIGUSR1\n");
}

static void
restore_child(void *arg)
{
	(void) arg;
	signal(SIGUSR2, SIG_IGN);
	signal(SIGHUP, on_hup);
	slt_run(body_restore, NULL);
	_exit(3);
}

static void
test_restore(void **state)
{
	slt_child res;
	char      buf[64];

	(void) state;
	assert_int_equal(slt_fork(restore_child, NULL, &res), 0);
	if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGUSR1)
		fail_msg("child %s, stderr:\n%s",
		    slt_status_str(res.status, buf, sizeof(buf)), res.err);
}

/* ---- the end of sl_main drops registrations ---------------------------- */

static void
body_leave_registered(void *arg)
{
	sl_chan *ch = arg;
	sl_ctx  *ctx;

	SL_CHECK_OK(sl_signal_notify(ch, usr1, 1));
	SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), usr2, 1, &ctx));
	sl_ctx_release(ctx); /* registered still: the runtime's reference */
	SL_CHECK(disposition(SIGUSR1) != SIG_DFL);
	SL_CHECK(disposition(SIGUSR2) != SIG_DFL);
}

static void
end_child(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 4);

	(void) arg;
	slt_run(body_leave_registered, ch);
	if (disposition(SIGUSR2) != SIG_DFL)
		fprintf(stderr, "SIGUSR2 still caught after sl_main\n");
	sl_chan_release(ch);
	(void) kill(getpid(), SIGUSR1);
	sleep(5);
	fprintf(stderr, "still alive after SIGUSR1\n");
	_exit(3);
}

static void
test_end_of_main(void **state)
{
	sl_chan  *ch;
	int       one[] = { SIGUSR1 };
	slt_child res;
	char      buf[64];

	(void) state;
	ch = sl_chan_make(sizeof(int), 4);
	/* In this process: nothing is left behind (valgrind, ASan). */
	slt_run(body_leave_registered, ch);
	assert_true(disposition(SIGUSR1) == SIG_DFL);
	assert_true(disposition(SIGUSR2) == SIG_DFL);
	assert_int_equal(sl_chan_len(ch), 0);
	/* And no registration without a scheduler. */
	assert_int_equal(sl_signal_notify(ch, one, 1), SL_ESTATE);
	sl_chan_release(ch);

	assert_int_equal(slt_fork(end_child, NULL, &res), 0);
	if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGUSR1 ||
	    res.err[0] != '\0')
		fail_msg("child %s, stderr:\n%s",
		    slt_status_str(res.status, buf, sizeof(buf)), res.err);
}

/* ---- contexts ----------------------------------------------------------- */

static void
kill_later(void *arg)
{
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_OK(kill(getpid(), (int) (intptr_t) arg));
}

static void
body_ctx(void *arg)
{
	int         term[] = { SIGTERM, SIGINT };
	sl_ctx     *parent, *ctx;
	sl_chan    *witness = sl_chan_make(sizeof(int), 1);
	const char *msg = NULL;

	(void) arg;
	/* A signal cancels it, naming the signal. */
	SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), term, 2, &ctx));
	SL_CHECK_EQ(sl_ctx_err(ctx), 0);
	SL_CHECK_OK(sl_go(kill_later, (void *) (intptr_t) SIGTERM));
	SL_CHECK_ERR(sl_chan_recv_ctx(sl_ctx_done(ctx), NULL, NULL,
	    sl_now() + 5 * SL_SECOND), SL_ECLOSED);
	SL_CHECK_EQ(sl_ctx_err(ctx), SL_ECANCELED);
	SL_CHECK_EQ(sl_ctx_cause(ctx, &msg), SL_ECANCELED);
	SL_CHECK(msg != NULL && strcmp(msg, "signal SIGTERM") == 0);
	/* Still registered until stopped: a second SIGTERM is caught (the
	 * witness channel says when it was; stopping before that would let
	 * it kill the process). */
	SL_CHECK(disposition(SIGTERM) != SIG_DFL);
	SL_CHECK_OK(sl_signal_notify(witness, term, 1));
	SL_CHECK_OK(kill(getpid(), SIGTERM));
	SL_CHECK_EQ(recv_sig(witness), SIGTERM);
	sl_signal_stop(witness);
	SL_CHECK(disposition(SIGTERM) != SIG_DFL);
	sl_signal_stop_ctx(ctx);
	SL_CHECK(disposition(SIGTERM) == SIG_DFL);
	SL_CHECK(disposition(SIGINT) == SIG_DFL);
	SL_CHECK_OK(sl_ctx_cause(ctx, &msg) == SL_ECANCELED ? 0 : -1);
	SL_CHECK(msg != NULL && strcmp(msg, "signal SIGTERM") == 0);
	sl_ctx_release(ctx);

	/* The parent's cancellation reaches it, with the parent's cause. */
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &parent));
	SL_CHECK_OK(sl_signal_ctx(parent, term, 2, &ctx));
	sl_ctx_cancel_cause(parent, SL_EPROTO, "upstream gone");
	SL_CHECK_EQ(sl_ctx_cause(ctx, &msg), SL_EPROTO);
	SL_CHECK(msg != NULL && strcmp(msg, "upstream gone") == 0);
	sl_signal_stop_ctx(ctx);
	sl_ctx_release(ctx);
	sl_ctx_release(parent);

	/* stop cancels a live one, with no signal as the cause. */
	SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), term, 1, &ctx));
	sl_signal_stop_ctx(ctx);
	SL_CHECK_EQ(sl_ctx_cause(ctx, &msg), SL_ECANCELED);
	SL_CHECK(msg != NULL && strcmp(msg, "context canceled") == 0);
	sl_signal_stop_ctx(ctx); /* again: only cancels, a no-op now */
	sl_ctx_release(ctx);
	sl_chan_release(witness);
}

static void
test_ctx(void **state)
{
	(void) state;
	slt_run_procs(2, body_ctx, NULL);
}

/* ---- a signal is not for contexts registered after it ------------------ */

/*
 * The reader cancels the contexts a signal is for 16 at a time, with the
 * registry unlocked; sg_name, which it calls there, asks sigabbrev_np.
 * This program's sigabbrev_np (libsluice is linked statically, so the
 * runtime calls it) holds the first such call, when late_hold is set,
 * until late_go says a new context has been registered meanwhile.
 */
static atomic_int late_hold; /* 1: hold the next call; 2: held */
static atomic_int late_go;

const char *
sigabbrev_np(int sig)
{
	static const char *(*real)(int);
	int expect = 1;

	if (atomic_compare_exchange_strong(&late_hold, &expect, 2))
		while (!atomic_load(&late_go))
			usleep(1000);
	if (real == NULL) { /* ISO C has no cast from void * to this */
		void *sym = dlsym(RTLD_NEXT, "sigabbrev_np");

		memcpy(&real, &sym, sizeof(real));
	}
	return (real != NULL ? real(sig) : NULL);
}

#define LATE_EARLY 16 /* one batch of the reader's, exactly */

static void
body_late_ctx(void *arg)
{
	sl_ctx  *early[LATE_EARLY], *late;
	sl_chan *witness = sl_chan_make(sizeof(int), 1);

	(void) arg;
	for (int i = 0; i < LATE_EARLY; i++)
		SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), usr1, 1,
		    &early[i]));
	SL_CHECK_OK(sl_signal_notify(witness, usr2, 1));
	atomic_store(&late_hold, 1);
	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	while (atomic_load(&late_hold) != 2)
		sl_sleep(SL_MILLISECOND);
	/* The reader is canceling the early ones: SIGUSR1 came before this
	 * registration, so it must leave this context alone. */
	SL_CHECK_OK(sl_signal_ctx(sl_ctx_background(), usr1, 1, &late));
	atomic_store(&late_go, 1);
	for (int i = 0; i < LATE_EARLY; i++)
		SL_CHECK_ERR(sl_chan_recv_ctx(sl_ctx_done(early[i]), NULL,
		    NULL, sl_now() + 5 * SL_SECOND), SL_ECLOSED);
	/* The reader is done with SIGUSR1 once it relays a later signal. */
	SL_CHECK_OK(kill(getpid(), SIGUSR2));
	SL_CHECK_EQ(recv_sig(witness), SIGUSR2);
	SL_CHECK_EQ(sl_ctx_err(late), 0);
	/* A signal that comes after it is for it too. */
	SL_CHECK_OK(kill(getpid(), SIGUSR1));
	SL_CHECK_ERR(sl_chan_recv_ctx(sl_ctx_done(late), NULL, NULL,
	    sl_now() + 5 * SL_SECOND), SL_ECLOSED);
	for (int i = 0; i < LATE_EARLY; i++) {
		sl_signal_stop_ctx(early[i]);
		sl_ctx_release(early[i]);
	}
	sl_signal_stop_ctx(late);
	sl_ctx_release(late);
	sl_signal_stop(witness);
	sl_chan_release(witness);
	atomic_store(&late_hold, 0);
	atomic_store(&late_go, 0);
}

static void
test_late_ctx(void **state)
{
	(void) state;
	slt_run_procs(2, body_late_ctx, NULL);
}

/* ---- waiting for a signal is not a deadlock ---------------------------- */

static void *
kill_thread(void *arg)
{
	(void) arg;
	usleep(100 * 1000);
	(void) kill(getpid(), SIGUSR2);
	return (NULL);
}

static void
body_wait_only(void *arg)
{
	sl_chan  *ch = sl_chan_make(sizeof(int), 1);
	pthread_t t;
	int       sig = -1;

	(void) arg;
	SL_CHECK_OK(sl_signal_notify(ch, usr2, 1));
	SL_CHECK_OK(pthread_create(&t, NULL, kill_thread, NULL));
	/* Every goroutine is blocked, with no deadline and no hold on the
	 * scheduler: only the registration keeps this from being reported
	 * as a deadlock. */
	SL_CHECK_OK(sl_chan_recv(ch, &sig));
	SL_CHECK_EQ(sig, SIGUSR2);
	SL_CHECK_OK(pthread_join(t, NULL));
	sl_signal_stop(ch);
	sl_chan_release(ch);
}

static void
test_not_deadlock(void **state)
{
	(void) state;
	slt_run_procs(1, body_wait_only, NULL);
	slt_run_procs(2, body_wait_only, NULL);
}

/* ---- bursts from threads while goroutines switch ------------------- */

#define BURST_THREADS 4

struct burst {
	atomic_int   sent;
	atomic_int   running;
	sl_waitgroup switchers;
};

static void *
burst_thread(void *arg)
{
	struct burst *b = arg;
	int           n = (int) slt_scaled(500);

	for (int i = 0; i < n; i++)
		if (kill(getpid(), SIGUSR1) == 0)
			atomic_fetch_add(&b->sent, 1);
	atomic_fetch_sub(&b->running, 1);
	return (NULL);
}

/* Keeps the workers switching goroutines while signals land on them. */
static void
switcher(void *arg)
{
	struct burst *b = arg;

	while (atomic_load(&b->running) > 0)
		sl_yield();
	sl_waitgroup_done(&b->switchers);
}

static void
body_burst(void *arg)
{
	sl_chan     *sigs = sl_chan_make(sizeof(int), 64);
	sl_chan     *last = sl_chan_make(sizeof(int), 1);
	struct burst b = { 0 };
	pthread_t    t[BURST_THREADS];
	int          got = 0, sig;

	(void) arg;
	atomic_init(&b.sent, 0);
	atomic_init(&b.running, BURST_THREADS);
	SL_CHECK_OK(sl_signal_notify(sigs, usr1, 1));
	/* Not into sigs: the storm may leave it full, and a full channel
	 * misses a signal. */
	SL_CHECK_OK(sl_signal_notify(last, usr2, 1));
	sl_waitgroup_add(&b.switchers, 4);
	for (int i = 0; i < 4; i++)
		SL_CHECK_OK(sl_go(switcher, &b));
	for (int i = 0; i < BURST_THREADS; i++)
		SL_CHECK_OK(pthread_create(&t[i], NULL, burst_thread, &b));
	while (atomic_load(&b.running) > 0) {
		if (sl_chan_recv_ctx(sigs, &sig, NULL,
		    sl_now() + 10 * SL_MILLISECOND) == 0) {
			SL_CHECK_EQ(sig, SIGUSR1);
			got++;
		}
	}
	for (int i = 0; i < BURST_THREADS; i++)
		SL_CHECK_OK(pthread_join(t[i], NULL));
	sl_waitgroup_wait(&b.switchers);
	/* A last, different signal still comes through after the storm. */
	SL_CHECK_OK(kill(getpid(), SIGUSR2));
	SL_CHECK_EQ(recv_sig(last), SIGUSR2);
	while (sl_chan_tryrecv(sigs, &sig) == 0) {
		SL_CHECK_EQ(sig, SIGUSR1);
		got++;
	}
	SL_CHECK(got >= 1 && got <= atomic_load(&b.sent));
	SL_CHECK_EQ(atomic_load(&b.sent), BURST_THREADS * (int) slt_scaled(500));
	sl_signal_stop(sigs);
	sl_signal_stop(last);
	sl_chan_release(sigs);
	sl_chan_release(last);
}

static void
test_burst(void **state)
{
	(void) state;
	slt_run_procs(2, body_burst, NULL);
}

/* ---- bad input -------------------------------------------------------- */

static void
body_bad(void *arg)
{
	sl_chan *ints = sl_chan_make(sizeof(int), 1);
	sl_chan *longs = sl_chan_make(sizeof(long long), 1);
	int      refused[] = { SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE,
	    SIGILL, SIGTRAP, SIGSYS, 0, -1, 65, 1000, 32, 33 /* glibc's */ };
	sl_ctx  *ctx = (sl_ctx *) &ctx;

	(void) arg;
	SL_CHECK_ERR(sl_signal_notify(NULL, usr1, 1), SL_EINVAL);
	SL_CHECK_ERR(sl_signal_notify(longs, usr1, 1), SL_EINVAL);
	SL_CHECK_ERR(sl_signal_notify(ints, NULL, 1), SL_EINVAL);
	SL_CHECK_ERR(sl_signal_notify(ints, usr1, 0), SL_EINVAL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int pair[] = { SIGUSR1, refused[i] };

		SL_CHECK_ERR(sl_signal_notify(ints, pair, 2), SL_EINVAL);
		SL_CHECK_ERR(sl_signal_ctx(sl_ctx_background(), pair, 2,
		    &ctx), SL_EINVAL);
		SL_CHECK(ctx == NULL);
	}
	/* Nothing of a refused list was registered. */
	SL_CHECK(disposition(SIGUSR1) == SIG_DFL);
	SL_CHECK_ERR(sl_signal_ctx(NULL, usr1, 1, &ctx), SL_EINVAL);
	SL_CHECK(ctx == NULL);
	SL_CHECK_ERR(sl_signal_ctx(sl_ctx_background(), usr1, 1, NULL),
	    SL_EINVAL);
	sl_signal_stop(NULL);
	sl_signal_stop(ints); /* never registered */
	sl_signal_stop_ctx(NULL);
	sl_chan_release(ints);
	sl_chan_release(longs);
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
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_exactly_once),
		cmocka_unit_test(test_full_channel),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_end_of_main),
		cmocka_unit_test(test_ctx),
		cmocka_unit_test(test_late_ctx),
		cmocka_unit_test(test_not_deadlock),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_bad_input),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
