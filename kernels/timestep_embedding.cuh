// Sinusoidal timestep embedding (Wan2.1 order: cos first), per frame of a chunk.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// out[f, k] = cos(t[f] w_k), out[f, half + k] = sin(t[f] w_k), w_k = 10000^(-k / half), half = dim / 2,
// computed in fp64 like the CPU twin. t: `frames` doubles on the device; out f32 [frames, dim]
// (an odd dim's last column is set to 0).
cudaError_t timestep_embedding(float * out, const double * t, int64_t frames, int64_t dim, cudaStream_t stream);

// The same with the timesteps passed by value in the launch: no host-to-device copy per forward.
struct FrameTimesteps {
    static constexpr int kMax = 64;
    int32_t frames = 0;
    double  t[kMax];
};
cudaError_t timestep_embedding(float * out, const FrameTimesteps & t, int64_t dim, cudaStream_t stream);

} // namespace avs::kernels
