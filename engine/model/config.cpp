#include "engine/model/config.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace avs {

using nlohmann::json;

const char * conditioning_name(Conditioning c) { return c == Conditioning::text ? "text" : "audio"; }

uint64_t ModelConfig::param_count() const {
    const uint64_t d = uint64_t(dim), f = uint64_t(ffn_dim);
    uint64_t n = 0;
    n += d * uint64_t(in_channels) * uint64_t(patch_volume()) + d;    // patch_embedding
    if (conditioning == Conditioning::audio)
        n += d * uint64_t(audio_token_features()) + d + d * d + d + uint64_t(audio_tokens) * d;  // audio_embedding.0/.2/.pos
    else
        n += d * uint64_t(text_dim) + d + d * d + d;                   // text_embedding.0/.2
    n += d * uint64_t(freq_dim) + d + d * d + d;                       // time_embedding.0/.2
    n += 6 * d * d + 6 * d;                                            // time_projection.1
    uint64_t block = 6 * d                                             // modulation
                   + 4 * (d * d + d) + 2 * d                           // self_attn q,k,v,o + norms
                   + 4 * (d * d + d) + 2 * d                           // cross_attn
                   + 2 * d                                             // norm3
                   + (f * d + f) + (d * f + d);                        // ffn
    n += uint64_t(layers) * block;
    n += 2 * d + uint64_t(out_channels * patch_volume()) * d + uint64_t(out_channels * patch_volume());  // head
    return n;
}

Status ModelConfig::validate() const {
    auto bad = [&](const char * field, const char * expected, long long v) {
        return make_error(ErrorCode::invalid_argument, "model config '%s': field '%s' must be %s (got %lld)", name.c_str(),
                          field, expected, v);
    };
    if (dim <= 0) return bad("dim", "> 0", dim);
    if (heads <= 0) return bad("heads", "> 0", heads);
    if (dim % heads != 0) return bad("dim", "divisible by heads", dim);
    if (head_dim() % 2 != 0 || head_dim() < 6) return bad("heads", "such that dim/heads is even and >= 6", heads);
    if (ffn_dim <= 0) return bad("ffn_dim", "> 0", ffn_dim);
    if (layers <= 0) return bad("layers", "> 0", layers);
    if (in_channels <= 0) return bad("in_channels", "> 0", in_channels);
    if (out_channels <= 0) return bad("out_channels", "> 0", out_channels);
    if (text_dim <= 0) return bad("text_dim", "> 0", text_dim);
    if (text_len <= 0) return bad("text_len", "> 0", text_len);
    if (freq_dim <= 0 || freq_dim % 2 != 0) return bad("freq_dim", "even and > 0", freq_dim);
    if (patch_size[0] != 1) return bad("patch_size[0]", "1 (temporal patching is not supported)", patch_size[0]);
    if (patch_size[1] <= 0 || patch_size[2] <= 0 || patch_size[1] > 64 || patch_size[2] > 64) return bad("patch_size", "in 1..64", patch_size[1]);
    // sizes past these overflow the int products the loaders take (dim x ffn, patch volume x channels)
    if (dim > (1 << 20)) return bad("dim", "<= 2^20", dim);
    if (ffn_dim > (1 << 22)) return bad("ffn_dim", "<= 2^22", ffn_dim);
    if (in_channels > 4096 || out_channels > 4096) return bad("in/out_channels", "<= 4096", std::max(in_channels, out_channels));
    if (conditioning == Conditioning::audio) {
        if (audio_mels <= 0) return bad("audio_mels", "> 0", audio_mels);
        if (audio_tokens <= 0) return bad("audio_tokens", "> 0", audio_tokens);
        if (audio_window <= 0 || audio_window % audio_tokens != 0) return bad("audio_window", "a positive multiple of audio_tokens", audio_window);
    }
    if (!(eps > 0 && eps < 1)) return make_error(ErrorCode::invalid_argument, "model config '%s': field 'eps' must be in (0, 1)", name.c_str());
    return {};
}

std::vector<std::string> config_preset_names() { return {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "tiny"}; }

Result<ModelConfig> config_preset(const std::string & name) {
    ModelConfig c;
    c.name = name;
    if (name == "wan2.1-t2v-1.3b") {
        return c;  // the defaults are the 1.3B model
    }
    if (name == "wan2.1-t2v-14b") {
        c.dim = 5120; c.ffn_dim = 13824; c.heads = 40; c.layers = 40;
        return c;
    }
    if (name == "tiny") {
        // Same architecture, small enough for CPU tests: head_dim 64 (RoPE pairs 12/10/10).
        c.dim = 128; c.ffn_dim = 256; c.heads = 2; c.layers = 2;
        c.text_dim = 64; c.text_len = 32; c.freq_dim = 64;
        return c;
    }
    std::string names;
    for (auto & n : config_preset_names()) names += (names.empty() ? "" : ", ") + n;
    return make_error(ErrorCode::invalid_argument, "unknown model config preset '%s' (expected one of: %s, or a JSON file)",
                      name.c_str(), names.c_str());
}

namespace {

// Reads an integer field if present; errors name the origin and field.
Status read_int(const json & j, const char * key, int & out, const std::string & origin) {
    auto it = j.find(key);
    if (it == j.end()) return {};
    // int64 first: a value past int's range is an error, not silently wrapped (4294968832 read as 1536)
    if (!it->is_number_integer() || it->get<int64_t>() < -(int64_t(1) << 30) || it->get<int64_t>() > (int64_t(1) << 30))
        return make_error(ErrorCode::format, "%s: field '%s' must be an integer in [-2^30, 2^30] (got %s)", origin.c_str(), key,
                          it->dump().c_str());
    out = int(it->get<int64_t>());
    return {};
}

} // namespace

Result<ModelConfig> config_from_json(const std::string & text, const std::string & origin) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(ErrorCode::format, "%s: not valid JSON", origin.c_str());
    if (!j.is_object()) return make_error(ErrorCode::format, "%s: expected a JSON object at top level", origin.c_str());

    ModelConfig c;
    c.name = origin;
    // Layout detection: diffusers uses num_attention_heads; official Wan uses num_heads/in_dim.
    const bool diffusers = j.contains("num_attention_heads");
    if (diffusers) {
        int head_dim = 128;
        AVS_TRY(read_int(j, "num_attention_heads", c.heads, origin));
        AVS_TRY(read_int(j, "attention_head_dim", head_dim, origin));
        if (int64_t(c.heads) * head_dim > (int64_t(1) << 20) || c.heads <= 0 || head_dim <= 0)
            return make_error(ErrorCode::format, "%s: num_attention_heads %d x attention_head_dim %d is not a model width", origin.c_str(),
                              c.heads, head_dim);
        c.dim = c.heads * head_dim;
        AVS_TRY(read_int(j, "in_channels", c.in_channels, origin));
        AVS_TRY(read_int(j, "out_channels", c.out_channels, origin));
    } else {
        AVS_TRY(read_int(j, "dim", c.dim, origin));
        AVS_TRY(read_int(j, "heads", c.heads, origin));
        AVS_TRY(read_int(j, "num_heads", c.heads, origin));
        AVS_TRY(read_int(j, "in_channels", c.in_channels, origin));
        AVS_TRY(read_int(j, "in_dim", c.in_channels, origin));
        AVS_TRY(read_int(j, "out_channels", c.out_channels, origin));
        AVS_TRY(read_int(j, "out_dim", c.out_channels, origin));
    }
    AVS_TRY(read_int(j, "ffn_dim", c.ffn_dim, origin));
    AVS_TRY(read_int(j, "layers", c.layers, origin));
    AVS_TRY(read_int(j, "num_layers", c.layers, origin));
    AVS_TRY(read_int(j, "text_dim", c.text_dim, origin));
    AVS_TRY(read_int(j, "text_len", c.text_len, origin));
    AVS_TRY(read_int(j, "freq_dim", c.freq_dim, origin));
    AVS_TRY(read_int(j, "audio_mels", c.audio_mels, origin));
    AVS_TRY(read_int(j, "audio_window", c.audio_window, origin));
    AVS_TRY(read_int(j, "audio_tokens", c.audio_tokens, origin));
    if (auto it = j.find("eps"); it != j.end()) {
        if (!it->is_number()) return make_error(ErrorCode::format, "%s: field 'eps' must be a number", origin.c_str());
        c.eps = it->get<double>();
    }
    if (auto it = j.find("patch_size"); it != j.end()) {
        if (!it->is_array() || it->size() != 3 || !(*it)[0].is_number_integer() || !(*it)[1].is_number_integer() ||
            !(*it)[2].is_number_integer())
            return make_error(ErrorCode::format, "%s: field 'patch_size' must be an array of 3 integers [t, h, w]", origin.c_str());
        for (size_t i = 0; i < 3; ++i) {
            const int64_t v = (*it)[i].get<int64_t>();
            if (v < 1 || v > 64) return make_error(ErrorCode::format, "%s: patch_size[%zu] is %lld (expected 1..64)", origin.c_str(), i, (long long) v);
            c.patch_size[i] = int(v);
        }
    }
    if (auto it = j.find("model_type"); it != j.end()) {
        if (!it->is_string() || it->get<std::string>() != "t2v")
            return make_error(ErrorCode::unsupported, "%s: model_type %s is not supported (expected \"t2v\")",
                              origin.c_str(), it->dump().c_str());
    }
    if (auto it = j.find("conditioning"); it != j.end()) {
        const std::string kind = it->is_string() ? it->get<std::string>() : "";
        if (kind == "text") c.conditioning = Conditioning::text;
        else if (kind == "audio") c.conditioning = Conditioning::audio;
        else return make_error(ErrorCode::format, "%s: field 'conditioning' must be \"text\" or \"audio\"", origin.c_str());
    }
    if (auto it = j.find("name"); it != j.end() && it->is_string()) c.name = it->get<std::string>();
    AVS_TRY(c.validate());
    return c;
}

Result<ModelConfig> config_from_file(const std::string & path) {
    std::ifstream f(path);
    if (!f) return make_error(ErrorCode::io, "cannot open model config file '%s'", path.c_str());
    std::stringstream ss;
    ss << f.rdbuf();
    return config_from_json(ss.str(), path);
}

Result<ModelConfig> config_resolve(const std::string & name_or_path) {
    for (auto & n : config_preset_names())
        if (n == name_or_path) return config_preset(n);
    if (name_or_path.find(".json") != std::string::npos || name_or_path.find('/') != std::string::npos)
        return config_from_file(name_or_path);
    return config_preset(name_or_path);  // produces the "unknown preset" error listing the choices
}

std::string config_to_json(const ModelConfig & c) {
    json j = {{"name", c.name},           {"dim", c.dim},
              {"ffn_dim", c.ffn_dim},     {"heads", c.heads},
              {"layers", c.layers},       {"in_channels", c.in_channels},
              {"out_channels", c.out_channels},
              {"patch_size", {c.patch_size[0], c.patch_size[1], c.patch_size[2]}},
              {"text_dim", c.text_dim},   {"text_len", c.text_len},
              {"freq_dim", c.freq_dim},   {"eps", c.eps},
              {"conditioning", conditioning_name(c.conditioning)}};
    if (c.conditioning == Conditioning::audio) {
        j["audio_mels"] = c.audio_mels, j["audio_window"] = c.audio_window, j["audio_tokens"] = c.audio_tokens;
    }
    return j.dump(2);
}

} // namespace avs
