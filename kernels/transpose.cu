#include "kernels/transpose.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

namespace {

constexpr int kTile = 32;

// 32x8 threads move a 32x32 tile: coalesced reads of x rows, coalesced writes of y rows.
template <typename TIn, typename TOut>
__global__ void transpose_kernel(TOut * __restrict__ y, const TIn * __restrict__ x, int64_t M, int64_t N, int64_t ld) {
    __shared__ float tile[kTile][kTile + 1];  // +1: column reads without bank conflicts
    const int64_t n0 = int64_t(blockIdx.x) * kTile, m0 = int64_t(blockIdx.y) * kTile;
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
        const int64_t m = m0 + r, n = n0 + threadIdx.x;
        if (m < M && n < N) tile[r][threadIdx.x] = to_f32(x[m * ld + n]);
    }
    __syncthreads();
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
        const int64_t n = n0 + r, m = m0 + threadIdx.x;
        if (m < M && n < N) y[n * M + m] = from_f32<TOut>(tile[threadIdx.x][r]);
    }
}

} // namespace

cudaError_t transpose(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t M, int64_t N, int64_t ld_x,
                      cudaStream_t stream) {
    if (M == 0 || N == 0) return cudaSuccess;
    if (ld_x < N || (M + kTile - 1) / kTile > 65535) return cudaErrorInvalidValue;
    const dim3 grid(unsigned((N + kTile - 1) / kTile), unsigned((M + kTile - 1) / kTile));
    return dispatch_float(x_dtype, [&](auto in) {
        using TIn = typename decltype(in)::type;
        return dispatch_float(y_dtype, [&](auto out) {
            using TOut = typename decltype(out)::type;
            transpose_kernel<TIn, TOut><<<grid, dim3(kTile, 8), 0, stream>>>(static_cast<TOut *>(y),
                                                                           static_cast<const TIn *>(x), M, N, ld_x);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
