// Scalar encode/decode of the KV cache formats (kv_format.h), shared by the CPU twin and the CUDA
// kernels so both quantize with the same float operations (software conversions, round to nearest
// even, no hardware fp8/fp4 instructions needed on any GPU).
#pragma once

#include "engine/core/hd.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace avs::kvq {

AVS_HD uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
#endif
}
AVS_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    std::memcpy(&x, &u, 4);
    return x;
#endif
}
AVS_HD float rne(float x) { return rintf(x); }  // round half to even in the default rounding mode

// ---- FP8 E4M3 (bias 7, no infinities, max 448), saturating ----
constexpr float kE4m3Max = 448.0f;

AVS_HD uint8_t e4m3_encode(float x) {
    const uint32_t sign = f32_bits(x) >> 31 << 7;
    const float    a    = fabsf(x);
    if (!(a == a)) return 0;                       // NaN never enters the cache
    if (a >= kE4m3Max) return uint8_t(sign | 0x7E);
    if (a < 0.015625f) {                           // below 2^-6: subnormal, m * 2^-9
        const uint32_t m = uint32_t(rne(a * 512.0f));  // 8 rounds up into the smallest normal (0x08)
        return uint8_t(sign | m);
    }
    const uint32_t b    = f32_bits(a);
    int32_t        e    = int32_t(b >> 23) - 127 + 7;  // 1..15
    uint32_t       m    = (b >> 20) & 7u;
    const uint32_t rem  = b & 0xFFFFFu;
    if (rem > 0x80000u || (rem == 0x80000u && (m & 1u))) ++m;
    if (m == 8u) m = 0, ++e;
    if (e > 15 || (e == 15 && m == 7u)) return uint8_t(sign | 0x7E);
    return uint8_t(sign | uint32_t(e) << 3 | m);
}
AVS_HD float e4m3_decode(uint8_t c) {
    const uint32_t e = (c >> 3) & 15u, m = c & 7u;
    const float    v = e == 0 ? float(m) * 0.001953125f : bits_f32((e + 120u) << 23 | m << 20);
    return (c & 0x80u) ? -v : v;
}

// ---- FP4 E2M1: {0, 0.5, 1, 1.5, 2, 3, 4, 6}, sign in bit 3 ----
AVS_HD uint8_t e2m1_encode(float x) {
    const float a = fabsf(x);
    uint8_t     c;  // ties go to the even code, as round-to-nearest-even
    if (a <= 0.25f) c = 0;
    else if (a < 0.75f) c = 1;
    else if (a <= 1.25f) c = 2;
    else if (a < 1.75f) c = 3;
    else if (a <= 2.5f) c = 4;
    else if (a < 3.5f) c = 5;
    else if (a <= 5.0f) c = 6;
    else c = 7;
    return uint8_t(c | ((f32_bits(x) >> 31) << 3));
}
AVS_HD float e2m1_decode(uint8_t c) {
    const uint32_t m = c & 7u;
    const float    v = m < 4u ? 0.5f * float(m) : float(m < 6u ? m - 2u : 2u * m - 8u);  // 2, 3, 4, 6
    return (c & 8u) ? -v : v;
}

// ---- IEEE half (the KIVI scale and min) ----
AVS_HD uint16_t f16_encode(float x) {
    const uint32_t b = f32_bits(x), sign = (b >> 16) & 0x8000u;
    const float    a = fabsf(x);
    if (!(a == a)) return uint16_t(sign | 0x7E00u);
    if (a >= 65520.0f) return uint16_t(sign | 0x7C00u);
    if (a < 6.103515625e-05f) return uint16_t(sign | uint32_t(rne(a * 16777216.0f)));  // subnormal: m * 2^-24
    const uint32_t ab  = f32_bits(a);
    uint32_t       e   = (ab >> 23) - 127 + 15, m = (ab >> 13) & 0x3FFu;
    const uint32_t rem = ab & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (m & 1u))) ++m;
    if (m == 0x400u) m = 0, ++e;
    return uint16_t(sign | e << 10 | m);
}
AVS_HD float f16_decode(uint16_t h) {
    const uint32_t e = (h >> 10) & 31u, m = h & 0x3FFu;
    float          v;
    if (e == 0) v = float(m) * 5.9604644775390625e-08f;
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = bits_f32((e + 112u) << 23 | m << 13);
    return (h & 0x8000u) ? -v : v;
}

// ---- per-format scale rules ----
AVS_HD float fp8_scale(float amax) { return amax > 0.0f ? amax / kE4m3Max : 1.0f; }
AVS_HD float int8_scale(float amax) { return amax > 0.0f ? amax / 127.0f : 1.0f; }
AVS_HD int8_t int8_encode(float x, float scale) {
    const float q = rne(x / scale);
    return int8_t(q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q));
}

// KIVI: asymmetric 4-bit over [mn, mx]; scale and min are rounded to fp16 first and the codes are
// computed from the rounded values, so decode(encode(x)) uses exactly what is stored.
struct KiviParams {
    uint16_t scale, min;
};
AVS_HD KiviParams kivi_params(float mn, float mx) {
    const float s = (mx - mn) / 15.0f;
    return KiviParams{f16_encode(s > 0.0f ? s : 1.0f), f16_encode(mn)};
}
AVS_HD uint8_t kivi_encode(float x, float scale, float mn) {
    const float q = rne((x - mn) / scale);
    return uint8_t(q > 15.0f ? 15.0f : (q < 0.0f ? 0.0f : q));
}
AVS_HD float kivi_decode(uint8_t q, float scale, float mn) { return float(q) * scale + mn; }

// NVFP4 ("static 6" rule): tensor decode scale g = amax / (6 * 448); per 16-block an e4m3 scale of
// block_amax / 6 / g; elements e2m1(x / (e4m3(bs) * g)). Decode: e2m1 * e4m3(bs) * g.
AVS_HD float   nvfp4_tensor_scale(float amax) { return amax > 0.0f ? amax / (6.0f * kE4m3Max) : 1.0f; }
AVS_HD uint8_t nvfp4_block_scale(float block_amax, float g) { return e4m3_encode(block_amax / 6.0f / g); }
AVS_HD uint8_t nvfp4_encode(float x, float block_decode_scale) {
    return block_decode_scale > 0.0f ? e2m1_encode(x / block_decode_scale) : uint8_t(0);
}

} // namespace avs::kvq
