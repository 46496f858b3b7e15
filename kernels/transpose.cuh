// 2-D transpose through shared-memory tiles: turns one latent frame of the DiT's [C, F, h, w] output
// (a row-strided [C, h*w] view) into the decoders' channels-last [h*w, C] layout.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// y[N, M] (contiguous) = x[M, N]^T, x row stride ld_x elements; f32/bf16 in and out.
cudaError_t transpose(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t M, int64_t N, int64_t ld_x,
                      cudaStream_t stream);

} // namespace avs::kernels
