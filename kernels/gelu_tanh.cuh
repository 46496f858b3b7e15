// GELU with the tanh approximation (the DiT FFN activation).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) over n elements; x, y f32 or bf16.
// In place (y == x) is allowed when the dtypes match.
cudaError_t gelu_tanh(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream);

} // namespace avs::kernels
