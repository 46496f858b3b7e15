#include "kernels/axpby.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// Rounded like the CPU twin (no FMA contraction), so sampler updates agree bit for bit.
// No __restrict__: out may alias x or y (each element is read, then written, by one thread).
static __global__ void axpby_kernel(float * out, float a, const float * x, float b, const float * y, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = __fadd_rn(__fmul_rn(a, x[i]), __fmul_rn(b, y[i]));
}

cudaError_t axpby(float * out, float a, const float * x, float b, const float * y, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    axpby_kernel<<<grid_for(n), kElementThreads, 0, stream>>>(out, a, x, b, y, n);
    return cudaGetLastError();
}

} // namespace avs::kernels
