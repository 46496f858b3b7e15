// Display conversion of decoded frames: RGB (any float range) -> RGBA8 for the app's upload and the
// recorder, fused so that a frame crosses to the host once, as bytes.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// rgba[p] = (round(255 clamp(a x[p*ps + c] + b, 0, 1)) for c < 3, 255) for p < pixels; x f32/bf16.
cudaError_t to_rgba8(uint8_t * rgba, const void * x, DType x_dtype, int64_t pixels, int64_t pixel_stride, float a, float b,
                     cudaStream_t stream);

} // namespace avs::kernels
