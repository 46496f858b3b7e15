// The DiT's gated residual update of the fp32 residual stream.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// x[r, :] += y[r, :] * gate[f, :], f = r / rows_per_frame. x f32 [rows, D]; y f32 or bf16 [rows, D];
// gate f32 rows of D, `gate_stride` elements apart (a view into the [F, 6, D] modulation).
cudaError_t gated_residual(float * x, const void * y, DType y_dtype, const float * gate, int64_t gate_stride,
                           int64_t rows, int64_t D, int64_t rows_per_frame, cudaStream_t stream);

} // namespace avs::kernels
