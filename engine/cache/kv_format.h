// KV cache storage formats and the byte layout of one ring slot (one frame of one layer's K and V),
// shared verbatim by the host, the CPU twin and the CUDA kernels (plain struct, passed by value).
//
// A slot is [K data | K meta | V data | V meta], each region 16-byte aligned (cp.async), the slot
// rounded to 256 bytes. Data is token-major [tokens, heads, head_dim] (4-bit formats: two values per
// byte, the even channel in the low nibble). Meta per format:
//   f32, bf16  none
//   fp8        K, V: e4m3; f32 scale per (64-token block, head)            meta [blocks][heads]
//   int8       K: int8 of (k - mean) with an f32 scale per (block, head), then the f32 per-channel
//              mean of the frame [heads][head_dim] (Sage's smoothing; attention adds the mean back);
//              V: e4m3 with an f32 scale per (block, head)
//   int4       KIVI. K per channel: (scale, min) fp16 per (32-token group, head, channel)
//              meta [groups][heads][head_dim][2]; V per token: (scale, min) fp16 per (token, head,
//              32-channel group) meta [tokens][heads][head_dim/32][2]. Codes 0..15 = round((x - min) / scale)
//   nvfp4      K, V: E2M1 codes, an E4M3 scale per 16 channels of a (token, head) [tokens][heads][head_dim/16],
//              after an f32 tensor scale per slot (first 16 bytes of the meta)
// The 64-token blocks are the attention kernel's key tiles: a tile never crosses a frame, so each
// tile has one scale per head.
#pragma once

#include "engine/core/hd.h"
#include "engine/core/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace avs {

enum class KvFormat : int32_t { f32 = 0, bf16 = 1, fp8 = 2, int8 = 3, int4 = 4, nvfp4 = 5 };

const char *          kv_format_name(KvFormat f);
Result<KvFormat>      kv_format_parse(const std::string & name);  // error lists the accepted names
std::vector<KvFormat> kv_formats();                                // all, in enum order

constexpr int kKvBlockTokens = 64;   // fp8/int8 scale block = attention key tile
constexpr int kKiviGroupK    = 32;   // int4 keys: tokens per (scale, min) group
constexpr int kKiviGroupV    = 32;   // int4 values: channels per (scale, min) group
constexpr int kNvfp4Block    = 16;   // nvfp4 micro-block (channels)

struct KvLayout {
    KvFormat fmt;
    int32_t  tokens, heads, head_dim;  // one frame
    int64_t  k_data, k_meta, v_data, v_meta, slot_bytes;  // byte offsets in a slot; slot size

    AVS_HD static int64_t align(int64_t x, int64_t a) { return (x + a - 1) / a * a; }
    AVS_HD int64_t        elems() const { return int64_t(tokens) * heads * head_dim; }
    AVS_HD int32_t        blocks() const { return (tokens + kKvBlockTokens - 1) / kKvBlockTokens; }
    AVS_HD int32_t        kivi_groups() const { return (tokens + kKiviGroupK - 1) / kKiviGroupK; }

    // Bytes of one data region (K or V).
    AVS_HD static int64_t data_bytes(KvFormat f, int64_t elems) {
        switch (f) {
            case KvFormat::f32: return 4 * elems;
            case KvFormat::bf16: return 2 * elems;
            case KvFormat::fp8:
            case KvFormat::int8: return elems;
            default: return elems / 2;  // int4, nvfp4
        }
    }
    AVS_HD int64_t k_meta_bytes() const {
        switch (fmt) {
            case KvFormat::fp8: return 4 * int64_t(blocks()) * heads;
            case KvFormat::int8: return 4 * int64_t(blocks()) * heads + 4 * int64_t(heads) * head_dim;
            case KvFormat::int4: return 4 * int64_t(kivi_groups()) * heads * head_dim;
            case KvFormat::nvfp4: return 16 + elems() / kNvfp4Block;
            default: return 0;
        }
    }
    AVS_HD int64_t v_meta_bytes() const {
        switch (fmt) {
            case KvFormat::fp8:
            case KvFormat::int8: return 4 * int64_t(blocks()) * heads;
            case KvFormat::int4: return 4 * elems() / kKiviGroupV;
            case KvFormat::nvfp4: return 16 + elems() / kNvfp4Block;
            default: return 0;
        }
    }
    // Values are stored as e4m3 in both 8-bit formats.
    AVS_HD KvFormat v_data_format() const { return fmt == KvFormat::int8 ? KvFormat::fp8 : fmt; }

    AVS_HD static KvLayout make(KvFormat f, int32_t tokens, int32_t heads, int32_t head_dim) {
        KvLayout L{f, tokens, heads, head_dim, 0, 0, 0, 0, 0};
        L.k_data     = 0;
        L.k_meta     = align(data_bytes(f, L.elems()), 16);
        L.v_data     = align(L.k_meta + L.k_meta_bytes(), 16);
        L.v_meta     = align(L.v_data + data_bytes(L.v_data_format(), L.elems()), 16);
        L.slot_bytes = align(L.v_meta + L.v_meta_bytes(), 256);
        return L;
    }
};

// Checks that a model's head layout can use format f (head_dim multiple of the format's groups);
// the error names the format and what it needs.
Status kv_format_supports(KvFormat f, int head_dim);

} // namespace avs
