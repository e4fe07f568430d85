/*
 * bench_wakeup.c — how late this machine wakes a sleeping thread.
 *
 * The latency row of the link benchmark sends one message a millisecond,
 * so every stage sleeps between messages and each message waits for
 * several thread wake-ups (NNG's poller, its task thread, the stage's
 * worker, in each process).  On a VM whose host is busy a single wake-up
 * can take most of a millisecond; this measures it in the same run, so
 * the report can tell a slow pipeline from a slow host.
 *
 * Sleeps 1 ms N times with clock_nanosleep and prints the oversleep:
 *
 *	bench_wakeup [N]
 *	wakeup: n=3000 p50_us=85.0 p99_us=741.0 max_us=3133.0
 */
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

int
main(int argc, char **argv)
{
	long             n = argc > 1 ? strtol(argv[1], NULL, 10) : 3000;
	long long       *late;
	struct timespec  ms = { 0, 1000000 };

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

		while ((rv = clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL)) ==
		    EINTR)
			;
		if (rv != 0) {
			fprintf(stderr, "bench_wakeup: clock_nanosleep: error "
			    "%d\n", rv);
			free(late);
			return (1);
		}
		late[i] = now_ns() - t0 - 1000000;
	}
	qsort(late, (size_t) n, sizeof(*late), cmp_ll);
	printf("wakeup: n=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n,
	    (double) late[n / 2] / 1e3, (double) late[n * 99 / 100] / 1e3,
	    (double) late[n - 1] / 1e3);
	free(late);
	return (0);
}
