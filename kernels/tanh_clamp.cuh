// Soft clamp y = bound * tanh(x / bound) (TAEHV's input Clamp).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// n elements; x, y f32 or bf16; in place allowed when the dtypes match.
cudaError_t tanh_clamp(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, float bound, cudaStream_t stream);

} // namespace avs::kernels
