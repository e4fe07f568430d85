/*
 * signal.c — signals relayed to channels and contexts (sluice/signal.h).
 *
 * A handler may only make async-signal-safe calls, so ours does two
 * things: it marks the signal pending and writes a byte into a pipe.  A
 * thread of the runtime, the reader, sleeps in read(2) on that pipe and
 * does the rest as a plain thread may: a non-blocking send of the signal
 * number to every channel registered for it, and the cancellation of
 * every context.  Pending marks, not the bytes, say which signals came,
 * so a full pipe loses nothing that matters.
 *
 * The pipe is made by the first registration in a process (again in a
 * forked child, whose inherited pipe is shared with the parent) and
 * stays: a handler running on another thread may be about to write to
 * it.  Registrations and the reader live within one sl_main run, like
 * the workers: sli_signal_init opens the window; sli_signal_fini closes
 * it before the scheduler is torn down, after waiting for a delivery in
 * flight (a delivery wakes goroutines, a cancellation may start
 * AfterFuncs), and joins the reader, so no thread of ours outlives
 * sl_main (a later fork(2) finds the process as it left it).  Contexts are
 * canceled outside the registry lock (an AfterFunc that cannot get a
 * goroutine runs on the canceling thread and may call in here); the
 * count of deliveries in flight is what fini waits for.
 *
 * A signal's first registration installs the handler and keeps the
 * disposition it replaced; its last one puts that back.
 *
 * Under TSan the handler goes around TSan's sigaction interceptor.  GCC
 * 12's TSan runs an intercepted handler for a signal that arrives outside
 * its interceptors only at the next intercepted call of the same fiber,
 * and a goroutine that parks first can keep it pending for good (a third
 * of the test runs lost a signal).  Ours is installed with glibc's
 * __sigaction, which TSan does not intercept, so the kernel runs it at
 * once; it is built without TSan instrumentation and writes with
 * syscall(2), so it never enters TSan's runtime, which it may have
 * interrupted.  TSan sees nothing of it: the pending marks and the pipe
 * carry no data it could report on.  The dispositions saved and put
 * back are the kernel's, which are TSan's own wrappers for the program's
 * handlers.
 */
#include "sluice_config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if SLUICE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "sched/sched.h"
#include "sluice/error.h"
#include "sluice/signal.h"

#define SG_NSIG   65 /* signal numbers 1..64 */
#define SG_BATCH  16 /* contexts canceled per pass of a delivery */

/* One registration: a channel or a context, and the signals it wants. */
typedef struct sg_entry sg_entry;
struct sg_entry {
	sg_entry *next;
	sl_chan  *ch;    /* a reference of ours, or NULL ... */
	sl_ctx   *ctx;   /* ... and then this one */
	uint64_t  mask;  /* bit s-1 for signal s */
	uint64_t  seq;   /* when it was made (sg.seq): a delivery that began
	                    before is not for it */
	bool      fired; /* ctx: canceled by a signal already */
};

static struct {
	pthread_mutex_t  mu;
	pthread_cond_t   idle;       /* delivering dropped to 0 */
	bool             live;       /* an sl_main runs */
	int              delivering; /* deliveries in flight */
	sg_entry        *entries;
	uint64_t         seq;        /* entries made so far */
	int              wants[SG_NSIG]; /* registrations of each signal */
	struct sigaction saved[SG_NSIG]; /* the dispositions ours replaced */
	pid_t            pid;        /* the process rfd was made in */
	int              rfd;
	bool             reader_on;  /* the reader runs (this sl_main) */
	bool             quit;       /* fini: the reader is to return */
	pthread_t        reader;
} sg = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.rfd = -1,
};

/* Read by the handler: lock-free. */
static atomic_int sg_pending[SG_NSIG];
static atomic_int sg_wfd = -1;

/* Registrations in all: the deadlock detector stays quiet while > 0. */
atomic_int sli_signal_regs;

#if defined(__SANITIZE_THREAD__)
/* glibc's other name for sigaction (GLIBC_2.2.5); no header declares it. */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
#define sg_sigaction        __sigaction
#define SG_HANDLER_ATTR     __attribute__((no_sanitize_thread))
#define sg_write(fd, p, n)  syscall(SYS_write, (fd), (p), (n))
#else
#define sg_sigaction        sigaction
#define SG_HANDLER_ATTR
#define sg_write(fd, p, n)  write((fd), (p), (n))
#endif

SG_HANDLER_ATTR static void
sg_handler(int sig)
{
	int saved = errno;
	int fd;

	if (sig > 0 && sig < SG_NSIG)
		atomic_store(&sg_pending[sig], 1);
	if ((fd = atomic_load(&sg_wfd)) >= 0)
		(void) !sg_write(fd, "", 1); /* full: a wakeup is due anyway */
	errno = saved;
}

static uint64_t
sg_bit(int sig)
{
	return ((uint64_t) 1 << (sig - 1));
}

/* Signals that cannot be caught, that the faulting instruction would
 * raise again as soon as a handler returned, or that the C library keeps
 * for itself (32 and 33 with glibc: below SIGRTMIN, above the classic
 * ones; sigaction refuses them). */
static bool
sg_refused(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP:
	case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
	case SIGSYS:
		return (true);
	default:
		return (sig < 1 || sig >= SG_NSIG || sig >= NSIG ||
		    (sig > 31 && sig < SIGRTMIN));
	}
}

/* "signal SIGTERM", or "signal 40" for a number without a name. */
static void
sg_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		snprintf(buf, len, "signal SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
}

/*
 * One delivery, sg.mu held (dropped and taken again while contexts are
 * canceled): the signals marked pending go to the channels at once
 * (trysend never runs user code), and the contexts to cancel are taken
 * SG_BATCH at a time, each retained, and canceled with the lock dropped.
 */
static void
sg_deliver(void)
{
	uint64_t got = 0, upto;
	sl_ctx  *cancel[SG_BATCH];
	int      cancel_sig[SG_BATCH];
	int      n;

	for (int s = 1; s < SG_NSIG; s++)
		if (atomic_exchange(&sg_pending[s], 0))
			got |= sg_bit(s);
	if (!sg.live || got == 0)
		return;
	sg.delivering++;
	/* The contexts are canceled with the lock dropped, so entries made
	 * meanwhile may be in the list when it is walked again: the signals
	 * in got came before them. */
	upto = sg.seq;
	for (sg_entry *e = sg.entries; e != NULL; e = e->next) {
		if (e->ch == NULL || (e->mask & got) == 0)
			continue;
		for (int s = 1; s < SG_NSIG; s++)
			if ((e->mask & got & sg_bit(s)) != 0)
				(void) sl_chan_trysend(e->ch, &s);
	}
	do {
		n = 0;
		for (sg_entry *e = sg.entries; e != NULL && n < SG_BATCH;
		    e = e->next) {
			if (e->ctx == NULL || e->fired || e->seq > upto ||
			    (e->mask & got) == 0)
				continue;
			e->fired = true;
			cancel[n] = sl_ctx_retain(e->ctx);
			cancel_sig[n] = __builtin_ctzll(e->mask & got) + 1;
			n++;
		}
		pthread_mutex_unlock(&sg.mu);
		for (int i = 0; i < n; i++) {
			char why[32];

			sg_name(cancel_sig[i], why, sizeof(why));
			sl_ctx_cancel_cause(cancel[i], SL_ECANCELED, why);
			sl_ctx_release(cancel[i]);
		}
		pthread_mutex_lock(&sg.mu);
	} while (n == SG_BATCH);
	if (--sg.delivering == 0)
		pthread_cond_broadcast(&sg.idle);
}

static void *
sg_reader(void *arg)
{
	int  fd = (int) (intptr_t) arg;
	char buf[64];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return (NULL); /* cannot happen: we hold the write end */
		pthread_mutex_lock(&sg.mu);
		if (sg.quit) {
			pthread_mutex_unlock(&sg.mu);
			return (NULL);
		}
		sg_deliver();
		pthread_mutex_unlock(&sg.mu);
	}
}

/* The pipe of this process.  sg.mu held. */
static int
sg_pipe_locked(void)
{
	int fds[2], err;

	if (sg.pid == getpid())
		return (0);
	if (sg.rfd >= 0) { /* a forked child: that pipe is the parent's too */
		close(sg.rfd);
		close(atomic_exchange(&sg_wfd, -1));
		sg.rfd = -1;
	}
	if (pipe2(fds, O_CLOEXEC) != 0)
		return (SL_ESYSTEM);
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) {
		err = errno;
		close(fds[0]);
		close(fds[1]);
		errno = err;
		return (SL_ESYSTEM);
	}
	sg.rfd = fds[0];
	atomic_store(&sg_wfd, fds[1]);
	sg.pid = getpid();
	return (0);
}

/* The reader of this sl_main run.  sg.mu held. */
static int
sg_reader_start_locked(void)
{
	pthread_attr_t attr;
	sigset_t       all, old;
	int            rv;

	if (sg.reader_on)
		return (0);
	if ((rv = sg_pipe_locked()) != 0)
		return (rv);
	/* The reader must not run handlers itself: it starts with every
	 * signal blocked. */
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rv = pthread_create(&sg.reader, &attr, sg_reader,
	    (void *) (intptr_t) sg.rfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rv != 0) {
		errno = rv;
		return (SL_ESYSTEM);
	}
	sg.reader_on = true;
	return (0);
}

/* Counts one more registration of sig, installing the handler for the
 * first.  sg.mu held. */
static int
sg_want_locked(int sig)
{
	struct sigaction sa;

	if (sg.wants[sig] == 0) {
		/* A mark left now is from before this handler: one that ran
		 * on another thread as the last registration went, even after
		 * sli_signal_fini cleared the marks.  It is not for anyone
		 * registered from here on. */
		atomic_store(&sg_pending[sig], 0);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = sg_handler;
		sigfillset(&sa.sa_mask);
		/* On a worker's alternate stack when it has one: a goroutine
		 * near the end of its stack has no room for a signal frame.
		 * Not under valgrind: 3.19 then reports the interrupted
		 * futex wait of worker 0 as writing to its own stack. */
		sa.sa_flags = SA_RESTART | SA_ONSTACK;
#if SLUICE_HAVE_VALGRIND_H
		if (RUNNING_ON_VALGRIND)
			sa.sa_flags = SA_RESTART;
#endif
		if (sg_sigaction(sig, &sa, &sg.saved[sig]) != 0)
			return (SL_ESYSTEM);
	}
	sg.wants[sig]++;
	return (0);
}

/* One registration less of each signal of mask.  sg.mu held. */
static void
sg_unwant_locked(uint64_t mask)
{
	for (int s = 1; s < SG_NSIG; s++)
		if ((mask & sg_bit(s)) != 0 && --sg.wants[s] == 0)
			(void) sg_sigaction(s, &sg.saved[s], NULL);
}

/* Validates sigs into *mask. */
static int
sg_mask(const int *sigs, size_t n, uint64_t *mask)
{
	*mask = 0;
	if (sigs == NULL || n == 0)
		return (SL_EINVAL);
	for (size_t i = 0; i < n; i++) {
		if (sg_refused(sigs[i]))
			return (SL_EINVAL);
		*mask |= sg_bit(sigs[i]);
	}
	return (0);
}

/*
 * Adds mask to the registration of ch or ctx (exactly one non-NULL),
 * making it if needed.  The new entry takes its own reference.
 */
static int
sg_register(sl_chan *ch, sl_ctx *ctx, uint64_t mask)
{
	sg_entry *e;
	uint64_t  added, done = 0;
	int       rv = 0, err;

	pthread_mutex_lock(&sg.mu);
	if (!sg.live) {
		rv = SL_ESTATE;
		goto out;
	}
	if ((rv = sg_reader_start_locked()) != 0)
		goto out;
	for (e = sg.entries; e != NULL; e = e->next)
		if ((ch != NULL && e->ch == ch) || (ctx != NULL && e->ctx == ctx))
			break;
	added = mask & ~(e != NULL ? e->mask : 0);
	for (int s = 1; s < SG_NSIG && rv == 0; s++)
		if ((added & sg_bit(s)) != 0 && (rv = sg_want_locked(s)) == 0)
			done |= sg_bit(s);
	if (rv == 0 && e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		e->ch = ch != NULL ? sl_chan_retain(ch) : NULL;
		e->ctx = ctx != NULL ? sl_ctx_retain(ctx) : NULL;
		e->seq = ++sg.seq;
		e->next = sg.entries;
		sg.entries = e;
		atomic_fetch_add(&sli_signal_regs, 1);
	} else if (rv == 0 && e == NULL)
		rv = SL_ENOMEM;
	if (rv != 0) { /* undo this call's part */
		err = errno;
		sg_unwant_locked(done);
		errno = err;
		goto out;
	}
	e->mask |= added;
out:
	pthread_mutex_unlock(&sg.mu);
	return (rv);
}

/* Unlinks the entry of ch or ctx, if there is one.  sg.mu held. */
static sg_entry *
sg_unlink_locked(sl_chan *ch, sl_ctx *ctx)
{
	for (sg_entry **pp = &sg.entries; *pp != NULL; pp = &(*pp)->next) {
		sg_entry *e = *pp;

		if ((ch != NULL && e->ch == ch) ||
		    (ctx != NULL && e->ctx == ctx)) {
			*pp = e->next;
			sg_unwant_locked(e->mask);
			atomic_fetch_sub(&sli_signal_regs, 1);
			return (e);
		}
	}
	return (NULL);
}

static void
sg_free(sg_entry *e)
{
	sl_chan_release(e->ch);
	sl_ctx_release(e->ctx);
	free(e);
}

/* Ends the registration of ch or ctx, if there is one. */
static void
sg_drop(sl_chan *ch, sl_ctx *ctx)
{
	sg_entry *e;

	pthread_mutex_lock(&sg.mu);
	e = sg_unlink_locked(ch, ctx);
	pthread_mutex_unlock(&sg.mu);
	if (e == NULL)
		return;
	sg_free(e);
	/* The last registration, ended by a plain thread, may leave every
	 * goroutine asleep for good: a worker must look (sli_timer_stop). */
	if (sli_self() == NULL)
		sli_sched_poke();
}

int
sl_signal_notify(sl_chan *ch, const int *sigs, size_t n)
{
	uint64_t mask;
	int      rv;

	if (ch == NULL || sl_chan_elem_size(ch) != sizeof(int))
		return (SL_EINVAL);
	if ((rv = sg_mask(sigs, n, &mask)) != 0)
		return (rv);
	return (sg_register(ch, NULL, mask));
}

void
sl_signal_stop(sl_chan *ch)
{
	if (ch != NULL)
		sg_drop(ch, NULL);
}

int
sl_signal_ctx(sl_ctx *parent, const int *sigs, size_t n, sl_ctx **out)
{
	sl_ctx  *ctx;
	uint64_t mask;
	int      rv;

	if (out == NULL)
		return (SL_EINVAL);
	*out = NULL;
	if (parent == NULL)
		return (SL_EINVAL);
	if ((rv = sg_mask(sigs, n, &mask)) != 0)
		return (rv);
	if ((rv = sl_ctx_with_cancel(parent, &ctx)) != 0)
		return (rv);
	if ((rv = sg_register(NULL, ctx, mask)) != 0) {
		sl_signal_stop_ctx(ctx);
		sl_ctx_release(ctx);
		return (rv);
	}
	*out = ctx;
	return (0);
}

void
sl_signal_stop_ctx(sl_ctx *ctx)
{
	if (ctx == NULL)
		return;
	sl_ctx_cancel(ctx); /* while the registration still holds it */
	sg_drop(NULL, ctx);
}

void
sli_signal_init(void)
{
	pthread_mutex_lock(&sg.mu);
	sg.live = true;
	pthread_mutex_unlock(&sg.mu);
}

void
sli_signal_fini(void)
{
	sg_entry *list;

	pthread_mutex_lock(&sg.mu);
	sg.live = false;
	while (sg.delivering > 0)
		pthread_cond_wait(&sg.idle, &sg.mu);
	list = sg.entries;
	sg.entries = NULL;
	for (sg_entry *e = list; e != NULL; e = e->next) {
		sg_unwant_locked(e->mask);
		atomic_fetch_sub(&sli_signal_regs, 1);
	}
	if (sg.reader_on) {
		sg.quit = true;
		(void) !write(atomic_load(&sg_wfd), "", 1);
		pthread_mutex_unlock(&sg.mu);
		pthread_join(sg.reader, NULL);
		pthread_mutex_lock(&sg.mu);
		sg.quit = false;
		sg.reader_on = false;
	}
	/* What came meanwhile was for registrations now gone. */
	for (int s = 1; s < SG_NSIG; s++)
		atomic_store(&sg_pending[s], 0);
	pthread_mutex_unlock(&sg.mu);
	while (list != NULL) {
		sg_entry *next = list->next;

		sg_free(list);
		list = next;
	}
}
