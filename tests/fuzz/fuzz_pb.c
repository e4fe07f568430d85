/*
 * fuzz_pb.c — libFuzzer target: sl_pb_unpack against protobuf-c.
 *
 * Every input is decoded as each test message type (sluice.example.Record
 * and the test-only messages of tests/pb: every scalar type, proto2
 * defaults and has_ flags, and the shapes the fast path leaves to
 * protobuf-c) by sl_pb_unpack and by protobuf_c_message_unpack.  Both must
 * return NULL, or messages that are the same field by field
 * (tests/pb/pbcmp.h), and each allocator must get back everything it gave
 * once the message is freed.  A third decode fails one allocation early on
 * and must still free all it took.  Anything else aborts, which libFuzzer
 * reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../pb/pbcmp.h"
#include "pbtest2.pb-c.h"
#include "pbtest3.pb-c.h"
#include "sluice/example.pb-c.h"
#include "sluice/pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_REQUIRE(cond)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "fuzz_pb: %s:%d: %s\n", __FILE__,  \
			    __LINE__, #cond);                              \
			abort();                                           \
		}                                                          \
	} while (0)

/* An allocator that counts, and fails the fail_at'th call (0: none). */
struct fz_count {
	size_t calls;   /* alloc calls */
	size_t live;    /* blocks not yet freed */
	size_t fail_at; /* the call to fail, or 0 */
};

static void *
fz_alloc(void *data, size_t size)
{
	struct fz_count *c = data;
	void            *p;

	if (++c->calls == c->fail_at)
		return (NULL);
	if ((p = malloc(size)) != NULL)
		c->live++;
	return (p);
}

static void
fz_free(void *data, void *p)
{
	struct fz_count *c = data;

	FZ_REQUIRE(c->live > 0);
	c->live--;
	free(p);
}

static const ProtobufCMessageDescriptor *const fz_descs[] = {
	&sluice__example__record__descriptor,
	&sluice__pbtest__all3__descriptor,
	&sluice__pbtest__all2__descriptor,
	&sluice__pbtest__req2__descriptor,
	&sluice__pbtest__inner3__descriptor,
};

static void
fz_one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	struct fz_count    ca = { 0 }, cb = { 0 }, cc = { 0 };
	ProtobufCAllocator aa = { fz_alloc, fz_free, &ca };
	ProtobufCAllocator ab = { fz_alloc, fz_free, &cb };
	ProtobufCAllocator ac = { fz_alloc, fz_free, &cc };
	ProtobufCMessage  *a, *b, *c;
	const char        *why;

	a = sl_pb_unpack(d, &aa, size, data);
	b = protobuf_c_message_unpack(d, &ab, size, data);
	if ((a == NULL) != (b == NULL)) {
		fprintf(stderr, "fuzz_pb: %s: sl_pb_unpack %s, protobuf-c %s\n",
		    d->name, a == NULL ? "NULL" : "a message",
		    b == NULL ? "NULL" : "a message");
		abort();
	}
	if (a != NULL && (why = pbcmp(a, b)) != NULL) {
		fprintf(stderr, "fuzz_pb: %s\n", why);
		abort();
	}
	protobuf_c_message_free_unpacked(a, &aa);
	protobuf_c_message_free_unpacked(b, &ab);
	FZ_REQUIRE(ca.live == 0 && cb.live == 0);

	/* An allocation failing: NULL or a message, all freed either way. */
	cc.fail_at = 1 + size % 4;
	c = sl_pb_unpack(d, &ac, size, data);
	protobuf_c_message_free_unpacked(c, &ac);
	FZ_REQUIRE(cc.live == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(fz_descs) / sizeof(fz_descs[0]); i++)
		fz_one(fz_descs[i], data, size);
	return (0);
}
