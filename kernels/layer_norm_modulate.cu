#include "kernels/layer_norm_modulate.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

template <int kVec, typename TOut>
static __global__ void layer_norm_modulate_kernel(TOut * __restrict__ y, const float * __restrict__ x,
                                                  const float * __restrict__ shift, int64_t shift_stride,
                                                  const float * __restrict__ scale, int64_t scale_stride, int D,
                                                  int64_t rows_per_frame, float eps) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x;
    float v[kVec];
    load_row<kVec>(v, x + r * D, D);
    float mean, rstd;
    row_mean_rstd<kVec>(v, D, eps, red, mean, rstd);
    const int64_t f  = r / rows_per_frame;
    const float * sh = shift + f * shift_stride;
    const float * sc = scale + f * scale_stride;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
        const int i = int(threadIdx.x) + k * int(blockDim.x);
        if (i < D) y[r * D + i] = from_f32<TOut>((v[k] - mean) * rstd * (1.0f + sc[i]) + sh[i]);
    }
}

cudaError_t layer_norm_modulate(void * y, DType y_dtype, const float * x, const float * shift, int64_t shift_stride,
                                const float * scale, int64_t scale_stride, int64_t rows, int64_t D,
                                int64_t rows_per_frame, float eps, cudaStream_t stream) {
    if (rows == 0) return cudaSuccess;
    const RowLaunch rl = row_launch(D);
    if (rl.threads == 0 || rows_per_frame <= 0 || rows > INT32_MAX) return cudaErrorInvalidValue;
    return dispatch_float(y_dtype, [&](auto out) {
        using TOut = typename decltype(out)::type;
        return with_row_vec(rl.vec, [&](auto vec) {
            layer_norm_modulate_kernel<decltype(vec)::value, TOut><<<unsigned(rows), rl.threads, 0, stream>>>(
                static_cast<TOut *>(y), x, shift, shift_stride, scale, scale_stride, int(D), rows_per_frame, eps);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
