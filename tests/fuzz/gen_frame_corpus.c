/*
 * gen_frame_corpus.c — writes the seed corpus of fuzz_frame: one small
 * file per frame kind (and a few variants), each a valid encoded frame.
 *
 * Usage: gen_frame_corpus DIR   (tests/fuzz/corpus/frame in the repo)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/frame.h"
#include "sluice/error.h"
#include "sluice/example.pb-c.h"

static const char *gen_dir;

static void
gen_write(const char *name, const sli_frame *f)
{
	char err[SLI_FRAME_ERRSZ], path[4096];
	uint8_t buf[4096];
	size_t len;
	FILE *fp;
	int rv;

	rv = sli_frame_encode(f, NULL, buf, sizeof(buf), &len, err,
	    sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%s: %s: %s\n", name, sl_errname(rv), err);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", gen_dir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	Sluice__Example__Record rec = SLUICE__EXAMPLE__RECORD__INIT;
	sli_frame f = SLUICE__LINK__FRAME__INIT;
	sli_hello h = SLUICE__LINK__HELLO__INIT;
	sli_batch b = SLUICE__LINK__BATCH__INIT;
	ProtobufCBinaryData pl[3] = { { 0, NULL }, { 0, NULL }, { 0, NULL } };
	int64_t dl[3] = { 7, 1, -3 };
	sli_credit c = SLUICE__LINK__CREDIT__INIT;
	sli_ack a = SLUICE__LINK__ACK__INIT;
	sli_close cl = SLUICE__LINK__CLOSE__INIT;
	sli_cancel ca = SLUICE__LINK__CANCEL__INIT;
	sli_heartbeat hb = SLUICE__LINK__HEARTBEAT__INIT;
	sli_refuse rf = SLUICE__LINK__REFUSE__INIT;
	uint8_t recbuf[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return (2);
	}
	gen_dir = argv[1];

	h.version = SLI_LINK_VERSION;
	h.stage = sli_bytes("src");
	h.port = sli_bytes("out");
	h.payload_type = sli_bytes("sluice.example.Record");
	h.role = SLUICE__LINK__ROLE__ROLE_SENDER;
	h.incarnation = 0x5eed;
	h.last_seq = 12;
	h.max_frame = 1u << 20;
	f.kind_case = SLUICE__LINK__FRAME__KIND_HELLO;
	f.hello = &h;
	gen_write("hello-sender", &f);
	h.role = SLUICE__LINK__ROLE__ROLE_RECEIVER;
	h.stage = sli_bytes("sink");
	h.port = sli_bytes("in");
	h.credit_messages = 256;
	h.credit_bytes = 1u << 20;
	gen_write("hello-receiver", &f);

	rec.id = 1;
	rec.time_ns = 123456789;
	rec.body = sli_bytes("0123456789abcdef");
	rec.note = (char *) "seed";
	b.first_seq = 1;
	b.n_payloads = 1;
	b.payloads = pl;
	f.kind_case = SLUICE__LINK__FRAME__KIND_BATCH;
	f.batch = &b;
	gen_write("batch-empty-payload", &f);
	pl[0].len = sluice__example__record__pack(&rec, recbuf);
	pl[0].data = recbuf;
	pl[1] = sli_bytes("xy");
	b.lineage_source = 0xabcdef;
	b.n_lineage_seq_delta = 3;
	b.lineage_seq_delta = dl;
	b.n_payloads = 3;
	gen_write("batch-3-lineage", &f);

	c.messages = 64;
	c.bytes = 65536;
	f.kind_case = SLUICE__LINK__FRAME__KIND_CREDIT;
	f.credit = &c;
	gen_write("credit", &f);

	a.seq = 3;
	f.kind_case = SLUICE__LINK__FRAME__KIND_ACK;
	f.ack = &a;
	gen_write("ack", &f);
	a.credit = &c;
	gen_write("ack-credit", &f);

	cl.final_seq = 3;
	f.kind_case = SLUICE__LINK__FRAME__KIND_CLOSE;
	f.close = &cl;
	gen_write("close", &f);

	ca.code = SL_ECANCELED;
	ca.text = sli_bytes("stage 'src' canceled: SIGTERM");
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM;
	f.kind_case = SLUICE__LINK__FRAME__KIND_CANCEL;
	f.cancel = &ca;
	gen_write("cancel-downstream", &f);
	ca.text = sli_bytes("downstream stage 'sink' failed");
	ca.direction = SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM;
	gen_write("cancel-upstream", &f);

	hb.time_ns = 42;
	f.kind_case = SLUICE__LINK__FRAME__KIND_HEARTBEAT;
	f.heartbeat = &hb;
	gen_write("heartbeat", &f);

	rf.code = SL_ETYPE;
	rf.text = sli_bytes("payload type mismatch: 'a.B' vs 'c.D'");
	f.kind_case = SLUICE__LINK__FRAME__KIND_REFUSE;
	f.refuse = &rf;
	gen_write("refuse", &f);
	return (0);
}
