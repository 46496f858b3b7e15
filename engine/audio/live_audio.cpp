#include "engine/audio/live_audio.h"

#include <chrono>
#include <cmath>

namespace avs {

Result<std::unique_ptr<LiveAudio>> LiveAudio::create(int window_frames, const LogMelConfig & cfg) {
    if (window_frames < 1) return make_error(ErrorCode::invalid_argument, "audio window must be >= 1 frame (got %d)", window_frames);
    std::unique_ptr<LiveAudio> a(new LiveAudio());
    a->cfg_ = cfg, a->window_ = window_frames;
    AVS_ASSIGN_OR_RETURN(a->ex_, LogMelExtractor::create(cfg));
    return a;
}

void LiveAudio::push(const float * samples, int64_t n) {
    {
        std::lock_guard<std::mutex> lock(m_);
        if (!ex_->push(samples, n).ok()) return;
        samples_ += n;
        const int64_t add = ex_->frames_available();
        if (add > 0) {
            const size_t old = feats_.size();
            feats_.resize(old + size_t(add * cfg_.n_mels));
            if (!ex_->read(feats_.data() + old, add).ok()) feats_.resize(old);
        }
    }
    cv_.notify_all();
}

void LiveAudio::reset() {
    std::lock_guard<std::mutex> lock(m_);
    ex_->reset();
    feats_.clear();
    base_ = 0, samples_ = 0;
}

Status LiveAudio::configure(int window_frames, const LogMelConfig & cfg) {
    if (window_frames < 1) return make_error(ErrorCode::invalid_argument, "audio window must be >= 1 frame (got %d)", window_frames);
    {
        std::lock_guard<std::mutex> lock(m_);
        if (window_frames == window_ && cfg.n_mels == cfg_.n_mels) return {};
    }
    AVS_ASSIGN_OR_RETURN(auto ex, LogMelExtractor::create(cfg));
    std::lock_guard<std::mutex> lock(m_);
    ex_ = std::move(ex), cfg_ = cfg, window_ = window_frames;
    feats_.clear();
    base_ = 0, samples_ = 0;
    return {};
}

int64_t LiveAudio::samples() const {
    std::lock_guard<std::mutex> lock(m_);
    return samples_;
}

Status LiveAudio::fill(int64_t frame0, int frames, const Tensor & out, const std::function<bool()> & interrupted) {
    const int64_t M = cfg_.n_mels;
    if (out.ndim() != 3 || out.dim(0) != frames || out.dim(1) != window_ || out.dim(2) != M)
        return make_error(ErrorCode::shape, "audio windows %s, expected [%d, %d, %lld]", out.shape().str().c_str(), frames, window_,
                          (long long) M);
    AVS_ASSIGN_OR_RETURN(MelWindow last, latent_audio_window(frame0 + frames - 1, window_, cfg_));
    std::unique_lock<std::mutex> lock(m_);
    while (base_ + int64_t(feats_.size()) / M < last.end) {
        if (interrupted && interrupted()) return make_error(ErrorCode::internal, "interrupted while waiting for audio");
        cv_.wait_for(lock, std::chrono::milliseconds(10));
    }
    // What no window from frame0 on reads goes now (not after this call: a retried chunk hears its
    // audio again); a window that starts before what is kept was consumed by a later chunk.
    AVS_ASSIGN_OR_RETURN(MelWindow first, latent_audio_window(frame0, window_, cfg_));
    const int64_t keep_from = first.end - window_;
    if (keep_from >= 0 && keep_from < base_)
        return make_error(ErrorCode::invalid_argument, "audio for latent frame %lld was already consumed (mel frames from %lld are kept)",
                          (long long) frame0, (long long) base_);
    const int64_t drop = std::min<int64_t>(keep_from - base_, int64_t(feats_.size()) / M);
    if (drop > 0) {
        feats_.erase(feats_.begin(), feats_.begin() + drop * M);
        base_ += drop;
    }
    const float silence = std::log(cfg_.log_floor);
    for (int i = 0; i < frames; ++i) {
        AVS_ASSIGN_OR_RETURN(MelWindow w, latent_audio_window(frame0 + i, window_, cfg_));
        float * dst = out.data<float>() + int64_t(i) * window_ * M;
        for (int r = 0; r < window_; ++r) {
            const int64_t mf = w.end - window_ + r - base_;
            for (int64_t m = 0; m < M; ++m) dst[r * M + m] = mf >= 0 && mf * M < int64_t(feats_.size()) ? feats_[size_t(mf * M + m)] : silence;
        }
    }
    return {};
}

} // namespace avs
