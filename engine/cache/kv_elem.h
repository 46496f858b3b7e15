// Decode one element of a KV slot (kv_format.h) to f32: the per-element form of kv_decode_frame,
// shared by the CUDA read-back kernel (kv_read) and any host code that wants single values.
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/kv_quant.h"
#include "engine/core/dtype.h"

namespace avs {

AVS_HD uint8_t kv_nibble(const uint8_t * data, int64_t i) { return (i & 1) ? uint8_t(data[i / 2] >> 4) : uint8_t(data[i / 2] & 0x0F); }

AVS_HD float kv_decode_elem(const KvLayout & L, const uint8_t * slot, bool is_v, int64_t t, int64_t h, int64_t d) {
    const int64_t   H = L.heads, D = L.head_dim, i = (t * H + h) * D + d;
    const uint8_t * data = slot + (is_v ? L.v_data : L.k_data);
    const uint8_t * meta = slot + (is_v ? L.v_meta : L.k_meta);
    switch (L.fmt) {
        case KvFormat::f32: return reinterpret_cast<const float *>(data)[i];
        case KvFormat::bf16: return bf16_to_f32(reinterpret_cast<const uint16_t *>(data)[i]);
        case KvFormat::fp8:
        case KvFormat::int8: {
            const float sc = reinterpret_cast<const float *>(meta)[(t / kKvBlockTokens) * H + h];
            if (L.fmt == KvFormat::int8 && !is_v) {
                const float * mean = reinterpret_cast<const float *>(meta) + int64_t(L.blocks()) * H;
                return float(int8_t(data[i])) * sc + mean[h * D + d];
            }
            return fp8e4m3_to_f32(data[i]) * sc;
        }
        case KvFormat::int4: {
            const uint16_t * m = reinterpret_cast<const uint16_t *>(meta) +
                                 (is_v ? ((t * H + h) * (D / kKiviGroupV) + d / kKiviGroupV) * 2 : (((t / kKiviGroupK) * H + h) * D + d) * 2);
            return kvq::kivi_decode(kv_nibble(data, i), f16_to_f32(m[0]), f16_to_f32(m[1]));
        }
        case KvFormat::nvfp4: {
            const float g = reinterpret_cast<const float *>(meta)[0];
            return kvq::e2m1_decode(kv_nibble(data, i)) * fp8e4m3_to_f32(meta[16 + i / kNvfp4Block]) * g;
        }
    }
    return 0.0f;
}

} // namespace avs
