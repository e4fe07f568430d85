/*
 * map.c — sluice-map: a 1:1 stage.  Receives sluice.example.Record
 * messages on its input port, sets each record's note to "mapped" (id,
 * time and body unchanged) and sends the result on its output port.
 *
 *	sluice-map --in URL --out URL[,URL...] --stage NAME
 *	    [--upstreams K] [--sleep-us U] [--die-after N] [common...]
 *
 * Each result is made with sl_msg_derive: it carries its input's lineage,
 * and the input is acknowledged upstream only once the result was
 * acknowledged downstream, so a map that dies loses nothing.
 * --upstreams K: the input closes after K upstreams closed (fan-in).
 * --sleep-us U: sleeps U microseconds per message (a slow replica).
 * --die-after N: test hook, the process _exits with status 137 (as if
 * SIGKILLed) right after receiving its Nth message.
 *
 * At the end of the stream prints "map: stage=NAME processed=N" (N:
 * messages sent on) to stdout and exits 0; see stage.h for the others.
 * An undecodable payload is reported, acknowledged and dropped.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/stage.h"

#define PROG "sluice-map"

/* The map's configuration and result. */
struct map {
	stage       st;        /* common options and the stage context */
	const char *in_url;    /* --in */
	char      **urls;      /* --out */
	size_t      nurls;     /* how many */
	uint64_t    upstreams; /* --upstreams */
	uint64_t    sleep_us;  /* --sleep-us */
	uint64_t    die_after; /* --die-after; 0: never */
	uint64_t    processed; /* results sent on */
	uint64_t    bad;       /* undecodable payloads dropped */
	int         code;      /* exit code */
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --in URL --out URL[,URL...] --stage NAME "
	    "[options]\n"
	    "  --in URL                address to listen on\n"
	    "  --out URL[,URL...]      downstream replica addresses\n"
	    "  --upstreams K           upstreams feeding the input (default 1)\n"
	    "  --sleep-us U            sleep U microseconds per message\n"
	    "  --die-after N           _exit(137) after the Nth message (test)\n"
	    STAGE_COMMON_USAGE);
}

/* The main goroutine: runs the input and the output, sets m->code. */
static void
map_main(void *arg)
{
	struct map  *m = arg;
	sl_link_opts o;
	sl_link     *in = NULL, *out = NULL;
	sl_chan     *inch, *outch;
	sl_msg       msg[STAGE_BATCH], res[STAGE_BATCH];
	size_t       n;
	uint64_t     got = 0;
	int          rv;

	m->code = STAGE_EXIT_FAIL;
	stage_link_opts(&m->st, "out", &o);
	rv = sl_link_output((const char *const *) m->urls, m->nurls, &o,
	    m->st.ctx, &out);
	if (rv != 0) {
		stage_error(&m->st, "output", rv);
		return;
	}
	stage_link_opts(&m->st, "in", &o);
	o.upstreams = (int) m->upstreams;
	if ((rv = sl_link_input(m->in_url, &o, m->st.ctx, &in)) != 0) {
		stage_error(&m->st, "input", rv);
		goto out;
	}
	inch = sl_link_chan(in);
	outch = sl_link_chan(out);
	while ((rv = sl_chan_recv_many(inch, msg, STAGE_BATCH, &n, m->st.ctx,
	    SL_FOREVER)) == 0) {
		size_t nres = 0, sent = 0;

		for (size_t i = 0; i < n; i++) {
			if (m->die_after != 0 && ++got >= m->die_after) {
				fflush(stdout);
				_exit(137);
			}
			/* Stopped (SIGTERM): no more sleeps; the send
			 * below then fails and ends the loop. */
			if (m->sleep_us != 0 && sl_sleep_ctx(m->st.ctx,
			    (int64_t) m->sleep_us * SL_MICROSECOND) != 0)
				m->sleep_us = 0;
			rv = stage_rec_remap(msg[i].data, msg[i].len,
			    "mapped", &res[nres]);
			if (rv == SL_EPROTO) {
				if (m->bad++ == 0)
					stage_error(&m->st,
					    "undecodable payload", rv);
				sl_msg_done(&msg[i]);
				continue;
			}
			if (rv != 0) {
				stage_error(&m->st, "remap", rv);
				/* Not handled, not sent: upstream resends
				 * them to this stage's successor. */
				for (size_t k = i; k < n; k++)
					sl_msg_drop(&msg[k]);
				for (size_t k = 0; k < nres; k++)
					sl_msg_drop(&res[k]);
				sl_ctx_cancel_cause(m->st.ctx, rv,
				    "map: out of memory");
				goto out;
			}
			sl_msg_derive(&res[nres++], &msg[i]);
		}
		rv = sl_chan_send_many(outch, res, nres, &sent, m->st.ctx,
		    SL_FOREVER);
		m->processed += sent;
		if (rv != 0) {
			/* Stopped: the results not sent must not have their
			 * inputs acknowledged (sl_msg_done would), or upstream
			 * counts them delivered. */
			for (size_t k = sent; k < nres; k++)
				sl_msg_drop(&res[k]);
			if (rv != SL_ECANCELED)
				stage_error(&m->st, "send", rv);
			goto out;
		}
	}
	if (rv != SL_ECLOSED) {
		if (rv != SL_ECANCELED)
			stage_error(&m->st, "receive", rv);
		goto out;
	}
	sl_chan_close(outch);
	if ((rv = sl_link_wait(out, m->st.ctx)) != 0) {
		if (rv != SL_ECANCELED)
			stage_error(&m->st, "wait", rv);
		goto out;
	}
	m->code = STAGE_EXIT_OK;
out:
	printf("map: stage=%s processed=%" PRIu64 "\n", m->st.name,
	    m->processed);
	stage_print_stats(&m->st, "in", in);
	stage_print_stats(&m->st, "out", out);
	sl_link_free(out);
	sl_link_free(in);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "upstreams", required_argument, NULL, 'u' },
		{ "sleep-us", required_argument, NULL, 's' },
		{ "die-after", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		STAGE_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct map  m = { .upstreams = 1 };
	const char *outs = NULL;
	int         c, rv;

	stage_init(&m.st, PROG);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (optarg[0] == '\0') {
				fprintf(stderr, PROG ": --in: empty URL\n");
				return (STAGE_EXIT_USAGE);
			}
			m.in_url = optarg;
			break;
		case 'o':
			outs = optarg;
			break;
		case 'u':
			if (stage_parse_u64(PROG, "--upstreams", optarg, 1,
			    1024, &m.upstreams) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 's':
			if (stage_parse_u64(PROG, "--sleep-us", optarg, 0,
			    60000000, &m.sleep_us) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'd':
			if (stage_parse_u64(PROG, "--die-after", optarg, 1,
			    UINT64_MAX, &m.die_after) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'h':
			usage(stdout);
			return (STAGE_EXIT_OK);
		case '?':
			usage(stderr);
			return (STAGE_EXIT_USAGE);
		default:
			if (stage_common_option(&m.st, c, optarg) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n",
		    argv[optind]);
		return (STAGE_EXIT_USAGE);
	}
	if (m.in_url == NULL || outs == NULL) {
		fprintf(stderr, PROG ": %s is required\n",
		    m.in_url == NULL ? "--in URL" : "--out URL");
		return (STAGE_EXIT_USAGE);
	}
	if (stage_common_check(&m.st) != 0 ||
	    stage_split_urls(PROG, "--out", outs, &m.urls, &m.nurls) != 0)
		return (STAGE_EXIT_USAGE);
	/* Its own results would come back to it, round and round. */
	for (size_t i = 0; i < m.nurls; i++) {
		if (strcmp(m.urls[i], m.in_url) == 0) {
			fprintf(stderr, PROG ": --out: URL '%s' is also its "
			    "--in\n", m.in_url);
			stage_free_urls(m.urls, m.nurls);
			return (STAGE_EXIT_USAGE);
		}
	}
	if (stage_start(&m.st) != 0) {
		stage_free_urls(m.urls, m.nurls);
		return (STAGE_EXIT_FAIL);
	}
	if ((rv = stage_run(&m.st, map_main, &m)) != 0) {
		stage_error(&m.st, "sl_main", rv);
		m.code = STAGE_EXIT_FAIL;
	}
	rv = stage_finish(&m.st, m.code);
	stage_free_urls(m.urls, m.nurls);
	fflush(stdout);
	return (rv);
}
