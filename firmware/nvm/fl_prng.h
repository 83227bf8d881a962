/* Pseudo-random numbers for the emulated NVM.
 *  - xoshiro256** (Blackman & Vigna, 2018), seeded through SplitMix64: the read-noise stream
 *    (BSC, asymmetric), one 64-bit output gives two independent 32-bit uniforms.
 *  - fl_mix64: the SplitMix64 output function, a bijective 64-bit mixer, used as a counter-based
 *    generator: fl_mix64(seed + (i + 1) * golden) is a uniform 64-bit value for cell i that does
 *    not depend on when or how often cell i is read (stuck-at map). */
#ifndef FL_PRNG_H
#define FL_PRNG_H

#include <stdint.h>

#define FL_GOLDEN64 0x9E3779B97F4A7C15ull

struct fl_xoshiro {
    uint64_t s[4];
};

static inline uint64_t fl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void fl_xoshiro_seed(struct fl_xoshiro *g, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += FL_GOLDEN64;
        g->s[i] = fl_mix64(seed);
    }
}

static inline uint64_t fl_rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t fl_xoshiro_next(struct fl_xoshiro *g)
{
    uint64_t *s = g->s;
    uint64_t result = fl_rotl64(s[1] * 5u, 7) * 9u;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fl_rotl64(s[3], 45);
    return result;
}

#endif
