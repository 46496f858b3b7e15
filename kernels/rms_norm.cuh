// RMSNorm over the full last dimension (the q/k norms of Wan2.1 span all heads, not one head).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w. x, y f32 or bf16 [rows, D]; w f32 [D].
// In place (y == x) is allowed when the dtypes match. fp32 statistics; D <= 16384.
cudaError_t rms_norm(void * y, DType y_dtype, const void * x, DType x_dtype, const float * w, int64_t rows, int64_t D,
                     float eps, cudaStream_t stream);

} // namespace avs::kernels
