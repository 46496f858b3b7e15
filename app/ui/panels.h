// The app's Dear ImGui panels: stream knobs (applied at the next chunk boundary), audio source and
// level, live stats with a chunk-time plot, the record button. They only edit UiState and report
// what the user asked for; the main loop carries the actions out, so panels never touch a thread.
#pragma once

#include "app/app_config.h"
#include "app/audio/audio_source.h"
#include "engine/runtime/stream.h"

#include <array>
#include <map>
#include <string>
#include <vector>

namespace avs {

struct UiState {
    AppConfig                     edit;             // what the knobs show (applied on request)
    std::vector<AudioInputDevice> devices;          // refreshed on request
    std::string                   audio_name, audio_message;
    std::string                   audio_status;     // the source's own state line, live
    LevelReading                  level{};
    bool                          recording = false;
    std::string                   record_path = "avatarstream.mp4";
    std::string                   record_status;    // frames written / errors
    double                        presented_fps = 0; // frames shown per second by the window
    double                        behind_s = 0;      // how far presentation lags the frames' timestamps
    // Screen rectangles {x0, y0, x1, y1} of the main controls from the last draw, by label: lets tests
    // (and UI automation) drive the real widgets with mouse input.
    std::map<std::string, std::array<float, 4>> rects;
};

struct UiActions {
    bool apply_stream = false;    // restart the stream segment with edit.stream
    bool reopen_audio = false;    // reopen the audio source with edit's audio fields
    bool refresh_devices = false;
    bool start_recording = false, stop_recording = false;
};

UiActions draw_panels(UiState & ui, const StreamStats & stats);

} // namespace avs
