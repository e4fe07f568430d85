/*
 * fuzz_frame.c — libFuzzer target for the link frame decoder.
 *
 * Every input is decoded twice, with the default limits and with tight
 * ones (so that the limit paths are reached by small inputs).  Whatever
 * the bytes, the decoder must return a known code with a message; a frame
 * it accepts must pass sli_frame_check, encode again, decode again to the
 * same bytes, and be comparable with sli_hello_match.  Any other outcome
 * aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/batch.h"
#include "link/frame.h"
#include "sluice/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_REQUIRE(cond)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "fuzz_frame: %s:%d: %s\n",         \
			    __FILE__, __LINE__, #cond);                    \
			abort();                                           \
		}                                                          \
	} while (0)

static const sli_frame_limits fz_tight = {
	.max_frame = 2048,
	.max_payload = 64,
	.max_batch = 8,
	.max_name = 16,
	.max_text = 32,
};

static void
fz_one(const uint8_t *data, size_t size, const sli_frame_limits *lim)
{
	char err[SLI_FRAME_ERRSZ];
	sli_frame *f, *g;
	uint8_t *out, *out2;
	size_t n, len, len2;
	int rv;

	err[0] = '\0';
	rv = sli_frame_decode(data, size, lim, &f, err, sizeof(err));
	if (rv != 0) {
		FZ_REQUIRE(f == NULL);
		FZ_REQUIRE(rv == SL_EPROTO || rv == SL_ETOOBIG ||
		    rv == SL_EVERSION);
		FZ_REQUIRE(err[0] != '\0');
		FZ_REQUIRE(memchr(err, '\0', sizeof(err)) != NULL);
		return;
	}
	FZ_REQUIRE(f != NULL);
	FZ_REQUIRE(sli_frame_check(f, lim, NULL, 0) == 0);
	FZ_REQUIRE(strcmp(sli_frame_kind_name(f), "none") != 0);

	/*
	 * The canonical re-encoding is no larger than the input, except
	 * that a packed field (Batch.lineage_seq_delta) sent unpacked, as
	 * protobuf allows, comes back packed: one length prefix more (at
	 * most 5 bytes under max_frame), and the Batch's own length prefix
	 * may grow with it.  At the frame limit the encoder then refuses.
	 */
	n = sli_frame_size(f);
	FZ_REQUIRE(n <= size + 10);
	out = malloc(n + 1);
	FZ_REQUIRE(out != NULL);
	if (n > (lim != NULL ? lim : &sli_frame_limits_default)->max_frame) {
		FZ_REQUIRE(sli_frame_encode(f, lim, out, n, &len, err,
		    sizeof(err)) == SL_ETOOBIG);
		free(out);
		sli_frame_free(f);
		return;
	}
	FZ_REQUIRE(sli_frame_encode(f, lim, out, n, &len, err,
	    sizeof(err)) == 0);
	FZ_REQUIRE(len == n);

	/* The re-encoding is canonical: it decodes to itself. */
	FZ_REQUIRE(sli_frame_decode(out, len, lim, &g, err, sizeof(err)) == 0);
	FZ_REQUIRE(g->kind_case == f->kind_case);
	out2 = malloc(n + 1);
	FZ_REQUIRE(out2 != NULL);
	FZ_REQUIRE(sli_frame_encode(g, lim, out2, n, &len2, NULL, 0) == 0);
	FZ_REQUIRE(len2 == len && memcmp(out, out2, len) == 0);

	if (f->kind_case == SLUICE__LINK__FRAME__KIND_HELLO) {
		rv = sli_hello_match(f->hello, g->hello, err, sizeof(err));
		/* Same hello twice: same role, so a role mismatch. */
		FZ_REQUIRE(rv == SL_EPROTO);
	}
	free(out);
	free(out2);
	sli_frame_free(g);
	sli_frame_free(f);
}

/* The batch fast path must accept only what the full decoder accepts,
 * with the same messages, and write what the full decoder reads back. */
static void
fz_batch(const uint8_t *data, size_t size, const sli_frame_limits *lim)
{
	sli_bmsg  *v = NULL;
	size_t     cap = 0, n = 0;
	sli_frame *f = NULL;

	if (sli_batch_view(data, size, lim, &v, &cap, &n) == 0) {
		FZ_REQUIRE(sli_frame_decode(data, size, lim, &f, NULL, 0) == 0);
		FZ_REQUIRE(f->kind_case == SLUICE__LINK__FRAME__KIND_BATCH);
		FZ_REQUIRE(f->batch->n_payloads == n);
		uint64_t lseq = 0;
		for (size_t i = 0; i < n; i++) {
			const ProtobufCBinaryData *p = &f->batch->payloads[i];
			FZ_REQUIRE(f->batch->first_seq + i == v[i].seq);
			FZ_REQUIRE(p->len == v[i].len);
			FZ_REQUIRE(v[i].len == 0 || memcmp(p->data,
			    v[i].payload, v[i].len) == 0);
			FZ_REQUIRE(f->batch->lineage_source == v[i].lin_src);
			if (v[i].lin_src != 0) {
				lseq += (uint64_t)
				    f->batch->lineage_seq_delta[i];
				FZ_REQUIRE(lseq == v[i].lin_seq);
			}
		}
		/* And what the fast writer makes of it is the same bytes. */
		sli_batch_plan plan;
		FZ_REQUIRE(sli_batch_size(v, n, &plan) == size);
		uint8_t *out = malloc(size);
		FZ_REQUIRE(out != NULL);
		FZ_REQUIRE(sli_batch_write(v, n, &plan, out) == size);
		FZ_REQUIRE(memcmp(out, data, size) == 0);
		free(out);
		sli_frame_free(f);
	}
	free(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_one(data, size, NULL);
	fz_one(data, size, &fz_tight);
	fz_batch(data, size, NULL);
	fz_batch(data, size, &fz_tight);
	return (0);
}
