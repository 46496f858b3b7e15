// LayerNorm (no affine) followed by the per-frame adaLN modulation of the DiT blocks and head.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y[r, :] = LN(x[r, :]) * (1 + scale[f, :]) + shift[f, :], f = r / rows_per_frame.
// x f32 [rows, D]; shift/scale f32 rows of D, `*_stride` elements apart (views into the
// [F, 6, D] modulation tensor); y f32 or bf16 [rows, D]. fp32 two-pass statistics; D <= 16384.
cudaError_t layer_norm_modulate(void * y, DType y_dtype, const float * x, const float * shift, int64_t shift_stride,
                                const float * scale, int64_t scale_stride, int64_t rows, int64_t D,
                                int64_t rows_per_frame, float eps, cudaStream_t stream);

} // namespace avs::kernels
