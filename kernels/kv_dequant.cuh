// Vectorised decode of stored KV rows on the device: 8 consecutive channels of one token and head,
// every scale, mean and minimum applied in fp32 (kv_decode_elem's math, engine/cache/kv_elem.h).
// Used by the warp-specialized attention's producer to turn raw tiles into bf16 ones. .cu files only.
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/kv_quant.h"
#include "kernels/attention_tiles.cuh"

namespace avs::kernels {

// Bytes per stored row of one head: 8-bit formats D, 4-bit formats D / 2.
template <int D, int F> __host__ __device__ constexpr int kv_row_bytes() {
    return (F == int(KvFormat::int4) || F == int(KvFormat::nvfp4)) ? D / 2 : D;
}

// x[i] = the value of channel d0 + i of token `tok`, head h; `row` points at that token's (head's) raw bytes.
template <int D, int F>
__device__ __forceinline__ void kv_decode8(const KvLayout & L, const uint8_t * slot, bool is_v, const uint8_t * row, int64_t tok, int h,
                                           int d0, float (&x)[8]) {
    const uint8_t * meta = slot + (is_v ? L.v_meta : L.k_meta);
    if constexpr (F == int(KvFormat::fp8) || F == int(KvFormat::int8)) {
        const uint2 w = *reinterpret_cast<const uint2 *>(row + d0);
        const float sc = __ldg(reinterpret_cast<const float *>(meta) + (tok / kKvBlockTokens) * L.heads + h);
        if (F == int(KvFormat::int8) && !is_v) {  // keys: int8 * scale + the per-channel mean
            // scalar loads: the means follow blocks x heads scales, so they are only 4-byte aligned
            const float *   mean = reinterpret_cast<const float *>(meta) + int64_t(L.blocks()) * L.heads + int64_t(h) * D + d0;
            const uint8_t * b = reinterpret_cast<const uint8_t *>(&w);
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = fmaf(float(int8_t(b[i])), sc, __ldg(mean + i));
        } else {  // e4m3 (keys of fp8, values of both)
            const float s = sc * 256.0f;  // e4m3x2_scaled gives value * 2^-8
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float2 f = attn::e4m3x2_scaled(i < 2 ? w.x : w.y, i % 2);
                x[2 * i] = f.x * s, x[2 * i + 1] = f.y * s;
            }
        }
    } else if constexpr (F == int(KvFormat::int4)) {
        const uint32_t w = *reinterpret_cast<const uint32_t *>(row + d0 / 2);
        if (!is_v) {  // per channel of the 32-token group: (scale, min) fp16 pairs
            const uint16_t * m = reinterpret_cast<const uint16_t *>(meta) + ((tok / kKiviGroupK * L.heads + h) * D + d0) * 2;
            const uint4      m0 = __ldg(reinterpret_cast<const uint4 *>(m)), m1 = __ldg(reinterpret_cast<const uint4 *>(m + 8));
            const uint16_t * mm0 = reinterpret_cast<const uint16_t *>(&m0);
            const uint16_t * mm1 = reinterpret_cast<const uint16_t *>(&m1);
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const uint16_t * p = i < 4 ? mm0 + 2 * i : mm1 + 2 * (i - 4);
                x[i] = kvq::kivi_decode(uint8_t((w >> (4 * i)) & 15u), f16_to_f32(p[0]), f16_to_f32(p[1]));
            }
        } else {  // per token, 32-channel group
            const uint16_t * m = reinterpret_cast<const uint16_t *>(meta) + ((tok * L.heads + h) * (D / kKiviGroupV) + d0 / kKiviGroupV) * 2;
            const float      sc = f16_to_f32(__ldg(m)), mn = f16_to_f32(__ldg(m + 1));
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = kvq::kivi_decode(uint8_t((w >> (4 * i)) & 15u), sc, mn);
        }
    } else if constexpr (F == int(KvFormat::nvfp4)) {  // e2m1 x e4m3 micro-block scale x fp32 tensor scale
        const uint32_t w = *reinterpret_cast<const uint32_t *>(row + d0 / 2);
        const float    g = __ldg(reinterpret_cast<const float *>(meta));
        const float    sc = fp8e4m3_to_f32(__ldg(meta + 16 + (tok * L.heads + h) * (D / kNvfp4Block) + d0 / kNvfp4Block)) * g;
#pragma unroll
        for (int i = 0; i < 8; ++i) x[i] = kvq::e2m1_decode(uint8_t((w >> (4 * i)) & 15u)) * sc;
    }
}

} // namespace avs::kernels
