/*
 * test_seen.c — the seen-seq sets behind lineage dedup (link/seen.h):
 * exact answers inside the horizon, "forgotten" (never "seen") behind
 * it, bits kept across regrowth and slides, bounded size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"
#include "link/seen.h"

static void
test_contiguous_seqs_stay_in_a_small_ring(void **state)
{
	sli_seen s;

	(void) state;
	sli_seen_init(&s, (size_t) 1 << 24);
	for (uint64_t q = 1; q <= 100000; q++)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_NEW);
	assert_int_equal(sli_seen_add(&s, 1), SLI_SEEN_DUP);
	assert_int_equal(sli_seen_add(&s, 99999), SLI_SEEN_DUP);
	assert_int_equal(sli_seen_add(&s, 100000), SLI_SEEN_DUP);
	assert_true(s.low == 100000);
	assert_true(s.nbits <= 4096); /* in order: never grows */
	sli_seen_fini(&s);
}

static void
test_a_gap_grows_the_ring_and_keeps_every_bit(void **state)
{
	sli_seen s;

	(void) state;
	sli_seen_init(&s, (size_t) 1 << 20);
	for (uint64_t q = 1; q <= 1000; q++)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_NEW);
	/* 1001 missing: 1002..50000 make the ring grow from 4096 to 65536,
	 * rehashing bits that had wrapped around. */
	for (uint64_t q = 1002; q <= 50000; q++)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_NEW);
	assert_true(s.nbits == 65536);
	for (uint64_t q = 1002; q <= 50000; q += 13)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_DUP);
	assert_int_equal(sli_seen_add(&s, 1001), SLI_SEEN_NEW);
	assert_true(s.low == 50000);
	assert_int_equal(sli_seen_add(&s, 50001), SLI_SEEN_NEW);
	sli_seen_fini(&s);
}

static void
test_behind_the_horizon_is_forgotten_never_seen(void **state)
{
	sli_seen s;

	(void) state;
	sli_seen_init(&s, 64);
	/* 1 missing: 2..200 slide the 64-seq ring to [137, 200]. */
	for (uint64_t q = 2; q <= 200; q++)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_NEW);
	assert_true(s.nbits == 64);
	assert_int_equal(sli_seen_add(&s, 150), SLI_SEEN_DUP);
	assert_int_equal(sli_seen_add(&s, 137), SLI_SEEN_DUP);
	/* Behind the ring: 1 was never seen, 100 was; both unknown now. */
	assert_int_equal(sli_seen_add(&s, 1), SLI_SEEN_FORGOTTEN);
	assert_int_equal(sli_seen_add(&s, 100), SLI_SEEN_FORGOTTEN);
	assert_int_equal(sli_seen_add(&s, 136), SLI_SEEN_FORGOTTEN);
	assert_int_equal(sli_seen_add(&s, 201), SLI_SEEN_NEW);
	sli_seen_fini(&s);
}

static void
test_a_far_jump_clears_the_ring(void **state)
{
	sli_seen s;
	uint64_t far = (uint64_t) 1 << 40;

	(void) state;
	sli_seen_init(&s, 1024);
	for (uint64_t q = 2; q <= 500; q++)
		assert_int_equal(sli_seen_add(&s, q), SLI_SEEN_NEW);
	assert_int_equal(sli_seen_add(&s, far), SLI_SEEN_NEW);
	assert_int_equal(sli_seen_add(&s, far), SLI_SEEN_DUP);
	assert_int_equal(sli_seen_add(&s, far - 1), SLI_SEEN_NEW);
	assert_int_equal(sli_seen_add(&s, 300), SLI_SEEN_FORGOTTEN);
	assert_int_equal(sli_seen_add(&s, far - 1024), SLI_SEEN_FORGOTTEN);
	assert_true(s.nbits == 1024);
	sli_seen_fini(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contiguous_seqs_stay_in_a_small_ring),
		cmocka_unit_test(test_a_gap_grows_the_ring_and_keeps_every_bit),
		cmocka_unit_test(test_behind_the_horizon_is_forgotten_never_seen),
		cmocka_unit_test(test_a_far_jump_clears_the_ring),
	};

	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
