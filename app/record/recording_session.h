// RecordingSession: an Mp4Recorder on its own thread, fed with decoded frames through a queue and
// with audio straight from an AudioRing (an extra output of the audio source), so encoding never
// blocks the UI, the engine or the audio threads. Video frame k and audio sample n are placed at
// k / 16 s and n / 16 kHz from the start of the recording.
#pragma once

#include "app/audio/audio_ring.h"
#include "app/record/mp4_recorder.h"
#include "engine/runtime/decode_pipeline.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace avs {

class RecordingSession {
public:
    // Opens the file (errors name it) and starts the thread. `audio` may be null (no audio track).
    static Result<std::unique_ptr<RecordingSession>> start(const RecorderOptions & opt, std::shared_ptr<AudioRing> audio);
    ~RecordingSession();  // stop()

    // Queue a frame (any index: the recording's first frame becomes time 0). Never blocks; frames
    // beyond a few seconds of backlog are dropped and counted. A frame of another size than the
    // recording's is an error (the file keeps what came before; a new size needs a new file).
    void   push_frame(const DecodedFrame & f);
    // Flush, write the trailer, join the thread; returns the first error (which names the file).
    Status stop();

    int64_t     frames_written() const { return frames_.load(); }
    int64_t     frames_dropped() const { return dropped_.load(); }
    std::string path() const { return path_; }
    std::string codec() const { return codec_; }
    int         width() const { return width_; }
    int         height() const { return height_; }
    Status      error() const;

private:
    RecordingSession() = default;
    void run();

    std::unique_ptr<Mp4Recorder> rec_;
    std::shared_ptr<AudioRing>   audio_;
    std::string                  path_, codec_;
    int                          width_ = 0, height_ = 0;
    mutable std::mutex           m_;
    std::condition_variable      cv_;
    std::deque<DecodedFrame>     queue_;
    Status                       error_;
    int64_t                      first_index_ = -1;
    int64_t                      audio_start_ = -1;  // ring index of the recording's first sample
    std::atomic<int64_t>         frames_{0}, dropped_{0};
    std::atomic<bool>            stop_{false};
    bool                         stopped_ = false;
    std::thread                  thread_;
};

} // namespace avs
