#include "app/app_config.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace avs {

using json = nlohmann::json;

std::string default_config_path() {
    // one initialisation, not assignments (GCC 12 warns falsely on `base = "."`: -Wrestrict)
    const char *      x = std::getenv("XDG_CONFIG_HOME"), *h = std::getenv("HOME");
    const std::string base = x && *x ? std::string(x) : h && *h ? std::string(h) + "/.config" : std::string(".");
    return base + "/avatarstream/settings.json";
}

namespace {

// Reads j[key] into v when present; a wrong type is an error naming the file and the field.
template <typename T> Status get(const json & j, const char * key, T & v, const std::string & path) {
    if (!j.contains(key)) return {};
    try {
        v = j.at(key).get<T>();
    } catch (const json::exception &) {
        return make_error(ErrorCode::format, "%s: field '%s' has the wrong type (%s)", path.c_str(), key, j.at(key).dump().c_str());
    }
    return {};
}

} // namespace

Result<AppConfig> load_app_config(const std::string & path) {
    AppConfig c;
    std::ifstream f(path);
    if (!f) return c;  // first run
    json j;
    try {
        j = json::parse(f);
    } catch (const json::exception & e) {
        return make_error(ErrorCode::format, "%s: not valid JSON (%s)", path.c_str(), e.what());
    }
    if (!j.is_object()) return make_error(ErrorCode::format, "%s: expected a JSON object", path.c_str());
    StreamSettings & s = c.stream;
    AVS_TRY(get(j, "model", s.model, path));
    AVS_TRY(get(j, "config", s.config, path));
    AVS_TRY(get(j, "vae", s.vae, path));
    AVS_TRY(get(j, "backend", s.backend, path));
    AVS_TRY(get(j, "decoder", s.decoder, path));
    AVS_TRY(get(j, "kv_format", s.kv_format, path));
    AVS_TRY(get(j, "offload", s.offload, path));
    AVS_TRY(get(j, "rope_mode", s.rope_mode, path));
    AVS_TRY(get(j, "context", s.context, path));
    AVS_TRY(get(j, "window", s.window, path));
    AVS_TRY(get(j, "sinks", s.sinks, path));
    AVS_TRY(get(j, "steps", s.steps, path));
    if (j.contains("seed") && !j.at("seed").is_number_unsigned())
        return make_error(ErrorCode::format, "%s: field 'seed' is %s (expected an integer >= 0)", path.c_str(), j.at("seed").dump().c_str());
    AVS_TRY(get(j, "seed", s.seed, path));
    AVS_TRY(get(j, "audio", c.audio, path));
    AVS_TRY(get(j, "audio_device", c.audio_device, path));
    AVS_TRY(get(j, "audio_file", c.audio_file, path));
    AVS_TRY(get(j, "record_dir", c.record_dir, path));
    AVS_TRY(get(j, "vsync", c.vsync, path));
    AVS_TRY(s.validate().with_context(path));
    if (c.audio != "mic" && c.audio != "file" && c.audio != "silence")
        return make_error(ErrorCode::format, "%s: field 'audio' is '%s' (expected mic, file or silence)", path.c_str(), c.audio.c_str());
    return c;
}

Status save_app_config(const std::string & path, const AppConfig & c) {
    const StreamSettings & s = c.stream;
    json j = {{"model", s.model}, {"config", s.config}, {"vae", s.vae}, {"backend", s.backend}, {"decoder", s.decoder},
              {"kv_format", s.kv_format}, {"offload", s.offload}, {"rope_mode", s.rope_mode}, {"context", s.context}, {"window", s.window},
              {"sinks", s.sinks}, {"steps", s.steps}, {"seed", s.seed}, {"audio", c.audio}, {"audio_device", c.audio_device},
              {"audio_file", c.audio_file}, {"record_dir", c.record_dir}, {"vsync", c.vsync}};
    // JSON holds UTF-8 only; a path that is not (a legal Linux file name) is reported, not thrown
    std::string text;
    try {
        text = j.dump(2);
    } catch (const json::exception &) {
        for (const auto & [key, value] : j.items()) try {
                (void) value.dump();
            } catch (const json::exception &) {
                return make_error(ErrorCode::invalid_argument, "%s: not saved: field '%s' is not valid UTF-8 (JSON holds UTF-8 text only)",
                                  path.c_str(), key.c_str());
            }
        return make_error(ErrorCode::invalid_argument, "%s: not saved: a value is not valid UTF-8", path.c_str());
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp);
        if (!f) return make_error(ErrorCode::io, "%s: cannot write", tmp.c_str());
        f << text << "\n";
        if (!f.good()) return make_error(ErrorCode::io, "%s: write failed", tmp.c_str());
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) return make_error(ErrorCode::io, "%s: cannot replace (%s)", path.c_str(), ec.message().c_str());
    return {};
}

} // namespace avs
