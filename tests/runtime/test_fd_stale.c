/*
 * test_fd_stale.c — sl_fd_wait does not report readiness that is gone,
 * and a call under way when sl_fd_close closes its descriptor says so.
 *
 * The poller takes events from epoll and then wakes the waiters; the OS
 * may preempt it in between.  If meanwhile the only reader took the data
 * itself and waited again, the old event must not wake it: sl_fd_wait
 * says "ready" only when a read would not say EAGAIN (unless another
 * reader took the data first).  To make the preemption happen every
 * time, this program has its own epoll_wait and epoll_pwait2 (libsluice
 * is linked statically, so the runtime calls these), which hold the
 * event of the watched pipe for HOLD_MS once.  Its own binary: nothing
 * else should run with a poller that stalls.
 *
 * Likewise its own read(2) holds an sl_read between its EAGAIN and its
 * wait while another goroutine closes the descriptor with sl_fd_close and
 * gives the number to another pipe: the call says SL_ECLOSED and takes
 * nothing from that pipe.  And its epoll_ctl holds a plain thread's
 * arming while sl_main ends: the thread gets SL_ESTATE, the poller's
 * epoll descriptor is not closed under it.
 */
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "sltest.h"

#include "sluice/fd.h"

#define HOLD_MS 600

static int        watched = -1; /* the fd whose first event is held */
static atomic_int held;         /* 1 once held, 2 once let go */

static int
hold_once(struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		int expect = 0;

		if (ev[i].data.u64 == (uint64_t) watched &&
		    atomic_compare_exchange_strong(&held, &expect, 1)) {
			usleep(HOLD_MS * 1000);
			atomic_store(&held, 2);
		}
	}
	return (n);
}

int
epoll_wait(int epfd, struct epoll_event *ev, int max, int ms)
{
	int n = (int) syscall(SYS_epoll_pwait, epfd, ev, max, ms, NULL, 8);

	return (n > 0 ? hold_once(ev, n) : n);
}

int
epoll_pwait2(int epfd, struct epoll_event *ev, int max,
    const struct timespec *ts, const sigset_t *ss)
{
	int n = (int) syscall(SYS_epoll_pwait2, epfd, ev, max, ts, ss, 8);

	return (n > 0 ? hold_once(ev, n) : n);
}

static int other[2]; /* keeps a wait going, so an idle worker polls */

static void
idler(void *arg)
{
	(void) arg;
	SL_CHECK_OK(sl_fd_wait(other[0], SL_FD_READ, NULL,
	    sl_now() + 60 * SL_SECOND));
}

static void
body_stale(void *arg)
{
	int     p[2];
	char    buf[8];
	ssize_t k;
	int     rv;

	(void) arg;
	SL_ASSERT_OK(pipe2(p, O_NONBLOCK));
	SL_ASSERT_OK(pipe2(other, O_NONBLOCK));
	watched = p[0];
	SL_CHECK_OK(sl_go(idler, NULL));
	/* A wait that gives up leaves the descriptor armed in epoll. */
	SL_CHECK_ERR(sl_fd_wait(p[0], SL_FD_READ, NULL,
	    sl_now() + 20 * SL_MILLISECOND), SL_ETIMEDOUT);
	/* A byte comes; the poller takes its event and is held. */
	SL_CHECK_EQ(write(p[1], "x", 1), 1);
	while (atomic_load(&held) == 0)
		sl_sleep(SL_MILLISECOND);
	/* The only reader takes the byte without waiting... */
	SL_CHECK_EQ(read(p[0], buf, sizeof(buf)), 1);
	/* ...and waits for more, which will not come: the event let go
	 * meanwhile must not end this wait. */
	rv = sl_fd_wait(p[0], SL_FD_READ, NULL,
	    sl_now() + (HOLD_MS + 300) * SL_MILLISECOND);
	k = read(p[0], buf, sizeof(buf));
	SL_CHECK_EQ(atomic_load(&held), 2);
	SL_CHECK_ERR(rv, SL_ETIMEDOUT);
	SL_CHECK(k < 0 && errno == EAGAIN);
	/* Readiness that is there is still reported. */
	SL_CHECK_EQ(write(p[1], "y", 1), 1);
	SL_CHECK_OK(sl_fd_wait(p[0], SL_FD_READ, NULL,
	    sl_now() + 10 * SL_SECOND));
	SL_CHECK_EQ(read(p[0], buf, sizeof(buf)), 1);

	SL_CHECK_EQ(write(other[1], "", 1), 1);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	close(p[0]);
	close(p[1]);
	close(other[0]);
	close(other[1]);
}

/* Two workers: one is held in the poller while the other runs the
 * reader. */
static void
test_stale_event_does_not_wake(void **state)
{
	(void) state;
	slt_run_procs(2, body_stale, NULL);
}

/* ---- sl_fd_close between a read's EAGAIN and its wait ------------------ */

/*
 * This program's read(2) (the runtime's too) holds, once, a read of
 * closing_fd that would block, between its EAGAIN and sl_read's wait,
 * until closing says the descriptor was closed with sl_fd_close and its
 * number given to another pipe with a byte in it.
 */
static atomic_int closing_fd = -1;
static atomic_int closing;    /* 1: hold the next EAGAIN; 2: held; 3: go */

ssize_t
read(int fd, void *buf, size_t len)
{
	ssize_t n = syscall(SYS_read, fd, buf, len);
	int     expect = 1, e = errno;

	if (n < 0 && e == EAGAIN && fd == atomic_load(&closing_fd) &&
	    atomic_compare_exchange_strong(&closing, &expect, 2)) {
		while (atomic_load(&closing) != 3)
			usleep(1000);
		errno = e;
	}
	return (n);
}

static void
closer(void *arg)
{
	int *p = arg;
	int  q[2];

	while (atomic_load(&closing) != 2)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(sl_fd_close(p[0]));
	/* The number is another pipe's now, with a byte in it. */
	SL_ASSERT_OK(pipe2(q, O_NONBLOCK));
	if (q[0] != p[0]) { /* it may have had it already */
		SL_CHECK_EQ(dup2(q[0], p[0]), p[0]);
		close(q[0]);
	}
	SL_CHECK_EQ(write(q[1], "z", 1), 1);
	p[1] = q[1]; /* the old write end is left to the caller */
	atomic_store(&closing, 3);
}

static void
body_close_in_flight(void *arg)
{
	int    p[2], old_w;
	char   c = 0;
	size_t n = 1;

	(void) arg;
	SL_ASSERT_OK(pipe2(p, O_NONBLOCK));
	old_w = p[1];
	atomic_store(&closing_fd, p[0]);
	atomic_store(&closing, 1);
	SL_CHECK_OK(sl_go(closer, p));
	/* Closed while the call was under way: "use of closed file", and
	 * nothing taken from the file that has the number now. */
	SL_CHECK_ERR(sl_read(p[0], &c, 1, &n, NULL,
	    sl_now() + 2 * SL_SECOND), SL_ECLOSED);
	SL_CHECK_EQ(n, 0);
	SL_CHECK_EQ(atomic_load(&closing), 3);
	SL_CHECK_EQ(read(p[0], &c, 1), 1);
	SL_CHECK_EQ(c, 'z');
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	atomic_store(&closing_fd, -1);
	close(p[0]);
	close(p[1]);
	close(old_w);
}

/* Two workers: one is held in read(2) while the other closes. */
static void
test_close_while_call_in_flight(void **state)
{
	(void) state;
	slt_run_procs(2, body_close_in_flight, NULL);
}

/* ---- a thread arming its wait as sl_main ends ---------------------------- */

/*
 * This program's epoll_ctl holds, once, an arming of ending_fd until the
 * poller's epoll descriptor is closed, or for a second: the end of
 * sl_main must not close it under a wait that is being armed.
 */
static atomic_int ending_fd = -1;
static atomic_int ending;    /* 1: hold the next arming; 2: held */

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int expect = 1;

	if (fd == atomic_load(&ending_fd) &&
	    atomic_compare_exchange_strong(&ending, &expect, 2)) {
		int64_t give_up = sl_now() + SL_SECOND;

		while (fcntl(epfd, F_GETFD) >= 0 && sl_now() < give_up)
			usleep(1000);
	}
	return ((int) syscall(SYS_epoll_ctl, epfd, op, fd, ev));
}

static int       ending_pipe[2];
static int       ending_rv;     /* the thread's sl_fd_wait */
static pthread_t ending_thread;

static void *
ending_waiter(void *arg)
{
	(void) arg;
	ending_rv = sl_fd_wait(ending_pipe[0], SL_FD_READ, NULL,
	    sl_now() + 10 * SL_SECOND);
	return (NULL);
}

static void
body_ending(void *arg)
{
	(void) arg;
	SL_ASSERT_OK(pipe2(ending_pipe, O_NONBLOCK));
	SL_CHECK_OK(sl_fd_wait(ending_pipe[1], SL_FD_WRITE, NULL,
	    SL_FOREVER)); /* the poller runs */
	atomic_store(&ending_fd, ending_pipe[0]);
	atomic_store(&ending, 1);
	SL_ASSERT_OK(pthread_create(&ending_thread, NULL, ending_waiter,
	    NULL));
	while (atomic_load(&ending) != 2)
		sl_sleep(SL_MILLISECOND);
	/* Returning ends sl_main while the thread arms its wait. */
}

/* A thread still waiting when sl_main ends gets SL_ESTATE (sched.h),
 * even if it was arming its wait just then. */
static void
test_thread_arming_as_main_ends(void **state)
{
	(void) state;
	ending_rv = 1;
	slt_run_procs(1, body_ending, NULL);
	SL_ASSERT_OK(pthread_join(ending_thread, NULL));
	SL_ASSERT_ERR(ending_rv, SL_ESTATE);
	atomic_store(&ending_fd, -1);
	close(ending_pipe[0]);
	close(ending_pipe[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_event_does_not_wake),
		cmocka_unit_test(test_close_while_call_in_flight),
		cmocka_unit_test(test_thread_arming_as_main_ends),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
