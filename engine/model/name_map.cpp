#include "engine/model/name_map.h"

#include <array>
#include <cctype>
#include <utility>

namespace avs {
namespace {

bool starts_with(const std::string & s, const std::string & p) { return s.compare(0, p.size(), p) == 0; }

// (diffusers, official) pairs for non-block tensors; matched on the module path (without .weight/.bias).
constexpr std::array<std::pair<const char *, const char *>, 7> kTopLevel = {{
    {"condition_embedder.time_embedder.linear_1", "time_embedding.0"},
    {"condition_embedder.time_embedder.linear_2", "time_embedding.2"},
    {"condition_embedder.time_proj", "time_projection.1"},
    {"condition_embedder.text_embedder.linear_1", "text_embedding.0"},
    {"condition_embedder.text_embedder.linear_2", "text_embedding.2"},
    {"proj_out", "head.head"},
    {"scale_shift_table", "head.modulation"},
}};

// Inside "blocks.N.": (diffusers, official) module paths.
constexpr std::array<std::pair<const char *, const char *>, 18> kBlock = {{
    {"scale_shift_table", "modulation"},
    {"attn1.to_q", "self_attn.q"},
    {"attn1.to_k", "self_attn.k"},
    {"attn1.to_v", "self_attn.v"},
    {"attn1.to_out.0", "self_attn.o"},
    {"attn1.norm_q", "self_attn.norm_q"},
    {"attn1.norm_k", "self_attn.norm_k"},
    {"attn2.to_q", "cross_attn.q"},
    {"attn2.to_k", "cross_attn.k"},
    {"attn2.to_v", "cross_attn.v"},
    {"attn2.to_out.0", "cross_attn.o"},
    {"attn2.norm_q", "cross_attn.norm_q"},
    {"attn2.norm_k", "cross_attn.norm_k"},
    {"attn2.add_k_proj", "cross_attn.k_img"},
    {"attn2.add_v_proj", "cross_attn.v_img"},
    {"attn2.norm_added_k", "cross_attn.norm_k_img"},
    {"norm2", "norm3"},  // diffusers' norm2 is the affine cross-attention norm (official norm3)
    {"ffn.net.0.proj", "ffn.0"},
}};

constexpr std::pair<const char *, const char *> kFfnOut = {"ffn.net.2", "ffn.2"};

// Split "a.b.c.weight" into module path and parameter suffix (".weight"/".bias"/"" for bare tensors).
std::pair<std::string, std::string> split_param(const std::string & key) {
    for (const char * suf : {".weight", ".bias"}) {
        const std::string s = suf;
        if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0)
            return {key.substr(0, key.size() - s.size()), s};
    }
    return {key, ""};
}

// "blocks.12.rest" -> ("blocks.12.", "rest"); otherwise empty prefix.
std::pair<std::string, std::string> split_block(const std::string & path) {
    if (!starts_with(path, "blocks.")) return {"", path};
    size_t i = 7;
    while (i < path.size() && std::isdigit(static_cast<unsigned char>(path[i]))) ++i;
    if (i == 7 || i >= path.size() || path[i] != '.') return {"", path};
    return {path.substr(0, i + 1), path.substr(i + 1)};
}

} // namespace

std::string NameMap::canonical(const std::string & key_in) const {
    std::string key = starts_with(key_in, prefix) ? key_in.substr(prefix.size()) : key_in;
    if (layout == KeyLayout::official) return key;
    auto [path, suffix] = split_param(key);
    auto [blk, rest]    = split_block(path);
    if (blk.empty()) {
        for (auto & [d, o] : kTopLevel)
            if (path == d) return o + suffix;
        return key;
    }
    for (auto & [d, o] : kBlock)
        if (rest == d) return blk + o + suffix;
    if (rest == kFfnOut.first) return blk + kFfnOut.second + suffix;
    return key;
}

std::string official_to_diffusers(const std::string & key) {
    auto [path, suffix] = split_param(key);
    auto [blk, rest]    = split_block(path);
    if (blk.empty()) {
        for (auto & [d, o] : kTopLevel)
            if (path == o) return d + suffix;
        return key;
    }
    for (auto & [d, o] : kBlock)
        if (rest == o) return blk + d + suffix;
    if (rest == kFfnOut.second) return blk + kFfnOut.first + suffix;
    return key;
}

NameMap detect_name_map(const std::vector<std::string> & keys) {
    NameMap m;
    // Wrapper prefixes, stacked as trainers nest them (DDP's module., torch.compile's _orig_mod.,
    // Self-Forcing's generator.model.): strip while every key carries one; longest first at each level.
    for (bool found = !keys.empty(); found;) {
        found = false;
        for (const char * p : {"model.diffusion_model.", "diffusion_model.", "generator_ema.", "generator.", "_orig_mod.", "module.", "model."}) {
            const std::string full = m.prefix + p;
            bool              all  = true;
            for (auto & k : keys)
                if (!starts_with(k, full)) { all = false; break; }
            if (all) {
                m.prefix = full, found = true;
                break;
            }
        }
    }
    for (auto & k : keys) {
        const std::string s = starts_with(k, m.prefix) ? k.substr(m.prefix.size()) : k;
        if (starts_with(s, "condition_embedder.") || s.find(".attn1.") != std::string::npos) {
            m.layout = KeyLayout::diffusers;
            break;
        }
    }
    return m;
}

} // namespace avs
