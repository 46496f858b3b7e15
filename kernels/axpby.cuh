// out = a x + b y: the flow-matching sampler's updates (fp32 latents).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// out[i] = a * x[i] + b * y[i] over n f32 elements; out may alias x or y.
cudaError_t axpby(float * out, float a, const float * x, float b, const float * y, int64_t n, cudaStream_t stream);

} // namespace avs::kernels
