/*
 * gen_pb_corpus.c — writes the seed corpus of fuzz_pb: messages packed by
 * protobuf-c (a stage's Record, the test messages of tests/pb with every
 * field set) and a few hand-made encodings that protobuf-c reads in its
 * own way (wide varints, padded tags and lengths, fields seen twice).
 *
 * Usage: gen_pb_corpus DIR   (tests/fuzz/corpus/pb in the repo)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbtest2.pb-c.h"
#include "pbtest3.pb-c.h"
#include "sluice/example.pb-c.h"

static const char *gen_dir;

static void
gen_write(const char *name, const void *data, size_t len)
{
	char  path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", gen_dir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    (len > 0 && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

/* Packs m and writes it. */
static void
gen_pack(const char *name, const ProtobufCMessage *m)
{
	uint8_t buf[4096];
	size_t  len = protobuf_c_message_get_packed_size(m);

	if (len > sizeof(buf)) {
		fprintf(stderr, "%s: %zu bytes\n", name, len);
		exit(1);
	}
	gen_write(name, buf, protobuf_c_message_pack(m, buf));
}

int
main(int argc, char **argv)
{
	static uint8_t          body[39];
	static int32_t          rep[] = { 1, -2, 300 };
	Sluice__Example__Record r = SLUICE__EXAMPLE__RECORD__INIT;
	Sluice__Pbtest__All3    a3 = SLUICE__PBTEST__ALL3__INIT;
	Sluice__Pbtest__Inner3  i3 = SLUICE__PBTEST__INNER3__INIT;
	Sluice__Pbtest__All2    a2 = SLUICE__PBTEST__ALL2__INIT;
	Sluice__Pbtest__Inner2  i2 = SLUICE__PBTEST__INNER2__INIT;
	Sluice__Pbtest__Req2    q2 = SLUICE__PBTEST__REQ2__INIT;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_pb_corpus DIR\n");
		return (2);
	}
	gen_dir = argv[1];

	/* A Record as the stages make them: 64 bytes. */
	memset(body, 'b', sizeof(body));
	r.id = 123456789;
	r.time_ns = 1764338400123456789;
	r.body.data = body;
	r.body.len = sizeof(body);
	r.note = "mapped";
	gen_pack("record-64", &r.base);

	/* Every scalar of All3 (negative ones in ten bytes), and the rest. */
	a3.f_int32 = -1;
	a3.f_sint32 = -3;
	a3.f_sfixed32 = -100000;
	a3.f_int64 = INT64_MIN;
	a3.f_sint64 = -123456789012;
	a3.f_sfixed64 = -2;
	a3.f_uint32 = UINT32_MAX;
	a3.f_fixed32 = 0xdeadbeef;
	a3.f_uint64 = UINT64_MAX;
	a3.f_fixed64 = 0x0123456789abcdefull;
	a3.f_float = -0.375f;
	a3.f_double = 1e300;
	a3.f_bool = 1;
	a3.f_enum = SLUICE__PBTEST__COLOR__COLOR_BLUE;
	a3.f_string = "sluice";
	a3.f_bytes.data = (uint8_t *) "\0\1\2\377";
	a3.f_bytes.len = 4;
	a3.big_id = 7;
	a3.big_str = "top";
	gen_pack("all3-scalars", &a3.base);
	a3.n_r_int32 = 3;
	a3.r_int32 = rep;
	i3.a = 5;
	i3.s = "inner";
	a3.sub = &i3;
	a3.pick_case = SLUICE__PBTEST__ALL3__PICK_O_STR;
	a3.o_str = "picked";
	gen_pack("all3-full", &a3.base);

	/* All2: every has_ set, defaults replaced, the rest. */
	a2.has_f_int32 = 1;
	a2.f_int32 = -5;
	a2.has_f_sint32 = 1;
	a2.f_sint32 = 7;
	a2.has_f_int64 = 1;
	a2.f_int64 = 0;
	a2.has_f_uint32 = 1;
	a2.f_uint32 = 0;
	a2.has_f_float = 1;
	a2.f_float = 2.5f;
	a2.has_f_double = 1;
	a2.f_double = -0.0;
	a2.has_f_bool = 1;
	a2.f_bool = 0;
	a2.has_f_enum = 1;
	a2.f_enum = SLUICE__PBTEST__SHADE__SHADE_LIGHT;
	a2.f_string = "";
	a2.has_f_bytes = 1;
	a2.f_bytes.len = 0;
	a2.f_bytes.data = NULL;
	a2.f_string2 = "two";
	a2.has_big_id = 1;
	a2.big_id = 1ull << 40;
	gen_pack("all2-scalars", &a2.base);
	a2.n_r_int32 = 3;
	a2.r_int32 = rep;
	i2.has_a = 1;
	i2.a = 9;
	a2.sub = &i2;
	a2.pick_case = SLUICE__PBTEST__ALL2__PICK_O_INT;
	a2.o_int = 11;
	gen_pack("all2-full", &a2.base);

	q2.r = 1;
	q2.has_o = 1;
	q2.o = 2;
	gen_pack("req2", &q2.base);

	/* Hand-made: protobuf-c's own readings. */
	static const uint8_t wide_bool[] = { 0x68, 0x80, 0x80, 0x80, 0x80,
		0x80, 0x80, 0x80, 0x80, 0x80, 0x02 };
	static const uint8_t padded[] = { 0x88, 0x80, 0x80, 0x80, 0x00, 0x85,
		0x80, 0x80, 0x80, 0x10, 0x7a, 0x83, 0x80, 0x00, 'a', 'b', 'c' };
	static const uint8_t twice[] = { 0x22, 0x01, 'a', 0x1a, 0x01, 'b',
		0x22, 0x01, 'c', 0x1a, 0x00, 0x08, 0x01, 0x08, 0x02 };
	static const uint8_t unknown[] = { 0x08, 0x01, 0x28, 0x07, 0x22, 0x01,
		'n', 0x0b, 0x0c };
	gen_write("edge-bool-past-bit-63", wide_bool, sizeof(wide_bool));
	gen_write("edge-padded-tag-varint-length", padded, sizeof(padded));
	gen_write("edge-fields-twice", twice, sizeof(twice));
	gen_write("edge-unknown-and-group", unknown, sizeof(unknown));
	return (0);
}
