/*
 * bench_pb.c — decoding and encoding a 64-byte sluice.example.Record:
 * protobuf-c's protobuf_c_message_unpack against sl_pb_unpack, and its
 * get_packed_size + pack against sl_pb_packed_size + sl_pb_pack, in the
 * same run.
 *
 * Usage: bench_pb [DECODES [malloc|arena]]
 *	DECODES per round (default 1000000); malloc or arena: only that
 *	allocator (both by default)
 *
 * Each decoder decodes the same record (as the stages make them: an id, a
 * source timestamp, a body, a short note; packed by protobuf-c) in
 * batches of 64, timing only the decoding; the messages of a batch are
 * freed after its clock stops.  Two allocators: malloc (allocator NULL)
 * and a bump arena reset before each batch (what the stages use, so the
 * decoder's own work shows).  Five rounds alternate between the decoders;
 * the best round of each counts (other load only ever adds time).
 * Prints a table and one line per number:
 *
 *	RESULT pb <allocator>_<decoder> <ns per decode>
 *	RESULT pb <allocator>_ratio <protobuf-c ns / sl_pb_unpack ns>
 *	RESULT pb pack_protobuf_c <ns per size + pack>
 *	RESULT pb pack_sl_pb_pack <ns per size + pack>
 *	RESULT pb pack_ratio <protobuf-c ns / sl_pb_pack ns>
 *
 * Encoding sizes then packs the record into a buffer (as a stage does
 * when it cannot bound the size), timed over the same batches and rounds.
 *
 * Instruction counts: run it under callgrind with few decodes,
 *	valgrind --tool=callgrind bench_pb 20000
 * and divide the inclusive cost of protobuf_c_message_unpack and of
 * sl_pb_unpack by their call counts (callgrind_annotate --inclusive=yes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/example.pb-c.h"
#include "sluice/pb.h"

#define BATCH  64
#define ROUNDS 5

/* A bump allocator over one buffer, reset per batch; free is a no-op. */
struct arena {
	uint8_t buf[BATCH * 512]; /* room for a batch of records */
	size_t  used;             /* bytes handed out */
};

static void *
arena_alloc(void *data, size_t size)
{
	struct arena *a = data;
	size_t        at = (a->used + 15) & ~(size_t) 15;

	if (at + size > sizeof(a->buf))
		return (NULL);
	a->used = at + size;
	return (a->buf + at);
}

static void
arena_free(void *data, void *p)
{
	(void) data;
	(void) p;
}

typedef ProtobufCMessage *(*unpack_fn)(const ProtobufCMessageDescriptor *,
    ProtobufCAllocator *, size_t, const uint8_t *);

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/*
 * One round: n decodes (rounded up to batches) of rec with fn, allocator
 * al (NULL: malloc; else the arena behind it, reset per batch).  Returns
 * the ns per decode spent decoding.
 */
static double
round_ns(unpack_fn fn, ProtobufCAllocator *al, struct arena *ar,
    const uint8_t *rec, size_t len, long n)
{
	ProtobufCMessage *m[BATCH];
	int64_t           spent = 0;
	long              done = 0;

	while (done < n) {
		int64_t t0;

		if (ar != NULL)
			ar->used = 0;
		t0 = now_ns();
		for (int i = 0; i < BATCH; i++)
			m[i] = fn(&sluice__example__record__descriptor, al, len,
			    rec);
		spent += now_ns() - t0;
		for (int i = 0; i < BATCH; i++) {
			if (m[i] == NULL) {
				fprintf(stderr, "bench_pb: decode failed\n");
				exit(1);
			}
			if (ar == NULL)
				protobuf_c_message_free_unpacked(m[i], al);
		}
		done += BATCH;
	}
	return ((double) spent / (double) done);
}

/* One round of n encodes of m into a buffer, sized first: ns per
 * encode.  sl selects sl_pb_*; else protobuf-c. */
static double
round_pack_ns(int sl, const ProtobufCMessage *m, long n)
{
	static uint8_t out[BATCH][128];
	int64_t        spent = 0;
	long           done = 0;
	size_t         total = 0;

	while (done < n) {
		int64_t t0 = now_ns();

		for (int i = 0; i < BATCH; i++) {
			size_t len = sl ? sl_pb_packed_size(m) :
			    protobuf_c_message_get_packed_size(m);
			if (len > sizeof(out[i]))
				exit(1);
			total += sl ? sl_pb_pack(m, out[i]) :
			    protobuf_c_message_pack(m, out[i]);
		}
		spent += now_ns() - t0;
		done += BATCH;
	}
	if (total == 0) {
		fprintf(stderr, "bench_pb: nothing packed\n");
		exit(1);
	}
	return ((double) spent / (double) done);
}

int
main(int argc, char **argv)
{
	static uint8_t          body[39];
	static struct arena     ar;
	ProtobufCAllocator      arena_al = { .alloc = arena_alloc,
		.free = arena_free, .allocator_data = &ar };
	Sluice__Example__Record in = SLUICE__EXAMPLE__RECORD__INIT;
	Sluice__Example__Record *a, *b;
	uint8_t                 rec[128];
	size_t                  len;
	long                    n = argc > 1 ? atol(argv[1]) : 1000000;
	const char             *only = argc > 2 ? argv[2] : NULL;
	double                  best[2][2], pack[2] = { 1e300, 1e300 };
	uint8_t                 rec2[128];

	if (n < BATCH)
		n = BATCH;
	memset(body, 'b', sizeof(body));
	in.id = 123456789;
	in.time_ns = 1764338400123456789;
	in.body.data = body;
	in.body.len = sizeof(body);
	in.note = "mapped";
	len = sluice__example__record__pack(&in, rec);

	/* Both decode it alike (tests/pb checks this at length). */
	a = (Sluice__Example__Record *) protobuf_c_message_unpack(
	    &sluice__example__record__descriptor, NULL, len, rec);
	b = (Sluice__Example__Record *) sl_pb_unpack(
	    &sluice__example__record__descriptor, NULL, len, rec);
	if (a == NULL || b == NULL || a->id != b->id ||
	    a->time_ns != b->time_ns || a->body.len != b->body.len ||
	    strcmp(a->note, b->note) != 0) {
		fprintf(stderr, "bench_pb: the decoders disagree\n");
		return (1);
	}
	protobuf_c_message_free_unpacked(&a->base, NULL);
	protobuf_c_message_free_unpacked(&b->base, NULL);
	if (sl_pb_pack(&in.base, rec2) != len || memcmp(rec, rec2, len) != 0) {
		fprintf(stderr, "bench_pb: the encoders disagree\n");
		return (1);
	}

	for (int al = 0; al < 2; al++)
		for (int d = 0; d < 2; d++)
			best[al][d] = 1e300;
	for (int r = 0; r < ROUNDS; r++) {
		for (int al = 0; al < 2; al++) {
			if (only != NULL && strcmp(only, al == 0 ? "malloc" :
			    "arena") != 0)
				continue;
			for (int d = 0; d < 2; d++) {
				double ns = round_ns(d == 0 ?
				    protobuf_c_message_unpack : sl_pb_unpack,
				    al == 0 ? NULL : &arena_al,
				    al == 0 ? NULL : &ar, rec, len, n);
				if (ns < best[al][d])
					best[al][d] = ns;
			}
		}
		for (int d = 0; d < 2; d++) {
			double ns = round_pack_ns(d, &in.base, n);
			if (ns < pack[d])
				pack[d] = ns;
		}
	}

	printf("%zu-byte sluice.example.Record, best of %d rounds of %ld "
	    "decodes\n\n", len, ROUNDS, n);
	printf("| allocator | protobuf-c | sl_pb_unpack | protobuf-c / "
	    "sl_pb_unpack |\n|---|---:|---:|---:|\n");
	for (int al = 0; al < 2; al++)
		if (best[al][0] < 1e300)
			printf("| %s | %.1f ns | %.1f ns | %.2fx |\n",
			    al == 0 ? "malloc" : "arena", best[al][0],
			    best[al][1], best[al][0] / best[al][1]);
	printf("\n| encode | protobuf-c | sl_pb_pack | protobuf-c / sl_pb_pack "
	    "|\n|---|---:|---:|---:|\n| size + pack | %.1f ns | %.1f ns | "
	    "%.2fx |\n\n", pack[0], pack[1], pack[0] / pack[1]);
	for (int al = 0; al < 2; al++) {
		const char *an = al == 0 ? "malloc" : "arena";

		if (best[al][0] >= 1e300)
			continue;
		printf("RESULT pb %s_protobuf_c %.2f\n", an, best[al][0]);
		printf("RESULT pb %s_sl_pb_unpack %.2f\n", an, best[al][1]);
		printf("RESULT pb %s_ratio %.2f\n", an,
		    best[al][0] / best[al][1]);
	}
	printf("RESULT pb pack_protobuf_c %.2f\n", pack[0]);
	printf("RESULT pb pack_sl_pb_pack %.2f\n", pack[1]);
	printf("RESULT pb pack_ratio %.2f\n", pack[0] / pack[1]);
	return (0);
}
