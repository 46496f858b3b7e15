#include "kernels/silu.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// Same fp32 formula as the CPU twin.
struct Silu {
    static __device__ __forceinline__ float apply(float v) { return v / (1.0f + expf(-v)); }
};

cudaError_t silu(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream) {
    return launch_unary<Silu>(y, y_dtype, x, x_dtype, n, stream);
}

} // namespace avs::kernels
