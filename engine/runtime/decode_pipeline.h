// DecodePipeline: decodes committed chunks on their own backend (its own CUDA stream) while the DiT
// goes on with the next chunk. The engine thread hands over each chunk's latents (copied on the DiT
// stream into one of `max_in_flight` slots, an event orders the decode after that copy); a worker
// thread runs the decoder, converts frames to RGBA8 and copies them into pinned host memory; the
// consumer pops finished frames without ever waiting. Backpressure: submit() blocks only when every
// slot still waits to be decoded, so a decoder slower than the DiT slows the stream instead of
// growing memory without bound.
#pragma once

#include "engine/backend/backend.h"
#include "engine/decode/decoder.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace avs {

struct DecodedFrame {
    int64_t index = 0;  // pixel frame index in the stream
    double  pts   = 0;  // presentation time in seconds (index / fps)
    Tensor  rgba;       // host u8 [H, W, 4]
};

// Timed work on one stream, milliseconds from the pipeline's start (for Chrome traces).
struct StreamSpan {
    std::string track;  // "dit" or "decode"
    std::string name;
    double      start_ms = 0, dur_ms = 0;
};

struct DecodeStats {
    int64_t             chunks = 0, frames = 0, dropped = 0;  // dropped: popped too late, oldest discarded
    std::vector<double> chunk_ms;                             // decode time per chunk (its own stream)
};

class DecodePipeline {
public:
    struct Options {
        int    max_in_flight = 2;    // chunks submitted but not yet decoded
        size_t max_ready     = 256;  // decoded frames waiting for the consumer; the oldest are dropped beyond
        double fps           = 16.0; // the model's frame rate (Wan: 16)
    };

    // `dit` is the backend the latents live on; `decoder` runs on `dec_backend` (a second backend
    // of the same kind, so a second stream on the same GPU). Latents are [C, chunk_frames, h, w].
    static Result<std::unique_ptr<DecodePipeline>> create(Backend & dit, std::unique_ptr<Backend> dec_backend,
                                                          std::unique_ptr<VideoDecoder> decoder, const Shape & latent_shape,
                                                          const Options & opt);
    ~DecodePipeline();

    // Engine thread: queue a chunk's latents (device tensor of `dit`, may be overwritten as soon as
    // this returns).
    Status submit(const Tensor & latents);
    // Consumer: the oldest decoded frame, if any. Never blocks on decoding.
    bool pop(DecodedFrame & out);
    // Wait until everything submitted has been decoded (end of a finite run); returns the first
    // error the worker hit.
    Status flush();

    // Record a DiT span from two events of `dit` (the engine's chunk begin/end), for the trace.
    Status add_dit_span(const std::string & name, const BackendEvent & begin, const BackendEvent & end);
    // All spans so far (DiT and decode); complete once flush() returned.
    std::vector<StreamSpan> spans();
    DecodeStats             stats();
    VideoDecoder &          decoder() { return *decoder_; }

private:
    struct Job {
        int                           slot = 0;
        int64_t                       chunk = 0;
        std::shared_ptr<BackendEvent> ready;
    };
    DecodePipeline(Backend & dit, std::unique_ptr<Backend> dec_be, std::unique_ptr<VideoDecoder> dec, const Options & o)
        : dit_(dit), be_(std::move(dec_be)), decoder_(std::move(dec)), opt_(o) {}
    void   worker();
    Status decode_job(const Job & job);

    Backend &                     dit_;
    std::unique_ptr<Backend>      be_;
    std::unique_ptr<VideoDecoder> decoder_;
    Options                       opt_;
    std::vector<Tensor>           slots_;      // device latents, one per in-flight chunk
    std::vector<bool>             slot_busy_;
    std::shared_ptr<BackendEvent> origin_;     // time zero of the spans, on `dit`
    struct PinnedPool;
    std::shared_ptr<PinnedPool>   pinned_;     // recycled host frame buffers (pinned allocation is slow)

    std::mutex              m_;
    std::condition_variable cv_;
    std::deque<Job>         jobs_;
    std::deque<DecodedFrame> ready_;
    std::vector<StreamSpan> spans_;
    DecodeStats             stats_;
    Status                  error_;
    int64_t                 submitted_ = 0, finished_ = 0, next_frame_ = 0;
    bool                    stop_ = false;
    std::thread             thread_;
};

} // namespace avs
