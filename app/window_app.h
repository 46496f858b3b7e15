// The windowed app: GLFW + Vulkan renderer + Dear ImGui panels over a Stream, an audio source and an
// optional recording. The UI thread presents frames at their timestamps and never waits on a chunk.
#pragma once

#include "app/app_config.h"

#include <atomic>
#include <string>

namespace avs {

struct WindowRunOptions {
    std::string record;          // start recording to this file at the first frame
    double      seconds = 0;     // close after this much video was shown (0: until the window closes)
    std::string screenshot;      // at exit, write the last rendered window as a binary PPM, and the
                                 // engine frame it shows as <screenshot>.frame.ppm (tests)
    const std::atomic<bool> * quit = nullptr;  // set by SIGINT/SIGTERM
};

// Returns the process exit code; `cfg` receives the settings the user ended with (to persist).
int run_windowed(AppConfig & cfg, const WindowRunOptions & opt);

} // namespace avs
