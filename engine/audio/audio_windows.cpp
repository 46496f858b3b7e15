#include "engine/audio/audio_windows.h"

#include <cmath>

namespace avs {

Result<ClipAudio> ClipAudio::create(const std::vector<float> & samples, int sample_rate, int window_frames, const LogMelConfig & cfg) {
    AVS_TRY(validate(cfg));
    if (sample_rate != cfg.sample_rate)
        return make_error(ErrorCode::unsupported, "audio at %d Hz: the model's features need %d Hz (resample it first)", sample_rate,
                          cfg.sample_rate);
    if (window_frames < 1) return make_error(ErrorCode::invalid_argument, "audio window must be >= 1 frame (got %d)", window_frames);
    ClipAudio c;
    c.cfg_ = cfg, c.window_ = window_frames, c.seconds_ = double(samples.size()) / sample_rate;
    AVS_TRY(compute_log_mel(cfg, samples.data(), int64_t(samples.size()), c.features_).status());
    return c;
}

Status ClipAudio::fill(int64_t frame0, int frames, const Tensor & out) const {
    const int64_t M = cfg_.n_mels;
    if (out.ndim() != 3 || out.dim(0) != frames || out.dim(1) != window_ || out.dim(2) != M)
        return make_error(ErrorCode::shape, "audio windows %s, expected [%d, %d, %lld]", out.shape().str().c_str(), frames, window_,
                          (long long) M);
    const float silence = std::log(cfg_.log_floor);
    for (int i = 0; i < frames; ++i) {
        AVS_ASSIGN_OR_RETURN(MelWindow w, latent_audio_window(frame0 + i, window_, cfg_));
        float * dst = out.data<float>() + int64_t(i) * window_ * M;
        for (int r = 0; r < window_; ++r) {
            const int64_t mf = w.end - window_ + r;  // absolute mel frame of row r
            for (int64_t m = 0; m < M; ++m)
                dst[r * M + m] = mf >= 0 && mf < mel_frames() ? features_[size_t(mf * M + m)] : silence;
        }
    }
    return {};
}

} // namespace avs
