// y[r, :] = row[:] for every row: pre-fills a GEMM output with its bias so that cuBLAS adds the
// product with beta = 1 and a bf16 output is rounded once, not twice.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

cudaError_t broadcast_rows(void * y, DType y_dtype, const float * row, int64_t rows, int64_t N, cudaStream_t stream);

} // namespace avs::kernels
