// Latent video -> patch tokens (the input side of the DiT's patch-embedding GEMM).
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// tokens[(f*gh + i)*gw + j, (c*ph + kh)*pw + kw] = x[c, f, i*ph + kh, j*pw + kw], gh = H/ph, gw = W/pw
// (rows/columns beyond gh*ph, gw*pw are dropped). x f32 [C, F, H, W]; tokens f32 or bf16.
cudaError_t patchify(void * tokens, DType tokens_dtype, const float * x, int64_t C, int64_t F, int64_t H, int64_t W,
                     int ph, int pw, cudaStream_t stream);

} // namespace avs::kernels
