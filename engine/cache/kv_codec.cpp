#include "engine/cache/kv_codec.h"

#include "engine/cache/kv_quant.h"
#include "engine/core/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace avs {
namespace {

using namespace kvq;

struct Dims {
    int64_t T, H, D;
    int64_t at(int64_t t, int64_t h, int64_t d) const { return (t * H + h) * D + d; }
};

// 8-bit e4m3 with an f32 scale per (64-token block, head).
void encode_fp8(const Dims & s, const float * x, uint8_t * data, float * scales) {
    for (int64_t b0 = 0, b = 0; b0 < s.T; b0 += kKvBlockTokens, ++b)
        for (int64_t h = 0; h < s.H; ++h) {
            const int64_t b1 = std::min<int64_t>(s.T, b0 + kKvBlockTokens);
            float         amax = 0.0f;
            for (int64_t t = b0; t < b1; ++t)
                for (int64_t d = 0; d < s.D; ++d) amax = std::max(amax, std::fabs(x[s.at(t, h, d)]));
            const float sc = fp8_scale(amax);
            scales[b * s.H + h] = sc;
            for (int64_t t = b0; t < b1; ++t)
                for (int64_t d = 0; d < s.D; ++d) data[s.at(t, h, d)] = f32_to_fp8e4m3(x[s.at(t, h, d)] / sc);
        }
}
void decode_fp8(const Dims & s, const uint8_t * data, const float * scales, float * x) {
    for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.H; ++h) {
            const float sc = scales[(t / kKvBlockTokens) * s.H + h];
            for (int64_t d = 0; d < s.D; ++d) x[s.at(t, h, d)] = fp8e4m3_to_f32(data[s.at(t, h, d)]) * sc;
        }
}

// Sage keys: int8 of k - mean (mean over the frame's tokens per head and channel).
void encode_int8_keys(const Dims & s, const float * x, int8_t * data, float * scales, float * mean) {
    for (int64_t h = 0; h < s.H; ++h)
        for (int64_t d = 0; d < s.D; ++d) {
            float sum = 0.0f;
            for (int64_t t = 0; t < s.T; ++t) sum += x[s.at(t, h, d)];
            mean[h * s.D + d] = sum / float(s.T);
        }
    for (int64_t b0 = 0, b = 0; b0 < s.T; b0 += kKvBlockTokens, ++b)
        for (int64_t h = 0; h < s.H; ++h) {
            const int64_t b1 = std::min<int64_t>(s.T, b0 + kKvBlockTokens);
            float         amax = 0.0f;
            for (int64_t t = b0; t < b1; ++t)
                for (int64_t d = 0; d < s.D; ++d) amax = std::max(amax, std::fabs(x[s.at(t, h, d)] - mean[h * s.D + d]));
            const float sc = int8_scale(amax);
            scales[b * s.H + h] = sc;
            for (int64_t t = b0; t < b1; ++t)
                for (int64_t d = 0; d < s.D; ++d) data[s.at(t, h, d)] = int8_encode(x[s.at(t, h, d)] - mean[h * s.D + d], sc);
        }
}
void decode_int8_keys(const Dims & s, const int8_t * data, const float * scales, const float * mean, float * x) {
    for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.H; ++h) {
            const float sc = scales[(t / kKvBlockTokens) * s.H + h];
            for (int64_t d = 0; d < s.D; ++d) x[s.at(t, h, d)] = float(data[s.at(t, h, d)]) * sc + mean[h * s.D + d];
        }
}

void put_nibble(uint8_t * data, int64_t i, uint8_t code) {
    uint8_t & b = data[i / 2];
    b = (i & 1) ? uint8_t((b & 0x0F) | (code << 4)) : uint8_t((b & 0xF0) | (code & 0x0F));
}
uint8_t get_nibble(const uint8_t * data, int64_t i) { return (i & 1) ? uint8_t(data[i / 2] >> 4) : uint8_t(data[i / 2] & 0x0F); }

// KIVI keys: per channel over groups of kKiviGroupK tokens. meta [groups][H][D] x (scale, min) fp16.
void encode_kivi_keys(const Dims & s, const float * x, uint8_t * data, uint16_t * meta) {
    for (int64_t g0 = 0, g = 0; g0 < s.T; g0 += kKiviGroupK, ++g) {
        const int64_t g1 = std::min<int64_t>(s.T, g0 + kKiviGroupK);
        for (int64_t h = 0; h < s.H; ++h)
            for (int64_t d = 0; d < s.D; ++d) {
                float mn = INFINITY, mx = -INFINITY;
                for (int64_t t = g0; t < g1; ++t) mn = std::min(mn, x[s.at(t, h, d)]), mx = std::max(mx, x[s.at(t, h, d)]);
                const KiviParams p = kivi_params(mn, mx);
                uint16_t *       m = meta + ((g * s.H + h) * s.D + d) * 2;
                m[0] = p.scale, m[1] = p.min;
                const float sc = f16_to_f32(p.scale), lo = f16_to_f32(p.min);
                for (int64_t t = g0; t < g1; ++t) put_nibble(data, s.at(t, h, d), kivi_encode(x[s.at(t, h, d)], sc, lo));
            }
    }
}
void decode_kivi_keys(const Dims & s, const uint8_t * data, const uint16_t * meta, float * x) {
    for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.H; ++h)
            for (int64_t d = 0; d < s.D; ++d) {
                const uint16_t * m = meta + (((t / kKiviGroupK) * s.H + h) * s.D + d) * 2;
                x[s.at(t, h, d)] = kivi_decode(get_nibble(data, s.at(t, h, d)), f16_to_f32(m[0]), f16_to_f32(m[1]));
            }
}

// KIVI values: per token over groups of kKiviGroupV channels. meta [T][H][D/G] x (scale, min) fp16.
void encode_kivi_values(const Dims & s, const float * x, uint8_t * data, uint16_t * meta) {
    const int64_t G = kKiviGroupV, ng = s.D / G;
    for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.H; ++h)
            for (int64_t c = 0; c < ng; ++c) {
                float mn = INFINITY, mx = -INFINITY;
                for (int64_t d = c * G; d < (c + 1) * G; ++d) mn = std::min(mn, x[s.at(t, h, d)]), mx = std::max(mx, x[s.at(t, h, d)]);
                const KiviParams p = kivi_params(mn, mx);
                uint16_t *       m = meta + ((t * s.H + h) * ng + c) * 2;
                m[0] = p.scale, m[1] = p.min;
                const float sc = f16_to_f32(p.scale), lo = f16_to_f32(p.min);
                for (int64_t d = c * G; d < (c + 1) * G; ++d) put_nibble(data, s.at(t, h, d), kivi_encode(x[s.at(t, h, d)], sc, lo));
            }
}
void decode_kivi_values(const Dims & s, const uint8_t * data, const uint16_t * meta, float * x) {
    const int64_t ng = s.D / kKiviGroupV;
    for (int64_t t = 0; t < s.T; ++t)
        for (int64_t h = 0; h < s.H; ++h)
            for (int64_t d = 0; d < s.D; ++d) {
                const uint16_t * m = meta + ((t * s.H + h) * ng + d / kKiviGroupV) * 2;
                x[s.at(t, h, d)] = kivi_decode(get_nibble(data, s.at(t, h, d)), f16_to_f32(m[0]), f16_to_f32(m[1]));
            }
}

// NVFP4: meta = f32 tensor scale (16 bytes), then e4m3 block scales [T][H][D/16].
void encode_nvfp4(const Dims & s, const float * x, uint8_t * data, uint8_t * meta) {
    const int64_t n = s.T * s.H * s.D;
    float         amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float g = nvfp4_tensor_scale(amax);
    std::memset(meta, 0, 16);
    std::memcpy(meta, &g, 4);
    uint8_t * bs = meta + 16;
    for (int64_t b = 0; b < n / kNvfp4Block; ++b) {
        const float * xb = x + b * kNvfp4Block;
        float         ba = 0.0f;
        for (int i = 0; i < kNvfp4Block; ++i) ba = std::max(ba, std::fabs(xb[i]));
        bs[b] = nvfp4_block_scale(ba, g);
        const float dec = fp8e4m3_to_f32(bs[b]) * g;
        for (int i = 0; i < kNvfp4Block; ++i) put_nibble(data, b * kNvfp4Block + i, nvfp4_encode(xb[i], dec));
    }
}
void decode_nvfp4(const Dims & s, const uint8_t * data, const uint8_t * meta, float * x) {
    float g;
    std::memcpy(&g, meta, 4);
    const int64_t n = s.T * s.H * s.D;
    for (int64_t i = 0; i < n; ++i) x[i] = e2m1_decode(get_nibble(data, i)) * fp8e4m3_to_f32(meta[16 + i / kNvfp4Block]) * g;
}

} // namespace

void kv_encode_frame(const KvLayout & L, uint8_t * slot, const float * k, const float * v) {
    const Dims    s{L.tokens, L.heads, L.head_dim};
    const int64_t n = L.elems();
    uint8_t *kd = slot + L.k_data, *km = slot + L.k_meta, *vd = slot + L.v_data, *vm = slot + L.v_meta;
    switch (L.fmt) {
        case KvFormat::f32:
            std::memcpy(kd, k, size_t(n) * 4), std::memcpy(vd, v, size_t(n) * 4);
            break;
        case KvFormat::bf16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t a = f32_to_bf16(k[i]), b = f32_to_bf16(v[i]);
                std::memcpy(kd + 2 * i, &a, 2), std::memcpy(vd + 2 * i, &b, 2);
            }
            break;
        case KvFormat::fp8:
            encode_fp8(s, k, kd, reinterpret_cast<float *>(km));
            encode_fp8(s, v, vd, reinterpret_cast<float *>(vm));
            break;
        case KvFormat::int8:
            encode_int8_keys(s, k, reinterpret_cast<int8_t *>(kd), reinterpret_cast<float *>(km),
                             reinterpret_cast<float *>(km) + int64_t(L.blocks()) * L.heads);
            encode_fp8(s, v, vd, reinterpret_cast<float *>(vm));
            break;
        case KvFormat::int4:
            encode_kivi_keys(s, k, kd, reinterpret_cast<uint16_t *>(km));
            encode_kivi_values(s, v, vd, reinterpret_cast<uint16_t *>(vm));
            break;
        case KvFormat::nvfp4:
            encode_nvfp4(s, k, kd, km);
            encode_nvfp4(s, v, vd, vm);
            break;
    }
}

void kv_decode_frame(const KvLayout & L, const uint8_t * slot, float * k, float * v) {
    const Dims    s{L.tokens, L.heads, L.head_dim};
    const int64_t n = L.elems();
    const uint8_t *kd = slot + L.k_data, *km = slot + L.k_meta, *vd = slot + L.v_data, *vm = slot + L.v_meta;
    switch (L.fmt) {
        case KvFormat::f32:
            if (k) std::memcpy(k, kd, size_t(n) * 4);
            if (v) std::memcpy(v, vd, size_t(n) * 4);
            break;
        case KvFormat::bf16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t a, b;
                std::memcpy(&a, kd + 2 * i, 2), std::memcpy(&b, vd + 2 * i, 2);
                if (k) k[i] = bf16_to_f32(a);
                if (v) v[i] = bf16_to_f32(b);
            }
            break;
        case KvFormat::fp8:
            if (k) decode_fp8(s, kd, reinterpret_cast<const float *>(km), k);
            if (v) decode_fp8(s, vd, reinterpret_cast<const float *>(vm), v);
            break;
        case KvFormat::int8:
            if (k)
                decode_int8_keys(s, reinterpret_cast<const int8_t *>(kd), reinterpret_cast<const float *>(km),
                                 reinterpret_cast<const float *>(km) + int64_t(L.blocks()) * L.heads, k);
            if (v) decode_fp8(s, vd, reinterpret_cast<const float *>(vm), v);
            break;
        case KvFormat::int4:
            if (k) decode_kivi_keys(s, kd, reinterpret_cast<const uint16_t *>(km), k);
            if (v) decode_kivi_values(s, vd, reinterpret_cast<const uint16_t *>(vm), v);
            break;
        case KvFormat::nvfp4:
            if (k) decode_nvfp4(s, kd, km, k);
            if (v) decode_nvfp4(s, vd, vm, v);
            break;
    }
}

} // namespace avs
