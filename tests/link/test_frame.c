/*
 * test_frame.c — the link frame codec (framework/src/link/frame.c).
 *
 * Round trips of every frame kind; every rule of frame.h broken once, on
 * the wire (packed with protobuf-c directly, bypassing the codec's checks)
 * and through the encoder, with the exact error code and message; and
 * thousands of deterministic pseudo-random, truncated and mutated buffers,
 * none of which may crash, leak or decode to a frame breaking the rules.
 * The codec is plain code (no goroutines, no I/O), so these tests run no
 * scheduler.  Loop sizes scale with SLUICE_TEST_SCALE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../testutil.h"
#include "link/batch.h"
#include "link/frame.h"
#include "sluice/error.h"
#include "sluice/example.pb-c.h"

/* ---- helpers ---------------------------------------------------------- */

/* n scaled by $SLUICE_TEST_SCALE (default 1), at least 1. */
static size_t
scaled(size_t n)
{
	const char *e = getenv("SLUICE_TEST_SCALE");
	double f = e != NULL ? atof(e) : 1.0;

	if (!(f > 0))
		f = 1.0;
	return (n * f >= 1 ? (size_t) (n * f) : 1);
}

/*
 * malloc fault injection: the test links with -Wl,--wrap=malloc, so the
 * codec's malloc calls (and this file's) come here.  When fail_at is n >
 * 0, the n-th call from then on fails.
 */
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
static long malloc_fail_at, malloc_calls;

void *
__wrap_malloc(size_t size)
{
	if (malloc_fail_at > 0 && ++malloc_calls == malloc_fail_at)
		return (NULL);
	return (__real_malloc(size));
}

static uint64_t rng_state;

/* xorshift64*: deterministic, seeded per test. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (rng_state * 0x2545f4914f6cdd1dULL);
}

static sli_hello
hello_make(void)
{
	sli_hello h = SLUICE__LINK__HELLO__INIT;

	h.version = SLI_LINK_VERSION;
	h.stage = sli_bytes("src");
	h.port = sli_bytes("out");
	h.payload_type = sli_bytes("sluice.example.Record");
	h.role = SLUICE__LINK__ROLE__ROLE_SENDER;
	h.incarnation = 0x1234567890abcdefULL;
	h.max_frame = 1u << 20;
	return (h);
}

static sli_frame
frame_of(int kind, void *body)
{
	sli_frame f = SLUICE__LINK__FRAME__INIT;

	f.kind_case = (Sluice__Link__Frame__KindCase) kind;
	switch (kind) {
	case SLUICE__LINK__FRAME__KIND_HELLO:
		f.hello = body;
		break;
	case SLUICE__LINK__FRAME__KIND_BATCH:
		f.batch = body;
		break;
	case SLUICE__LINK__FRAME__KIND_CREDIT:
		f.credit = body;
		break;
	case SLUICE__LINK__FRAME__KIND_ACK:
		f.ack = body;
		break;
	case SLUICE__LINK__FRAME__KIND_CLOSE:
		f.close = body;
		break;
	case SLUICE__LINK__FRAME__KIND_CANCEL:
		f.cancel = body;
		break;
	case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
		f.heartbeat = body;
		break;
	case SLUICE__LINK__FRAME__KIND_REFUSE:
		f.refuse = body;
		break;
	default:
		break;
	}
	return (f);
}

/* A batch of n empty messages numbered from first, kept in static
 * storage; with lineage, source 77 and lineage seqs 1000, 1001, ... */
#define BATCH_MAX 8192
static ProtobufCBinaryData batch_pl[BATCH_MAX];
static int64_t             batch_dl[BATCH_MAX];

static sli_batch
batch_make(size_t n, uint64_t first, bool lineage)
{
	sli_batch b = SLUICE__LINK__BATCH__INIT;
	size_t i;

	assert_true(n <= BATCH_MAX);
	for (i = 0; i < n; i++) {
		batch_pl[i] = (ProtobufCBinaryData) { 0, NULL };
		batch_dl[i] = i == 0 ? 1000 : 1;
	}
	b.first_seq = first;
	b.n_payloads = n;
	b.payloads = batch_pl;
	if (lineage) {
		b.lineage_source = 77;
		b.n_lineage_seq_delta = n;
		b.lineage_seq_delta = batch_dl;
	}
	return (b);
}

/* Encodes f through the codec; the caller frees the buffer. */
static uint8_t *
encode_ok(const sli_frame *f, const sli_frame_limits *lim, size_t *lenp)
{
	char err[SLI_FRAME_ERRSZ] = "";
	size_t n, len;
	uint8_t *buf;
	int rv;

	n = sli_frame_size(f);
	buf = malloc(n > 0 ? n : 1);
	assert_non_null(buf);
	rv = sli_frame_encode(f, lim, buf, n, &len, err, sizeof(err));
	if (rv != 0)
		fail_msg("encode: %s: %s", sl_errname(rv), err);
	assert_int_equal(len, n);
	*lenp = len;
	return (buf);
}

/* Packs f with protobuf-c alone, bypassing the codec's checks. */
static uint8_t *
pack_raw(const sli_frame *f, size_t *lenp)
{
	size_t n;
	uint8_t *buf;

	n = sluice__link__frame__get_packed_size(f);
	buf = malloc(n > 0 ? n : 1);
	assert_non_null(buf);
	assert_int_equal(sluice__link__frame__pack(f, buf), n);
	*lenp = n;
	return (buf);
}

static sli_frame *
decode_ok(const uint8_t *buf, size_t len, const sli_frame_limits *lim)
{
	char err[SLI_FRAME_ERRSZ] = "";
	sli_frame *f;
	int rv;

	rv = sli_frame_decode(buf, len, lim, &f, err, sizeof(err));
	if (rv != 0)
		fail_msg("decode: %s: %s", sl_errname(rv), err);
	assert_non_null(f);
	return (f);
}

/* Encodes f, decodes the result, checks the kind; free with
 * sli_frame_free. */
static sli_frame *
round_trip(const sli_frame *f)
{
	sli_frame *g;
	uint8_t *buf, *buf2;
	size_t len, len2;

	buf = encode_ok(f, NULL, &len);
	g = decode_ok(buf, len, NULL);
	assert_int_equal(g->kind_case, f->kind_case);
	/* Re-encoding gives the same bytes. */
	buf2 = encode_ok(g, NULL, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	free(buf);
	free(buf2);
	return (g);
}

static void
expect_err(int rv, const char *err, int code, const char *msg)
{
	if (rv != code)
		fail_msg("got %s (%s), want %s (%s)", sl_errname(rv), err,
		    sl_errname(code), msg);
	assert_string_equal(err, msg);
}

/*
 * f breaks a rule: sli_frame_check and sli_frame_encode fail with code
 * and msg, and, if wire, so does decoding f packed by protobuf-c.
 */
static void
expect_bad(const sli_frame *f, const sli_frame_limits *lim, bool wire,
    int code, const char *msg)
{
	char err[SLI_FRAME_ERRSZ];
	uint8_t out[64], *buf;
	sli_frame *g;
	size_t len;
	int rv;

	strcpy(err, "(none)");
	rv = sli_frame_check(f, lim, err, sizeof(err));
	expect_err(rv, err, code, msg);

	strcpy(err, "(none)");
	len = 99;
	rv = sli_frame_encode(f, lim, out, sizeof(out), &len, err,
	    sizeof(err));
	expect_err(rv, err, code, msg);
	assert_int_equal(len, 0);

	if (!wire)
		return;
	buf = pack_raw(f, &len);
	strcpy(err, "(none)");
	g = (sli_frame *) 1;
	rv = sli_frame_decode(buf, len, lim, &g, err, sizeof(err));
	expect_err(rv, err, code, msg);
	assert_null(g);
	free(buf);
}

/* Decoding buf gives code and msg. */
static void
expect_decode_err(const uint8_t *buf, size_t len, const sli_frame_limits *lim,
    int code, const char *msg)
{
	char err[SLI_FRAME_ERRSZ] = "(none)";
	sli_frame *g = (sli_frame *) 1;
	int rv;

	rv = sli_frame_decode(buf, len, lim, &g, err, sizeof(err));
	expect_err(rv, err, code, msg);
	assert_null(g);
}

/* ---- round trips ------------------------------------------------------ */

static void
test_hello_round_trips(void **state)
{
	sli_hello h = hello_make();
	sli_frame f, *g;

	(void) state;
	h.role = SLUICE__LINK__ROLE__ROLE_RECEIVER;
	h.stage = sli_bytes("żółw-日本-🦀");
	h.credit_messages = 1000;
	h.credit_bytes = 1u << 24;
	h.last_seq = 41;
	f = frame_of(SLUICE__LINK__FRAME__KIND_HELLO, &h);
	g = round_trip(&f);
	assert_non_null(g->hello);
	assert_int_equal(g->hello->version, SLI_LINK_VERSION);
	assert_true(sli_bytes_eq(g->hello->stage, "żółw-日本-🦀"));
	assert_true(sli_bytes_eq(g->hello->port, "out"));
	assert_true(sli_bytes_eq(g->hello->payload_type,
	    "sluice.example.Record"));
	assert_int_equal(g->hello->role, SLUICE__LINK__ROLE__ROLE_RECEIVER);
	assert_int_equal(g->hello->credit_messages, 1000);
	assert_int_equal(g->hello->credit_bytes, 1u << 24);
	assert_int_equal(g->hello->incarnation, 0x1234567890abcdefULL);
	assert_int_equal(g->hello->last_seq, 41);
	assert_int_equal(g->hello->max_frame, 1u << 20);
	assert_string_equal(sli_frame_kind_name(g), "hello");
	sli_frame_free(g);
}

static void
test_batch_round_trips_with_lineage(void **state)
{
	Sluice__Example__Record r = SLUICE__EXAMPLE__RECORD__INIT, *r2;
	uint8_t rbuf[128], body[64];
	sli_batch b;
	sli_frame f, *g;
	size_t i, rlen;

	(void) state;
	for (i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t) i;
	r.id = 42;
	r.time_ns = -7;
	r.body.data = body;
	r.body.len = sizeof(body);
	r.note = (char *) "hi";
	rlen = sluice__example__record__pack(&r, rbuf);
	assert_true(rlen <= sizeof(rbuf));

	/* The last seqs there are; lineage seqs that step back and wrap
	 * round 2^64 (deltas are signed, modulo 2^64). */
	b = batch_make(3, UINT64_MAX - 2, true);
	b.lineage_source = 9;
	batch_dl[0] = 10;
	batch_dl[1] = -9;
	batch_dl[2] = INT64_MIN;
	batch_pl[1].data = rbuf;
	batch_pl[1].len = rlen;
	f = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);
	g = round_trip(&f);
	assert_string_equal(sli_frame_kind_name(g), "batch");
	assert_int_equal(g->batch->n_payloads, 3);
	assert_true(g->batch->first_seq == UINT64_MAX - 2);
	assert_int_equal(g->batch->lineage_source, 9);
	assert_int_equal(g->batch->n_lineage_seq_delta, 3);
	assert_int_equal(g->batch->lineage_seq_delta[0], 10);
	assert_int_equal(g->batch->lineage_seq_delta[1], -9);
	assert_true(g->batch->lineage_seq_delta[2] == INT64_MIN);
	assert_int_equal(g->batch->payloads[0].len, 0);
	assert_int_equal(g->batch->payloads[1].len, rlen);

	r2 = sluice__example__record__unpack(NULL,
	    g->batch->payloads[1].len, g->batch->payloads[1].data);
	assert_non_null(r2);
	assert_int_equal(r2->id, 42);
	assert_int_equal(r2->time_ns, -7);
	assert_int_equal(r2->body.len, sizeof(body));
	assert_memory_equal(r2->body.data, body, sizeof(body));
	assert_string_equal(r2->note, "hi");
	sluice__example__record__free_unpacked(r2, NULL);
	sli_frame_free(g);
}

static void
test_control_frames_round_trip(void **state)
{
	sli_credit c = SLUICE__LINK__CREDIT__INIT;
	sli_credit c2 = SLUICE__LINK__CREDIT__INIT;
	sli_ack a = SLUICE__LINK__ACK__INIT;
	sli_close cl = SLUICE__LINK__CLOSE__INIT;
	sli_cancel ca = SLUICE__LINK__CANCEL__INIT;
	sli_heartbeat hb = SLUICE__LINK__HEARTBEAT__INIT;
	sli_refuse rf = SLUICE__LINK__REFUSE__INIT;
	sli_frame f, *g;

	(void) state;
	c.messages = 64;
	c.bytes = 0;
	f = frame_of(SLUICE__LINK__FRAME__KIND_CREDIT, &c);
	g = round_trip(&f);
	assert_int_equal(g->credit->messages, 64);
	assert_int_equal(g->credit->bytes, 0);
	assert_string_equal(sli_frame_kind_name(g), "credit");
	sli_frame_free(g);

	c.messages = 0;
	c.bytes = 1;
	g = round_trip(&f);
	assert_int_equal(g->credit->messages, 0);
	assert_int_equal(g->credit->bytes, 1);
	sli_frame_free(g);

	a.seq = 123456789;
	f = frame_of(SLUICE__LINK__FRAME__KIND_ACK, &a);
	g = round_trip(&f);
	assert_int_equal(g->ack->seq, 123456789);
	assert_null(g->ack->credit);
	assert_string_equal(sli_frame_kind_name(g), "ack");
	sli_frame_free(g);

	c2.messages = 5;
	c2.bytes = 5000;
	a.credit = &c2;
	g = round_trip(&f);
	assert_non_null(g->ack->credit);
	assert_int_equal(g->ack->credit->messages, 5);
	assert_int_equal(g->ack->credit->bytes, 5000);
	sli_frame_free(g);

	f = frame_of(SLUICE__LINK__FRAME__KIND_CLOSE, &cl);
	g = round_trip(&f);
	assert_int_equal(g->close->final_seq, 0);
	assert_string_equal(sli_frame_kind_name(g), "close");
	sli_frame_free(g);
	cl.final_seq = 99;
	g = round_trip(&f);
	assert_int_equal(g->close->final_seq, 99);
	sli_frame_free(g);

	ca.code = SL_ECANCELED;
	ca.text = sli_bytes("stage 'sink' canceled: disk full");
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM;
	f = frame_of(SLUICE__LINK__FRAME__KIND_CANCEL, &ca);
	g = round_trip(&f);
	assert_int_equal(g->cancel->code, SL_ECANCELED);
	assert_true(sli_bytes_eq(g->cancel->text,
	    "stage 'sink' canceled: disk full"));
	assert_int_equal(g->cancel->direction,
	    SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM);
	assert_string_equal(sli_frame_kind_name(g), "cancel");
	sli_frame_free(g);
	ca.text = sli_bytes("");
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM;
	g = round_trip(&f);
	assert_int_equal(g->cancel->text.len, 0);
	assert_int_equal(g->cancel->direction,
	    SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM);
	sli_frame_free(g);

	hb.time_ns = 5;
	f = frame_of(SLUICE__LINK__FRAME__KIND_HEARTBEAT, &hb);
	g = round_trip(&f);
	assert_int_equal(g->heartbeat->time_ns, 5);
	assert_string_equal(sli_frame_kind_name(g), "heartbeat");
	sli_frame_free(g);
	hb.time_ns = 0;
	g = round_trip(&f);
	assert_int_equal(g->heartbeat->time_ns, 0);
	sli_frame_free(g);

	rf.code = SL_ETYPE;
	rf.text = sli_bytes("payload type mismatch");
	f = frame_of(SLUICE__LINK__FRAME__KIND_REFUSE, &rf);
	g = round_trip(&f);
	assert_int_equal(g->refuse->code, SL_ETYPE);
	assert_true(sli_bytes_eq(g->refuse->text, "payload type mismatch"));
	assert_string_equal(sli_frame_kind_name(g), "refuse");
	sli_frame_free(g);
}

/* The largest legal batch, with the cheapest (most memory per wire byte)
 * messages and with 64-byte payloads: within the decoding budget. */
static void
test_largest_batch_fits_the_budget(void **state)
{
	static uint8_t payload[64];
	sli_batch b;
	sli_frame f, *g;
	size_t i;

	(void) state;
	b = batch_make(SLI_BATCH_MAX_DEFAULT, 1, false);
	f = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);
	g = round_trip(&f);
	assert_int_equal(g->batch->n_payloads, SLI_BATCH_MAX_DEFAULT);
	assert_int_equal(g->batch->first_seq, 1);
	sli_frame_free(g);

	b = batch_make(SLI_BATCH_MAX_DEFAULT, 1, true);
	for (i = 0; i < b.n_payloads; i++) {
		batch_pl[i].data = payload;
		batch_pl[i].len = sizeof(payload);
	}
	g = round_trip(&f);
	assert_int_equal(g->batch->n_payloads, SLI_BATCH_MAX_DEFAULT);
	assert_int_equal(g->batch->n_lineage_seq_delta, SLI_BATCH_MAX_DEFAULT);
	assert_int_equal(g->batch->lineage_seq_delta[4095], 1);
	sli_frame_free(g);
}

/* Two kinds on the wire: the last wins, the first is freed. */
static void
test_last_kind_on_the_wire_wins(void **state)
{
	sli_hello h = hello_make();
	sli_credit c = SLUICE__LINK__CREDIT__INIT;
	sli_frame f1, f2, *g;
	uint8_t *b1, *b2, *cat;
	size_t l1, l2;

	(void) state;
	c.messages = 3;
	f1 = frame_of(SLUICE__LINK__FRAME__KIND_HELLO, &h);
	f2 = frame_of(SLUICE__LINK__FRAME__KIND_CREDIT, &c);
	b1 = encode_ok(&f1, NULL, &l1);
	b2 = encode_ok(&f2, NULL, &l2);
	cat = malloc(l1 + l2);
	assert_non_null(cat);
	memcpy(cat, b1, l1);
	memcpy(cat + l1, b2, l2);
	g = decode_ok(cat, l1 + l2, NULL);
	assert_int_equal(g->kind_case, SLUICE__LINK__FRAME__KIND_CREDIT);
	assert_int_equal(g->credit->messages, 3);
	sli_frame_free(g);
	free(b1);
	free(b2);
	free(cat);
}

/* Fields unknown to this version are skipped (a newer peer may add
 * some); a kind unknown to it is "no kind set". */
static void
test_unknown_fields_are_skipped(void **state)
{
	sli_hello h = hello_make();
	sli_frame f, *g;
	uint8_t *b, *buf;
	size_t l;
	/* field 99 (varint) = 1 inside hello; field 15 (varint) in Frame */
	static const uint8_t extra[] = { 0x98, 0x06, 0x01 };
	static const uint8_t newkind[] = { 0x7a, 0x02, 0x08, 0x01 };

	(void) state;
	f = frame_of(SLUICE__LINK__FRAME__KIND_HELLO, &h);
	b = encode_ok(&f, NULL, &l);
	/* b = 0x0a <len> <hello>; append extra inside the hello. */
	assert_true(b[1] < 0x80 - sizeof(extra));
	buf = malloc(l + sizeof(extra));
	assert_non_null(buf);
	memcpy(buf, b, l);
	memcpy(buf + l, extra, sizeof(extra));
	buf[1] = (uint8_t) (b[1] + sizeof(extra));
	g = decode_ok(buf, l + sizeof(extra), NULL);
	assert_true(sli_bytes_eq(g->hello->stage, "src"));
	sli_frame_free(g);
	free(buf);
	free(b);

	expect_decode_err(newkind, sizeof(newkind), NULL, SL_EPROTO,
	    "frame: no kind set");
}

/* ---- limits ----------------------------------------------------------- */

static void
test_frame_size_limit_is_exact(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	static uint8_t payload[2000];
	char err[SLI_FRAME_ERRSZ], want[SLI_FRAME_ERRSZ];
	uint8_t small[16], *buf;
	sli_batch b;
	sli_frame f, *g;
	size_t len, n;

	(void) state;
	b = batch_make(1, 1, false);
	batch_pl[0].data = payload;
	batch_pl[0].len = 1000;
	f = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);
	n = sli_frame_size(&f);

	/* Exactly max_frame bytes pass, one more does not. */
	lim.max_frame = n;
	buf = encode_ok(&f, &lim, &len);
	g = decode_ok(buf, len, &lim);
	sli_frame_free(g);
	lim.max_frame = n - 1;
	snprintf(want, sizeof(want),
	    "frame of %zu bytes exceeds the limit of %zu", n, n - 1);
	expect_decode_err(buf, len, &lim, SL_ETOOBIG, want);
	assert_int_equal(sli_frame_encode(&f, &lim, buf, len, &len, err,
	    sizeof(err)), SL_ETOOBIG);
	assert_string_equal(err, want);
	assert_int_equal(len, 0);
	free(buf);

	/* A buffer too small: SL_EINVAL and the size needed. */
	assert_int_equal(sli_frame_encode(&f, NULL, small, sizeof(small),
	    &len, err, sizeof(err)), SL_EINVAL);
	snprintf(want, sizeof(want),
	    "frame of %zu bytes does not fit a buffer of 16 bytes", n);
	assert_string_equal(err, want);
	assert_int_equal(len, n);

	/* The default limit. */
	buf = calloc(1, SLI_FRAME_MAX_DEFAULT + 1);
	assert_non_null(buf);
	expect_decode_err(buf, SLI_FRAME_MAX_DEFAULT + 1, NULL, SL_ETOOBIG,
	    "frame of 16777217 bytes exceeds the limit of 16777216");
	free(buf);
}

/* A batch frame of n empty payloads: 2 bytes each on the wire, 8 times
 * that in memory.  The caller frees it. */
static uint8_t *
empty_msgs_frame(size_t n, size_t *lenp)
{
	uint8_t *buf;
	size_t i, inner = 2 * n;

	assert_true(inner < (1u << 21));
	buf = malloc(4 + inner);
	assert_non_null(buf);
	/* Frame.batch (field 2, length-delimited), 3-byte varint length. */
	buf[0] = 0x12;
	buf[1] = (uint8_t) (0x80 | (inner & 0x7f));
	buf[2] = (uint8_t) (0x80 | ((inner >> 7) & 0x7f));
	buf[3] = (uint8_t) (inner >> 14);
	for (i = 0; i < n; i++) {
		buf[4 + 2 * i] = 0x2a; /* Batch.payloads, length 0 */
		buf[4 + 2 * i + 1] = 0x00;
	}
	*lenp = 4 + inner;
	return (buf);
}

/* The decoding budget stops a frame that would take much more memory than
 * its size before the batch limit is even looked at. */
static void
test_decode_memory_is_bounded(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	char want[SLI_FRAME_ERRSZ];
	uint8_t *buf;
	size_t len;

	(void) state;
	lim.max_batch = 1;
	buf = empty_msgs_frame(200000, &len);
	snprintf(want, sizeof(want), "frame of %zu bytes needs more than %zu "
	    "bytes of memory to decode", len, 2 * len + 384 + 64 * 1024);
	expect_decode_err(buf, len, &lim, SL_ETOOBIG, want);
	/* The default budget is larger, but not large enough. */
	snprintf(want, sizeof(want), "frame of %zu bytes needs more than %zu "
	    "bytes of memory to decode", len,
	    2 * len + 384 * 4096 + 64 * 1024);
	expect_decode_err(buf, len, NULL, SL_ETOOBIG, want);
	free(buf);

	/* Within the budget, the batch limit refuses it. */
	buf = empty_msgs_frame(5000, &len);
	expect_decode_err(buf, len, NULL, SL_ETOOBIG,
	    "batch: 5000 messages exceed the limit of 4096");
	free(buf);
}

/* ---- rule violations -------------------------------------------------- */

static void
test_malformed_frames_are_refused(void **state)
{
	static const uint8_t overrun[] = { 0x0a, 0x05, 0x01 };
	static const uint8_t wiretype[] = { 0x0d, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t badtag[] = { 0x00 };
	static const uint8_t tag0[] = { 0x80, 0x00, 0x02, 0x3a, 0x02, 0x08,
	    0x05 };
	static const uint8_t tag0_inner[] = { 0x3a, 0x05, 0x80, 0x00, 0x02,
	    0x08, 0x05 };
	sli_frame f = SLUICE__LINK__FRAME__INIT;
	char err[SLI_FRAME_ERRSZ];

	(void) state;
	expect_decode_err(NULL, 0, NULL, SL_EPROTO, "frame: no kind set");
	expect_decode_err(overrun, 0, NULL, SL_EPROTO, "frame: no kind set");
	expect_decode_err(overrun, sizeof(overrun), NULL, SL_EPROTO,
	    "frame of 3 bytes is not a valid protobuf Frame");
	/* hello sent as a fixed32 */
	expect_decode_err(wiretype, sizeof(wiretype), NULL, SL_EPROTO,
	    "frame of 5 bytes is not a valid protobuf Frame");
	expect_decode_err(badtag, sizeof(badtag), NULL, SL_EPROTO,
	    "frame of 1 bytes is not a valid protobuf Frame");

	/* Found by fuzz_frame: field 0 behind an overlong tag (80 00), then
	 * a valid heartbeat (3a 02 08 05); also field 0 inside the body. */
	expect_decode_err(tag0, sizeof(tag0), NULL, SL_EPROTO,
	    "frame of 7 bytes has a field numbered 0");
	expect_decode_err(tag0_inner, sizeof(tag0_inner), NULL, SL_EPROTO,
	    "frame of 7 bytes has a field numbered 0");

	expect_bad(&f, NULL, true, SL_EPROTO, "frame: no kind set");
	f.kind_case = (Sluice__Link__Frame__KindCase) 99;
	expect_bad(&f, NULL, false, SL_EPROTO, "frame: no kind set");
	f.kind_case = SLUICE__LINK__FRAME__KIND_BATCH;
	f.batch = NULL;
	expect_bad(&f, NULL, false, SL_EPROTO, "frame: batch has no body");
	f.kind_case = SLUICE__LINK__FRAME__KIND_HEARTBEAT;
	f.heartbeat = NULL;
	expect_bad(&f, NULL, false, SL_EPROTO,
	    "frame: heartbeat has no body");
	assert_int_equal(sli_frame_check(NULL, NULL, err, sizeof(err)),
	    SL_EPROTO);
	assert_string_equal(err, "frame: no frame");
	assert_string_equal(sli_frame_kind_name(NULL), "none");
	/* No message buffer is fine. */
	assert_int_equal(sli_frame_check(NULL, NULL, NULL, 0), SL_EPROTO);
}

static void
test_bad_hellos_are_refused(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	sli_hello h;
	sli_frame f;
	static const char *const types[] = {
		"a..b", ".a", "a.", "1a", "a.1b", "a b", "a-b", "é",
	};
	char want[SLI_FRAME_ERRSZ];
	size_t i;

	(void) state;
	f = frame_of(SLUICE__LINK__FRAME__KIND_HELLO, &h);

	h = hello_make();
	h.version = 1; /* a Message per message */
	expect_bad(&f, NULL, true, SL_EVERSION, "hello: protocol version 1 "
	    "from peer (stage 'src' port 'out'), this end speaks 2");
	h.version = 3;
	expect_bad(&f, NULL, true, SL_EVERSION, "hello: protocol version 3 "
	    "from peer (stage 'src' port 'out'), this end speaks 2");
	h.version = 0;
	expect_bad(&f, NULL, true, SL_EVERSION, "hello: protocol version 0 "
	    "from peer (stage 'src' port 'out'), this end speaks 2");
	/* Names of a peer of another version are quoted safely, cut. */
	h.stage = sli_bytes("it's\x01\xff\\");
	h.port = sli_bytes("abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
	expect_bad(&f, NULL, true, SL_EVERSION, "hello: protocol version 0 "
	    "from peer (stage 'it\\x27s\\x01\\xff\\x5c' port "
	    "'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV...'), "
	    "this end speaks 2");

	h = hello_make();
	h.role = SLUICE__LINK__ROLE__ROLE_UNSPECIFIED;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "hello: role 0 is neither sender nor receiver");
	h.role = (Sluice__Link__Role) 7;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "hello: role 7 is neither sender nor receiver");

	h = hello_make();
	h.stage = sli_bytes("");
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is empty");
	h = hello_make();
	h.port = sli_bytes("");
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: port name is empty");
	h = hello_make();
	h.payload_type = sli_bytes("");
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: payload type is empty");

	lim.max_name = 8;
	h = hello_make();
	h.stage = sli_bytes("123456789");
	h.payload_type = sli_bytes("a.B");
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "hello: stage name of 9 bytes exceeds the limit of 8");
	h.stage = sli_bytes("12345678");
	h.port = sli_bytes("123456789");
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "hello: port name of 9 bytes exceeds the limit of 8");
	h.port = sli_bytes("p");
	h.payload_type = sli_bytes("abcd.Efgh");
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "hello: payload type of 9 bytes exceeds the limit of 8");
	h.payload_type = sli_bytes("abc.Efgh");
	assert_int_equal(sli_frame_check(&f, &lim, NULL, 0), 0);

	h = hello_make();
	h.port.data = (uint8_t *) "ou\0t";
	h.port.len = 4;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "hello: port name has a NUL byte at offset 2");
	h.port.data = NULL;
	expect_bad(&f, NULL, false, SL_EPROTO, "hello: port name has no data");

	h = hello_make();
	h.stage = sli_bytes("a\xff");
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xff at offset 1)");
	h.stage = sli_bytes("ab\xc0\xaf"); /* overlong '/' */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xc0 at offset 2)");
	h.stage = sli_bytes("\xed\xa0\x80"); /* surrogate U+D800 */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xed at offset 0)");
	h.stage = sli_bytes("x\xe2\x82"); /* cut short */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xe2 at offset 1)");
	h.stage = sli_bytes("\xf4\x90\x80\x80"); /* above U+10FFFF */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xf4 at offset 0)");
	h.stage = sli_bytes("\xe2\x28\xa1"); /* bad continuation */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0xe2 at offset 0)");
	h.stage = sli_bytes("\x80"); /* lone continuation */
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: stage name is not "
	    "valid UTF-8 (byte 0x80 at offset 0)");
	h.stage = sli_bytes("\xf4\x8f\xbf\xbf \xc2\x80 \xef\xbf\xbf");
	assert_int_equal(sli_frame_check(&f, NULL, NULL, 0), 0);

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		h = hello_make();
		h.payload_type = sli_bytes(types[i]);
		snprintf(want, sizeof(want), "hello: payload type '%s' is not "
		    "a protobuf full name", types[i]);
		expect_bad(&f, NULL, true, SL_EPROTO, want);
	}
	h.payload_type = sli_bytes("_a1._B2.c_");
	assert_int_equal(sli_frame_check(&f, NULL, NULL, 0), 0);

	h = hello_make();
	h.incarnation = 0;
	expect_bad(&f, NULL, true, SL_EPROTO, "hello: incarnation is 0");

	h = hello_make();
	h.max_frame = 1023;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "hello: max_frame 1023 is below the minimum of 1024");
	h.max_frame = 0;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "hello: max_frame 0 is below the minimum of 1024");
	h.max_frame = 1024;
	assert_int_equal(sli_frame_check(&f, NULL, NULL, 0), 0);
}

static void
test_bad_batches_are_refused(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	static uint8_t payload[17];
	sli_batch b;
	sli_frame f;

	(void) state;
	f = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);

	b = batch_make(0, 1, false);
	expect_bad(&f, NULL, true, SL_EPROTO, "batch: no messages");

	lim.max_batch = 4;
	b = batch_make(5, 1, false);
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "batch: 5 messages exceed the limit of 4");
	b = batch_make(4, 1, false);
	assert_int_equal(sli_frame_check(&f, &lim, NULL, 0), 0);

	b = batch_make(1, 0, false);
	expect_bad(&f, NULL, true, SL_EPROTO, "batch: first_seq is 0");

	/* No wrap from UINT64_MAX to 0 (or on). */
	b = batch_make(2, UINT64_MAX, false);
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "batch: 2 messages from seq 18446744073709551615 go past "
	    "2^64 - 1");
	b = batch_make(1, UINT64_MAX, false);
	assert_int_equal(sli_frame_check(&f, NULL, NULL, 0), 0);

	lim = sli_frame_limits_default;
	lim.max_payload = 16;
	b = batch_make(2, 1, false);
	batch_pl[0].data = payload;
	batch_pl[0].len = 16;
	batch_pl[1].data = payload;
	batch_pl[1].len = 17;
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "batch: message 1 payload of 17 bytes exceeds the limit of 16");
	batch_pl[1].len = 16;
	assert_int_equal(sli_frame_check(&f, &lim, NULL, 0), 0);
	batch_pl[1].data = NULL;
	expect_bad(&f, &lim, false, SL_EPROTO,
	    "batch: message 1 payload has no data");

	/* Lineage: one delta per message with a source, none without;
	 * no lineage seq is 0. */
	b = batch_make(3, 1, true);
	assert_int_equal(sli_frame_check(&f, NULL, NULL, 0), 0);
	b.n_lineage_seq_delta = 2;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "batch: 2 lineage seq deltas for 3 messages");
	b.n_lineage_seq_delta = 3;
	b.lineage_source = 0;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "batch: 3 lineage seq deltas without a lineage source");
	b.lineage_source = 5;
	batch_dl[2] = -1001; /* 1000, 1001, 0 */
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "batch: message 2 lineage seq is 0");
	batch_dl[0] = 0;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "batch: message 0 lineage seq is 0");
}

static void
test_bad_control_frames_are_refused(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	sli_credit c = SLUICE__LINK__CREDIT__INIT;
	sli_ack a = SLUICE__LINK__ACK__INIT;
	sli_cancel ca = SLUICE__LINK__CANCEL__INIT;
	sli_refuse rf = SLUICE__LINK__REFUSE__INIT;
	sli_frame f;

	(void) state;
	f = frame_of(SLUICE__LINK__FRAME__KIND_CREDIT, &c);
	expect_bad(&f, NULL, true, SL_EPROTO, "credit: grants nothing");

	f = frame_of(SLUICE__LINK__FRAME__KIND_ACK, &a);
	expect_bad(&f, NULL, true, SL_EPROTO, "ack: seq is 0");
	a.seq = 1;
	a.credit = &c;
	expect_bad(&f, NULL, true, SL_EPROTO, "ack: credit grants nothing");

	f = frame_of(SLUICE__LINK__FRAME__KIND_CANCEL, &ca);
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM;
	expect_bad(&f, NULL, true, SL_EPROTO, "cancel: code is 0");
	ca.code = SL_ECANCELED;
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_UNSPECIFIED;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "cancel: direction 0 is neither downstream nor upstream");
	ca.direction = (Sluice__Link__Direction) 3;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "cancel: direction 3 is neither downstream nor upstream");
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM;
	ca.text.data = (uint8_t *) "a\0";
	ca.text.len = 2;
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "cancel: text has a NUL byte at offset 1");
	lim.max_text = 4;
	ca.text = sli_bytes("12345");
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "cancel: text of 5 bytes exceeds the limit of 4");

	f = frame_of(SLUICE__LINK__FRAME__KIND_REFUSE, &rf);
	rf.text = sli_bytes("x");
	expect_bad(&f, NULL, true, SL_EPROTO, "refuse: code is 0");
	rf.code = SL_EVERSION;
	rf.text = sli_bytes("\xc3");
	expect_bad(&f, NULL, true, SL_EPROTO,
	    "refuse: text is not valid UTF-8 (byte 0xc3 at offset 0)");
	rf.text = sli_bytes("12345");
	expect_bad(&f, &lim, true, SL_ETOOBIG,
	    "refuse: text of 5 bytes exceeds the limit of 4");
	rf.text = sli_bytes("");
	assert_int_equal(sli_frame_check(&f, &lim, NULL, 0), 0);
}

/* Every allocation of a decode failing in turn: SL_ENOMEM, no leak,
 * until the decode needs no more and succeeds. */
static void
test_every_failed_malloc_gives_enomem(void **state)
{
	char err[SLI_FRAME_ERRSZ], want[SLI_FRAME_ERRSZ];
	uint8_t *buf;
	sli_batch b;
	sli_frame f, *g;
	size_t len;
	long n;
	int rv;

	(void) state;
	b = batch_make(3, 1, true);
	batch_pl[1] = sli_bytes("payload");
	f = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);
	buf = encode_ok(&f, NULL, &len);
	snprintf(want, sizeof(want),
	    "frame of %zu bytes: out of memory while decoding", len);
	for (n = 1;; n++) {
		malloc_calls = 0;
		malloc_fail_at = n;
		rv = sli_frame_decode(buf, len, NULL, &g, err, sizeof(err));
		malloc_fail_at = 0;
		if (rv == 0)
			break;
		expect_err(rv, err, SL_ENOMEM, want);
		assert_null(g);
	}
	/* 5 allocations: frame, batch, the deltas, the payloads array, 1
	 * payload; the 6th run had none fail. */
	assert_int_equal(n, 6);
	assert_int_equal(g->batch->n_payloads, 3);
	sli_frame_free(g);
	free(buf);
}

/* ---- hello matching --------------------------------------------------- */

static void
test_hello_match_names_both_ends(void **state)
{
	sli_hello src = hello_make(), sink = hello_make();
	char err[SLI_FRAME_ERRSZ];

	(void) state;
	sink.role = SLUICE__LINK__ROLE__ROLE_RECEIVER;
	sink.stage = sli_bytes("sink");
	sink.port = sli_bytes("in");
	assert_int_equal(sli_hello_match(&src, &sink, err, sizeof(err)), 0);
	assert_int_equal(sli_hello_match(&sink, &src, err, sizeof(err)), 0);

	sink.payload_type = sli_bytes("sluice.example.Other");
	expect_err(sli_hello_match(&sink, &src, err, sizeof(err)), err,
	    SL_ETYPE, "payload type mismatch: this end (stage 'sink' port "
	    "'in') expects 'sluice.example.Other', peer (stage 'src' port "
	    "'out') sends 'sluice.example.Record'");
	expect_err(sli_hello_match(&src, &sink, err, sizeof(err)), err,
	    SL_ETYPE, "payload type mismatch: this end (stage 'src' port "
	    "'out') sends 'sluice.example.Record', peer (stage 'sink' port "
	    "'in') expects 'sluice.example.Other'");
	/* A prefix is not a match. */
	sink.payload_type = sli_bytes("sluice.example.Rec");
	assert_int_equal(sli_hello_match(&sink, &src, NULL, 0), SL_ETYPE);

	sink.role = SLUICE__LINK__ROLE__ROLE_SENDER;
	expect_err(sli_hello_match(&sink, &src, err, sizeof(err)), err,
	    SL_EPROTO, "role mismatch: this end (stage 'sink' port 'in') "
	    "and peer (stage 'src' port 'out') are both senders");
	sink.role = SLUICE__LINK__ROLE__ROLE_RECEIVER;
	src.role = SLUICE__LINK__ROLE__ROLE_RECEIVER;
	expect_err(sli_hello_match(&sink, &src, err, sizeof(err)), err,
	    SL_EPROTO, "role mismatch: this end (stage 'sink' port 'in') "
	    "and peer (stage 'src' port 'out') are both receivers");

	src.version = 3;
	expect_err(sli_hello_match(&sink, &src, err, sizeof(err)), err,
	    SL_EVERSION, "protocol version mismatch: this end (stage 'sink' "
	    "port 'in') speaks 2, peer (stage 'src' port 'out') speaks 3");
}

/* ---- garbage ---------------------------------------------------------- */

static size_t garbage_ok, garbage_err[SL_ERR_COUNT];

/* Decodes buf; whatever it is, the outcome must be sane. */
static void
decode_any(const uint8_t *buf, size_t len, const sli_frame_limits *lim)
{
	char err[SLI_FRAME_ERRSZ];
	uint8_t *out;
	sli_frame *g;
	size_t n, olen;
	int rv;

	err[0] = '\0';
	rv = sli_frame_decode(buf, len, lim, &g, err, sizeof(err));
	if (rv == 0) {
		assert_non_null(g);
		garbage_ok++;
		/* A decoded frame obeys the rules and encodes again. */
		assert_int_equal(sli_frame_check(g, lim, NULL, 0), 0);
		n = sli_frame_size(g);
		out = malloc(n > 0 ? n : 1);
		assert_non_null(out);
		assert_int_equal(sli_frame_encode(g, lim, out, n, &olen, NULL,
		    0), 0);
		assert_int_equal(olen, n);
		free(out);
		sli_frame_free(g);
		return;
	}
	assert_null(g);
	assert_true(rv == SL_EPROTO || rv == SL_ETOOBIG || rv == SL_EVERSION);
	assert_true(strlen(err) > 0);
	garbage_err[rv]++;
}

static void
test_random_bytes_never_crash(void **state)
{
	uint8_t buf[512];
	size_t i, j, len, n;

	(void) state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	garbage_ok = 0;
	memset(garbage_err, 0, sizeof(garbage_err));
	n = scaled(20000);
	for (i = 0; i < n; i++) {
		len = (size_t) (rng() % sizeof(buf));
		for (j = 0; j < len; j++)
			buf[j] = (uint8_t) rng();
		decode_any(buf, len, NULL);
	}
	/* Random bytes are (almost) never a frame. */
	assert_true(garbage_err[SL_EPROTO] >= n - n / 20);
	print_message("random: %zu ok, %zu EPROTO, %zu ETOOBIG, "
	    "%zu EVERSION\n", garbage_ok, garbage_err[SL_EPROTO],
	    garbage_err[SL_ETOOBIG], garbage_err[SL_EVERSION]);
}

/* Valid frames cut short at every length, and with random bytes changed,
 * inserted or removed; random tag-shaped bytes too. */
static void
test_mutated_frames_never_crash(void **state)
{
	sli_frame_limits lim = sli_frame_limits_default;
	sli_hello h = hello_make();
	sli_batch b;
	sli_cancel ca = SLUICE__LINK__CANCEL__INIT;
	sli_ack a = SLUICE__LINK__ACK__INIT;
	sli_credit c = SLUICE__LINK__CREDIT__INIT;
	static uint8_t payload[40];
	uint8_t *seed[4], buf[1024];
	sli_frame f[4];
	size_t slen[4], i, k, len, pos, round;

	(void) state;
	rng_state = 0x0123456789abcdefULL;
	garbage_ok = 0;
	memset(garbage_err, 0, sizeof(garbage_err));
	lim.max_batch = 16;
	lim.max_payload = 64;
	b = batch_make(5, 100, true);
	for (i = 0; i < 5; i++) {
		batch_pl[i].data = payload;
		batch_pl[i].len = sizeof(payload);
	}
	ca.code = SL_ECANCELED;
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM;
	ca.text = sli_bytes("downstream 'sink' failed");
	c.messages = 10;
	c.bytes = 100000;
	a.seq = 77;
	a.credit = &c;
	f[0] = frame_of(SLUICE__LINK__FRAME__KIND_HELLO, &h);
	f[1] = frame_of(SLUICE__LINK__FRAME__KIND_BATCH, &b);
	f[2] = frame_of(SLUICE__LINK__FRAME__KIND_CANCEL, &ca);
	f[3] = frame_of(SLUICE__LINK__FRAME__KIND_ACK, &a);
	for (k = 0; k < 4; k++) {
		seed[k] = encode_ok(&f[k], &lim, &slen[k]);
		assert_true(slen[k] < sizeof(buf) - 16);
		for (len = 0; len <= slen[k]; len++)
			decode_any(seed[k], len, &lim);
	}
	for (round = 0; round < scaled(40000); round++) {
		k = round % 4;
		len = slen[k];
		memcpy(buf, seed[k], len);
		switch (rng() % 4) {
		case 0: /* change 1..4 bytes */
			for (i = 1 + rng() % 4; i > 0; i--)
				buf[rng() % len] = (uint8_t) rng();
			break;
		case 1: /* insert a byte */
			pos = rng() % (len + 1);
			memmove(buf + pos + 1, buf + pos, len - pos);
			buf[pos] = (uint8_t) rng();
			len++;
			break;
		case 2: /* remove a byte */
			pos = rng() % len;
			memmove(buf + pos, buf + pos + 1, len - pos - 1);
			len--;
			break;
		default: /* flip a bit */
			buf[rng() % len] ^= (uint8_t) (1u << (rng() % 8));
			break;
		}
		decode_any(buf, len, &lim);
	}
	/* Tag-shaped noise: small field numbers, all wire types. */
	for (round = 0; round < scaled(20000); round++) {
		len = 1 + rng() % 64;
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t) (rng() % 3 == 0 ?
			    ((1 + rng() % 10) << 3 | rng() % 6) : rng() % 8);
		decode_any(buf, len, &lim);
	}
	print_message("mutated: %zu ok, %zu EPROTO, %zu ETOOBIG, "
	    "%zu EVERSION\n", garbage_ok, garbage_err[SL_EPROTO],
	    garbage_err[SL_ETOOBIG], garbage_err[SL_EVERSION]);
	assert_true(garbage_ok > 0);
	assert_true(garbage_err[SL_EPROTO] > 0);
	for (k = 0; k < 4; k++)
		free(seed[k]);
}

/* The batch fast path (batch.h) writes exactly what protobuf-c writes and
 * reads it back; non-canonical or rule-breaking input falls back. */
static void
test_batch_fast_path_matches_protobuf(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	(void) state;
	for (int round = 0; round < 300; round++) {
		sli_bmsg       v[40], *w = NULL;
		static uint8_t payloads[40][200];
		uint8_t       *fast, *slow;
		size_t         n = 1 + (size_t) (round % 40), cap = 0, got = 0;
		size_t         fl, sl, plen = round % 7 == 0 ? 200 : 49;
		ProtobufCBinaryData pl[40];
		int64_t        dl[40];
		uint64_t       src, prev = 0;
		sli_batch      b = SLUICE__LINK__BATCH__INIT;
		sli_frame      f = SLUICE__LINK__FRAME__INIT;
		sli_batch_plan plan;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Half the batches with a lineage source of 1 to 10 varint
		 * bytes. */
		src = (x & 1) ? (x >> (x % 64)) | 1 : 0;
		b.first_seq = 1000 * (uint64_t) round + 1;
		b.lineage_source = src;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			v[i].seq = b.first_seq + i;
			v[i].lin_src = src;
			/* Lineage seqs: mostly one up, sometimes anywhere. */
			v[i].lin_seq = src == 0 ? 0 : (x % 4 != 0 ?
			    prev + 1 : (x >> (x % 64)) | 1);
			if (src != 0 && v[i].lin_seq == 0)
				v[i].lin_seq = 1;
			dl[i] = (int64_t) (v[i].lin_seq - prev);
			prev = v[i].lin_seq;
			v[i].len = (size_t) (x % (plen + 1));
			memset(payloads[i], (int) i, plen);
			v[i].payload = payloads[i];
			pl[i].data = v[i].len ? payloads[i] : NULL;
			pl[i].len = v[i].len;
		}
		b.n_payloads = n;
		b.payloads = pl;
		if (src != 0) {
			b.n_lineage_seq_delta = n;
			b.lineage_seq_delta = dl;
		}
		f.kind_case = SLUICE__LINK__FRAME__KIND_BATCH;
		f.batch = &b;
		sl = sli_frame_size(&f);
		fl = sli_batch_size(v, n, &plan);
		assert_int_equal(fl, sl);
		fast = malloc(fl);
		slow = malloc(sl);
		assert_int_equal(sli_batch_write(v, n, &plan, fast), fl);
		assert_int_equal(sli_frame_encode(&f, NULL, slow, sl, &sl, NULL,
		    0), 0);
		assert_memory_equal(fast, slow, fl);
		assert_int_equal(sli_batch_view(fast, fl, NULL, &w, &cap, &got),
		    0);
		assert_int_equal(got, n);
		for (size_t i = 0; i < n; i++) {
			assert_true(w[i].seq == v[i].seq);
			assert_true(w[i].lin_src == v[i].lin_src);
			assert_true(w[i].lin_seq == v[i].lin_seq);
			assert_int_equal(w[i].len, v[i].len);
			if (v[i].len > 0)
				assert_memory_equal(w[i].payload, payloads[i],
				    v[i].len);
		}
		/* Broken variants are left to the full decoder. */
		if (src != 0) {
			v[n - 1].lin_seq = 0; /* a lineage seq of 0 */
			fl = sli_batch_size(v, n, &plan);
			fast = realloc(fast, fl);
			assert_int_equal(sli_batch_write(v, n, &plan, fast),
			    fl);
			assert_int_equal(sli_batch_view(fast, fl, NULL, &w,
			    &cap, &got), 1);
		} else {
			/* seqs past 2^64 - 1; one at 2^64 - 1 is fine */
			v[0].seq = n > 1 ? UINT64_MAX - n + 2 : UINT64_MAX;
			fl = sli_batch_size(v, n, &plan);
			fast = realloc(fast, fl);
			assert_int_equal(sli_batch_write(v, n, &plan, fast),
			    fl);
			assert_int_equal(sli_batch_view(fast, fl, NULL, &w,
			    &cap, &got), n > 1 ? 1 : 0);
		}
		free(fast);
		free(slow);
		free(w);
	}
}

/* Varints with a trailing zero group, or a tenth byte above 1 (valid
 * protobuf, not canonical), are left to the full decoder by the fast
 * path; it reads the same values. */
static void
test_batch_overlong_varint_falls_back(void **state)
{
	/* Frame{batch{first_seq: 5 as 85 80 00, lineage_source: 127,
	 * lineage_seq_delta: [3], payloads: ["abcdefgh"]}} */
	static const uint8_t frame[] = {
		0x12, 19,                 /* Frame.batch */
		0x10, 0x85, 0x80, 0x00,   /* first_seq 5, overlong */
		0x18, 0x7f,               /* lineage_source 127 */
		0x22, 0x01, 0x06,         /* lineage_seq_delta [3] */
		0x2a, 0x08, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
	};
	/* A ten-byte first_seq whose last byte holds more than bit 63. */
	static const uint8_t wide[] = {
		0x12, 21,
		0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x02,
		0x2a, 0x08, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
	};
	sli_bmsg  *w = NULL;
	size_t     cap = 0, got = 0;
	sli_frame *f = NULL;
	char       err[128];

	(void) state;
	assert_int_equal(sizeof(frame), 21);
	assert_int_equal(sizeof(wide), 23);
	assert_int_equal(sli_batch_view(frame, sizeof(frame), NULL, &w, &cap,
	    &got), 1);
	assert_int_equal(sli_frame_decode(frame, sizeof(frame), NULL, &f, err,
	    sizeof(err)), 0);
	assert_int_equal(f->kind_case, SLUICE__LINK__FRAME__KIND_BATCH);
	assert_int_equal(f->batch->first_seq, 5);
	assert_int_equal(f->batch->lineage_source, 127);
	assert_int_equal(f->batch->n_lineage_seq_delta, 1);
	assert_int_equal(f->batch->lineage_seq_delta[0], 3);
	assert_int_equal(f->batch->n_payloads, 1);
	assert_int_equal(f->batch->payloads[0].len, 8);
	sli_frame_free(f);
	assert_int_equal(sli_batch_view(wide, sizeof(wide), NULL, &w, &cap,
	    &got), 1);

	/* The packed deltas sent unpacked, one tag each (protobuf allows
	 * both; found by fuzz_frame): the full decoder reads them, and
	 * re-encodes them packed, one length byte longer. */
	static const uint8_t unpacked[] = {
		0x12, 12,
		0x10, 0x01,               /* first_seq 1 */
		0x18, 0x05,               /* lineage_source 5 */
		0x20, 0x04,               /* lineage_seq_delta 2, unpacked */
		0x2a, 0x02, 'a', 'b',
		0x20, 0x02,               /* lineage_seq_delta 1 */
	};
	assert_int_equal(sli_batch_view(unpacked, sizeof(unpacked), NULL, &w,
	    &cap, &got), 1);
	assert_int_equal(sli_frame_decode(unpacked, sizeof(unpacked), NULL,
	    &f, err, sizeof(err)), SL_EPROTO);
	assert_string_equal(err, "batch: 2 lineage seq deltas for 1 messages");
	static const uint8_t one[] = {
		0x12, 10,
		0x10, 0x01, 0x18, 0x05, 0x20, 0x04, 0x2a, 0x02, 'a', 'b',
	};
	assert_int_equal(sli_frame_decode(one, sizeof(one), NULL, &f, err,
	    sizeof(err)), 0);
	assert_int_equal(f->batch->n_lineage_seq_delta, 1);
	assert_int_equal(f->batch->lineage_seq_delta[0], 2);
	assert_int_equal(sli_frame_size(f), sizeof(one) + 1);
	sli_frame_free(f);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_round_trips),
		cmocka_unit_test(test_batch_fast_path_matches_protobuf),
		cmocka_unit_test(test_batch_overlong_varint_falls_back),
		cmocka_unit_test(test_batch_round_trips_with_lineage),
		cmocka_unit_test(test_control_frames_round_trip),
		cmocka_unit_test(test_largest_batch_fits_the_budget),
		cmocka_unit_test(test_last_kind_on_the_wire_wins),
		cmocka_unit_test(test_unknown_fields_are_skipped),
		cmocka_unit_test(test_frame_size_limit_is_exact),
		cmocka_unit_test(test_decode_memory_is_bounded),
		cmocka_unit_test(test_malformed_frames_are_refused),
		cmocka_unit_test(test_bad_hellos_are_refused),
		cmocka_unit_test(test_bad_batches_are_refused),
		cmocka_unit_test(test_bad_control_frames_are_refused),
		cmocka_unit_test(test_every_failed_malloc_gives_enomem),
		cmocka_unit_test(test_hello_match_names_both_ends),
		cmocka_unit_test(test_random_bytes_never_crash),
		cmocka_unit_test(test_mutated_frames_never_crash),
	};

	test_filter();
	return (cmocka_run_group_tests_name("link/frame", tests, NULL, NULL));
}
