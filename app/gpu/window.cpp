#include "app/gpu/window.h"

#define GLFW_INCLUDE_VULKAN
#include <GLFW/glfw3.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace avs {

namespace {

std::mutex  g_mu;  // guards the GLFW reference count and the last error
int         g_glfw_refs = 0;
std::string g_last_error;

void on_glfw_error(int code, const char * desc) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_last_error = std::string(desc ? desc : "?") + " (GLFW error 0x" + [&] {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%X", unsigned(code));
        return std::string(buf);
    }() + ")";
}

// glfwInit/glfwTerminate are process-wide; windows share one initialisation.
Status acquire_glfw() {
    glfwSetErrorCallback(on_glfw_error);
    {
        std::lock_guard<std::mutex> lk(g_mu);
        if (g_glfw_refs > 0) {
            ++g_glfw_refs;
            return {};
        }
        g_last_error.clear();
    }
    if (glfwInit() != GLFW_TRUE) {
        const char * disp = std::getenv("DISPLAY");
        const char * wl = std::getenv("WAYLAND_DISPLAY");
        return make_error(ErrorCode::device,
                          "cannot open a window: GLFW could not initialise (%s); DISPLAY=%s WAYLAND_DISPLAY=%s -- "
                          "run on a desktop session, under xvfb-run, or use --headless",
                          Window::last_glfw_error().c_str(), disp ? disp : "(unset)", wl ? wl : "(unset)");
    }
    std::lock_guard<std::mutex> lk(g_mu);
    ++g_glfw_refs;
    return {};
}

void release_glfw() {
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_glfw_refs > 0 && --g_glfw_refs == 0) glfwTerminate();
}

} // namespace

std::string Window::last_glfw_error() {
    std::lock_guard<std::mutex> lk(g_mu);
    return g_last_error;
}

Result<std::unique_ptr<Window>> Window::create(const WindowOptions & opt) {
    if (opt.width <= 0 || opt.height <= 0)
        return make_error(ErrorCode::invalid_argument, "window size %dx%d must be positive", opt.width, opt.height);
    AVS_TRY(acquire_glfw());
    if (glfwVulkanSupported() != GLFW_TRUE) {
        release_glfw();
        return make_error(ErrorCode::device, "GLFW found no Vulkan loader (libvulkan.so.1); install a Vulkan driver: %s",
                          last_glfw_error().c_str());
    }
    glfwDefaultWindowHints();
    glfwWindowHint(GLFW_CLIENT_API, GLFW_NO_API);
    glfwWindowHint(GLFW_VISIBLE, opt.visible ? GLFW_TRUE : GLFW_FALSE);
    glfwWindowHint(GLFW_RESIZABLE, opt.resizable ? GLFW_TRUE : GLFW_FALSE);
    GLFWwindow * w = glfwCreateWindow(opt.width, opt.height, opt.title.c_str(), nullptr, nullptr);
    if (!w) {
        const std::string err = last_glfw_error();
        release_glfw();
        return make_error(ErrorCode::device, "cannot create a %dx%d window: %s", opt.width, opt.height, err.c_str());
    }
    std::unique_ptr<Window> win(new Window());
    win->window_ = w;
    glfwSetWindowUserPointer(w, win.get());
    glfwSetFramebufferSizeCallback(w, on_framebuffer_size);
    glfwSetWindowIconifyCallback(w, on_iconify);
    win->iconified_ = glfwGetWindowAttrib(w, GLFW_ICONIFIED) == GLFW_TRUE;
    return win;
}

Window::~Window() {
    if (window_) {
        glfwDestroyWindow(window_);
        release_glfw();
    }
}

void Window::on_framebuffer_size(GLFWwindow * w, int, int) {
    if (auto * self = static_cast<Window *>(glfwGetWindowUserPointer(w))) self->resized_ = true;
}

void Window::on_iconify(GLFWwindow * w, int iconified) {
    if (auto * self = static_cast<Window *>(glfwGetWindowUserPointer(w))) {
        self->iconified_ = iconified == GLFW_TRUE;
        self->resized_ = true;  // the surface may have changed while hidden
    }
}

void Window::poll_events(double minimized_wait_s) {
    if (minimized() && minimized_wait_s > 0)
        glfwWaitEventsTimeout(minimized_wait_s);
    else
        glfwPollEvents();
}

bool Window::should_close() const { return glfwWindowShouldClose(window_) == GLFW_TRUE; }
void Window::request_close() { glfwSetWindowShouldClose(window_, GLFW_TRUE); }

void Window::framebuffer_size(int & w, int & h) const { glfwGetFramebufferSize(window_, &w, &h); }

bool Window::minimized() const {
    int w = 0, h = 0;
    framebuffer_size(w, h);
    return iconified_ || w <= 0 || h <= 0;
}

bool Window::consume_resized() {
    const bool r = resized_;
    resized_ = false;
    return r;
}

} // namespace avs
