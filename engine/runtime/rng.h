// Counter-based Gaussian noise: value i of stream s under seed k is a pure function of (k, s, i),
// so noise is reproducible whatever the thread count or the order chunks are generated in.
#pragma once

#include <cstdint>

namespace avs {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

inline uint64_t rng_stream(uint64_t seed, uint64_t a, uint64_t b = 0) {
    return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b * 0x2545f4914f6cdd1dull));
}

// Fill dst[0..n) with N(0, 1) samples of `stream` (Box-Muller on 2 x 24-bit uniforms). Multithreaded.
void fill_normal(float * dst, int64_t n, uint64_t stream, float stddev = 1.0f);

} // namespace avs
