// Host reference of the KV formats: quantize one frame's K and V into a slot, and decode a slot back
// to f32. The CPU backend stores and reads its cache through these; the CUDA kernels (kernels/kv_write.cu,
// kernels/kv_read.cu, the attention tile loaders) implement the same math with kv_quant.h.
#pragma once

#include "engine/cache/kv_format.h"

#include <cstdint>

namespace avs {

// k, v: one frame, f32 [tokens, heads, head_dim] contiguous. slot: L.slot_bytes bytes.
void kv_encode_frame(const KvLayout & L, uint8_t * slot, const float * k, const float * v);
// k, v (either may be null): f32 [tokens, heads, head_dim] <- slot, fully dequantized.
void kv_decode_frame(const KvLayout & L, const uint8_t * slot, float * k, float * v);

} // namespace avs
