/*
 * stage.c — the parts every stage program shares (see stage.h): option
 * helpers, the signal thread that cancels the stage context, the exit
 * report, and packing of the test payload sluice.example.Record.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/example.pb-c.h"
#include "sluice/pb.h"

#include "stage.h"

/* The one signal thread of the process, and when the context was
 * canceled (0: not yet seen). */
static pthread_t        stage_sigthread;
static bool             stage_sigthread_on;
static sigset_t         stage_sigset;
static _Atomic int64_t  stage_cancel_at;

/*
 * A cancellation from the signal thread may start a goroutine (the
 * context's after-funcs), which must not race with sl_main starting or
 * tearing the scheduler down.  So the signal thread cancels only while
 * stage_live (the main goroutine runs), under stage_mu; a signal that
 * comes outside that window is kept in stage_pending and applied when
 * the main goroutine starts, or after sl_main returned.
 */
static pthread_mutex_t  stage_mu = PTHREAD_MUTEX_INITIALIZER;
static bool             stage_live;    /* the main goroutine runs */
static const char      *stage_pending; /* cause of a deferred signal */

/* Bytes the record bodies are cut from. */
static const uint8_t stage_body[STAGE_MAX_BODY] = { 0 };

void
stage_init(stage *st, const char *prog)
{
	memset(st, 0, sizeof(*st));
	st->prog = prog;
	st->type = STAGE_RECORD_TYPE;
}

int
stage_common_option(stage *st, int c, const char *arg)
{
	switch (c - STAGE_OPT_BASE) {
	case 0:
		if (arg[0] == '\0') {
			fprintf(stderr, "%s: --stage: empty name\n", st->prog);
			return (-1);
		}
		st->name = arg;
		return (0);
	case 1:
		if (arg[0] == '\0') {
			fprintf(stderr, "%s: --type: empty name\n", st->prog);
			return (-1);
		}
		st->type = arg;
		return (0);
	case 2:
		st->tls_cert = arg;
		return (0);
	case 3:
		st->tls_key = arg;
		return (0);
	case 4:
		st->tls_ca = arg;
		return (0);
	case 5:
		st->tls_server = arg;
		return (0);
	case 6:
		st->verbose = true;
		return (0);
	case 7:
		return (stage_parse_u64(st->prog, "--reassign-after", arg, 1,
		    86400000, &st->reassign_ms));
	case 8:
		return (stage_parse_u64(st->prog, "--window", arg, 1,
		    1u << 20, &st->window));
	default:
		fprintf(stderr, "%s: unknown option\n", st->prog);
		return (-1);
	}
}

int
stage_common_check(const stage *st)
{
	sl_link_opts o;
	char         why[800];

	if (st->name == NULL) {
		fprintf(stderr, "%s: --stage NAME is required\n", st->prog);
		return (-1);
	}
	/* A name a link cannot carry would fail the stage's links only
	 * once it runs: say so now, as the bad command line it is. */
	stage_link_opts(st, "in", &o);
	if (sl_link_opts_check(&o, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: %s\n", st->prog, why);
		return (-1);
	}
	return (0);
}

int
stage_parse_u64(const char *prog, const char *opt, const char *arg,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char        *p;
	char              *end;
	unsigned long long v;

	for (p = arg; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			break;
	}
	if (arg[0] == '\0' || *p != '\0')
		goto bad;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		if (errno == 0 && v == 0 && min == 1)
			goto bad;
		fprintf(stderr, "%s: %s: out of range [%" PRIu64 ", %" PRIu64
		    "]: '%s'\n", prog, opt, min, max, arg);
		return (-1);
	}
	*out = v;
	return (0);
bad:
	fprintf(stderr, "%s: %s: not a %s integer: '%s'\n", prog, opt,
	    min >= 1 ? "positive" : "non-negative", arg);
	return (-1);
}

void
stage_free_urls(char **urls, size_t n)
{
	if (urls == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

int
stage_split_urls(const char *prog, const char *opt, const char *list,
    char ***urls, size_t *n)
{
	char      **v = NULL;
	size_t      k = 0;
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t      len = comma != NULL ? (size_t) (comma - p)
		                                : strlen(p);
		char      **nv;

		if (len == 0) {
			fprintf(stderr, "%s: %s: empty URL in '%s'\n", prog,
			    opt, list);
			stage_free_urls(v, k);
			return (-1);
		}
		nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL)
			goto nomem;
		v = nv;
		if ((v[k] = strndup(p, len)) == NULL)
			goto nomem;
		k++;
		/* Two outputs of one stage to one input would pass for one
		 * sender reconnecting: their streams would be mixed up. */
		for (size_t j = 0; j + 1 < k; j++) {
			if (strcmp(v[j], v[k - 1]) == 0) {
				fprintf(stderr, "%s: %s: URL '%s' given twice "
				    "in '%s'\n", prog, opt, v[j], list);
				stage_free_urls(v, k);
				return (-1);
			}
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*urls = v;
	*n = k;
	return (0);
nomem:
	fprintf(stderr, "%s: %s: out of memory\n", prog, opt);
	stage_free_urls(v, k);
	return (-1);
}

void
stage_link_opts(const stage *st, const char *port, sl_link_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->stage = st->name;
	o->port = port;
	o->type = st->type;
	o->tls_cert = st->tls_cert;
	o->tls_key = st->tls_key;
	o->tls_ca = st->tls_ca;
	o->tls_server_name = st->tls_server;
	o->reassign_after = (int64_t) st->reassign_ms * SL_MILLISECOND;
	o->window_msgs = (uint32_t) st->window;
}

/* The signal thread: cancels the stage context on SIGTERM or SIGINT,
 * dumps the goroutines and exits on SIGQUIT, returns on SIGUSR2 (sent by
 * stage_finish). */
static void *
stage_sigmain(void *arg)
{
	stage *st = arg;
	int    sig;

	for (;;) {
		if (sigwait(&stage_sigset, &sig) != 0)
			continue;
		if (sig == SIGUSR2)
			return (NULL);
		if (sig == SIGQUIT) {
			/* Like Go: what every goroutine waits on, then exit
			 * 2.  For a stage that hangs (test harnesses send it
			 * before SIGKILL). */
			fprintf(stderr, "SIGQUIT: quit (%zu goroutines)\n",
			    sl_numgoroutine());
			sl_dump_goroutines(stderr);
			_exit(2);
		}
		pthread_mutex_lock(&stage_mu);
		if (stage_live) {
			/* The cancellation wakes goroutines and starts
			 * after-funcs: hold the scheduler meanwhile, or it
			 * could see every goroutine asleep in between and
			 * report a deadlock. */
			sl_sched_hold();
			sl_ctx_cancel_cause(st->ctx, SL_ECANCELED,
			    sig == SIGTERM ? "SIGTERM" : "SIGINT");
			sl_sched_release();
		} else if (stage_pending == NULL)
			stage_pending = sig == SIGTERM ? "SIGTERM" : "SIGINT";
		pthread_mutex_unlock(&stage_mu);
	}
}

/* What stage_run runs as the main goroutine. */
struct stage_main {
	stage *st;  /* the stage */
	sl_fn  fn;  /* its main function */
	void  *arg; /* and argument */
};

/* The main goroutine: opens the window for signals around fn. */
static void
stage_trampoline(void *arg)
{
	struct stage_main *m = arg;

	pthread_mutex_lock(&stage_mu);
	stage_live = true;
	if (stage_pending != NULL)
		sl_ctx_cancel_cause(m->st->ctx, SL_ECANCELED, stage_pending);
	pthread_mutex_unlock(&stage_mu);
	m->fn(m->arg);
	pthread_mutex_lock(&stage_mu);
	stage_live = false;
	pthread_mutex_unlock(&stage_mu);
}

int
stage_run(stage *st, sl_fn fn, void *arg)
{
	struct stage_main m = { st, fn, arg };
	int               rv;

	rv = sl_main(stage_trampoline, &m);
	/* After a deadlock the main goroutine was abandoned while live. */
	pthread_mutex_lock(&stage_mu);
	stage_live = false;
	pthread_mutex_unlock(&stage_mu);
	return (rv);
}

/* After-func of the stage context: notes when it was canceled. */
static void
stage_on_cancel(void *arg)
{
	int64_t zero = 0;

	(void) arg;
	atomic_compare_exchange_strong(&stage_cancel_at, &zero, sl_now());
}

int
stage_start(stage *st)
{
	int rv;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stage_sigset);
	sigaddset(&stage_sigset, SIGTERM);
	sigaddset(&stage_sigset, SIGINT);
	sigaddset(&stage_sigset, SIGUSR2);
	sigaddset(&stage_sigset, SIGQUIT);
	if ((rv = pthread_sigmask(SIG_BLOCK, &stage_sigset, NULL)) != 0) {
		fprintf(stderr, "%s: pthread_sigmask: %s\n", st->prog,
		    strerror(rv));
		return (-1);
	}
	if ((rv = sl_ctx_with_cancel(sl_ctx_background(), &st->ctx)) != 0) {
		stage_error(st, "context", rv);
		return (-1);
	}
	if ((rv = sl_ctx_after_func(st->ctx, stage_on_cancel, NULL,
	    &st->cancel_af)) != 0) {
		stage_error(st, "context", rv);
		sl_ctx_release(st->ctx);
		st->ctx = NULL;
		return (-1);
	}
	if ((rv = pthread_create(&stage_sigthread, NULL, stage_sigmain,
	    st)) != 0) {
		fprintf(stderr, "%s: pthread_create: %s\n", st->prog,
		    strerror(rv));
		sl_ctx_stop(st->cancel_af);
		sl_ctx_release(st->ctx);
		st->ctx = NULL;
		return (-1);
	}
	stage_sigthread_on = true;
	return (0);
}

int
stage_finish(stage *st, int code)
{
	const char *msg = NULL;
	int64_t     at;

	if (stage_sigthread_on) {
		pthread_kill(stage_sigthread, SIGUSR2);
		pthread_join(stage_sigthread, NULL);
		stage_sigthread_on = false;
	}
	if (st->ctx == NULL)
		return (code);
	if (stage_pending != NULL) /* no scheduler now: runs inline */
		sl_ctx_cancel_cause(st->ctx, SL_ECANCELED, stage_pending);
	if (sl_ctx_err(st->ctx) != 0) {
		(void) sl_ctx_cause(st->ctx, &msg);
		if ((at = atomic_load(&stage_cancel_at)) == 0)
			at = sl_now();
		fprintf(stderr, "%s[%s]: canceled at %" PRId64 ": %s\n",
		    st->prog, st->name, at, msg != NULL ? msg : "?");
		code = STAGE_EXIT_CANCELED;
	}
	sl_ctx_stop(st->cancel_af);
	st->cancel_af = NULL;
	sl_ctx_release(st->ctx);
	st->ctx = NULL;
	return (code);
}

void
stage_error(const stage *st, const char *what, int err)
{
	fprintf(stderr, "%s[%s]: %s: %s (%s)\n", st->prog,
	    st->name != NULL ? st->name : "?", what, sl_strerror(err),
	    sl_errname(err));
}

void
stage_print_stats(const stage *st, const char *port, sl_link *l)
{
	sl_link_stats s;

	if (!st->verbose || l == NULL)
		return;
	sl_link_get_stats(l, &s);
	fprintf(stderr, "%s[%s]: %s: msgs=%" PRIu64 " bytes=%" PRIu64
	    " batches=%" PRIu64 " resent=%" PRIu64 " dup_seq=%" PRIu64
	    " dup_lineage=%" PRIu64 " bad_frames=%" PRIu64 " refused=%" PRIu64
	    " connects=%" PRIu64 " drops=%" PRIu64 " reassigned=%" PRIu64
	    "\n", st->prog, st->name, port, s.msgs, s.bytes, s.batches,
	    s.resent, s.dup_seq, s.dup_lineage, s.bad_frames, s.refused,
	    s.connects, s.drops, s.reassigned);
}

/* ---- the payload ------------------------------------------------------ */

/*
 * Decoding allocates a few small blocks per record (the message, its body,
 * its note).  They come from a per-thread bump arena that each decode
 * starts afresh (a record is freed before the next is decoded), with
 * malloc for whatever does not fit.
 */
#define STAGE_ARENA 8192

/* The arena of one thread. */
struct stage_arena {
	size_t used;                                      /* bytes handed out */
	size_t spilled;                 /* blocks that came from malloc */
	_Alignas(max_align_t) unsigned char mem[STAGE_ARENA]; /* the blocks */
};

static _Thread_local struct stage_arena stage_arena;

/* protobuf-c allocator: bump allocation from the arena, else malloc. */
static void *
stage_arena_alloc(void *data, size_t size)
{
	struct stage_arena *a = data;
	size_t              sz = (size + 15) & ~(size_t) 15;

	if (sz >= size && sz <= STAGE_ARENA - a->used) {
		void *p = a->mem + a->used;

		a->used += sz;
		return (p);
	}
	a->spilled++;
	return (malloc(size));
}

/* Frees only what did not come from the arena. */
static void
stage_arena_free(void *data, void *p)
{
	struct stage_arena *a = data;

	if ((unsigned char *) p >= a->mem &&
	    (unsigned char *) p < a->mem + STAGE_ARENA)
		return;
	free(p);
}

/* Decodes a Record with the calling thread's arena (reset first): the
 * record (free it with stage_unpacked_free), or NULL. */
static Sluice__Example__Record *
stage_unpack(const void *data, size_t len, ProtobufCAllocator *al)
{
	stage_arena.used = 0;
	stage_arena.spilled = 0;
	al->alloc = stage_arena_alloc;
	al->free = stage_arena_free;
	al->allocator_data = &stage_arena;
	return ((Sluice__Example__Record *) sl_pb_unpack(
	    &sluice__example__record__descriptor, al, len, data));
}

/* Frees a record from stage_unpack.  When nothing spilled to malloc,
 * the next decode's arena reset frees it all: skip protobuf-c's walk. */
static void
stage_unpacked_free(Sluice__Example__Record *r, ProtobufCAllocator *al)
{
	if (stage_arena.spilled != 0)
		sluice__example__record__free_unpacked(r, al);
}

/* Packs r into a fresh payload (sl_msg_alloc): 0 and m->data/len, or
 * SL_ENOMEM.  bound, if nonzero, is a size the encoding cannot exceed
 * (saves a sizing pass); 0 computes the size. */
static int
stage_pack(const Sluice__Example__Record *r, size_t bound, sl_msg *m)
{
	size_t len = bound != 0 ? bound :
	    sl_pb_packed_size(&r->base);

	if (sl_msg_alloc(m, len) != 0)
		return (SL_ENOMEM);
	if (len == 0)
		return (0);
	m->len = sl_pb_pack(&r->base, m->data);
	if (m->len > len)
		abort(); /* the bound is wrong: memory is already corrupt */
	return (0);
}

/* Bytes of v as a protobuf varint. */
static size_t
stage_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return (n);
}

/* Bytes of a length-delimited field (one-byte tag) of len bytes; proto3
 * leaves out an empty one. */
static size_t
stage_ld_size(size_t len)
{
	return (len == 0 ? 0 : 1 + stage_varint_size(len) + len);
}

uint64_t
stage_id_sum(uint64_t n)
{
	/* Halve whichever of n and n + 1 is even, then multiply. */
	return (n % 2 == 0 ? n / 2 * (n + 1) : (n + 1) / 2 * n);
}

int
stage_rec_pack(sl_msg *m, uint64_t id, int64_t time_ns, size_t size,
    const char *note)
{
	Sluice__Example__Record r = SLUICE__EXAMPLE__RECORD__INIT;
	size_t                  base, body;

	r.id = id;
	r.time_ns = time_ns;
	r.note = (char *) (note != NULL ? note : "");
	/* The record's size without its body, as protobuf-c encodes it
	 * (one-byte tags; proto3 leaves out zero values; an int64 is the
	 * varint of its two's complement), computed here: the source packs
	 * a record per message, and protobuf-c's sizing pass costs about
	 * as much as the packing. */
	base = (id != 0 ? 1 + stage_varint_size(id) : 0) +
	    (time_ns != 0 ? 1 + stage_varint_size((uint64_t) time_ns) : 0) +
	    stage_ld_size(strlen(r.note));
	/* The body field costs a tag byte and a length varint on top of its
	 * bytes; short of one byte a varint boundary can make size
	 * unreachable, then the record comes out one byte larger. */
	body = 0;
	if (size > base + 2) {
		body = size - base - 2;
		if (body >= 128)
			body--;
	}
	if (body > sizeof(stage_body))
		body = sizeof(stage_body);
	r.body.len = body;
	r.body.data = (uint8_t *) stage_body;
	return (stage_pack(&r, base + stage_ld_size(body), m));
}

int
stage_rec_unpack(const void *data, size_t len, stage_rec *out)
{
	Sluice__Example__Record *r;
	ProtobufCAllocator       al;

	if ((r = stage_unpack(data, len, &al)) == NULL)
		return (SL_EPROTO);
	out->id = r->id;
	out->time_ns = r->time_ns;
	out->body = r->body.len;
	stage_unpacked_free(r, &al);
	return (0);
}

int
stage_rec_remap(const void *data, size_t len, const char *note, sl_msg *out)
{
	Sluice__Example__Record *r;
	ProtobufCAllocator       al;
	char                    *old;
	int                      rv;

	memset(out, 0, sizeof(*out));
	if ((r = stage_unpack(data, len, &al)) == NULL)
		return (SL_EPROTO);
	old = r->note;
	r->note = (char *) note;
	/* The same fields, the note replaced: the old note's bytes are
	 * gone, the new one adds at most a tag, a 10-byte length varint and
	 * its bytes.  (A record whose fields were repeated in its encoding
	 * only shrinks.) */
	rv = stage_pack(r, len + strlen(note) + 11, out);
	r->note = old;
	stage_unpacked_free(r, &al);
	return (rv);
}
