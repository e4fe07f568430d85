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

#include "sluice/pb.h"

/* Bytes of v as a varint. */
static inline size_t
pb_varint_size(uint64_t v)
{
	return ((size_t) (64 - __builtin_clzll(v | 1) + 6) / 7);
}

static inline uint8_t *
pb_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	return (p);
}

static inline uint8_t *
pb_put_tag(uint8_t *p, uint32_t id, unsigned wire)
{
	return (pb_put_varint(p, (uint64_t) id << 3 | wire));
}

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

/* The value of an int32 or enum on the wire: negative ones are
 * sign-extended to ten bytes. */
static inline uint64_t
pb_int32_wire(int32_t v)
{
	return ((uint64_t) (int64_t) v);
}

static inline uint32_t
pb_zigzag32(int32_t v)
{
	return (((uint32_t) v << 1) ^ (uint32_t) (v >> 31));
}

static inline uint64_t
pb_zigzag64(int64_t v)
{
	return (((uint64_t) v << 1) ^ (uint64_t) (v >> 63));
}

/* Whether field f (singular, not in a oneof) of m is written, as
 * protobuf-c decides: a proto3 field when it is not zero (a string not
 * NULL or empty, bytes neither NULL nor empty), a proto2 optional one
 * when its has_ flag is set (a string when not NULL and not its default),
 * a required one always. */
static inline bool
pb_present(const ProtobufCFieldDescriptor *f, const char *m)
{
	const char *v = m + f->offset;

	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return (true);
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			const char *s = *(char *const *) (const void *) v;
			return (s != NULL && s != f->default_value);
		}
		return (*(const protobuf_c_boolean *) (const void *)
		    (m + f->quantifier_offset) != 0);
	default: /* PROTOBUF_C_LABEL_NONE */
		break;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return (*(const uint64_t *) (const void *) v != 0);
	case PROTOBUF_C_TYPE_FLOAT:
		return (*(const float *) (const void *) v != 0);
	case PROTOBUF_C_TYPE_DOUBLE:
		return (*(const double *) (const void *) v != 0);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) (const void *) v;
		return (s != NULL && s[0] != '\0');
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = (const void *) v;
		return (b->data != NULL && b->len != 0);
	}
	default: /* the 32-bit types, bool, enum */
		return (*(const uint32_t *) (const void *) v != 0);
	}
}

/* Whether the fast path handles field f. */
static inline bool
pb_flat(const ProtobufCFieldDescriptor *f)
{
	return (f->label != PROTOBUF_C_LABEL_REPEATED &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0);
}

/* Whether the fast path handles every field of m.  Checked before a
 * byte is written: out may hold no more than protobuf-c writes. */
static inline bool
pb_flat_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	if (msg->n_unknown_fields != 0)
		return (false);
	for (unsigned i = 0; i < d->n_fields; i++)
		if (!pb_flat(&d->fields[i]))
			return (false);
	return (true);
}

/* Writes present field f of m at p; returns the end. */
static uint8_t *
pb_put_field(uint8_t *p, const ProtobufCFieldDescriptor *f, const char *m)
{
	const void *v = m + f->offset;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		p = pb_put_tag(p, f->id, 0);
		return (pb_put_varint(p, pb_int32_wire(*(const int32_t *) v)));
	case PROTOBUF_C_TYPE_SINT32:
		p = pb_put_tag(p, f->id, 0);
		return (pb_put_varint(p, pb_zigzag32(*(const int32_t *) v)));
	case PROTOBUF_C_TYPE_UINT32:
		p = pb_put_tag(p, f->id, 0);
		return (pb_put_varint(p, *(const uint32_t *) v));
	case PROTOBUF_C_TYPE_BOOL:
		p = pb_put_tag(p, f->id, 0);
		*p++ = *(const protobuf_c_boolean *) v ? 1 : 0;
		return (p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		p = pb_put_tag(p, f->id, 0);
		return (pb_put_varint(p, *(const uint64_t *) v));
	case PROTOBUF_C_TYPE_SINT64:
		p = pb_put_tag(p, f->id, 0);
		return (pb_put_varint(p, pb_zigzag64(*(const int64_t *) v)));
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		p = pb_put_tag(p, f->id, 5);
		return (pb_put_le32(p, *(const uint32_t *) v));
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		p = pb_put_tag(p, f->id, 1);
		return (pb_put_le64(p, *(const uint64_t *) v));
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) v;
		size_t      n = s != NULL ? strlen(s) : 0;
		p = pb_put_tag(p, f->id, 2);
		p = pb_put_varint(p, n);
		if (n > 0)
			memcpy(p, s, n);
		return (p + n);
	}
	default: { /* PROTOBUF_C_TYPE_BYTES */
		const ProtobufCBinaryData *b = v;
		p = pb_put_tag(p, f->id, 2);
		p = pb_put_varint(p, b->len);
		if (b->len > 0)
			memcpy(p, b->data, b->len);
		return (p + b->len);
	}
	}
}

/* Bytes of present field f of m. */
static size_t
pb_field_size(const ProtobufCFieldDescriptor *f, const char *m)
{
	const void *v = m + f->offset;
	size_t      tag = pb_varint_size((uint64_t) f->id << 3);

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		return (tag + pb_varint_size(pb_int32_wire(*(const int32_t *)
		    v)));
	case PROTOBUF_C_TYPE_SINT32:
		return (tag + pb_varint_size(pb_zigzag32(*(const int32_t *)
		    v)));
	case PROTOBUF_C_TYPE_UINT32:
		return (tag + pb_varint_size(*(const uint32_t *) v));
	case PROTOBUF_C_TYPE_BOOL:
		return (tag + 1);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		return (tag + pb_varint_size(*(const uint64_t *) v));
	case PROTOBUF_C_TYPE_SINT64:
		return (tag + pb_varint_size(pb_zigzag64(*(const int64_t *)
		    v)));
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return (tag + 4);
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return (tag + 8);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) v;
		size_t      n = s != NULL ? strlen(s) : 0;
		return (tag + pb_varint_size(n) + n);
	}
	default: { /* PROTOBUF_C_TYPE_BYTES */
		const ProtobufCBinaryData *b = v;
		return (tag + pb_varint_size(b->len) + b->len);
	}
	}
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

		if (pb_present(f, m))
			p = pb_put_field(p, f, m);
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

		if (pb_present(f, m))
			n += pb_field_size(f, m);
	}
	return (n);
}
