#include "kernels/patchify.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// One thread per token element: the writes are coalesced; the reads stride by patch rows, which
// is fine for an op that runs once per chunk.
template <typename TOut>
static __global__ void patchify_kernel(TOut * __restrict__ tokens, const float * __restrict__ x, int64_t C, int64_t F,
                                       int64_t H, int64_t W, int ph, int pw) {
    const int64_t gh = H / ph, gw = W / pw, P = C * ph * pw, n = F * gh * gw * P;
    for (int64_t idx = global_thread(); idx < n; idx += grid_threads()) {
        const int64_t tok = idx / P, p = idx % P;
        const int64_t f = tok / (gh * gw), i = (tok / gw) % gh, j = tok % gw;
        const int64_t c = p / (ph * pw), kh = (p / pw) % ph, kw = p % pw;
        tokens[idx] = from_f32<TOut>(x[((c * F + f) * H + i * ph + kh) * W + j * pw + kw]);
    }
}

cudaError_t patchify(void * tokens, DType tokens_dtype, const float * x, int64_t C, int64_t F, int64_t H, int64_t W,
                     int ph, int pw, cudaStream_t stream) {
    if (ph <= 0 || pw <= 0) return cudaErrorInvalidValue;
    const int64_t n = F * (H / ph) * (W / pw) * C * ph * pw;
    if (n == 0) return cudaSuccess;
    return dispatch_float(tokens_dtype, [&](auto out) {
        using TOut = typename decltype(out)::type;
        patchify_kernel<TOut><<<grid_for(n), kElementThreads, 0, stream>>>(static_cast<TOut *>(tokens), x, C, F, H, W, ph, pw);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
