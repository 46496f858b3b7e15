// The causal Wan2.1 DiT (wan21-model.md §1.3, with Self-Forcing's per-frame timesteps), run one
// chunk at a time over the ring KV cache, or over a whole sequence with a block-causal mask.
// Residual stream, norms and modulation are fp32; GEMMs take the backend's weight dtype.
#pragma once

#include "engine/backend/backend.h"
#include "engine/cache/kv_cache.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace avs {

class Checkpoint;

// Intermediate tensors a test can ask a forward to keep (host copies).
struct DitTaps {
    Tensor e;           // [F, dim]      time_embedding output
    Tensor e0;          // [F, 6, dim]   time_projection output
    Tensor tokens_in;   // [L, dim]      patch embedding output
    Tensor block0_out;  // [L, dim]      residual stream after block 0
};

class Dit {
public:
    // From a checkpoint; the config comes from `config` when given, else from the file's
    // `__metadata__` key "avs.config", else the checkpoint directory's config.json, else it is
    // inferred from tensor shapes (head_dim 128, as every Wan2.1 model).
    static Result<std::unique_ptr<Dit>> load(Backend & backend, const std::string & path, const ModelConfig * config);
    static Result<std::unique_ptr<Dit>> random_init(Backend & backend, const ModelConfig & config, uint64_t seed);

    const ModelConfig & config() const { return cfg_; }
    Backend &           backend() { return be_; }

    // Text conditioning: context host f32 [L, text_dim] with L <= text_len (zero-padded to text_len,
    // attended without a mask, as the official model). Computes the cross-attention K/V once.
    Status set_context(const Tensor & context_host);
    Status set_zero_context();
    // Text MLP output [text_len, dim] of the current context (device).
    const Tensor & text_embedding() const { return text_emb_; }

    // Audio conditioning (config.conditioning == audio): the log-mel windows of the frames of the
    // next forward(s), host f32 [F, audio_window, audio_mels] (natural-log mel, engine/audio/log_mel.h).
    // The adapter (x = (logmel + 5) / 5, 4 tokens of 8 mel frames each -> audio_embedding.0, GELU,
    // .2, + .pos) runs on the CPU twin (a dozen tokens per chunk) and its tokens are uploaded; each
    // frame's queries then attend to its own tokens only.
    Status set_audio(const Tensor & windows_host);

    // One forward of a chunk through the cache. x: device f32 [C_in, F, h, w], t: per-frame
    // timesteps; the chunk's K/V are written to cache `cache_index` as frames [frame0, frame0+F)
    // (when `write_kv`; the commit pass in commit mode, every step in step mode) and attention reads the
    // ring's history plus the chunk's own K/V up to frame0+F. out: device f32 [C_out, F, h, w] (the velocity).
    Status forward_chunk(const Tensor & x, const std::vector<double> & t, KvCache & cache, int cache_index, int64_t frame0,
                         const Tensor & out, DitTaps * taps = nullptr, bool write_kv = true);

    // Whole sequence without a cache: block-causal over chunks of `chunk_frames`, absolute RoPE.
    Status forward_full(const Tensor & x, const std::vector<double> & t, int chunk_frames, const Tensor & out);

    uint64_t weight_bytes() const { return weight_bytes_; }

    // Called with each layer's self-attention output [L, heads, head_dim] of cached forwards (the KV
    // fidelity harness compares formats layer by layer); empty to remove.
    void set_attention_tap(std::function<Status(int layer, const Tensor & out)> tap) { attn_tap_ = std::move(tap); }

private:
    Dit(Backend & be, const ModelConfig & cfg) : be_(be), cfg_(cfg) {}

    // The self-attention core differs between cached and full forwards; the rest is shared.
    struct SelfAttnPlan {
        KvCache *            cache = nullptr;  // null: full forward
        int                  cache_index = 0;
        int64_t              frame0 = 0;
        int                  chunk_frames = 0;  // full forward: block size in frames
        bool                 write_kv = true;
    };
    Status forward_impl(const Tensor & x, const std::vector<double> & t, const SelfAttnPlan & plan, const Tensor & out,
                        DitTaps * taps);
    Status self_attention(int layer, const Tensor & q, const Tensor & k, const Tensor & v, const Tensor & out,
                          const SelfAttnPlan & plan, int frames, const RopeLayout & rope);
    Status ensure_scratch(int64_t tokens, int64_t frames);

    Backend &   be_;
    ModelConfig cfg_;
    std::function<Status(int, const Tensor &)> attn_tap_;
    DitWeights  w_;
    uint64_t    weight_bytes_ = 0;

    Tensor              text_emb_;          // [text_len, dim]
    std::unique_ptr<Backend> host_;          // audio adapter (CPU twin) and its f32 weights
    Linear              audio0_host_, audio2_host_;
    Tensor              audio_pos_host_;     // [audio_tokens * dim]
    Tensor              audio_x_, audio_t1_, audio_host_;  // host adapter input and activations
    Tensor              audio_tok_, audio_k_, audio_v_;    // device [F * audio_tokens, dim]
    int64_t             audio_frames_ = 0;
    Status              init_audio();
    Status              conditioning_init();  // zero text context, or silence
    std::vector<Tensor> cross_k_, cross_v_;  // per layer [text_len, heads, head_dim]

    // Activation scratch, reused across layers and forwards (sized for the largest chunk seen).
    struct Scratch {
        int64_t tokens = 0, frames = 0;
        Tensor  patches, h, n, q, k, v, a, o, f1, u;      // token-sized
        Tensor  sin, e1, e, es, e0, mod, hshift, hscale;  // frame-sized
    } s_;
};

} // namespace avs
