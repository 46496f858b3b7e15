// AppConfig: everything the app remembers between runs (the stream settings, the audio source, the
// recording folder), as a JSON file. Command-line flags override what the file says.
#pragma once

#include "engine/core/result.h"
#include "engine/runtime/stream.h"

#include <string>

namespace avs {

// First-run stream settings: the embedded default avatar with the cache geometry it was trained for.
inline StreamSettings default_stream_settings() {
    StreamSettings s;
    s.config = "default", s.window = 9, s.sinks = 3, s.rope_mode = "window";
    return s;
}

struct AppConfig {
    StreamSettings stream = default_stream_settings();
    std::string    audio = "mic";  // mic | file | silence
    int            audio_device = -1;  // PortAudio input index, -1 = default
    std::string    audio_file;         // the file source (and the mic's fallback)
    std::string    record_dir;         // where the record button writes (empty: the working directory)
    bool           vsync = true;
};

// $XDG_CONFIG_HOME/avatarstream/settings.json (or ~/.config/...).
std::string default_config_path();
// A missing file gives the defaults; a malformed one an error naming the file and the field.
Result<AppConfig> load_app_config(const std::string & path);
// Writes atomically (temp file + rename), creating the directory.
Status save_app_config(const std::string & path, const AppConfig & c);

} // namespace avs
