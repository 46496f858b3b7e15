#include "app/ui/panels.h"

#include <imgui.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace avs {

namespace {

void remember(UiState & ui, const char * label) {
    const ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    ui.rects[label] = {a.x, a.y, b.x, b.y};
}

// ImGui InputText over a std::string (fixed buffer: paths and names).
bool input_text(const char * label, std::string & s) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, "%s", s.c_str());
    if (!ImGui::InputText(label, buf, sizeof buf)) return false;
    s = buf;
    return true;
}

bool combo(const char * label, std::string & v, std::initializer_list<const char *> items) {
    bool changed = false;
    if (ImGui::BeginCombo(label, v.c_str())) {
        for (const char * it : items)
            if (ImGui::Selectable(it, v == it)) v = it, changed = true;
        ImGui::EndCombo();
    }
    return changed;
}

std::string mib(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB", double(bytes) / 1048576.0);
    return b;
}

void stream_panel(UiState & ui, const StreamStats & st, UiActions & a) {
    StreamSettings & s = ui.edit.stream;
    ImGui::TextDisabled("applied at the next chunk boundary");
    input_text("model path", s.model);
    // default: the embedded avatar (assets/); the others are architectures with random weights
    if (s.model.empty()) combo("preset", s.config, {"default", "tiny", "wan2.1-t2v-1.3b", "wan2.1-t2v-14b"});
    combo("backend", s.backend, {"auto", "cuda", "cpu"});
    ImGui::SliderInt("window (latent frames)", &s.window, 1, 60);
    remember(ui, "window");
    ImGui::SliderInt("sink frames", &s.sinks, 0, 8);
    combo("KV format", s.kv_format, {"auto", "bf16", "f32", "fp8", "int8", "int4", "nvfp4"});
    ImGui::Checkbox("offload KV to host memory", &s.offload);
    remember(ui, "offload");
    ImGui::SliderInt("denoising steps", &s.steps, 1, 4);
    combo("decoder", s.decoder, {"tiny", "wan"});
    input_text("decoder weights", s.vae);
    combo("RoPE positions", s.rope_mode, {"window", "absolute"});
    int seed = int(s.seed);
    if (ImGui::InputInt("seed", &seed)) s.seed = uint64_t(std::max(0, seed));
    input_text("prompt embedding", s.context);
    if (ImGui::Button("Apply")) a.apply_stream = true;
    remember(ui, "Apply");
    ImGui::SameLine();
    ImGui::TextDisabled("%s on %s, %s decoder", st.model_name.c_str(), st.backend.c_str(), st.decoder.c_str());
}

void audio_panel(UiState & ui, UiActions & a) {
    combo("source", ui.edit.audio, {"mic", "file", "silence"});
    if (ui.edit.audio == "mic") {
        std::string cur = "default input";
        for (const AudioInputDevice & d : ui.devices)
            if (d.index == ui.edit.audio_device) cur = d.name;
        if (ImGui::BeginCombo("device", cur.c_str())) {
            if (ImGui::Selectable("default input", ui.edit.audio_device < 0)) ui.edit.audio_device = -1;
            for (const AudioInputDevice & d : ui.devices) {
                const std::string label = d.name + " (" + d.host_api + ")";
                if (ImGui::Selectable(label.c_str(), d.index == ui.edit.audio_device)) ui.edit.audio_device = d.index;
            }
            ImGui::EndCombo();
        }
        ImGui::SameLine();
        if (ImGui::Button("Rescan")) a.refresh_devices = true;
        if (ui.devices.empty()) ImGui::TextColored(ImVec4(1, 0.7f, 0.3f, 1), "No input device found: the file or silence is used.");
    }
    input_text("audio file", ui.edit.audio_file);
    if (ImGui::Button("Use this source")) a.reopen_audio = true;
    ImGui::Text("now: %s", ui.audio_name.c_str());
    if (!ui.audio_status.empty()) ImGui::TextDisabled("%s", ui.audio_status.c_str());
    if (!ui.audio_message.empty()) ImGui::TextWrapped("%s", ui.audio_message.c_str());
    // level: -60..0 dBFS mapped to the bar
    const float frac = std::clamp((ui.level.rms_db + 60.0f) / 60.0f, 0.0f, 1.0f);
    char lbl[64];
    std::snprintf(lbl, sizeof lbl, "%.0f dBFS (peak %.0f)", ui.level.rms_db, ui.level.hold_db);
    ImGui::ProgressBar(frac, ImVec2(-1, 0), lbl);
}

void stats_panel(const UiState & ui, const StreamStats & st) {
    if (st.state != "running") {
        ImGui::Text("%s", st.state.c_str());
        if (!st.message.empty()) ImGui::TextWrapped("%s", st.message.c_str());
        ImGui::ProgressBar(float(st.load_progress), ImVec2(-1, 0));
        if (st.state != "error") return;
    }
    ImGui::Text("generated %.1f fps (x%.2f real time), shown %.1f fps", st.fps, st.realtime_factor, ui.presented_fps);
    ImGui::Text("chunk %.0f ms, decode %.0f ms", st.chunk_ms, st.decode_ms);
    ImGui::Text("behind real time %.2f s, mic-to-frame latency ~%.2f s", ui.behind_s, st.latency_s);
    ImGui::Text("VRAM %s, KV %s (%s, window %d, sinks %d, %s on the device)", mib(st.vram_bytes).c_str(), mib(st.kv_bytes).c_str(),
                st.kv_format.c_str(), st.kv_window, st.kv_sinks, mib(st.kv_device_bytes).c_str());
    if (!st.cache_note.empty()) ImGui::TextWrapped("%s", st.cache_note.c_str());
    if (st.offload) ImGui::Text("offload: %.2f GB/s host <-> device", st.offload_gbps);
    else ImGui::TextDisabled("offload: off");
    ImGui::Text("%dx%d, %lld chunks, %lld frames, %lld dropped", st.width, st.height, (long long) st.chunks, (long long) st.frames,
                (long long) st.dropped);
    if (!st.chunk_ms_history.empty()) {
        std::vector<float> h(st.chunk_ms_history.begin(), st.chunk_ms_history.end());
        const float top = *std::max_element(h.begin(), h.end());
        ImGui::PlotLines("chunk ms", h.data(), int(h.size()), 0, nullptr, 0.0f, top * 1.2f, ImVec2(-1, 60));
    }
}

void record_panel(UiState & ui, UiActions & a) {
    input_text("file", ui.record_path);
    if (!ui.recording) {
        if (ImGui::Button("Record")) a.start_recording = true;
        remember(ui, "Record");
    } else {
        ImGui::PushStyleColor(ImGuiCol_Button, ImVec4(0.8f, 0.1f, 0.1f, 1));
        if (ImGui::Button("Stop recording")) a.stop_recording = true;
        ImGui::PopStyleColor();
    }
    if (!ui.record_status.empty()) ImGui::TextWrapped("%s", ui.record_status.c_str());
}

} // namespace

UiActions draw_panels(UiState & ui, const StreamStats & stats) {
    UiActions a;
    ImGui::SetNextWindowPos(ImVec2(10, 10), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(400, 560), ImGuiCond_FirstUseEver);
    ImGui::Begin("AvatarStream");
    const bool stats_open = ImGui::CollapsingHeader("Stats", ImGuiTreeNodeFlags_DefaultOpen);
    remember(ui, "Stats");
    if (stats_open) stats_panel(ui, stats);
    const bool record_open = ImGui::CollapsingHeader("Record", ImGuiTreeNodeFlags_DefaultOpen);
    remember(ui, "RecordSection");
    if (record_open) record_panel(ui, a);
    const bool audio_open = ImGui::CollapsingHeader("Audio", ImGuiTreeNodeFlags_DefaultOpen);
    remember(ui, "Audio");
    if (audio_open) audio_panel(ui, a);
    const bool stream_open = ImGui::CollapsingHeader("Stream");
    remember(ui, "Stream");
    if (stream_open) stream_panel(ui, stats, a);
    ImGui::End();
    return a;
}

} // namespace avs
