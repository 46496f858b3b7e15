#include "kernels/gelu_tanh.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// Same fp32 formula as the CPU twin.
struct GeluTanh {
    static __device__ __forceinline__ float apply(float v) {
        constexpr float kSqrt2OverPi = 0.7978845608028654f;
        return 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
    }
};

cudaError_t gelu_tanh(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream) {
    return launch_unary<GeluTanh>(y, y_dtype, x, x_dtype, n, stream);
}

} // namespace avs::kernels
