#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/cache/kv_cache.h"
#include "engine/cache/kv_codec.h"
#include "test_util.h"

#include <cstring>
#include <map>

using namespace avs;

namespace {

constexpr int kTpf = 4, kHeads = 2, kHd = 12, kGridH = 2, kGridW = 2;
constexpr int64_t kPerFrame = int64_t(kTpf) * kHeads * kHd;

struct Rollout {
    KvCache                    cache;
    std::map<int64_t, Tensor>  k_hist, v_hist;  // per absolute frame [tpf, H, Dh]
};

// Write `chunks` chunks of random K/V through the ring, remembering every frame's data. With
// `model_keys`, keys are stored as the model stores them (spatial RoPE applied, the temporal part
// left for read time) while k_hist keeps the un-rotated keys.
Rollout roll(Backend & be, int sinks, int window, int chunk, int chunks, RopeMode mode, KvFormat fmt = KvFormat::f32,
             bool model_keys = false) {
    KvCacheConfig cfg;
    cfg.sinks = sinks; cfg.window = window; cfg.chunk_frames = chunk; cfg.rope_mode = mode; cfg.format = fmt;
    Rollout r{KvCache::create(be, cfg, 1, kTpf, kHeads, kHd).value(), {}, {}};
    for (int c = 0; c < chunks; ++c) {
        const int64_t f0 = int64_t(c) * chunk;
        Tensor k = test::randn(Shape{chunk * kTpf, kHeads, kHd}, 1000 + uint64_t(c));
        Tensor v = test::randn(Shape{chunk * kTpf, kHeads, kHd}, 2000 + uint64_t(c));
        Tensor stored = k;
        if (model_keys) {
            stored = Tensor::host(DType::f32, k.shape());
            std::memcpy(stored.raw(), k.raw(), k.nbytes());
            REQUIRE(be.rope(stored, make_rope_layout(kHd, kGridH, kGridW), std::vector<int64_t>(size_t(chunk), 0)).ok());
        }
        REQUIRE(be.kv_write(r.cache.store(0, 0), r.cache.layout(), r.cache.view(f0 + chunk), f0, stored, v).ok());
        for (int f = 0; f < chunk; ++f) {
            r.k_hist[f0 + f] = k.slice(0, f * kTpf, (f + 1) * kTpf);
            r.v_hist[f0 + f] = v.slice(0, f * kTpf, (f + 1) * kTpf);
        }
    }
    return r;
}

} // namespace

TEST_CASE("eviction: after N > W chunks the cache holds exactly the sinks and the last W frames", "[kv_cache]") {
    CpuBackend be;
    const int sinks = 1, window = 6, chunk = 3, chunks = 7;
    Rollout    r   = roll(be, sinks, window, chunk, chunks, RopeMode::absolute);
    RingView   view = r.cache.view(int64_t(chunks) * chunk);
    std::vector<int64_t> want = {0, 15, 16, 17, 18, 19, 20};
    REQUIRE(view.visible_frames() == int32_t(want.size()));
    const KvLayout & L = r.cache.layout();
    std::vector<float> K(static_cast<size_t>(kPerFrame)), V(static_cast<size_t>(kPerFrame));
    for (int32_t l = 0; l < view.visible_frames(); ++l) {
        REQUIRE(view.frame_of_logical(l) == want[size_t(l)]);
        const int64_t slot = view.slot_of_logical(l);
        kv_decode_frame(L, r.cache.store(0, 0).data<uint8_t>() + slot * L.slot_bytes, K.data(), V.data());
        REQUIRE(std::memcmp(K.data(), r.k_hist[want[size_t(l)]].raw(), size_t(kPerFrame) * 4) == 0);
        REQUIRE(std::memcmp(V.data(), r.v_hist[want[size_t(l)]].raw(), size_t(kPerFrame) * 4) == 0);
    }
    REQUIRE(L.slot_bytes == KvLayout::align(2 * kPerFrame * 4, 256));
    REQUIRE(r.cache.bytes() == uint64_t((sinks + window) * L.slot_bytes));
}

TEST_CASE("ring attention equals plain attention over the gathered frames, with positions of the gathered order",
          "[kv_cache][attention]") {
    CpuBackend be;
    for (RopeMode mode : {RopeMode::absolute, RopeMode::window}) {
        for (auto [sinks, window] : {std::pair{0, 3}, std::pair{1, 6}, std::pair{3, 4}, std::pair{2, 5}}) {
            const int chunk = 3, chunks = 6;
            Rollout   r     = roll(be, sinks, window, chunk, chunks, mode, KvFormat::f32, true);
            const int64_t end  = int64_t(chunks) * chunk;
            RingView      view = r.cache.view(end);
            const RopeLayout rope = make_rope_layout(kHd, kGridH, kGridW);

            // queries of the current chunk, rotated at their positions
            Tensor q = test::randn(Shape{chunk * kTpf, kHeads, kHd}, 77);
            std::vector<int64_t> qpos;
            for (int f = 0; f < chunk; ++f) qpos.push_back(view.rope_pos_of_frame(end - chunk + f));
            REQUIRE(be.rope(q, rope, qpos).ok());
            Tensor out = Tensor::host(DType::f32, q.shape());
            const Tensor none;
            REQUIRE(be.attention_ring(out, q, r.cache.store(0, 0), r.cache.layout(), view, none, none, rope, 0.3f).ok());
            // the same with the chunk's own frames read from activations (the model's path): identical
            Tensor tk = Tensor::host(DType::f32, Shape{chunk * kTpf, kHeads, kHd}), tv = Tensor::host(DType::f32, tk.shape());
            for (int f = 0; f < chunk; ++f) {
                std::memcpy(tk.data<float>() + f * kPerFrame, r.k_hist[end - chunk + f].raw(), size_t(kPerFrame) * 4);
                std::memcpy(tv.data<float>() + f * kPerFrame, r.v_hist[end - chunk + f].raw(), size_t(kPerFrame) * 4);
            }
            REQUIRE(be.rope(tk, rope, std::vector<int64_t>(size_t(chunk), 0)).ok());
            Tensor out_tail = Tensor::host(DType::f32, q.shape());
            REQUIRE(be.attention_ring(out_tail, q, r.cache.store(0, 0), r.cache.layout(), view, tk, tv, rope, 0.3f).ok());
            REQUIRE(test::bit_equal(out, out_tail));

            // reference: gather the visible frames by definition, rotate the un-rotated keys fully at
            // their gathered positions (spatial at write + temporal at read must equal this)
            std::vector<int64_t> frames;
            for (int64_t f = 0; f < end; ++f)
                if (f < sinks || f >= end - window) frames.push_back(f);
            const int64_t n = int64_t(frames.size());
            Tensor K = Tensor::host(DType::f32, Shape{n * kTpf, kHeads, kHd});
            Tensor V = Tensor::host(DType::f32, Shape{n * kTpf, kHeads, kHd});
            std::vector<int64_t> kpos;
            for (int64_t i = 0; i < n; ++i) {
                std::memcpy(K.data<float>() + i * kPerFrame, r.k_hist[frames[size_t(i)]].raw(), size_t(kPerFrame) * 4);
                std::memcpy(V.data<float>() + i * kPerFrame, r.v_hist[frames[size_t(i)]].raw(), size_t(kPerFrame) * 4);
                kpos.push_back(mode == RopeMode::absolute ? frames[size_t(i)] : i);
            }
            REQUIRE(be.rope(K, rope, kpos).ok());
            Tensor ref = Tensor::host(DType::f32, q.shape());
            REQUIRE(be.attention(ref, q, K, V, 0.3f, 0, 0).ok());
            INFO("mode " << rope_mode_name(mode) << " sinks " << sinks << " window " << window);
            REQUIRE(test::rel_err(out, ref) < 1e-6);
        }
    }
}

TEST_CASE("bf16 KV storage holds values within bf16 rounding", "[kv_cache]") {
    CpuBackend be;
    Rollout    r    = roll(be, 0, 3, 3, 1, RopeMode::absolute, KvFormat::bf16);
    RingView   view = r.cache.view(3);
    const KvLayout & L = r.cache.layout();
    std::vector<float> K(static_cast<size_t>(kPerFrame));
    for (int32_t l = 0; l < 3; ++l) {
        const float * want = r.k_hist[l].data<float>();
        kv_decode_frame(L, r.cache.store(0, 0).data<uint8_t>() + view.slot_of_logical(l) * L.slot_bytes, K.data(), nullptr);
        for (int64_t i = 0; i < kPerFrame; ++i) REQUIRE(std::fabs(K[size_t(i)] - want[i]) <= std::fabs(want[i]) * (1.0f / 256.0f));
    }
    REQUIRE(L.slot_bytes == KvLayout::align(2 * kPerFrame * 2, 256));
}

TEST_CASE("KV cache config errors name the problem", "[kv_cache]") {
    KvCacheConfig c;
    c.window = 2; c.chunk_frames = 3;
    REQUIRE_THAT(c.validate().message(), Catch::Contains("window") && Catch::Contains("chunk"));
    c.window = 3; c.sinks = -1;
    REQUIRE_THAT(c.validate().message(), Catch::Contains("sink"));
    c.sinks = 0; c.format = KvFormat(42);
    REQUIRE_THAT(c.validate().message(), Catch::Contains("format"));
    REQUIRE_THAT(kv_format_supports(KvFormat::int4, 48).message(), Catch::Contains("int4") && Catch::Contains("32"));
    REQUIRE_THAT(kv_format_parse("int3").status().message(), Catch::Contains("int3") && Catch::Contains("nvfp4"));
}

TEST_CASE("step mode keeps one cache per step; a finite run trims the window storage", "[kv_cache]") {
    CpuBackend    be;
    KvCacheConfig c;
    c.mode = CacheMode::step; c.steps = 3; c.window = 21; c.chunk_frames = 3; c.max_total_frames = 6;
    auto kv = KvCache::create(be, c, 2, kTpf, kHeads, kHd).value();
    REQUIRE(kv.caches() == 3);
    REQUIRE(kv.window_slots() == 6);
    REQUIRE(kv.bytes() == uint64_t(3 * 2 * 6 * kv.layout().slot_bytes));
    // the trimmed ring shows the same frames as the full one for every chunk of the run
    RingView full{0, 21, kTpf, 0, RopeMode::window};
    for (int64_t end = 3; end <= 6; end += 3) {
        RingView t = kv.view(end);
        full.end_frame = end;
        REQUIRE(t.visible_frames() == full.visible_frames());
        for (int32_t l = 0; l < t.visible_frames(); ++l) REQUIRE(t.frame_of_logical(l) == full.frame_of_logical(l));
    }
}
