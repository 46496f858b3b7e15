// Decoding an 8-bit KV store's raw tile on the device (fp8: e4m3 K and V; int8: int8 K minus its
// per-channel mean, e4m3 V; one fp32 scale per 64-token block and head): kv_decode_elem's math
// (engine/cache/kv_elem.h), vectorised 8 channels at a time with every scale applied in fp32 and the
// result rounded to bf16. The warp-specialized attention's producer runs it while the consumers
// multiply, so its per-value cost is what matters: scales and means are loaded once per tile / frame,
// e4m3 pairs go through the hardware conversion (sm_89+). .cu files only.
#pragma once

#include "engine/cache/kv_format.h"
#include "kernels/attention_tiles.cuh"

#include <cuda_fp8.h>

namespace avs::kernels {

template <int D> struct Kv8Decoder {
    static constexpr int kMaxBlocks = 3;  // 64-token scale blocks a tile of up to 128 rows can touch
    float ks[kMaxBlocks], vs[kMaxBlocks];
    float mean[8];  // int8 keys: this thread's 8 channel means (per frame)
    int   b0 = 0;   // the tile's first block

    // Per tile: the scales of the blocks rows [r0, r0 + rows) of head h fall in.
    __device__ __forceinline__ void tile(const KvLayout & L, const uint8_t * slot, int h, int r0) {
        const float * km = reinterpret_cast<const float *>(slot + L.k_meta);
        const float * vm = reinterpret_cast<const float *>(slot + L.v_meta);
        b0 = r0 / kKvBlockTokens;
        const int nb = L.blocks();
#pragma unroll
        for (int i = 0; i < kMaxBlocks; ++i) {
            const int b = min(b0 + i, nb - 1);
            ks[i] = __ldg(km + b * L.heads + h), vs[i] = __ldg(vm + b * L.heads + h);
        }
    }
    // Per frame (int8 only): the means of channels [d0, d0 + 8) of head h (4-byte aligned: scalar loads).
    __device__ __forceinline__ void frame_means(const KvLayout & L, const uint8_t * slot, int h, int d0) {
        const float * m = reinterpret_cast<const float *>(slot + L.k_meta) + L.blocks() * L.heads + h * D + d0;
#pragma unroll
        for (int i = 0; i < 8; ++i) mean[i] = __ldg(m + i);
    }
    __device__ __forceinline__ float pick(const float (&s)[kMaxBlocks], int tok) const {
        const int i = tok / kKvBlockTokens - b0;
        return i == 0 ? s[0] : i == 1 ? s[1] : s[2];
    }
    // 8 e4m3 bytes times `scale` as 8 bf16 (16 bytes).
    static __device__ __forceinline__ uint4 e4m3x8(uint2 w, float scale) {
        uint32_t o[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t    word = i < 2 ? w.x : w.y;
            const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(i % 2 ? word >> 16 : word & 0xFFFFu), __NV_E4M3);
            const float2      f = __half22float2(*reinterpret_cast<const __half2 *>(&hr));
            o[i] = attn::pack_bf16(f.x * scale, f.y * scale);
        }
        return make_uint4(o[0], o[1], o[2], o[3]);
    }
    // Row `tok` (token offset in the frame) of the tile: K and V channels [d0, d0 + 8) from their raw rows.
    template <int F>
    __device__ __forceinline__ void decode(const uint8_t * krow, const uint8_t * vrow, int tok, int d0, uint4 & k, uint4 & v) const {
        const uint2 kw = *reinterpret_cast<const uint2 *>(krow + d0), vw = *reinterpret_cast<const uint2 *>(vrow + d0);
        v = e4m3x8(vw, pick(vs, tok));
        if constexpr (F == int(KvFormat::int8)) {
            const float     sc = pick(ks, tok);
            const uint8_t * b = reinterpret_cast<const uint8_t *>(&kw);
            float           x[8];
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = fmaf(float(int8_t(b[i])), sc, mean[i]);
            k = make_uint4(attn::pack_bf16(x[0], x[1]), attn::pack_bf16(x[2], x[3]), attn::pack_bf16(x[4], x[5]), attn::pack_bf16(x[6], x[7]));
        } else {
            k = e4m3x8(kw, pick(ks, tok));
        }
    }
};

} // namespace avs::kernels
