/*
 * source.c — sluice-source: emits N sluice.example.Record messages with
 * ids 1..N on one output port, closes it, and waits until every message
 * was acknowledged downstream.
 *
 *	sluice-source --out URL[,URL...] --n N --stage NAME
 *	    [--source-id ID] [--size BYTES] [--rate MSGS_PER_S] [common...]
 *
 * Several --out URLs are replicas of one downstream stage (fan-out,
 * balanced by credit).  Each record carries time_ns = sl_now() when it
 * was made (for latency), a body sized so that the packed record is
 * --size bytes (default 64), and the lineage (source id, id) stamped by
 * the link (sl_link_opts.source_id, default 1).  --rate paces the sends
 * (messages per second; default: as fast as credit allows).
 *
 * On success prints "source: stage=NAME sent=N" to stdout and exits 0;
 * see stage.h for the other exit codes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/stage.h"

#define PROG "sluice-source"
/* At full speed, the clock is read for one record in this many. */
#define SOURCE_CLOCK_EVERY 16

/* The source's configuration and result. */
struct source {
	stage    st;        /* common options and the stage context */
	char   **urls;      /* --out */
	size_t   nurls;     /* how many */
	uint64_t n;         /* --n: records to emit */
	uint64_t source_id; /* --source-id */
	uint64_t size;      /* --size: packed record size in bytes */
	uint64_t rate;      /* --rate: messages per second; 0: unpaced */
	uint64_t sent;      /* records handed to the link */
	int      code;      /* exit code */
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --out URL[,URL...] --n N --stage NAME "
	    "[options]\n"
	    "  --out URL[,URL...]      downstream replica addresses\n"
	    "  --n N                   records to emit (ids 1..N)\n"
	    "  --source-id ID          lineage source id (default 1)\n"
	    "  --size BYTES            packed record size (default 64)\n"
	    "  --rate MSGS_PER_S       pace the records (default: unpaced)\n"
	    STAGE_COMMON_USAGE);
}

/* The main goroutine: runs the output, sets s->code. */
static void
source_main(void *arg)
{
	struct source *s = arg;
	sl_link_opts   o;
	sl_link       *out = NULL;
	sl_chan       *ch;
	sl_msg         m[STAGE_BATCH];
	int64_t        t0, stamp = 0;
	int            rv;

	s->code = STAGE_EXIT_FAIL;
	stage_link_opts(&s->st, "out", &o);
	o.source_id = s->source_id;
	rv = sl_link_output((const char *const *) s->urls, s->nurls, &o,
	    s->st.ctx, &out);
	if (rv != 0) {
		stage_error(&s->st, "output", rv);
		return;
	}
	ch = sl_link_chan(out);
	t0 = sl_now();
	for (uint64_t i = 1; i <= s->n; ) {
		/* At full speed, records go out STAGE_BATCH at a time; at a
		 * set rate, each as soon as it is due. */
		size_t want = s->rate != 0 ? 1 : STAGE_BATCH, k = 0, sent = 0;

		if (s->rate != 0) {
			int64_t due = t0 + (int64_t) ((double) (i - 1) *
			    1e9 / (double) s->rate);
			int64_t now = sl_now();

			if (due > now &&
			    sl_sleep_ctx(s->st.ctx, due - now) != 0)
				goto out;
		}
		for (; k < want && i <= s->n; k++, i++) {
			/* Record.time_ns: at full speed the clock (as
			 * costly as packing a record) is read for one
			 * record in SOURCE_CLOCK_EVERY, so a record may
			 * carry a time up to that many records early; at a
			 * set rate, for every one. */
			if (s->rate != 0 || (i - 1) % SOURCE_CLOCK_EVERY == 0)
				stamp = sl_now();
			if ((rv = stage_rec_pack(&m[k], i, stamp, s->size,
			    "")) != 0) {
				stage_error(&s->st, "pack", rv);
				sl_msg_done_many(m, k);
				goto out;
			}
		}
		rv = sl_chan_send_many(ch, m, k, &sent, s->st.ctx,
		    SL_FOREVER);
		s->sent += sent;
		if (rv != 0) {
			sl_msg_done_many(m + sent, k - sent);
			if (rv != SL_ECANCELED)
				stage_error(&s->st, "send", rv);
			goto out;
		}
	}
	sl_chan_close(ch);
	if ((rv = sl_link_wait(out, s->st.ctx)) != 0) {
		if (rv != SL_ECANCELED)
			stage_error(&s->st, "wait", rv);
		goto out;
	}
	s->code = STAGE_EXIT_OK;
	printf("source: stage=%s sent=%" PRIu64 "\n", s->st.name, s->sent);
out:
	stage_print_stats(&s->st, "out", out);
	sl_link_free(out);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "n", required_argument, NULL, 'n' },
		{ "source-id", required_argument, NULL, 'i' },
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		STAGE_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct source s = { .source_id = 1, .size = 64 };
	const char   *outs = NULL;
	bool          have_n = false;
	int           c, rv;

	stage_init(&s.st, PROG);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			outs = optarg;
			break;
		case 'n':
			if (stage_parse_u64(PROG, "--n", optarg, 0,
			    UINT64_MAX / 2, &s.n) != 0)
				return (STAGE_EXIT_USAGE);
			have_n = true;
			break;
		case 'i':
			if (stage_parse_u64(PROG, "--source-id", optarg, 1,
			    UINT64_MAX, &s.source_id) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 's':
			if (stage_parse_u64(PROG, "--size", optarg, 1,
			    STAGE_MAX_BODY + 64, &s.size) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'r':
			if (stage_parse_u64(PROG, "--rate", optarg, 1,
			    1000000000, &s.rate) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'h':
			usage(stdout);
			return (STAGE_EXIT_OK);
		case '?':
			usage(stderr);
			return (STAGE_EXIT_USAGE);
		default:
			if (stage_common_option(&s.st, c, optarg) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n",
		    argv[optind]);
		return (STAGE_EXIT_USAGE);
	}
	if (outs == NULL || !have_n) {
		fprintf(stderr, PROG ": %s is required\n",
		    outs == NULL ? "--out URL" : "--n N");
		return (STAGE_EXIT_USAGE);
	}
	if (stage_common_check(&s.st) != 0 ||
	    stage_split_urls(PROG, "--out", outs, &s.urls, &s.nurls) != 0)
		return (STAGE_EXIT_USAGE);
	if (stage_start(&s.st) != 0) {
		stage_free_urls(s.urls, s.nurls);
		return (STAGE_EXIT_FAIL);
	}
	if ((rv = stage_run(&s.st, source_main, &s)) != 0) {
		stage_error(&s.st, "sl_main", rv);
		s.code = STAGE_EXIT_FAIL;
	}
	rv = stage_finish(&s.st, s.code);
	stage_free_urls(s.urls, s.nurls);
	fflush(stdout);
	return (rv);
}
