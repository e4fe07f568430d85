/*
 * varint.h — protobuf base-128 varints, shared by the batch codec
 * (link/batch.c) and the payload codec (pb/).
 *
 * A varint holds 7 bits per byte, low group first; every byte but the
 * last has its high bit set.  sli_varint_pack7/pack4 let a reader take
 * eight (or four) bytes at a time where the buffer has them, a few masks
 * instead of a branch per byte (pb/decode.c does).
 */
#ifndef SLI_VARINT_H
#define SLI_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of v as a varint (1..10). */
static inline size_t
sli_varint_size(uint64_t v)
{
	/* 7 bits per byte: the significant bits, rounded up. */
	return ((size_t) (64 - __builtin_clzll(v | 1) + 6) / 7);
}

/* Writes v at p; returns the byte after it. */
static inline uint8_t *
sli_varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	return (p);
}

/* sint64's zigzag form of v (modulo 2^64, as a two's complement int64):
 * 0, -1, 1, -2 ... become 0, 1, 2, 3 ..., so small steps either way are
 * short varints. */
static inline uint64_t
sli_zigzag(uint64_t v)
{
	return ((v << 1) ^ (0 - (v >> 63)));
}

/* The value whose zigzag form is z. */
static inline uint64_t
sli_unzigzag(uint64_t z)
{
	return ((z >> 1) ^ (0 - (z & 1)));
}

/* Eight bytes of 7-bit groups (high bits ignored) packed into the 56-bit
 * number they spell, little-endian group first. */
static inline uint64_t
sli_varint_pack7(uint64_t w)
{
	w = (w & 0x007f007f007f007full) | ((w & 0x7f007f007f007f00ull) >> 1);
	w = (w & 0x00003fff00003fffull) | ((w & 0x3fff00003fff0000ull) >> 2);
	return ((w & 0x000000000fffffffull) |
	    ((w & 0x0fffffff00000000ull) >> 4));
}

/* Four bytes of 7-bit groups (high bits ignored) packed into the 28-bit
 * number they spell, little-endian group first. */
static inline uint32_t
sli_varint_pack4(uint32_t w)
{
	w = (w & 0x007f007fu) | ((w & 0x7f007f00u) >> 1);
	return ((w & 0x00003fffu) | ((w & 0x3fff0000u) >> 2));
}

#endif /* SLI_VARINT_H */
