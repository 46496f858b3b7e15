#include "kernels/log_mel.cuh"

namespace avs::kernels {

namespace {

__global__ void frames_kernel(float * __restrict__ frames, const float * __restrict__ audio, const float * __restrict__ window,
                              int64_t n_frames, int n_fft, int hop) {
    const int64_t f = blockIdx.x;
    for (int k = threadIdx.x; k < n_fft; k += blockDim.x) frames[f * n_fft + k] = audio[f * hop + k] * window[k];
}

// One block per frame: the power spectrum goes to shared memory once, each thread owns mel bands.
__global__ void project_kernel(float * __restrict__ out, const float2 * __restrict__ spec, const float * __restrict__ filters,
                               int n_bins, int n_mels, float floor) {
    extern __shared__ float power[];
    const int64_t f = blockIdx.x;
    for (int k = threadIdx.x; k < n_bins; k += blockDim.x) {
        const float2 c = spec[f * n_bins + k];
        power[k] = c.x * c.x + c.y * c.y;
    }
    __syncthreads();
    for (int m = threadIdx.x; m < n_mels; m += blockDim.x) {
        const float * w = filters + int64_t(m) * n_bins;
        float acc = 0.0f;
        for (int k = 0; k < n_bins; ++k) acc += w[k] * power[k];
        out[f * n_mels + m] = logf(fmaxf(acc, floor));
    }
}

} // namespace

cudaError_t log_mel_frames(float * frames, const float * audio, const float * window, int64_t n_frames, int n_fft, int hop,
                           cudaStream_t stream) {
    if (n_frames == 0) return cudaSuccess;
    frames_kernel<<<unsigned(n_frames), 128, 0, stream>>>(frames, audio, window, n_frames, n_fft, hop);
    return cudaGetLastError();
}

cudaError_t log_mel_project(float * out, const float * spec, const float * filters, int64_t n_frames, int n_bins, int n_mels,
                            float floor, cudaStream_t stream) {
    if (n_frames == 0) return cudaSuccess;
    project_kernel<<<unsigned(n_frames), 128, size_t(n_bins) * sizeof(float), stream>>>(
        out, reinterpret_cast<const float2 *>(spec), filters, n_bins, n_mels, floor);
    return cudaGetLastError();
}

} // namespace avs::kernels
