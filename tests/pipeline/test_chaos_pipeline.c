/*
 * test_chaos_pipeline.c — randomized, seeded disruption of real
 * multi-process pipelines.  Each case starts the stage programs
 * (sluice-source, sluice-map, sluice-sink from $SLUICE_STAGE_DIR) as
 * separate processes joined by links, streams N records paced to last a
 * few seconds, and meanwhile, at moments drawn from a seeded generator,
 * does what docs/link-protocol.md ("Guarantees") says the pipeline
 * survives without losing or duplicating a record at a deduplicating
 * sink:
 *
 *  - SIGKILL of a map (a 1:1 stage, sl_msg_derive) and its restart after
 *    0-300 ms; twice in quick succession (the second kill may hit the
 *    new process before it connected); every map at once; a map killed
 *    while it is stopped; a map killed while its downstream is stopped
 *    (so that it dies holding a window of results not yet acked, whose
 *    inputs its upstream must still hold and resend);
 *  - SIGSTOP of any stage (source, map, sink) for a while, then SIGCONT:
 *    a frozen peer; backpressure holds (RSS stays bounded) and nothing
 *    is lost; once per chain case longer than the peer timeout (5 s), so
 *    that the peers drop the connections and reconnect and resend;
 *  - in fan-out, a replica kept away longer than --reassign-after, so
 *    that its unacked messages go to the other replica.
 *
 * Not done, because nothing promises it: killing the source (its
 * unfinished messages are lost, section 5) or the sink (its dedup state
 * and its tallies live in its memory), and killing a map once the stream
 * may have ended (a restarted map would wait for a source that is gone,
 * so disruptions stop well before the source can have sent its last
 * record: it is paced, so that moment is known).
 *
 * Checked at the end: every process exits with the expected code (0, or
 * 137 for those SIGKILLed), the source sent N, and the sink's summary
 * says ids 1..N exactly once each (count, distinct, dups, sum); the
 * sink's own --expect N agrees.  Every process's RSS stays within a
 * constant bound (not under a stage wrapper).
 *
 * Seeds: each case has its own; SLUICE_CHAOS_SEED=<number> (decimal or
 * 0x...) replaces them all, SLUICE_CHAOS_SEED=random draws new ones.  A
 * failure prints the seed, the replay command, the list of disruptions
 * done, and every process's output.  Sizes scale with SLUICE_TEST_SCALE;
 * under SLUICE_STAGE_WRAPPER (valgrind) the runs are longer and slower.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"
#include "proc.h"

/* How long any process may take to do what a case waits for: only turns
 * a hang into a failure. */
#define CH_TIMEOUT_MS 120000

/* Exit codes of the stage programs (stages/common/stage.h). */
#define EXIT_OK     0
#define EXIT_KILLED (128 + SIGKILL)

/* The most map processes of one topology. */
#define CH_MAX_MAPS 2

/* ---- the running case ---------------------------------------------------- */

/* Roles of the current processes of a case. */
typedef struct chaos {
	const char *test;      /* the case's name, for the replay hint */
	uint64_t    seed;      /* its seed */
	uint64_t    rnd;       /* generator state */
	pt_proc    *src;       /* the source */
	pt_proc    *maps[CH_MAX_MAPS]; /* the current map processes */
	int         nmaps;
	bool        topo_chain; /* maps[i] feeds maps[i + 1] (else: the
	                           maps are replicas feeding the sink) */
	int         gen[CH_MAX_MAPS];  /* restarts of each map */
	pt_proc    *sink;      /* the sink */
	int64_t     t0;        /* pt_now_ns() when the source was started */
	long        max_rss[2 + CH_MAX_MAPS]; /* src, maps..., sink */
	int         nprocs;    /* processes spawned (PT_MAX_PROCS) */
	char        log[8192]; /* the disruptions done */
	size_t      loglen;
	int         kills, stops, events;
} chaos;

static chaos *ch_cur; /* the running case, for the failure path */

/* Sends SIGCONT to every process of the case: a failure must not leave
 * one stopped (pt_dump_logs asks them for a goroutine dump). */
static void
ch_cont_all(chaos *c)
{
	if (c->src != NULL)
		pt_kill(c->src, SIGCONT);
	if (c->sink != NULL)
		pt_kill(c->sink, SIGCONT);
	for (int i = 0; i < c->nmaps; i++)
		if (c->maps[i] != NULL)
			pt_kill(c->maps[i], SIGCONT);
}

/* Prints the seed, how to replay, and the disruptions done. */
static void
ch_replay_hint(void)
{
	chaos *c = ch_cur;

	if (c == NULL)
		return;
	ch_cont_all(c);
	fprintf(stdout, "# %s FAILED with seed 0x%" PRIx64 "; replay with "
	    "SLUICE_CHAOS_SEED=0x%" PRIx64 " SLUICE_TEST_FILTER='%s'\n"
	    "# disruptions done (ms since the source started):\n%s",
	    c->test, c->seed, c->seed, c->test, c->log);
	fflush(stdout);
}

/* The generator (tests/testutil.h). */
static uint64_t
ch_rnd(chaos *c)
{
	return (test_rnd(&c->rnd));
}

/* A uniform number in [lo, hi]. */
static int
ch_between(chaos *c, int lo, int hi)
{
	return (lo + (int) (((ch_rnd(c) >> 32) * (uint64_t) (hi - lo + 1)) >>
	    32));
}

/* Milliseconds since the source was started. */
static long
ch_ms(const chaos *c)
{
	return ((long) ((pt_now_ns() - c->t0) / 1000000));
}

/* Appends a line to the case's list of disruptions. */
static void
ch_log(chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ch_log(chaos *c, const char *fmt, ...)
{
	va_list ap;
	int     n;

	if (c->loglen + 128 >= sizeof(c->log))
		return;
	n = snprintf(c->log + c->loglen, sizeof(c->log) - c->loglen,
	    "#   %6ld ", ch_ms(c));
	if (n > 0)
		c->loglen += (size_t) n;
	va_start(ap, fmt);
	n = vsnprintf(c->log + c->loglen, sizeof(c->log) - c->loglen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->loglen += (size_t) n;
	if (c->loglen >= sizeof(c->log) - 1)
		c->loglen = sizeof(c->log) - 2;
	c->log[c->loglen++] = '\n';
	c->log[c->loglen] = '\0';
}

/* true when the stage programs run under a wrapper (valgrind). */
static bool
ch_wrapped(void)
{
	const char *w = getenv("SLUICE_STAGE_WRAPPER");

	return (w != NULL && w[0] != '\0');
}

/* Samples the RSS of every running process of the case. */
static void
ch_sample_rss(chaos *c)
{
	pt_proc *p[2 + CH_MAX_MAPS];
	int      n = 0;

	p[n++] = c->src;
	for (int i = 0; i < c->nmaps; i++)
		p[n++] = c->maps[i];
	p[n++] = c->sink;
	for (int i = 0; i < n; i++) {
		long kib = p[i]->pid > 0 ? pt_rss_kib(p[i]->pid) : -1;

		if (kib > c->max_rss[i])
			c->max_rss[i] = kib;
	}
}

/* Sleeps ms, sampling RSS every 10 ms. */
static void
ch_sleep(chaos *c, int ms)
{
	int64_t end = pt_now_ns() + (int64_t) ms * 1000000;

	for (;;) {
		int64_t left = end - pt_now_ns();

		ch_sample_rss(c);
		if (left <= 0)
			return;
		pt_msleep(left > 10000000 ? 10 : (int) (left / 1000000) + 1);
	}
}

/* Every process of the case must still run (before a disruption). */
static void
ch_all_running(chaos *c, const char *before)
{
	if (!pt_running(c->src))
		PT_FAIL("the source exited (%d) before %s: the stream ended "
		    "too early or it failed", pt_exit_code(c->src), before);
	for (int i = 0; i < c->nmaps; i++)
		if (!pt_running(c->maps[i]))
			PT_FAIL("%s exited (%d) before %s", c->maps[i]->name,
			    pt_exit_code(c->maps[i]), before);
	if (!pt_running(c->sink))
		PT_FAIL("the sink exited (%d) before %s",
		    pt_exit_code(c->sink), before);
}

/* SIGKILLs map i and waits until it is gone (exit 137). */
static void
ch_kill_map(chaos *c, int i)
{
	pt_proc *p = c->maps[i];

	pt_kill(p, SIGKILL);
	if (!pt_wait(p, CH_TIMEOUT_MS))
		PT_FAIL("SIGKILLed %s did not exit", p->name);
	if (pt_exit_code(p) != EXIT_KILLED)
		PT_FAIL("%s exited with %d before the SIGKILL reached it",
		    p->name, pt_exit_code(p));
	c->kills++;
}

/* Starts map i again (same arguments, same stage name). */
static void
ch_respawn_map(chaos *c, int i)
{
	char name[64];

	if (c->nprocs + 1 >= PT_MAX_PROCS)
		PT_FAIL("too many processes");
	snprintf(name, sizeof(name), "%s.%d", c->maps[i]->argv[6],
	    ++c->gen[i]);
	c->maps[i] = pt_respawn(c->maps[i], name);
	c->nprocs++;
}

/* A stage to freeze: any process of the case. */
static pt_proc *
ch_pick_any(chaos *c)
{
	int k = ch_between(c, 0, c->nmaps + 1);

	if (k == 0)
		return (c->src);
	if (k == c->nmaps + 1)
		return (c->sink);
	return (c->maps[k - 1]);
}

/* The kinds of disruption. */
enum {
	EV_KILL,        /* SIGKILL a map, restart it after 0-300 ms */
	EV_DOUBLE_KILL, /* the same twice in quick succession */
	EV_STOP,        /* SIGSTOP a stage for a while, then SIGCONT */
	EV_STOP_KILL,   /* SIGSTOP a map, then SIGKILL it, restart it */
	EV_KILL_ALL,    /* SIGKILL every map at once, restart each */
	EV_AWAY,        /* SIGKILL a map, restart it after 700-1500 ms */
	EV_LONG_STOP,   /* SIGSTOP a stage longer than the peer timeout */
	EV_KILL_HELD,   /* SIGKILL a map while its downstream is stopped
	                   (it holds a window of unacked results) */
	EV_KINDS
};

static const char *const ev_names[EV_KINDS] = {
	"kill", "double-kill", "stop", "stop-kill", "kill-all", "away",
	"long-stop", "kill-held",
};

/* Does one disruption of kind ev. */
static void
ch_event(chaos *c, int ev)
{
	int      i = ch_between(c, 0, c->nmaps - 1), d, d2;
	pt_proc *p;

	c->events++;
	switch (ev) {
	case EV_KILL:
		d = ch_between(c, 0, 300);
		ch_log(c, "kill %s (pid %d), restart after %d ms",
		    c->maps[i]->name, (int) c->maps[i]->pid, d);
		ch_kill_map(c, i);
		ch_sleep(c, d);
		ch_respawn_map(c, i);
		break;
	case EV_DOUBLE_KILL:
		d = ch_between(c, 0, 100);
		d2 = ch_between(c, 0, 150);
		ch_log(c, "kill %s (pid %d), restart after %d ms, kill again "
		    "%d ms later", c->maps[i]->name, (int) c->maps[i]->pid,
		    d, d2);
		ch_kill_map(c, i);
		ch_sleep(c, d);
		ch_respawn_map(c, i);
		ch_sleep(c, d2);
		ch_kill_map(c, i);
		d = ch_between(c, 0, 300);
		ch_log(c, "  ... and restart it after %d ms", d);
		ch_sleep(c, d);
		ch_respawn_map(c, i);
		break;
	case EV_STOP:
	case EV_LONG_STOP:
		p = ch_pick_any(c);
		/* A long stop outlasts the peer timeout (5 s): the peers
		 * drop the connections and the stage, once continued,
		 * reconnects and resends. */
		d = ev == EV_STOP ? ch_between(c, 20, 1500) :
		    ch_between(c, 5500, 6500);
		ch_log(c, "%s %s (pid %d) for %d ms",
		    ev == EV_STOP ? "stop" : "long-stop", p->name,
		    (int) p->pid, d);
		pt_kill(p, SIGSTOP);
		c->stops++;
		ch_sleep(c, d);
		pt_kill(p, SIGCONT);
		break;
	case EV_STOP_KILL:
		d = ch_between(c, 20, 800);
		d2 = ch_between(c, 0, 300);
		ch_log(c, "stop %s (pid %d) for %d ms, kill it, restart after "
		    "%d ms", c->maps[i]->name, (int) c->maps[i]->pid, d, d2);
		pt_kill(c->maps[i], SIGSTOP);
		c->stops++;
		ch_sleep(c, d);
		ch_kill_map(c, i);
		ch_sleep(c, d2);
		ch_respawn_map(c, i);
		break;
	case EV_KILL_ALL: {
		int order = ch_between(c, 0, 1);

		d = ch_between(c, 0, 300);
		d2 = ch_between(c, 0, 200);
		ch_log(c, "kill every map, restart them %d and %d ms later",
		    d, d + d2);
		for (int k = 0; k < c->nmaps; k++)
			pt_kill(c->maps[k], SIGKILL);
		for (int k = 0; k < c->nmaps; k++)
			ch_kill_map(c, k); /* reaps it */
		ch_sleep(c, d);
		for (int k = 0; k < c->nmaps; k++) {
			ch_respawn_map(c, (k + order) % c->nmaps);
			if (k + 1 < c->nmaps)
				ch_sleep(c, d2);
		}
		break;
	}
	case EV_KILL_HELD:
		/* The map's downstream: the next map of a chain, or the
		 * sink.  Stopped, it acks nothing, so the map holds results
		 * (and their inputs unacked upstream) when it dies. */
		p = c->topo_chain && i + 1 < c->nmaps ? c->maps[i + 1] :
		    c->sink;
		d = ch_between(c, 100, 800);
		d2 = ch_between(c, 0, 300);
		ch_log(c, "stop %s (pid %d); %d ms later kill %s (pid %d), "
		    "restart it after %d ms, continue %s", p->name,
		    (int) p->pid, d, c->maps[i]->name, (int) c->maps[i]->pid,
		    d2, p->name);
		pt_kill(p, SIGSTOP);
		c->stops++;
		ch_sleep(c, d);
		ch_kill_map(c, i);
		ch_sleep(c, d2);
		ch_respawn_map(c, i);
		ch_sleep(c, ch_between(c, 0, 400));
		pt_kill(p, SIGCONT);
		break;
	case EV_AWAY:
		/* Longer than --reassign-after (300 ms in that case): the
		 * source gives the replica's unacked messages to the
		 * other. */
		d = ch_between(c, 700, 1500);
		ch_log(c, "kill %s (pid %d), keep it away %d ms",
		    c->maps[i]->name, (int) c->maps[i]->pid, d);
		ch_kill_map(c, i);
		ch_sleep(c, d);
		ch_respawn_map(c, i);
		break;
	}
}

/* Prints the link counter lines of p's stderr (stages run --verbose). */
static void
ch_print_counters(const pt_proc *p)
{
	char *e = pt_slurp(p->err), *line, *save = NULL;

	for (line = strtok_r(e, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, " msgs=") != NULL)
			fprintf(stdout, "# %s\n", line);
	}
	free(e);
}

/* ---- topologies and cases --------------------------------------------- */

typedef enum {
	TOPO_CHAIN,    /* source -> map -> sink */
	TOPO_FAN,      /* source -> map.1, map.2 -> sink (2 upstreams) */
	TOPO_TWO_MAPS, /* source -> map.a -> map.b -> sink */
} topo;

/* One case's shape. */
typedef struct ch_case {
	const char *test;        /* cmocka name, for the replay hint */
	uint64_t    seed;        /* its own seed */
	topo        topo;
	bool        tcp;         /* tcp:// instead of ipc:// */
	int         reassign_ms; /* source's --reassign-after (0: default) */
	bool        long_stop;   /* one stop longer than the peer timeout */
	bool        away;        /* replicas kept away past reassign_ms */
} ch_case;

/* A URL for link k of the case. */
static const char *
ch_url(const ch_case *cc, const char *name, char *buf, size_t len)
{
	if (cc->tcp)
		snprintf(buf, len, "tcp://127.0.0.1:%d", pt_free_port());
	else
		snprintf(buf, len, "%s", pt_ipc(name));
	return (buf);
}

/* Waits until records reach the sink (spawned with --verbose), so every
 * link is up before the first disruption. */
static void
ch_wait_streaming(chaos *c)
{
	int64_t deadline = pt_now_ns() + (int64_t) CH_TIMEOUT_MS * 1000000;

	while (!pt_stderr_has(c->sink, "]: first record")) {
		if (!pt_running(c->sink))
			PT_FAIL("the sink exited before any record came");
		if (pt_now_ns() > deadline)
			PT_FAIL("no record reached the sink");
		ch_sleep(c, 10);
	}
}

/* Waits for p to exit; samples RSS meanwhile. */
static void
ch_wait_exit(chaos *c, pt_proc *p)
{
	int64_t deadline = pt_now_ns() + (int64_t) CH_TIMEOUT_MS * 1000000;

	while (pt_running(p)) {
		if (pt_now_ns() > deadline)
			PT_FAIL("%s did not exit within %d ms", p->name,
			    CH_TIMEOUT_MS);
		ch_sleep(c, 5);
	}
}

/* Waits for p to exit with code. */
static void
ch_expect_exit(chaos *c, pt_proc *p, int code)
{
	ch_wait_exit(c, p);
	if (pt_exit_code(p) != code)
		PT_FAIL("%s exited with %d, expected %d", p->name,
		    pt_exit_code(p), code);
}

static void
run_case(const ch_case *cc)
{
	chaos      *c = calloc(1, sizeof(*c));
	bool        wrapped = ch_wrapped();
	/* The stream is paced to last dur_ms; disruptions start once
	 * records reach the sink and stop at window_ms: the source cannot
	 * have sent its last record before dur_ms, and a map restarted
	 * before that (plus a restart's start-up) finds its upstream. */
	int         dur_ms = (wrapped ? 20000 : cc->away ? 8000 : 6000) +
	    (cc->long_stop ? 6500 : 0);
	/* With --reassign-after 300, a replica still away when the source
	 * sent its last record is given up (and its restart would wait
	 * for the source forever): a wider margin. */
	int         window_ms = dur_ms * (cc->away ? 45 : 70) / 100;
	uint64_t    n = pt_scaled(20000), rate, v;
	static const char *windows[] = { "128", "512", "2048", "8192" };
	static const char *sizes[] = { "64", "200", "1500" };
	const char *win, *size, *reassign;
	char        u_src[128], u_mid[128], u_sink[128], outs[300];
	int         ev_counts[EV_KINDS] = { 0 };
	bool        long_done = false;
	const char *stage_names[CH_MAX_MAPS];

	if (c == NULL)
		fail_msg("out of memory");
	ch_cur = c;
	pt_on_fail(ch_replay_hint);
	c->test = cc->test;
	c->seed = test_seed(cc->seed);
	c->rnd = c->seed;
	fprintf(stdout, "# %s: seed 0x%" PRIx64 "\n", cc->test, c->seed);
	fflush(stdout);
	if (n < 200)
		n = 200;
	rate = n * 1000 / (uint64_t) dur_ms;
	if (rate == 0)
		rate = 1;
	win = windows[ch_between(c, 0, 3)];
	size = sizes[ch_between(c, 0, 2)];
	reassign = cc->reassign_ms > 0 ? pt_num((uint64_t) cc->reassign_ms) :
	    "5000";

	/* The sink listens first; each stage then listens on its input
	 * and dials its output. */
	ch_url(cc, "sink.in", u_sink, sizeof(u_sink));
	c->sink = pt_spawn("sink", "sluice-sink", "--in", u_sink, "--stage",
	    "sink", "--dedup", "--expect", pt_num(n), "--verbose", "--window",
	    win, "--upstreams", cc->topo == TOPO_FAN ? "2" : "1",
	    (char *) NULL);
	c->nprocs++;
	switch (cc->topo) {
	case TOPO_CHAIN:
		ch_url(cc, "map.in", u_src, sizeof(u_src));
		c->nmaps = 1;
		c->topo_chain = true;
		stage_names[0] = "map";
		/* argv[6] is the stage name (ch_respawn_map). */
		c->maps[0] = pt_spawn("map.0", "sluice-map", "--in", u_src,
		    "--out", u_sink, "--stage", "map", "--window", win,
		    "--verbose", (char *) NULL);
		snprintf(outs, sizeof(outs), "%s", u_src);
		break;
	case TOPO_TWO_MAPS:
		ch_url(cc, "b.in", u_mid, sizeof(u_mid));
		ch_url(cc, "a.in", u_src, sizeof(u_src));
		c->nmaps = 2;
		c->topo_chain = true;
		stage_names[0] = "map.a";
		stage_names[1] = "map.b";
		c->maps[1] = pt_spawn("map.b.0", "sluice-map", "--in", u_mid,
		    "--out", u_sink, "--stage", "map.b", "--window", win,
		    "--verbose", (char *) NULL);
		c->maps[0] = pt_spawn("map.a.0", "sluice-map", "--in", u_src,
		    "--out", u_mid, "--stage", "map.a", "--window", win,
		    "--verbose", (char *) NULL);
		snprintf(outs, sizeof(outs), "%s", u_src);
		break;
	case TOPO_FAN:
		ch_url(cc, "map1.in", u_src, sizeof(u_src));
		ch_url(cc, "map2.in", u_mid, sizeof(u_mid));
		c->nmaps = 2;
		stage_names[0] = "map.1";
		stage_names[1] = "map.2";
		c->maps[0] = pt_spawn("map.1.0", "sluice-map", "--in", u_src,
		    "--out", u_sink, "--stage", "map.1", "--window", win,
		    "--verbose", (char *) NULL);
		c->maps[1] = pt_spawn("map.2.0", "sluice-map", "--in", u_mid,
		    "--out", u_sink, "--stage", "map.2", "--window", win,
		    "--verbose", (char *) NULL);
		snprintf(outs, sizeof(outs), "%s,%s", u_src, u_mid);
		break;
	}
	c->nprocs += c->nmaps;
	c->t0 = pt_now_ns();
	c->src = pt_spawn("src", "sluice-source", "--out", outs, "--n",
	    pt_num(n), "--rate", pt_num(rate), "--stage", "src", "--window", win,
	    "--size", size, "--reassign-after", reassign, "--verbose",
	    (char *) NULL);
	c->nprocs++;
	fprintf(stdout, "# %s: %" PRIu64 " records at %" PRIu64 "/s, "
	    "%s bytes, window %s, reassign-after %s ms, %s\n", cc->test, n,
	    rate, size, win, reassign, cc->tcp ? "tcp" : "ipc");

	ch_wait_streaming(c);
	ch_sleep(c, ch_between(c, 0, 300));
	/* The long stop comes at a random one of the first few
	 * disruptions. */
	int long_at = cc->long_stop ? ch_between(c, 0, 2) : -1;

	for (int k = 0; ch_ms(c) < window_ms; k++) {
		int ev, r;

		if (c->nprocs + 4 >= PT_MAX_PROCS)
			break;
		ch_all_running(c, "a disruption");
		if (k == long_at && !long_done) {
			ev = EV_LONG_STOP;
			long_done = true;
		} else if (cc->away && ch_between(c, 0, 2) == 0) {
			ev = EV_AWAY;
		} else {
			/* Weights: kill 20, kill-held 20, double 15,
			 * stop 25, stop-kill 10, kill-all 10 (two maps;
			 * else stop). */
			r = ch_between(c, 0, 99);
			if (r < 20)
				ev = EV_KILL;
			else if (r < 40)
				ev = EV_KILL_HELD;
			else if (r < 55)
				ev = EV_DOUBLE_KILL;
			else if (r < 80)
				ev = EV_STOP;
			else if (r < 90)
				ev = EV_STOP_KILL;
			else
				ev = c->nmaps > 1 ? EV_KILL_ALL : EV_STOP;
		}
		ev_counts[ev]++;
		ch_event(c, ev);
		/* Some streaming between disruptions. */
		ch_sleep(c, ch_between(c, 50, 500));
	}
	if (cc->long_stop && !long_done) {
		/* The window closed before its turn came: now, anyway (a
		 * stop is harmless at any time). */
		ch_all_running(c, "the long stop");
		ev_counts[EV_LONG_STOP]++;
		ch_event(c, EV_LONG_STOP);
	}
	fprintf(stdout, "# %s: %d disruptions in %ld ms:", cc->test,
	    c->events, ch_ms(c));
	for (int e = 0; e < EV_KINDS; e++)
		if (ev_counts[e] != 0)
			fprintf(stdout, " %s %d", ev_names[e], ev_counts[e]);
	fprintf(stdout, "\n");

	ch_expect_exit(c, c->src, EXIT_OK);
	for (int i = 0; i < c->nmaps; i++)
		ch_expect_exit(c, c->maps[i], EXIT_OK);
	/* The sink's summary first: it says what went wrong, where its
	 * exit code (1 for --expect unmet) only says that something did. */
	ch_wait_exit(c, c->sink);
	fprintf(stdout, "# %s: streamed in %ld ms\n", cc->test, ch_ms(c));
	ch_print_counters(c->src);
	ch_print_counters(c->sink);
	{
		pt_sink_summary s;

		if (!pt_sink_parse(c->sink, &s))
			PT_FAIL("the sink printed no summary");
		PT_CHECK_EQ(s.count, n);
		PT_CHECK_EQ(s.distinct, n);
		PT_CHECK_EQ(s.dups, 0);
		PT_CHECK_EQ(s.sum, n * (n + 1) / 2);
	}
	ch_expect_exit(c, c->sink, EXIT_OK);
	PT_CHECK(pt_stdout_u64(c->src, "sent", &v));
	PT_CHECK_EQ(v, n);
	/* The last incarnation of each map ran to the end. */
	for (int i = 0; i < c->nmaps; i++)
		PT_CHECK(pt_stdout_u64(c->maps[i], "processed", &v));
	if (!wrapped) {
		fprintf(stdout, "# %s: max RSS KiB: src %ld", cc->test,
		    c->max_rss[0]);
		for (int i = 0; i < c->nmaps; i++)
			fprintf(stdout, ", %s %ld", stage_names[i],
			    c->max_rss[1 + i]);
		fprintf(stdout, ", sink %ld (bound %ld)\n",
		    c->max_rss[1 + c->nmaps], PT_RSS_BOUND_KIB);
		for (int i = 0; i < 2 + c->nmaps; i++)
			if (c->max_rss[i] > PT_RSS_BOUND_KIB)
				PT_FAIL("process %d of the case: RSS %ld KiB > "
				    "bound %ld KiB", i, c->max_rss[i],
				    PT_RSS_BOUND_KIB);
	}
	fflush(stdout);
	ch_cur = NULL;
	free(c);
}

static void
test_chaos_chain_ipc(void **state)
{
	static const ch_case cc = {
		.test = "test_chaos_chain_ipc", .seed = 0x5eedc4a1,
		.topo = TOPO_CHAIN, .long_stop = true,
	};

	(void) state;
	run_case(&cc);
}

static void
test_chaos_fan_out_and_in_ipc(void **state)
{
	static const ch_case cc = {
		.test = "test_chaos_fan_out_and_in_ipc", .seed = 0xfa40fa41,
		.topo = TOPO_FAN,
	};

	(void) state;
	run_case(&cc);
}

static void
test_chaos_fan_out_with_reassignment_ipc(void **state)
{
	static const ch_case cc = {
		.test = "test_chaos_fan_out_with_reassignment_ipc",
		.seed = 0x2ea551e6, .topo = TOPO_FAN, .reassign_ms = 300,
		.away = true,
	};

	(void) state;
	run_case(&cc);
}

static void
test_chaos_two_maps_tcp(void **state)
{
	static const ch_case cc = {
		.test = "test_chaos_two_maps_tcp", .seed = 0x7c9a2a9b,
		.topo = TOPO_TWO_MAPS, .tcp = true,
	};

	(void) state;
	run_case(&cc);
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
	if (ch_cur != NULL) {
		/* A failed case: nothing may stay stopped. */
		ch_cont_all(ch_cur);
		free(ch_cur);
		ch_cur = NULL;
	}
	if (pt_teardown() != 0) {
		fprintf(stdout, "# a stage process was still running at "
		    "teardown\n");
		return (-1);
	}
	return (0);
}

/* SLUICE_TEST_FILTER, as in the other test programs, runs a subset. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_chaos_chain_ipc),
		T(test_chaos_fan_out_and_in_ipc),
		T(test_chaos_fan_out_with_reassignment_ipc),
		T(test_chaos_two_maps_tcp),
#undef T
	};

	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
