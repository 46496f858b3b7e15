#include "engine/runtime/generator.h"

#include "engine/runtime/rng.h"
#include "engine/runtime/sampler.h"

#include <chrono>
#include <cmath>

namespace avs {

Status SeededNoise::fill(int64_t chunk, int step, const Tensor & dst) {
    fill_normal(dst.data<float>(), dst.numel(), rng_stream(seed_, uint64_t(chunk) + 1, uint64_t(step) + 1));
    return {};
}

Status TensorNoise::fill(int64_t chunk, int step, const Tensor & dst) {
    if (noise_.ndim() != 6)
        return make_error(ErrorCode::shape, "noise tensor has shape %s, expected [chunks, steps, C, F, h, w]", noise_.shape().str().c_str());
    if (chunk >= noise_.dim(0) || step >= noise_.dim(1))
        return make_error(ErrorCode::invalid_argument, "noise tensor %s has no entry for chunk %lld step %d",
                          noise_.shape().str().c_str(), (long long) chunk, step);
    const Tensor src = noise_.select(0, chunk).select(0, step);
    if (src.numel() != dst.numel())
        return make_error(ErrorCode::shape, "noise entry %s does not match the chunk latent %s", src.shape().str().c_str(),
                          dst.shape().str().c_str());
    return convert_to_f32(src.raw(), src.dtype(), dst.data<float>(), uint64_t(dst.numel()));
}

Status GenConfig::validate(const ModelConfig & m) const {
    if (steps < 1 || steps > 50) return make_error(ErrorCode::invalid_argument, "steps must be in 1..50 (got %d)", steps);
    if (!(shift > 0)) return make_error(ErrorCode::invalid_argument, "shift must be > 0 (got %g)", shift);
    if (chunk_frames < 1) return make_error(ErrorCode::invalid_argument, "chunk frames must be >= 1 (got %d)", chunk_frames);
    if (height_latent <= 0 || width_latent <= 0 || height_latent % m.patch_size[1] || width_latent % m.patch_size[2])
        return make_error(ErrorCode::invalid_argument,
                          "latent size %dx%d must be positive and divisible by the patch size %dx%d (pixels: multiples of %d)",
                          height_latent, width_latent, m.patch_size[1], m.patch_size[2], 8 * m.patch_size[1]);
    return {};
}

Result<std::unique_ptr<Generator>> Generator::create(Dit & dit, const GenConfig & cfg_in) {
    const ModelConfig & m = dit.config();
    AVS_TRY(cfg_in.validate(m));
    GenConfig cfg          = cfg_in;
    cfg.cache.chunk_frames = cfg.chunk_frames;
    cfg.cache.steps        = cfg.steps;
    const int tpf = (cfg.height_latent / m.patch_size[1]) * (cfg.width_latent / m.patch_size[2]);
    AVS_ASSIGN_OR_RETURN(KvCache cache, KvCache::create(dit.backend(), cfg.cache, m.layers, tpf, m.heads, m.head_dim()));
    std::unique_ptr<Generator> g(new Generator(dit, cfg, std::move(cache)));
    g->t_ = sampler_timesteps(cfg.steps, cfg.shift);
    Backend &   be = dit.backend();
    const Shape in{m.in_channels, cfg.chunk_frames, cfg.height_latent, cfg.width_latent};
    const Shape outs{m.out_channels, cfg.chunk_frames, cfg.height_latent, cfg.width_latent};
    if (m.in_channels != m.out_channels)
        return make_error(ErrorCode::unsupported, "the sampler needs in_channels == out_channels (got %d, %d)", m.in_channels,
                          m.out_channels);
    AVS_ASSIGN_OR_RETURN(g->x_, be.alloc(DType::f32, in));
    AVS_ASSIGN_OR_RETURN(g->v_, be.alloc(DType::f32, outs));
    AVS_ASSIGN_OR_RETURN(g->x0_, be.alloc(DType::f32, outs));
    AVS_ASSIGN_OR_RETURN(g->eps_, be.alloc(DType::f32, in));
    AVS_ASSIGN_OR_RETURN(g->host_noise_, Tensor::zeros(DType::f32, in));
    return g;
}

Status Generator::reconfigure_cache(const KvCacheConfig & c) {
    KvCacheConfig nc = c;
    nc.chunk_frames  = cfg_.chunk_frames;
    nc.steps         = cfg_.steps;
    AVS_ASSIGN_OR_RETURN(KvCache n, cache_.migrate(nc, chunk_ * cfg_.chunk_frames));
    cache_     = std::move(n);
    cfg_.cache = cache_.config();
    return {};
}

// Visibility derives from the chunk index and every chunk writes its own K/V before reading, so
// restarting at chunk 0 needs no cache clearing; only what a live change hid is shown again.
void Generator::reset() {
    chunk_ = 0, hooked_ = -1;
    cache_.restart();
}

Status Generator::next_chunk(NoiseSource & noise, const Tensor & out_host, ChunkStats * stats, bool commit) {
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    Backend &     be     = dit_.backend();
    const int64_t frame0 = chunk_ * cfg_.chunk_frames;
    const auto    t_all  = clock::now();
    if (stats) *stats = ChunkStats{chunk_, {}, 0, 0};

    const ModelConfig & mc = dit_.config();
    if (mc.conditioning == Conditioning::audio) {
        if (!audio_windows_.defined()) {
            AVS_ASSIGN_OR_RETURN(audio_windows_, Tensor::zeros(DType::f32, Shape{cfg_.chunk_frames, mc.audio_window, mc.audio_mels}));
            for (int64_t i = 0; i < audio_windows_.numel(); ++i) audio_windows_.data<float>()[i] = std::log(1e-10f);  // silence
        }
        if (audio_) AVS_TRY(audio_(frame0, cfg_.chunk_frames, audio_windows_).with_context("audio for chunk " + std::to_string(chunk_)));
        AVS_TRY(dit_.set_audio(audio_windows_));
    }
    AVS_ASSIGN_OR_RETURN(ev_begin_, be.record_event());
    AVS_TRY(noise.fill(chunk_, 0, host_noise_));
    AVS_TRY(be.upload(x_, host_noise_));
    const bool step_mode = cfg_.cache.mode == CacheMode::step;
    for (int s = 0; s < cfg_.steps; ++s) {
        const auto   t0    = clock::now();
        const double sigma = t_[size_t(s)] / 1000.0;
        // commit mode writes the chunk's K/V once, in the commit pass (or at the last step without one)
        const bool write = step_mode || (!commit && s + 1 == cfg_.steps);
        AVS_TRY(dit_.forward_chunk(x_, std::vector<double>(size_t(cfg_.chunk_frames), t_[size_t(s)]), cache_,
                                   step_mode ? s : 0, frame0, v_, nullptr, write));
        AVS_TRY(be.axpby(x0_, 1.0f, x_, float(-sigma), v_));  // x0 = x − σ·v
        if (s + 1 < cfg_.steps) {
            const double sn = t_[size_t(s + 1)] / 1000.0;     // re-noise with fresh ε to the next σ
            AVS_TRY(noise.fill(chunk_, s + 1, host_noise_));
            AVS_TRY(be.upload(eps_, host_noise_));
            AVS_TRY(be.axpby(x_, float(1.0 - sn), x0_, float(sn), eps_));
        }
        AVS_TRY(be.synchronize());
        if (stats) stats->step_ms.push_back(ms(t0, clock::now()));
    }
    // once per chunk: a call retried after a failed commit pass must not decode the chunk twice
    if (hook_ && hooked_ != chunk_) {
        AVS_TRY(hook_(x0_));
        hooked_ = chunk_;
    }
    if (!step_mode && commit) {
        const auto t0 = clock::now();
        // Clean pass at t = 0: overwrites the chunk's noisy K/V with those of x0.
        AVS_TRY(dit_.forward_chunk(x0_, std::vector<double>(size_t(cfg_.chunk_frames), 0.0), cache_, 0, frame0, v_));
        AVS_TRY(be.synchronize());
        if (stats) stats->commit_ms = ms(t0, clock::now());
    }
    AVS_ASSIGN_OR_RETURN(ev_end_, be.record_event());
    if (out_host.defined()) AVS_TRY(be.download(out_host, x0_));
    ++chunk_;
    if (stats) stats->total_ms = ms(t_all, clock::now());
    return {};
}

} // namespace avs
