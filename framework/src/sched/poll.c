/*
 * poll.c — goroutines waiting on file descriptors: sl_fd_wait, sl_read,
 * sl_write, sl_accept, sl_connect, sl_fd_close (sluice/fd.h).  Go's
 * netpoller, reduced to what a C program needs.
 *
 * The workers poll, as Go's do (sched.h): a worker with nothing to run
 * looks without blocking, and one idle worker at a time, the owner, sleeps
 * in epoll_wait instead of on its condition variable, so a ready
 * descriptor wakes the worker that will run its goroutine.  A backstop
 * thread looks every 10 ms while descriptors are waited on and nobody owns
 * the poll (every worker busy).  The epoll set, an eventfd that breaks the
 * owner's sleep and the backstop are made by the first wait of an sl_main
 * run and go when it returns.  A descriptor's state is a pl_fd, found by
 * number in a two-level table (records never move and are never freed, so
 * the poller and waiters may hold pointers to them):
 *
 *	readers, writers	queues of waiting goroutines and threads
 *	armed			the epoll events enabled for them, or 0
 *	closes			sl_fd_close calls on the number so far
 *
 * Registrations are level-triggered and one-shot: each waiter arms the
 * descriptor for the union of what its waiters want (EPOLL_CTL_MOD, or
 * ADD the first time), and an event disarms it.  A waiter that finds it
 * armed arms it again all the same: the armed file may have been closed
 * with close(2) under an earlier waiter, and the number reused for a file
 * epoll has never seen.  The poller wakes every waiter of the ready
 * direction and re-arms for those of the other.
 * Level-triggered arming reports a descriptor that is already ready at
 * once, so a wait never misses readiness that came before it; a waiter
 * woken for nothing (another took the data) just waits again.
 *
 * When the last waiter leaves without an event (deadline, context),
 * armed drops to 0 although the kernel may still hold the one-shot: the
 * event then finds nobody, and the next waiter arms again.  As every
 * waiter arms, a descriptor number reused after a plain close(2) is
 * registered again by the next wait on it (MOD finds no entry: ADD).
 *
 * A call counts the sl_fd_close calls of its descriptor (closes) as it
 * begins; one that finds the count changed when it comes to wait, or
 * its descriptor gone, says SL_ECLOSED rather than wait on (or report
 * EBADF for) a number that may be another file's by then.
 *
 * The record's spinlock is held across epoll_ctl (and close in
 * sl_fd_close), so the kernel's registration always matches armed.  Only
 * waiters of the same descriptor contend for it.
 */
#include "sluice_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#if SLUICE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/fd.h"
#include "sluice/sync.h"

#define PL_CHUNK   1024          /* records per table chunk */
#define PL_CHUNKS  1024          /* chunks: descriptors below 1M */
#define PL_WAKE    UINT64_MAX    /* epoll data of the owner's eventfd */
#define PL_BATCH   128           /* events per epoll_wait */
#define PL_BACKSTOP (10 * SL_MILLISECOND)
#define PL_COUNT   UINT64_C(0xffffffff) /* pl.waiters: the count */
#define PL_ALWAYS  1             /* pl_arm: epoll refuses it (regular
                                    file): always ready */

/* Sources that end a wait on a descriptor (sli_wait_claim). */
enum { PL_READY = 0, PL_CLOSED = 1, PL_ENDED = 2 };

#define PL_IN  (EPOLLIN | EPOLLRDHUP)
#define PL_OUT EPOLLOUT
/* What wakes readers and writers: errors and hang-ups wake both, so the
 * next read or write reports them. */
#define PL_RDY_IN  (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR)
#define PL_RDY_OUT (EPOLLOUT | EPOLLHUP | EPOLLERR)

typedef struct pl_fd {
	atomic_int       lock;
	struct sli_waitq readers;
	struct sli_waitq writers;
	uint32_t         armed; /* events enabled in epoll for the waiters */
	bool             added; /* in the epoll set, as far as we know */
	atomic_uint      closes; /* sl_fd_close calls so far (changed under
	                            lock): a call that saw another count
	                            began before the descriptor was closed */
	char             why[3][26]; /* wait reasons for dumps, per events-1:
	                               "fd 7 read"; written once, under lock,
	                               so a dump never reads a torn one */
} pl_fd;

static struct {
	pthread_mutex_t  mu;     /* start and stop, chunk allocation */
	pthread_cond_t   cv;     /* the backstop sleeps here */
	bool             cv_ready; /* cv made, on CLOCK_MONOTONIC */
	_Atomic(pl_fd *) chunks[PL_CHUNKS];
	int              epfd;
	int              evfd;   /* breaks the owner's epoll_wait */
	pthread_t        thread; /* the backstop */
	atomic_bool      on;     /* polling is set up: waits are accepted */
	_Atomic uint64_t waiters; /* parked in sl_fd_wait (PL_COUNT bits),
	                             and above them the run of sl_main they
	                             count in: a thread released by
	                             sli_poll_fini that leaves only after
	                             the next run began is not counted out
	                             of that one */
	atomic_int       owner;  /* 1 while a worker owns the poll */
	struct epoll_event ev[PL_BATCH]; /* the owner's events */
	bool             no_pwait2; /* epoll_pwait2 missing (owner only) */
} pl = { .mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .evfd = -1 };

/* The record of fd (creating its chunk if create), or NULL. */
static pl_fd *
pl_get(int fd, bool create)
{
	size_t i = (size_t) fd / PL_CHUNK;
	pl_fd *c;

	if (fd < 0 || i >= PL_CHUNKS)
		return (NULL);
	c = atomic_load_explicit(&pl.chunks[i], memory_order_acquire);
	if (c == NULL && create) {
		pthread_mutex_lock(&pl.mu);
		if ((c = atomic_load(&pl.chunks[i])) == NULL &&
		    (c = calloc(PL_CHUNK, sizeof(*c))) != NULL)
			atomic_store_explicit(&pl.chunks[i], c,
			    memory_order_release);
		pthread_mutex_unlock(&pl.mu);
	}
	return (c != NULL ? &c[(size_t) fd % PL_CHUNK] : NULL);
}

/* Claims every waiter of q for source; the winners go on wl. */
static void
pl_take(struct sli_waitq *q, int source, sli_wakelist *wl)
{
	sli_waiter *e;

	while ((e = sli_waitq_pop(q)) != NULL)
		if (sli_wait_claim(e->wait, source))
			sli_wakelist_add(wl, e);
}

/*
 * Arms fd (record p, locked) for what its waiters want.  Returns 0,
 * PL_ALWAYS if epoll does not watch this kind of file, or an error.
 */
static int
pl_arm(int fd, pl_fd *p)
{
	struct epoll_event ev;
	uint32_t want = 0;
	int op, rc;

	if (p->readers.head != NULL)
		want |= PL_IN;
	if (p->writers.head != NULL)
		want |= PL_OUT;
	/* Armed already is no reason to skip the call: the file armed may
	 * be gone, closed with close(2) under a waiter that is still
	 * queued, and this waiter's file a new one under the same number,
	 * which epoll has never seen. */
	if (want == 0)
		return (0);
	memset(&ev, 0, sizeof(ev));
	ev.events = want | EPOLLONESHOT;
	ev.data.u64 = (uint64_t) fd;
	op = p->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	rc = epoll_ctl(pl.epfd, op, fd, &ev);
	if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT) {
		/* Closed and reopened since, or dropped by the kernel. */
		op = EPOLL_CTL_ADD;
		rc = epoll_ctl(pl.epfd, op, fd, &ev);
	} else if (rc != 0 && op == EPOLL_CTL_ADD && errno == EEXIST) {
		op = EPOLL_CTL_MOD;
		rc = epoll_ctl(pl.epfd, op, fd, &ev);
	}
	if (rc == 0) {
		p->added = true;
		p->armed = want;
		return (0);
	}
	p->added = false;
	p->armed = 0;
	if (errno == EPERM)
		return (PL_ALWAYS);
	if (errno == EBADF)
		return (SL_EBADF);
	return (errno == ENOMEM ? SL_ENOMEM : SL_ESYSTEM);
}

/* One event from epoll for descriptor fd. */
static void
pl_event(int fd, uint32_t events)
{
	sli_wakelist wl = SLI_WAKELIST_INIT;
	pl_fd *p = pl_get(fd, false);

	if (p == NULL)
		return;
	sli_lock(&p->lock);
	p->armed = 0; /* one-shot: the event disarmed it */
	if (events & PL_RDY_IN)
		pl_take(&p->readers, PL_READY, &wl);
	if (events & PL_RDY_OUT)
		pl_take(&p->writers, PL_READY, &wl);
	if ((p->readers.head != NULL || p->writers.head != NULL) &&
	    pl_arm(fd, p) != 0) {
		/* Gone meanwhile: let them find out by trying. */
		pl_take(&p->readers, PL_READY, &wl);
		pl_take(&p->writers, PL_READY, &wl);
	}
	sli_unlock(&p->lock);
	sli_wakelist_wake(&wl);
}

/* Readies the waiters of n events in ev; the eventfd's are skipped. */
static void
pl_dispatch(struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++)
		if (ev[i].data.u64 != PL_WAKE)
			pl_event((int) ev[i].data.u64, ev[i].events);
}

bool
sli_poll_pending(void)
{
	return ((atomic_load_explicit(&pl.waiters, memory_order_relaxed) &
	    PL_COUNT) > 0 &&
	    atomic_load_explicit(&pl.owner, memory_order_relaxed) == 0);
}

bool
sli_poll_nonblock(void)
{
	struct epoll_event ev[PL_BATCH];
	int n, got = 0;

	if (!atomic_load_explicit(&pl.on, memory_order_acquire))
		return (false);
	n = epoll_wait(pl.epfd, ev, PL_BATCH, 0);
	for (int i = 0; i < n; i++)
		got += ev[i].data.u64 != PL_WAKE; /* the owner drains that */
	pl_dispatch(ev, n);
	return (got > 0);
}

bool
sli_poll_own(void)
{
	int zero = 0;

	return (atomic_load(&pl.on) &&
	    (atomic_load(&pl.waiters) & PL_COUNT) > 0 &&
	    atomic_compare_exchange_strong(&pl.owner, &zero, 1));
}

int
sli_poll_block(int64_t deadline)
{
	struct timespec ts, *tsp = NULL;
	int n;

	if (deadline != INT64_MAX) {
		int64_t left = deadline - sl_now();

		if (left < 0)
			left = 0;
		ts.tv_sec = left / SL_SECOND;
		ts.tv_nsec = left % SL_SECOND;
		tsp = &ts;
	}
	if (!pl.no_pwait2 &&
	    ((n = epoll_pwait2(pl.epfd, pl.ev, PL_BATCH, tsp, NULL)) >= 0 ||
	    errno != ENOSYS)) {
		/* done */
	} else { /* before Linux 5.11: ms */
		int ms = tsp == NULL ? -1 :
		    (int) (ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000);
		pl.no_pwait2 = true;
		n = epoll_wait(pl.epfd, pl.ev, PL_BATCH, ms);
	}
	if (n < 0) {
		if (errno != EINTR)
			sli_fatal("epoll_wait: %s", strerror(errno));
		return (0);
	}
	for (int i = 0; i < n; i++) {
		if (pl.ev[i].data.u64 == PL_WAKE) {
			uint64_t v;

			if (read(pl.evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				sli_fatal("poller eventfd: %s",
				    strerror(errno));
		}
	}
	return (n);
}

void
sli_poll_dispatch(int n)
{
	pl_dispatch(pl.ev, n);
}

void
sli_poll_disown(void)
{
	atomic_store(&pl.owner, 0);
}

void
sli_poll_break(void)
{
	uint64_t one = 1;

	if (write(pl.evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		sli_fatal("poller eventfd: %s", strerror(errno));
}

/* The backstop: while every worker is busy nobody looks, so look every
 * PL_BACKSTOP. */
static void *
pl_run(void *unused)
{
	(void) unused;
	pthread_mutex_lock(&pl.mu);
	while (atomic_load(&pl.on)) {
		struct timespec ts;
		int64_t t = sl_now() + PL_BACKSTOP;

		ts.tv_sec = t / SL_SECOND;
		ts.tv_nsec = t % SL_SECOND;
		pthread_cond_timedwait(&pl.cv, &pl.mu, &ts);
		if (!atomic_load(&pl.on))
			break;
		pthread_mutex_unlock(&pl.mu);
		if (sli_poll_pending())
			(void) sli_poll_nonblock();
		pthread_mutex_lock(&pl.mu);
	}
	pthread_mutex_unlock(&pl.mu);
	return (NULL);
}

/* Starts the poller for this sl_main run.  0, SL_ESTATE or SL_ESYSTEM. */
static int
pl_start(void)
{
	struct epoll_event ev;
	sigset_t all, old;
	int rv = 0;

	pthread_mutex_lock(&pl.mu);
	if (atomic_load(&pl.on))
		goto out;
	if (!atomic_load(&sli_S.running) || atomic_load(&sli_S.stopping)) {
		rv = SL_ESTATE;
		goto out;
	}
	if (!pl.cv_ready) { /* the backstop's deadlines are sl_now()'s */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&pl.cv, &ca);
		pthread_condattr_destroy(&ca);
		pl.cv_ready = true;
	}
	/* A new run, counting from 0 (goroutines abandoned in the last one
	 * never counted themselves out). */
	atomic_store(&pl.waiters,
	    ((atomic_load(&pl.waiters) >> 32) + 1) << 32);
	atomic_store(&pl.owner, 0);
#if SLUICE_HAVE_VALGRIND_H
	/* valgrind 3.19 does not know epoll_pwait2 and warns at each call. */
	pl.no_pwait2 = RUNNING_ON_VALGRIND;
#endif
	pl.epfd = epoll_create1(EPOLL_CLOEXEC);
	pl.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = PL_WAKE;
	if (pl.epfd < 0 || pl.evfd < 0 ||
	    epoll_ctl(pl.epfd, EPOLL_CTL_ADD, pl.evfd, &ev) != 0)
		goto fail;
	/* Signals are for the program's threads, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	atomic_store(&pl.on, true);
	if (pthread_create(&pl.thread, NULL, pl_run, NULL) != 0) {
		atomic_store(&pl.on, false);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		goto fail;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	goto out;
fail:
	rv = SL_ESYSTEM;
	if (pl.epfd >= 0)
		close(pl.epfd);
	if (pl.evfd >= 0)
		close(pl.evfd);
	pl.epfd = pl.evfd = -1;
out:
	pthread_mutex_unlock(&pl.mu);
	return (rv);
}

/*
 * Stops the poller; called by sl_main on its way out, after the workers
 * stopped.  Threads still waiting get SL_ESTATE; goroutines still waiting
 * are abandoned with the rest.
 */
void
sli_poll_fini(void)
{
	pthread_mutex_lock(&pl.mu);
	if (!atomic_load(&pl.on)) {
		pthread_mutex_unlock(&pl.mu);
		return;
	}
	atomic_store(&pl.on, false);
	pthread_cond_signal(&pl.cv);
	pthread_mutex_unlock(&pl.mu);
	pthread_join(pl.thread, NULL); /* the backstop */
	pthread_mutex_lock(&pl.mu);
	/* A thread that found pl.on still set may be arming its wait under
	 * its record's lock: the epoll set is closed once every record has
	 * been visited under its lock, never under such an epoll_ctl. */
	for (size_t i = 0; i < PL_CHUNKS; i++) {
		pl_fd *c = atomic_load(&pl.chunks[i]);

		for (size_t j = 0; c != NULL && j < PL_CHUNK; j++) {
			sli_wakelist wl = SLI_WAKELIST_INIT;
			struct sli_waitq *qs[2] = { &c[j].readers,
			    &c[j].writers };
			sli_waiter *e;

			sli_lock(&c[j].lock);
			for (int k = 0; k < 2; k++)
				while ((e = sli_waitq_pop(qs[k])) != NULL)
					if (e->wait->g == NULL &&
					    sli_wait_claim(e->wait, PL_ENDED))
						sli_wakelist_add(&wl, e);
			c[j].armed = 0;
			c[j].added = false;
			sli_unlock(&c[j].lock);
			sli_wakelist_wake(&wl);
		}
	}
	close(pl.epfd);
	close(pl.evfd);
	pl.epfd = pl.evfd = -1;
	pthread_mutex_unlock(&pl.mu);
}

/* ctx or deadline already over: what a call returns without trying. */
static int
pl_over(sl_ctx *ctx, int64_t deadline)
{
	int rv = sl_ctx_err(ctx);

	if (rv == 0 && deadline != SL_FOREVER && sl_now() >= deadline)
		rv = SL_ETIMEDOUT;
	return (rv);
}

/* Counts a waiter of run out of pl.waiters, unless another run began. */
static void
pl_unwait(uint64_t run)
{
	uint64_t v = atomic_load(&pl.waiters);

	while ((v >> 32) == run &&
	    !atomic_compare_exchange_weak(&pl.waiters, &v, v - 1))
		;
}

/* Takes a waiter's entries off p (locked) if still queued; with nobody
 * left, forgets the arming (see the top of the file). */
static void
pl_leave(pl_fd *p, sli_waiter *er, sli_waiter *ew)
{
	if (er->queued)
		sli_waitq_remove(&p->readers, er);
	if (ew->queued)
		sli_waitq_remove(&p->writers, ew);
	if (p->readers.head == NULL && p->writers.head == NULL)
		p->armed = 0;
}

/*
 * Waits for fd as sl_fd_wait does, except that "ready" may be stale: an
 * event the poller took from epoll before this waiter consumed what it
 * announced (by a call that did not wait) can be delivered after the
 * waiter queued again.  sl_read and the others try their call again
 * anyway; sl_fd_wait checks.
 */
static int
pl_wait(int fd, int events, sl_ctx *ctx, int64_t deadline, unsigned closes)
{
	sli_wait   w;
	sli_waiter er = { 0 }, ew = { 0 };
	char      *why;
	pl_fd     *p;
	uint64_t   run;
	int        rv, fired;
	bool       hold;

	if (fd < 0)
		return (SL_EBADF);
	if (events == 0 || (events & ~(SL_FD_READ | SL_FD_WRITE)) != 0)
		return (SL_EINVAL);
	if ((rv = pl_over(ctx, deadline)) != 0)
		return (rv);
	if (!atomic_load_explicit(&pl.on, memory_order_acquire) &&
	    (rv = pl_start()) != 0)
		return (rv);
	if ((p = pl_get(fd, true)) == NULL) {
		if ((size_t) fd / PL_CHUNK < PL_CHUNKS)
			return (SL_ENOMEM);
		/* Past the table: a number no descriptor has, usually. */
		return (fcntl(fd, F_GETFD) < 0 && errno == EBADF ? SL_EBADF :
		    SL_EINVAL);
	}

	sli_wait_init(&w);
	er.wait = ew.wait = &w;
	sli_lock(&p->lock);
	if (!atomic_load(&pl.on)) { /* sl_main is ending */
		sli_unlock(&p->lock);
		return (SL_ESTATE);
	}
	if (atomic_load_explicit(&p->closes, memory_order_relaxed) != closes) {
		/* sl_fd_close came before this waiter could queue: the
		 * number may be another file's already. */
		sli_unlock(&p->lock);
		return (SL_ECLOSED);
	}
	why = p->why[events - 1];
	if (why[0] == '\0')
		snprintf(why, sizeof(p->why[0]), "fd %d %s", fd,
		    events == SL_FD_READ ? "read" :
		    events == SL_FD_WRITE ? "write" : "read/write");
	if (events & SL_FD_READ)
		sli_waitq_push(&p->readers, &er);
	if (events & SL_FD_WRITE)
		sli_waitq_push(&p->writers, &ew);
	if ((rv = pl_arm(fd, p)) != 0) {
		pl_leave(p, &er, &ew);
		sli_unlock(&p->lock);
		return (rv == PL_ALWAYS ? 0 : rv);
	}
	/* The other end may be another process: not a deadlock. */
	if ((hold = w.g != NULL))
		atomic_fetch_add(&sli_S.holds, 1);
	/* Under the lock, so before sli_poll_fini visits p: this run. */
	run = atomic_fetch_add(&pl.waiters, 1) >> 32;
	if (!hold)
		sli_sched_poke(); /* make sure a worker polls */
	fired = sli_wait_block(&w, ctx, deadline, why, NULL, sli_unlock_cb,
	    &p->lock);
	pl_unwait(run);
	if (hold)
		atomic_fetch_sub(&sli_S.holds, 1);
	if (fired < 0 || events == (SL_FD_READ | SL_FD_WRITE)) {
		sli_lock(&p->lock);
		pl_leave(p, &er, &ew);
		sli_unlock(&p->lock);
	}
	switch (fired) {
	case PL_READY:
		return (0);
	case PL_CLOSED:
		return (SL_ECLOSED);
	case PL_ENDED:
		return (SL_ESTATE);
	default:
		return (sli_wait_err(fired, ctx));
	}
}

/* fd is ready for one of events now, by the same conditions that end a
 * wait (PL_RDY_IN, PL_RDY_OUT; errors and hang-ups always count), or
 * poll(2) cannot tell: the caller's next call finds out. */
static bool
pl_ready_now(int fd, int events)
{
	struct pollfd pfd = { .fd = fd };

	if (events & SL_FD_READ)
		pfd.events |= POLLIN | POLLRDHUP | POLLPRI;
	if (events & SL_FD_WRITE)
		pfd.events |= POLLOUT;
	return (poll(&pfd, 1, 0) != 0);
}

/* The count of sl_fd_close calls on fd, taken as a call begins. */
static unsigned
pl_closes(int fd)
{
	pl_fd *p = pl_get(fd, false);

	return (p != NULL ? atomic_load(&p->closes) : 0);
}

/* sl_fd_wait for a call that began when fd had seen closes closes. */
static int
pl_fd_wait(int fd, int events, sl_ctx *ctx, int64_t deadline,
    unsigned closes)
{
	int rv;

	while ((rv = pl_wait(fd, events, ctx, deadline, closes)) == 0 &&
	    !pl_ready_now(fd, events))
		; /* a stale event: wait again */
	return (rv);
}

int
sl_fd_wait(int fd, int events, sl_ctx *ctx, int64_t deadline)
{
	return (pl_fd_wait(fd, events, ctx, deadline, pl_closes(fd)));
}

/* errno, where the goroutine may have parked since it took &errno. */
#define ERRNO (*sli_errno())

/* A call on fd, begun when fd had seen closes closes, failed with errno:
 * 0 to try it again (interrupted, or fd ready after it would have
 * blocked), else what to return. */
static int
pl_again(int fd, int events, sl_ctx *ctx, int64_t deadline, unsigned closes)
{
	int e = ERRNO;

	if (e == EINTR)
		return (0);
	if (e == EBADF && pl_closes(fd) != closes)
		return (SL_ECLOSED); /* sl_fd_close came meanwhile */
	if (e != EAGAIN && e != EWOULDBLOCK)
		return (e == EBADF ? SL_EBADF : SL_ESYSTEM);
	return (pl_wait(fd, events, ctx, deadline, closes));
}

int
sl_read(int fd, void *buf, size_t len, size_t *n, sl_ctx *ctx,
    int64_t deadline)
{
	int rv;

	unsigned closes = pl_closes(fd);

	if (n == NULL || (buf == NULL && len > 0))
		return (SL_EINVAL);
	*n = 0;
	if ((rv = pl_over(ctx, deadline)) != 0)
		return (rv);
	for (;;) {
		ssize_t got = read(fd, buf, len);

		if (got >= 0) {
			*n = (size_t) got;
			return (0);
		}
		if ((rv = pl_again(fd, SL_FD_READ, ctx, deadline,
		    closes)) != 0)
			return (rv);
	}
}

int
sl_write(int fd, const void *buf, size_t len, size_t *n, sl_ctx *ctx,
    int64_t deadline)
{
	const char *p = buf;
	size_t      done = 0;
	unsigned    closes = pl_closes(fd);
	int         rv;

	if (n != NULL)
		*n = 0;
	if (buf == NULL && len > 0)
		return (SL_EINVAL);
	if ((rv = pl_over(ctx, deadline)) != 0)
		return (rv);
	while (done < len) {
		ssize_t put = write(fd, p + done, len - done);

		if (put >= 0)
			done += (size_t) put;
		else if ((rv = pl_again(fd, SL_FD_WRITE, ctx, deadline,
		    closes)) != 0)
			break;
	}
	if (n != NULL)
		*n = done;
	return (rv);
}

int
sl_accept(int lfd, int *fd, sl_ctx *ctx, int64_t deadline)
{
	unsigned closes = pl_closes(lfd);
	int      rv;

	if (fd == NULL)
		return (SL_EINVAL);
	*fd = -1;
	if ((rv = pl_over(ctx, deadline)) != 0)
		return (rv);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c >= 0) {
			*fd = c;
			return (0);
		}
		if (ERRNO != ECONNABORTED &&
		    (rv = pl_again(lfd, SL_FD_READ, ctx, deadline,
		    closes)) != 0)
			return (rv);
	}
}

int
sl_connect(int fd, const struct sockaddr *addr, socklen_t len,
    sl_ctx *ctx, int64_t deadline)
{
	socklen_t elen = sizeof(int);
	unsigned  closes = pl_closes(fd);
	int       rv, err = 0;

	if (addr == NULL)
		return (SL_EINVAL);
	if ((rv = pl_over(ctx, deadline)) != 0)
		return (rv);
	if (connect(fd, addr, len) == 0)
		return (0);
	/* Interrupted, the handshake goes on all the same. */
	if ((err = ERRNO) != EINPROGRESS && err != EINTR)
		goto failed;
	if ((rv = pl_fd_wait(fd, SL_FD_WRITE, ctx, deadline, closes)) != 0)
		return (rv);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = ERRNO;
	if (err == 0)
		return (0);
failed:
	ERRNO = err;
	if (err == ECONNREFUSED)
		return (SL_ECONNREFUSED);
	return (err == EBADF ? SL_EBADF : SL_ESYSTEM);
}

int
sl_fd_close(int fd)
{
	sli_wakelist wl = SLI_WAKELIST_INIT;
	pl_fd *p = pl_get(fd, true); /* for the count, even if never waited */
	int rc, err;

	if (fd < 0)
		return (SL_EBADF);
	if (p != NULL) {
		sli_lock(&p->lock);
		atomic_fetch_add(&p->closes, 1);
		pl_take(&p->readers, PL_CLOSED, &wl);
		pl_take(&p->writers, PL_CLOSED, &wl);
		if (p->added && pl.epfd >= 0)
			(void) epoll_ctl(pl.epfd, EPOLL_CTL_DEL, fd, NULL);
		p->added = false;
		p->armed = 0;
	}
	/* Under the lock: a waiter that comes now finds fd closed (or a
	 * new file under its number), never a registration close drops. */
	rc = close(fd);
	err = errno;
	if (p != NULL) {
		sli_unlock(&p->lock);
		sli_wakelist_wake(&wl);
	}
	if (rc == 0 || err == EINTR) /* Linux closed it all the same */
		return (0);
	errno = err;
	return (err == EBADF ? SL_EBADF : SL_ESYSTEM);
}
