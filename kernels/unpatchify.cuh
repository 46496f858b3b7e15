// Head output tokens -> latent video velocity.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// x[c, f, i*ph + a, j*pw + q] = u[(f*gh + i)*gw + j, (a*pw + q)*C + c] (channel fastest, as the
// head's projection lays it out), gh = H/ph, gw = W/pw; x elements outside gh*ph x gw*pw are left
// untouched. u f32 [F*gh*gw, ph*pw*C]; x f32 [C, F, H, W].
cudaError_t unpatchify(float * x, const float * u, int64_t C, int64_t F, int64_t H, int64_t W, int ph, int pw,
                       cudaStream_t stream);

} // namespace avs::kernels
