/*
 * decode.c — sl_pb_unpack(): protobuf-c's unpacker, faster.  See
 * sluice/pb.h for the contract.
 *
 * protobuf_c_message_unpack() walks the input twice (a scan that records
 * every field, then a parse of the records), looks every field up with a
 * binary search over the descriptor's ranges and reads every varint twice,
 * byte by byte through small functions.  This file walks the input once,
 * with a per-descriptor plan that maps a one-byte tag straight to what to
 * do, and reads varints without a call per byte.
 *
 * It decodes only what it can decode exactly as protobuf-c 1.4 does:
 *
 *   - The message: allocated (sizeof_message) and initialised by the
 *     descriptor's message_init, as protobuf-c does; descriptors without
 *     message_init, with a REQUIRED field, or with more than
 *     PBD_MAX_FIELDS fields (protobuf-c then allocates a bitmap first)
 *     always go to protobuf-c.
 *   - A tag: a varint of at most five bytes, the field number being its
 *     value shifted right by three, in 32 bits.  The field must be
 *     singular (label NONE or OPTIONAL, not a oneof member) of a scalar,
 *     string or bytes type, and arrive in the one wire type protobuf-c
 *     accepts for that type.  (protobuf-c reads a bool from any wire type;
 *     only the varint form is decoded here.)  Field 0 and unknown fields
 *     go to protobuf-c, which keeps the latter in unknown_fields.
 *   - A varint value: at most ten bytes, the last one's high bit clear;
 *     the value is taken modulo 2^64, and 32-bit types keep its low 32
 *     bits (so a negative int32 in ten bytes comes out right).  sint32 and
 *     sint64 are zigzag-decoded.  A bool is true when any of its 7-bit
 *     groups is nonzero, even one past bit 63, as protobuf-c reads it.
 *   - Fixed 32- and 64-bit values: little-endian bytes, stored as they
 *     are (float and double bits included).
 *   - A length: a varint of at most four bytes (protobuf-c reads five in
 *     32-bit arithmetic; those go to it), not past the end.  A string is
 *     copied into len + 1 bytes with a NUL after it (an empty one too); a
 *     bytes field gets len bytes, or data NULL when len is 0.
 *   - A field seen again: the last one wins; a string or bytes buffer
 *     allocated for an earlier one is freed first (never the descriptor's
 *     default), then the new one allocated, as protobuf-c does.
 *   - An OPTIONAL field's has_ flag (quantifier_offset nonzero) is set to 1.
 *
 * Anything else (including every malformed input) makes it free the
 * message with protobuf_c_message_free_unpacked() and call
 * protobuf_c_message_unpack() on the original bytes.
 *
 * Plans live in a fixed open-addressed table of pointers, filled with
 * compare-and-swap and never emptied: a plan is immutable once published,
 * so readers need only an acquire load.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/varint.h"
#include "sluice/pb.h"

/* Above this many fields protobuf-c allocates a bitmap before anything
 * else; those messages go to it, so that the fast path makes exactly
 * protobuf-c's allocations. */
#define PBD_MAX_FIELDS 128

/* Slots of the plan table (a power of two): descriptors beyond it are
 * always decoded by protobuf-c. */
#define PBD_SLOTS 512

/* What to do with a field. */
enum pbd_kind {
	PBD_NONE = 0, /* not decoded here: hand the input to protobuf-c */
	PBD_V32,      /* int32, uint32, enum: low 32 bits of a varint */
	PBD_Z32,      /* sint32: zigzag of the low 32 bits */
	PBD_V64,      /* int64, uint64 */
	PBD_Z64,      /* sint64 */
	PBD_BOOL,     /* bool, from a varint only */
	PBD_F32,      /* fixed32, sfixed32, float: 4 bytes */
	PBD_F64,      /* fixed64, sfixed64, double: 8 bytes */
	PBD_STRING,   /* NUL-terminated copy */
	PBD_BYTES,    /* ProtobufCBinaryData */
	PBD_HAS = 16, /* or'ed in: the field has a has_ flag to set */
};

/* One field of a plan. */
typedef struct pbd_field {
	uint32_t    offset; /* of the member in the message */
	uint32_t    has;    /* of its has_ flag (protobuf_c_boolean), or 0 */
	uint32_t    id;     /* field number */
	uint8_t     kind;   /* enum pbd_kind */
	uint8_t     wire;   /* the wire type it must arrive in */
	const void *def;    /* the descriptor's default_value */
} pbd_field;

/* How to decode one message type. */
typedef struct pbd_plan {
	const ProtobufCMessageDescriptor *desc;   /* the type it is for */
	bool                              usable; /* false: protobuf-c only */
	unsigned                          n;      /* fields, in fields[1..n] */
	uint16_t  tag1[128]; /* a one-byte tag: the byte offset in fields[]
	                        of the field it decodes, or 0 */
	pbd_field fields[];  /* [0]: kind PBD_NONE, for the tags that go to
	                        protobuf-c; then the descriptor's fields in
	                        its order, by field number */
} pbd_plan;

/* The plans, by descriptor address; NULL slots are free. */
static _Atomic(pbd_plan *) pbd_table[PBD_SLOTS];

/* Outcomes of pbd_fields. */
enum {
	PBD_OK,       /* decoded */
	PBD_FALLBACK, /* give the input to protobuf-c */
	PBD_NOMEM,    /* an allocation failed */
};

/* ---- memory -------------------------------------------------------------- */

/* Allocates through a (malloc when NULL), as protobuf-c does. */
static inline void *
pbd_alloc(ProtobufCAllocator *a, size_t n)
{
	if (a == NULL)
		return (malloc(n));
	return (a->alloc(a->allocator_data, n));
}

/* Frees p (not NULL) through a (free when NULL). */
static inline void
pbd_free(ProtobufCAllocator *a, void *p)
{
	if (a == NULL)
		free(p);
	else
		a->free(a->allocator_data, p);
}

/* ---- plans --------------------------------------------------------------- */

/* The kind of field fd, and the wire type it must arrive in. */
static enum pbd_kind
pbd_kind_of(const ProtobufCFieldDescriptor *fd, uint8_t *wire)
{
	if ((fd->label != PROTOBUF_C_LABEL_NONE &&
	    fd->label != PROTOBUF_C_LABEL_OPTIONAL) ||
	    (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		return (PBD_NONE);
	*wire = PROTOBUF_C_WIRE_TYPE_VARINT;
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_ENUM:
		return (PBD_V32);
	case PROTOBUF_C_TYPE_SINT32:
		return (PBD_Z32);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		return (PBD_V64);
	case PROTOBUF_C_TYPE_SINT64:
		return (PBD_Z64);
	case PROTOBUF_C_TYPE_BOOL:
		return (PBD_BOOL);
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		*wire = PROTOBUF_C_WIRE_TYPE_32BIT;
		return (PBD_F32);
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		*wire = PROTOBUF_C_WIRE_TYPE_64BIT;
		return (PBD_F64);
	case PROTOBUF_C_TYPE_STRING:
		*wire = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
		return (PBD_STRING);
	case PROTOBUF_C_TYPE_BYTES:
		*wire = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
		return (PBD_BYTES);
	default: /* PROTOBUF_C_TYPE_MESSAGE */
		return (PBD_NONE);
	}
}

/* A new plan for desc (malloc; NULL when out of memory). */
static pbd_plan *
pbd_plan_build(const ProtobufCMessageDescriptor *desc)
{
	unsigned  n = desc->n_fields;
	pbd_plan *pl;

	if (n > PBD_MAX_FIELDS)
		n = 0; /* unusable: no need for the fields */
	pl = calloc(1, sizeof(*pl) + (n + 1) * sizeof(pl->fields[0]));
	if (pl == NULL)
		return (NULL);
	pl->desc = desc;
	pl->n = n;
	pl->usable = desc->message_init != NULL && desc->sizeof_message > 0 &&
	    desc->n_fields <= PBD_MAX_FIELDS;
	for (unsigned i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *fd = &desc->fields[i];
		pbd_field                      *f = &pl->fields[i + 1];

		/* protobuf-c fails a message that lacks a required field
		 * (without a default); not worth tracking here. */
		if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
			pl->usable = false;
		/* The binary search of pbd_slow_tag needs them in order. */
		if (i > 0 && fd->id <= desc->fields[i - 1].id)
			pl->usable = false;
		f->id = fd->id;
		f->offset = fd->offset;
		f->has = fd->quantifier_offset;
		f->def = fd->default_value;
		f->kind = (uint8_t) pbd_kind_of(fd, &f->wire);
		/* protobuf-c sets a has_ flag wherever quantifier_offset
		 * is nonzero (for a decoded kind: an OPTIONAL field's). */
		if (f->kind != PBD_NONE && fd->quantifier_offset != 0)
			f->kind |= PBD_HAS;
		if (f->kind != PBD_NONE && fd->id >= 1 && fd->id <= 15)
			pl->tag1[(fd->id << 3) | f->wire] =
			    (uint16_t) ((i + 1) * sizeof(pbd_field));
	}
	return (pl);
}

/* The slot where desc's plan is looked for first. */
static inline size_t
pbd_hash(const ProtobufCMessageDescriptor *desc)
{
	uint64_t h = (uint64_t) (uintptr_t) desc * 0x9e3779b97f4a7c15ull;

	return ((size_t) (h >> 40) & (PBD_SLOTS - 1));
}

/*
 * The plan of desc from the table, built and added if it is not there.
 * NULL when out of memory or the table is full (then protobuf-c decodes).
 * Two threads may build the same plan at once: the first to publish it
 * wins, and the other frees its own.  Every thread probes the same slots
 * in the same order and slots are never emptied, so a descriptor can
 * never end up in two slots.
 */
static pbd_plan *
pbd_plan_find(const ProtobufCMessageDescriptor *desc)
{
	size_t    h = pbd_hash(desc);
	pbd_plan *mine = NULL, *pl;

	for (size_t i = 0; i < PBD_SLOTS; i++) {
		_Atomic(pbd_plan *) *slot = &pbd_table[(h + i) &
		    (PBD_SLOTS - 1)];

		pl = atomic_load_explicit(slot, memory_order_acquire);
		if (pl == NULL) {
			if (mine == NULL &&
			    (mine = pbd_plan_build(desc)) == NULL)
				return (NULL);
			if (atomic_compare_exchange_strong_explicit(slot, &pl,
			    mine, memory_order_acq_rel, memory_order_acquire))
				return (mine);
			/* Lost the race for this slot: pl is the winner. */
		}
		if (pl->desc == desc) {
			free(mine);
			return (pl);
		}
	}
	free(mine);
	return (NULL);
}

/* The plan of desc: the first probe inline, the rest in pbd_plan_find. */
static inline const pbd_plan *
pbd_plan_of(const ProtobufCMessageDescriptor *desc)
{
	pbd_plan *pl = atomic_load_explicit(&pbd_table[pbd_hash(desc)],
	    memory_order_acquire);

	if (pl != NULL && pl->desc == desc)
		return (pl);
	return (pbd_plan_find(desc));
}

/* ---- reading the wire ---------------------------------------------------- */

/*
 * Reads a varint of two to ten bytes at p (the caller took the one-byte
 * case): its value modulo 2^64 in *v, and returns the byte after it.
 * NULL if it does not end within ten bytes or before end.  Inlined into
 * each use: a call costs as much as the decoding.
 */
static inline __attribute__((always_inline)) const uint8_t *
pbd_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	size_t   max = (size_t) (end - p);
	uint64_t x = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (max >= 8) {
		uint64_t w, stop;

		/* The first byte with its high bit clear ends it. */
		memcpy(&w, p, 8);
		stop = ~w & 0x8080808080808080ull;
		/* stop ^ (stop - 1) masks through the stop bit.  Up to
		 * four bytes, in 32 bits: the masks are cheaper. */
		if ((uint32_t) stop != 0) {
			uint32_t s32 = (uint32_t) stop;

			*v = sli_varint_pack4((uint32_t) w & (s32 ^ (s32 - 1)));
			return (p + __builtin_ctz(s32) / 8 + 1);
		}
		if (stop != 0) {
			*v = sli_varint_pack7(w & (stop ^ (stop - 1)));
			return (p + __builtin_ctzll(stop) / 8 + 1);
		}
		if (max >= 10) {
			x = sli_varint_pack7(w) |
			    (uint64_t) (p[8] & 0x7f) << 56;
			if (p[8] < 0x80) {
				*v = x;
				return (p + 9);
			}
			/* Only bit 0 of a tenth byte lands in 64 bits. */
			x |= (uint64_t) p[9] << 63;
			*v = x;
			return (p[9] < 0x80 ? p + 10 : NULL);
		}
	}
#endif
	if (max > 10)
		max = 10;
	for (size_t i = 0; i < max; i++) {
		x |= (uint64_t) (p[i] & 0x7f) << (7 * i);
		if (p[i] < 0x80) {
			*v = x;
			return (p + i + 1);
		}
	}
	return (NULL);
}

/*
 * Reads a length prefix of two to four bytes at p (the caller took the
 * one-byte case) into *n; NULL if truncated or longer (protobuf-c reads a
 * fifth byte in 32-bit arithmetic: such lengths are left to it).
 */
static inline const uint8_t *
pbd_length(const uint8_t *p, const uint8_t *end, size_t *n)
{
	size_t   max = (size_t) (end - p);
	uint32_t x = 0;

	if (max > 4)
		max = 4;
	for (size_t i = 0; i < max; i++) {
		x |= (uint32_t) (p[i] & 0x7f) << (7 * i);
		if (p[i] < 0x80) {
			*n = x;
			return (p + i + 1);
		}
	}
	return (NULL);
}

/*
 * A tag of two to five bytes at *pp (its first byte has the high bit
 * set), read as protobuf-c reads it: the field it names, if that field is
 * decoded here and the wire type is the one it must arrive in, with *pp
 * moved past the tag; else NULL.
 */
static const pbd_field *
pbd_slow_tag(const pbd_plan *pl, const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	size_t         max = (size_t) (end - p), i;
	uint32_t       id = (p[0] & 0x7f) >> 3;
	unsigned       shift = 4, lo, hi;

	if (max > 5)
		max = 5;
	for (i = 1; i < max; i++) {
		id |= (uint32_t) (p[i] & 0x7f) << shift;
		if (p[i] < 0x80)
			break;
		shift += 7;
	}
	if (i == max)
		return (NULL);
	/* fields[1..n], by number. */
	lo = 1;
	hi = pl->n + 1;
	while (lo < hi) {
		unsigned         mid = lo + (hi - lo) / 2;
		const pbd_field *f = &pl->fields[mid];

		if (f->id == id) {
			if (f->kind == PBD_NONE || f->wire != (p[0] & 7))
				return (NULL);
			*pp = p + i + 1;
			return (f);
		}
		if (f->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (NULL);
}

/* A little-endian 32-bit value. */
static inline uint32_t
pbd_le32(const uint8_t *p)
{
	return ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
	    (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
}

/* A little-endian 64-bit value. */
static inline uint64_t
pbd_le64(const uint8_t *p)
{
	return ((uint64_t) pbd_le32(p) | (uint64_t) pbd_le32(p + 4) << 32);
}

/* Copies n bytes: up to 64 inline, with overlapping moves from both
 * ends (a call to memcpy costs more than that), the rest through
 * memcpy. */
static inline void
pbd_copy(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n > 64)
		memcpy(d, s, n);
	else if (n > 16) {
		memcpy(d, s, 16);
		memcpy(d + n - 16, s + n - 16, 16);
		if (n > 32) {
			memcpy(d + 16, s + 16, 16);
			memcpy(d + n - 32, s + n - 32, 16);
		}
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n > 0) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* ---- decoding ------------------------------------------------------------ */

/* Reads a varint into v, or gives up (in pbd_fields). */
#define PBD_VARINT()                                                       \
	do {                                                               \
		if (p < end && *p < 0x80)                                  \
			v = *p++;                                          \
		else if ((p = pbd_varint(p, end, &v)) == NULL)             \
			return (PBD_FALLBACK);                             \
	} while (0)

/*
 * A field with a has_ flag (in pbd_fields): set it and go on to the plain
 * case that follows.  protobuf-c sets it after the value; setting it
 * first is the same unless decoding fails, and then the message is thrown
 * away.
 */
#define PBD_HAS_CASE(kind)                                                 \
	case (kind) | PBD_HAS: {                                           \
		protobuf_c_boolean yes = 1;                                \
                                                                           \
		memcpy((uint8_t *) msg + f->has, &yes, sizeof(yes));      \
	}                                                                  \
		__attribute__((fallthrough));

/*
 * Decodes p[0..end) into msg, initialised.  PBD_OK, or PBD_FALLBACK at
 * the first thing it does not decode, or PBD_NOMEM; in both failure cases
 * msg stays freeable by protobuf_c_message_free_unpacked.
 */
static inline int
pbd_fields(const pbd_plan *pl, ProtobufCMessage *msg, ProtobufCAllocator *a,
    const uint8_t *p, const uint8_t *end)
{
	while (p < end) {
		const pbd_field *f;
		uint8_t         *m;
		const uint8_t   *start;
		uint64_t         v;
		uint32_t         u;
		size_t           n;

		if (*p < 0x80)
			f = (const pbd_field *) (const void *)
			    ((const uint8_t *) pl->fields + pl->tag1[*p++]);
		else if ((f = pbd_slow_tag(pl, &p, end)) == NULL)
			return (PBD_FALLBACK);
		m = (uint8_t *) msg + f->offset;

		switch (f->kind) {
		PBD_HAS_CASE(PBD_V32)
		case PBD_V32:
			PBD_VARINT();
			u = (uint32_t) v;
			memcpy(m, &u, 4);
			break;
		PBD_HAS_CASE(PBD_Z32)
		case PBD_Z32:
			PBD_VARINT();
			u = (uint32_t) v;
			u = (u >> 1) ^ (0u - (u & 1));
			memcpy(m, &u, 4);
			break;
		PBD_HAS_CASE(PBD_V64)
		case PBD_V64:
			PBD_VARINT();
			memcpy(m, &v, 8);
			break;
		PBD_HAS_CASE(PBD_Z64)
		case PBD_Z64:
			PBD_VARINT();
			v = sli_unzigzag(v);
			memcpy(m, &v, 8);
			break;
		PBD_HAS_CASE(PBD_BOOL)
		case PBD_BOOL: {
			protobuf_c_boolean b;

			start = p;
			PBD_VARINT();
			/* Bits of a tenth byte past bit 63 count. */
			b = v != 0 || (p - start == 10 && (p[-1] & 0x7f) != 0);
			memcpy(m, &b, sizeof(b));
			break;
		}
		PBD_HAS_CASE(PBD_F32)
		case PBD_F32:
			if (end - p < 4)
				return (PBD_FALLBACK);
			u = pbd_le32(p);
			memcpy(m, &u, 4);
			p += 4;
			break;
		PBD_HAS_CASE(PBD_F64)
		case PBD_F64:
			if (end - p < 8)
				return (PBD_FALLBACK);
			v = pbd_le64(p);
			memcpy(m, &v, 8);
			p += 8;
			break;
		PBD_HAS_CASE(PBD_STRING)
		case PBD_STRING: {
			char *s;

			if (p < end && *p < 0x80)
				n = *p++;
			else if ((p = pbd_length(p, end, &n)) == NULL)
				return (PBD_FALLBACK);
			if (n > (size_t) (end - p))
				return (PBD_FALLBACK);
			memcpy(&s, m, sizeof(s));
			if (s != NULL && s != f->def)
				pbd_free(a, s);
			s = pbd_alloc(a, n + 1);
			memcpy(m, &s, sizeof(s));
			if (s == NULL)
				return (PBD_NOMEM);
			pbd_copy((uint8_t *) s, p, n);
			s[n] = '\0';
			p += n;
			break;
		}
		PBD_HAS_CASE(PBD_BYTES)
		case PBD_BYTES: {
			const ProtobufCBinaryData *def = f->def;
			ProtobufCBinaryData        bd;

			if (p < end && *p < 0x80)
				n = *p++;
			else if ((p = pbd_length(p, end, &n)) == NULL)
				return (PBD_FALLBACK);
			if (n > (size_t) (end - p))
				return (PBD_FALLBACK);
			memcpy(&bd, m, sizeof(bd));
			if (bd.data != NULL &&
			    (def == NULL || bd.data != def->data))
				pbd_free(a, bd.data);
			bd.data = NULL;
			if (n > 0) {
				bd.data = pbd_alloc(a, n);
				if (bd.data == NULL) {
					memcpy(m, &bd, sizeof(bd));
					return (PBD_NOMEM);
				}
				pbd_copy(bd.data, p, n);
			}
			bd.len = n;
			memcpy(m, &bd, sizeof(bd));
			p += n;
			break;
		}
		case PBD_NONE:
			return (PBD_FALLBACK);
		default: /* no other kinds: no range check */
			__builtin_unreachable();
		}
	}
	return (PBD_OK);
}

#undef PBD_VARINT
#undef PBD_HAS_CASE

/* See sluice/pb.h.  The fast path, or protobuf-c when the plan says so or
 * pbd_fields gives up. */
ProtobufCMessage *
sl_pb_unpack(const ProtobufCMessageDescriptor *desc,
    ProtobufCAllocator *allocator, size_t len, const uint8_t *data)
{
	const pbd_plan   *pl;
	ProtobufCMessage *msg;
	int               rv;

	/* A bad descriptor: protobuf-c asserts on it. */
	if (desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return (protobuf_c_message_unpack(desc, allocator, len, data));
	pl = pbd_plan_of(desc);
	if (pl == NULL || !pl->usable)
		return (protobuf_c_message_unpack(desc, allocator, len, data));

	if ((msg = pbd_alloc(allocator, desc->sizeof_message)) == NULL)
		return (NULL);
	desc->message_init(msg);
	if (len == 0)
		return (msg);
	rv = pbd_fields(pl, msg, allocator, data, data + len);
	if (rv == PBD_OK)
		return (msg);
	protobuf_c_message_free_unpacked(msg, allocator);
	if (rv == PBD_NOMEM)
		return (NULL);
	return (protobuf_c_message_unpack(desc, allocator, len, data));
}
