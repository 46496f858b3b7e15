// In-place addition into the fp32 residual stream.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// x[i] += y[i] over n elements; x f32, y f32 or bf16.
cudaError_t add(float * x, const void * y, DType y_dtype, int64_t n, cudaStream_t stream);

} // namespace avs::kernels
