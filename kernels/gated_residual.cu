#include "kernels/gated_residual.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// 2-D grid: x over the columns, y over rows. Rounded like the CPU twin (no FMA contraction), so
// the residual stream of the two backends drifts apart only through the other ops.
template <typename TY>
static __global__ void gated_residual_kernel(float * __restrict__ x, const TY * __restrict__ y,
                                             const float * __restrict__ gate, int64_t gate_stride, int64_t rows,
                                             int64_t D, int64_t rows_per_frame) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= D) return;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const float g = gate[(r / rows_per_frame) * gate_stride + i];
        x[r * D + i] = __fadd_rn(x[r * D + i], __fmul_rn(to_f32(y[r * D + i]), g));
    }
}

cudaError_t gated_residual(float * x, const void * y, DType y_dtype, const float * gate, int64_t gate_stride,
                           int64_t rows, int64_t D, int64_t rows_per_frame, cudaStream_t stream) {
    if (rows == 0 || D == 0) return cudaSuccess;
    if (rows_per_frame <= 0) return cudaErrorInvalidValue;
    const dim3 grid(unsigned((D + kElementThreads - 1) / kElementThreads), unsigned(rows < 65535 ? rows : 65535));
    return dispatch_float(y_dtype, [&](auto in) {
        using TY = typename decltype(in)::type;
        gated_residual_kernel<TY><<<grid, kElementThreads, 0, stream>>>(x, static_cast<const TY *>(y), gate, gate_stride,
                                                                      rows, D, rows_per_frame);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
