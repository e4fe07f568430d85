/*
 * sink.c — sluice-sink: receives sluice.example.Record messages until the
 * end of the stream and prints one summary line.
 *
 *	sluice-sink --in URL --stage NAME [--upstreams K] [--dedup]
 *	    [--sleep-us U] [--expect N] [--timing] [common...]
 *
 * The summary, on stdout when the input closed (or the stage was
 * canceled):
 *
 *	sink: count=C sum=S dups=D distinct=X
 *
 * C counts the messages delivered, S sums their ids, D counts deliveries
 * of an id already seen (the sink's own duplicate check, independent of
 * the link's), X the distinct ids.  --timing appends
 * " elapsed_ms=E rate=R p50_us=A p99_us=B max_us=M": E from the earliest
 * Record.time_ns seen to the end of the stream, R = C / E, and the
 * percentiles of sl_now() - Record.time_ns at delivery (the source and
 * the sink read the same monotonic clock; percentiles within 1.6%, from
 * a histogram; the maximum exact).
 *
 * --dedup: the input drops messages whose lineage it has seen already.
 * --upstreams K: the input closes after K upstreams closed.
 * --sleep-us U: sleeps U microseconds per message (a slow consumer).
 * --expect N: exit 1 unless C == N, X == N, D == 0, every id is in 1..N
 * and S == N(N+1)/2 (modulo 2^64, as S).  With C == X == N and no id
 * outside 1..N, the ids are exactly 1..N; S checks that once more.
 *
 * Exits 0 at the end of the stream; see stage.h for the other codes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/stage.h"

#define PROG "sluice-sink"

/*
 * Latencies go into a log-linear histogram: exact below SINK_SUB ns,
 * then SINK_SUB buckets per power of two (within 1.6% of the value).
 * Constant memory and time per message, however long the run.
 */
#define SINK_SUB_BITS 6
#define SINK_SUB      (1u << SINK_SUB_BITS)
#define SINK_BUCKETS  ((64 - SINK_SUB_BITS + 1) * SINK_SUB)
/* In a burst, the clock is read for one message in this many. */
#define SINK_CLOCK_EVERY 16
/* The largest id the duplicate check tracks; larger ones count as bad. */
#define SINK_MAX_ID      (UINT64_C(1) << 34)

/* The sink's configuration and tallies. */
struct sink {
	stage       st;         /* common options and the stage context */
	const char *in_url;     /* --in */
	uint64_t    upstreams;  /* --upstreams */
	bool        dedup;      /* --dedup */
	uint64_t    sleep_us;   /* --sleep-us */
	uint64_t    expect;     /* --expect */
	bool        have_expect; /* --expect given */
	bool        timing;     /* --timing */
	uint64_t    count;      /* messages delivered */
	uint64_t    sum;        /* sum of their ids */
	uint64_t    dups;       /* deliveries of an id seen before */
	uint64_t    distinct;   /* distinct ids */
	uint64_t    bad;        /* undecodable or out-of-range records */
	uint64_t    outside;    /* ids outside 1..expect (--expect) */
	uint64_t   *seen;       /* bitmap of ids seen */
	uint64_t    seen_bits;  /* its size in bits */
	int64_t     first_ns;   /* earliest Record.time_ns (timing) */
	uint64_t   *hist;       /* latency histogram, SINK_BUCKETS (timing) */
	uint64_t    nlat;       /* latencies counted in it */
	uint64_t    lat_max;    /* the largest, exact, in ns */
	int         code;       /* exit code */
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --in URL --stage NAME [options]\n"
	    "  --in URL                address to listen on\n"
	    "  --upstreams K           upstreams feeding the input (default 1)\n"
	    "  --dedup                 drop messages of an already-seen lineage\n"
	    "  --sleep-us U            sleep U microseconds per message\n"
	    "  --expect N              exit 1 unless exactly ids 1..N arrived\n"
	    "  --timing                add rate and latency to the summary\n"
	    STAGE_COMMON_USAGE);
}

/* Marks id seen: true if it was new.  false also for an id out of range
 * or when the bitmap cannot grow (counted as bad). */
static bool
sink_mark(struct sink *s, uint64_t id, bool *ok)
{
	uint64_t bit;

	*ok = true;
	if (id >= SINK_MAX_ID) {
		*ok = false;
		return (false);
	}
	if (id >= s->seen_bits) {
		uint64_t  bits = s->seen_bits != 0 ? s->seen_bits : 1024;
		uint64_t *nv;

		while (bits <= id)
			bits *= 2;
		nv = realloc(s->seen, bits / 8);
		if (nv == NULL) {
			*ok = false;
			return (false);
		}
		memset((char *) nv + s->seen_bits / 8, 0,
		    (bits - s->seen_bits) / 8);
		s->seen = nv;
		s->seen_bits = bits;
	}
	bit = UINT64_C(1) << (id % 64);
	if (s->seen[id / 64] & bit)
		return (false);
	s->seen[id / 64] |= bit;
	return (true);
}

/* The histogram bucket of v ns. */
static unsigned
sink_bucket(uint64_t v)
{
	unsigned e;

	if (v < SINK_SUB)
		return ((unsigned) v);
	e = 63 - (unsigned) __builtin_clzll(v); /* >= SINK_SUB_BITS */
	return ((e - SINK_SUB_BITS + 1) * SINK_SUB +
	    (unsigned) ((v >> (e - SINK_SUB_BITS)) & (SINK_SUB - 1)));
}

/* The middle of bucket b, in ns. */
static double
sink_bucket_mid(unsigned b)
{
	unsigned e, sub;

	if (b < SINK_SUB)
		return (b);
	e = b / SINK_SUB + SINK_SUB_BITS - 1;
	sub = b % SINK_SUB;
	return ((double) ((uint64_t) (SINK_SUB + sub) << (e - SINK_SUB_BITS)) +
	    (double) ((uint64_t) 1 << (e - SINK_SUB_BITS)) / 2);
}

/* Accounts one delivered record. */
static void
sink_take(struct sink *s, const stage_rec *r, int64_t now)
{
	bool ok;

	/* Tells a watcher (a test, a person) that the pipeline streams. */
	if (s->count++ == 0 && s->st.verbose)
		fprintf(stderr, PROG "[%s]: first record\n", s->st.name);
	s->sum += r->id;
	if (s->have_expect && (r->id == 0 || r->id > s->expect))
		s->outside++;
	if (sink_mark(s, r->id, &ok))
		s->distinct++;
	else if (ok)
		s->dups++;
	else
		s->bad++;
	if (!s->timing)
		return;
	if (s->first_ns == 0 || r->time_ns < s->first_ns)
		s->first_ns = r->time_ns;
	/* A reading shared within a burst (sink_main) can precede a
	 * stamp by a hair: count that as no latency. */
	uint64_t lat = now > r->time_ns ? (uint64_t) (now - r->time_ns) : 0;

	s->hist[sink_bucket(lat)]++;
	s->nlat++;
	if (lat > s->lat_max)
		s->lat_max = lat;
}

/* The p-th percentile (0..100) of the latencies, in microseconds: the
 * middle of its bucket (the largest is exact). */
static double
sink_pct(const struct sink *s, double p)
{
	uint64_t rank, seen = 0;

	if (s->nlat == 0)
		return (0);
	if (p >= 100)
		return ((double) s->lat_max / 1e3);
	rank = (uint64_t) (p / 100.0 * (double) (s->nlat - 1) + 0.5);
	for (unsigned b = 0; b < SINK_BUCKETS; b++) {
		seen += s->hist[b];
		if (seen > rank) {
			double v = sink_bucket_mid(b);
			if (v > (double) s->lat_max)
				v = (double) s->lat_max;
			return (v / 1e3);
		}
	}
	return ((double) s->lat_max / 1e3);
}

/* Prints the summary line. */
static void
sink_report(struct sink *s, int64_t end)
{
	printf("sink: count=%" PRIu64 " sum=%" PRIu64 " dups=%" PRIu64
	    " distinct=%" PRIu64, s->count, s->sum, s->dups, s->distinct);
	if (s->timing) {
		double ms = s->first_ns != 0 ?
		    (double) (end - s->first_ns) / 1e6 : 0;

		printf(" elapsed_ms=%.1f rate=%.0f p50_us=%.1f p99_us=%.1f"
		    " max_us=%.1f", ms, ms > 0 ? (double) s->count / ms * 1e3
		    : 0, sink_pct(s, 50), sink_pct(s, 99), sink_pct(s, 100));
	}
	printf("\n");
	fflush(stdout);
}

/* The main goroutine: runs the input, sets s->code. */
static void
sink_main(void *arg)
{
	struct sink *s = arg;
	sl_link_opts o;
	sl_link     *in = NULL;
	sl_chan     *ch;
	sl_msg       msg[STAGE_BATCH];
	size_t       n;
	stage_rec    r;
	int64_t      now = 0;   /* the last clock reading (timing) */
	unsigned     reuse = 0; /* readings of now still to reuse */
	bool         burst = false; /* more were waiting behind the last */
	int          rv;

	s->code = STAGE_EXIT_FAIL;
	stage_link_opts(&s->st, "in", &o);
	o.upstreams = (int) s->upstreams;
	o.dedup_lineage = s->dedup;
	if ((rv = sl_link_input(s->in_url, &o, s->st.ctx, &in)) != 0) {
		stage_error(&s->st, "input", rv);
		return;
	}
	ch = sl_link_chan(in);
	while ((rv = sl_chan_recv_many(ch, msg, STAGE_BATCH, &n, s->st.ctx,
	    SL_FOREVER)) == 0) {
		for (size_t i = 0; i < n; i++) {
			/*
			 * The delivery time of each message, for its
			 * latency.  The clock costs as much as the rest of
			 * a delivery, so within a burst it is read every
			 * SINK_CLOCK_EVERY messages: a message that was
			 * already waiting when the clock was last read
			 * arrived before that reading, which understates
			 * its latency by at most the handling of the
			 * messages between (a few microseconds).  A message
			 * that found nothing waiting behind the previous
			 * one always reads the clock.
			 */
			if (s->timing) {
				if (reuse > 0 && burst) {
					reuse--;
				} else {
					now = sl_now();
					reuse = SINK_CLOCK_EVERY - 1;
				}
				burst = i + 1 < n || sl_chan_len(ch) > 0;
			}

			/* Stopped (SIGTERM): no more sleeps, but the batch
			 * is still counted, as it is acknowledged. */
			if (s->sleep_us != 0 && sl_sleep_ctx(s->st.ctx,
			    (int64_t) s->sleep_us * SL_MICROSECOND) != 0)
				s->sleep_us = 0;
			if (stage_rec_unpack(msg[i].data, msg[i].len,
			    &r) != 0) {
				if (s->bad++ == 0)
					stage_error(&s->st,
					    "undecodable payload", SL_EPROTO);
			} else {
				sink_take(s, &r, now);
			}
		}
		sl_msg_done_many(msg, n);
	}
	sink_report(s, sl_now());
	if (rv != SL_ECLOSED) {
		if (rv != SL_ECANCELED)
			stage_error(&s->st, "receive", rv);
		goto out;
	}
	if (s->bad != 0)
		fprintf(stderr, PROG "[%s]: %" PRIu64 " bad records\n",
		    s->st.name, s->bad);
	if (s->have_expect && (s->count != s->expect ||
	    s->distinct != s->expect || s->dups != 0 || s->outside != 0 ||
	    s->sum != stage_id_sum(s->expect))) {
		fprintf(stderr, PROG "[%s]: expected ids 1..%" PRIu64
		    " once each; got %" PRIu64 " records, %" PRIu64
		    " distinct, %" PRIu64 " repeated, %" PRIu64
		    " outside 1..%" PRIu64 "\n", s->st.name, s->expect,
		    s->count, s->distinct, s->dups, s->outside, s->expect);
		goto out;
	}
	s->code = STAGE_EXIT_OK;
out:
	stage_print_stats(&s->st, "in", in);
	sl_link_free(in);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "upstreams", required_argument, NULL, 'u' },
		{ "dedup", no_argument, NULL, 'D' },
		{ "sleep-us", required_argument, NULL, 's' },
		{ "expect", required_argument, NULL, 'e' },
		{ "timing", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		STAGE_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct sink s = { .upstreams = 1 };
	int         c, rv;

	stage_init(&s.st, PROG);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (optarg[0] == '\0') {
				fprintf(stderr, PROG ": --in: empty URL\n");
				return (STAGE_EXIT_USAGE);
			}
			s.in_url = optarg;
			break;
		case 'u':
			if (stage_parse_u64(PROG, "--upstreams", optarg, 1,
			    1024, &s.upstreams) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'D':
			s.dedup = true;
			break;
		case 's':
			if (stage_parse_u64(PROG, "--sleep-us", optarg, 0,
			    60000000, &s.sleep_us) != 0)
				return (STAGE_EXIT_USAGE);
			break;
		case 'e':
			if (stage_parse_u64(PROG, "--expect", optarg, 0,
			    SINK_MAX_ID - 1, &s.expect) != 0)
				return (STAGE_EXIT_USAGE);
			s.have_expect = true;
			break;
		case 't':
			s.timing = true;
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
	if (s.in_url == NULL) {
		fprintf(stderr, PROG ": --in URL is required\n");
		return (STAGE_EXIT_USAGE);
	}
	if (stage_common_check(&s.st) != 0)
		return (STAGE_EXIT_USAGE);
	if (s.timing && (s.hist = calloc(SINK_BUCKETS,
	    sizeof(*s.hist))) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return (STAGE_EXIT_FAIL);
	}
	if (stage_start(&s.st) != 0) {
		free(s.hist);
		return (STAGE_EXIT_FAIL);
	}
	if ((rv = stage_run(&s.st, sink_main, &s)) != 0) {
		stage_error(&s.st, "sl_main", rv);
		s.code = STAGE_EXIT_FAIL;
	}
	rv = stage_finish(&s.st, s.code);
	free(s.seen);
	free(s.hist);
	fflush(stdout);
	return (rv);
}
