// Window: the app's GLFW window (no client API: Vulkan draws into it). Tracks framebuffer resizes and
// minimisation for the swapchain, and close requests for the main loop.
#pragma once

#include "engine/core/result.h"

#include <memory>
#include <string>

struct GLFWwindow;

namespace avs {

struct WindowOptions {
    std::string title = "AvatarStream";
    int         width = 1280, height = 800;  // screen coordinates
    bool        visible = true;
    bool        resizable = true;
};

class Window {
public:
    // Fails with a clear message when there is no display (DISPLAY / WAYLAND_DISPLAY unset or the
    // server unreachable) or GLFW finds no Vulkan loader.
    static Result<std::unique_ptr<Window>> create(const WindowOptions & opt);
    ~Window();
    Window(const Window &) = delete;
    Window & operator=(const Window &) = delete;

    GLFWwindow * handle() const { return window_; }

    // Non-blocking event pump while the window is visible; while it is minimised it blocks for up to
    // `minimized_wait_s` (events wake it), so a minimised app does not spin.
    void poll_events(double minimized_wait_s = 0.05);

    bool should_close() const;
    void request_close();

    // Framebuffer size in pixels (0x0 on some platforms while minimised).
    void framebuffer_size(int & w, int & h) const;
    // Iconified, or a zero-area framebuffer: nothing to draw into.
    bool minimized() const;
    // True once after each framebuffer-size change (the swapchain must be recreated).
    bool consume_resized();

    // The last GLFW error message ("" when none); GLFW reports errors through a global callback.
    static std::string last_glfw_error();

private:
    Window() = default;
    static void on_framebuffer_size(GLFWwindow * w, int width, int height);
    static void on_iconify(GLFWwindow * w, int iconified);

    GLFWwindow * window_ = nullptr;
    bool         resized_ = false;
    bool         iconified_ = false;
};

} // namespace avs
