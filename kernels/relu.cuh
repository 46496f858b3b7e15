// ReLU (TAEHV's activation).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y = max(x, 0) over n elements; x, y f32 or bf16; in place allowed when the dtypes match.
cudaError_t relu(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream);

} // namespace avs::kernels
