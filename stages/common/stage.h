/*
 * stage.h — what the stage programs (sluice-source, sluice-map,
 * sluice-sink) share: option parsing helpers, the options every stage
 * takes, signal handling, the cancellation report, and the test payload
 * (sluice.example.Record) packed into link messages.
 *
 * Every stage program runs its work as sl_main's main goroutine under one
 * stage context.  SIGTERM and SIGINT cancel that context (with the cause
 * "SIGTERM" / "SIGINT"), and the links carry the cancellation to the
 * neighbouring stages.
 *
 * Exit codes of every stage program:
 *	0  STAGE_EXIT_OK        the stream ended and everything was finished
 *	1  STAGE_EXIT_FAIL      a runtime error (or sluice-sink --expect unmet)
 *	2  STAGE_EXIT_USAGE     bad command line (one line on stderr says why)
 *	3  STAGE_EXIT_CANCELED  the stage's context was canceled; stderr says
 *	                        "PROG[STAGE]: canceled at T: CAUSE" where T is
 *	                        the sl_now() of the cancellation (monotonic ns)
 */
#ifndef SLUICE_STAGE_H
#define SLUICE_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/link.h"
#include "sluice/sluice.h"

enum {
	STAGE_EXIT_OK = 0,
	STAGE_EXIT_FAIL = 1,
	STAGE_EXIT_USAGE = 2,
	STAGE_EXIT_CANCELED = 3,
};

/* The payload type every stage speaks unless --type says otherwise. */
#define STAGE_RECORD_TYPE "sluice.example.Record"

/* Messages a stage moves through a channel at a time
 * (sl_chan_recv_many / sl_chan_send_many): a channel operation per
 * message would cost about as much as the stage's own work. */
#define STAGE_BATCH 64

/* Options common to all stages, and the stage's context. */
typedef struct stage {
	const char   *prog;       /* program name for messages: "sluice-map" */
	const char   *name;       /* --stage: this stage's name (required) */
	const char   *type;       /* --type: payload type name announced */
	const char   *tls_cert;   /* --tls-cert: PEM certificate (listeners) */
	const char   *tls_key;    /* --tls-key: PEM private key (listeners) */
	const char   *tls_ca;     /* --tls-ca: PEM CA to verify peers */
	const char   *tls_server; /* --tls-server-name: expected peer name */
	bool          verbose;    /* --verbose: link counters at exit */
	uint64_t      reassign_ms; /* --reassign-after; 0: the default */
	uint64_t      window;     /* --window; 0: the default */
	sl_ctx       *ctx;        /* the stage context (signals cancel it) */
	sl_afterfunc *cancel_af;  /* records when ctx was canceled */
} stage;

/*
 * The long options every stage accepts, with getopt_long's values
 * STAGE_OPT_BASE + i.  stage_common_option handles one of them; it
 * returns 0, or -1 after printing why the argument is bad.
 */
#define STAGE_OPT_BASE 0x1000
#define STAGE_COMMON_LONGOPTS                                                \
	{ "stage", required_argument, NULL, STAGE_OPT_BASE + 0 },            \
	{ "type", required_argument, NULL, STAGE_OPT_BASE + 1 },             \
	{ "tls-cert", required_argument, NULL, STAGE_OPT_BASE + 2 },         \
	{ "tls-key", required_argument, NULL, STAGE_OPT_BASE + 3 },          \
	{ "tls-ca", required_argument, NULL, STAGE_OPT_BASE + 4 },           \
	{ "tls-server-name", required_argument, NULL, STAGE_OPT_BASE + 5 },  \
	{ "verbose", no_argument, NULL, STAGE_OPT_BASE + 6 },                \
	{ "reassign-after", required_argument, NULL, STAGE_OPT_BASE + 7 },  \
	{ "window", required_argument, NULL, STAGE_OPT_BASE + 8 }
#define STAGE_COMMON_USAGE                                                   \
	"  --stage NAME            this stage's name (required; replicas\n"    \
	"                          need distinct ones: an input takes a\n"    \
	"                          second sender of one name for the first\n" \
	"                          restarted)\n"                               \
	"  --type NAME             payload type (default " STAGE_RECORD_TYPE  \
	")\n"                                                                  \
	"  --tls-cert/--tls-key F  certificate and key of tls+tcp listeners\n" \
	"  --tls-ca F              CA that tls+tcp dialers verify against\n"  \
	"  --tls-server-name N     name tls+tcp dialers expect\n"             \
	"  --verbose               print link counters to stderr at exit (a\n" \
	"                          sink also says when its first record came)\n" \
	"  --reassign-after MS     fan-out: a replica away this long loses its\n" \
	"                          unacked messages to the others (default\n" \
	"                          5000)\n"                                   \
	"  --window N              credit window of each link, in messages\n" \
	"                          (default 8192)\n"                           \
	"environment:\n"                                                      \
	"  SLUICE_PROCS=N          worker threads, 1-256 (default: the CPUs\n" \
	"                          the process may use)\n"                    \
	"  SLUICE_STACK_SIZE=N     bytes per goroutine stack, or with k or\n" \
	"                          m (default 64k)\n"                         \
	"  SLUICE_CPUS=LIST        run on these CPUs, as taskset -c takes\n"  \
	"                          them (0, 0-3,6); a low-rate pipeline\n"    \
	"                          answers fastest with all stages on one\n"  \
	"                          CPU\n"                                     \
	"  SLUICE_STALL_MS=N       name a goroutine that holds its worker\n"  \
	"                          N ms without a switch (default 10000;\n"  \
	"                          0: never)\n"

/* Sets defaults (prog, type); everything else zero. */
void stage_init(stage *st, const char *prog);

/* Handles common option c (a STAGE_OPT_BASE + i value) with argument
 * arg: 0, or -1 with a message on stderr. */
int stage_common_option(stage *st, int c, const char *arg);

/* Checks that the required common options were given, and that a link
 * can carry the --stage and --type names (sl_link_opts_check: at most
 * 256 bytes of UTF-8, the type a protobuf full name): 0, or -1 with a
 * message on stderr. */
int stage_common_check(const stage *st);

/*
 * Parses arg as a decimal unsigned integer in [min, max] for option opt.
 * 0 and *out, or -1 after printing "PROG: OPT: not a positive integer:
 * 'ARG'" (min >= 1), "... not a non-negative integer: ..." (min 0), or
 * "... out of range [MIN, MAX]: ..." to stderr.
 */
int stage_parse_u64(const char *prog, const char *opt, const char *arg,
    uint64_t min, uint64_t max, uint64_t *out);

/*
 * Splits a comma-separated list of URLs into a malloc'd array of malloc'd
 * strings (free with stage_free_urls).  Empty elements, and one given
 * twice, are refused.  0, or -1 after printing "PROG: OPT: ..." to
 * stderr.
 */
int stage_split_urls(const char *prog, const char *opt, const char *list,
    char ***urls, size_t *n);
void stage_free_urls(char **urls, size_t n);

/* Link options for port (e.g. "in", "out") from the common options. */
void stage_link_opts(const stage *st, const char *port, sl_link_opts *o);

/*
 * Creates the stage context, blocks SIGTERM, SIGINT (and the internal
 * stop signal SIGUSR2) in the calling thread, so in every thread it
 * starts later, and starts a thread that waits for them with sigwait and
 * cancels the context with the signal's name as cause.  Also arranges to
 * record the sl_now() of the context's cancellation (for the report of
 * stage_finish) and ignores SIGPIPE.  Call it in main before sl_main and
 * before any other thread starts.  0, or -1 after printing why.
 */
int stage_start(stage *st);

/*
 * Runs fn(arg) as sl_main's main goroutine: sl_main's result.  Signals
 * cancel the stage context only while fn runs (a signal before is applied
 * when fn starts, one after when stage_finish runs), so that the signal
 * thread never starts a goroutine while the scheduler starts or stops.
 */
int stage_run(stage *st, sl_fn fn, void *arg);

/*
 * Stops the signal thread, prints the cancellation report if the stage
 * context was canceled, releases the context, and returns the exit code:
 * STAGE_EXIT_CANCELED if the context was canceled, else code.
 */
int stage_finish(stage *st, int code);

/* Prints "PROG[STAGE]: WHAT: ERROR-TEXT (SL_E...)" to stderr. */
void stage_error(const stage *st, const char *what, int err);

/* With --verbose, prints l's counters to stderr under the label port. */
void stage_print_stats(const stage *st, const char *port, sl_link *l);

/* ---- the payload ------------------------------------------------------ */

/* The largest record body stage_rec_pack makes. */
#define STAGE_MAX_BODY 65536

/* A decoded Record: the fields the stages look at. */
typedef struct stage_rec {
	uint64_t id;      /* Record.id */
	int64_t  time_ns; /* Record.time_ns: sl_now() at the source */
	size_t   body;    /* length of Record.body */
} stage_rec;

/*
 * Packs Record{id, time_ns, body of some bytes, note} into m (a payload
 * from sl_msg_alloc, no lineage; free it with sl_msg_done).  The body is sized so that
 * the packed record is size bytes if that is possible (else one byte
 * more, or as small as possible; the body is at most STAGE_MAX_BODY).
 * 0 or SL_ENOMEM.
 */
int stage_rec_pack(sl_msg *m, uint64_t id, int64_t time_ns, size_t size,
    const char *note);

/* 1 + 2 + ... + n modulo 2^64, as a running uint64_t sum of the ids 1..n
 * wraps (n(n+1)/2 computed as written wraps before the halving). */
uint64_t stage_id_sum(uint64_t n);

/* Decodes the Record in data[0..len): 0 and *r, or SL_EPROTO. */
int stage_rec_unpack(const void *data, size_t len, stage_rec *r);

/*
 * The map transform: decodes data[0..len), sets note to note, and packs
 * it into *out (a payload from sl_msg_alloc, no lineage; out->data is
 * NULL on failure).  0, SL_EPROTO (undecodable) or SL_ENOMEM.
 */
int stage_rec_remap(const void *data, size_t len, const char *note,
    sl_msg *out);

#endif /* SLUICE_STAGE_H */
