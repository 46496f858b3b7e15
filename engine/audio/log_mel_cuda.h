// LogMelCuda: the log-mel features of engine/audio/log_mel computed on the GPU (cuFFT for the real FFT,
// kernels/log_mel.cu for framing and the mel projection), for audio already on the device. Same
// definition, window and filterbank as the CPU extractor, which is its twin in the tests.
#pragma once

#include "engine/audio/log_mel.h"

#include <cstdint>
#include <memory>

namespace avs {

class LogMelCuda {
public:
    // Uploads the window and filterbank; cuFFT plans are made per batch size and cached.
    static Result<std::unique_ptr<LogMelCuda>> create(const LogMelConfig & cfg);
    ~LogMelCuda();
    LogMelCuda(const LogMelCuda &) = delete;
    LogMelCuda & operator=(const LogMelCuda &) = delete;

    // All complete frames of audio[0, n) (device, f32) into out (device, [frames, n_mels] f32, room for
    // mel_frames_for_samples(n) frames), on `stream` (a cudaStream_t; null = the default stream).
    // Returns the frame count.
    Result<int64_t> compute(const float * audio, int64_t n, float * out, void * stream = nullptr);

private:
    struct Impl;
    explicit LogMelCuda(const LogMelConfig & cfg);
    LogMelConfig          cfg_;
    std::unique_ptr<Impl> impl_;
};

} // namespace avs
