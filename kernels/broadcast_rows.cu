#include "kernels/broadcast_rows.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

template <typename T>
static __global__ void broadcast_rows_kernel(T * __restrict__ y, const float * __restrict__ row, int64_t n, int64_t N) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = from_f32<T>(row[i % N]);
}

cudaError_t broadcast_rows(void * y, DType y_dtype, const float * row, int64_t rows, int64_t N, cudaStream_t stream) {
    const int64_t n = rows * N;
    if (n == 0) return cudaSuccess;
    return dispatch_float(y_dtype, [&](auto t) {
        using T = typename decltype(t)::type;
        broadcast_rows_kernel<T><<<grid_for(n), kElementThreads, 0, stream>>>(static_cast<T *>(y), row, n, N);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
