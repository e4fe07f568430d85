/*
 * test_pb_pack.c — sl_pb_pack and sl_pb_packed_size (framework/src/pb)
 * against protobuf-c itself.
 *
 * Every message here is packed twice, by sl_pb_pack and by
 * protobuf_c_message_pack, into buffers pre-filled with a marker byte;
 * the sizes must be equal, the bytes identical, nothing written past the
 * size, and the bytes must decode back to the message.  Hand-made cases
 * pin protobuf-c's rules for which fields are written (zero, -0.0, NaN,
 * empty strings, bytes with data but no length, proto2 defaults); then a
 * hundred thousand random messages of every shape, including the ones
 * handed to protobuf-c (repeated, submessage, oneof, unknown fields).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../testutil.h"
#include "pbrand.h"
#include "pbtest2.pb-c.h"
#include "pbtest3.pb-c.h"
#include "sluice/example.pb-c.h"
#include "sluice/pb.h"

#define PK_MAX 4096
#define PK_MARK 0xa5

/* Packs m both ways and checks them equal; returns the size. */
static size_t
pk_check(const ProtobufCMessage *m)
{
	static uint8_t a[PK_MAX + 16], b[PK_MAX + 16];
	size_t         want = protobuf_c_message_get_packed_size(m);
	size_t         na, nb;

	assert_true(want <= PK_MAX);
	memset(a, PK_MARK, sizeof(a));
	memset(b, PK_MARK, sizeof(b));
	assert_int_equal(sl_pb_packed_size(m), want);
	na = sl_pb_pack(m, a);
	nb = protobuf_c_message_pack(m, b);
	assert_int_equal(nb, want);
	assert_int_equal(na, want);
	assert_memory_equal(a, b, want);
	for (size_t i = want; i < sizeof(a); i++)
		assert_int_equal(a[i], PK_MARK);
	/* And the bytes mean the message: protobuf-c reads them back to
	 * what it packs again to the same bytes. */
	ProtobufCMessage *r = protobuf_c_message_unpack(m->descriptor, NULL,
	    na, a);
	assert_non_null(r);
	assert_int_equal(protobuf_c_message_pack(r, b), na);
	assert_memory_equal(a, b, na);
	protobuf_c_message_free_unpacked(r, NULL);
	return (na);
}

/* The bytes sl_pb_pack writes for m, for the cases that pin them. */
static size_t
pk_bytes(const ProtobufCMessage *m, uint8_t *out)
{
	size_t n = pk_check(m);

	return (sl_pb_pack(m, out) == n ? n : 0);
}

static void
test_a_record_packs_as_protobuf_c_packs_it(void **state)
{
	Sluice__Example__Record r = SLUICE__EXAMPLE__RECORD__INIT;
	uint8_t                 out[64];
	static const uint8_t    want[] = { 0x08, 0x96, 0x01, 0x1a, 0x02, 'h',
                'i', 0x22, 0x01, 'n' };

	(void) state;
	r.id = 150;
	r.body.data = (uint8_t *) "hi";
	r.body.len = 2;
	r.note = "n";
	assert_int_equal(pk_bytes(&r.base, out), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	/* Empty body and note: left out; the empty record is no bytes. */
	r.id = 0;
	r.body.len = 0;
	r.note = "";
	assert_int_equal(pk_check(&r.base), 0);
	r = (Sluice__Example__Record) SLUICE__EXAMPLE__RECORD__INIT;
	assert_int_equal(pk_check(&r.base), 0);
}

static void
test_proto3_zero_fields_are_left_out_as_protobuf_c_does(void **state)
{
	Sluice__Pbtest__All3 m = SLUICE__PBTEST__ALL3__INIT;
	uint8_t              out[64];

	(void) state;
	/* -0.0 compares equal to zero: not written. */
	m.f_float = -0.0f;
	m.f_double = -0.0;
	m.f_string = "";
	assert_int_equal(pk_bytes(&m.base, out), 0);
	/* NaN is not zero: written.  Bytes with data but no length are
	 * zero to protobuf-c: left out. */
	m.f_double = NAN;
	m.f_bytes.data = (uint8_t *) "";
	m.f_bytes.len = 0;
	assert_int_equal(pk_bytes(&m.base, out), 9);
	assert_int_equal(out[0], 12 << 3 | 1);
	m.f_bytes.len = 1;
	assert_int_equal(pk_bytes(&m.base, out), 9 + 4);
	assert_int_equal(out[9], 0x82);
	assert_int_equal(out[10], 0x01);
	assert_int_equal(out[11], 1);
	/* A negative int32 takes ten bytes, an enum too; sint32 zigzags. */
	m = (Sluice__Pbtest__All3) SLUICE__PBTEST__ALL3__INIT;
	m.f_int32 = -1;
	assert_int_equal(pk_bytes(&m.base, out), 11);
	m.f_int32 = 0;
	m.f_enum = SLUICE__PBTEST__COLOR__COLOR_BLUE;
	assert_int_equal(pk_bytes(&m.base, out), 11);
	m.f_enum = 0;
	m.f_sint32 = -1;
	assert_int_equal(pk_bytes(&m.base, out), 2);
	assert_int_equal(out[1], 1);
	/* Field numbers past 15 and at the top take longer tags. */
	m.f_sint32 = 0;
	m.big_id = 1;
	m.big_str = "x";
	assert_int_equal(pk_bytes(&m.base, out), 2 + 1 + 5 + 1 + 1);
}

static void
test_proto2_fields_follow_has_flags_and_default_pointers(void **state)
{
	Sluice__Pbtest__All2 m = SLUICE__PBTEST__ALL2__INIT;
	uint8_t              out[64];

	(void) state;
	/* Defaults set by INIT are not written: has_ clear, strings at the
	 * default's own pointer. */
	assert_int_equal(pk_bytes(&m.base, out), 0);
	/* A has_ flag writes the value, even zero. */
	m.has_f_int32 = 1;
	assert_int_equal(pk_bytes(&m.base, out), 2);
	m.has_f_int32 = 0;
	/* A string equal to the default, at another address, is written. */
	char hello[] = "hello";
	m.f_string = hello;
	assert_int_equal(pk_bytes(&m.base, out), 7);
	m.f_string = NULL;
	assert_int_equal(pk_bytes(&m.base, out), 0);
	/* An empty proto2 string is written (it is not the default). */
	m.f_string2 = "";
	assert_int_equal(pk_bytes(&m.base, out), 3);
	/* Bytes with has_ set and no data: a zero length. */
	m.f_string2 = NULL;
	m.has_f_bytes2 = 1;
	assert_int_equal(pk_bytes(&m.base, out), 3);
	assert_int_equal(out[2], 0);
}

static void
test_a_required_field_is_always_written(void **state)
{
	Sluice__Pbtest__Req2 m = SLUICE__PBTEST__REQ2__INIT;
	uint8_t              out[16];

	(void) state;
	assert_int_equal(pk_bytes(&m.base, out), 2);
	assert_int_equal(out[0], 0x08);
	assert_int_equal(out[1], 0);
}

/* ---- random messages -------------------------------------------------- */

/* A value of some interesting size, often zero. */
static uint64_t
pk_value(void)
{
	switch (pbr_below(6)) {
	case 0:
	case 1:
		return (0);
	case 2:
		return (pbr_below(200));
	case 3:
		return ((uint64_t) -(int64_t) pbr_below(1000));
	case 4:
		return (pbr_next() >> pbr_below(64));
	default:
		return (1ull << pbr_below(64));
	}
}

static double
pk_double(void)
{
	static const double odd[] = { 0.0, -0.0, 1.5, -2.25, 1e300, NAN,
		INFINITY };

	if (pbr_below(2))
		return (odd[pbr_below(7)]);
	return ((double) (int64_t) pbr_next() / 1e6);
}

static char pk_text[8][300];

/* A string: NULL, empty, or up to 299 bytes (tags and lengths of two
 * bytes past 127). */
static char *
pk_string(int slot)
{
	size_t n;

	switch (pbr_below(4)) {
	case 0:
		return (NULL);
	case 1:
		return (&pk_text[slot][299]); /* "" */
	default:
		n = pbr_below(2) ? pbr_below(20) : pbr_below(299);
		for (size_t i = 0; i < n; i++)
			pk_text[slot][i] = (char) ('a' + pbr_below(26));
		pk_text[slot][n] = '\0';
		return (pk_text[slot]);
	}
}

static ProtobufCBinaryData
pk_bytes_value(int slot)
{
	ProtobufCBinaryData b = { 0, NULL };

	switch (pbr_below(3)) {
	case 0:
		break;
	case 1:
		b.data = (uint8_t *) pk_text[slot];
		break;
	default:
		b.len = pbr_below(300);
		b.data = (uint8_t *) pk_text[slot];
		for (size_t i = 0; i < b.len; i++)
			b.data[i] = (uint8_t) pbr_next();
	}
	return (b);
}

static int32_t pk_ints[4] = { 1, -1, 300, 0 };

static void
pk_random_all3(Sluice__Pbtest__All3 *m, Sluice__Pbtest__Inner3 *in,
    bool flat)
{
	*m = (Sluice__Pbtest__All3) SLUICE__PBTEST__ALL3__INIT;
	m->f_int32 = (int32_t) pk_value();
	m->f_sint32 = (int32_t) pk_value();
	m->f_sfixed32 = (int32_t) pk_value();
	m->f_int64 = (int64_t) pk_value();
	m->f_sint64 = (int64_t) pk_value();
	m->f_sfixed64 = (int64_t) pk_value();
	m->f_uint32 = (uint32_t) pk_value();
	m->f_fixed32 = (uint32_t) pk_value();
	m->f_uint64 = pk_value();
	m->f_fixed64 = pk_value();
	m->f_float = (float) pk_double();
	m->f_double = pk_double();
	m->f_bool = pbr_below(2);
	m->f_enum = (Sluice__Pbtest__Color) (int32_t) pk_value();
	m->f_string = pk_string(0);
	m->f_bytes = pk_bytes_value(1);
	m->big_id = pk_value();
	m->big_str = pk_string(2);
	if (flat)
		return;
	switch (pbr_below(4)) {
	case 0:
		m->n_r_int32 = 1 + pbr_below(4);
		m->r_int32 = pk_ints;
		break;
	case 1:
		*in = (Sluice__Pbtest__Inner3) SLUICE__PBTEST__INNER3__INIT;
		in->a = (int32_t) pk_value();
		m->sub = in;
		break;
	case 2:
		m->pick_case = SLUICE__PBTEST__ALL3__PICK_O_INT;
		m->o_int = (int32_t) pk_value();
		break;
	default:
		m->pick_case = SLUICE__PBTEST__ALL3__PICK_O_STR;
		m->o_str = "o";
		break;
	}
}

static void
pk_random_all2(Sluice__Pbtest__All2 *m)
{
	*m = (Sluice__Pbtest__All2) SLUICE__PBTEST__ALL2__INIT;
#define PK_OPT(f, v)                                  \
	do {                                          \
		if (pbr_below(2)) {                    \
			m->has_##f = 1;               \
			m->f = v;                     \
		}                                     \
	} while (0)
	PK_OPT(f_int32, (int32_t) pk_value());
	PK_OPT(f_sint32, (int32_t) pk_value());
	PK_OPT(f_sfixed32, (int32_t) pk_value());
	PK_OPT(f_int64, (int64_t) pk_value());
	PK_OPT(f_sint64, (int64_t) pk_value());
	PK_OPT(f_sfixed64, (int64_t) pk_value());
	PK_OPT(f_uint32, (uint32_t) pk_value());
	PK_OPT(f_fixed32, (uint32_t) pk_value());
	PK_OPT(f_uint64, pk_value());
	PK_OPT(f_fixed64, pk_value());
	PK_OPT(f_float, (float) pk_double());
	PK_OPT(f_double, pk_double());
	PK_OPT(f_bool, pbr_below(2));
	PK_OPT(f_enum, (Sluice__Pbtest__Shade) (int32_t) pk_value());
	PK_OPT(f_bytes, pk_bytes_value(3));
	PK_OPT(f_bytes2, pk_bytes_value(4));
	PK_OPT(big_id, pk_value());
#undef PK_OPT
	/* Strings: the default's pointer (INIT), NULL, or another. */
	if (pbr_below(3) != 0)
		m->f_string = pk_string(5);
	m->f_string2 = pk_string(6);
}

static void
test_random_messages_pack_as_protobuf_c_packs_them(void **state)
{
	Sluice__Pbtest__All3   m3;
	Sluice__Pbtest__All2   m2;
	Sluice__Pbtest__Inner3 in;
	const char            *s = getenv("SLUICE_TEST_SCALE");
	double                 scale = s != NULL && atof(s) > 0 ? atof(s) : 1;
	size_t                 n = (size_t) (100000 * scale), bytes = 0;

	(void) state;
	for (size_t i = 0; i < n; i++) {
		switch (i % 3) {
		case 0:
			pk_random_all3(&m3, &in, true);
			bytes += pk_check(&m3.base);
			break;
		case 1:
			pk_random_all3(&m3, &in, false);
			bytes += pk_check(&m3.base);
			break;
		default:
			pk_random_all2(&m2);
			bytes += pk_check(&m2.base);
			break;
		}
	}
	print_message("%zu messages, %zu bytes, identical\n", n, bytes);
}

/* A message decoded with fields its type does not know keeps them, and
 * protobuf-c writes them back: sl_pb_pack hands it over. */
static void
test_unknown_fields_are_written_back(void **state)
{
	Sluice__Pbtest__All3 m = SLUICE__PBTEST__ALL3__INIT;
	uint8_t              buf[64], out[64];
	size_t               n;

	(void) state;
	m.f_int32 = 5;
	m.f_string = "kept";
	m.f_double = 2.5;
	n = protobuf_c_message_pack(&m.base, buf);
	/* Inner3 knows fields 1 and 2 only: 15 and 12 are unknown to it. */
	ProtobufCMessage *u = protobuf_c_message_unpack(
	    &sluice__pbtest__inner3__descriptor, NULL, n, buf);
	assert_non_null(u);
	assert_int_equal(u->n_unknown_fields, 2);
	assert_int_equal(pk_bytes(u, out), n);
	protobuf_c_message_free_unpacked(u, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_record_packs_as_protobuf_c_packs_it),
		cmocka_unit_test(
		    test_proto3_zero_fields_are_left_out_as_protobuf_c_does),
		cmocka_unit_test(
		    test_proto2_fields_follow_has_flags_and_default_pointers),
		cmocka_unit_test(test_a_required_field_is_always_written),
		cmocka_unit_test(
		    test_random_messages_pack_as_protobuf_c_packs_them),
		cmocka_unit_test(test_unknown_fields_are_written_back),
	};

	pbr_seed(0x9ac4ed5eedull);
	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
