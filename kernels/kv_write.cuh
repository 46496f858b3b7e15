// Write a chunk's keys and values into their ring KV-cache slots (engine/cache/ring_view.h), encoded
// in the slot format (engine/cache/kv_format.h) with the same math as the CPU twin (kv_quant.h).
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/ring_view.h"
#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// k, v [frames * L.tokens, L.heads, L.head_dim] (f32 or bf16, kv_dtype) of absolute frames
// [frame0, frame0 + frames) -> slots ring.slot_of_frame(frame0 + f) of store (u8 [ring.capacity(),
// L.slot_bytes]). frames <= ring.window, so no two frames of one call share a slot.
cudaError_t kv_write(uint8_t * store, const KvLayout & L, const RingView & ring, int64_t frame0, const void * k, const void * v,
                     DType kv_dtype, int64_t frames, cudaStream_t stream);

// Decode slot `slot` of store into k, v [L.tokens, L.heads, L.head_dim] (f32 or bf16, out_dtype).
cudaError_t kv_read(void * k, void * v, DType out_dtype, const uint8_t * store, const KvLayout & L, int64_t slot, cudaStream_t stream);

} // namespace avs::kernels
