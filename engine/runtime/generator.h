// Generator: the autoregressive loop. Each call to next_chunk() denoises one chunk of latent frames
// in `steps` DiT passes over the ring KV cache and, in commit mode, runs one more pass at t = 0 that
// writes the clean chunk's K/V (Self-Forcing). In step mode each step reads and writes its own cache
// and there is no commit pass (Seko AR).
#pragma once

#include "engine/cache/kv_cache.h"
#include "engine/model/dit.h"

#include <functional>
#include <memory>
#include <vector>

namespace avs {

// Initial latents and re-noise ε per (chunk, step); step 0 is the initial latent.
class NoiseSource {
public:
    virtual ~NoiseSource() = default;
    virtual Status fill(int64_t chunk, int step, const Tensor & host_dst) = 0;  // host f32 [C, F, h, w]
};

// Counter-based N(0,1) noise: reproducible for (seed, chunk, step).
class SeededNoise final : public NoiseSource {
public:
    explicit SeededNoise(uint64_t seed) : seed_(seed) {}
    Status fill(int64_t chunk, int step, const Tensor & host_dst) override;

private:
    uint64_t seed_;
};

// Noise from a tensor `noise` [chunks, steps, C, F, h, w] (e.g. a golden file).
class TensorNoise final : public NoiseSource {
public:
    explicit TensorNoise(Tensor noise) : noise_(std::move(noise)) {}
    Status fill(int64_t chunk, int step, const Tensor & host_dst) override;

private:
    Tensor noise_;
};

struct GenConfig {
    int           chunk_frames  = 3;
    int           steps         = 4;
    double        shift         = 5.0;
    int           height_latent = 60;  // latent rows (pixels / 8)
    int           width_latent  = 104;
    KvCacheConfig cache;               // its chunk_frames/steps are taken from above

    Status validate(const ModelConfig & model) const;
};

struct ChunkStats {
    int64_t             chunk = 0;
    std::vector<double> step_ms;      // one per denoising step
    double              commit_ms = 0;
    double              total_ms  = 0;
};

class Generator {
public:
    static Result<std::unique_ptr<Generator>> create(Dit & dit, const GenConfig & cfg);

    // Generate the next chunk into `out_host` (f32 [C_out, chunk_frames, h, w]; undefined: no
    // download, the latents stay on the device for the hook). `commit` = false
    // skips the t = 0 pass (only sensible for the last chunk of a finite run: it changes nothing
    // that is returned).
    Status next_chunk(NoiseSource & noise, const Tensor & out_host, ChunkStats * stats = nullptr, bool commit = true);

    // Called inside next_chunk() with the chunk's final latents (device [C_out, F, h, w], valid until
    // the next chunk), before the commit pass: a decode pipeline takes them from here so that decoding
    // overlaps the commit pass and the next chunk.
    void set_latents_hook(std::function<Status(const Tensor & latents)> hook) { hook_ = std::move(hook); }
    // Audio-conditioned models: fills the log-mel windows [frames, audio_window, audio_mels] (host f32)
    // of latent frames [frame0, frame0 + frames) before each chunk. Without one the model hears silence.
    using AudioSource = std::function<Status(int64_t frame0, int frames, const Tensor & windows_host)>;
    void set_audio_source(AudioSource src) { audio_ = std::move(src); }
    // Events around the last chunk's DiT work (for traces): recorded on the DiT backend.
    const std::shared_ptr<BackendEvent> & chunk_begin_event() const { return ev_begin_; }
    const std::shared_ptr<BackendEvent> & chunk_end_event() const { return ev_end_; }
    int64_t                     chunks_done() const { return chunk_; }
    const std::vector<double> & timesteps() const { return t_; }
    const KvCache &             cache() const { return cache_; }
    KvCache &                   cache() { return cache_; }  // e.g. extra read-only forwards (write_kv = false)
    // Live change of the cache (format, window, sinks, offload, RoPE mode) at a chunk boundary: the
    // frames the new geometry shows are carried over, re-encoded in the new format.
    Status                      reconfigure_cache(const KvCacheConfig & cache);
    const GenConfig &           config() const { return cfg_; }
    void                        reset();

private:
    Generator(Dit & dit, GenConfig cfg, KvCache cache) : dit_(dit), cfg_(std::move(cfg)), cache_(std::move(cache)) {}

    Dit &               dit_;
    GenConfig           cfg_;
    KvCache             cache_;
    std::vector<double> t_;
    int64_t             chunk_ = 0;
    int64_t             hooked_ = -1;  // the last chunk whose latents went to the hook
    Tensor              x_, v_, x0_, eps_;  // device [C, F, h, w]
    Tensor              host_noise_;
    std::function<Status(const Tensor &)> hook_;
    AudioSource                           audio_;
    Tensor                                audio_windows_;  // host [chunk_frames, audio_window, audio_mels]
    std::shared_ptr<BackendEvent>         ev_begin_, ev_end_;
};

} // namespace avs
