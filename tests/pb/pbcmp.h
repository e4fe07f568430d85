/*
 * pbcmp.h — compares two decoded protobuf-c messages field by field, for
 * the differential tests of sl_pb_unpack (tests/pb/test_pb.c and
 * tests/fuzz/fuzz_pb.c).
 *
 *   pbcmp(a, b)   NULL when a and b hold the same, else a sentence naming
 *                 the first difference (in a per-thread buffer).
 *
 * "The same" is stricter than equal encodings: has_ flags, oneof cases,
 * repeated counts, whether a string or bytes field still points at the
 * descriptor's default (or at protobuf_c_empty_string), whether empty
 * bytes have data NULL, float bits, and the unknown fields must all
 * match.  Header-only: the test programs share no library.
 */
#ifndef SLUICE_PBCMP_H
#define SLUICE_PBCMP_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

static _Thread_local char pbcmp_buf[256];

static const char *pbcmp(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* Fills pbcmp_buf with what differs in field fd of type d. */
static inline const char *
pbcmp_why(const ProtobufCMessageDescriptor *d,
    const ProtobufCFieldDescriptor *fd, const char *what)
{
	snprintf(pbcmp_buf, sizeof(pbcmp_buf), "%s.%s: %s differ", d->name,
	    fd != NULL ? fd->name : "(message)", what);
	return (pbcmp_buf);
}

/* Bytes per element of a repeated field of type t. */
static inline size_t
pbcmp_elt_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return (8);
	case PROTOBUF_C_TYPE_BOOL:
		return (sizeof(protobuf_c_boolean));
	case PROTOBUF_C_TYPE_STRING:
		return (sizeof(char *));
	case PROTOBUF_C_TYPE_BYTES:
		return (sizeof(ProtobufCBinaryData));
	case PROTOBUF_C_TYPE_MESSAGE:
		return (sizeof(ProtobufCMessage *));
	default:
		return (4);
	}
}

/* 0 when the values of field fd at a and b are the same, else 1. */
static inline int
pbcmp_value(const ProtobufCFieldDescriptor *fd, const void *a, const void *b)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *x, *y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		if (x == NULL || y == NULL)
			return (x != y);
		if ((x == fd->default_value) != (y == fd->default_value) ||
		    (x == protobuf_c_empty_string) !=
		    (y == protobuf_c_empty_string))
			return (1);
		return (strcmp(x, y) != 0);
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *def = fd->default_value;
		ProtobufCBinaryData        x, y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		if (x.len != y.len || (x.data == NULL) != (y.data == NULL))
			return (1);
		if (def != NULL &&
		    (x.data == def->data) != (y.data == def->data))
			return (1);
		return (x.len > 0 && memcmp(x.data, y.data, x.len) != 0);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *x, *y;

		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		if (x == NULL || y == NULL)
			return (x != y);
		if ((x == fd->default_value) != (y == fd->default_value))
			return (1);
		return (pbcmp(x, y) != NULL);
	}
	default:
		return (memcmp(a, b, pbcmp_elt_size(fd->type)) != 0);
	}
}

static const char *
pbcmp(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;

	if (a->descriptor != b->descriptor)
		return (pbcmp_why(d, NULL, "descriptors"));
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const uint8_t *va = (const uint8_t *) a + fd->offset;
		const uint8_t *vb = (const uint8_t *) b + fd->offset;
		const uint8_t *qa = (const uint8_t *) a + fd->quantifier_offset;
		const uint8_t *qb = (const uint8_t *) b + fd->quantifier_offset;

		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
			uint32_t ca, cb;

			memcpy(&ca, qa, sizeof(ca));
			memcpy(&cb, qb, sizeof(cb));
			if (ca != cb)
				return (pbcmp_why(d, fd, "oneof cases"));
			if (ca != fd->id)
				continue;
		} else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    fd->quantifier_offset != 0) {
			protobuf_c_boolean ha, hb;

			memcpy(&ha, qa, sizeof(ha));
			memcpy(&hb, qb, sizeof(hb));
			if (ha != hb)
				return (pbcmp_why(d, fd, "has_ flags"));
		}
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t         na, nb, sz = pbcmp_elt_size(fd->type);
			const uint8_t *ra, *rb;

			memcpy(&na, qa, sizeof(na));
			memcpy(&nb, qb, sizeof(nb));
			memcpy(&ra, va, sizeof(ra));
			memcpy(&rb, vb, sizeof(rb));
			if (na != nb)
				return (pbcmp_why(d, fd, "repeated counts"));
			if ((ra == NULL) != (rb == NULL))
				return (pbcmp_why(d, fd, "repeated arrays"));
			for (size_t k = 0; k < na; k++)
				if (pbcmp_value(fd, ra + k * sz, rb + k * sz))
					return (pbcmp_why(d, fd, "elements"));
		} else if (pbcmp_value(fd, va, vb))
			return (pbcmp_why(d, fd, "values"));
	}
	if (a->n_unknown_fields != b->n_unknown_fields ||
	    (a->unknown_fields == NULL) != (b->unknown_fields == NULL))
		return (pbcmp_why(d, NULL, "unknown field counts"));
	for (unsigned i = 0; i < a->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *x = &a->unknown_fields[i];
		const ProtobufCMessageUnknownField *y = &b->unknown_fields[i];

		if (x->tag != y->tag || x->wire_type != y->wire_type ||
		    x->len != y->len ||
		    (x->len > 0 && memcmp(x->data, y->data, x->len) != 0))
			return (pbcmp_why(d, NULL, "unknown fields"));
	}
	return (NULL);
}

#endif /* SLUICE_PBCMP_H */
