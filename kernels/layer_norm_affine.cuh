// LayerNorm with elementwise affine (the DiT's norm3 before cross-attention).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y[r, :] = LN(x[r, :]) * w + b. x f32 [rows, D]; w, b f32 [D]; y f32 or bf16 [rows, D].
// fp32 two-pass statistics; D <= 16384.
cudaError_t layer_norm_affine(void * y, DType y_dtype, const float * x, const float * w, const float * b, int64_t rows,
                              int64_t D, float eps, cudaStream_t stream);

} // namespace avs::kernels
