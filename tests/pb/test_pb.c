/*
 * test_pb.c — sl_pb_unpack (framework/src/pb) against protobuf-c itself.
 *
 * Every input here is decoded twice, by sl_pb_unpack and by
 * protobuf_c_message_unpack, each with its own recording allocator; the
 * results must be the same field by field (pbcmp.h: values, has_ flags,
 * defaults kept, unknown fields) or both NULL, and each allocator must
 * have freed all it handed out once the message is freed.  When the fast
 * path decodes an input, its allocator calls are exactly protobuf-c's;
 * when it hands the input to protobuf-c, they are more (its own message,
 * freed, then protobuf-c's), which is how the cases below tell which path
 * an input took.  Then a few hundred thousand random and mutated
 * encodings from a seeded generator (SLUICE_TEST_SCALE scales them).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../testutil.h"
#include "pbcmp.h"
#include "pbrand.h"
#include "pbtest2.pb-c.h"
#include "pbtest3.pb-c.h"
#include "sluice/example.pb-c.h"
#include "sluice/pb.h"

#define REC_DESC (&sluice__example__record__descriptor)
#define ALL3_DESC (&sluice__pbtest__all3__descriptor)
#define ALL2_DESC (&sluice__pbtest__all2__descriptor)
#define REQ2_DESC (&sluice__pbtest__req2__descriptor)
#define INNER3_DESC (&sluice__pbtest__inner3__descriptor)

/* ---- fault injection ----------------------------------------------------- */

/*
 * The test links with -Wl,--wrap=malloc,--wrap=calloc, so the calls of
 * sl_pb_unpack (and of this file) come here; protobuf-c's, from its shared
 * library, do not.  When fail_at is n > 0, the n-th call from then on
 * fails.
 */
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static long tp_malloc_fail_at, tp_malloc_calls;
static long tp_calloc_fail_at, tp_calloc_calls;

void *
__wrap_malloc(size_t size)
{
	if (tp_malloc_fail_at > 0 && ++tp_malloc_calls == tp_malloc_fail_at)
		return (NULL);
	return (__real_malloc(size));
}

void *
__wrap_calloc(size_t n, size_t size)
{
	if (tp_calloc_fail_at > 0 && ++tp_calloc_calls == tp_calloc_fail_at)
		return (NULL);
	return (__real_calloc(n, size));
}

/* ---- a recording allocator ----------------------------------------------- */

/* Guards the size stored in front of each block. */
#define TP_MAGIC 0x5eed5eedu

/* What one allocator saw. */
typedef struct tp_log {
	size_t   allocs;  /* successful alloc calls */
	size_t   frees;   /* free calls */
	size_t   calls;   /* alloc calls, failed ones included */
	size_t   fail_at; /* the alloc call to fail (from 1), 0 for none */
	uint64_t hash;    /* of the sequence of calls and their sizes */
} tp_log;

/* The header in front of each block: its size, and TP_MAGIC. */
typedef struct tp_hdr {
	size_t   size;  /* bytes asked for */
	uint32_t magic; /* TP_MAGIC while allocated */
	uint32_t pad;   /* keeps the block 16-byte aligned */
} tp_hdr;

static void
tp_note(tp_log *l, uint64_t ev)
{
	l->hash = (l->hash ^ ev) * 0x100000001b3ull;
}

static void *
tp_alloc(void *data, size_t size)
{
	tp_log *l = data;
	tp_hdr *h;

	l->calls++;
	tp_note(l, 'a' ^ (uint64_t) size << 8);
	if (l->fail_at != 0 && l->calls == l->fail_at)
		return (NULL);
	if ((h = malloc(sizeof(*h) + size)) == NULL)
		return (NULL);
	h->size = size;
	h->magic = TP_MAGIC;
	l->allocs++;
	return (h + 1);
}

static void
tp_free(void *data, void *p)
{
	tp_log *l = data;
	tp_hdr *h = (tp_hdr *) p - 1;

	/* A block that did not come from this allocator (or a double
	 * free) fails here, or under ASan and valgrind. */
	if (h->magic != TP_MAGIC) {
		fprintf(stderr, "tp_free: %p is not from this allocator\n", p);
		abort();
	}
	h->magic = 0;
	l->frees++;
	tp_note(l, 'f' ^ (uint64_t) h->size << 8);
	free(h);
}

static ProtobufCAllocator
tp_allocator(tp_log *l)
{
	ProtobufCAllocator a = { .alloc = tp_alloc, .free = tp_free,
		.allocator_data = l };

	return (a);
}

/* ---- decoding with both -------------------------------------------------- */

/* How an input went, told by the allocator calls. */
enum tp_path {
	TP_NULL,  /* both NULL, with the same calls */
	TP_FAST,  /* decoded, with exactly protobuf-c's calls: the fast path
	             (or straight to protobuf-c, for descriptors it leaves) */
	TP_OTHER, /* other calls: the fast path gave up, protobuf-c decided */
};

/*
 * Decodes data[0..len) with both decoders, the fail_at'th allocation of
 * each failing (0: none), checks that they agree and that each freed all
 * it allocated, and says how it went.  An injected failure can hit
 * different allocations when sl_pb_unpack hands the input to protobuf-c
 * (its own come first), so there only both being freed is checked, and
 * equal results if both decoded.  Mismatches are counted in tp_failures
 * and printed.
 */
static int tp_failures;

static enum tp_path
tp_both(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
    size_t len, size_t fail_at)
{
	tp_log             la = { .fail_at = fail_at };
	tp_log             lb = { .fail_at = fail_at };
	ProtobufCAllocator aa = tp_allocator(&la), ab = tp_allocator(&lb);
	ProtobufCMessage  *a, *b;
	const char        *why = NULL;
	enum tp_path       path;
	bool               anull, bnull;

	a = sl_pb_unpack(desc, &aa, len, data);
	b = protobuf_c_message_unpack(desc, &ab, len, data);
	if ((a == NULL) != (b == NULL))
		why = a == NULL ? "sl_pb_unpack: NULL, protobuf-c: a message" :
		    "sl_pb_unpack: a message, protobuf-c: NULL";
	else if (a != NULL)
		why = pbcmp(a, b);
	anull = a == NULL;
	bnull = b == NULL;
	protobuf_c_message_free_unpacked(a, &aa);
	protobuf_c_message_free_unpacked(b, &ab);
	if (la.calls == lb.calls && la.frees == lb.frees && la.hash == lb.hash)
		path = anull ? TP_NULL : TP_FAST;
	else
		path = TP_OTHER;
	if (why != NULL && fail_at != 0 && path == TP_OTHER && anull != bnull)
		why = NULL;
	if (why != NULL) {
		fprintf(stderr, "mismatch (%s, %zu bytes, fail_at %zu): %s\n",
		    desc->name, len, fail_at, why);
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, "%02x%s", data[i],
			    i + 1 == len ? "\n" : " ");
		tp_failures++;
	}
	if (la.allocs != la.frees || lb.allocs != lb.frees) {
		fprintf(stderr, "leak (%s, %zu bytes): sl %zu/%zu, "
		    "pbc %zu/%zu\n", desc->name, len, la.allocs, la.frees,
		    lb.allocs, lb.frees);
		tp_failures++;
	}
	return (path);
}

/* tp_both, failing the case on a mismatch. */
static enum tp_path
tp_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
    size_t len)
{
	enum tp_path p;

	tp_failures = 0;
	p = tp_both(desc, data, len, 0);
	assert_int_equal(tp_failures, 0);
	return (p);
}

/* ---- writing encodings --------------------------------------------------- */

/* An encoding being written. */
typedef struct tp_buf {
	uint8_t b[8192]; /* the bytes */
	size_t  n;       /* used */
} tp_buf;

static void
tp_byte(tp_buf *w, unsigned c)
{
	if (w->n < sizeof(w->b))
		w->b[w->n++] = (uint8_t) c;
}

static void
tp_bytes(tp_buf *w, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tp_byte(w, ((const uint8_t *) p)[i]);
}

/* v as a varint with pad more bytes than it needs (at most ten in all
 * when pad keeps it so; the caller decides). */
static void
tp_varint_pad(tp_buf *w, uint64_t v, int pad)
{
	while (v >= 0x80 || pad > 0) {
		if (v < 0x80)
			pad--;
		tp_byte(w, (unsigned) (v & 0x7f) | 0x80);
		v >>= 7;
	}
	tp_byte(w, (unsigned) v);
}

static void
tp_varint(tp_buf *w, uint64_t v)
{
	tp_varint_pad(w, v, 0);
}

static void
tp_tag(tp_buf *w, uint32_t field, unsigned wire)
{
	tp_varint(w, (uint64_t) field << 3 | wire);
}

static void
tp_fixed32(tp_buf *w, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		tp_byte(w, (v >> (8 * i)) & 0xff);
}

static void
tp_fixed64(tp_buf *w, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		tp_byte(w, (v >> (8 * i)) & 0xff);
}

/* A length-delimited field. */
static void
tp_ld(tp_buf *w, uint32_t field, const void *p, size_t n)
{
	tp_tag(w, field, 2);
	tp_varint(w, n);
	tp_bytes(w, p, n);
}

static uint64_t
tp_zz64(int64_t v)
{
	return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static uint32_t
tp_f32bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return (u);
}

static uint64_t
tp_f64bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, 8);
	return (u);
}

/*
 * Whether sl_pb_unpack decodes messages of desc itself (its field 1 must
 * be a scalar the fast path decodes).  Seen from the allocator: for more
 * than 16 fields protobuf-c allocates a second slab for its scan, and the
 * fast path does not, so seventeen copies of field 1 make the calls
 * differ exactly when the fast path decoded them.
 */
static int
tp_fast_for(const ProtobufCMessageDescriptor *desc)
{
	tp_buf w = { .n = 0 };

	for (int i = 0; i < 17; i++) {
		tp_tag(&w, 1, 0);
		tp_varint(&w, (uint64_t) i);
	}
	return (tp_check(desc, w.b, w.n) == TP_OTHER);
}

/* ---- exact values -------------------------------------------------------- */

static void
test_a_record_decodes_exactly_on_the_fast_path(void **state)
{
	Sluice__Example__Record *r;
	tp_buf                   w = { .n = 0 };
	static uint8_t           body[39];

	(void) state;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 150);
	tp_tag(&w, 2, 0);
	tp_varint(&w, (uint64_t) -5); /* ten bytes */
	tp_ld(&w, 3, "abc", 3);
	tp_ld(&w, 4, "hi", 2);
	r = (Sluice__Example__Record *) sl_pb_unpack(REC_DESC, NULL, w.n,
	    w.b);
	assert_non_null(r);
	assert_ptr_equal(r->base.descriptor, REC_DESC);
	assert_int_equal(r->id, 150);
	assert_true(r->time_ns == -5);
	assert_int_equal(r->body.len, 3);
	assert_memory_equal(r->body.data, "abc", 3);
	assert_string_equal(r->note, "hi");
	assert_int_equal(r->base.n_unknown_fields, 0);
	sluice__example__record__free_unpacked(r, NULL);
	assert_int_equal(tp_check(REC_DESC, w.b, w.n), TP_FAST);

	/* A 64-byte record as the stages make them, packed by protobuf-c. */
	Sluice__Example__Record in = SLUICE__EXAMPLE__RECORD__INIT;
	uint8_t                 buf[128];
	size_t                  n;

	memset(body, 'b', sizeof(body));
	in.id = 123456789;
	in.time_ns = 1764338400123456789;
	in.body.data = body;
	in.body.len = sizeof(body);
	in.note = "mapped";
	n = sluice__example__record__pack(&in, buf);
	assert_int_equal(n, 64);
	assert_int_equal(tp_check(REC_DESC, buf, n), TP_FAST);

	/* Nothing at all: the initialised message. */
	assert_int_equal(tp_check(REC_DESC, buf, 0), TP_FAST);
	r = (Sluice__Example__Record *) sl_pb_unpack(REC_DESC, NULL, 0, NULL);
	assert_non_null(r);
	assert_int_equal(r->id, 0);
	assert_int_equal(r->body.len, 0);
	assert_null(r->body.data);
	assert_ptr_equal(r->note, protobuf_c_empty_string);
	sluice__example__record__free_unpacked(r, NULL);
}

static void
test_every_proto3_scalar_type_decodes_exactly(void **state)
{
	static const uint8_t bytes[] = { 0, 1, 2, 0xff };
	Sluice__Pbtest__All3 *m;
	tp_buf                w = { .n = 0 };

	(void) state;
	tp_tag(&w, 1, 0);
	tp_varint(&w, (uint64_t) -1);           /* int32 -1: ten bytes */
	tp_tag(&w, 2, 0);
	tp_varint(&w, 5);                       /* sint32 -3 */
	tp_tag(&w, 3, 5);
	tp_fixed32(&w, (uint32_t) -100000);     /* sfixed32 */
	tp_tag(&w, 4, 0);
	tp_varint(&w, (uint64_t) INT64_MIN);    /* int64 */
	tp_tag(&w, 5, 0);
	tp_varint(&w, tp_zz64(-123456789012));  /* sint64 */
	tp_tag(&w, 6, 1);
	tp_fixed64(&w, (uint64_t) -2);          /* sfixed64 */
	tp_tag(&w, 7, 0);
	tp_varint(&w, UINT32_MAX);              /* uint32 */
	tp_tag(&w, 8, 5);
	tp_fixed32(&w, 0xdeadbeef);             /* fixed32 */
	tp_tag(&w, 9, 0);
	tp_varint(&w, UINT64_MAX);              /* uint64 */
	tp_tag(&w, 10, 1);
	tp_fixed64(&w, 0x0123456789abcdefull);  /* fixed64 */
	tp_tag(&w, 11, 5);
	tp_fixed32(&w, tp_f32bits(-0.375f));    /* float */
	tp_tag(&w, 12, 1);
	tp_fixed64(&w, tp_f64bits(1e300));      /* double */
	tp_tag(&w, 13, 0);
	tp_varint(&w, 1);                       /* bool */
	tp_tag(&w, 14, 0);
	tp_varint(&w, (uint64_t) -2);           /* enum COLOR_BLUE */
	tp_ld(&w, 15, "sluice", 6);             /* string */
	tp_ld(&w, 16, bytes, sizeof(bytes));    /* bytes: a 2-byte tag */
	tp_tag(&w, 1000, 0);
	tp_varint(&w, 7);                       /* big_id */
	tp_ld(&w, 536870911, "top", 3);         /* big_str: a 5-byte tag */

	m = (Sluice__Pbtest__All3 *) sl_pb_unpack(ALL3_DESC, NULL, w.n, w.b);
	assert_non_null(m);
	assert_int_equal(m->f_int32, -1);
	assert_int_equal(m->f_sint32, -3);
	assert_int_equal(m->f_sfixed32, -100000);
	assert_true(m->f_int64 == INT64_MIN);
	assert_true(m->f_sint64 == -123456789012);
	assert_true(m->f_sfixed64 == -2);
	assert_true(m->f_uint32 == UINT32_MAX);
	assert_true(m->f_fixed32 == 0xdeadbeef);
	assert_true(m->f_uint64 == UINT64_MAX);
	assert_true(m->f_fixed64 == 0x0123456789abcdefull);
	assert_true(m->f_float == -0.375f);
	assert_true(m->f_double == 1e300);
	assert_int_equal(m->f_bool, 1);
	assert_int_equal(m->f_enum, SLUICE__PBTEST__COLOR__COLOR_BLUE);
	assert_string_equal(m->f_string, "sluice");
	assert_int_equal(m->f_bytes.len, sizeof(bytes));
	assert_memory_equal(m->f_bytes.data, bytes, sizeof(bytes));
	assert_true(m->big_id == 7);
	assert_string_equal(m->big_str, "top");
	assert_int_equal(m->n_r_int32, 0);
	assert_null(m->sub);
	assert_int_equal(m->pick_case, SLUICE__PBTEST__ALL3__PICK__NOT_SET);
	sluice__pbtest__all3__free_unpacked(m, NULL);
	/* Eighteen fields: protobuf-c allocates a second scan slab, so the
	 * allocator calls differ; the results may not. */
	tp_check(ALL3_DESC, w.b, w.n);
	assert_true(tp_fast_for(ALL3_DESC));
}

/* The field descriptor of name in d. */
static const ProtobufCFieldDescriptor *
tp_field(const ProtobufCMessageDescriptor *d, const char *name)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);

	assert_non_null(fd);
	return (fd);
}

static void
test_proto2_optional_fields_set_has_and_keep_defaults(void **state)
{
	const ProtobufCBinaryData *bdef =
	    tp_field(ALL2_DESC, "f_bytes")->default_value;
	const char *sdef = tp_field(ALL2_DESC, "f_string")->default_value;
	Sluice__Pbtest__All2 *m;
	tp_buf                w = { .n = 0 };

	(void) state;
	/* Nothing: every default, no has_ flag. */
	m = (Sluice__Pbtest__All2 *) sl_pb_unpack(ALL2_DESC, NULL, 0,
	    (const uint8_t *) "");
	assert_non_null(m);
	assert_int_equal(m->has_f_int64, 0);
	assert_true(m->f_int64 == -7);
	assert_int_equal(m->has_f_uint32, 0);
	assert_int_equal(m->f_uint32, 42);
	assert_true(m->f_float == 1.5f);
	assert_true(m->f_double == -2.25);
	assert_int_equal(m->has_f_bool, 0);
	assert_int_equal(m->f_bool, 1);
	assert_int_equal(m->f_enum, SLUICE__PBTEST__SHADE__SHADE_NEG);
	assert_ptr_equal(m->f_string, sdef);
	assert_int_equal(m->has_f_bytes, 0);
	assert_ptr_equal(m->f_bytes.data, bdef->data);
	assert_null(m->f_string2);
	sluice__pbtest__all2__free_unpacked(m, NULL);
	assert_int_equal(tp_check(ALL2_DESC, w.b, 0), TP_FAST);

	/* Zero values are present values: has_ set, defaults replaced. */
	tp_tag(&w, 4, 0);
	tp_varint(&w, 0);
	tp_tag(&w, 7, 0);
	tp_varint(&w, 0);
	tp_tag(&w, 13, 0);
	tp_varint(&w, 0);
	tp_tag(&w, 14, 0);
	tp_varint(&w, 1);
	tp_ld(&w, 15, "", 0);
	tp_ld(&w, 16, "", 0);
	tp_ld(&w, 17, "two", 3);
	tp_tag(&w, 3000, 0);
	tp_varint(&w, 3);
	m = (Sluice__Pbtest__All2 *) sl_pb_unpack(ALL2_DESC, NULL, w.n, w.b);
	assert_non_null(m);
	assert_int_equal(m->has_f_int64, 1);
	assert_true(m->f_int64 == 0);
	assert_int_equal(m->has_f_uint32, 1);
	assert_int_equal(m->f_uint32, 0);
	assert_int_equal(m->has_f_bool, 1);
	assert_int_equal(m->f_bool, 0);
	assert_int_equal(m->has_f_enum, 1);
	assert_int_equal(m->f_enum, SLUICE__PBTEST__SHADE__SHADE_LIGHT);
	assert_int_equal(m->has_f_int32, 0);
	/* An empty string is an allocated "", not the default. */
	assert_true(m->f_string != sdef);
	assert_string_equal(m->f_string, "");
	/* Empty bytes: data NULL, has_ set. */
	assert_int_equal(m->has_f_bytes, 1);
	assert_int_equal(m->f_bytes.len, 0);
	assert_null(m->f_bytes.data);
	assert_string_equal(m->f_string2, "two");
	assert_int_equal(m->has_big_id, 1);
	assert_true(m->big_id == 3);
	assert_true(m->f_float == 1.5f); /* untouched */
	sluice__pbtest__all2__free_unpacked(m, NULL);
	assert_int_equal(tp_check(ALL2_DESC, w.b, w.n), TP_FAST);
}

static void
test_a_field_seen_twice_keeps_the_last_value(void **state)
{
	Sluice__Example__Record *r;
	tp_buf                   w = { .n = 0 };

	(void) state;
	tp_ld(&w, 4, "first", 5);
	tp_ld(&w, 3, "body1", 5);
	tp_tag(&w, 1, 0);
	tp_varint(&w, 1);
	tp_ld(&w, 4, "second", 6);
	tp_ld(&w, 3, "", 0);
	tp_tag(&w, 1, 0);
	tp_varint(&w, 2);
	tp_ld(&w, 4, "third", 5);
	r = (Sluice__Example__Record *) sl_pb_unpack(REC_DESC, NULL, w.n,
	    w.b);
	assert_non_null(r);
	assert_int_equal(r->id, 2);
	assert_string_equal(r->note, "third");
	assert_int_equal(r->body.len, 0);
	assert_null(r->body.data);
	sluice__example__record__free_unpacked(r, NULL);
	/* Same allocations and frees as protobuf-c, in the same order. */
	assert_int_equal(tp_check(REC_DESC, w.b, w.n), TP_FAST);

	/* proto2: the default is replaced, never freed; then the copy is. */
	w.n = 0;
	tp_ld(&w, 15, "a", 1);
	tp_ld(&w, 16, "b", 1);
	tp_ld(&w, 15, "c", 1);
	tp_ld(&w, 16, "d", 1);
	tp_tag(&w, 1, 0);
	tp_varint(&w, 9);
	tp_tag(&w, 1, 0);
	tp_varint(&w, 10);
	assert_int_equal(tp_check(ALL2_DESC, w.b, w.n), TP_FAST);
}

/* One encoding of one field and what it must decode to. */
struct tp_varcase {
	const char *what;    /* for the failure message */
	uint8_t     enc[16]; /* tag and value */
	size_t      len;     /* bytes of enc */
	int         fast;    /* 1: the fast path decodes it */
};

static void
test_varints_tags_lengths_read_as_protobuf_c_reads_them(void **state)
{
	/* All3: 1 int32, 2 sint32, 7 uint32, 9 uint64, 13 bool, 15 string. */
	static const struct tp_varcase cases[] = {
		{ "int32 -1 in ten bytes", { 0x08, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 11, 1 },
		{ "int32 -1 in five bytes", { 0x08, 0xff, 0xff, 0xff, 0xff,
		    0x0f }, 6, 1 },
		{ "int32 from 2^32 + 5", { 0x08, 0x85, 0x80, 0x80, 0x80, 0x10 },
		    6, 1 },
		{ "uint32 from 2^40 + 7", { 0x38, 0x87, 0x80, 0x80, 0x80, 0x80,
		    0x20 }, 7, 1 },
		{ "sint32 from 2^33 + 3", { 0x10, 0x83, 0x80, 0x80, 0x80,
		    0x20 }, 6, 1 },
		{ "uint64 1 padded to four bytes", { 0x48, 0x81, 0x80, 0x80,
		    0x00 }, 5, 1 },
		{ "uint64 0 padded to ten bytes", { 0x48, 0x80, 0x80, 0x80,
		    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 11, 1 },
		{ "uint64 tenth byte 0x7f", { 0x48, 0x81, 0x80, 0x80, 0x80,
		    0x80, 0x80, 0x80, 0x80, 0x80, 0x7f }, 11, 1 },
		{ "uint64 in eleven bytes", { 0x48, 0x80, 0x80, 0x80, 0x80,
		    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 12, 0 },
		{ "bool 2", { 0x68, 0x02 }, 2, 1 },
		{ "bool 0 padded", { 0x68, 0x80, 0x00 }, 3, 1 },
		{ "bool past bit 63", { 0x68, 0x80, 0x80, 0x80, 0x80, 0x80,
		    0x80, 0x80, 0x80, 0x80, 0x02 }, 11, 1 },
		{ "bool bit 63 only", { 0x68, 0x80, 0x80, 0x80, 0x80, 0x80,
		    0x80, 0x80, 0x80, 0x80, 0x01 }, 11, 1 },
		{ "bool as fixed64", { 0x69, 1, 0, 0, 0, 0, 0, 0, 0 }, 9, 0 },
		{ "bool as fixed32 0x80", { 0x6d, 0, 0x80, 0, 0 }, 5, 0 },
		{ "bool length-delimited", { 0x6a, 0x01, 0x00 }, 3, 0 },
		{ "tag of field 1 padded", { 0x88, 0x00, 0x05 }, 3, 1 },
		{ "tag of field 1 in five bytes", { 0x88, 0x80, 0x80, 0x80,
		    0x00, 0x05 }, 6, 1 },
		{ "tag of field 15 in two bytes", { 0xfa, 0x00, 0x01, 'x' }, 4,
		    1 },
		{ "tag in six bytes", { 0x88, 0x80, 0x80, 0x80, 0x80, 0x00,
		    0x05 }, 7, 0 },
		{ "field 0", { 0x00, 0x01 }, 2, 0 },
		{ "field 0 in two bytes", { 0x80, 0x00, 0x01 }, 3, 0 },
		{ "length padded to three bytes", { 0x7a, 0x83, 0x80, 0x00, 'a',
		    'b', 'c' }, 7, 1 },
		{ "length padded to five bytes", { 0x7a, 0x81, 0x80, 0x80, 0x80,
		    0x00, 'x' }, 7, 0 },
		{ "length 2^32 in five bytes", { 0x7a, 0x80, 0x80, 0x80, 0x80,
		    0x10 }, 6, 0 },
		{ "length 2^32 - 1", { 0x7a, 0xff, 0xff, 0xff, 0xff, 0x0f }, 6,
		    0 },
		{ "length past the end", { 0x7a, 0x02, 'x' }, 3, 0 },
		{ "string with a NUL in it", { 0x7a, 0x03, 'a', 0, 'b' }, 5,
		    1 },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tp_varcase *c = &cases[i];
		enum tp_path             p;

		tp_failures = 0;
		p = tp_both(ALL3_DESC, c->enc, c->len, 0);
		if (tp_failures != 0 || (c->fast != 0) != (p == TP_FAST))
			fail_msg("%s: %s path %d", c->what,
			    tp_failures != 0 ? "mismatch," : "", (int) p);
	}

	/* And the values themselves for a few. */
	Sluice__Pbtest__All3 *m;
	static const uint8_t  big[] = { 0x48, 0x81, 0x80, 0x80, 0x80, 0x80,
		0x80, 0x80, 0x80, 0x80, 0x7f };
	static const uint8_t  past63[] = { 0x68, 0x80, 0x80, 0x80, 0x80,
		0x80, 0x80, 0x80, 0x80, 0x80, 0x02 };
	static const uint8_t  i32[] = { 0x08, 0x85, 0x80, 0x80, 0x80, 0x10 };

	m = (Sluice__Pbtest__All3 *) sl_pb_unpack(ALL3_DESC, NULL,
	    sizeof(big), big);
	assert_true(m->f_uint64 == 0x8000000000000001ull);
	sluice__pbtest__all3__free_unpacked(m, NULL);
	m = (Sluice__Pbtest__All3 *) sl_pb_unpack(ALL3_DESC, NULL,
	    sizeof(past63), past63);
	assert_int_equal(m->f_bool, 1);
	sluice__pbtest__all3__free_unpacked(m, NULL);
	m = (Sluice__Pbtest__All3 *) sl_pb_unpack(ALL3_DESC, NULL,
	    sizeof(i32), i32);
	assert_int_equal(m->f_int32, 5);
	sluice__pbtest__all3__free_unpacked(m, NULL);
}

/* One input the fast path leaves to protobuf-c. */
struct tp_fallcase {
	const char                       *what; /* for the failure message */
	const ProtobufCMessageDescriptor *desc; /* the message type */
	uint8_t                           enc[24]; /* the input */
	size_t                            len;  /* bytes of enc */
	int                               ok;   /* 1: protobuf-c decodes it */
};

static void
test_what_the_fast_path_does_not_decode_is_protobuf_c_s(void **state)
{
	static const struct tp_fallcase cases[] = {
		{ "an unknown field", REC_DESC, { 0x08, 0x01, 0x28, 0x07 }, 4,
		    1 },
		{ "an unknown field after a string", REC_DESC, { 0x22, 0x02,
		    'h', 'i', 0x1a, 0x01, 'b', 0x2a, 0x00 }, 9, 1 },
		{ "field 0", REC_DESC, { 0x00, 0x00 }, 2, 0 },
		{ "a varint as fixed64", REC_DESC, { 0x09, 1, 2, 3, 4, 5, 6, 7,
		    8 }, 9, 0 },
		{ "a varint as fixed32", REC_DESC, { 0x0d, 1, 2, 3, 4 }, 5, 0 },
		{ "a varint length-delimited", REC_DESC, { 0x0a, 0x01,
		    0x01 }, 3, 0 },
		{ "bytes as a varint", REC_DESC, { 0x18, 0x01 }, 2, 0 },
		{ "a truncated varint", REC_DESC, { 0x08, 0x80 }, 2, 0 },
		{ "a truncated tag", REC_DESC, { 0x08, 0x01, 0x80 }, 3, 0 },
		{ "a truncated fixed64", ALL3_DESC, { 0x51, 1, 2, 3 }, 4, 0 },
		{ "a truncated fixed32", ALL3_DESC, { 0x45, 1, 2, 3 }, 4, 0 },
		{ "a start group", REC_DESC, { 0x0b, 0x0c }, 2, 0 },
		{ "wire type 6", REC_DESC, { 0x0e, 0x00 }, 2, 0 },
		{ "wire type 7", REC_DESC, { 0x0f, 0x00 }, 2, 0 },
		{ "a bytes length past the end", REC_DESC, { 0x1a, 0x05, 'a' },
		    3, 0 },
		{ "a packed repeated field", ALL3_DESC, { 0x8a, 0x01, 0x02,
		    0x01, 0x02 }, 5, 1 },
		{ "an unpacked repeated field", ALL3_DESC, { 0x88, 0x01, 0x05,
		    0x88, 0x01, 0x06 }, 6, 1 },
		{ "a submessage", ALL3_DESC, { 0x92, 0x01, 0x02, 0x08,
		    0x05 }, 5, 1 },
		{ "a malformed submessage", ALL3_DESC, { 0x92, 0x01, 0x01,
		    0x08 }, 4, 0 },
		{ "a oneof int", ALL3_DESC, { 0x98, 0x01, 0x05 }, 3, 1 },
		{ "a oneof string after the int", ALL3_DESC, { 0x98, 0x01, 0x05,
		    0xa2, 0x01, 0x01, 'z' }, 7, 1 },
		{ "a proto2 repeated field", ALL2_DESC, { 0x98, 0x01, 0x05 }, 3,
		    1 },
		{ "a proto2 submessage", ALL2_DESC, { 0xa2, 0x01, 0x00 }, 3,
		    1 },
		{ "a proto2 oneof", ALL2_DESC, { 0xb2, 0x01, 0x01, 'q' }, 4,
		    1 },
		{ "an unknown field after strings", ALL2_DESC, { 0x7a, 0x01,
		    'a', 0x82, 0x01, 0x01, 'b', 0xf8, 0x07, 0x01 }, 10, 1 },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tp_fallcase *c = &cases[i];
		enum tp_path              p;
		ProtobufCMessage         *m;

		tp_failures = 0;
		p = tp_both(c->desc, c->enc, c->len, 0);
		m = protobuf_c_message_unpack(c->desc, NULL, c->len, c->enc);
		if (tp_failures != 0 || p != TP_OTHER ||
		    (m != NULL) != (c->ok != 0))
			fail_msg("%s: %s path %d, protobuf-c %s", c->what,
			    tp_failures != 0 ? "mismatch," : "", (int) p,
			    m != NULL ? "decodes it" : "refuses it");
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

static void
test_a_message_with_required_fields_is_protobuf_c_s(void **state)
{
	static const uint8_t with[] = { 0x08, 0x05, 0x10, 0x06 };
	static const uint8_t without[] = { 0x10, 0x06 };
	Sluice__Pbtest__Req2 *m;

	(void) state;
	m = (Sluice__Pbtest__Req2 *) sl_pb_unpack(REQ2_DESC, NULL,
	    sizeof(with), with);
	assert_non_null(m);
	assert_int_equal(m->r, 5);
	assert_int_equal(m->has_o, 1);
	assert_int_equal(m->o, 6);
	sluice__pbtest__req2__free_unpacked(m, NULL);
	assert_null(sl_pb_unpack(REQ2_DESC, NULL, sizeof(without), without));
	/* Straight to protobuf-c: the same calls. */
	assert_int_equal(tp_check(REQ2_DESC, with, sizeof(with)), TP_FAST);
	assert_int_equal(tp_check(REQ2_DESC, without, sizeof(without)),
	    TP_NULL);
	assert_false(tp_fast_for(REQ2_DESC));
}

/* A copy of All3's descriptor without message_init, as hand-made
 * descriptors are. */
static ProtobufCMessageDescriptor tp_noinit;

static void
test_a_descriptor_without_message_init_is_protobuf_c_s(void **state)
{
	tp_buf w = { .n = 0 };

	(void) state;
	tp_noinit = sluice__pbtest__all3__descriptor;
	tp_noinit.message_init = NULL;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 3);
	tp_ld(&w, 15, "s", 1);
	/* Straight to protobuf-c: the same calls. */
	assert_int_equal(tp_check(&tp_noinit, w.b, w.n), TP_FAST);
	assert_int_equal(tp_check(&tp_noinit, w.b, 0), TP_FAST);
	assert_false(tp_fast_for(&tp_noinit));
}

/* A hand-made message of TP_WIDE int32 fields, numbered from 1: with
 * 128 of them (the most for which protobuf-c needs no allocation for its
 * bookkeeping) and with all 129. */
#define TP_WIDE 129
typedef struct tp_wide {
	ProtobufCMessage base;       /* the protobuf-c header */
	int32_t          v[TP_WIDE]; /* v[i]: field i + 1 */
} tp_wide;
static ProtobufCFieldDescriptor   tp_wide_fields[TP_WIDE];
static char                       tp_wide_names[TP_WIDE][8];
static ProtobufCIntRange          tp_wide_ranges[2][2];
static ProtobufCMessageDescriptor tp_wide_desc[2];

/* The message_init of each: zeroes, and points at its descriptor. */
static void
tp_wide_init128(ProtobufCMessage *m)
{
	memset(m, 0, sizeof(tp_wide));
	m->descriptor = &tp_wide_desc[0];
}

static void
tp_wide_init129(ProtobufCMessage *m)
{
	memset(m, 0, sizeof(tp_wide));
	m->descriptor = &tp_wide_desc[1];
}

static void
test_a_message_of_more_than_128_fields_is_protobuf_c_s(void **state)
{
	tp_buf w = { .n = 0 };

	(void) state;
	for (int i = 0; i < TP_WIDE; i++) {
		ProtobufCFieldDescriptor *fd = &tp_wide_fields[i];

		snprintf(tp_wide_names[i], sizeof(tp_wide_names[i]), "v%d",
		    i + 1);
		fd->name = tp_wide_names[i];
		fd->id = (uint32_t) i + 1;
		fd->label = PROTOBUF_C_LABEL_NONE;
		fd->type = PROTOBUF_C_TYPE_INT32;
		fd->offset = (unsigned) (offsetof(tp_wide, v) +
		    (size_t) i * sizeof(int32_t));
	}
	for (int k = 0; k < 2; k++) {
		ProtobufCMessageDescriptor *d = &tp_wide_desc[k];
		unsigned                    n = k == 0 ? 128 : 129;

		tp_wide_ranges[k][0].start_value = 1;
		tp_wide_ranges[k][0].orig_index = 0;
		tp_wide_ranges[k][1].start_value = 0;
		tp_wide_ranges[k][1].orig_index = (int) n;
		d->magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
		d->name = d->short_name = d->c_name = k == 0 ? "Wide128" :
		    "Wide129";
		d->package_name = "";
		d->sizeof_message = sizeof(tp_wide);
		d->n_fields = n;
		d->fields = tp_wide_fields;
		d->n_field_ranges = 1;
		d->field_ranges = tp_wide_ranges[k];
		d->message_init = k == 0 ? tp_wide_init128 :
		    tp_wide_init129;
	}
	tp_tag(&w, 1, 0);
	tp_varint(&w, 5);
	tp_tag(&w, 128, 0);
	tp_varint(&w, 6);
	tp_tag(&w, 129, 0);
	tp_varint(&w, 7);
	/* 129 is unknown to the first (the fast path gives it up). */
	assert_int_equal(tp_check(&tp_wide_desc[0], w.b, w.n), TP_OTHER);
	assert_int_equal(tp_check(&tp_wide_desc[1], w.b, w.n), TP_FAST);
	assert_true(tp_fast_for(&tp_wide_desc[0]));
	assert_false(tp_fast_for(&tp_wide_desc[1]));
}

/* ---- allocation failures ------------------------------------------------- */

static void
test_a_failed_malloc_leaks_nothing(void **state)
{
	tp_buf w = { .n = 0 };

	(void) state;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 5);
	tp_ld(&w, 3, "body", 4);
	tp_ld(&w, 4, "note", 4);
	tp_ld(&w, 4, "note2", 5);
	/* Warm the plan, so that only the decoding allocates. */
	protobuf_c_message_free_unpacked(sl_pb_unpack(REC_DESC, NULL, w.n,
	    w.b), NULL);
	/* The message, body, note, note again: each may fail. */
	for (long n = 1; n <= 5; n++) {
		ProtobufCMessage *m;

		tp_malloc_calls = 0;
		tp_malloc_fail_at = n;
		m = sl_pb_unpack(REC_DESC, NULL, w.n, w.b);
		tp_malloc_fail_at = 0;
		if (n <= 4)
			assert_null(m);
		else
			assert_non_null(m);
		/* ASan and valgrind check that nothing leaked. */
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

/* A copy of All3's descriptor, for a plan that cannot be allocated. */
static ProtobufCMessageDescriptor tp_noplan;

static void
test_without_memory_for_a_plan_protobuf_c_decodes(
    void **state)
{
	tp_buf w = { .n = 0 };

	(void) state;
	tp_noplan = sluice__pbtest__all3__descriptor;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 3);
	tp_ld(&w, 15, "s", 1);
	tp_calloc_calls = 0;
	tp_calloc_fail_at = 1;
	assert_int_equal(tp_check(&tp_noplan, w.b, w.n), TP_FAST);
	tp_calloc_fail_at = 0;
	assert_int_equal(tp_calloc_calls, 1);
	/* Its plan is built at the next call. */
	assert_true(tp_fast_for(&tp_noplan));
}

static void
test_a_failed_allocation_fails_both_alike(void **state)
{
	tp_buf w[3];
	const ProtobufCMessageDescriptor *d[3] = { REC_DESC, ALL3_DESC,
		ALL2_DESC };

	(void) state;
	memset(w, 0, sizeof(w));
	tp_ld(&w[0], 4, "note", 4);
	tp_ld(&w[0], 3, "body", 4);
	tp_ld(&w[0], 4, "note2", 5);
	tp_tag(&w[0], 1, 0);
	tp_varint(&w[0], 77);
	tp_ld(&w[1], 15, "s", 1);
	tp_ld(&w[1], 16, "b", 1);
	tp_ld(&w[1], 536870911, "t", 1);
	tp_ld(&w[1], 16, "", 0);
	tp_ld(&w[2], 15, "a", 1);
	tp_ld(&w[2], 16, "b", 1);
	tp_ld(&w[2], 18, "c", 1);
	tp_ld(&w[2], 15, "d", 1);
	for (int k = 0; k < 3; k++) {
		/* Fail each allocation in turn, then none. */
		for (size_t n = 1; n <= 8; n++) {
			tp_failures = 0;
			enum tp_path p = tp_both(d[k], w[k].b, w[k].n, n);
			assert_int_equal(tp_failures, 0);
			assert_true(p == TP_NULL || p == TP_FAST);
		}
	}
}

/* ---- random and mutated encodings ---------------------------------------- */

/* A value of some interesting size. */
static uint64_t
tp_value(void)
{
	switch (pbr_below(7)) {
	case 0:
		return (0);
	case 1:
		return (pbr_below(128));
	case 2: {
		uint64_t v = pbr_next();

		return (v >> pbr_below(64));
	}
	case 3:
		return ((uint64_t) -(int64_t) pbr_below(1000));
	case 4:
		return (pbr_next());
	case 5:
		return ((uint64_t) pbr_next() >> 32);
	default:
		return (1ull << pbr_below(64));
	}
}

/* The wire type protobuf-c expects for fd (packed for repeated scalars,
 * half the time). */
static unsigned
tp_wire_of(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return (fd->label == PROTOBUF_C_LABEL_REPEATED &&
		    pbr_below(2) ? 2 : 5);
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return (fd->label == PROTOBUF_C_LABEL_REPEATED &&
		    pbr_below(2) ? 2 : 1);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return (2);
	default:
		return (fd->label == PROTOBUF_C_LABEL_REPEATED &&
		    pbr_below(2) ? 2 : 0);
	}
}

static void tp_gen(tp_buf *w, const ProtobufCMessageDescriptor *d,
    int depth, int clean);

/* Writes one random field of d (or not of d); if clean, one that the
 * fast path decodes (d must have one), well formed. */
static void
tp_gen_field(tp_buf *w, const ProtobufCMessageDescriptor *d, int depth,
    int clean)
{
	const ProtobufCFieldDescriptor *fd = NULL;
	uint32_t                        id, r = pbr_below(100);
	unsigned                        wire;

	if (clean) {
		/* A field the fast path decodes, in its wire type. */
		do
			fd = &d->fields[pbr_below(d->n_fields)];
		while (fd->label == PROTOBUF_C_LABEL_REPEATED ||
		    fd->type == PROTOBUF_C_TYPE_MESSAGE ||
		    (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0);
		id = fd->id;
	} else if (r < 85 && d->n_fields > 0) {
		fd = &d->fields[pbr_below(d->n_fields)];
		id = fd->id;
	} else if (r < 96)
		id = pbr_below(40);
	else {
		id = (uint32_t) pbr_next();
		id >>= pbr_below(32);
	}
	wire = fd != NULL && (clean || pbr_below(100) < 90) ? tp_wire_of(fd) :
	    pbr_below(8);
	if (pbr_below(25) == 0)
		tp_varint_pad(w, (uint64_t) id << 3 | wire,
		    1 + pbr_below(clean ? 1 : 3));
	else
		tp_varint(w, (uint64_t) id << 3 | wire);
	switch (wire) {
	case 0:
		if (!clean && pbr_below(40) == 0) /* eleven bytes */
			tp_bytes(w, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80",
			    10);
		if (pbr_below(15) == 0) {
			uint64_t v = tp_value() >> 8;

			tp_varint_pad(w, v, 1 + pbr_below(2));
		} else
			tp_varint(w, tp_value());
		break;
	case 1:
		tp_fixed64(w, tp_value());
		break;
	case 5:
		tp_fixed32(w, (uint32_t) tp_value());
		break;
	case 2: {
		tp_buf *in = malloc(sizeof(*in));
		size_t  n;

		assert_non_null(in);
		in->n = 0;
		if (fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
		    depth < 3)
			tp_gen(in, fd->descriptor, depth + 1, 0);
		else if (fd != NULL && fd->label == PROTOBUF_C_LABEL_REPEATED)
			for (n = pbr_below(6); n > 0; n--)
				tp_varint(in, tp_value());
		else
			for (n = pbr_below(8) == 0 ? 200 : pbr_below(24); n > 0;
			    n--)
				tp_byte(in, pbr_below(4) == 0 ? 0 :
				    'a' + pbr_below(26));
		n = in->n;
		if (!clean && pbr_below(30) == 0)
			n += pbr_below(3); /* past the end, maybe */
		if (pbr_below(15) == 0)
			tp_varint_pad(w, n, 1 + pbr_below(clean ? 2 : 3));
		else
			tp_varint(w, n);
		tp_bytes(w, in->b, in->n);
		free(in);
		break;
	}
	default: /* groups and wire types 6, 7: anything */
		for (r = pbr_below(3); r > 0; r--)
			tp_byte(w, pbr_below(256));
		break;
	}
}

/* A random message of type d, mostly well formed; if clean, one that
 * the fast path decodes. */
static void
tp_gen(tp_buf *w, const ProtobufCMessageDescriptor *d, int depth, int clean)
{
	for (uint32_t n = pbr_below(depth == 0 ? 12 : 4); n > 0; n--)
		tp_gen_field(w, d, depth, clean);
}

/* Damages w a little. */
static void
tp_mutate(tp_buf *w)
{
	for (uint32_t k = 1 + pbr_below(4); k > 0; k--) {
		size_t at = w->n > 0 ? pbr_below((uint32_t) w->n) : 0;

		switch (pbr_below(5)) {
		case 0:
			if (w->n > 0)
				w->b[at] ^= (uint8_t) (1u << pbr_below(8));
			break;
		case 1:
			if (w->n > 0)
				w->b[at] = (uint8_t) pbr_below(256);
			break;
		case 2:
			if (w->n > 0) {
				memmove(w->b + at, w->b + at + 1,
				    w->n - at - 1);
				w->n--;
			}
			break;
		case 3:
			if (w->n < sizeof(w->b)) {
				memmove(w->b + at + 1, w->b + at, w->n - at);
				w->b[at] = (uint8_t) pbr_below(256);
				w->n++;
			}
			break;
		default:
			w->n = at;
			break;
		}
	}
}

/* SLUICE_TEST_SCALE, default 1. */
static double
tp_scale(void)
{
	const char *s = getenv("SLUICE_TEST_SCALE");
	double      f = s != NULL ? atof(s) : 1.0;

	return (f > 0 ? f : 1.0);
}

static void
test_random_and_mutated_inputs_decode_as_protobuf_c_does(
    void **state)
{
	static const ProtobufCMessageDescriptor *descs[] = { REC_DESC,
		ALL3_DESC, ALL2_DESC, REQ2_DESC, INNER3_DESC };
	size_t  n = (size_t) (300000 * tp_scale()), count[3] = { 0 };
	tp_buf *w = malloc(sizeof(*w));

	(void) state;
	assert_non_null(w);
	if (n < 2000)
		n = 2000;
	tp_failures = 0;
	for (size_t i = 0; i < n && tp_failures < 10; i++) {
		const ProtobufCMessageDescriptor *d = descs[i % 5];
		uint32_t                          how = pbr_below(10);

		w->n = 0;
		if (how == 0) { /* noise */
			for (uint32_t k = pbr_below(40); k > 0; k--)
				tp_byte(w, pbr_below(256));
		} else {
			/* Some clean ones, to check the fast path's values. */
			tp_gen(w, d, 0, how >= 7 && d != REQ2_DESC);
			if (how <= 3)
				tp_mutate(w);
		}
		/* Now and then an allocation fails too. */
		enum tp_path p = tp_both(d, w->b, w->n, pbr_below(50) == 0 ?
		    1 + pbr_below(4) : 0);
		if (d != REQ2_DESC) /* always protobuf-c's */
			count[p]++;
	}
	free(w);
	print_message("%zu inputs: %zu on the fast path, %zu given to "
	    "protobuf-c, %zu NULL on the fast path (Req2 not counted)\n",
	    n, count[TP_FAST], count[TP_OTHER], count[TP_NULL]);
	assert_int_equal(tp_failures, 0);
	/* Both paths were well exercised. */
	assert_true(count[TP_FAST] > n / 10);
	assert_true(count[TP_OTHER] > n / 10);
}

/* ---- threads ------------------------------------------------------------- */

/* Fresh descriptors (copies of Record's) whose plans the threads race to
 * build. */
#define TP_THREADS 4
#define TP_COPIES  8
static ProtobufCMessageDescriptor tp_copies[TP_COPIES];

/* What the decoding threads share. */
struct tp_thr {
	const uint8_t   *enc;      /* a Record */
	size_t           len;      /* its bytes */
	ProtobufCMessage *expect;  /* protobuf-c's decoding of it */
	atomic_int       go;       /* start together */
	atomic_int       failures; /* mismatches */
	int              rounds;   /* decodes per thread */
};

static void *
tp_thread(void *arg)
{
	struct tp_thr *t = arg;

	while (atomic_load(&t->go) == 0)
		;
	for (int i = 0; i < t->rounds; i++) {
		const ProtobufCMessageDescriptor *d = &tp_copies[i % TP_COPIES];
		ProtobufCMessage *m = sl_pb_unpack(d, NULL, t->len, t->enc);

		if (m == NULL || pbcmp(m, t->expect) != NULL)
			atomic_fetch_add(&t->failures, 1);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return (NULL);
}

static void
test_many_threads_decode_at_once_with_fresh_descriptors(void **state)
{
	static struct tp_thr t;
	pthread_t            th[TP_THREADS];
	tp_buf               w = { .n = 0 };

	(void) state;
	for (int i = 0; i < TP_COPIES; i++)
		tp_copies[i] = sluice__example__record__descriptor;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 99);
	tp_ld(&w, 3, "payload", 7);
	tp_ld(&w, 4, "note", 4);
	t.enc = w.b;
	t.len = w.n;
	t.expect = protobuf_c_message_unpack(REC_DESC, NULL, w.n, w.b);
	assert_non_null(t.expect);
	t.rounds = (int) (4000 * tp_scale());
	if (t.rounds < 64)
		t.rounds = 64;
	for (int i = 0; i < TP_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, tp_thread, &t),
		    0);
	atomic_store(&t.go, 1);
	for (int i = 0; i < TP_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&t.failures), 0);
	protobuf_c_message_free_unpacked(t.expect, NULL);
	/* And the fast path was taken with them. */
	for (int i = 0; i < TP_COPIES; i++)
		assert_true(tp_fast_for(&tp_copies[i]));
}

/* More descriptors than the plan table holds (512 slots): those left out
 * go to protobuf-c, with the same results.  Fills the table for the rest
 * of the process, so it runs last. */
#define TP_MANY 600
static ProtobufCMessageDescriptor tp_many[TP_MANY];

static void
test_descriptors_past_the_plan_table_are_protobuf_c_s(void **state)
{
	tp_buf w = { .n = 0 };
	size_t fast = 0, other = 0;

	(void) state;
	tp_tag(&w, 1, 0);
	tp_varint(&w, 3);
	tp_ld(&w, 15, "s", 1);
	for (int i = 0; i < TP_MANY; i++) {
		tp_many[i] = sluice__pbtest__all3__descriptor;
		tp_check(&tp_many[i], w.b, w.n);
		if (tp_fast_for(&tp_many[i]))
			fast++;
		else
			other++;
	}
	print_message("%zu descriptors with a plan, %zu without\n", fast,
	    other);
	assert_true(fast > 0 && other > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_record_decodes_exactly_on_the_fast_path),
		cmocka_unit_test(test_every_proto3_scalar_type_decodes_exactly),
		cmocka_unit_test(
		    test_proto2_optional_fields_set_has_and_keep_defaults),
		cmocka_unit_test(
		    test_a_field_seen_twice_keeps_the_last_value),
		cmocka_unit_test(
		    test_varints_tags_lengths_read_as_protobuf_c_reads_them),
		cmocka_unit_test(
		    test_what_the_fast_path_does_not_decode_is_protobuf_c_s),
		cmocka_unit_test(
		    test_a_message_with_required_fields_is_protobuf_c_s),
		cmocka_unit_test(
		    test_a_descriptor_without_message_init_is_protobuf_c_s),
		cmocka_unit_test(
		    test_a_message_of_more_than_128_fields_is_protobuf_c_s),
		cmocka_unit_test(test_a_failed_allocation_fails_both_alike),
		cmocka_unit_test(
		    test_a_failed_malloc_leaks_nothing),
		cmocka_unit_test(
		    test_without_memory_for_a_plan_protobuf_c_decodes),
		cmocka_unit_test(
		    test_random_and_mutated_inputs_decode_as_protobuf_c_does),
		cmocka_unit_test(
		    test_many_threads_decode_at_once_with_fresh_descriptors),
		cmocka_unit_test(
		    test_descriptors_past_the_plan_table_are_protobuf_c_s),
	};

	pbr_seed(0x5eed0f51c3ull);
	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
