// 3D RoPE of Wan2.1 (interleaved pairs split into frame/row/column groups), applied in place.
#pragma once

#include "engine/core/dtype.h"
#include "engine/model/rope.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// Rotate x [tokens, heads, head_dim] (f32 or bf16, tokens = frames * layout.tokens_per_frame()) in
// place: pair p < layout.pairs() of token (frame f, row i, column j) turns by the angle of
// engine/model/rope.cpp with temporal position frame_positions[f] (a device array of int64, one per
// frame). Angles are computed in fp64 on the device (no table, positions unbounded); the rotation
// is rounded like the CPU twin. head_dim must be even and >= 2 * layout.pairs(), x aligned to a pair.
cudaError_t rope(void * x, DType x_dtype, int64_t tokens, int heads, int head_dim, const RopeLayout & layout,
                 const int64_t * frame_positions, cudaStream_t stream);

// The same with the positions passed by value in the launch (a chunk has few frames): no host-to-
// device copy, so the chunk loop needs no host synchronisation for RoPE.
struct FramePositions {
    static constexpr int kMax = 64;
    int32_t frames = 0;
    int64_t pos[kMax];
};
cudaError_t rope(void * x, DType x_dtype, int64_t tokens, int heads, int head_dim, const RopeLayout & layout,
                 const FramePositions & frame_positions, cudaStream_t stream);

} // namespace avs::kernels
