/*
 * test_payload.c — message payloads (link/payload.h, sl_msg_alloc):
 * payloads carved from one slab never overlap and stay intact, are
 * aligned, and every slab is freed once its thread moved on (or exited)
 * and every message carved from it was released, whatever the order and
 * whichever thread releases them.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"
#include "link/payload.h"
#include "sluice/error.h"
#include "sluice/link.h"

/* Fills m's payload with a pattern derived from tag. */
static void
fill(sl_msg *m, uint32_t tag)
{
	unsigned char *p = m->data;

	for (size_t i = 0; i < m->len; i++)
		p[i] = (unsigned char) (tag * 31 + i);
}

static void
check(const sl_msg *m, uint32_t tag)
{
	const unsigned char *p = m->data;

	for (size_t i = 0; i < m->len; i++)
		if (p[i] != (unsigned char) (tag * 31 + i))
			fail_msg("payload %u byte %zu overwritten", tag, i);
}

/* Size of the i-th payload: small ones mostly, some empty, some too
 * large to share a slab. */
static size_t
size_of(uint32_t i)
{
	if (i % 97 == 0)
		return (0);
	if (i % 101 == 0)
		return (5000 + i % 3000);
	return (1 + (i * 7919) % 300);
}

/* A thread that allocates n payloads and exits without releasing them:
 * its slab must be retired at exit. */
typedef struct alloc_job {
	sl_msg  *m;
	uint32_t n;
} alloc_job;

static void *
alloc_thread(void *arg)
{
	alloc_job *j = arg;

	for (uint32_t i = 0; i < j->n; i++) {
		if (sl_msg_alloc(&j->m[i], size_of(i)) != 0)
			abort();
		fill(&j->m[i], i);
	}
	return (NULL);
}

static void *
release_thread(void *arg)
{
	alloc_job *j = arg;

	for (uint32_t i = 0; i < j->n; i++) {
		check(&j->m[i], i);
		sl_msg_done(&j->m[i]);
	}
	return (NULL);
}

static void
test_payloads_are_disjoint_aligned_and_intact(void **state)
{
	enum { N = 20000 };
	sl_msg *m = calloc(N, sizeof(*m));
	long    live0 = sli_payload_live();

	(void) state;
	assert_non_null(m);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(sl_msg_alloc(&m[i], size_of(i)), 0);
		assert_int_equal(m[i].len, size_of(i));
		assert_int_equal(m[i].lin_src, 0);
		assert_null(m[i].parent);
		if (m[i].len == 0) {
			assert_null(m[i].data);
			continue;
		}
		assert_non_null(m[i].data);
		assert_int_equal((uintptr_t) m[i].data % 8, 0);
		fill(&m[i], i);
	}
	/* Every later allocation left every earlier payload alone. */
	for (uint32_t i = 0; i < N; i++)
		check(&m[i], i);
	/* Release in a scrambled order. */
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = (uint32_t) ((k * 7919u) % N);
		sl_msg_done(&m[i]);
		assert_null(m[i].data);
	}
	/* At most the slab this thread still carves from is left. */
	assert_true(sli_payload_live() - live0 <= 1);
	free(m);
}

static void
test_slabs_are_freed_after_threads_exit_and_others_release(void **state)
{
	enum { N = 30000, T = 4 };
	alloc_job j[T];
	pthread_t th[T];
	long      live0 = sli_payload_live();

	(void) state;
	/* Allocate on threads that then exit... */
	for (int t = 0; t < T; t++) {
		j[t].n = N;
		j[t].m = calloc(N, sizeof(sl_msg));
		assert_non_null(j[t].m);
		assert_int_equal(pthread_create(&th[t], NULL, alloc_thread,
		    &j[t]), 0);
	}
	for (int t = 0; t < T; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	assert_true(sli_payload_live() > live0);
	/* ...and release on other threads, all at once. */
	for (int t = 0; t < T; t++)
		assert_int_equal(pthread_create(&th[t], NULL, release_thread,
		    &j[t]), 0);
	for (int t = 0; t < T; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		free(j[t].m);
	}
	assert_int_equal(sli_payload_live(), live0);
}

static void
test_msg_init_copies(void **state)
{
	static const char text[] = "sixty-four bytes or so of payload";
	sl_msg            m;

	(void) state;
	assert_int_equal(sl_msg_init(&m, text, sizeof(text)), 0);
	assert_int_equal(m.len, sizeof(text));
	assert_ptr_not_equal(m.data, text);
	assert_memory_equal(m.data, text, sizeof(text));
	sl_msg_done(&m);
	assert_int_equal(sl_msg_init(&m, NULL, 0), 0);
	assert_null(m.data);
	assert_int_equal(m.len, 0);
	sl_msg_done(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payloads_are_disjoint_aligned_and_intact),
		cmocka_unit_test(
		    test_slabs_are_freed_after_threads_exit_and_others_release),
		cmocka_unit_test(test_msg_init_copies),
	};

	test_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
