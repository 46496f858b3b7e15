#include "engine/model/dit.h"

#include "engine/core/log.h"
#include "engine/io/safetensors.h"

#include <cmath>
#include <filesystem>

namespace avs {

namespace fs = std::filesystem;

Result<std::unique_ptr<Dit>> Dit::load(Backend & backend, const std::string & path, const ModelConfig * config) {
    AVS_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::open(path));
    ModelConfig cfg;
    if (config) {
        cfg = *config;
    } else if (auto it = ckpt->metadata().find("avs.config"); it != ckpt->metadata().end()) {
        // our own exports (tools/train, tools/reference) carry their config in the file
        AVS_ASSIGN_OR_RETURN(cfg, config_from_json(it->second, path + " (__metadata__ avs.config)"));
    } else if (fs::exists(fs::path(ckpt->dir()) / "config.json")) {
        AVS_ASSIGN_OR_RETURN(cfg, config_from_file((fs::path(ckpt->dir()) / "config.json").string()));
    } else {
        AVS_ASSIGN_OR_RETURN(cfg, infer_config(*ckpt));
        AVS_LOG_INFO("%s: no config given; inferred dim %d, %d layers, %d heads, ffn %d from tensor shapes", path.c_str(),
                     cfg.dim, cfg.layers, cfg.heads, cfg.ffn_dim);
    }
    AVS_TRY(cfg.validate().with_context(path));  // a caller's config too: its numbers size everything below
    std::unique_ptr<Dit> dit(new Dit(backend, cfg));
    const uint64_t before = backend.bytes_in_use();
    AVS_TRY(load_weights(backend, cfg, *ckpt, dit->w_));
    dit->weight_bytes_ = backend.bytes_in_use() - before;
    AVS_TRY(dit->conditioning_init());
    return dit;
}

Result<std::unique_ptr<Dit>> Dit::random_init(Backend & backend, const ModelConfig & config, uint64_t seed) {
    AVS_TRY(config.validate());
    std::unique_ptr<Dit> dit(new Dit(backend, config));
    const uint64_t before = backend.bytes_in_use();
    AVS_TRY(random_weights(backend, config, seed, dit->w_));
    dit->weight_bytes_ = backend.bytes_in_use() - before;
    AVS_TRY(dit->conditioning_init());
    return dit;
}

Status Dit::conditioning_init() { return cfg_.conditioning == Conditioning::audio ? init_audio() : set_zero_context(); }

Status Dit::init_audio() {
    host_ = make_cpu_backend();
    auto to_host = [&](const Tensor & dev, Tensor & h) -> Status {
        AVS_ASSIGN_OR_RETURN(h, Tensor::zeros(DType::f32, dev.shape()));
        return be_.download(h, dev);
    };
    AVS_TRY(to_host(w_.audio_embedding_0.weight, audio0_host_.weight));
    AVS_TRY(to_host(w_.audio_embedding_0.bias, audio0_host_.bias));
    AVS_TRY(to_host(w_.audio_embedding_2.weight, audio2_host_.weight));
    AVS_TRY(to_host(w_.audio_embedding_2.bias, audio2_host_.bias));
    AVS_TRY(to_host(w_.audio_embedding_pos, audio_pos_host_));
    // silence until the first set_audio
    const Tensor silence = Tensor::host(DType::f32, Shape{1, cfg_.audio_window, cfg_.audio_mels});
    for (int64_t i = 0; i < silence.numel(); ++i) silence.data<float>()[i] = std::log(1e-10f);
    return set_audio(silence);
}

Status Dit::set_audio(const Tensor & windows) {
    const ModelConfig & c = cfg_;
    if (c.conditioning != Conditioning::audio)
        return make_error(ErrorCode::invalid_argument, "model '%s' is %s-conditioned: it takes no audio", c.name.c_str(),
                          conditioning_name(c.conditioning));
    if (windows.dtype() != DType::f32 || windows.device() != Device::cpu)
        return make_error(ErrorCode::invalid_argument, "audio windows are %s on the %s, expected host f32 log-mel frames", dtype_name(windows.dtype()),
                          windows.device() == Device::cpu ? "host" : "device");
    if (windows.ndim() != 3 || windows.dim(1) != c.audio_window || windows.dim(2) != c.audio_mels || windows.dim(0) < 1)
        return make_error(ErrorCode::shape, "audio windows have shape %s, expected [frames, %d, %d] (log-mel frames x bands)",
                          windows.shape().str().c_str(), c.audio_window, c.audio_mels);
    const int64_t F = windows.dim(0), A = c.audio_tokens, D = c.dim, G = c.audio_token_features();
    if (audio_frames_ != F) {  // buffers for F frames, reused chunk after chunk
        const DType act = be_.act_dtype();
        AVS_ASSIGN_OR_RETURN(audio_x_, Tensor::zeros(DType::f32, Shape{F * A, G}));
        AVS_ASSIGN_OR_RETURN(audio_t1_, Tensor::zeros(DType::f32, Shape{F * A, D}));
        AVS_ASSIGN_OR_RETURN(audio_host_, Tensor::zeros(DType::f32, Shape{F * A, D}));
        AVS_ASSIGN_OR_RETURN(audio_tok_, be_.alloc(act, Shape{F * A, D}));
        AVS_ASSIGN_OR_RETURN(audio_k_, be_.alloc(act, Shape{F * A, D}));
        AVS_ASSIGN_OR_RETURN(audio_v_, be_.alloc(act, Shape{F * A, D}));
        audio_frames_ = F;
    }
    // [F, window, mels] is [F * A, (window / A) * mels] in memory: token a of frame f is mel frames [a*w/A, (a+1)*w/A)
    for (int64_t i = 0; i < audio_x_.numel(); ++i) audio_x_.data<float>()[i] = (windows.data<float>()[i] + 5.0f) / 5.0f;
    AVS_TRY(host_->linear(audio_t1_, audio_x_, audio0_host_.weight, &audio0_host_.bias));     // [F*A, D]
    AVS_TRY(host_->gelu_tanh(audio_t1_, audio_t1_));
    AVS_TRY(host_->linear(audio_host_, audio_t1_, audio2_host_.weight, &audio2_host_.bias));  // [F*A, D]
    const Tensor per_frame = audio_host_.reshape(Shape{F, A * D});
    AVS_TRY(host_->add_row(per_frame, per_frame, audio_pos_host_));                            // + pos[a]
    return be_.upload(audio_tok_, audio_host_);
}

Status Dit::set_zero_context() {
    if (cfg_.conditioning != Conditioning::text) return {};  // nothing to clear
    AVS_ASSIGN_OR_RETURN(Tensor ctx, Tensor::zeros(DType::f32, Shape{0, cfg_.text_dim}));
    return set_context(ctx);
}

Status Dit::set_context(const Tensor & context_host) {
    if (cfg_.conditioning != Conditioning::text)
        return make_error(ErrorCode::invalid_argument, "model '%s' is %s-conditioned: it takes no text context", cfg_.name.c_str(),
                          conditioning_name(cfg_.conditioning));
    const int64_t Lt = cfg_.text_len, D = cfg_.dim, H = cfg_.heads, Dh = cfg_.head_dim();
    if (context_host.ndim() != 2 || context_host.dim(1) != cfg_.text_dim || context_host.dim(0) > Lt)
        return make_error(ErrorCode::shape, "text context has shape %s, expected [L <= %d, %d]", context_host.shape().str().c_str(),
                          cfg_.text_len, cfg_.text_dim);
    // Zero-pad to text_len rows BEFORE the text MLP: padded rows become text_embedding(0) and are
    // attended like real tokens (no mask), exactly as the official pipeline.
    AVS_ASSIGN_OR_RETURN(Tensor padded, Tensor::zeros(DType::f32, Shape{Lt, cfg_.text_dim}));
    AVS_TRY(convert_to_f32(context_host.raw(), context_host.dtype(), padded.data<float>(), uint64_t(context_host.numel())));

    const DType act = be_.act_dtype();
    AVS_ASSIGN_OR_RETURN(Tensor ctx, be_.alloc(act, Shape{Lt, cfg_.text_dim}));
    AVS_ASSIGN_OR_RETURN(Tensor t1, be_.alloc(act, Shape{Lt, D}));
    AVS_ASSIGN_OR_RETURN(text_emb_, be_.alloc(act, Shape{Lt, D}));
    AVS_TRY(be_.upload(ctx, padded));
    AVS_TRY(be_.linear(t1, ctx, w_.text_embedding_0.weight, &w_.text_embedding_0.bias));      // [Lt, D]
    AVS_TRY(be_.gelu_tanh(t1, t1));
    AVS_TRY(be_.linear(text_emb_, t1, w_.text_embedding_2.weight, &w_.text_embedding_2.bias)); // [Lt, D]

    cross_k_.resize(size_t(cfg_.layers));
    cross_v_.resize(size_t(cfg_.layers));
    for (int l = 0; l < cfg_.layers; ++l) {
        const AttnWeights & ca = w_.blocks[size_t(l)].cross_attn;
        AVS_ASSIGN_OR_RETURN(cross_k_[size_t(l)], be_.alloc(act, Shape{Lt, H, Dh}));
        AVS_ASSIGN_OR_RETURN(cross_v_[size_t(l)], be_.alloc(act, Shape{Lt, H, Dh}));
        AVS_TRY(be_.linear(t1, text_emb_, ca.k.weight, &ca.k.bias));                           // [Lt, D]
        AVS_TRY(be_.rms_norm(cross_k_[size_t(l)], t1, ca.norm_k, float(cfg_.eps)));           // [Lt, H, Dh]
        AVS_TRY(be_.linear(cross_v_[size_t(l)], text_emb_, ca.v.weight, &ca.v.bias));         // [Lt, H, Dh]
    }
    return {};
}

Status Dit::ensure_scratch(int64_t L, int64_t F) {
    if (L <= s_.tokens && F <= s_.frames) return {};
    const int64_t D = cfg_.dim, P = int64_t(cfg_.in_channels) * cfg_.patch_volume();
    const int64_t Pout = int64_t(cfg_.out_channels) * cfg_.patch_volume();
    s_ = Scratch{};
    s_.tokens = L;
    s_.frames = F;
    auto tok = [&](Tensor & t, int64_t cols, DType dt) -> Status {
        AVS_ASSIGN_OR_RETURN(t, be_.alloc(dt, Shape{L, cols}));
        return {};
    };
    const DType act = be_.act_dtype(), f32 = DType::f32;
    auto frm = [&](Tensor & t, int64_t cols) -> Status {
        AVS_ASSIGN_OR_RETURN(t, be_.alloc(DType::f32, Shape{F, cols}));
        return {};
    };
    // GEMM inputs and attention operands in the activation dtype; GEMM outputs that feed the fp32
    // residual stream (o) or the fp32 output (u) stay fp32, as does the residual h itself.
    AVS_TRY(tok(s_.patches, P, act));
    AVS_TRY(tok(s_.h, D, f32));
    AVS_TRY(tok(s_.n, D, act));
    AVS_TRY(tok(s_.q, D, act));
    AVS_TRY(tok(s_.k, D, act));
    AVS_TRY(tok(s_.v, D, act));
    AVS_TRY(tok(s_.a, D, act));
    AVS_TRY(tok(s_.o, D, f32));
    AVS_TRY(tok(s_.f1, cfg_.ffn_dim, act));
    AVS_TRY(tok(s_.u, Pout, f32));
    AVS_TRY(frm(s_.sin, cfg_.freq_dim));
    AVS_TRY(frm(s_.e1, D));
    AVS_TRY(frm(s_.e, D));
    AVS_TRY(frm(s_.es, D));
    AVS_TRY(frm(s_.e0, 6 * D));
    AVS_TRY(frm(s_.mod, 6 * D));
    AVS_TRY(frm(s_.hshift, D));
    AVS_TRY(frm(s_.hscale, D));
    return {};
}

Status Dit::forward_chunk(const Tensor & x, const std::vector<double> & t, KvCache & cache, int cache_index, int64_t frame0,
                          const Tensor & out, DitTaps * taps, bool write_kv) {
    if (cache_index < 0 || cache_index >= cache.caches())
        return make_error(ErrorCode::invalid_argument, "cache index %d out of range (the cache holds %d)", cache_index, cache.caches());
    SelfAttnPlan plan;
    plan.cache       = &cache;
    plan.cache_index = cache_index;
    plan.frame0      = frame0;
    plan.write_kv    = write_kv;
    AVS_TRY(cache.begin_pass(cache_index, frame0 + x.dim(1), int(x.dim(1))));
    return forward_impl(x, t, plan, out, taps);
}

Status Dit::forward_full(const Tensor & x, const std::vector<double> & t, int chunk_frames, const Tensor & out) {
    SelfAttnPlan plan;
    plan.chunk_frames = chunk_frames;
    return forward_impl(x, t, plan, out, nullptr);
}

Status Dit::self_attention(int layer, const Tensor & q, const Tensor & k, const Tensor & v, const Tensor & out,
                           const SelfAttnPlan & plan, int frames, const RopeLayout & rope) {
    const float scale = float(1.0 / std::sqrt(double(cfg_.head_dim())));
    std::vector<int64_t> qpos(static_cast<size_t>(frames));
    if (plan.cache) {
        // Keys go into the ring rotated by their spatial RoPE only (a token's row and column never
        // change); attention rotates the temporal pairs by the frame's read-time position. Rotating
        // with temporal position 0 is exactly the spatial part: angle 0 gives cos 1, sin 0.
        KvCache &      cache = *plan.cache;
        const RingView ring  = cache.view(plan.frame0 + frames);
        for (int f = 0; f < frames; ++f) qpos[size_t(f)] = 0;
        AVS_TRY(be_.rope(k, rope, qpos));
        for (int f = 0; f < frames; ++f) qpos[size_t(f)] = ring.rope_pos_of_frame(plan.frame0 + f);
        AVS_TRY(be_.rope(q, rope, qpos));
        AVS_ASSIGN_OR_RETURN(Tensor store, cache.acquire(plan.cache_index, layer));
        // The chunk is quantized into its slots only when it is committed; attention reads the
        // chunk itself from k and v (bf16 activations) in every pass.
        if (plan.write_kv) AVS_TRY(be_.kv_write(store, cache.layout(), ring, plan.frame0, k, v));
        AVS_TRY(be_.attention_ring(out, q, store, cache.layout(), ring, k, v, rope, scale));
        if (attn_tap_) AVS_TRY(attn_tap_(layer, out));
        return cache.release(plan.cache_index, layer, plan.frame0, plan.write_kv ? frames : 0);
    }
    for (int f = 0; f < frames; ++f) qpos[size_t(f)] = f;
    AVS_TRY(be_.rope(q, rope, qpos));
    AVS_TRY(be_.rope(k, rope, qpos));
    const int64_t block = int64_t(plan.chunk_frames) * rope.tokens_per_frame();
    return be_.attention(out, q, k, v, scale, block, block);
}

Status Dit::forward_impl(const Tensor & x, const std::vector<double> & t, const SelfAttnPlan & plan, const Tensor & out,
                         DitTaps * taps) {
    const ModelConfig & c = cfg_;
    if (x.ndim() != 4 || x.dim(0) != c.in_channels || x.dim(2) % c.patch_size[1] || x.dim(3) % c.patch_size[2])
        return make_error(ErrorCode::shape, "DiT input %s: expected [%d, F, h, w] with h, w divisible by the patch size",
                          x.shape().str().c_str(), c.in_channels);
    const int64_t F = x.dim(1), gh = x.dim(2) / c.patch_size[1], gw = x.dim(3) / c.patch_size[2];
    const int64_t tpf = gh * gw, L = F * tpf, D = c.dim, H = c.heads, Dh = c.head_dim();
    if (int64_t(t.size()) != F) return make_error(ErrorCode::shape, "DiT: %zu timesteps for %lld frames", t.size(), (long long) F);
    if (out.ndim() != 4 || out.dim(0) != c.out_channels || out.dim(1) != F || out.dim(2) != x.dim(2) || out.dim(3) != x.dim(3))
        return make_error(ErrorCode::shape, "DiT output %s does not match input %s", out.shape().str().c_str(), x.shape().str().c_str());
    if (plan.cache && plan.cache->view(0).tokens_per_frame != tpf)
        return make_error(ErrorCode::shape, "KV cache holds %d tokens per frame, the chunk has %lld", plan.cache->view(0).tokens_per_frame,
                          (long long) tpf);
    AVS_TRY(ensure_scratch(L, F));
    if (c.conditioning == Conditioning::audio && audio_frames_ != F)
        return make_error(ErrorCode::shape, "audio conditioning was set for %lld frames, the forward has %lld (call set_audio first)",
                          (long long) audio_frames_, (long long) F);
    const float      eps  = float(c.eps);
    const RopeLayout rope = make_rope_layout(int(Dh), int(gh), int(gw));
    auto tk  = [&](const Tensor & s) { return s.slice(0, 0, L); };                   // [L, cols]
    auto thd = [&](const Tensor & s) { return s.slice(0, 0, L).reshape(Shape{L, H, Dh}); };  // [L, H, Dh]
    auto fr  = [&](const Tensor & s) { return s.slice(0, 0, F); };                   // [F, cols]

    // Patch embedding: Conv3d(1,2,2) as patchify + GEMM.
    const Tensor h = tk(s_.h);
    AVS_TRY(be_.patchify(tk(s_.patches), x, c.patch_size[1], c.patch_size[2]));               // [L, C*4]
    AVS_TRY(be_.linear(h, tk(s_.patches), w_.patch_embedding.weight, &w_.patch_embedding.bias)); // [L, D]

    // Per-frame time embedding: e [F, D] feeds the head; e0 [F, 6, D] feeds every block.
    AVS_TRY(be_.timestep_embedding(fr(s_.sin), t));                                            // [F, freq]
    AVS_TRY(be_.linear(fr(s_.e1), fr(s_.sin), w_.time_embedding_0.weight, &w_.time_embedding_0.bias));  // [F, D]
    AVS_TRY(be_.silu(fr(s_.e1), fr(s_.e1)));
    AVS_TRY(be_.linear(fr(s_.e), fr(s_.e1), w_.time_embedding_2.weight, &w_.time_embedding_2.bias));    // [F, D]
    AVS_TRY(be_.silu(fr(s_.es), fr(s_.e)));
    AVS_TRY(be_.linear(fr(s_.e0), fr(s_.es), w_.time_projection_1.weight, &w_.time_projection_1.bias)); // [F, 6D]
    if (taps) {
        taps->e  = Tensor::host(DType::f32, Shape{F, D});
        taps->e0 = Tensor::host(DType::f32, Shape{F, 6, D});
        taps->tokens_in = Tensor::host(DType::f32, Shape{L, D});
        AVS_TRY(be_.download(taps->e, fr(s_.e)));
        AVS_TRY(be_.download(taps->e0, fr(s_.e0)));
        AVS_TRY(be_.download(taps->tokens_in, h));
    }

    const Tensor mod3 = fr(s_.mod).reshape(Shape{F, 6, D});
    auto chunk = [&](int i) { return mod3.select(1, i); };  // [F, D], row stride 6D
    const Tensor n = tk(s_.n), o = tk(s_.o), f1 = tk(s_.f1);
    for (int l = 0; l < c.layers; ++l) {
        const BlockWeights & b = w_.blocks[size_t(l)];
        AVS_TRY(be_.add_row(fr(s_.mod), fr(s_.e0), b.modulation));                               // [F, 6D]

        // Self-attention on the modulated LN1 output; gated residual.
        AVS_TRY(be_.layer_norm_modulate(n, h, chunk(0), chunk(1), tpf, eps));                   // [L, D]
        AVS_TRY(be_.linear(tk(s_.q), n, b.self_attn.q.weight, &b.self_attn.q.bias));            // [L, D]
        AVS_TRY(be_.rms_norm(tk(s_.q), tk(s_.q), b.self_attn.norm_q, eps));
        AVS_TRY(be_.linear(tk(s_.k), n, b.self_attn.k.weight, &b.self_attn.k.bias));            // [L, D]
        AVS_TRY(be_.rms_norm(tk(s_.k), tk(s_.k), b.self_attn.norm_k, eps));
        AVS_TRY(be_.linear(tk(s_.v), n, b.self_attn.v.weight, &b.self_attn.v.bias));            // [L, D]
        AVS_TRY(self_attention(l, thd(s_.q), thd(s_.k), thd(s_.v), thd(s_.a), plan, int(F), rope));  // [L, H, Dh]
        AVS_TRY(be_.linear(o, tk(s_.a), b.self_attn.o.weight, &b.self_attn.o.bias));            // [L, D]
        AVS_TRY(be_.gated_residual(h, o, chunk(2), tpf));

        // Cross-attention on LN3 (affine), no modulation and no gate.
        AVS_TRY(be_.layer_norm_affine(n, h, b.norm3_weight, b.norm3_bias, eps));                // [L, D]
        AVS_TRY(be_.linear(tk(s_.q), n, b.cross_attn.q.weight, &b.cross_attn.q.bias));          // [L, D]
        AVS_TRY(be_.rms_norm(tk(s_.q), tk(s_.q), b.cross_attn.norm_q, eps));
        const float cscale = float(1.0 / std::sqrt(double(Dh)));
        if (c.conditioning == Conditioning::audio) {
            // each frame's queries see only that frame's audio tokens
            const int64_t A = c.audio_tokens;
            AVS_TRY(be_.linear(audio_k_, audio_tok_, b.cross_attn.k.weight, &b.cross_attn.k.bias));   // [F*A, D]
            AVS_TRY(be_.rms_norm(audio_k_, audio_k_, b.cross_attn.norm_k, eps));
            AVS_TRY(be_.linear(audio_v_, audio_tok_, b.cross_attn.v.weight, &b.cross_attn.v.bias));   // [F*A, D]
            const Tensor ak = audio_k_.reshape(Shape{F * A, H, Dh}), av = audio_v_.reshape(Shape{F * A, H, Dh});
            for (int64_t f = 0; f < F; ++f)
                AVS_TRY(be_.attention(thd(s_.a).slice(0, f * tpf, (f + 1) * tpf), thd(s_.q).slice(0, f * tpf, (f + 1) * tpf),
                                      ak.slice(0, f * A, (f + 1) * A), av.slice(0, f * A, (f + 1) * A), cscale));  // [tpf, H, Dh]
        } else {
            AVS_TRY(be_.attention(thd(s_.a), thd(s_.q), cross_k_[size_t(l)], cross_v_[size_t(l)], cscale));  // [L, H, Dh]
        }
        AVS_TRY(be_.linear(o, tk(s_.a), b.cross_attn.o.weight, &b.cross_attn.o.bias));          // [L, D]
        AVS_TRY(be_.add(h, o));

        // FFN on the modulated LN2 output; gated residual.
        AVS_TRY(be_.layer_norm_modulate(n, h, chunk(3), chunk(4), tpf, eps));                   // [L, D]
        AVS_TRY(be_.linear(f1, n, b.ffn_0.weight, &b.ffn_0.bias));                              // [L, ffn]
        AVS_TRY(be_.gelu_tanh(f1, f1));
        AVS_TRY(be_.linear(o, f1, b.ffn_2.weight, &b.ffn_2.bias));                              // [L, D]
        AVS_TRY(be_.gated_residual(h, o, chunk(5), tpf));

        if (taps && l == 0) {
            taps->block0_out = Tensor::host(DType::f32, Shape{L, D});
            AVS_TRY(be_.download(taps->block0_out, h));
        }
    }

    // Head: modulated by e (not e0): shift = head.modulation[0] + e, scale = head.modulation[1] + e.
    AVS_TRY(be_.add_row(fr(s_.hshift), fr(s_.e), w_.head_modulation.slice(0, 0, D)));            // [F, D]
    AVS_TRY(be_.add_row(fr(s_.hscale), fr(s_.e), w_.head_modulation.slice(0, D, 2 * D)));        // [F, D]
    AVS_TRY(be_.layer_norm_modulate(n, h, fr(s_.hshift), fr(s_.hscale), tpf, eps));            // [L, D]
    AVS_TRY(be_.linear(tk(s_.u), n, w_.head_head.weight, &w_.head_head.bias));                  // [L, 4*C_out]
    return be_.unpatchify(out, tk(s_.u), c.patch_size[1], c.patch_size[2]);                     // [C_out, F, h, w]
}

} // namespace avs
