#include "engine/cache/kv_cache.h"

#include "engine/backend/backend.h"

#include <algorithm>
#include <cstdio>

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
    if (int(format) < 0 || int(format) > int(KvFormat::nvfp4))
        return make_error(ErrorCode::invalid_argument, "KV cache format %d is not one of the known formats", int(format));
    return {};
}

struct KvCache::Offload {
    std::unique_ptr<Backend>                     copy;      // its own stream: H2D prefetches, D2H write-backs
    std::array<Tensor, 2>                        staging;   // device [slots, slot_bytes]
    std::array<std::shared_ptr<BackendEvent>, 2> ready, free;
    int                                          pass_cache = -1;
    int64_t                                      pass_end = 0;
    int                                          pass_tail = 0;  // frames of the pass read from activations
    double                                       h2d = 0, d2h = 0;
};

KvCache::KvCache(KvCache &&) noexcept = default;
KvCache & KvCache::operator=(KvCache &&) noexcept = default;
KvCache::~KvCache() {
    // queued copies read or write the stores: finish them before the memory goes
    if (off_ && off_->copy) (void) off_->copy->synchronize();
}

Result<KvCache> KvCache::create(Backend & backend, const KvCacheConfig & cfg, int layers, int tokens_per_frame, int heads,
                                int head_dim) {
    AVS_TRY(cfg.validate());
    AVS_TRY(kv_format_supports(cfg.format, head_dim));
    KvCache c;
    c.be_               = &backend;
    c.cfg_              = cfg;
    c.layers_           = layers;
    c.tokens_per_frame_ = tokens_per_frame;
    c.heads_            = heads;
    c.head_dim_         = head_dim;
    c.layout_           = KvLayout::make(cfg.format, tokens_per_frame, heads, head_dim);
    // A finite run never fills a longer window: the visible set is identical with the shorter
    // ring (see RingView), so do not allocate what cannot be used.
    c.window_slots_ = cfg.window;
    if (cfg.max_total_frames > 0)
        c.window_slots_ = int(std::min<int64_t>(cfg.window, std::max<int64_t>(cfg.chunk_frames, cfg.max_total_frames - cfg.sinks)));
    const int   n_caches = cfg.mode == CacheMode::step ? cfg.steps : 1;
    const Shape shape{cfg.sinks + c.window_slots_, c.layout_.slot_bytes};
    for (int i = 0; i < n_caches * layers; ++i) {
        auto t = cfg.offload ? backend.alloc_host(DType::u8, shape) : backend.alloc(DType::u8, shape);
        if (!t) {
            char what[160];
            std::snprintf(what, sizeof what, "KV cache (%s, %lld slots x %lld bytes, %d stores)", kv_format_name(cfg.format),
                          (long long) shape[0], (long long) shape[1], n_caches * layers);
            return t.status().with_context(what);
        }
        c.stores_.push_back(std::move(t.value()));
    }
    if (cfg.offload) {
        c.off_ = std::make_unique<Offload>();
        AVS_ASSIGN_OR_RETURN(c.off_->copy, make_backend(backend.device() == Device::cuda ? "cuda" : "cpu"));
        for (int b = 0; b < 2; ++b) {
            AVS_ASSIGN_OR_RETURN(c.off_->staging[size_t(b)], backend.alloc(DType::u8, shape));
        }
    }
    return c;
}

RingView KvCache::view(int64_t end_frame) const {
    RingView v{cfg_.sinks, window_slots_, tokens_per_frame_, end_frame, cfg_.rope_mode};
    v.history_begin = history_begin_;
    return v;
}

// ---- offload ----

Status KvCache::prefetch(int cache, int layer) {
    Offload &     o = *off_;
    const int     b = layer % 2;
    // only the history is read from the store: the chunk being generated (the last pass_tail visible
    // frames) comes from activations, so its slots are not copied
    RingFragment  fr[3];
    const int     n = view(o.pass_end).fragments(fr);
    for (int i = n - 1, skip = o.pass_tail; i >= 0 && skip > 0; --i) {
        const int cut = std::min(skip, fr[i].frames);
        fr[i].frames -= cut, skip -= cut;
    }
    if (o.free[size_t(b)]) AVS_TRY(o.copy->wait_event(*o.free[size_t(b)]));
    const Tensor & host = store(cache, layer);
    for (int i = 0; i < n; ++i) {
        if (fr[i].frames == 0) continue;
        const int64_t s0 = fr[i].slot_begin, s1 = s0 + fr[i].frames;
        AVS_TRY(o.copy->copy_from_host_async(o.staging[size_t(b)].slice(0, s0, s1), host.slice(0, s0, s1)));
        o.h2d += double(s1 - s0) * double(layout_.slot_bytes);
    }
    AVS_ASSIGN_OR_RETURN(o.ready[size_t(b)], o.copy->record_event());
    return {};
}

Status KvCache::begin_pass(int cache, int64_t end_frame, int tail_frames) {
    if (!off_) return {};
    off_->pass_cache = cache;
    off_->pass_end   = end_frame;
    off_->pass_tail  = tail_frames;
    for (int l = 0; l < std::min(2, layers_); ++l) AVS_TRY(prefetch(cache, l));
    return {};
}

Result<Tensor> KvCache::acquire(int cache, int layer) {
    if (!off_) return store(cache, layer);
    if (off_->pass_cache != cache) return make_error(ErrorCode::internal, "KV offload: acquire of cache %d outside its pass", cache);
    AVS_TRY(be_->wait_event(*off_->ready[size_t(layer % 2)]));
    return off_->staging[size_t(layer % 2)];
}

Status KvCache::release(int cache, int layer, int64_t frame0, int frames) {
    if (!off_) return {};
    Offload & o = *off_;
    const int b = layer % 2;
    AVS_ASSIGN_OR_RETURN(o.free[size_t(b)], be_->record_event());
    if (frames > 0) {  // write the committed frames back, ordered before any later prefetch of them
        AVS_TRY(o.copy->wait_event(*o.free[size_t(b)]));
        const RingView v = view(frame0 + frames);
        for (int f = 0; f < frames; ++f) {
            const int64_t s = v.slot_of_frame(frame0 + f);
            AVS_TRY(o.copy->copy_to_host_async(store(cache, layer).slice(0, s, s + 1), o.staging[size_t(b)].slice(0, s, s + 1)));
            o.d2h += double(layout_.slot_bytes);
        }
    }
    if (layer + 2 < layers_) AVS_TRY(prefetch(cache, layer + 2));
    return {};
}

// ---- live reconfiguration ----

Status KvCache::read_slot(int cache, int layer, int32_t slot, const Tensor & k, const Tensor & v) const {
    const Tensor & st = store(cache, layer);
    if (!off_) return be_->kv_read(k, v, st, layout_, slot);
    Tensor & tmp = off_->staging[0];  // idle between passes
    AVS_TRY(be_->copy_from_host_async(tmp.slice(0, slot, slot + 1), st.slice(0, slot, slot + 1)));
    return be_->kv_read(k, v, tmp, layout_, slot);
}

Result<KvCache> KvCache::migrate(const KvCacheConfig & cfg_in, int64_t next_frame0) const {
    KvCacheConfig cfg = cfg_in;
    cfg.max_total_frames = -1;  // a live stream
    // Which absolute frames this cache holds: what its view shows just before the next chunk.
    const RingView old_v = view(std::max<int64_t>(next_frame0, 0));
    auto           held  = [&](int64_t f) {
        if (f < 0 || f >= next_frame0) return false;
        return f < old_v.visible_sinks() || f >= old_v.ring_begin();
    };
    // Sinks are the stream's first frames: they can grow only over frames still held. With all of
    // [0, next_frame0) held, the sink slots past it fill as the next chunks are written.
    int64_t prefix = 0;
    while (prefix < next_frame0 && held(prefix)) ++prefix;
    if (prefix < next_frame0 && cfg.sinks > prefix) cfg.sinks = int(prefix);
    AVS_ASSIGN_OR_RETURN(KvCache n, create(*be_, cfg, layers_, tokens_per_frame_, heads_, head_dim_));
    if (off_) AVS_TRY(off_->copy->synchronize());
    AVS_TRY(be_->synchronize());
    if (next_frame0 <= 0) return n;

    // The window run that exists; frames the new window wants but this cache no longer has stay hidden.
    int64_t       hb         = next_frame0;
    const int64_t want_begin = std::max<int64_t>(n.cfg_.sinks, next_frame0 + cfg.chunk_frames - n.window_slots_);
    while (hb - 1 >= want_begin && held(hb - 1)) --hb;
    n.history_begin_ = hb;

    const RingView     nv = n.view(next_frame0);
    std::vector<int64_t> frames;
    for (int32_t l = 0; l < nv.visible_frames(); ++l) frames.push_back(nv.frame_of_logical(l));
    if (frames.empty()) return n;
    const DType  dt = be_->act_dtype();
    const Shape  fs{tokens_per_frame_, heads_, head_dim_};
    AVS_ASSIGN_OR_RETURN(Tensor k, be_->alloc(dt, fs));
    AVS_ASSIGN_OR_RETURN(Tensor v, be_->alloc(dt, fs));
    // Same cache count: each carries its own entries. A commit <-> step switch changes the count; every
    // new cache then starts from the old one with the cleanest entries (the commit cache, or the last
    // step's), which keeps the history instead of restarting the video.
    const bool same = n.caches() == caches();
    for (int c = 0; c < n.caches(); ++c)
        for (int l = 0; l < layers_; ++l)
            for (int64_t f : frames) {
                AVS_TRY(read_slot(same ? c : caches() - 1, l, old_v.slot_of_frame(f), k, v));
                const RingView one = n.view(f + 1);
                const int64_t  s   = one.slot_of_frame(f);
                if (n.off_) {
                    Tensor & tmp = n.off_->staging[0];
                    AVS_TRY(be_->kv_write(tmp, n.layout_, one, f, k, v));
                    AVS_TRY(be_->copy_to_host_async(n.store(c, l).slice(0, s, s + 1), tmp.slice(0, s, s + 1)));
                    AVS_TRY(be_->synchronize());
                } else {
                    AVS_TRY(be_->kv_write(n.store(c, l), n.layout_, one, f, k, v));
                }
            }
    AVS_TRY(be_->synchronize());
    return n;
}

KvMemory KvCache::memory() const {
    KvMemory m;
    for (const Tensor & t : stores_) m.store_bytes += t.nbytes();
    const uint64_t slots = uint64_t(cfg_.sinks + window_slots_);
    m.bf16_bytes = uint64_t(stores_.size()) * slots * uint64_t(KvLayout::make(KvFormat::bf16, tokens_per_frame_, heads_, head_dim_).slot_bytes);
    if (off_) {
        for (const Tensor & t : off_->staging) m.staging_bytes += t.nbytes();
        m.host_bytes   = m.store_bytes;
        m.device_bytes = m.staging_bytes;
        m.h2d_bytes = off_->h2d, m.d2h_bytes = off_->d2h;
    } else {
        m.device_bytes = m.store_bytes;
    }
    return m;
}

} // namespace avs
