// Scalar encode/decode of the KV cache formats (kv_format.h), shared by the CPU twin and the CUDA
// kernels so both quantize with the same float operations (software conversions, round to nearest
// even, no hardware fp8/fp4 instructions needed on any GPU).
#pragma once

#include "engine/core/dtype.h"
#include "engine/core/hd.h"

#include <cmath>
#include <cstdint>

namespace avs::kvq {

AVS_HD float rne(float x) { return rintf(x); }  // round half to even in the default rounding mode

// FP8 E4M3 and IEEE half come from engine/core/dtype.h (f32_to_fp8e4m3 saturates at 448,
// f32_to_f16 rounds to nearest even); the helpers below add E2M1 and the per-format scale rules.
constexpr float kE4m3Max = 448.0f;

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
    return KiviParams{f32_to_f16(s > 0.0f ? s : 1.0f), f32_to_f16(mn)};
}
AVS_HD uint8_t kivi_encode(float x, float scale, float mn) {
    const float q = rne((x - mn) / scale);
    return uint8_t(q > 15.0f ? 15.0f : (q < 0.0f ? 0.0f : q));
}
AVS_HD float kivi_decode(uint8_t q, float scale, float mn) { return float(q) * scale + mn; }

// NVFP4 ("static 6" rule): tensor decode scale g = amax / (6 * 448); per 16-block an e4m3 scale of
// block_amax / 6 / g; elements e2m1(x / (e4m3(bs) * g)). Decode: e2m1 * e4m3(bs) * g.
AVS_HD float   nvfp4_tensor_scale(float amax) { return amax > 0.0f ? amax / (6.0f * kE4m3Max) : 1.0f; }
AVS_HD uint8_t nvfp4_block_scale(float block_amax, float g) { return f32_to_fp8e4m3(block_amax / 6.0f / g); }
AVS_HD uint8_t nvfp4_encode(float x, float block_decode_scale) {
    return block_decode_scale > 0.0f ? e2m1_encode(x / block_decode_scale) : uint8_t(0);
}

} // namespace avs::kvq
