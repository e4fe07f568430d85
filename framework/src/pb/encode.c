/*
 * encode.c — packing protobuf-c messages, fast for flat ones.
 *
 * protobuf-c packs by walking a message once to size it and once to
 * write it, with a call per field and per value; for the small flat
 * messages a pipeline moves one by one that walk costs more than the
 * bytes.  sl_pb_pack writes a message whose fields are all singular
 * scalars, strings and bytes in one pass.  Anything else (a repeated
 * field, a submessage, a oneof, unknown fields kept from a decode) is
 * left to protobuf-c, which then writes the whole message: the output is
 * protobuf-c's byte for byte either way (tests/pb checks it).
 */
#include <stdbool.h>
#include <string.h>

#include "core/varint.h"
#include "sluice/pb.h"

static inline uint8_t *
pb_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
	return (p + 4);
}

static inline uint8_t *
pb_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
	return (p + 8);
}

/* Whether the fast path handles field f. */
static inline bool
pb_flat(const ProtobufCFieldDescriptor *f)
{
	return (f->label != PROTOBUF_C_LABEL_REPEATED &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0);
}

/* The last descriptor this thread found flat: descriptors live for the
 * process (sluice/pb.h), so it needs no second scan. */
static _Thread_local const ProtobufCMessageDescriptor *pb_last_flat;

/* Whether the fast path handles every field of m.  Checked before a
 * byte is written: out may hold no more than protobuf-c writes. */
static inline bool
pb_flat_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	if (msg->n_unknown_fields != 0)
		return (false);
	if (d == pb_last_flat)
		return (true);
	for (unsigned i = 0; i < d->n_fields; i++)
		if (!pb_flat(&d->fields[i]))
			return (false);
	pb_last_flat = d;
	return (true);
}

/* What pb_field says of a field: where its value is and how it goes on
 * the wire. */
typedef struct pb_val {
	unsigned    wire; /* 0 varint, 1 fixed64, 2 length-delimited,
	                     5 fixed32; PB_ABSENT: not written */
	uint64_t    x;    /* the varint or fixed value, or the length */
	const void *data; /* length-delimited: the bytes */
} pb_val;

#define PB_ABSENT 8u

/*
 * Field f of m as protobuf-c writes it, or PB_ABSENT when protobuf-c
 * leaves it out: a proto3 field (label NONE) when it is zero (a float
 * compared as a float, so -0.0 too; a string or bytes NULL or empty), a
 * proto2 optional one when its has_ flag is clear (a string when NULL or
 * the default's own pointer); a required one never.
 */
static inline pb_val
pb_field(const ProtobufCFieldDescriptor *f, const char *m)
{
	const char *v = m + f->offset;
	bool        proto3 = f->label == PROTOBUF_C_LABEL_NONE;
	pb_val      r = { 0, 0, NULL };

	if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_STRING &&
	    *(const protobuf_c_boolean *) (const void *)
	    (m + f->quantifier_offset) == 0) {
		r.wire = PB_ABSENT;
		return (r);
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		/* Negative ones are sign-extended to ten bytes. */
		r.x = (uint64_t) (int64_t) *(const int32_t *) (const void *) v;
		break;
	case PROTOBUF_C_TYPE_SINT32: {
		int32_t i = *(const int32_t *) (const void *) v;
		r.x = ((uint32_t) i << 1) ^ (uint32_t) (i >> 31);
		break;
	}
	case PROTOBUF_C_TYPE_UINT32:
		r.x = *(const uint32_t *) (const void *) v;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		r.x = *(const protobuf_c_boolean *) (const void *) v != 0;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		r.x = *(const uint64_t *) (const void *) v;
		break;
	case PROTOBUF_C_TYPE_SINT64: {
		int64_t i = *(const int64_t *) (const void *) v;
		r.x = sli_zigzag((uint64_t) i);
		break;
	}
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
		r.wire = 5;
		r.x = *(const uint32_t *) (const void *) v;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		r.wire = 5;
		r.x = *(const uint32_t *) (const void *) v;
		if (proto3 && *(const float *) (const void *) v == 0)
			r.wire = PB_ABSENT;
		return (r);
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
		r.wire = 1;
		r.x = *(const uint64_t *) (const void *) v;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		r.wire = 1;
		r.x = *(const uint64_t *) (const void *) v;
		if (proto3 && *(const double *) (const void *) v == 0)
			r.wire = PB_ABSENT;
		return (r);
	case PROTOBUF_C_TYPE_STRING: {
		const char *str = *(char *const *) (const void *) v;

		r.wire = 2;
		r.data = str;
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL ?
		    str == NULL || str == f->default_value :
		    proto3 && (str == NULL || str[0] == '\0'))
			r.wire = PB_ABSENT;
		else
			r.x = str != NULL ? strlen(str) : 0; /* required */
		return (r);
	}
	default: { /* PROTOBUF_C_TYPE_BYTES */
		const ProtobufCBinaryData *b = (const void *) v;

		r.wire = 2;
		r.data = b->data;
		r.x = b->len;
		if (proto3 && (b->data == NULL || b->len == 0))
			r.wire = PB_ABSENT;
		return (r);
	}
	}
	if (proto3 && r.x == 0)
		r.wire = PB_ABSENT;
	return (r);
}

/* Bytes of a tag for field id. */
static inline size_t
pb_tag_size(uint32_t id)
{
	return (id < 16 ? 1 : sli_varint_size((uint64_t) id << 3));
}

size_t
sl_pb_pack(const ProtobufCMessage *msg, uint8_t *out)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char                       *m = (const char *) msg;
	uint8_t                          *p = out;

	if (!pb_flat_message(msg))
		return (protobuf_c_message_pack(msg, out));
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		pb_val                          v = pb_field(f, m);

		if (v.wire == PB_ABSENT)
			continue;
		if (f->id < 16)
			*p++ = (uint8_t) (f->id << 3 | v.wire);
		else
			p = sli_varint_put(p, (uint64_t) f->id << 3 | v.wire);
		switch (v.wire) {
		case 0:
			p = sli_varint_put(p, v.x);
			break;
		case 1:
			p = pb_put_le64(p, v.x);
			break;
		case 5:
			p = pb_put_le32(p, (uint32_t) v.x);
			break;
		default:
			p = sli_varint_put(p, v.x);
			if (v.x > 0)
				memcpy(p, v.data, v.x);
			p += v.x;
			break;
		}
	}
	return ((size_t) (p - out));
}

size_t
sl_pb_packed_size(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char                       *m = (const char *) msg;
	size_t                            n = 0;

	if (!pb_flat_message(msg))
		return (protobuf_c_message_get_packed_size(msg));
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		pb_val                          v = pb_field(f, m);

		if (v.wire == PB_ABSENT)
			continue;
		n += pb_tag_size(f->id);
		switch (v.wire) {
		case 0:
			n += sli_varint_size(v.x);
			break;
		case 1:
			n += 8;
			break;
		case 5:
			n += 4;
			break;
		default:
			n += sli_varint_size(v.x) + v.x;
			break;
		}
	}
	return (n);
}
