// LiveAudio: the audio conditioning of a live stream. Any thread pushes 16 kHz mono samples as they
// arrive (the app's microphone pump, a file reader); the engine thread asks for the log-mel windows of
// the latent frames it is about to generate and waits until their audio has arrived — so an
// audio-driven stream is paced by its audio, and never looks past it (latent_audio_window).
#pragma once

#include "engine/audio/log_mel.h"
#include "engine/core/tensor.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

namespace avs {

class LiveAudio {
public:
    static Result<std::unique_ptr<LiveAudio>> create(int window_frames, const LogMelConfig & cfg = {});

    void push(const float * samples, int64_t n);
    // A new video starts: the next pushed sample is its time 0 (earlier audio is dropped).
    void reset();
    // The model's window and mel bands (another model): unchanged keeps everything; a change starts
    // over like reset(), since features already made are of the old kind.
    Status configure(int window_frames, const LogMelConfig & cfg);
    // windows_host f32 [frames, window_frames, n_mels] for latent frames [frame0, frame0 + frames),
    // waiting for their audio. `interrupted` is polled while waiting; when it returns true the call
    // gives up (ErrorCode::internal, "interrupted while waiting for audio").
    Status fill(int64_t frame0, int frames, const Tensor & windows_host, const std::function<bool()> & interrupted);
    int64_t samples() const;  // pushed since the last reset

private:
    LiveAudio() = default;
    LogMelConfig                     cfg_;
    int                              window_ = 0;
    mutable std::mutex               m_;
    std::condition_variable          cv_;
    std::unique_ptr<LogMelExtractor> ex_;
    std::vector<float>               feats_;      // [frames, n_mels] from mel frame base_
    int64_t                          base_ = 0;   // absolute mel frame of feats_[0]
    int64_t                          samples_ = 0;
};

} // namespace avs
