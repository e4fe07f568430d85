/*
 * proc.c — process helpers of the pipeline tests (see proc.h).
 *
 * Children are started with fork + execv and PR_SET_PDEATHSIG(SIGKILL),
 * so that even a test program that crashes leaves no stage process
 * behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"
#include "proc.h"

/* The running test's scratch directory and process table. */
static char    pt_dirname[256];
static pt_proc pt_procs[PT_MAX_PROCS];
static int     pt_nprocs;

int64_t
pt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
}

void
pt_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

double
pt_scale(void)
{
	const char *s = getenv("SLUICE_TEST_SCALE");
	double      f;

	if (s == NULL || (f = strtod(s, NULL)) <= 0)
		return (1.0);
	return (f);
}

const char *
pt_num(uint64_t v)
{
	static char bufs[16][24];
	static int  next;
	char       *b = bufs[next++ % 16];

	snprintf(b, sizeof(bufs[0]), "%" PRIu64, v);
	return (b);
}

uint64_t
pt_scaled(uint64_t n)
{
	double v = (double) n * pt_scale();

	return (v < 1 ? 1 : (uint64_t) v);
}

static void (*pt_report)(void); /* the running case's, or NULL */

void
pt_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	/* ipc:// paths must fit in sun_path (108 bytes). */
	snprintf(pt_dirname, sizeof(pt_dirname), "%s/slpipe-XXXXXX", tmp);
	if (strlen(pt_dirname) > 60)
		snprintf(pt_dirname, sizeof(pt_dirname), "/tmp/slpipe-XXXXXX");
	if (mkdtemp(pt_dirname) == NULL)
		fail_msg("mkdtemp %s: %s", pt_dirname, strerror(errno));
	memset(pt_procs, 0, sizeof(pt_procs));
	pt_nprocs = 0;
	pt_report = NULL;
	signal(SIGPIPE, SIG_IGN);
}

/* nftw callback: removes one entry. */
static int
pt_rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void) sb;
	(void) type;
	(void) ftw;
	remove(path);
	return (0);
}

int
pt_teardown(void)
{
	int rv = 0;

	for (int i = 0; i < pt_nprocs; i++) {
		pt_proc *p = &pt_procs[i];

		if (p->pid > 0) {
			if (pt_running(p)) {
				fprintf(stdout, "# teardown: killing %s "
				    "(pid %d)\n", p->name, (int) p->pid);
				rv = -1;
				kill(p->pid, SIGKILL);
				(void) pt_wait(p, 60000);
			}
		}
		for (size_t j = 0; p->argv[j] != NULL; j++)
			free(p->argv[j]);
	}
	pt_nprocs = 0;
	if (pt_dirname[0] != '\0' && getenv("SLUICE_TEST_KEEP") == NULL)
		nftw(pt_dirname, pt_rm, 16, FTW_DEPTH | FTW_PHYS);
	else if (pt_dirname[0] != '\0')
		fprintf(stdout, "# kept %s\n", pt_dirname);
	pt_dirname[0] = '\0';
	return (rv);
}

const char *
pt_dir(void)
{
	return (pt_dirname);
}

const char *
pt_ipc(const char *name)
{
	static char bufs[8][512];
	static int  next;
	char       *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "ipc://%s/%s", pt_dirname, name);
	return (b);
}

int
pt_free_port(void)
{
	int port = test_free_port();

	if (port == 0)
		fail_msg("no free TCP port on the loopback: %s",
		    strerror(errno));
	return (port);
}

/* Starts p (argv and log paths set).  With $SLUICE_STAGE_WRAPPER (words
 * separated by spaces, e.g. "valgrind --leak-check=full
 * --error-exitcode=99"), the program runs under that command. */
static void
pt_start(pt_proc *p)
{
	const char *dir = getenv("SLUICE_STAGE_DIR");
	const char *wrap = getenv("SLUICE_STAGE_WRAPPER");
	char        path[512], self[400], wbuf[1024];
	char       *args[80], *save = NULL, *w;
	size_t      na = 0;
	ssize_t     n;
	pid_t       parent = getpid(), pid;

	if (dir != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, p->argv[0]);
	} else {
		/* Run by hand: <build>/tests/pipeline/test_pipeline. */
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			fail_msg("SLUICE_STAGE_DIR is not set");
		self[n] = '\0';
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(self, '/');

			if (slash != NULL)
				*slash = '\0';
		}
		snprintf(path, sizeof(path), "%s/stages/%s", self,
		    p->argv[0]);
	}
	if (access(path, X_OK) != 0)
		fail_msg("%s: %s", path, strerror(errno));
	if (wrap != NULL && wrap[0] != '\0') {
		snprintf(wbuf, sizeof(wbuf), "%s", wrap);
		for (w = strtok_r(wbuf, " ", &save); w != NULL && na < 30;
		    w = strtok_r(NULL, " ", &save))
			args[na++] = w;
	}
	args[na++] = path;
	for (size_t i = 1; p->argv[i] != NULL && na < 79; i++)
		args[na++] = p->argv[i];
	args[na] = NULL;
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if ((fd = open("/dev/null", O_RDONLY)) >= 0)
			dup2(fd, 0);
		if ((fd = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0)
			dup2(fd, 1);
		if ((fd = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0)
			dup2(fd, 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(args[0], args);
		_exit(127);
	}
	p->pid = pid;
	p->status = 0;
	p->exited_ns = 0;
}

/* A new entry of the process table named name. */
static pt_proc *
pt_new(const char *name)
{
	pt_proc *p;

	if (pt_nprocs == PT_MAX_PROCS)
		fail_msg("too many processes");
	p = &pt_procs[pt_nprocs++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->out, sizeof(p->out), "%s/%s.out", pt_dirname, name);
	snprintf(p->err, sizeof(p->err), "%s/%s.err", pt_dirname, name);
	return (p);
}

pt_proc *
pt_spawn(const char *name, const char *prog, ...)
{
	pt_proc    *p = pt_new(name);
	const char *a;
	size_t      n = 0;
	va_list     ap;

	p->argv[n++] = strdup(prog);
	va_start(ap, prog);
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (n + 1 >= sizeof(p->argv) / sizeof(p->argv[0]))
			fail_msg("too many arguments");
		p->argv[n++] = strdup(a);
	}
	va_end(ap);
	p->argv[n] = NULL;
	pt_start(p);
	return (p);
}

pt_proc *
pt_respawn(pt_proc *old, const char *name)
{
	pt_proc *p;
	size_t   n;

	if (old->pid > 0)
		fail_msg("respawn of %s while it runs", old->name);
	p = pt_new(name);
	for (n = 0; old->argv[n] != NULL; n++)
		p->argv[n] = strdup(old->argv[n]);
	p->argv[n] = NULL;
	pt_start(p);
	return (p);
}

bool
pt_wait(pt_proc *p, int timeout_ms)
{
	int64_t deadline = pt_now_ns() + (int64_t) timeout_ms * 1000000;

	for (;;) {
		if (!pt_running(p))
			return (true);
		if (pt_now_ns() >= deadline)
			return (false);
		pt_msleep(1);
	}
}

bool
pt_running(pt_proc *p)
{
	pid_t r;
	int   st;

	if (p->pid <= 0)
		return (false);
	r = waitpid(p->pid, &st, WNOHANG);
	if (r == 0)
		return (true);
	p->exited_ns = pt_now_ns();
	p->status = r == p->pid ? st : -1;
	p->pid = 0;
	return (false);
}

void
pt_kill(pt_proc *p, int sig)
{
	if (pt_running(p))
		kill(p->pid, sig);
}

int
pt_exit_code(const pt_proc *p)
{
	if (p->pid != 0 || p->status == -1)
		return (-1);
	if (WIFEXITED(p->status))
		return (WEXITSTATUS(p->status));
	if (WIFSIGNALED(p->status))
		return (128 + WTERMSIG(p->status));
	return (-1);
}

char *
pt_slurp(const char *path)
{
	FILE  *f = fopen(path, "r");
	char  *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f != NULL) {
		for (;;) {
			if (cap - len < 4096) {
				cap = cap != 0 ? cap * 2 : 8192;
				if ((buf = realloc(buf, cap)) == NULL)
					fail_msg("out of memory");
			}
			if ((n = fread(buf + len, 1, cap - len - 1, f)) == 0)
				break;
			len += n;
		}
		fclose(f);
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		fail_msg("out of memory");
	buf[len] = '\0';
	return (buf);
}

/* Prints text, naming the function of each goroutine dump line that
 * ends "in FILE+0xOFFSET" (addr2line, if it is there). */
static void
pt_print_symbolized(char *text)
{
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char  file[300], fn[256] = "", cmd[700];
		unsigned long off;
		const char *in = strstr(line, " in ");
		FILE *f;

		fputs(line, stdout);
		if (strncmp(line, "goroutine ", 10) == 0 && in != NULL &&
		    sscanf(in + 4, "%299[^+]+%lx", file, &off) == 2 &&
		    strchr(file, '\'') == NULL) {
			snprintf(cmd, sizeof(cmd), "addr2line -f -e '%s' %#lx "
			    "2>/dev/null", file, off);
			if ((f = popen(cmd, "r")) != NULL) {
				if (fgets(fn, sizeof(fn), f) != NULL) {
					fn[strcspn(fn, "\n")] = '\0';
					fprintf(stdout, " (%s)", fn);
				}
				pclose(f);
			}
		}
		fputc('\n', stdout);
	}
}

void
pt_on_fail(void (*report)(void))
{
	pt_report = report;
}

void
pt_fail_report(void)
{
	if (pt_report != NULL)
		pt_report();
	pt_dump_logs();
	if (pt_report != NULL)
		pt_report();
}

void
pt_dump_logs(void)
{
	/* A stage still running may be stuck: SIGQUIT makes it print what
	 * each goroutine waits on (stages/common) before it exits. */
	for (int i = 0; i < pt_nprocs; i++) {
		pt_proc *p = &pt_procs[i];
		if (p->pid > 0 && pt_running(p)) {
			kill(p->pid, SIGQUIT);
			(void) pt_wait(p, getenv("SLUICE_STAGE_WRAPPER") !=
			    NULL ? 20000 : 3000);
		}
	}
	for (int i = 0; i < pt_nprocs; i++) {
		pt_proc *p = &pt_procs[i];
		char    *o = pt_slurp(p->out), *e = pt_slurp(p->err);

		fprintf(stdout, "# ---- %s (exit %d) stdout:\n%s"
		    "# ---- %s stderr:\n", p->name, pt_exit_code(p), o,
		    p->name);
		pt_print_symbolized(e);
		free(o);
		free(e);
	}
	fflush(stdout);
}

long
pt_rss_kib(pid_t pid)
{
	char  path[64], line[256];
	FILE *f;
	long  kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return (kib);
}

bool
pt_sink_parse(const pt_proc *p, pt_sink_summary *s)
{
	char *o = pt_slurp(p->out), *line;
	bool  ok = false;

	if ((line = strstr(o, "sink: count=")) != NULL)
		ok = sscanf(line, "sink: count=%" SCNu64 " sum=%" SCNu64
		    " dups=%" SCNu64 " distinct=%" SCNu64, &s->count, &s->sum,
		    &s->dups, &s->distinct) == 4;
	free(o);
	return (ok);
}

bool
pt_stdout_u64(const pt_proc *p, const char *key, uint64_t *v)
{
	char  pat[64];
	char *o = pt_slurp(p->out), *at;
	bool  ok = false;

	snprintf(pat, sizeof(pat), " %s=", key);
	if ((at = strstr(o, pat)) != NULL)
		ok = sscanf(at + strlen(pat), "%" SCNu64, v) == 1;
	free(o);
	return (ok);
}

bool
pt_stderr_has(const pt_proc *p, const char *needle)
{
	char *e = pt_slurp(p->err);
	bool  ok = strstr(e, needle) != NULL;

	free(e);
	return (ok);
}

bool
pt_cancel_time(const pt_proc *p, int64_t *t)
{
	char *e = pt_slurp(p->err), *at;
	bool  ok = false;

	if ((at = strstr(e, "]: canceled at ")) != NULL)
		ok = sscanf(at, "]: canceled at %" SCNd64, t) == 1;
	free(e);
	return (ok);
}
