#include "kernels/rms_norm.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// No __restrict__ on x/y: in place is allowed. Each block reads its whole row into registers
// before the reduction's barriers and writes only after them, so aliasing is safe.
template <int kVec, typename TIn, typename TOut>
static __global__ void rms_norm_kernel(TOut * y, const TIn * x, const float * __restrict__ w, int D, float eps) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x;
    float v[kVec];
    load_row<kVec>(v, x + r * D, D);
    float s2 = 0.0f;
#pragma unroll
    for (int k = 0; k < kVec; ++k) s2 += v[k] * v[k];  // padding lanes hold 0
    const float rs = 1.0f / sqrtf(block_sum(s2, red) / float(D) + eps);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
        const int i = int(threadIdx.x) + k * int(blockDim.x);
        if (i < D) y[r * D + i] = from_f32<TOut>(v[k] * rs * w[i]);
    }
}

cudaError_t rms_norm(void * y, DType y_dtype, const void * x, DType x_dtype, const float * w, int64_t rows, int64_t D,
                     float eps, cudaStream_t stream) {
    if (rows == 0) return cudaSuccess;
    const RowLaunch rl = row_launch(D);
    // in place across dtypes would let one block's narrower writes land in another block's row
    if (rl.threads == 0 || rows > INT32_MAX || (y == x && y_dtype != x_dtype)) return cudaErrorInvalidValue;
    return dispatch_float(x_dtype, [&](auto in) {
        using TIn = typename decltype(in)::type;
        return dispatch_float(y_dtype, [&](auto out) {
            using TOut = typename decltype(out)::type;
            return with_row_vec(rl.vec, [&](auto vec) {
                rms_norm_kernel<decltype(vec)::value, TIn, TOut><<<unsigned(rows), rl.threads, 0, stream>>>(
                    static_cast<TOut *>(y), static_cast<const TIn *>(x), w, int(D), eps);
                return cudaGetLastError();
            });
        });
    });
}

} // namespace avs::kernels
