/*
 * cpus.c — which CPUs the scheduler's threads run on (SLUICE_CPUS).
 *
 * A CPU list is the format taskset(1), cpuset(7) and Docker's --cpuset-cpus
 * use: comma-separated CPU numbers and inclusive ranges, "0", "0-3,6".
 * sl_main() sets it as the affinity of every thread the process has,
 * before it starts the other workers, so every thread created from then
 * on (workers, the blocking pool, NNG's poller and task threads) inherits
 * it.  The caller's own affinity is restored when sl_main returns.
 *
 * Why a pipeline wants this: on a virtual machine, waking a thread on an
 * idle vCPU takes an inter-processor interrupt through the hypervisor,
 * which can cost a millisecond.  A low-rate pipeline whose stages all run
 * on one CPU hands each message from process to process by plain context
 * switches on a CPU that is already awake (tests/bench/link/run.sh
 * measures both placements).
 */
#include "sluice_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched/sched.h"
#include "sluice/error.h"

/* Appends the CPUs of set to buf as a CPU list ("0-1,3"). */
static void
cpus_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE && off < len; c++) {
		int e = c;
		int n;

		if (!CPU_ISSET(c, set))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		n = e == c ? snprintf(buf + off, len - off, "%s%d",
		                 off ? "," : "", c)
		           : snprintf(buf + off, len - off, "%s%d-%d",
		                 off ? "," : "", c, e);
		if (n < 0)
			break;
		off += (size_t) n;
		c = e;
	}
}

/* One CPU number at *sp: digits only, below CPU_SETSIZE. */
static int
cpus_number(const char **sp, int *out)
{
	const char *s = *sp;
	long        v = 0;

	if (*s < '0' || *s > '9')
		return (-1);
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s - '0');
		if (v >= CPU_SETSIZE)
			return (-1);
		s++;
	}
	*sp = s;
	*out = (int) v;
	return (0);
}

int
sli_cpus_parse(const char *list, cpu_set_t *set, char *err, size_t errlen)
{
	const char *s = list;

	CPU_ZERO(set);
	if (list == NULL || *list == '\0') {
		snprintf(err, errlen, "empty CPU list");
		return (SL_EINVAL);
	}
	for (;;) {
		int lo, hi;

		if (cpus_number(&s, &lo) != 0)
			goto bad;
		hi = lo;
		if (*s == '-') {
			s++;
			if (cpus_number(&s, &hi) != 0)
				goto bad;
			if (hi < lo) {
				snprintf(err, errlen, "range %d-%d runs "
				    "backwards", lo, hi);
				return (SL_EINVAL);
			}
		}
		for (int c = lo; c <= hi; c++)
			CPU_SET(c, set);
		if (*s == '\0')
			return (0);
		if (*s != ',')
			goto bad;
		s++;
	}
bad:
	if (*s == '\0')
		snprintf(err, errlen, "not a CPU list: a CPU number is "
		    "missing at the end (expected CPU numbers below %d and "
		    "ranges, like 0 or 0-3,6)", CPU_SETSIZE);
	else
		snprintf(err, errlen, "not a CPU list at \"%s\" (expected "
		    "CPU numbers below %d and ranges, like 0 or 0-3,6)", s,
		    CPU_SETSIZE);
	return (SL_EINVAL);
}

/* The CPUs this process may run on: the kernel clips a full mask to the
 * online CPUs of its cpuset (a wider set than the current affinity, which
 * taskset may have narrowed).  Leaves the affinity at that set. */
static void
cpus_usable(cpu_set_t *usable)
{
	CPU_ZERO(usable);
	for (int c = 0; c < CPU_SETSIZE; c++)
		CPU_SET(c, usable);
	if (sched_setaffinity(0, sizeof(*usable), usable) != 0 ||
	    sched_getaffinity(0, sizeof(*usable), usable) != 0)
		CPU_ZERO(usable);
}

/* Binds the threads the process already has (a signal thread, a
 * library's) too: the list is the process's, as taskset's would be. */
static void
cpus_bind_others(const cpu_set_t *set)
{
	struct dirent *e;
	pid_t          self = (pid_t) syscall(SYS_gettid);
	DIR           *d;

	if ((d = opendir("/proc/self/task")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		pid_t tid = (pid_t) atoi(e->d_name);

		if (tid > 0 && tid != self)
			(void) sched_setaffinity(tid, sizeof(*set), set);
	}
	closedir(d);
}

int
sli_cpus_apply(const char *list, const char *what, cpu_set_t *old)
{
	cpu_set_t set, usable, missing;
	char      err[160];
	char      have[128], bad[128];
	int       rv;

	if (sched_getaffinity(0, sizeof(*old), old) != 0) {
		fprintf(stderr, "sluice: %s: cannot read the CPU affinity: "
		    "%s\n", what, strerror(errno));
		return (SL_ESYSTEM);
	}
	if ((rv = sli_cpus_parse(list, &set, err, sizeof(err))) != 0) {
		fprintf(stderr, "sluice: %s=\"%s\": %s\n", what, list, err);
		return (rv);
	}
	cpus_usable(&usable);
	/* CPUs asked for that this process cannot have (offline, outside
	 * its cpuset) are an error, not silently dropped as taskset does. */
	CPU_XOR(&missing, &set, &usable);
	CPU_AND(&missing, &missing, &set);
	if (CPU_COUNT(&missing) != 0 ||
	    sched_setaffinity(0, sizeof(set), &set) != 0) {
		cpus_format(&missing, bad, sizeof(bad));
		cpus_format(&usable, have, sizeof(have));
		fprintf(stderr, "sluice: %s=\"%s\": CPU %s not available to "
		    "this process (it may use %s)\n", what, list,
		    CPU_COUNT(&missing) ? bad : list, have);
		sched_setaffinity(0, sizeof(*old), old);
		return (SL_EINVAL);
	}
	cpus_bind_others(&set);
	return (0);
}

int
sli_cpus_count(void)
{
	cpu_set_t set;
	int       n;

	if (sched_getaffinity(0, sizeof(set), &set) != 0 ||
	    (n = CPU_COUNT(&set)) < 1)
		return ((int) sysconf(_SC_NPROCESSORS_ONLN));
	return (n);
}
