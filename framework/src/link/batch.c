/*
 * batch.c — the fast path for Batch frames (internal).  See batch.h.
 *
 * Batch frames carry every message of a link, so their cost is the cost
 * of a link: through protobuf-c, a batch costs an allocation per array
 * and a walk of the fields on decode, and two walks on encode.  This file
 * writes and reads the one canonical encoding of a
 * Batch directly, with no allocation per message.  It is not a second
 * decoder for everything: anything that is not exactly the canonical form
 * (unknown or repeated fields, other frame kinds, any rule broken) is
 * left to sli_frame_decode, which gives the error message.  So the rules
 * of frame.h hold whichever path a frame takes; the fuzz target checks
 * that the two agree.
 *
 * Canonical form (protobuf wire format, fields in number order, proto3
 * defaults omitted, repeated scalars packed):
 *
 *	Frame:   field 2 (batch), length-delimited
 *	Batch:   field 2 first_seq varint (nonzero)
 *	         field 3 lineage_source varint, if nonzero
 *	         field 4 lineage_seq_delta, packed zigzag varints, one per
 *	             message, if lineage_source is nonzero
 *	         field 5 payloads, length-delimited, once per message
 */
#include <string.h>

#include "core/varint.h"
#include "link/batch.h"

/* ---- encoding ------------------------------------------------------------ */

size_t
sli_batch_size(const sli_bmsg *msgs, size_t n, sli_batch_plan *plan)
{
	size_t body = 1 + sli_varint_size(msgs[0].seq), deltas = 0;

	if (msgs[0].lin_src != 0) {
		uint64_t prev = 0;

		for (size_t i = 0; i < n; i++) {
			deltas += sli_varint_size(sli_zigzag(msgs[i].lin_seq -
			    prev));
			prev = msgs[i].lin_seq;
		}
		body += 1 + sli_varint_size(msgs[0].lin_src) + 1 +
		    sli_varint_size(deltas) + deltas;
	}
	for (size_t i = 0; i < n; i++)
		body += 1 + sli_varint_size(msgs[i].len) + msgs[i].len;
	plan->body = body;
	plan->deltas = deltas;
	return (1 + sli_varint_size(body) + body);
}

size_t
sli_batch_write(const sli_bmsg *msgs, size_t n, const sli_batch_plan *plan,
    uint8_t *out)
{
	uint8_t *p = out;

	*p++ = (2 << 3) | 2; /* Frame.batch */
	p = sli_varint_put(p, plan->body);
	*p++ = (2 << 3) | 0; /* Batch.first_seq */
	p = sli_varint_put(p, msgs[0].seq);
	if (msgs[0].lin_src != 0) {
		uint64_t prev = 0;

		*p++ = (3 << 3) | 0; /* Batch.lineage_source */
		p = sli_varint_put(p, msgs[0].lin_src);
		*p++ = (4 << 3) | 2; /* Batch.lineage_seq_delta, packed */
		p = sli_varint_put(p, plan->deltas);
		for (size_t i = 0; i < n; i++) {
			p = sli_varint_put(p, sli_zigzag(msgs[i].lin_seq -
			    prev));
			prev = msgs[i].lin_seq;
		}
	}
	for (size_t i = 0; i < n; i++) {
		*p++ = (5 << 3) | 2; /* Batch.payloads */
		p = sli_varint_put(p, msgs[i].len);
		if (msgs[i].len > 0)
			memcpy(p, msgs[i].payload, msgs[i].len);
		p += msgs[i].len;
	}
	return ((size_t) (p - out));
}

/* ---- decoding ------------------------------------------------------------ */

/* Reads a varint of at most 10 bytes; NULL if malformed or truncated, or
 * (for the canonical form) not minimal. */
static const uint8_t *
bt_get_varint_slow(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	if (end - p >= 10) {
		/* All ten bytes are there: no bounds checks. */
		for (int i = 0; i < 10; i++) {
			uint8_t b = p[i];
			x |= (uint64_t) (b & 0x7f) << (7 * i);
			if (b < 0x80) {
				if ((b == 0 && i > 0) || (i == 9 && b > 1))
					return (NULL);
				*v = x;
				return (p + i + 1);
			}
		}
		return (NULL);
	}
	for (int shift = 0; shift < 64 && p < end; shift += 7) {
		uint8_t b = *p++;
		if (shift == 63 && b > 1)
			return (NULL);
		x |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			/* Overlong forms (a trailing zero byte) are not
			 * canonical: leave them to the full decoder. */
			if (b == 0 && shift > 0)
				return (NULL);
			*v = x;
			return (p);
		}
	}
	return (NULL);
}

/* The same, with the one- and two-byte forms (tags, lengths, small
 * numbers: most of a batch) inline. */
static inline const uint8_t *
bt_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	if (p < end && p[0] < 0x80) {
		*v = p[0];
		return (p + 1);
	}
	if (end - p >= 2 && p[1] < 0x80 && p[1] != 0) {
		*v = (uint64_t) (p[0] & 0x7f) | (uint64_t) p[1] << 7;
		return (p + 2);
	}
	return (bt_get_varint_slow(p, end, v));
}

/* Reads tag byte t (single byte tags only: fields 1..15) then a length
 * that fits in what is left. */
static inline const uint8_t *
bt_get_len(const uint8_t *p, const uint8_t *end, uint8_t t, uint64_t *len)
{
	if (p >= end || *p != t)
		return (NULL);
	if ((p = bt_get_varint(p + 1, end, len)) == NULL ||
	    *len > (uint64_t) (end - p))
		return (NULL);
	return (p);
}

/* Makes room for message n in *msgs.  0, or 1 if out of memory. */
static int
bt_grow(sli_bmsg **msgs, size_t *cap, size_t n)
{
	if (n < *cap)
		return (0);
	size_t    ncap = *cap ? *cap * 2 : 256;
	sli_bmsg *nm = realloc(*msgs, ncap * sizeof(*nm));

	if (nm == NULL)
		return (1);
	*msgs = nm;
	*cap = ncap;
	return (0);
}

int
sli_batch_view(const void *buf, size_t len, const sli_frame_limits *lim,
    sli_bmsg **msgs, size_t *cap, size_t *np)
{
	const uint8_t *p = buf, *end = p + len;
	uint64_t       blen, first, src = 0, v;
	size_t         n = 0, nd = 0;

	if (lim == NULL)
		lim = &sli_frame_limits_default;
	if (len == 0 || len > lim->max_frame)
		return (1);
	if ((p = bt_get_len(p, end, (2 << 3) | 2, &blen)) == NULL ||
	    p + blen != end || blen == 0)
		return (1);
	/* first_seq */
	if (*p != ((2 << 3) | 0) ||
	    (p = bt_get_varint(p + 1, end, &first)) == NULL || first == 0)
		return (1);
	/* lineage_source and its deltas: one lineage seq per message, into
	 * views 0..nd-1 */
	if (p < end && *p == ((3 << 3) | 0)) {
		uint64_t       dlen, lseq = 0;
		const uint8_t *dend;

		if ((p = bt_get_varint(p + 1, end, &src)) == NULL ||
		    src == 0 ||
		    (p = bt_get_len(p, end, (4 << 3) | 2, &dlen)) == NULL ||
		    dlen == 0)
			return (1);
		dend = p + dlen;
		while (p < dend) {
			if ((p = bt_get_varint(p, dend, &v)) == NULL)
				return (1);
			lseq += sli_unzigzag(v); /* the step, modulo 2^64 */
			if (lseq == 0 || nd == lim->max_batch ||
			    bt_grow(msgs, cap, nd) != 0)
				return (1);
			(*msgs)[nd++].lin_seq = lseq;
		}
	}
	/* payloads */
	while (p < end) {
		sli_bmsg *m;

		if ((p = bt_get_len(p, end, (5 << 3) | 2, &v)) == NULL ||
		    v > lim->max_payload ||
		    n == lim->max_batch || (src != 0 && n == nd) ||
		    bt_grow(msgs, cap, n) != 0)
			return (1);
		m = &(*msgs)[n];
		m->seq = first + n;
		m->lin_src = src;
		if (src == 0)
			m->lin_seq = 0;
		m->payload = p;
		m->len = (size_t) v;
		p += v;
		n++;
	}
	/* As many deltas as payloads; seqs up to first + n - 1 in 64
	 * bits. */
	if (n == 0 || (src != 0 && n != nd) || first - 1 > UINT64_MAX - n)
		return (1);
	*np = n;
	return (0);
}
