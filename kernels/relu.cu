#include "kernels/relu.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

struct Relu {
    static __device__ __forceinline__ float apply(float v) { return v > 0.0f ? v : 0.0f; }
};

cudaError_t relu(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream) {
    return launch_unary<Relu>(y, y_dtype, x, x_dtype, n, stream);
}

} // namespace avs::kernels
