// Log-mel audio features on the GPU: the CUDA twin of engine/audio/log_mel (same window, filterbank
// and definition), so the audio conditioning can stay on the device next to the DiT.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// frames[f, k] = audio[f * hop + k] * window[k], k < n_fft (f < n_frames): the FFT's input.
cudaError_t log_mel_frames(float * frames, const float * audio, const float * window, int64_t n_frames, int n_fft, int hop,
                           cudaStream_t stream);
// out[f, m] = ln(max(sum_k filters[m, k] |spec[f, k]|^2, floor)); spec [n_frames, n_bins] complex
// (interleaved re, im), filters [n_mels, n_bins].
cudaError_t log_mel_project(float * out, const float * spec, const float * filters, int64_t n_frames, int n_bins, int n_mels,
                            float floor, cudaStream_t stream);

} // namespace avs::kernels
