// The audio conditioning of a whole recording (avs-gen --audio, tests, benchmarks): its log-mel
// features, and each latent frame's window of them (latent_audio_window; no look-ahead). Past the
// end of the recording the stream hears silence.
#pragma once

#include "engine/audio/log_mel.h"
#include "engine/core/tensor.h"

namespace avs {

class ClipAudio {
public:
    // samples: mono at cfg.sample_rate (a different rate is an error naming both rates).
    static Result<ClipAudio> create(const std::vector<float> & samples, int sample_rate, int window_frames,
                                    const LogMelConfig & cfg = {});

    // windows_host: f32 [frames, window_frames, n_mels] for latent frames [frame0, frame0 + frames).
    Status  fill(int64_t frame0, int frames, const Tensor & windows_host) const;
    int64_t mel_frames() const { return int64_t(features_.size()) / cfg_.n_mels; }
    double  seconds() const { return seconds_; }

private:
    LogMelConfig       cfg_;
    int                window_ = 0;
    double             seconds_ = 0;
    std::vector<float> features_;  // [frames, n_mels]
};

} // namespace avs
