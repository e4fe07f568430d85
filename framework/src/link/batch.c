/*
 * batch.c — the fast path for Batch frames (internal).  See batch.h.
 *
 * Batch frames carry every message of a link, so their cost is the cost
 * of a link: through protobuf-c, each message costs three allocations and
 * two walks of the message tree on decode, and two size computations on
 * encode.  This file writes and reads the one canonical encoding of a
 * Batch directly, with no allocation per message.  It is not a second
 * decoder for everything: anything that is not exactly the canonical form
 * (unknown or repeated fields, other frame kinds, any rule broken) is
 * left to sli_frame_decode, which gives the error message.  So the rules
 * of frame.h hold whichever path a frame takes; the fuzz target checks
 * that the two agree.
 *
 * Canonical form (protobuf wire format, fields in number order, proto3
 * defaults omitted):
 *
 *	Frame:   field 2 (batch), length-delimited
 *	Batch:   field 1 (messages), length-delimited, once per message
 *	Message: field 1 seq varint (nonzero)
 *	         field 2 lineage, length-delimited, if present:
 *	             field 1 source varint, field 2 seq varint (both nonzero)
 *	         field 3 payload, length-delimited, if non-empty
 */
#include <string.h>

#include "core/varint.h"
#include "link/batch.h"

/* ---- encoding ------------------------------------------------------------ */

/* Size of one Message body (without its own tag and length). */
static size_t
bt_msg_size(const sli_bmsg *m)
{
	size_t n = 1 + sli_varint_size(m->seq);

	if (m->lin_src != 0 && m->lin_seq != 0) {
		size_t ln = 2 + sli_varint_size(m->lin_src) +
		    sli_varint_size(m->lin_seq);
		n += 1 + sli_varint_size(ln) + ln;
	}
	if (m->len > 0)
		n += 1 + sli_varint_size(m->len) + m->len;
	return (n);
}

size_t
sli_batch_size(sli_bmsg *msgs, size_t n)
{
	size_t body = 0;

	for (size_t i = 0; i < n; i++) {
		size_t ms = bt_msg_size(&msgs[i]);
		msgs[i].wsize = ms;
		body += 1 + sli_varint_size(ms) + ms;
	}
	return (1 + sli_varint_size(body) + body);
}

size_t
sli_batch_write(const sli_bmsg *msgs, size_t n, uint8_t *out)
{
	uint8_t *p = out;
	size_t   body = 0;

	for (size_t i = 0; i < n; i++)
		body += 1 + sli_varint_size(msgs[i].wsize) + msgs[i].wsize;
	*p++ = (2 << 3) | 2; /* Frame.batch */
	p = sli_varint_put(p, body);
	for (size_t i = 0; i < n; i++) {
		const sli_bmsg *m = &msgs[i];

		*p++ = (1 << 3) | 2; /* Batch.messages */
		p = sli_varint_put(p, m->wsize);
		*p++ = (1 << 3) | 0; /* Message.seq */
		p = sli_varint_put(p, m->seq);
		if (m->lin_src != 0 && m->lin_seq != 0) {
			*p++ = (2 << 3) | 2; /* Message.lineage */
			p = sli_varint_put(p, 2 + sli_varint_size(m->lin_src) +
			    sli_varint_size(m->lin_seq));
			*p++ = (1 << 3) | 0;
			p = sli_varint_put(p, m->lin_src);
			*p++ = (2 << 3) | 0;
			p = sli_varint_put(p, m->lin_seq);
		}
		if (m->len > 0) {
			*p++ = (3 << 3) | 2; /* Message.payload */
			p = sli_varint_put(p, m->len);
			memcpy(p, m->payload, m->len);
			p += m->len;
		}
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

int
sli_batch_view(const void *buf, size_t len, const sli_frame_limits *lim,
    sli_bmsg **msgs, size_t *cap, size_t *np)
{
	const uint8_t *p = buf, *end = p + len;
	uint64_t       blen, prev = 0;
	size_t         n = 0;

	if (lim == NULL)
		lim = &sli_frame_limits_default;
	if (len == 0 || len > lim->max_frame)
		return (1);
	if ((p = bt_get_len(p, end, (2 << 3) | 2, &blen)) == NULL ||
	    p + blen != end || blen == 0)
		return (1);
	while (p < end) {
		uint64_t       mlen, v;
		const uint8_t *mend;
		sli_bmsg       m = { 0 };

		if ((p = bt_get_len(p, end, (1 << 3) | 2, &mlen)) == NULL)
			return (1);
		mend = p + mlen;
		/* seq */
		if (p >= mend || *p != ((1 << 3) | 0) ||
		    (p = bt_get_varint(p + 1, mend, &m.seq)) == NULL ||
		    m.seq == 0 || (n > 0 && m.seq != prev + 1))
			return (1);
		/* lineage */
		if (p < mend && *p == ((2 << 3) | 2)) {
			const uint8_t *lend;
			if ((p = bt_get_len(p, mend, (2 << 3) | 2,
			    &v)) == NULL)
				return (1);
			lend = p + v;
			if (p >= lend || *p != ((1 << 3) | 0) ||
			    (p = bt_get_varint(p + 1, lend, &m.lin_src)) ==
			    NULL || p >= lend || *p != ((2 << 3) | 0) ||
			    (p = bt_get_varint(p + 1, lend, &m.lin_seq)) ==
			    NULL || p != lend || m.lin_src == 0 ||
			    m.lin_seq == 0)
				return (1);
		}
		/* payload */
		if (p < mend && *p == ((3 << 3) | 2)) {
			if ((p = bt_get_len(p, mend, (3 << 3) | 2,
			    &v)) == NULL || v == 0 || v > lim->max_payload)
				return (1);
			m.payload = p;
			m.len = (size_t) v;
			p += v;
		}
		if (p != mend)
			return (1);
		if (n == lim->max_batch)
			return (1);
		if (n == *cap) {
			size_t    ncap = *cap ? *cap * 2 : 256;
			sli_bmsg *nm = realloc(*msgs, ncap * sizeof(*nm));
			if (nm == NULL)
				return (1);
			*msgs = nm;
			*cap = ncap;
		}
		(*msgs)[n++] = m;
		prev = m.seq;
	}
	*np = n;
	return (0);
}
