// SiLU (the time-embedding MLP activation).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y = x / (1 + exp(-x)) over n elements; x, y f32 or bf16.
// In place (y == x) is allowed when the dtypes match.
cudaError_t silu(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream);

} // namespace avs::kernels
