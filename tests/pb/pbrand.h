/*
 * pbrand.h — the seeded generator of tests/pb's random messages and
 * encodings (splitmix64): the same seed gives the same inputs on every
 * machine, so a failure reproduces.  Header-only; each test program has
 * its own state.
 */
#ifndef PBRAND_H
#define PBRAND_H

#include <stdint.h>

static uint64_t pbr_state;

static inline void
pbr_seed(uint64_t seed)
{
	pbr_state = seed;
}

/* The next 64 random bits. */
static inline uint64_t
pbr_next(void)
{
	uint64_t z = (pbr_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31));
}

/* A number below n (n > 0). */
static inline uint32_t
pbr_below(uint32_t n)
{
	return ((uint32_t) (pbr_next() % n));
}

#endif /* PBRAND_H */
