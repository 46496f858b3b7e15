#include "engine/model/default_model.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace avs {

Result<DefaultModel> default_model() {
    namespace fs = std::filesystem;
    const char * env = std::getenv("AVS_ASSETS");
#if defined(AVS_ASSETS_DIR)
    const std::string dir = env && *env ? env : AVS_ASSETS_DIR;
#else
    if (!env || !*env) return make_error(ErrorCode::missing, "no default model: set AVS_ASSETS to the assets/ directory");
    const std::string dir = env;
#endif
    DefaultModel m{dir, dir + "/dit.safetensors", dir + "/decoder.safetensors", dir + "/config.json", dir + "/sample_speech.wav"};
    for (const std::string * p : {&m.dit, &m.decoder, &m.config})
        if (!fs::exists(*p)) return make_error(ErrorCode::missing, "default model: %s is missing (assets/ of the source tree, or $AVS_ASSETS)", p->c_str());
    return m;
}

Result<InferenceDefaults> inference_defaults(const std::string & path) {
    using nlohmann::json;
    std::ifstream f(path);
    if (!f) return make_error(ErrorCode::io, "cannot open %s", path.c_str());
    const json j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::format, "%s: not a JSON object", path.c_str());
    InferenceDefaults d;
    auto num = [&](const json & o, const char * obj, const char * key, auto & out) -> Status {
        if (!o.contains(key)) return {};
        if (!o[key].is_number()) return make_error(ErrorCode::format, "%s: field '%s.%s' must be a number", path.c_str(), obj, key);
        out = o[key].get<typename std::decay_t<decltype(out)>::value_type>();
        return {};
    };
    auto str = [&](const json & o, const char * obj, const char * key, std::optional<std::string> & out) -> Status {
        if (!o.contains(key)) return {};
        if (!o[key].is_string()) return make_error(ErrorCode::format, "%s: field '%s.%s' must be a string", path.c_str(), obj, key);
        out = o[key].get<std::string>();
        return {};
    };
    if (j.contains("defaults")) {
        const json & o = j["defaults"];
        AVS_TRY(num(o, "defaults", "steps", d.steps));
        AVS_TRY(num(o, "defaults", "chunk_frames", d.chunk_frames));
        AVS_TRY(num(o, "defaults", "window", d.window));
        AVS_TRY(num(o, "defaults", "sinks", d.sinks));
        AVS_TRY(num(o, "defaults", "shift", d.shift));
        AVS_TRY(str(o, "defaults", "rope_mode", d.rope_mode));
        AVS_TRY(str(o, "defaults", "cache_mode", d.cache_mode));
    }
    if (j.contains("video")) {
        AVS_TRY(num(j["video"], "video", "width", d.width));
        AVS_TRY(num(j["video"], "video", "height", d.height));
    }
    return d;
}

} // namespace avs
