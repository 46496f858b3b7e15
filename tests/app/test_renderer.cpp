// Window + renderer on real Vulkan: lavapipe (or any driver that can present) under Xvfb when there is
// no display (tests/app/run_with_display.sh). Frames are read back from the swapchain image and checked
// pixel by pixel: letterbox bars, where aspect-fit puts the frame, resize, minimise, texture resize, ImGui.
#include "app/gpu/renderer.h"
#include "app/gpu/vk_check.h"

#include <catch2/catch.hpp>

#define GLFW_INCLUDE_VULKAN
#include <GLFW/glfw3.h>
#include <imgui.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

// Xlib last: it #defines Status (and typedefs Window), which would clash with avs::Status / avs::Window.
#include <X11/Xlib.h>
#undef Status
// glfw3native.h would pull in Xrandr headers (libxrandr-dev, not installed): declare the two accessors.
extern "C" Display * glfwGetX11Display(void);
extern "C" ::Window  glfwGetX11Window(GLFWwindow * window);

using namespace avs;

namespace {

// Clear colour with exact 8-bit values, so bars compare exactly.
constexpr uint8_t k_bar[3] = {51, 25, 76};

struct Rgb {
    int r, g, b;
};
constexpr Rgb k_red{255, 0, 0}, k_green{0, 255, 0}, k_blue{0, 0, 255}, k_white{255, 255, 255};

// w x h RGBA with four quadrants: red top-left, green top-right, blue bottom-left, white bottom-right.
std::vector<uint8_t> quadrant_frame(int w, int h) {
    std::vector<uint8_t> px(size_t(w) * size_t(h) * 4);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const Rgb c = y < h / 2 ? (x < w / 2 ? k_red : k_green) : (x < w / 2 ? k_blue : k_white);
            uint8_t * p = &px[(size_t(y) * size_t(w) + size_t(x)) * 4];
            p[0] = uint8_t(c.r), p[1] = uint8_t(c.g), p[2] = uint8_t(c.b), p[3] = 255;
        }
    return px;
}

bool near(const uint8_t * p, Rgb c, int tol = 2) {
    return std::abs(p[0] - c.r) <= tol && std::abs(p[1] - c.g) <= tol && std::abs(p[2] - c.b) <= tol;
}
bool is_bar(const uint8_t * p) { return p[0] == k_bar[0] && p[1] == k_bar[1] && p[2] == k_bar[2]; }
std::string px_str(const uint8_t * p) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "(%d,%d,%d,%d)", p[0], p[1], p[2], p[3]);
    return buf;
}

struct Fixture {
    std::unique_ptr<avs::Window>   window;
    std::unique_ptr<Renderer> renderer;
};

// Never skips: without a Vulkan device that can present, the test fails with the reason.
Fixture make_fixture(int w, int h) {
    Fixture fx;
    WindowOptions wo;
    wo.title = "avs test";
    wo.width = w, wo.height = h;
    auto win = avs::Window::create(wo);
    INFO("Window::create: " << win.status().message());
    REQUIRE(win.ok());
    fx.window = std::move(win.value());
    RendererOptions ro;
    ro.enable_readback = true;
    ro.validation = true;  // used when the Khronos layer is installed; errors are counted and checked
    ro.vsync = false;
    ro.clear_color = {k_bar[0] / 255.0f, k_bar[1] / 255.0f, k_bar[2] / 255.0f, 1.0f};
    auto r = Renderer::create(*fx.window, ro);
    INFO("Renderer::create (no Vulkan device able to present? install mesa-vulkan-drivers): " << r.status().message());
    REQUIRE(r.ok());
    fx.renderer = std::move(r.value());
    return fx;
}

// Pump events until the framebuffer has the wanted size (X resizes are asynchronous).
bool wait_for_framebuffer(avs::Window & win, int w, int h) {
    for (int i = 0; i < 200; ++i) {
        win.poll_events(0);
        int fw = 0, fh = 0;
        win.framebuffer_size(fw, fh);
        if (fw == w && fh == h) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

RenderOutcome render_ok(Renderer & r, const VideoFrameView * f, const std::function<void()> & ui = {}) {
    auto out = r.render(f, ui);
    INFO("render: " << out.status().message());
    REQUIRE(out.ok());
    return out.value();
}

RgbaImage read_back(Renderer & r) {
    auto img = r.read_back_rgba();
    INFO("read_back_rgba: " << img.status().message());
    REQUIRE(img.ok());
    return std::move(img.value());
}

// Checks that `img` shows the quadrant frame exactly where fit_letterbox puts it and bars elsewhere.
void check_fit(const RgbaImage & img, int frame_w, int frame_h) {
    const LetterboxRect lb = fit_letterbox(frame_w, frame_h, img.width, img.height);
    INFO("image " << img.width << "x" << img.height << " fit " << lb.x << "," << lb.y << " " << lb.w << "x" << lb.h);
    REQUIRE(lb.w > 8);
    REQUIRE(lb.h > 8);
    // Every pixel outside the fitted rectangle is exactly the clear colour.
    int bad_bars = 0, video_px = 0;
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            const bool inside = x >= lb.x && x < lb.x + lb.w && y >= lb.y && y < lb.y + lb.h;
            if (!inside && !is_bar(img.at(x, y))) ++bad_bars;
            if (inside && !is_bar(img.at(x, y))) ++video_px;
        }
    CHECK(bad_bars == 0);
    CHECK(video_px == lb.w * lb.h);  // the frame covers its whole rectangle (no bar colour inside)
    // Quadrant centres, and the rectangle's corner pixels (clamp-to-edge keeps them pure).
    const int x0 = lb.x, x1 = lb.x + lb.w - 1, y0 = lb.y, y1 = lb.y + lb.h - 1;
    const int qx0 = lb.x + lb.w / 4, qx1 = lb.x + 3 * lb.w / 4, qy0 = lb.y + lb.h / 4, qy1 = lb.y + 3 * lb.h / 4;
    INFO("TL " << px_str(img.at(qx0, qy0)) << " TR " << px_str(img.at(qx1, qy0)) << " BL " << px_str(img.at(qx0, qy1))
               << " BR " << px_str(img.at(qx1, qy1)));
    CHECK(near(img.at(qx0, qy0), k_red));
    CHECK(near(img.at(qx1, qy0), k_green));
    CHECK(near(img.at(qx0, qy1), k_blue));
    CHECK(near(img.at(qx1, qy1), k_white));
    CHECK(near(img.at(x0, y0), k_red));
    CHECK(near(img.at(x1, y0), k_green));
    CHECK(near(img.at(x0, y1), k_blue));
    CHECK(near(img.at(x1, y1), k_white));
}

// Plays the window manager's part on a bare X server: WM_STATE = Iconic/Normal plus unmap/map, which
// GLFW's X11 backend turns into its iconify callback and GLFW_ICONIFIED, as with a real WM.
void set_wm_state(GLFWwindow * w, bool iconic) {
    Display * dpy = glfwGetX11Display();
    ::Window  xw = glfwGetX11Window(w);
    const Atom wm_state = XInternAtom(dpy, "WM_STATE", False);
    long       data[2] = {iconic ? 3L /*IconicState*/ : 1L /*NormalState*/, 0L};
    XChangeProperty(dpy, xw, wm_state, wm_state, 32, PropModeReplace, reinterpret_cast<unsigned char *>(data), 2);
    if (iconic)
        XUnmapWindow(dpy, xw);
    else
        XMapWindow(dpy, xw);
    XFlush(dpy);
}

} // namespace

TEST_CASE("fit_letterbox centres the largest rectangle with the frame aspect", "[gpu]") {
    LetterboxRect r = fit_letterbox(64, 48, 400, 200);  // wider target: bars left and right
    CHECK(r.h == 200);
    CHECK(r.w == 267);
    CHECK(r.x == 66);
    CHECK(r.y == 0);
    r = fit_letterbox(64, 48, 300, 400);  // taller target: bars top and bottom
    CHECK(r.w == 300);
    CHECK(r.h == 225);
    CHECK(r.x == 0);
    CHECK(r.y == 87);
    r = fit_letterbox(832, 480, 832, 480);  // same size: no bars
    CHECK((r.x == 0 && r.y == 0 && r.w == 832 && r.h == 480));
    r = fit_letterbox(0, 48, 400, 200);  // no frame: empty
    CHECK(r.w == 0);
}

TEST_CASE("swapchain choices: UNORM format and extent rules", "[gpu]") {
    CHECK(choose_surface_format({{VK_FORMAT_B8G8R8A8_SRGB, VK_COLOR_SPACE_SRGB_NONLINEAR_KHR},
                                 {VK_FORMAT_B8G8R8A8_UNORM, VK_COLOR_SPACE_SRGB_NONLINEAR_KHR}})
              .format == VK_FORMAT_B8G8R8A8_UNORM);
    CHECK(choose_present_mode({VK_PRESENT_MODE_FIFO_KHR, VK_PRESENT_MODE_IMMEDIATE_KHR}, true) == VK_PRESENT_MODE_FIFO_KHR);
    CHECK(choose_present_mode({VK_PRESENT_MODE_FIFO_KHR, VK_PRESENT_MODE_IMMEDIATE_KHR}, false) ==
          VK_PRESENT_MODE_IMMEDIATE_KHR);
    VkSurfaceCapabilitiesKHR caps{};
    caps.currentExtent = {UINT32_MAX, UINT32_MAX};
    caps.minImageExtent = {1, 1};
    caps.maxImageExtent = {4096, 4096};
    CHECK(choose_extent(caps, 800, 600).width == 800);
    CHECK(choose_extent(caps, 0, 0).width == 0);  // minimised: nothing to create
    caps.currentExtent = {640, 480};
    CHECK(choose_extent(caps, 640, 480).height == 480);
    caps.currentExtent = {0, 0};
    caps.maxImageExtent = {0, 0};  // Windows reports this while minimised
    CHECK(choose_extent(caps, 640, 480).width == 0);
}

TEST_CASE("AVS_VK_CHECK names the VkResult and the statement and the place", "[gpu]") {
    auto fails = []() -> Status {
        AVS_VK_CHECK(VK_ERROR_OUT_OF_DATE_KHR);
        return {};
    };
    const Status s = fails();
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == ErrorCode::device);
    CHECK(s.message().find("VK_ERROR_OUT_OF_DATE_KHR") != std::string::npos);
    CHECK(s.message().find("test_renderer.cpp:") != std::string::npos);
}

TEST_CASE("renderer letterboxes a frame and follows resizes", "[gpu]") {
    Fixture fx = make_fixture(400, 200);
    Renderer & r = *fx.renderer;
    INFO("device: " << r.context().device_name());
    REQUIRE(wait_for_framebuffer(*fx.window, 400, 200));

    // Before any frame: the whole window is the clear colour.
    REQUIRE(render_ok(r, nullptr) == RenderOutcome::drawn);
    RgbaImage img = read_back(r);
    REQUIRE(img.width == 400);
    REQUIRE(img.height == 200);
    CHECK(is_bar(img.at(0, 0)));
    CHECK(is_bar(img.at(200, 100)));

    // 64x48 (4:3) in 400x200 (2:1): pillarbox, frame at x 66..332.
    const auto frame = quadrant_frame(64, 48);
    VideoFrameView v{frame.data(), 64, 48};
    REQUIRE(render_ok(r, &v) == RenderOutcome::drawn);
    img = read_back(r);
    check_fit(img, 64, 48);
    CHECK(is_bar(img.at(65, 100)));
    CHECK_FALSE(is_bar(img.at(66, 100)));

    // No new frame: the last one is redrawn, nothing uploaded.
    const uint64_t uploads = r.stats().uploads;
    REQUIRE(render_ok(r, nullptr) == RenderOutcome::drawn);
    CHECK(r.stats().uploads == uploads);
    check_fit(read_back(r), 64, 48);

    // Resize to portrait: the swapchain is recreated with the new extent, bars move to top/bottom.
    const int gen = r.stats().swapchain_generation;
    glfwSetWindowSize(fx.window->handle(), 300, 400);
    REQUIRE(wait_for_framebuffer(*fx.window, 300, 400));
    REQUIRE(render_ok(r, nullptr) == RenderOutcome::drawn);
    CHECK(r.stats().swapchain_generation > gen);
    CHECK(r.extent().width == 300);
    CHECK(r.extent().height == 400);
    img = read_back(r);
    REQUIRE(img.width == 300);
    REQUIRE(img.height == 400);
    check_fit(img, 64, 48);
    CHECK(is_bar(img.at(150, 86)));
    CHECK_FALSE(is_bar(img.at(150, 87)));

    // Resize without pumping events first: the renderer notices the framebuffer change itself (or the
    // driver reports out of date / suboptimal) and still draws at the new size.
    glfwSetWindowSize(fx.window->handle(), 500, 250);
    XSync(glfwGetX11Display(), False);
    RenderOutcome o = render_ok(r, nullptr);
    for (int i = 0; i < 10 && (o != RenderOutcome::drawn || r.extent().width != 500); ++i) o = render_ok(r, nullptr);
    CHECK(o == RenderOutcome::drawn);
    CHECK(r.extent().width == 500);
    check_fit(read_back(r), 64, 48);
    CHECK(r.context().validation_errors() == 0);
}

TEST_CASE("renderer recreates the video texture for a new frame size", "[gpu]") {
    Fixture fx = make_fixture(400, 200);
    Renderer & r = *fx.renderer;
    REQUIRE(wait_for_framebuffer(*fx.window, 400, 200));
    const auto a = quadrant_frame(64, 48);
    VideoFrameView va{a.data(), 64, 48};
    REQUIRE(render_ok(r, &va) == RenderOutcome::drawn);
    check_fit(read_back(r), 64, 48);

    // 32x64 (1:2) in 400x200: a narrow column 100 wide at x 150.
    const auto b = quadrant_frame(32, 64);
    VideoFrameView vb{b.data(), 32, 64};
    REQUIRE(render_ok(r, &vb) == RenderOutcome::drawn);
    CHECK(r.video().width() == 32);
    CHECK(r.video().height() == 64);
    RgbaImage img = read_back(r);
    check_fit(img, 32, 64);
    CHECK(is_bar(img.at(149, 100)));
    CHECK(is_bar(img.at(250, 100)));

    // Frames larger than the window are scaled down to fit.
    const auto c = quadrant_frame(832, 480);
    VideoFrameView vc{c.data(), 832, 480};
    REQUIRE(render_ok(r, &vc) == RenderOutcome::drawn);
    check_fit(read_back(r), 832, 480);

    // Bad input is an error, not a crash, and leaves the renderer working (no image left acquired).
    const uint64_t drawn = r.stats().frames_drawn;
    for (VideoFrameView bad : {VideoFrameView{a.data(), 0, 48}, VideoFrameView{nullptr, 64, 48},
                               VideoFrameView{a.data(), 1 << 20, 1}}) {
        for (int i = 0; i < 4; ++i) CHECK_FALSE(r.render(&bad, {}).ok());
    }
    CHECK(r.stats().frames_drawn == drawn);
    REQUIRE(render_ok(r, nullptr) == RenderOutcome::drawn);
    check_fit(read_back(r), 832, 480);
    CHECK(r.context().validation_errors() == 0);
}

TEST_CASE("minimised window skips drawing without error and resumes on restore", "[gpu]") {
    Fixture fx = make_fixture(320, 240);
    Renderer & r = *fx.renderer;
    avs::Window & win = *fx.window;
    REQUIRE(wait_for_framebuffer(win, 320, 240));
    const auto f = quadrant_frame(64, 48);
    VideoFrameView v{f.data(), 64, 48};
    REQUIRE(render_ok(r, &v) == RenderOutcome::drawn);

    set_wm_state(win.handle(), true);
    for (int i = 0; i < 200 && !win.minimized(); ++i) {
        win.poll_events(0);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(win.minimized());
    CHECK(glfwGetWindowAttrib(win.handle(), GLFW_ICONIFIED) == GLFW_TRUE);
    const RendererStats before = r.stats();
    for (int i = 0; i < 3; ++i) CHECK(render_ok(r, &v) == RenderOutcome::minimized);
    CHECK(r.stats().frames_drawn == before.frames_drawn);
    CHECK(r.stats().uploads == before.uploads);  // nothing recorded while minimised
    CHECK(r.stats().frames_skipped == before.frames_skipped + 3);

    // While minimised the event pump blocks (up to its timeout) instead of spinning.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) win.poll_events(0.05);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(waited >= 0.1);

    set_wm_state(win.handle(), false);
    for (int i = 0; i < 200 && win.minimized(); ++i) {
        win.poll_events(0);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE_FALSE(win.minimized());
    RenderOutcome o = render_ok(r, &v);
    for (int i = 0; i < 5 && o != RenderOutcome::drawn; ++i) o = render_ok(r, &v);
    REQUIRE(o == RenderOutcome::drawn);
    check_fit(read_back(r), 64, 48);
    CHECK(r.context().validation_errors() == 0);
}

TEST_CASE("ImGui draws over the video", "[gpu]") {
    Fixture fx = make_fixture(400, 300);
    Renderer & r = *fx.renderer;
    REQUIRE(wait_for_framebuffer(*fx.window, 400, 300));
    const auto f = quadrant_frame(64, 48);
    VideoFrameView v{f.data(), 64, 48};
    // An undecorated window with an opaque magenta background at (40,30) 120x80, and a cyan rectangle
    // drawn inside it at window-relative (20,20)-(60,50).
    auto ui = [] {
        ImGui::SetNextWindowPos(ImVec2(40, 30));
        ImGui::SetNextWindowSize(ImVec2(120, 80));
        ImGui::PushStyleColor(ImGuiCol_WindowBg, IM_COL32(255, 0, 255, 255));
        ImGui::PushStyleVar(ImGuiStyleVar_WindowRounding, 0.0f);
        ImGui::PushStyleVar(ImGuiStyleVar_WindowBorderSize, 0.0f);
        ImGui::Begin("probe", nullptr, ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoSavedSettings);
        const ImVec2 p = ImGui::GetWindowPos();
        ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(p.x + 20, p.y + 20), ImVec2(p.x + 60, p.y + 50),
                                                  IM_COL32(0, 255, 255, 255));
        ImGui::End();
        ImGui::PopStyleVar(2);
        ImGui::PopStyleColor();
    };
    for (int i = 0; i < 3; ++i) REQUIRE(render_ok(r, i == 0 ? &v : nullptr, ui) == RenderOutcome::drawn);
    const RgbaImage img = read_back(r);
    const Rgb magenta{255, 0, 255}, cyan{0, 255, 255};
    INFO("(45,35) " << px_str(img.at(45, 35)) << " (70,60) " << px_str(img.at(70, 60)) << " (155,105) "
                    << px_str(img.at(155, 105)));
    CHECK(near(img.at(45, 35), magenta));    // window background, top-left inside
    CHECK(near(img.at(155, 105), magenta));  // bottom-right inside
    CHECK(near(img.at(70, 60), cyan));       // the rectangle
    CHECK(near(img.at(98, 78), cyan));
    CHECK(near(img.at(105, 85), magenta));   // just outside the rectangle
    // Outside the ImGui window the video is untouched: 300x225 frame at y 37 -> bottom-right is white.
    const LetterboxRect lb = fit_letterbox(64, 48, 400, 300);
    CHECK(near(img.at(lb.x + 3 * lb.w / 4, lb.y + 3 * lb.h / 4), k_white));
    CHECK(r.context().validation_errors() == 0);
}

TEST_CASE("window close request and a second renderer is refused", "[gpu]") {
    Fixture fx = make_fixture(160, 120);
    CHECK_FALSE(fx.window->should_close());
    fx.window->request_close();
    CHECK(fx.window->should_close());
    // ImGui's backends are global: a second live renderer must be an error, not a corrupted first one.
    auto second = Renderer::create(*fx.window, RendererOptions{});
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().message().find("only one") != std::string::npos);
    REQUIRE(render_ok(*fx.renderer, nullptr) == RenderOutcome::drawn);
}

TEST_CASE("renderer frame time at 832x480 with a new frame every time", "[gpu]") {
    Fixture fx = make_fixture(832, 480);
    Renderer & r = *fx.renderer;
    REQUIRE(wait_for_framebuffer(*fx.window, 832, 480));
    std::vector<std::vector<uint8_t>> frames = {quadrant_frame(832, 480), quadrant_frame(832, 480)};
    std::reverse(frames[1].begin(), frames[1].end());  // different content each frame
    auto ui = [] {
        ImGui::Begin("stats");
        ImGui::Text("frame time test");
        ImGui::End();
    };
    for (bool vsync : {false, true}) {
        r.set_vsync(vsync);
        VideoFrameView v{frames[0].data(), 832, 480};
        REQUIRE(render_ok(r, &v, ui) == RenderOutcome::drawn);  // warm-up, swapchain recreated
        const int n = 60;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) {
            VideoFrameView vi{frames[size_t(i & 1)].data(), 832, 480};
            REQUIRE(render_ok(r, &vi, ui) == RenderOutcome::drawn);
        }
        REQUIRE(r.read_back_rgba().ok());  // includes the wait for the last frame
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
        std::printf("renderer 832x480 on %s, vsync %s (present mode %d): %.2f ms/frame (upload + video + ImGui + "
                    "read-back)\n",
                    r.context().device_name().c_str(), vsync ? "on" : "off", int(r.present_mode()), ms);
        CHECK(ms < 1000.0 / 16.0);  // keeps up with the engine's 16 fps even on a CPU rasteriser
    }
    CHECK(r.context().validation_errors() == 0);
}
