// A host model of how Hopper's 8-bit (e4m3 / e5m2) tensor-core MMA adds a k-step's products to its fp32
// accumulator, for tests that ask what the hardware's arithmetic does to a long sum. As measured by
// others (DeepSeek-V3's "about 14 bits", SageAttention2's "FP22": 1 sign, 8 exponent, 13 mantissa bits):
// the products (exact: 4 x 4 significant bits) and the accumulator are aligned to the largest exponent
// among them, bits below 2^(emax - frac_bits) are dropped (toward zero), the aligned terms are summed
// exactly, and the sum keeps frac_bits bits after its leading one. `group` products enter per addition
// (an m64nNk32 instruction: 32, if the hardware does not split it).
// The consequence that matters for attention: once a running sum is 2^frac_bits times larger than the
// terms it still receives, they are lost whole (swamping), so a sum over tens of thousands of keys in one
// accumulator stalls; a fresh accumulator per tile, added into fp32 (two-level accumulation), does not.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace avs::test {

struct MmaAcc {
    int frac_bits = 13;
    int group     = 32;
};

// exponent of |x| (x finite, nonzero), as ilogb; INT_MIN for 0
inline int exponent_of(float x) {
    if (x == 0.0f) return INT_MIN;
    uint32_t u;
    std::memcpy(&u, &x, 4);
    const int e = int((u >> 23) & 0xffu);
    return e != 0 ? e - 127 : std::ilogb(x);
}

// c + p[0] + ... + p[n - 1] as one accumulation step of the modelled MMA (n <= the model's group).
inline float mma_acc_step(float c, const float * p, int n, const MmaAcc & m) {
    int emax = exponent_of(c);
    for (int i = 0; i < n; ++i) emax = std::max(emax, exponent_of(p[i]));
    if (emax == INT_MIN) return c;
    const double unit = std::ldexp(1.0, emax - m.frac_bits), inv = 1.0 / unit;  // powers of two: exact
    double       s    = std::trunc(double(c) * inv);
    for (int i = 0; i < n; ++i) s += std::trunc(double(p[i]) * inv);  // integers below 2^(frac_bits + 6): exact
    if (s == 0.0) return 0.0f;
    const double r = s * unit, keep = std::ldexp(1.0, std::ilogb(r) - m.frac_bits);
    return float(std::trunc(r / keep) * keep);
}

// c + sum of p[0 .. n) by the modelled MMA, `group` products per step.
inline float mma_acc_sum(float c, const float * p, int n, const MmaAcc & m) {
    for (int i = 0; i < n; i += m.group) c = mma_acc_step(c, p + i, std::min(m.group, n - i), m);
    return c;
}

} // namespace avs::test
