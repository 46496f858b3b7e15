#include "kernels/tanh_clamp.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

namespace {

template <typename TIn, typename TOut>
__global__ void tanh_clamp_kernel(TOut * y, const TIn * x, int64_t n, float bound) {
    for (int64_t i = global_thread(); i < n; i += grid_threads())
        y[i] = from_f32<TOut>(bound * tanhf(to_f32(x[i]) / bound));  // same fp32 formula as the CPU twin
}

} // namespace

cudaError_t tanh_clamp(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, float bound, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (y == x && y_dtype != x_dtype) return cudaErrorInvalidValue;
    return dispatch_float(x_dtype, [&](auto in) {
        using TIn = typename decltype(in)::type;
        return dispatch_float(y_dtype, [&](auto out) {
            using TOut = typename decltype(out)::type;
            tanh_clamp_kernel<TIn, TOut><<<grid_for(n), kElementThreads, 0, stream>>>(static_cast<TOut *>(y),
                                                                                      static_cast<const TIn *>(x), n, bound);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
