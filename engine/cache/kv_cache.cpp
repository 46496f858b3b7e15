#include "engine/cache/kv_cache.h"

#include "engine/backend/backend.h"

#include <algorithm>

namespace avs {

const char * cache_mode_name(CacheMode m) { return m == CacheMode::commit ? "commit" : "step"; }
const char * rope_mode_name(RopeMode m) { return m == RopeMode::absolute ? "absolute" : "window"; }

Status KvCacheConfig::validate() const {
    if (chunk_frames < 1) return make_error(ErrorCode::invalid_argument, "chunk frames must be >= 1 (got %d)", chunk_frames);
    if (sinks < 0) return make_error(ErrorCode::invalid_argument, "sink frames must be >= 0 (got %d)", sinks);
    if (window < chunk_frames)
        return make_error(ErrorCode::invalid_argument,
                          "window must hold at least one chunk: window %d < chunk frames %d", window, chunk_frames);
    if (mode == CacheMode::step && steps < 1)
        return make_error(ErrorCode::invalid_argument, "step cache mode needs steps >= 1 (got %d)", steps);
    if (dtype != DType::f32 && dtype != DType::bf16)
        return make_error(ErrorCode::unsupported, "KV cache storage %s is not supported yet (expected f32 or bf16)",
                          dtype_name(dtype));
    return {};
}

Result<KvCache> KvCache::create(Backend & backend, const KvCacheConfig & cfg, int layers, int tokens_per_frame, int heads,
                                int head_dim) {
    AVS_TRY(cfg.validate());
    KvCache c;
    c.cfg_              = cfg;
    c.layers_           = layers;
    c.tokens_per_frame_ = tokens_per_frame;
    c.heads_            = heads;
    c.head_dim_         = head_dim;
    // A finite run never fills a longer window: the visible set is identical with the shorter
    // ring (see RingView), so do not allocate what cannot be used.
    c.window_slots_ = cfg.window;
    if (cfg.max_total_frames > 0)
        c.window_slots_ = int(std::min<int64_t>(cfg.window, std::max<int64_t>(cfg.chunk_frames, cfg.max_total_frames - cfg.sinks)));
    const int   n_caches = cfg.mode == CacheMode::step ? cfg.steps : 1;
    const Shape shape{cfg.sinks + c.window_slots_, tokens_per_frame, heads, head_dim};
    for (int i = 0; i < n_caches * layers; ++i) {
        AVS_ASSIGN_OR_RETURN(Tensor k, backend.alloc(cfg.dtype, shape));
        AVS_ASSIGN_OR_RETURN(Tensor v, backend.alloc(cfg.dtype, shape));
        c.k_.push_back(std::move(k));
        c.v_.push_back(std::move(v));
    }
    return c;
}

RingView KvCache::view(int64_t end_frame) const {
    return RingView{cfg_.sinks, window_slots_, tokens_per_frame_, end_frame, cfg_.rope_mode};
}

uint64_t KvCache::bytes() const {
    uint64_t b = 0;
    for (size_t i = 0; i < k_.size(); ++i) b += k_[i].nbytes() + v_[i].nbytes();
    return b;
}

} // namespace avs
