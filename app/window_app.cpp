#include "app/window_app.h"

#include "app/audio/audio_source.h"
#include "app/gpu/renderer.h"
#include "app/gpu/window.h"
#include "app/record/record_path.h"
#include "app/record/recording_session.h"
#include "app/ui/panels.h"
#include "engine/runtime/stream.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace avs {

namespace {

constexpr double kFps = 16.0;

AudioOpenResult open_audio(const AppConfig & c, const std::shared_ptr<AudioRing> & rec_ring) {
    AudioSourceSpec spec;
    spec.kind = c.audio == "file" ? AudioSourceKind::file : c.audio == "silence" ? AudioSourceKind::silence : AudioSourceKind::microphone;
    spec.device_index = c.audio_device, spec.file_path = c.audio_file, spec.loop = true;
    spec.extra_outputs.push_back(rec_ring);  // the recorder keeps reading the same ring across sources
    return open_audio_with_fallback(spec);
}

Status write_ppm(const std::string & path, const RgbaImage & img) {
    std::ofstream f(path, std::ios::binary);
    if (!f) return make_error(ErrorCode::io, "%s: cannot write", path.c_str());
    f << "P6\n" << img.width << " " << img.height << "\n255\n";
    for (size_t i = 0; i < img.pixels.size(); i += 4) f.write(reinterpret_cast<const char *>(&img.pixels[i]), 3);
    return f.good() ? Status{} : make_error(ErrorCode::io, "%s: write failed", path.c_str());
}

} // namespace

int run_windowed(AppConfig & cfg, const WindowRunOptions & opt) {
    auto win = Window::create({});
    if (!win) {
        std::fprintf(stderr, "avatarstream: error: %s (or run with --headless)\n", win.status().message().c_str());
        return 1;
    }
    RendererOptions ro;
    ro.vsync = cfg.vsync, ro.enable_readback = !opt.screenshot.empty();
    auto ren = Renderer::create(*win.value(), ro);
    if (!ren) {
        std::fprintf(stderr, "avatarstream: error: %s (or run with --headless)\n", ren.status().message().c_str());
        return 1;
    }
    Window & window = *win.value();
    Renderer & renderer = *ren.value();

    auto rec_ring = std::make_shared<AudioRing>(size_t(1) << 18);
    AudioOpenResult audio = open_audio(cfg, rec_ring);
    UiState ui;
    ui.edit = cfg;
    ui.audio_name = audio.source->name(), ui.audio_message = audio.message;
    if (auto d = list_input_devices(); d) ui.devices = d.value();
    if (!opt.record.empty()) ui.record_path = opt.record;
    bool want_record = !opt.record.empty();

    auto stream = Stream::start(cfg.stream);
    std::unique_ptr<RecordingSession> rec;
    auto stop_recording = [&] {
        if (!rec) return;
        const Status s = rec->stop();
        ui.record_status = rec->path() + ": " + std::to_string(rec->frames_written()) + " frames" +
                           (s.ok() ? "" : " -- error: " + s.message());
        rec.reset();
        ui.recording = false;
    };

    // Presentation clock: frame k is due at t0 + (k - k0) / 16 s. When frames arrive late the clock
    // waits for them (re-anchors) instead of skipping ahead, and the lag is shown as "behind".
    using clock = std::chrono::steady_clock;
    bool              anchored = false;
    clock::time_point t0{};
    int64_t           k0 = 0, shown = 0;
    DecodedFrame      pending, current;
    bool              have_pending = false, have_current = false;
    double            fps_ema = 0;
    clock::time_point last_present = clock::now();
    int rc = 0;
    std::vector<float> abuf(4096);

    while (!window.should_close() && !(opt.quit && opt.quit->load())) {
        window.poll_events();
        const auto now = clock::now();
        bool fresh = false;
        for (;;) {
            if (!have_pending && !stream->pop_frame(pending)) break;
            have_pending = true;
            if (!anchored) anchored = true, t0 = now, k0 = pending.index;
            const double due = double(pending.index - k0) / kFps;
            const double elapsed = std::chrono::duration<double>(now - t0).count();
            if (due > elapsed) break;  // not yet
            if (elapsed - due > 0.25) {  // late: wait for the stream rather than rushing through frames
                ui.behind_s += elapsed - due;
                t0 += std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(elapsed - due));
            }
            current = std::move(pending), have_current = true, have_pending = false, fresh = true;
            ++shown;
            const int w = int(current.rgba.dim(1)), h = int(current.rgba.dim(0));
            std::string rolled;  // a new frame size (another model or resolution) continues in a new file
            if (rec && (w != rec->width() || h != rec->height())) {
                rolled = rec->path();
                stop_recording();
                want_record = true;
            }
            if (want_record && !rec) {
                RecorderOptions o;
                // never over an earlier take: "name.mp4" exists -> "name-2.mp4", ...
                o.path = unique_record_path(cfg.record_dir, ui.record_path), o.width = w, o.height = h;
                auto r = RecordingSession::start(o, rec_ring);
                if (r) {
                    rec = std::move(r).value(), ui.recording = true;
                    ui.record_status = "recording " + o.path + " (" + rec->codec() + ", " + std::to_string(w) + "x" + std::to_string(h) + ")";
                    if (!rolled.empty()) ui.record_status += "; the frame size changed, so " + rolled + " was finished";
                } else {
                    ui.record_status = r.status().message();
                }
                want_record = false;
            }
            if (rec) rec->push_frame(current);
            const double dt = std::chrono::duration<double>(now - last_present).count();
            last_present = now;
            if (dt > 0) fps_ema = fps_ema == 0 ? 1.0 / dt : 0.9 * fps_ema + 0.1 / dt;
        }
        ui.presented_fps = fps_ema;
        ui.level = audio.source->level().read();
        ui.audio_status = audio.source->status();
        if (ui.audio_status.rfind("error:", 0) == 0 && audio.source->kind() != AudioSourceKind::silence) {
            // failed while running (device unplugged, a file that stopped decoding): the avatar goes on,
            // on silence, and the panel says why
            const std::string why = ui.audio_status;
            audio.source->stop();
            AppConfig silent = cfg;
            silent.audio = "silence";
            audio = open_audio(silent, rec_ring);
            ui.audio_name = audio.source->name(), ui.audio_message = why + " -- switched to silence";
        }
        // the engine hears what the source delivers (audio-driven models generate as it arrives)
        for (size_t n; (n = audio.source->ring().read(abuf.data(), abuf.size())) > 0;) stream->push_audio(abuf.data(), int64_t(n));
        if (rec && !rec->error().ok()) stop_recording();

        VideoFrameView view;
        if (fresh && have_current) view = {current.rgba.data<uint8_t>(), int(current.rgba.dim(1)), int(current.rgba.dim(0))};
        UiActions act;
        const StreamStats st = stream->stats();
        auto r = renderer.render(fresh ? &view : nullptr, [&] { act = draw_panels(ui, st); });
        if (!r) {
            std::fprintf(stderr, "avatarstream: error: %s\n", r.status().message().c_str());
            rc = 1;
            break;
        }
        if (act.apply_stream) {
            cfg.stream = ui.edit.stream;
            stream->apply(cfg.stream);
        }
        if (act.refresh_devices) {
            // PortAudio lists devices once per initialisation and an open microphone holds one: close it,
            // list afresh, reopen the same device (by name: indices move as devices come and go)
            const bool  mic = audio.source->kind() == AudioSourceKind::microphone;
            std::string open_name;
            for (const AudioInputDevice & d : ui.devices)
                if (d.index == cfg.audio_device) open_name = d.name;
            if (mic) audio.source->stop(), audio.source.reset();
            if (auto d = list_input_devices(); d) ui.devices = d.value();
            if (mic) {
                for (const AudioInputDevice & d : ui.devices)
                    if (!open_name.empty() && d.name == open_name) cfg.audio_device = ui.edit.audio_device = d.index;
                audio = open_audio(cfg, rec_ring);
                ui.audio_name = audio.source->name(), ui.audio_message = audio.message;
            }
        }
        if (act.reopen_audio) {
            audio.source->stop();
            cfg.audio = ui.edit.audio, cfg.audio_device = ui.edit.audio_device, cfg.audio_file = ui.edit.audio_file;
            audio = open_audio(cfg, rec_ring);
            ui.audio_name = audio.source->name(), ui.audio_message = audio.message;
        }
        if (act.start_recording) want_record = true;
        if (act.stop_recording) stop_recording();
        if (opt.seconds > 0 && double(shown) >= opt.seconds * kFps) break;
        if (!fresh && r.value() == RenderOutcome::drawn && !window.minimized())
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // vsync off or no new frame: do not spin
    }
    // nothing recorded is lost: finish the file first
    stop_recording();
    if (!ui.record_status.empty()) std::printf("%s\n", ui.record_status.c_str());
    if (!opt.screenshot.empty()) {
        auto img = renderer.read_back_rgba();
        if (!img) std::fprintf(stderr, "avatarstream: screenshot: %s\n", img.status().message().c_str());
        else if (Status s = write_ppm(opt.screenshot, img.value()); !s.ok()) std::fprintf(stderr, "avatarstream: %s\n", s.message().c_str());
        if (have_current) {  // and the engine frame it shows, for comparison
            RgbaImage fr;
            fr.width = int(current.rgba.dim(1)), fr.height = int(current.rgba.dim(0));
            fr.pixels.assign(current.rgba.data<uint8_t>(), current.rgba.data<uint8_t>() + current.rgba.numel());
            if (Status s = write_ppm(opt.screenshot + ".frame.ppm", fr); !s.ok()) std::fprintf(stderr, "avatarstream: %s\n", s.message().c_str());
        }
    }
    stream->stop();
    audio.source->stop();
    cfg.stream = ui.edit.stream;
    cfg.audio = ui.edit.audio, cfg.audio_device = ui.edit.audio_device, cfg.audio_file = ui.edit.audio_file;
    std::printf("shown %lld frames\n", (long long) shown);
    return rc;
}

} // namespace avs
