#include "kernels/gelu_tanh.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

constexpr float kSqrt2OverPi = 0.7978845608028654f;

// Same fp32 formula as the CPU twin. No __restrict__: in place is allowed.
template <typename TIn, typename TOut>
static __global__ void gelu_tanh_kernel(TOut * y, const TIn * x, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const float v = to_f32(x[i]);
        y[i] = from_f32<TOut>(0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + 0.044715f * v * v * v))));
    }
}

cudaError_t gelu_tanh(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (y == x && y_dtype != x_dtype) return cudaErrorInvalidValue;  // element i would overwrite others' inputs
    return dispatch_float(x_dtype, [&](auto in) {
        using TIn = typename decltype(in)::type;
        return dispatch_float(y_dtype, [&](auto out) {
            using TOut = typename decltype(out)::type;
            auto * dst = static_cast<TOut *>(y);
            auto * src = static_cast<const TIn *>(x);
            gelu_tanh_kernel<TIn, TOut><<<grid_for(n), kElementThreads, 0, stream>>>(dst, src, n);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
