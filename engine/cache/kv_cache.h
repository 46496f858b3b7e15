// KvCache: per-layer self-attention K/V storage over a RingView, in `commit` mode (one cache,
// Self-Forcing) or `step` mode (one cache per denoising step, Seko AR). Keys are stored after the
// q/k RMSNorm with their spatial RoPE but before the temporal RoPE, which attention applies at read
// time from the frame's current position (so eviction and window-mode positions move no data).
//
// One (cache, layer) store is u8 [slots, layout.slot_bytes] in the chosen KvFormat (kv_format.h).
// A chunk is quantized once, when its K/V are written (commit pass, or each step in step mode); the
// chunk being denoised is read by attention from the model's bf16 activations, never from here.
//
// Offload: the stores live in pinned host memory and each layer's history slots are prefetched on a
// copy stream (a second backend) into one of two device staging buffers while the previous layer
// computes. Events order both directions:
//   ready[b]  copy stream -> compute: the prefetch into staging b landed (acquire waits on it);
//   free[b]   compute -> copy stream: attention no longer reads staging b (the next prefetch into b
//             waits on it); written slots are copied back to the host after it, on the same copy
//             stream, so a committed chunk reaches the host before its slot is prefetched again.
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/ring_view.h"
#include "engine/core/result.h"
#include "engine/core/tensor.h"

#include <array>
#include <memory>
#include <vector>

namespace avs {

class Backend;
class BackendEvent;

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
    KvFormat  format            = KvFormat::f32;
    bool      offload           = false;
    int64_t   max_total_frames  = -1;  // if known (a finite run), storage is trimmed to what it can use

    Status validate() const;
};

struct KvMemory {
    uint64_t store_bytes   = 0;  // all slots of all layers and caches, in the format
    uint64_t device_bytes  = 0;  // of those + staging, on the device
    uint64_t staging_bytes = 0;  // offload: the two device staging buffers
    uint64_t host_bytes    = 0;  // offload: pinned host stores
    uint64_t bf16_bytes    = 0;  // the same window in bf16, for comparison
    double   h2d_bytes = 0, d2h_bytes = 0;  // offload traffic since creation
};

class KvCache {
public:
    // `layers`, `tokens_per_frame`, `heads`, `head_dim` come from the model and the latent size.
    static Result<KvCache> create(Backend & backend, const KvCacheConfig & cfg, int layers, int tokens_per_frame,
                                  int heads, int head_dim);
    KvCache(KvCache &&) noexcept;
    KvCache & operator=(KvCache &&) noexcept;
    ~KvCache();

    const KvCacheConfig & config() const { return cfg_; }
    const KvLayout &      layout() const { return layout_; }
    int  caches() const { return int(stores_.size()) / layers_; }
    int  layers() const { return layers_; }
    int  window_slots() const { return window_slots_; }  // may be < cfg.window when trimmed

    // The view for attention of the chunk ending at `end_frame`.
    RingView view(int64_t end_frame) const;

    // The store of (cache, layer) to read and write during the pass that ends at `end_frame`:
    // resident, or the staging buffer its prefetch fills (the backend waits for it on the device).
    // Offload calls begin_pass() once per forward before the first acquire, and release() after the
    // layer's attention (and its kv_write, if any: `written` frames [frame0, frame0+frames) are then
    // copied back to the host).
    // `tail_frames`: the last visible frames, which attention reads from the chunk's activations.
    Status         begin_pass(int cache, int64_t end_frame, int tail_frames);
    Result<Tensor> acquire(int cache, int layer);
    Status         release(int cache, int layer, int64_t frame0, int frames);
    // A new stream from frame 0 in the same storage (Generator::reset): every slot its views show is
    // written before it is read, so only the history hidden by a live change is shown again.
    void restart() { history_begin_ = 0; }

    // Resident store of (cache, layer) (device, or pinned host when offloaded).
    const Tensor & store(int cache, int layer) const { return stores_[size_t(cache * layers_ + layer)]; }

    // A new cache with `cfg` holding the frames of this one that the new geometry shows before
    // `next_frame0` (the next chunk's first frame), re-encoded to the new format. Window frames the new
    // geometry wants but this cache no longer has stay hidden in its views. Sinks are the stream's
    // first frames, so they grow only over frames still held: config().sinks is `cfg.sinks` clamped to
    // the held prefix [0, p) when frames before `next_frame0` were evicted (p < next_frame0).
    Result<KvCache> migrate(const KvCacheConfig & cfg, int64_t next_frame0) const;

    KvMemory memory() const;
    uint64_t bytes() const { return memory().store_bytes; }

private:
    KvCache() = default;
    Status prefetch(int cache, int layer);
    Status read_slot(int cache, int layer, int32_t slot, const Tensor & k, const Tensor & v) const;

    Backend *             be_ = nullptr;
    KvCacheConfig         cfg_;
    KvLayout              layout_{};
    int                   layers_ = 0, tokens_per_frame_ = 0, heads_ = 0, head_dim_ = 0;
    int                   window_slots_ = 0;
    int64_t               history_begin_ = 0;
    std::vector<Tensor>   stores_;  // [caches * layers]

    // offload
    struct Offload;
    std::unique_ptr<Offload> off_;
};

} // namespace avs
