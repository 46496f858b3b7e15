// Write a chunk's keys and values into their ring KV-cache slots (engine/cache/ring_view.h).
#pragma once

#include "engine/cache/ring_view.h"
#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// k, v [frames * tpf, heads, head_dim] (f32 or bf16, kv_dtype) of absolute frames
// [frame0, frame0 + frames) -> slots ring.slot_of_frame(frame0 + f) of k_store, v_store
// [ring.capacity(), tpf, heads, head_dim] (f32 or bf16, store_dtype; converted on store,
// round-to-nearest-even), tpf = ring.tokens_per_frame. frames <= ring.window, so no two frames
// of one call share a slot.
cudaError_t kv_write(void * k_store, void * v_store, DType store_dtype, const RingView & ring, int64_t frame0,
                     const void * k, const void * v, DType kv_dtype, int64_t frames, int64_t heads, int64_t head_dim,
                     cudaStream_t stream);

} // namespace avs::kernels
