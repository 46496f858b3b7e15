// KvCache: per-layer self-attention K/V storage over a RingView, in `commit` mode (one cache,
// Self-Forcing) or `step` mode (one cache per denoising step, Seko AR). Keys are stored after the
// q/k RMSNorm with their spatial RoPE but before the temporal RoPE, which attention applies at read
// time from the frame's current position (so eviction and window-mode positions move no data). Layout of one (cache, layer) store: [slots, tokens_per_frame, heads, head_dim].
#pragma once

#include "engine/cache/ring_view.h"
#include "engine/core/result.h"
#include "engine/core/tensor.h"

#include <vector>

namespace avs {

class Backend;

enum class CacheMode { commit, step };
const char * cache_mode_name(CacheMode m);
const char * rope_mode_name(RopeMode m);

struct KvCacheConfig {
    int       sinks             = 0;
    int       window            = 21;  // frames, including the chunk being generated
    int       chunk_frames      = 3;
    CacheMode mode              = CacheMode::commit;
    RopeMode  rope_mode         = RopeMode::absolute;
    int       steps             = 4;   // caches in step mode
    DType     dtype             = DType::f32;
    int64_t   max_total_frames  = -1;  // if known (a finite run), storage is trimmed to what it can use

    Status validate() const;
};

class KvCache {
public:
    // `layers`, `tokens_per_frame`, `heads`, `head_dim` come from the model and the latent size.
    static Result<KvCache> create(Backend & backend, const KvCacheConfig & cfg, int layers, int tokens_per_frame,
                                  int heads, int head_dim);

    const KvCacheConfig & config() const { return cfg_; }
    int  caches() const { return int(k_.size()) / layers_; }
    int  layers() const { return layers_; }
    int  window_slots() const { return window_slots_; }  // may be < cfg.window when trimmed

    // The view for attention of the chunk ending at `end_frame`.
    RingView view(int64_t end_frame) const;

    // Storage of (cache index, layer): [slots, tokens_per_frame, heads, head_dim].
    const Tensor & keys(int cache, int layer) const { return k_[size_t(cache * layers_ + layer)]; }
    const Tensor & values(int cache, int layer) const { return v_[size_t(cache * layers_ + layer)]; }

    uint64_t bytes() const;  // total K+V storage

private:
    KvCacheConfig       cfg_;
    int                 layers_ = 0, tokens_per_frame_ = 0, heads_ = 0, head_dim_ = 0;
    int                 window_slots_ = 0;
    std::vector<Tensor> k_, v_;
};

} // namespace avs
