#include "kernels/timestep_embedding.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

// One thread per (frame, k); fp64 pow/sincos so that the fp32 results match the CPU twin's
// (both round the same fp64 values, up to the last-ulp differences of the two math libraries).
struct DeviceTimesteps {
    const double * p;
    __device__ __forceinline__ double operator()(int64_t f) const { return p[f]; }
};
struct ParamTimesteps {
    FrameTimesteps v;
    __device__ __forceinline__ double operator()(int64_t f) const { return v.t[f]; }
};

template <typename Timesteps>
static __global__ void timestep_embedding_kernel(float * __restrict__ out, const Timesteps t, int64_t frames, int64_t dim) {
    const int64_t half = dim / 2;
    for (int64_t idx = global_thread(); idx < frames * half; idx += grid_threads()) {
        const int64_t f = idx / half, k = idx % half;
        const double  a = t(f) * pow(10000.0, -double(k) / double(half));
        double s, c;
        sincos(a, &s, &c);
        out[f * dim + k]        = float(c);
        out[f * dim + half + k] = float(s);
        if (k == 0 && (dim & 1)) out[f * dim + dim - 1] = 0.0f;
    }
}

template <typename Timesteps>
static cudaError_t launch(float * out, const Timesteps & t, int64_t frames, int64_t dim, cudaStream_t stream) {
    if (frames == 0 || dim == 0) return cudaSuccess;
    if (dim == 1) return cudaMemsetAsync(out, 0, size_t(frames) * sizeof(float), stream);
    timestep_embedding_kernel<Timesteps><<<grid_for(frames * (dim / 2)), kElementThreads, 0, stream>>>(out, t, frames, dim);
    return cudaGetLastError();
}

cudaError_t timestep_embedding(float * out, const double * t, int64_t frames, int64_t dim, cudaStream_t stream) {
    return launch(out, DeviceTimesteps{t}, frames, dim, stream);
}

cudaError_t timestep_embedding(float * out, const FrameTimesteps & t, int64_t dim, cudaStream_t stream) {
    return launch(out, ParamTimesteps{t}, t.frames, dim, stream);
}

} // namespace avs::kernels
