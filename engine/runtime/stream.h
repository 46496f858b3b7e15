// Stream: the engine's public API for an interactive consumer (the app). An engine thread owns the
// model, the generator and the decode pipeline and keeps generating while the UI renders; the UI
// thread only ever copies settings in, pops finished frames and reads stats, none of which waits on
// a chunk. Settings apply at the next chunk boundary: cache geometry changes (window, sinks, KV
// format, steps, RoPE mode) rebuild the cache and start a new segment, a decoder change rebuilds the
// decode pipeline, a model change reloads (with progress). A new segment starts a new video (fresh
// cache and decoder state); the loaded model is kept unless the model settings changed.
#pragma once

#include "engine/cache/kv_cache.h"
#include "engine/runtime/decode_pipeline.h"

#include <atomic>
#include <deque>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace avs {

class LiveAudio;

struct StreamSettings {
    // model: a checkpoint path, or empty with `config` = "default" (the embedded avatar, assets/) or a
    // preset name for random weights
    std::string model, config = "tiny", vae;  // vae: decoder weights (empty: the default avatar's, else random with the seed)
    std::string backend = "auto";
    std::string decoder = "tiny";             // tiny | wan
    std::string kv_format = "auto";           // auto (f32 on cpu, bf16 on cuda) | f32 | bf16 | fp8 | int8 | int4 | nvfp4
    bool        offload = false;              // KV cache in pinned host memory, prefetched per layer
    std::string rope_mode = "window";         // window (positions stay bounded forever) | absolute
    std::string context;                      // prompt embedding file (safetensors 'context'); empty: zero context
    int         window = 21, sinks = 0, steps = 4, chunk_frames = 3;
    int         height = 0, width = 0;        // pixels; 0 = the model's default
    double      shift = 0;                    // timestep shift; 0 = the model's recommended one (else 5)
    uint64_t    seed = 0;
    double      max_ahead_s = 1.0;            // generate at most this far ahead of the consumer

    // Every named choice is one of its values and every number in range; errors name the field.
    Status validate() const;

    // Cache settings (format, offload, window, sinks, RoPE mode) change live: the video goes on and
    // the frames the new geometry shows are carried over. Anything else starts a new segment.
    bool same_except_cache(const StreamSettings & o) const {
        return model == o.model && config == o.config && vae == o.vae && backend == o.backend && decoder == o.decoder &&
               context == o.context && steps == o.steps && chunk_frames == o.chunk_frames && height == o.height &&
               width == o.width && seed == o.seed && max_ahead_s == o.max_ahead_s && shift == o.shift;
    }
    bool same_model(const StreamSettings & o) const {
        // the seed picks random weights only when there is no checkpoint
        return model == o.model && config == o.config && backend == o.backend && (!model.empty() || seed == o.seed);
    }
};

struct StreamStats {
    std::string         state = "starting";  // starting | loading | running | error
    std::string         message;             // what is happening / what went wrong (for the UI)
    double              load_progress = 0;   // 0..1 while loading and warming up
    int64_t             chunks = 0, frames = 0, dropped = 0;
    int64_t             model_loads = 0;                  // segments that had to (re)load the model
    double              chunk_ms = 0, decode_ms = 0;  // last chunk
    std::vector<double> chunk_ms_history;             // the last 256 chunks, oldest first (plots)
    double              fps = 0;                      // pixel frames per second generated, over the last chunks
    double              realtime_factor = 0;          // generated video seconds per wall second (1 = real time)
    double              latency_s = 0;                // estimate: chunk duration + generation + decode of one chunk
    uint64_t            vram_bytes = 0, kv_bytes = 0; // device bytes in use (DiT backend), KV cache bytes (its format)
    uint64_t            kv_device_bytes = 0;          // of those on the device (offload: the staging buffers)
    bool                offload = false;
    double              offload_gbps = 0;             // host<->device KV traffic over the last chunk (GB/s of wall time)
    int64_t             cache_switches = 0;           // live cache changes applied
    int                 kv_window = 0, kv_sinks = 0;  // the cache's geometry in effect
    std::string         cache_note;                   // what the last live cache change could not do
    std::string         kv_format, backend, decoder, model_name;
    int                 width = 0, height = 0;
};

class Stream {
public:
    // Starts the engine thread; loading happens there (see stats().state / load_progress).
    static std::unique_ptr<Stream> start(const StreamSettings & s);
    ~Stream();  // stops and joins the engine thread

    // Applied at the next chunk boundary.
    void           apply(const StreamSettings & s);
    StreamSettings settings() const;
    // The oldest finished frame, if any (frames carry their pts); never blocks.
    bool           pop_frame(DecodedFrame & out);
    StreamStats    stats() const;
    void           stop();
    // Audio for audio-conditioned models: 16 kHz mono samples as they arrive (any thread). The engine
    // generates a chunk once its audio is here; a new segment starts its video with the audio pushed
    // from then on. While a text-conditioned model runs it is dropped.
    void           push_audio(const float * samples, int64_t n);

private:
    Stream() = default;
    // The model outlives segments while the model settings stay the same: only the cache, the
    // generator and the decode pipeline are rebuilt for other changes.
    struct Model;
    void   run();
    Status run_segment(const StreamSettings & s, std::unique_ptr<Model> & model);
    void   set_state(const std::string & state, const std::string & msg, double progress);
    void   set_cache_stats(const KvCache & c);  // m_ held

    mutable std::mutex      m_;
    std::condition_variable cv_;
    StreamSettings          wanted_;       // latest apply()
    uint64_t                wanted_gen_ = 0;
    StreamStats             stats_;
    std::deque<DecodedFrame> frames_;
    int64_t                 next_index_ = 0;  // frame index across segments
    int64_t                 promised_ = 0;    // frames of every chunk generated so far (decoded or not)
    int64_t                 popped_ = 0;
    std::atomic<bool>       stop_{false};
    std::unique_ptr<LiveAudio> audio_;  // built with FFTW only
    int                        segments_ = 0;  // segments that reached generation (engine thread)
    std::atomic<bool>          text_model_{false};  // a text-conditioned model runs: pushed audio is dropped
    std::atomic<bool>          drop_audio_{false};  // after an error, until a segment is set up: pushed audio is dropped
    std::thread             thread_;
};

} // namespace avs
