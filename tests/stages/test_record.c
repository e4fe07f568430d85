/*
 * test_record.c — the Record payload helpers every stage program uses
 * (stages/common): pack to a size, decode, and the map's remap, which
 * sizes its output without protobuf-c's sizing pass and must stay
 * within that bound for any decodable input, canonical or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../testutil.h"
#include "../../stages/common/stage.h"
#include "sluice/example.pb-c.h"

/* Decodes data with protobuf-c itself (not the helpers under test). */
static Sluice__Example__Record *
decode(const void *data, size_t len)
{
	Sluice__Example__Record *r =
	    sluice__example__record__unpack(NULL, len, data);

	assert_non_null(r);
	return (r);
}

static void
test_pack_hits_the_size_and_unpack_reads_it_back(void **state)
{
	static const size_t sizes[] = { 16, 64, 127, 128, 129, 200, 1000,
		4096 };

	(void) state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		sl_msg    m;
		stage_rec r;

		assert_int_equal(stage_rec_pack(&m, 1000 + i, -5, sizes[i],
		    "n"), 0);
		/* Exact, or one byte over where a varint boundary makes
		 * the size unreachable. */
		assert_true(m.len == sizes[i] || m.len == sizes[i] + 1);
		assert_int_equal(stage_rec_unpack(m.data, m.len, &r), 0);
		assert_int_equal(r.id, 1000 + i);
		assert_int_equal(r.time_ns, -5);
		sl_msg_done(&m);
	}
}

/* Remaps data and checks the result: same id, time and body, the new
 * note. */
static void
check_remap(const uint8_t *data, size_t len, const char *note)
{
	Sluice__Example__Record *in = decode(data, len), *out;
	sl_msg                   res;

	assert_int_equal(stage_rec_remap(data, len, note, &res), 0);
	out = decode(res.data, res.len);
	assert_int_equal(out->id, in->id);
	assert_int_equal(out->time_ns, in->time_ns);
	assert_int_equal(out->body.len, in->body.len);
	if (in->body.len > 0)
		assert_memory_equal(out->body.data, in->body.data,
		    in->body.len);
	assert_string_equal(out->note, note);
	assert_true(res.len <= len + strlen(note) + 11);
	sluice__example__record__free_unpacked(in, NULL);
	sluice__example__record__free_unpacked(out, NULL);
	sl_msg_done(&res);
}

static void
test_remap_replaces_the_note_and_keeps_the_rest(void **state)
{
	char   longnote[400];
	sl_msg m;

	(void) state;
	memset(longnote, 'x', sizeof(longnote) - 1);
	longnote[sizeof(longnote) - 1] = '\0';
	assert_int_equal(stage_rec_pack(&m, 7, 123456789, 64, "short"), 0);
	check_remap(m.data, m.len, "mapped");
	/* A note that needs a two-byte length, replacing a short one. */
	check_remap(m.data, m.len, longnote);
	sl_msg_done(&m);
	/* And the other way round. */
	assert_int_equal(stage_rec_pack(&m, 8, -1, 900, longnote), 0);
	check_remap(m.data, m.len, "");
	check_remap(m.data, m.len, "mapped");
	sl_msg_done(&m);
	/* A body larger than the decode arena: the part that spills to
	 * malloc must still be freed (valgrind and ASan watch). */
	assert_int_equal(stage_rec_pack(&m, 9, 1, 20000, "big"), 0);
	check_remap(m.data, m.len, "mapped");
	stage_rec r;
	assert_int_equal(stage_rec_unpack(m.data, m.len, &r), 0);
	/* id, time_ns: 2 bytes each; note: 5; body: tag, 3-byte length. */
	assert_int_equal(r.body, m.len - 2 - 2 - 5 - 4);
	sl_msg_done(&m);
}

static void
test_remap_of_non_canonical_encodings_stays_in_bounds(void **state)
{
	/* id = 5 as a padded 10-byte varint, id repeated (the last one
	 * wins), time_ns = -1 (10 bytes), an empty note, an unknown
	 * field 9 (varint) that must be kept. */
	static const uint8_t odd[] = {
		0x08, 0x85, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		0x00,
		0x08, 0x06,
		0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x01,
		0x22, 0x00,
		0x48, 0x2a,
	};
	/* Nothing but the empty message. */
	static const uint8_t empty[1] = { 0 };

	(void) state;
	check_remap(odd, sizeof(odd), "mapped");
	check_remap(empty, 0, "mapped");
}

static void
test_undecodable_payloads_are_refused(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0x7f, 0x01 };
	stage_rec r;
	sl_msg    res;

	(void) state;
	assert_int_equal(stage_rec_unpack(junk, sizeof(junk), &r),
	    SL_EPROTO);
	assert_int_equal(stage_rec_remap(junk, sizeof(junk), "m", &res),
	    SL_EPROTO);
	assert_null(res.data);
}

/* The sum of the ids 1..n that the sink's --expect compares with its
 * running sum, which wraps modulo 2^64: right past n = 2^32, where
 * n(n+1)/2 written as such wraps before the halving. */
static void
test_id_sum_wraps_as_the_running_sum_does(void **state)
{
	const uint64_t ns[] = { 0, 1, 2, 3, 1000000, UINT64_C(4294967295),
		UINT64_C(4294967296), UINT64_C(6000000000),
		(UINT64_C(1) << 34) - 1, UINT64_MAX - 1 };
	uint64_t run = 0;

	(void) state;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		__extension__ typedef unsigned __int128 u128;
		u128 n = ns[i];

		assert_true(stage_id_sum(ns[i]) ==
		    (uint64_t) (n * (n + 1) / 2));
	}
	for (uint64_t n = 1; n <= 100000; n++) {
		run += n;
		assert_true(stage_id_sum(n) == run);
	}
	/* the formula the sink used before: wrong there */
	assert_true(stage_id_sum(UINT64_C(4294967296)) !=
	    UINT64_C(4294967296) * (UINT64_C(4294967296) + 1) / 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_pack_hits_the_size_and_unpack_reads_it_back),
		cmocka_unit_test(test_remap_replaces_the_note_and_keeps_the_rest),
		cmocka_unit_test(
		    test_remap_of_non_canonical_encodings_stays_in_bounds),
		cmocka_unit_test(test_undecodable_payloads_are_refused),
		cmocka_unit_test(test_id_sum_wraps_as_the_running_sum_does),
	};

	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
