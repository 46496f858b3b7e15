#include "kernels/unpatchify.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// One thread per covered element of x (coalesced writes, gathered reads).
static __global__ void unpatchify_kernel(float * __restrict__ x, const float * __restrict__ u, int64_t C, int64_t F,
                                         int64_t H, int64_t W, int ph, int pw) {
    const int64_t gh = H / ph, gw = W / pw, Hc = gh * ph, Wc = gw * pw, n = C * F * Hc * Wc;
    for (int64_t idx = global_thread(); idx < n; idx += grid_threads()) {
        const int64_t w = idx % Wc, h = (idx / Wc) % Hc, f = (idx / (Wc * Hc)) % F, c = idx / (Wc * Hc * F);
        const int64_t i = h / ph, a = h % ph, j = w / pw, q = w % pw;
        const int64_t tok = (f * gh + i) * gw + j;
        x[((c * F + f) * H + h) * W + w] = u[tok * (C * ph * pw) + (a * pw + q) * C + c];
    }
}

cudaError_t unpatchify(float * x, const float * u, int64_t C, int64_t F, int64_t H, int64_t W, int ph, int pw,
                       cudaStream_t stream) {
    if (ph <= 0 || pw <= 0) return cudaErrorInvalidValue;
    const int64_t n = C * F * (H / ph) * ph * (W / pw) * pw;
    if (n == 0) return cudaSuccess;
    unpatchify_kernel<<<grid_for(n), kElementThreads, 0, stream>>>(x, u, C, F, H, W, ph, pw);
    return cudaGetLastError();
}

} // namespace avs::kernels
