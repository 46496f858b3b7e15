// The ImGui panels driven by mouse input (no GPU needed: ImGui runs headless here), wired to a real
// Stream the way the window app wires them: a knob moved through ImGui reaches the engine's settings
// at the next chunk.
#include <catch2/catch.hpp>

#include "app/ui/panels.h"

#include <imgui.h>

#include <chrono>
#include <thread>

using namespace avs;

namespace {

struct Imgui {
    Imgui() {
        ImGui::CreateContext();
        ImGuiIO & io = ImGui::GetIO();
        io.DisplaySize = ImVec2(1280, 800);
        io.DeltaTime   = 1.0f / 60.0f;
        io.IniFilename = nullptr;
        unsigned char * px;
        int w, h;
        io.Fonts->GetTexDataAsRGBA32(&px, &w, &h);  // builds the atlas; nothing is drawn
    }
    ~Imgui() { ImGui::DestroyContext(); }
    // One UI frame with the mouse at (x, y), button down or up.
    UiActions frame(UiState & ui, const StreamStats & st, float x, float y, bool down) {
        ImGuiIO & io = ImGui::GetIO();
        io.MousePos = ImVec2(x, y);
        io.MouseDown[0] = down;
        ImGui::NewFrame();
        UiActions a = draw_panels(ui, st);
        ImGui::Render();
        return a;
    }
    // Press and release at (x, y); returns the actions of the release frame.
    UiActions click(UiState & ui, const StreamStats & st, float x, float y) {
        frame(ui, st, x, y, false);
        frame(ui, st, x, y, true);
        return frame(ui, st, x, y, false);
    }
};

std::array<float, 2> centre(const UiState & ui, const std::string & label) {
    const auto it = ui.rects.find(label);
    REQUIRE(it != ui.rects.end());
    return {0.5f * (it->second[0] + it->second[2]), 0.5f * (it->second[1] + it->second[3])};
}

} // namespace

namespace {

// Wait until the engine runs (model loaded, first chunk on its way).
void wait_running(Stream & stream, std::chrono::steady_clock::time_point deadline) {
    while (stream.stats().state != "running" && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(stream.stats().state == "running");
}

// Fold the sections above so the Stream knobs fit in the panel, then open Stream.
void open_stream_section(Imgui & gui, UiState & ui, StreamStats & st) {
    gui.frame(ui, st, -1, -1, false);
    for (const char * section : {"Audio", "RecordSection", "Stats"}) {
        const auto h = centre(ui, section);
        gui.click(ui, st, h[0], h[1]);
    }
    const auto c = centre(ui, "Stream");
    gui.click(ui, st, c[0], c[1]);
    gui.frame(ui, st, -1, -1, false);
}

} // namespace

TEST_CASE("a knob moved through ImGui reaches the engine at the next chunk", "[app][ui]") {
    StreamSettings s;
    s.backend = "cpu", s.config = "tiny", s.window = 6, s.seed = 4;
    auto stream = Stream::start(s);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    wait_running(*stream, deadline);
    const uint64_t kv6 = stream->stats().kv_bytes;

    Imgui   gui;
    UiState ui;
    ui.edit.stream = s;
    StreamStats st = stream->stats();
    open_stream_section(gui, ui, st);
    REQUIRE(ui.rects.count("window"));
    // click near the slider's left end: the window knob jumps to a small value
    const auto r = ui.rects["window"];
    gui.click(ui, st, r[0] + 0.04f * (r[2] - r[0]), 0.5f * (r[1] + r[3]));
    const int chosen = ui.edit.stream.window;
    REQUIRE(chosen != 6);
    REQUIRE(chosen >= 1);
    REQUIRE(chosen <= 6);
    REQUIRE(stream->settings().window == 6);  // nothing reaches the engine before Apply
    const auto      c = centre(ui, "Apply");
    const UiActions a = gui.click(ui, st, c[0], c[1]);
    REQUIRE(a.apply_stream);
    stream->apply(ui.edit.stream);  // what the window app does with the action

    // the next chunk runs on a cache of the new size
    while (stream->stats().kv_bytes == kv6 && std::chrono::steady_clock::now() < deadline) {
        DecodedFrame f;
        stream->pop_frame(f);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(stream->stats().kv_bytes == kv6 / 6 * uint64_t(chosen));
    REQUIRE(stream->settings().window == chosen);
}

TEST_CASE("the offload checkbox reaches the engine live and the stats show the offload traffic", "[app][ui]") {
    StreamSettings s;
    s.backend = "cpu", s.config = "tiny", s.window = 6, s.seed = 5;
    auto stream = Stream::start(s);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    wait_running(*stream, deadline);
    REQUIRE_FALSE(stream->stats().offload);

    Imgui   gui;
    UiState ui;
    ui.edit.stream = s;
    StreamStats st = stream->stats();
    open_stream_section(gui, ui, st);
    REQUIRE(ui.rects.count("offload"));
    const auto r = ui.rects["offload"];
    gui.click(ui, st, r[0] + 8.0f, 0.5f * (r[1] + r[3]));  // the check box sits at the item's left
    REQUIRE(ui.edit.stream.offload);
    const auto c = centre(ui, "Apply");
    REQUIRE(gui.click(ui, st, c[0], c[1]).apply_stream);
    stream->apply(ui.edit.stream);
    while (!stream->stats().offload && std::chrono::steady_clock::now() < deadline) {
        DecodedFrame f;
        stream->pop_frame(f);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const StreamStats after = stream->stats();
    REQUIRE(after.offload);
    REQUIRE(after.cache_switches == 1);  // live: no new segment, the model stays
    REQUIRE(after.model_loads == 1);
    REQUIRE(after.kv_device_bytes > 0);  // the two staging buffers (the tiny model has two layers: all of it)
    REQUIRE(after.kv_device_bytes <= after.kv_bytes);
    // traffic shows once a chunk ran offloaded
    double gbps = 0;
    while (gbps <= 0 && std::chrono::steady_clock::now() < deadline) {
        DecodedFrame f;
        stream->pop_frame(f);
        gbps = stream->stats().offload_gbps;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(gbps > 0);
}
