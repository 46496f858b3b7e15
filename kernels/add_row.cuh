// Broadcast a row over a matrix (bias-style additions the GEMMs do not fuse).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// out[r, :] = a[r, :] + row[:] for a, out f32 [rows, N] and row f32 [N]; out may alias a.
cudaError_t add_row(float * out, const float * a, const float * row, int64_t rows, int64_t N, cudaStream_t stream);

} // namespace avs::kernels
