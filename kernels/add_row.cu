#include "kernels/add_row.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// 2-D grid as in gated_residual: x over columns, y over rows. No __restrict__: out may alias a.
static __global__ void add_row_kernel(float * out, const float * a, const float * __restrict__ row, int64_t rows,
                                      int64_t N) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float w = row[i];
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) out[r * N + i] = a[r * N + i] + w;
}

cudaError_t add_row(float * out, const float * a, const float * row, int64_t rows, int64_t N, cudaStream_t stream) {
    if (rows == 0 || N == 0) return cudaSuccess;
    const dim3 grid(unsigned((N + kElementThreads - 1) / kElementThreads), unsigned(rows < 65535 ? rows : 65535));
    add_row_kernel<<<grid, kElementThreads, 0, stream>>>(out, a, row, rows, N);
    return cudaGetLastError();
}

} // namespace avs::kernels
