#include "kernels/to_rgba8.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

namespace {

template <typename T>
__global__ void to_rgba8_kernel(uchar4 * __restrict__ rgba, const T * __restrict__ x, int64_t pixels, int64_t ps, float a,
                                float b) {
    for (int64_t p = global_thread(); p < pixels; p += grid_threads()) {
        const T * px = x + p * ps;
        uchar4    o;
        // rintf: round half to even, as the CPU twin's lrintf in the default rounding mode
        o.x = uint8_t(rintf(255.0f * fminf(fmaxf(a * to_f32(px[0]) + b, 0.0f), 1.0f)));
        o.y = uint8_t(rintf(255.0f * fminf(fmaxf(a * to_f32(px[1]) + b, 0.0f), 1.0f)));
        o.z = uint8_t(rintf(255.0f * fminf(fmaxf(a * to_f32(px[2]) + b, 0.0f), 1.0f)));
        o.w = 255;
        rgba[p] = o;  // one 4-byte store per pixel
    }
}

} // namespace

cudaError_t to_rgba8(uint8_t * rgba, const void * x, DType x_dtype, int64_t pixels, int64_t pixel_stride, float a, float b,
                     cudaStream_t stream) {
    if (pixels == 0) return cudaSuccess;
    if (pixel_stride < 3) return cudaErrorInvalidValue;
    return dispatch_float(x_dtype, [&](auto in) {
        using T = typename decltype(in)::type;
        to_rgba8_kernel<T><<<grid_for(pixels), kElementThreads, 0, stream>>>(reinterpret_cast<uchar4 *>(rgba),
                                                                            static_cast<const T *>(x), pixels, pixel_stride, a, b);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
