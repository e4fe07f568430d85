/*
 * test_pipeline.c — links between real processes: every case starts the
 * stage programs (sluice-source, sluice-map, sluice-sink from
 * $SLUICE_STAGE_DIR) as separate processes joined by links over ipc://
 * (tcp:// and tls+tcp:// in the transport cases), and checks exact
 * counts and checksums from the sink's summary line
 * "sink: count=C sum=S dups=D distinct=X".
 *
 * Nothing passes or fails on timing: every wait has a generous timeout
 * (PT_TIMEOUT_MS) that only turns a hang into a failure.  Measured times
 * (cancellation propagation) are printed.  Sizes scale with
 * SLUICE_TEST_SCALE.  A failing case prints every process's stdout and
 * stderr; SLUICE_TEST_KEEP=1 keeps the scratch directories.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"
#include "proc.h"

/* How long any process may take to do what a case waits for; and to
 * exit once a cancellation reached it (milliseconds are expected). */
#define PT_TIMEOUT_MS        180000
#define PT_CANCEL_TIMEOUT_MS 30000

/* How long a chain of stages gets to start, connect and stream before a
 * case signals it.  Under a stage wrapper (valgrind) a stage takes
 * seconds to start; a stage canceled before its peers connected cannot
 * tell them (it is gone when they come). */
static int
pt_settle_ms(void)
{
	return (getenv("SLUICE_STAGE_WRAPPER") != NULL ? 10000 : 1000);
}

/* Exit codes of the stage programs (stages/common/stage.h). */
#define EXIT_OK       0
#define EXIT_FAIL     1
#define EXIT_USAGE    2
#define EXIT_CANCELED 3

/* Waits up to ms for p to exit with exit code code. */
static void
expect_exit_within(pt_proc *p, int code, int ms)
{
	if (!pt_wait(p, ms))
		PT_FAIL("%s did not exit within %d ms", p->name, ms);
	if (pt_exit_code(p) != code)
		PT_FAIL("%s exited with %d, expected %d", p->name,
		    pt_exit_code(p), code);
}

/* Waits for p to exit (PT_TIMEOUT_MS) with exit code code. */
static void
expect_exit(pt_proc *p, int code)
{
	expect_exit_within(p, code, PT_TIMEOUT_MS);
}

/* The sink's summary must say: ids 1..n, each exactly once. */
static void
expect_exact(const pt_proc *sink, uint64_t n)
{
	pt_sink_summary s;

	if (!pt_sink_parse(sink, &s))
		PT_FAIL("%s printed no summary", sink->name);
	PT_CHECK_EQ(s.count, n);
	PT_CHECK_EQ(s.distinct, n);
	PT_CHECK_EQ(s.dups, 0);
	PT_CHECK_EQ(s.sum, n * (n + 1) / 2);
}

/* Prints the link counter lines of p's stderr (with --verbose). */
static void
print_counters(const pt_proc *p)
{
	char *e = pt_slurp(p->err), *line, *save = NULL;

	for (line = strtok_r(e, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, " msgs=") != NULL)
			fprintf(stdout, "# %s\n", line);
	}
	free(e);
}

static int
setup(void **state)
{
	(void) state;
	pt_setup();
	return (0);
}

static int
teardown(void **state)
{
	(void) state;
	if (pt_teardown() != 0) {
		fprintf(stdout, "# a stage process was still running at "
		    "teardown\n");
		return (-1);
	}
	return (0);
}

/* ---- command lines ------------------------------------------------------ */

/* A stage name one byte over what a link carries (256 bytes), set by
 * the case below. */
static char long_name[258];

/* Each bad command line exits 2 at once with one exact line on stderr.
 * Some of them (a name or type a link cannot carry, a URL given twice,
 * a map sending to its own input) used to start the stage, which then
 * redialed without a word for ever, looped for ever or lost records. */
static void
test_bad_options_are_refused_with_a_clear_message(void **state)
{
	static const struct {
		const char *prog;   /* program */
		const char *args[8]; /* arguments */
		const char *err;    /* exact stderr */
	} cases[] = {
		{ "sluice-source", { "--out", "ipc:///x", "--n", "abc",
		    "--stage", "s" },
		  "sluice-source: --n: not a non-negative integer: 'abc'\n" },
		{ "sluice-source", { "--out", "ipc:///x", "--n", "5",
		    "--rate", "0" },
		  "sluice-source: --rate: not a positive integer: '0'\n" },
		{ "sluice-source", { "--out", "ipc:///x,", "--n", "5",
		    "--stage", "s" },
		  "sluice-source: --out: empty URL in 'ipc:///x,'\n" },
		{ "sluice-source", { "--out", "ipc:///x", "--n", "5" },
		  "sluice-source: --stage NAME is required\n" },
		{ "sluice-map", { "--in", "ipc:///x", "--stage", "m",
		    "--sleep-us", "-3" },
		  "sluice-map: --sleep-us: not a non-negative integer: "
		  "'-3'\n" },
		{ "sluice-map", { "--in", "ipc:///x", "--stage", "m" },
		  "sluice-map: --out URL is required\n" },
		{ "sluice-sink", { "--in", "ipc:///x", "--stage", "k",
		    "--upstreams", "2000" },
		  "sluice-sink: --upstreams: out of range [1, 1024]: "
		  "'2000'\n" },
		{ "sluice-sink", { "--stage", "k" },
		  "sluice-sink: --in URL is required\n" },
		{ "sluice-sink", { "--in", "", "--stage", "k" },
		  "sluice-sink: --in: empty URL\n" },
		{ "sluice-map", { "--in", "", "--out", "ipc:///x", "--stage",
		    "m" },
		  "sluice-map: --in: empty URL\n" },
		{ "sluice-source", { "--out", "ipc:///x,ipc:///y,ipc:///x",
		    "--n", "5", "--stage", "s" },
		  "sluice-source: --out: URL 'ipc:///x' given twice in "
		  "'ipc:///x,ipc:///y,ipc:///x'\n" },
		{ "sluice-source", { "--out", "ipc:///x", "--n", "5",
		    "--stage", long_name },
		  "sluice-source: link: stage name of 257 bytes exceeds the "
		  "limit of 256\n" },
		{ "sluice-sink", { "--in", "ipc:///x", "--stage", "k\xff" },
		  "sluice-sink: link: stage name is not valid UTF-8 (byte "
		  "0xff at offset 1)\n" },
		{ "sluice-map", { "--in", "ipc:///x", "--out", "ipc:///y",
		    "--stage", "m", "--type", "no.such type" },
		  "sluice-map: link: payload type 'no.such type' is not a "
		  "protobuf full name\n" },
		{ "sluice-map", { "--in", "ipc:///nonexistent/m", "--out",
		    "ipc:///y,ipc:///nonexistent/m", "--stage", "m" },
		  "sluice-map: --out: URL 'ipc:///nonexistent/m' is also "
		  "its --in\n" },
		{ "sluice-sink", { "--in", "ipc:///x", "--stage", "k",
		    "--type", "sluice..Record" },
		  "sluice-sink: link: payload type 'sluice..Record' is not a "
		  "protobuf full name\n" },
	};
	char name[32];

	(void) state;
	memset(long_name, 'a', sizeof(long_name) - 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].args;
		pt_proc           *p;
		char              *err;

		snprintf(name, sizeof(name), "case%zu", i);
		p = pt_spawn(name, cases[i].prog, a[0], a[1], a[2], a[3],
		    a[4], a[5], a[6], a[7], (char *) NULL);
		/* At once: a stage that started instead would run until
		 * killed (redialing a peer that is not there). */
		expect_exit_within(p, EXIT_USAGE, PT_CANCEL_TIMEOUT_MS);
		err = pt_slurp(p->err);
		if (strcmp(err, cases[i].err) != 0)
			PT_FAIL("%s: stderr '%s', expected '%s'", name, err,
			    cases[i].err);
		free(err);
	}
}

/* A file at the ipc:// path of an input is left alone: NNG's listener
 * unlinks whatever it finds there that takes no connections (to clear a
 * stale socket), so a sink or map told to listen on a user's file used
 * to delete it, and then ran as if nothing had happened.  Now the link
 * refuses such a path, and the stage fails saying why. */
static void
test_an_input_never_deletes_a_file_at_its_ipc_path(void **state)
{
	static const char *const urls[] = { "ipc://", "UNIX://" };
	char path[512], want[1024], *err, *data;
	FILE *f;

	(void) state;
	snprintf(path, sizeof(path), "%s/data.txt", pt_dir());
	PT_CHECK((f = fopen(path, "w")) != NULL);
	fputs("precious\n", f);
	fclose(f);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char     url[600];
		pt_proc *p;

		snprintf(url, sizeof(url), "%s%s", urls[i], path);
		p = i == 0 ?
		    pt_spawn("sink", "sluice-sink", "--in", url, "--stage",
		    "k", (char *) NULL) :
		    pt_spawn("map", "sluice-map", "--in", url, "--out",
		    pt_ipc("sink.in"), "--stage", "m", (char *) NULL);
		expect_exit_within(p, EXIT_FAIL, PT_CANCEL_TIMEOUT_MS);
		snprintf(want, sizeof(want), "sluice: link in (stage '%s' port "
		    "'in'): cannot listen on '%s': not a socket, and listening "
		    "there would delete it\n", i == 0 ? "k" : "m", url);
		if (!pt_stderr_has(p, want)) {
			err = pt_slurp(p->err);
			PT_FAIL("%s: stderr '%s', expected '%s'", p->name, err,
			    want);
		}
		data = pt_slurp(path);
		if (strcmp(data, "precious\n") != 0)
			PT_FAIL("%s: %s now holds '%s'", p->name, path, data);
		free(data);
	}
}

/* ---- deploy/example-pipeline.sh ------------------------------------------ */

/* Runs the example pipeline script on n records from the test's scratch
 * directory, with build_arg as its BUILD_DIR; its exit code, and its
 * output (both streams) in out. */
static int
run_example(const char *n, const char *build_arg, char *out, size_t outsz)
{
	const char *src = getenv("SLUICE_SOURCE_DIR");
	char        cmd[2048];
	size_t      len = 0, k;
	FILE       *f;
	int         st;

	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s/deploy/example-pipeline.sh' "
	    "'%s' '%s' 2>&1", pt_dir(), src, n, build_arg);
	PT_CHECK((f = popen(cmd, "r")) != NULL);
	while (len + 1 < outsz &&
	    (k = fread(out + len, 1, outsz - 1 - len, f)) > 0)
		len += k;
	out[len] = '\0';
	st = pclose(f);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* The script of the README's first command takes its BUILD_DIR from
 * where it is called (it used to take it from the top of the repository,
 * so a relative one was not found), and says so when there is none. */
static void
test_example_pipeline_takes_its_build_dir_from_the_caller(void **state)
{
	const char *stages = getenv("SLUICE_STAGE_DIR");
	char        build[512], link[600], out[8192], *slash;
	int         rc;

	(void) state;
	if (stages == NULL || getenv("SLUICE_SOURCE_DIR") == NULL)
		skip(); /* run by hand, not by meson test */
	/* "bld" in the scratch directory is the build directory, the
	 * parent of its stages/. */
	snprintf(build, sizeof(build), "%s", stages);
	PT_CHECK((slash = strrchr(build, '/')) != NULL);
	*slash = '\0';
	snprintf(link, sizeof(link), "%s/bld", pt_dir());
	PT_CHECK(symlink(build, link) == 0);
	rc = run_example("300", "bld", out, sizeof(out));
	if (rc != 0 || strstr(out, "example-pipeline: ok\n") == NULL)
		PT_FAIL("exit %d, output:\n%s", rc, out);
	rc = run_example("300", "no-such-dir", out, sizeof(out));
	PT_CHECK_EQ(rc, 2);
	if (strcmp(out, "example-pipeline: build directory 'no-such-dir' "
	    "not found\n") != 0)
		PT_FAIL("output:\n%s", out);
}

/* ---- SLUICE_CPUS ---------------------------------------------------------- */

/* How many threads pid has, and how many of them may run on exactly the
 * CPUs "want" (Cpus_allowed_list in /proc/PID/task/TID/status). */
static void
threads_on(pid_t pid, const char *want, int *threads, int *bound)
{
	struct dirent *e;
	char           path[300], line[256];
	DIR           *d;

	*threads = *bound = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status",
		    (int) pid, e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		(*threads)++;
		while (fgets(line, sizeof(line), f) != NULL) {
			char *v = line + 18;

			if (strncmp(line, "Cpus_allowed_list:", 18) != 0)
				continue;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			if (strcmp(v, want) == 0)
				(*bound)++;
			break;
		}
		fclose(f);
	}
	closedir(d);
}

/* SLUICE_CPUS binds every thread of a stage process, NNG's included, and
 * the stages still deliver everything; a bad list stops the stage with a
 * message naming it. */
static void
test_sluice_cpus_binds_every_thread_of_each_stage(void **state)
{
	uint64_t  n = 2000; /* 2 s at --rate 1000, valgrind or not */
	pt_proc  *src, *sink, *bad;
	cpu_set_t mine;
	char      cpu[16], *err;
	int       last = -1, threads, bound;

	(void) state;
	PT_CHECK(sched_getaffinity(0, sizeof(mine), &mine) == 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine))
			last = c;
	snprintf(cpu, sizeof(cpu), "%d", last);

	setenv("SLUICE_CPUS", cpu, 1);
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--expect", pt_num(n), (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("sink.in"),
	    "--n", pt_num(n), "--rate", "1000", "--stage", "src",
	    (char *) NULL);
	unsetenv("SLUICE_CPUS");
	/* NNG starts its threads (poller, task queue, timer, resolver)
	 * when a process opens its first socket; a sanitizer has threads of
	 * its own before main, bound when sl_main starts (under TSan, a
	 * check 100 ms after three threads showed found none bound yet). */
	for (int i = 0; i < PT_TIMEOUT_MS / 50 && pt_running(src); i++) {
		int st, ss, bt, bs;

		threads_on(sink->pid, cpu, &st, &bt);
		threads_on(src->pid, cpu, &ss, &bs);
		if (st >= 3 && ss >= 3 && bt == st && bs == ss)
			break;
		pt_msleep(50);
	}
	pt_msleep(100);
	PT_CHECK(pt_running(src));
	threads_on(sink->pid, cpu, &threads, &bound);
	if (threads < 3 || bound != threads)
		PT_FAIL("sink: %d of %d threads bound to CPU %s", bound,
		    threads, cpu);
	threads_on(src->pid, cpu, &threads, &bound);
	if (threads < 3 || bound != threads)
		PT_FAIL("source: %d of %d threads bound to CPU %s", bound,
		    threads, cpu);
	expect_exit(src, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);

	setenv("SLUICE_CPUS", "0-", 1);
	bad = pt_spawn("bad", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "m", (char *) NULL);
	unsetenv("SLUICE_CPUS");
	expect_exit(bad, EXIT_FAIL);
	err = pt_slurp(bad->err);
	if (strstr(err, "sluice: SLUICE_CPUS=\"0-\": not a CPU list: a CPU "
	    "number is missing at the end") == NULL)
		PT_FAIL("bad SLUICE_CPUS: stderr '%s'", err);
	free(err);
}

/* ---- (a) a chain of three ---------------------------------------------- */

static void
test_chain_of_three_delivers_every_record_once(void **state)
{
	uint64_t n = pt_scaled(100000), v;
	pt_proc *src, *map, *sink;

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--expect", pt_num(n), (char *) NULL);
	map = pt_spawn("map", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map", (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("map.in"),
	    "--n", pt_num(n), "--stage", "src", "--source-id", "7",
	    (char *) NULL);
	expect_exit(src, EXIT_OK);
	expect_exit(map, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
	PT_CHECK(pt_stdout_u64(src, "sent", &v));
	PT_CHECK_EQ(v, n);
	PT_CHECK(pt_stdout_u64(map, "processed", &v));
	PT_CHECK_EQ(v, n);
}

/* ---- (b) SIGKILL of the middle stage ------------------------------------ */

static void
test_sigkill_of_the_middle_stage_loses_and_duplicates_nothing(void **state)
{
	uint64_t n = pt_scaled(30000);
	uint64_t rate = n / 3 > 0 ? n / 3 : 1; /* a run of about 3 s */
	pt_proc *src, *map, *sink;
	char     name[16];

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--dedup", "--expect", pt_num(n), "--verbose",
	    (char *) NULL);
	map = pt_spawn("map.0", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map", (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("map.in"),
	    "--n", pt_num(n), "--rate", pt_num(rate), "--stage", "src",
	    "--verbose", (char *) NULL);
	pt_msleep(300);
	for (int k = 1; k <= 3; k++) {
		if (!pt_running(sink) || !pt_running(src))
			PT_FAIL("the stream ended before kill %d", k);
		pt_kill(map, SIGKILL);
		if (!pt_wait(map, PT_TIMEOUT_MS))
			PT_FAIL("SIGKILLed map did not exit");
		PT_CHECK_EQ(pt_exit_code(map), 128 + SIGKILL);
		snprintf(name, sizeof(name), "map.%d", k);
		map = pt_respawn(map, name);
		pt_msleep(100 + 100 * k);
	}
	expect_exit(src, EXIT_OK);
	expect_exit(map, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
	print_counters(src);
	print_counters(sink);
}

/* ---- (c) slow sink, bounded memory -------------------------------------- */

static void
test_slow_sink_keeps_every_process_memory_bounded(void **state)
{
	/* 4 KiB records: the whole stream (80 MiB at scale 1) is larger
	 * than the bound, so an unbounded queue anywhere would show. */
	uint64_t    n = pt_scaled(20000);
	pt_proc    *procs[3];
	long        max[3] = { 0, 0, 0 };
	const char *asan = getenv("ASAN_OPTIONS");
	char        opts[512];
	int64_t     deadline;

	(void) state;
	/* ASan's quarantine keeps up to 256 MiB of freed memory resident;
	 * keep it small so that RSS shows what the program holds. */
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16",
	    asan != NULL ? asan : "", asan != NULL && asan[0] != '\0' ? ":"
	    : "");
	setenv("ASAN_OPTIONS", opts, 1);
	procs[2] = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--expect", pt_num(n), "--sleep-us", "50",
	    (char *) NULL);
	procs[1] = pt_spawn("map", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map", (char *) NULL);
	procs[0] = pt_spawn("src", "sluice-source", "--out",
	    pt_ipc("map.in"), "--n", pt_num(n), "--size", "4096", "--stage",
	    "src", (char *) NULL);
	if (asan != NULL)
		setenv("ASAN_OPTIONS", asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	deadline = pt_now_ns() + (int64_t) PT_TIMEOUT_MS * 1000000;
	while (pt_running(procs[2])) {
		for (int i = 0; i < 3; i++) {
			long kib = procs[i]->pid > 0 ?
			    pt_rss_kib(procs[i]->pid) : -1;

			if (kib > max[i])
				max[i] = kib;
		}
		if (pt_now_ns() > deadline)
			PT_FAIL("the slow sink did not finish");
		pt_msleep(10);
	}
	fprintf(stdout, "# max RSS: source %ld KiB, map %ld KiB, sink %ld "
	    "KiB (bound %ld KiB)\n", max[0], max[1], max[2],
	    PT_RSS_BOUND_KIB);
	for (int i = 0; i < 3; i++) {
		expect_exit(procs[i], EXIT_OK);
		if (getenv("SLUICE_STAGE_WRAPPER") != NULL)
			continue; /* a wrapper's memory is not the stage's */
		if (max[i] > PT_RSS_BOUND_KIB)
			PT_FAIL("%s: RSS %ld KiB > bound %ld KiB",
			    procs[i]->name, max[i], PT_RSS_BOUND_KIB);
	}
	expect_exact(procs[2], n);
}

/* ---- (d) close ordering ------------------------------------------------- */

static void
test_close_delivers_everything_sent_before_it(void **state)
{
	/* An empty stream, tiny ones, and one that a slow sink is still
	 * working through when the close arrives. */
	static const struct {
		uint64_t    n;     /* records (scaled if > 100) */
		const char *sleep; /* sink's --sleep-us */
	} runs[] = {
		{ 0, "0" }, { 1, "0" }, { 7, "0" }, { 5000, "100" },
	};
	char name[32];

	(void) state;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		uint64_t n = runs[i].n > 100 ? pt_scaled(runs[i].n)
		                             : runs[i].n;
		char     sock[32];
		pt_proc *src, *sink;
		uint64_t v;

		snprintf(sock, sizeof(sock), "sink%zu.in", i);
		snprintf(name, sizeof(name), "sink.%zu", i);
		sink = pt_spawn(name, "sluice-sink", "--in", pt_ipc(sock),
		    "--stage", "sink", "--expect", pt_num(n), "--sleep-us",
		    runs[i].sleep, (char *) NULL);
		snprintf(name, sizeof(name), "src.%zu", i);
		src = pt_spawn(name, "sluice-source", "--out", pt_ipc(sock),
		    "--n", pt_num(n), "--stage", "src", (char *) NULL);
		expect_exit(src, EXIT_OK);
		expect_exit(sink, EXIT_OK);
		expect_exact(sink, n);
		PT_CHECK(pt_stdout_u64(src, "sent", &v));
		PT_CHECK_EQ(v, n);
	}
}

/* ---- (e) cancellation downstream ---------------------------------------- */

/*
 * Waits until records reach sink (spawned with --verbose), so every link
 * of the chain is up: a cancellation started before a stage has
 * connected has no link to travel on.  A fixed pause was not enough on a
 * loaded machine under TSan.
 */
static void
wait_streaming(pt_proc *sink)
{
	int64_t deadline = pt_now_ns() + (int64_t) 60 * 1000000000;

	while (!pt_stderr_has(sink, "]: first record")) {
		if (!pt_running(sink))
			PT_FAIL("the sink exited before any record came");
		if (pt_now_ns() > deadline)
			PT_FAIL("no record reached the sink in 60 s");
		pt_msleep(10);
	}
}

static void
test_sigterm_at_the_source_cancels_every_stage_downstream(void **state)
{
	const char *names[5] = { "src", "map.a", "map.b", "map.c", "sink" };
	pt_proc    *p[5];
	int64_t     t0, t;

	(void) state;
	p[4] = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--verbose", (char *) NULL);
	p[3] = pt_spawn("map.c", "sluice-map", "--in", pt_ipc("c.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.c", (char *) NULL);
	p[2] = pt_spawn("map.b", "sluice-map", "--in", pt_ipc("b.in"),
	    "--out", pt_ipc("c.in"), "--stage", "map.b", (char *) NULL);
	p[1] = pt_spawn("map.a", "sluice-map", "--in", pt_ipc("a.in"),
	    "--out", pt_ipc("b.in"), "--stage", "map.a", (char *) NULL);
	p[0] = pt_spawn("src", "sluice-source", "--out", pt_ipc("a.in"),
	    "--n", "100000000", "--rate", "2000", "--stage", "src",
	    (char *) NULL);
	wait_streaming(p[4]);
	for (int i = 0; i < 5; i++) {
		if (!pt_running(p[i]))
			PT_FAIL("%s exited before the SIGTERM", names[i]);
	}
	t0 = pt_now_ns();
	pt_kill(p[0], SIGTERM);
	for (int i = 0; i < 5; i++) {
		expect_exit_within(p[i], EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
		if (!pt_stderr_has(p[i], "canceled") ||
		    !pt_stderr_has(p[i], "SIGTERM"))
			PT_FAIL("%s: stderr does not name the cause SIGTERM",
			    names[i]);
	}
	fprintf(stdout, "# cancellation propagation from SIGTERM:");
	for (int i = 0; i < 5; i++) {
		if (!pt_cancel_time(p[i], &t))
			PT_FAIL("%s: no cancellation time", names[i]);
		fprintf(stdout, " %s %.3f ms", names[i],
		    (double) (t - t0) / 1e6);
	}
	fprintf(stdout, "; sink exited after %.3f ms\n",
	    (double) (p[4]->exited_ns - t0) / 1e6);
	PT_CHECK(t - t0 < (int64_t) 10 * 1000000000);
}

/* ---- (f) cancellation upstream ------------------------------------------ */

static void
test_sigterm_at_the_sink_cancels_map_and_source(void **state)
{
	pt_proc *src, *map, *sink;

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink-f", "--verbose", (char *) NULL);
	map = pt_spawn("map", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map-f", (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("map.in"),
	    "--n", "100000000", "--rate", "2000", "--stage", "src-f",
	    (char *) NULL);
	wait_streaming(sink);
	PT_CHECK(pt_running(src) && pt_running(map) && pt_running(sink));
	pt_kill(sink, SIGTERM);
	expect_exit_within(sink, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
	expect_exit_within(map, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
	expect_exit_within(src, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
	PT_CHECK(pt_stderr_has(sink, "canceled at"));
	PT_CHECK(pt_stderr_has(sink, "SIGTERM"));
	PT_CHECK(pt_stderr_has(map, "canceled at"));
	PT_CHECK(pt_stderr_has(map, "sink-f"));
	PT_CHECK(pt_stderr_has(src, "canceled at"));
	PT_CHECK(pt_stderr_has(src, "map-f"));
}

/* A stage slowed down with --sleep-us (a slow consumer, for tests and
 * demos) still stops at once on SIGTERM: its sleeps end with its context,
 * not after the rest of its batch of up to 64 (a minute, 12.8 s here). */
static void
test_sigterm_stops_a_sleeping_stage_at_once(void **state)
{
	pt_proc *src, *map, *sink;

	(void) state;
	/* a sink that takes 1 s a record, behind a fast source */
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink-s", "--sleep-us", "1000000", "--verbose",
	    (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("sink.in"),
	    "--n", "100000", "--stage", "src-s", (char *) NULL);
	wait_streaming(sink);
	pt_msleep(1500); /* into its second batch, a full one */
	PT_CHECK(pt_running(sink));
	pt_kill(sink, SIGTERM);
	expect_exit_within(sink, EXIT_CANCELED, 6000);
	expect_exit_within(src, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);

	/* a map that takes 0.2 s a record (it sends a batch once done) */
	sink = pt_spawn("sink2", "sluice-sink", "--in", pt_ipc("sink2.in"),
	    "--stage", "sink-m", "--verbose", (char *) NULL);
	map = pt_spawn("map", "sluice-map", "--in", pt_ipc("map.in"),
	    "--out", pt_ipc("sink2.in"), "--stage", "map-m", "--sleep-us",
	    "200000", (char *) NULL);
	src = pt_spawn("src2", "sluice-source", "--out", pt_ipc("map.in"),
	    "--n", "100000", "--stage", "src-m", (char *) NULL);
	wait_streaming(sink);
	pt_msleep(500); /* into its next batch: a full one, 12.8 s */
	PT_CHECK(pt_running(map));
	pt_kill(map, SIGTERM);
	expect_exit_within(map, EXIT_CANCELED, 5000);
	expect_exit_within(sink, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
	expect_exit_within(src, EXIT_CANCELED, PT_CANCEL_TIMEOUT_MS);
}

/* Waits up to ms for the socket of an ipc:// url to exist: its stage has
 * bound it, so it set up its signal handling before (stage_start). */
static bool
wait_ipc_bound(const char *url, int ms)
{
	const char *path = url + strlen("ipc://");
	struct stat sb;

	for (int waited = 0; waited < ms; waited += 10) {
		if (stat(path, &sb) == 0)
			return (true);
		pt_msleep(10);
	}
	return (false);
}

/* A stage that hangs can be asked what it waits on, as in Go: SIGQUIT
 * prints every goroutine, what it waits on and its function, and exits
 * with 2. */
static void
test_sigquit_dumps_the_goroutines_of_a_stage(void **state)
{
	pt_proc *sink;

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink-q", (char *) NULL);
	/* Signalled before its handling is up, it would die of SIGQUIT;
	 * and its goroutines need a moment to park after the bind. */
	if (!wait_ipc_bound(pt_ipc("sink.in"), PT_CANCEL_TIMEOUT_MS))
		PT_FAIL("sink did not bind %s", pt_ipc("sink.in"));
	pt_msleep(pt_settle_ms());
	PT_CHECK(pt_running(sink));
	pt_kill(sink, SIGQUIT);
	if (!pt_wait(sink, PT_CANCEL_TIMEOUT_MS))
		PT_FAIL("sink did not exit on SIGQUIT");
	/* Under a wrapper (valgrind) the exit code is the wrapper's. */
	if (getenv("SLUICE_STAGE_WRAPPER") == NULL)
		PT_CHECK_EQ(pt_exit_code(sink), 2);
	PT_CHECK(pt_stderr_has(sink, "SIGQUIT: quit ("));
	/* The main goroutine waits on its input; the link's acceptor on
	 * the listener. */
	PT_CHECK(pt_stderr_has(sink, "goroutine 1 [chan receive]: waiting on"));
	PT_CHECK(pt_stderr_has(sink, "[link accept]: waiting on"));
	PT_CHECK(pt_stderr_has(sink, "sluice-sink+0x"));
}

/* ---- (g) fan-out and fan-in --------------------------------------------- */

static void
test_fan_out_and_in_counts_exactly_and_balances_by_credit(void **state)
{
	uint64_t n = pt_scaled(20000), fast, slow;
	pt_proc *src, *m1, *m2, *sink;
	char     outs[600];

	(void) state;
	/* Balance shows only in a stream much longer than the credit
	 * window of a replica (256 messages here): not scaled below. */
	if (n < 10000)
		n = 10000;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--upstreams", "2", "--expect", pt_num(n),
	    (char *) NULL);
	m1 = pt_spawn("map.1", "sluice-map", "--in", pt_ipc("map1.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.1", "--window", "256",
	    (char *) NULL);
	/* 2 ms a message: slower than map.1 even under valgrind. */
	m2 = pt_spawn("map.2", "sluice-map", "--in", pt_ipc("map2.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.2", "--sleep-us",
	    "2000", "--window", "256", (char *) NULL);
	snprintf(outs, sizeof(outs), "%s,%s", pt_ipc("map1.in"),
	    pt_ipc("map2.in"));
	src = pt_spawn("src", "sluice-source", "--out", outs, "--n", pt_num(n),
	    "--stage", "src", (char *) NULL);
	expect_exit(src, EXIT_OK);
	expect_exit(m1, EXIT_OK);
	expect_exit(m2, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
	PT_CHECK(pt_stdout_u64(m1, "processed", &fast));
	PT_CHECK(pt_stdout_u64(m2, "processed", &slow));
	fprintf(stdout, "# fan-out: fast replica %" PRIu64 ", slow replica "
	    "%" PRIu64 " of %" PRIu64 "\n", fast, slow, n);
	PT_CHECK_EQ(fast + slow, n);
	PT_CHECK(slow < fast);
}

/*
 * A replica that dies holding unacked messages: after --reassign-after
 * the source gives them to the replica that is up, so the stream goes on
 * without waiting for the dead one; the replica's restart then finds
 * nothing of the old range.  The sink deduplicates by lineage (what the
 * dead replica had delivered before it died comes again through the other
 * replica) and sees each record exactly once.
 */
static void
test_a_replica_that_stays_away_loses_its_messages_to_the_others(void **s)
{
	uint64_t n = pt_scaled(20000);
	/* A run of about 10 s: the restart below must come before the end
	 * of the stream (also under valgrind, where a stage takes a second
	 * or two to start), or the source would give map.2 up and exit, and
	 * the restarted map.2 would wait for it. */
	uint64_t rate = n / 10 > 0 ? n / 10 : 1;
	pt_proc *src, *m1, *m2, *sink;
	char     outs[600];
	int64_t  deadline;

	(void) s;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--upstreams", "2", "--dedup", "--expect",
	    pt_num(n), "--verbose", (char *) NULL);
	m1 = pt_spawn("map.1", "sluice-map", "--in", pt_ipc("map1.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.1", (char *) NULL);
	/* Slow, and dies (as if SIGKILLed) on its 5th message, which it
	 * holds unacked at that moment, with whatever else it was given. */
	m2 = pt_spawn("map.2", "sluice-map", "--in", pt_ipc("map2.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.2", "--sleep-us",
	    "2000", "--die-after", "5", (char *) NULL);
	snprintf(outs, sizeof(outs), "%s,%s", pt_ipc("map1.in"),
	    pt_ipc("map2.in"));
	src = pt_spawn("src", "sluice-source", "--out", outs, "--n", pt_num(n),
	    "--rate", pt_num(rate), "--stage", "src", "--reassign-after", "300",
	    "--verbose", (char *) NULL);
	if (!pt_wait(m2, PT_TIMEOUT_MS))
		PT_FAIL("map.2 did not die");
	PT_CHECK_EQ(pt_exit_code(m2), 137);
	deadline = pt_now_ns() + (int64_t) PT_TIMEOUT_MS * 1000000;
	while (!pt_stderr_has(src, "unacked messages to the other replicas")) {
		if (pt_now_ns() > deadline || !pt_running(src))
			PT_FAIL("the source never gave map.2's messages away");
		pt_msleep(20);
	}
	if (!pt_running(src))
		PT_FAIL("the stream ended before map.2 could come back");
	/* Restarted (fast this time): it must finish its input and close
	 * its output, or the sink would wait for it. */
	m2 = pt_spawn("map.2b", "sluice-map", "--in", pt_ipc("map2.in"),
	    "--out", pt_ipc("sink.in"), "--stage", "map.2", (char *) NULL);
	expect_exit(src, EXIT_OK);
	expect_exit(m1, EXIT_OK);
	expect_exit(m2, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
	print_counters(src);
	print_counters(sink);
}

/* ---- (h) type mismatch -------------------------------------------------- */

static void
test_type_mismatch_is_refused_naming_both_types(void **state)
{
	pt_proc *src, *sink;

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", pt_ipc("sink.in"),
	    "--stage", "sink", "--type", "sluice.example.Other",
	    (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", pt_ipc("sink.in"),
	    "--n", "10", "--stage", "src", (char *) NULL);
	if (!pt_wait(src, PT_CANCEL_TIMEOUT_MS) ||
	    !pt_wait(sink, PT_CANCEL_TIMEOUT_MS))
		PT_FAIL("a refused stage did not exit");
	PT_CHECK(pt_exit_code(src) != EXIT_OK);
	PT_CHECK(pt_exit_code(sink) != EXIT_OK);
	PT_CHECK(pt_exit_code(src) < 128);  /* no crash */
	PT_CHECK(pt_exit_code(sink) < 128);
	PT_CHECK(pt_stderr_has(src, "sluice.example.Record"));
	PT_CHECK(pt_stderr_has(src, "sluice.example.Other"));
	PT_CHECK(pt_stderr_has(sink, "sluice.example.Record"));
	PT_CHECK(pt_stderr_has(sink, "sluice.example.Other"));
}

/* ---- (i) garbage at a listening input ----------------------------------- */

/* A small deterministic PRNG (xorshift64*). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * UINT64_C(2685821657736338717));
}

/* Connects to the unix socket of ipc URL url, retrying until the
 * listener is up: the fd. */
static int
connect_ipc(const char *url)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t            deadline = pt_now_ns() +
	    (int64_t) PT_TIMEOUT_MS * 1000000;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
	    url + strlen("ipc://"));
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		if (fd < 0)
			PT_FAIL("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
			return (fd);
		close(fd);
		if (pt_now_ns() > deadline)
			PT_FAIL("connect %s: %s", sa.sun_path,
			    strerror(errno));
		pt_msleep(5);
	}
}

/* Writes what it can of buf (the peer may hang up at any point). */
static void
send_some(int fd, const void *buf, size_t len)
{
	(void) send(fd, buf, len, MSG_NOSIGNAL);
}

/* A link frame on the wire: a 32-bit little-endian length, then that
 * many bytes (here: body). */
static size_t
wire_frame(uint8_t *out, uint32_t claim, const uint8_t *body, size_t len)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t) (claim >> (8 * i));
	memcpy(out + 4, body, len);
	return (4 + len);
}

static void
test_garbage_at_a_listening_input_is_survived(void **state)
{
	uint64_t    seed = 0x5eed5eed5eedULL, n = pt_scaled(10000);
	uint8_t     buf[4096], frame[4096 + 16];
	pt_proc    *src, *sink;
	const char *url = pt_ipc("sink.in");

	(void) state;
	sink = pt_spawn("sink", "sluice-sink", "--in", url, "--stage", "sink",
	    "--expect", pt_num(n), "--verbose", (char *) NULL);
	/* Random bytes, then hang up. */
	for (int i = 0; i < 30; i++) {
		int    fd = connect_ipc(url);
		size_t len = 1 + rnd(&seed) % sizeof(buf);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t) rnd(&seed);
		send_some(fd, buf, len);
		close(fd);
	}
	/* Connect and disconnect at once. */
	for (int i = 0; i < 30; i++)
		close(connect_ipc(url));
	/* Well-delimited frames of random bytes: these reach the link's
	 * frame decoder. */
	for (int i = 0; i < 20; i++) {
		int fd = connect_ipc(url);

		for (int k = 0; k < 3; k++) {
			size_t len = rnd(&seed) % 512;

			for (size_t j = 0; j < len; j++)
				buf[j] = (uint8_t) rnd(&seed);
			send_some(fd, frame, wire_frame(frame,
			    (uint32_t) len, buf, len));
		}
		pt_msleep(5);
		close(fd);
	}
	/* A frame claiming 4 GiB; one claiming 1 MiB that never comes. */
	{
		int fd = connect_ipc(url);

		send_some(fd, frame, wire_frame(frame, 0xfffffff0u, buf, 16));
		pt_msleep(20);
		close(fd);
		fd = connect_ipc(url);
		send_some(fd, frame, wire_frame(frame, 1u << 20, buf, 100));
		pt_msleep(20);
		close(fd);
	}
	/* A peer that connects and then says nothing while the real
	 * source comes. */
	{
		int fd = connect_ipc(url);

		pt_msleep(100);
		if (!pt_running(sink))
			PT_FAIL("the sink died of garbage");
		src = pt_spawn("src", "sluice-source", "--out", url, "--n",
		    pt_num(n), "--stage", "src", (char *) NULL);
		pt_msleep(100);
		close(fd);
	}
	expect_exit(src, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
	if (!pt_stderr_has(sink, "bad_frames="))
		PT_FAIL("the sink printed no link counters");
	print_counters(sink);
}

/* ---- (j) transports ----------------------------------------------------- */

/* Runs source -> map -> sink with n records over the two URLs given,
 * extra arguments (NULL-terminated, up to 8) added to every stage. */
static void
run_chain(const char *u1, const char *u2, uint64_t n, const char **extra)
{
	const char *x[8] = { NULL };
	pt_proc    *src, *map, *sink;

	for (int i = 0; i < 8 && extra != NULL && extra[i] != NULL; i++)
		x[i] = extra[i];
	sink = pt_spawn("sink", "sluice-sink", "--in", u2, "--stage", "sink",
	    "--expect", pt_num(n), x[0], x[1], x[2], x[3], x[4], x[5], x[6],
	    x[7], (char *) NULL);
	map = pt_spawn("map", "sluice-map", "--in", u1, "--out", u2,
	    "--stage", "map", x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7],
	    (char *) NULL);
	src = pt_spawn("src", "sluice-source", "--out", u1, "--n", pt_num(n),
	    "--stage", "src", x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7],
	    (char *) NULL);
	expect_exit(src, EXIT_OK);
	expect_exit(map, EXIT_OK);
	expect_exit(sink, EXIT_OK);
	expect_exact(sink, n);
}

static void
test_chain_over_tcp(void **state)
{
	char u1[64], u2[64];

	(void) state;
	snprintf(u1, sizeof(u1), "tcp://127.0.0.1:%d", pt_free_port());
	snprintf(u2, sizeof(u2), "tcp://127.0.0.1:%d", pt_free_port());
	run_chain(u1, u2, pt_scaled(50000), NULL);
}

static void
test_chain_over_tls(void **state)
{
	char        u1[64], u2[64], cert[300], key[300], ca[300];
	const char *d = pt_dir();
	const char *extra[9];
	int         rv;

	(void) state;
	if ((rv = test_make_certs(d)) == 1) {
		/* deploy/install-deps.sh installs it: CI must test TLS */
		if (getenv("CI") != NULL && *getenv("CI") != '\0')
			fail_msg("openssl not found (CI=%s): install it "
			    "(deploy/install-deps.sh)", getenv("CI"));
		fprintf(stdout, "# openssl not found: tls+tcp:// skipped\n");
		skip();
	}
	if (rv != 0) {
		char  path[300];
		char *log;

		snprintf(path, sizeof(path), "%s/openssl.log", d);
		log = pt_slurp(path);
		PT_FAIL("making the test certificates failed:\n%s", log);
	}
	snprintf(cert, sizeof(cert), "%s/srv.pem", d);
	snprintf(key, sizeof(key), "%s/srv.key", d);
	snprintf(ca, sizeof(ca), "%s/ca.pem", d);
	extra[0] = "--tls-cert", extra[1] = cert;
	extra[2] = "--tls-key", extra[3] = key;
	extra[4] = "--tls-ca", extra[5] = ca;
	extra[6] = "--tls-server-name", extra[7] = "localhost";
	extra[8] = NULL;
	snprintf(u1, sizeof(u1), "tls+tcp://127.0.0.1:%d", pt_free_port());
	snprintf(u2, sizeof(u2), "tls+tcp://127.0.0.1:%d", pt_free_port());
	run_chain(u1, u2, pt_scaled(20000), extra);
}

/* SLUICE_TEST_FILTER, as in the other test programs, or PT_FILTER (a
 * cmocka test name pattern, e.g. "*tcp*") runs a subset. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_bad_options_are_refused_with_a_clear_message),
		T(test_an_input_never_deletes_a_file_at_its_ipc_path),
		T(test_example_pipeline_takes_its_build_dir_from_the_caller),
		T(test_chain_of_three_delivers_every_record_once),
		T(test_sluice_cpus_binds_every_thread_of_each_stage),
		T(test_close_delivers_everything_sent_before_it),
		T(test_sigkill_of_the_middle_stage_loses_and_duplicates_nothing),
		T(test_slow_sink_keeps_every_process_memory_bounded),
		T(test_sigterm_at_the_source_cancels_every_stage_downstream),
		T(test_sigterm_at_the_sink_cancels_map_and_source),
		T(test_sigterm_stops_a_sleeping_stage_at_once),
		T(test_sigquit_dumps_the_goroutines_of_a_stage),
		T(test_fan_out_and_in_counts_exactly_and_balances_by_credit),
		T(test_a_replica_that_stays_away_loses_its_messages_to_the_others),
		T(test_type_mismatch_is_refused_naming_both_types),
		T(test_garbage_at_a_listening_input_is_survived),
		T(test_chain_over_tcp),
		T(test_chain_over_tls),
#undef T
	};

	if (getenv("PT_FILTER") != NULL)
		cmocka_set_test_filter(getenv("PT_FILTER"));
	test_filter(); /* SLUICE_TEST_FILTER wins */
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
