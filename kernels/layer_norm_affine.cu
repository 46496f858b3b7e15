#include "kernels/layer_norm_affine.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

template <int kVec, typename TOut>
static __global__ void layer_norm_affine_kernel(TOut * __restrict__ y, const float * __restrict__ x,
                                                const float * __restrict__ w, const float * __restrict__ b, int D,
                                                float eps) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x;
    float v[kVec];
    load_row<kVec>(v, x + r * D, D);
    float mean, rstd;
    row_mean_rstd<kVec>(v, D, eps, red, mean, rstd);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
        const int i = int(threadIdx.x) + k * int(blockDim.x);
        if (i < D) y[r * D + i] = from_f32<TOut>((v[k] - mean) * rstd * w[i] + b[i]);
    }
}

cudaError_t layer_norm_affine(void * y, DType y_dtype, const float * x, const float * w, const float * b, int64_t rows,
                              int64_t D, float eps, cudaStream_t stream) {
    if (rows == 0) return cudaSuccess;
    const RowLaunch rl = row_launch(D);
    if (rl.threads == 0 || rows > INT32_MAX) return cudaErrorInvalidValue;
    return dispatch_float(y_dtype, [&](auto out) {
        using TOut = typename decltype(out)::type;
        return with_row_vec(rl.vec, [&](auto vec) {
            layer_norm_affine_kernel<decltype(vec)::value, TOut>
                <<<unsigned(rows), rl.threads, 0, stream>>>(static_cast<TOut *>(y), x, w, b, int(D), eps);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
