#include "engine/model/weights.h"

#include "engine/backend/backend.h"
#include "engine/io/safetensors.h"
#include "engine/model/name_map.h"
#include "engine/runtime/rng.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace avs {

std::vector<WeightSlot> weight_slots(DitWeights & w, const ModelConfig & c) {
    const int64_t D = c.dim, F = c.ffn_dim, P = c.patch_volume();
    std::vector<WeightSlot> s;
    auto lin = [&](const std::string & name, Linear & l, int64_t out, int64_t in) {
        s.push_back({name + ".weight", Shape{out, in}, Shape{out, in}, &l.weight});
        s.push_back({name + ".bias", Shape{out}, Shape{out}, &l.bias});
    };
    auto vec = [&](const std::string & name, Tensor & t, int64_t n) { s.push_back({name, Shape{n}, Shape{n}, &t}); };

    s.push_back({"patch_embedding.weight",
                 Shape{D, c.in_channels, c.patch_size[0], c.patch_size[1], c.patch_size[2]},
                 Shape{D, c.in_channels * P}, &w.patch_embedding.weight});
    vec("patch_embedding.bias", w.patch_embedding.bias, D);
    if (c.conditioning == Conditioning::audio) {
        lin("audio_embedding.0", w.audio_embedding_0, D, c.audio_token_features());
        lin("audio_embedding.2", w.audio_embedding_2, D, D);
        s.push_back({"audio_embedding.pos", Shape{c.audio_tokens, D}, Shape{c.audio_tokens * D}, &w.audio_embedding_pos});
    } else {
        lin("text_embedding.0", w.text_embedding_0, D, c.text_dim);
        lin("text_embedding.2", w.text_embedding_2, D, D);
    }
    lin("time_embedding.0", w.time_embedding_0, D, c.freq_dim);
    lin("time_embedding.2", w.time_embedding_2, D, D);
    lin("time_projection.1", w.time_projection_1, 6 * D, D);
    w.blocks.resize(size_t(c.layers));
    for (int i = 0; i < c.layers; ++i) {
        BlockWeights &    b = w.blocks[size_t(i)];
        const std::string p = "blocks." + std::to_string(i) + ".";
        s.push_back({p + "modulation", Shape{1, 6, D}, Shape{6 * D}, &b.modulation});
        for (auto [an, a] : {std::pair<const char *, AttnWeights *>{"self_attn", &b.self_attn}, {"cross_attn", &b.cross_attn}}) {
            const std::string q = p + an + ".";
            lin(q + "q", a->q, D, D);
            lin(q + "k", a->k, D, D);
            lin(q + "v", a->v, D, D);
            lin(q + "o", a->o, D, D);
            vec(q + "norm_q.weight", a->norm_q, D);
            vec(q + "norm_k.weight", a->norm_k, D);
        }
        vec(p + "norm3.weight", b.norm3_weight, D);
        vec(p + "norm3.bias", b.norm3_bias, D);
        lin(p + "ffn.0", b.ffn_0, F, D);
        lin(p + "ffn.2", b.ffn_2, D, F);
    }
    s.push_back({"head.modulation", Shape{1, 2, D}, Shape{2 * D}, &w.head_modulation});
    lin("head.head", w.head_head, c.out_channels * P, D);
    return s;
}

namespace {

// Matrices take the backend's compute dtype; vectors (biases, norms, modulation) stay fp32, and so
// does the time embedding MLP, which the official pipeline runs in fp32 (it feeds every modulation).
DType slot_dtype(const Backend & be, const WeightSlot & s) {
    const bool time_mlp = s.name.rfind("time_embedding.", 0) == 0 || s.name.rfind("time_projection.", 0) == 0;
    return s.shape.ndim >= 2 && !time_mlp ? be.weight_dtype() : DType::f32;
}

std::string join_first(const std::vector<std::string> & v, size_t n) {
    std::string r;
    for (size_t i = 0; i < v.size() && i < n; ++i) r += (i ? ", " : "") + v[i];
    if (v.size() > n) r += ", ... (" + std::to_string(v.size()) + " in all)";
    return r;
}

} // namespace

Status load_weights(Backend & backend, const ModelConfig & c, const Checkpoint & ckpt, DitWeights & w) {
    std::vector<std::string> keys;
    for (auto & t : ckpt.tensors()) keys.push_back(t.name);
    const NameMap map = detect_name_map(keys);

    auto slots = weight_slots(w, c);
    std::map<std::string, WeightSlot *> by_name;
    for (auto & s : slots) by_name[s.name] = &s;

    std::vector<std::string> unexpected;
    std::set<std::string>    seen;
    for (const TensorInfo & info : ckpt.tensors()) {
        const std::string name = map.canonical(info.name);
        auto it = by_name.find(name);
        if (it == by_name.end()) {
            unexpected.push_back(info.name);
            continue;
        }
        WeightSlot & s = *it->second;
        if (info.shape != s.checkpoint_shape)
            return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected %s for config '%s'", ckpt.path().c_str(),
                              info.name.c_str(), info.shape.str().c_str(), s.checkpoint_shape.str().c_str(), c.name.c_str());
        if (info.dtype != DType::f32 && info.dtype != DType::bf16 && info.dtype != DType::f16)
            return make_error(ErrorCode::format, "%s: tensor '%s' is %s, expected F32, BF16 or F16", ckpt.path().c_str(),
                              info.name.c_str(), dtype_name(info.dtype));
        if (!seen.insert(name).second)
            return make_error(ErrorCode::format, "%s: tensor '%s' appears twice (under two names)", ckpt.path().c_str(), name.c_str());
        // A non-owning view over the mapping: the backend converts straight from the file's bytes.
        // Writers need not align tensor data; typed reads need it, so misaligned data is copied.
        Tensor src;
        if (reinterpret_cast<uintptr_t>(info.data) % uint64_t(dtype_bits(info.dtype) / 8) == 0) {
            auto view_buf = std::make_shared<Buffer>(const_cast<uint8_t *>(info.data), info.end - info.begin, Device::cpu, nullptr);
            src = Tensor(view_buf, 0, info.dtype, s.shape);
        } else {
            AVS_ASSIGN_OR_RETURN(src, read_tensor(info, info.dtype));
            src = src.reshape(s.shape);
        }
        AVS_ASSIGN_OR_RETURN(*s.dst, backend.alloc(slot_dtype(backend, s), s.shape));
        AVS_TRY(backend.upload(*s.dst, src).with_context(ckpt.path() + ": tensor '" + info.name + "'"));
    }
    if (!unexpected.empty())
        return make_error(ErrorCode::format, "%s: unexpected tensor(s) for a %s-conditioned Wan2.1 DiT: %s", ckpt.path().c_str(),
                          conditioning_name(c.conditioning), join_first(unexpected, 5).c_str());
    std::vector<std::string> missing;
    for (auto & s : slots)
        if (!seen.count(s.name)) missing.push_back(s.name + " " + s.checkpoint_shape.str());
    if (!missing.empty())
        return make_error(ErrorCode::missing, "%s: missing tensor(s): %s", ckpt.path().c_str(), join_first(missing, 5).c_str());
    return {};
}

Status random_weights(Backend & backend, const ModelConfig & c, uint64_t seed, DitWeights & w) {
    auto     slots = weight_slots(w, c);
    uint64_t idx   = 0;
    int64_t  most  = 0;
    for (auto & s : slots) most = std::max(most, s.shape.numel());
    // One staging buffer for all tensors: no per-tensor host allocation churn (1.3B: 825 tensors).
    AVS_ASSIGN_OR_RETURN(Tensor staging, Tensor::zeros(DType::f32, Shape{most}));
    for (auto & s : slots) {
        ++idx;
        const Tensor  host = staging.slice(0, 0, s.shape.numel()).reshape(s.shape);
        float *       p    = host.data<float>();
        const int64_t n    = host.numel();
        const bool is_norm = s.name.find("norm") != std::string::npos && s.name.find(".weight") != std::string::npos;
        if (is_norm) {
            for (int64_t i = 0; i < n; ++i) p[i] = 1.0f;
        } else if (s.shape.ndim >= 2) {
            // N(0, 1/fan_in): unit-variance activations through every linear layer
            fill_normal(p, n, rng_stream(seed, idx), float(1.0 / std::sqrt(double(s.shape[1]))));
        } else {
            // biases and modulation: small, non-zero so that every parameter matters
            fill_normal(p, n, rng_stream(seed, idx), 0.02f);
        }
        AVS_ASSIGN_OR_RETURN(*s.dst, backend.alloc(slot_dtype(backend, s), s.shape));
        AVS_TRY(backend.upload(*s.dst, host));
    }
    return {};
}

Result<ModelConfig> infer_config(const Checkpoint & ckpt) {
    std::vector<std::string> keys;
    for (auto & t : ckpt.tensors()) keys.push_back(t.name);
    const NameMap map = detect_name_map(keys);
    std::map<std::string, Shape> shapes;
    for (auto & t : ckpt.tensors()) shapes[map.canonical(t.name)] = t.shape;
    auto get = [&](const std::string & n, int ndim) -> Result<Shape> {
        auto it = shapes.find(n);
        if (it == shapes.end())
            return make_error(ErrorCode::missing, "%s: cannot infer the model config: tensor '%s' is missing", ckpt.path().c_str(), n.c_str());
        if (it->second.ndim != ndim)
            return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected %d dims", ckpt.path().c_str(), n.c_str(),
                              it->second.str().c_str(), ndim);
        return it->second;
    };
    // audio-conditioned models (the embedded avatar) carry windows, tokens and bands no shape tells
    for (auto & [n, sh] : shapes)
        if (n.rfind("audio_embedding.", 0) == 0)
            return make_error(ErrorCode::invalid_argument,
                              "%s: an audio-conditioned model (tensor '%s'): its config cannot be inferred from shapes: give one (--config, "
                              "a config.json beside the file, or avs.config in its metadata)",
                              ckpt.path().c_str(), n.c_str());
    ModelConfig c;
    c.name = ckpt.path();
    AVS_ASSIGN_OR_RETURN(Shape pe, get("patch_embedding.weight", 5));
    AVS_ASSIGN_OR_RETURN(Shape te, get("text_embedding.0.weight", 2));
    AVS_ASSIGN_OR_RETURN(Shape tm, get("time_embedding.0.weight", 2));
    AVS_ASSIGN_OR_RETURN(Shape ff, get("blocks.0.ffn.0.weight", 2));
    AVS_ASSIGN_OR_RETURN(Shape hd, get("head.head.weight", 2));
    c.dim         = int(pe[0]);
    c.in_channels = int(pe[1]);
    c.patch_size  = {int(pe[2]), int(pe[3]), int(pe[4])};
    c.text_dim    = int(te[1]);
    c.freq_dim    = int(tm[1]);
    c.ffn_dim     = int(ff[0]);
    c.out_channels = int(hd[0]) / std::max(1, c.patch_volume());
    // No tensor carries the head count; every Wan2.1 model uses head_dim 128.
    if (c.dim % 128 != 0)
        return make_error(ErrorCode::invalid_argument,
                          "%s: cannot infer the head count of a dim-%d model (not a multiple of 128): give a config (--config)",
                          ckpt.path().c_str(), c.dim);
    c.heads = c.dim / 128;
    int layers = 0;
    while (shapes.count("blocks." + std::to_string(layers) + ".modulation")) ++layers;
    c.layers = layers;
    AVS_TRY(c.validate());
    return c;
}

} // namespace avs
