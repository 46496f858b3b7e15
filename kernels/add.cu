#include "kernels/add.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

template <typename TY> static __global__ void add_kernel(float * __restrict__ x, const TY * __restrict__ y, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) x[i] += to_f32(y[i]);
}

cudaError_t add(float * x, const void * y, DType y_dtype, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    return dispatch_float(y_dtype, [&](auto in) {
        using TY = typename decltype(in)::type;
        add_kernel<TY><<<grid_for(n), kElementThreads, 0, stream>>>(x, static_cast<const TY *>(y), n);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
