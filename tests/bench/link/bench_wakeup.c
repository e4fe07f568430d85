/*
 * bench_wakeup.c — how late this machine wakes a sleeping thread, and
 * what one hand-off between two processes costs on different CPUs and
 * on one CPU.
 *
 * The latency row of the link benchmark sends one message a millisecond,
 * so every stage sleeps between messages and each message waits for
 * several thread wake-ups (NNG's poller, its task thread, the stage's
 * worker, in each process).  On a VM a wake-up of a thread on an idle
 * vCPU needs an inter-processor interrupt through the hypervisor, and
 * when the host is busy that can take most of a millisecond; a wake-up
 * of a thread on the CPU that is running the waker is a plain context
 * switch.  This measures both in the same run, so the report can tell a
 * slow pipeline from a slow host:
 *
 *   wakeup   sleep 1 ms (clock_nanosleep), the oversleep;
 *   cross    a process sleeps 1 ms, then writes the time to a pipe that
 *            a process blocked in read(2) on the other CPU receives: the
 *            time from write to the reader running;
 *   same     the same with both processes on one CPU.
 *
 *	bench_wakeup [N]
 *	wakeup: n=3000 p50_us=85.0 p99_us=741.0 max_us=3133.0
 *	cross: n=3000 p50_us=40.1 p99_us=1210.4 max_us=5120.0
 *	same: n=3000 p50_us=6.2 p99_us=30.5 max_us=400.2
 *
 * The cross line is left out on a machine with one CPU.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((long long) t.tv_sec * 1000000000LL + t.tv_nsec);
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *) a, y = *(const long long *) b;

	return (x < y ? -1 : x > y);
}

static void
report(const char *what, long long *v, long n)
{
	qsort(v, (size_t) n, sizeof(*v), cmp_ll);
	printf("%s: n=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", what, n,
	    (double) v[n / 2] / 1e3, (double) v[n * 99 / 100] / 1e3,
	    (double) v[n - 1] / 1e3);
	fflush(stdout);
}

static int
bind_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return (sched_setaffinity(0, sizeof(set), &set));
}

static int
sleep_1ms(void)
{
	struct timespec ms = { 0, 1000000 };
	int             rv;

	while ((rv = clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL)) == EINTR)
		;
	return (rv);
}

/* n hand-offs from a writer on CPU wcpu to a reader on CPU rcpu, one per
 * millisecond; the latencies go to lat.  0, or -1 with errno-ish text
 * printed. */
static int
handoff(int wcpu, int rcpu, long n, long long *lat)
{
	int   fds[2], st;
	pid_t pid;

	if (pipe(fds) != 0) {
		perror("bench_wakeup: pipe");
		return (-1);
	}
	if ((pid = fork()) < 0) {
		perror("bench_wakeup: fork");
		return (-1);
	}
	if (pid == 0) { /* the writer */
		close(fds[0]);
		if (bind_cpu(wcpu) != 0)
			_exit(1);
		for (long i = 0; i < n; i++) {
			long long t;

			if (sleep_1ms() != 0)
				_exit(1);
			t = now_ns();
			if (write(fds[1], &t, sizeof(t)) != sizeof(t))
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	if (bind_cpu(rcpu) != 0) {
		perror("bench_wakeup: sched_setaffinity");
		kill(pid, SIGKILL);
	}
	for (long i = 0; i < n; i++) {
		long long t;
		size_t    got = 0;

		while (got < sizeof(t)) {
			ssize_t r = read(fds[0], (char *) &t + got,
			    sizeof(t) - got);
			if (r <= 0) {
				fprintf(stderr, "bench_wakeup: the writer "
				    "stopped after %ld hand-offs\n", i);
				close(fds[0]);
				waitpid(pid, &st, 0);
				return (-1);
			}
			got += (size_t) r;
		}
		lat[i] = now_ns() - t;
	}
	close(fds[0]);
	waitpid(pid, &st, 0);
	return (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1);
}

int
main(int argc, char **argv)
{
	long       n = argc > 1 ? strtol(argv[1], NULL, 10) : 3000;
	long long *late;
	cpu_set_t  mine;
	int        cpus[2], ncpu = 0;

	if (n < 1 || n > 10000000) {
		fprintf(stderr, "usage: bench_wakeup [N], 1 <= N <= 10^7\n");
		return (2);
	}
	if ((late = malloc((size_t) n * sizeof(*late))) == NULL) {
		perror("bench_wakeup");
		return (1);
	}
	for (long i = 0; i < n; i++) {
		long long t0 = now_ns();
		int       rv;

		if ((rv = sleep_1ms()) != 0) {
			fprintf(stderr, "bench_wakeup: clock_nanosleep: error "
			    "%d\n", rv);
			free(late);
			return (1);
		}
		late[i] = now_ns() - t0 - 1000000;
	}
	report("wakeup", late, n);

	/* The first two CPUs this process may use. */
	if (sched_getaffinity(0, sizeof(mine), &mine) == 0)
		for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
			if (CPU_ISSET(c, &mine))
				cpus[ncpu++] = c;
	if (ncpu == 2) {
		if (handoff(cpus[0], cpus[1], n, late) != 0)
			goto fail;
		report("cross", late, n);
	}
	if (ncpu >= 1) {
		if (handoff(cpus[0], cpus[0], n, late) != 0)
			goto fail;
		report("same", late, n);
	}
	free(late);
	return (0);
fail:
	free(late);
	return (1);
}
