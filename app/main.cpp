// avatarstream: the AvatarStream app. By default a window (Vulkan + Dear ImGui) shows the avatar with
// live knobs and stats; `--headless` runs the engine, the audio source and the recorder without one
// (servers, CI, scripted capture). Settings persist in a JSON file between runs; flags override them.
#include "app/app_config.h"
#include "app/audio/audio_source.h"
#include "app/record/recording_session.h"
#include "app/window_app.h"
#include "engine/core/log.h"
#include "engine/runtime/stream.h"

#include <CLI/CLI.hpp>

extern "C" {
#include <libavutil/log.h>
}

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

using namespace avs;

namespace {

std::atomic<bool> g_quit{false};
extern "C" void on_signal(int) { g_quit = true; }  // SIGINT/SIGTERM: finish the recording, then exit

struct Flags {
    std::string settings = default_config_path(), record, audio, audio_file, screenshot;
    int         audio_device = -2;  // -2: from the settings file
    double      seconds = 0;        // stop after this much video was shown (0: until closed or a signal)
    bool        headless = false, no_save = false;
};

int fail(const Status & s) {
    std::fprintf(stderr, "avatarstream: error: %s\n", s.message().c_str());
    return 1;
}

int run_headless(AppConfig & cfg, const Flags & fl) {
    // audio: what the settings ask, falling back to the file or silence with a message
    AudioSourceSpec spec;
    spec.kind = cfg.audio == "file" ? AudioSourceKind::file : cfg.audio == "silence" ? AudioSourceKind::silence : AudioSourceKind::microphone;
    spec.device_index = cfg.audio_device, spec.file_path = cfg.audio_file;
    // A file source is decoded as fast as it is consumed and paces the run: frame k is matched with the
    // file's samples up to (k + 1) / 16 s, whatever the generation speed (batch use, slower than real
    // time). A microphone or silence runs on the wall clock like the window.
    spec.realtime = spec.kind != AudioSourceKind::file;
    // the engine's copy of the samples (audio-driven models generate as their audio arrives)
    auto engine_audio = std::make_shared<AudioRing>(size_t(1) << 18);
    spec.extra_outputs.push_back(engine_audio);
    AudioOpenResult audio = open_audio_with_fallback(spec);
    const bool file_paced = audio.source->kind() == AudioSourceKind::file;
    auto rec_audio = file_paced ? std::make_shared<AudioRing>(size_t(1) << 18) : audio.source->ring_ptr();
    std::printf("audio: %s%s%s\n", audio.source->name().c_str(), audio.message.empty() ? "" : " -- ", audio.message.c_str());
    int64_t fed = 0;  // file-paced: samples handed to the recorder so far
    std::vector<float> abuf(4096);
    auto feed_audio_until = [&](int64_t upto) {  // file-paced: samples [fed, upto) of the file (silence after its end)
        while (fed < upto) {
            const size_t want = size_t(std::min<int64_t>(upto - fed, int64_t(abuf.size())));
            size_t n = audio.source->ring().read(abuf.data(), want);
            if (n == 0) {
                if (!audio.source->finished()) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    continue;
                }
                std::fill_n(abuf.data(), want, 0.0f);
                n = want;
            }
            rec_audio->push(abuf.data(), n);
            fed += int64_t(n);
        }
    };

    auto stream = Stream::start(cfg.stream);
    std::unique_ptr<RecordingSession> rec;
    using clock = std::chrono::steady_clock;
    clock::time_point t0{}, last_print = clock::now();
    bool    started = false;
    int64_t shown = 0;
    const int64_t want = fl.seconds > 0 ? int64_t(fl.seconds * 16.0 + 0.5) : -1;
    Status  err;
    std::vector<float> ebuf(4096);
    int64_t            engine_fed = 0;
    while (!g_quit && (want < 0 || shown < want)) {
        for (size_t n; (n = engine_audio->read(ebuf.data(), ebuf.size())) > 0; engine_fed += int64_t(n)) stream->push_audio(ebuf.data(), int64_t(n));
        if (file_paced && audio.source->finished()) {  // after the file: silence, a few seconds ahead of what is shown
            std::fill(ebuf.begin(), ebuf.end(), 0.0f);
            for (; engine_fed < (shown + 48) * 1000; engine_fed += int64_t(ebuf.size())) stream->push_audio(ebuf.data(), int64_t(ebuf.size()));
        }
        const StreamStats st = stream->stats();
        if (st.state == "error") {
            err = make_error(ErrorCode::internal, "engine: %s", st.message.c_str());
            break;
        }
        if (rec && !rec->error().ok()) {  // e.g. the disk is full: stop now (the file keeps what it has)
            err = rec->error();
            break;
        }
        if (const std::string as = audio.source->status(); as.rfind("error:", 0) == 0) {  // a device or file that failed while running
            err = make_error(ErrorCode::io, "audio (%s): %s", audio.source->name().c_str(), as.c_str() + 7);
            break;
        }
        // present frames at their timestamps, as the window would
        const double now_s = started ? std::chrono::duration<double>(clock::now() - t0).count() : 0.0;
        DecodedFrame f;
        bool got = false;
        while ((file_paced || !started || shown / 16.0 <= now_s) && (want < 0 || shown < want) && stream->pop_frame(f)) {
            got = true;
            if (!started) {
                started = true, t0 = clock::now();
                if (!file_paced) rec_audio->skip(rec_audio->available());  // live audio starts with the first frame
                if (!fl.record.empty()) {
                    RecorderOptions ro;
                    ro.path = fl.record, ro.width = int(f.rgba.dim(1)), ro.height = int(f.rgba.dim(0));
                    auto r = RecordingSession::start(ro, rec_audio);
                    if (!r) {
                        err = r.status().with_context("--record");
                        break;
                    }
                    rec = std::move(r).value();
                    std::printf("recording %s (%s, %dx%d)\n", fl.record.c_str(), rec->codec().c_str(), ro.width, ro.height);
                }
            }
            if (file_paced) feed_audio_until((shown + 1) * 1000);  // 16 kHz / 16 fps
            if (rec) rec->push_frame(f);
            ++shown;
        }
        if (!err.ok()) break;
        if (clock::now() - last_print > std::chrono::seconds(1)) {
            last_print = clock::now();
            std::printf("%s: %lld frames shown, %.1f fps generated (x%.2f real time), chunk %.0f ms, decode %.0f ms, KV %s %.1f MiB%s%s\n",
                        st.state.c_str(), (long long) shown, st.fps, st.realtime_factor, st.chunk_ms, st.decode_ms,
                        st.kv_format.c_str(), double(st.kv_bytes) / 1048576.0, st.message.empty() ? "" : " -- ", st.message.c_str());
            std::fflush(stdout);
        }
        if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // finish in order: the recording first (nothing recorded is lost), then the engine and the audio
    if (rec) {
        const Status rs = rec->stop();
        std::printf("recording %s: %lld frames%s%s\n", rec->path().c_str(), (long long) rec->frames_written(),
                    rs.ok() ? "" : " -- error: ", rs.ok() ? "" : rs.message().c_str());
        if (err.ok() && !rs.ok()) err = rs;
    }
    stream->stop();
    audio.source->stop();
    if (!err.ok()) return fail(err);
    std::printf("done: %lld frames\n", (long long) shown);
    return 0;
}

} // namespace

int main(int argc, char ** argv) {
    Flags fl;
    CLI::App app{"avatarstream: a live avatar driven by audio, generated by an autoregressive video model"};
    StreamSettings o;  // flag values; applied over the settings file only when given
    app.add_option("--settings", fl.settings, "settings file (JSON; created on exit)");
    app.add_flag("--no-save", fl.no_save, "do not write the settings file on exit");
    app.add_flag("--headless", fl.headless, "no window: generate, optionally record, print stats");
    app.add_option("--seconds", fl.seconds, "stop after this many seconds of video were shown")->check(CLI::NonNegativeNumber);
    app.add_option("--screenshot", fl.screenshot, "window: write the last rendered frame to this PPM file at exit");
    app.add_option("--record", fl.record, "record to this MP4 file (H.264 + AAC)");
    auto * o_model  = app.add_option("--model", o.model, "DiT checkpoint (.safetensors, index or directory)");
    auto * o_config = app.add_option("--config", o.config, "default (the embedded avatar) | a preset for random weights (tiny | wan2.1-t2v-1.3b | ...)");
    auto * o_vae    = app.add_option("--vae", o.vae, "decoder weights (safetensors)");
    auto * o_dec    = app.add_option("--decoder", o.decoder, "tiny | wan")->check(CLI::IsMember({"tiny", "wan"}));
    auto * o_be     = app.add_option("--backend", o.backend, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    auto * o_win    = app.add_option("--window", o.window, "KV window in latent frames")->check(CLI::Range(1, 100000));
    auto * o_sinks  = app.add_option("--sinks", o.sinks, "sink frames")->check(CLI::Range(0, 1000));
    auto * o_steps  = app.add_option("--steps", o.steps, "denoising steps")->check(CLI::Range(1, 4));
    auto * o_kv     = app.add_option("--kv-format", o.kv_format, "auto | f32 | bf16 | fp8 | int8 | int4 | nvfp4")
                          ->check(CLI::IsMember({"auto", "f32", "bf16", "fp8", "int8", "int4", "nvfp4"}));
    auto * o_off    = app.add_option("--offload", o.offload, "keep the KV cache in pinned host memory (true | false)");
    auto * o_rope   = app.add_option("--rope-mode", o.rope_mode, "window | absolute")->check(CLI::IsMember({"window", "absolute"}));
    auto * o_seed   = app.add_option("--seed", o.seed, "seed for noise (and random weights)");
    auto * o_ctx    = app.add_option("--context", o.context, "prompt embedding (safetensors 'context')");
    app.add_option("--audio", fl.audio, "mic | file | silence")->check(CLI::IsMember({"mic", "file", "silence"}));
    app.add_option("--audio-file", fl.audio_file, "audio file (used by --audio file, and as the mic's fallback)");
    app.add_option("--audio-device", fl.audio_device, "PortAudio input device index (-1: default)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    }
    auto loaded = load_app_config(fl.settings);
    if (!loaded) return fail(loaded.status().with_context("--settings"));
    AppConfig cfg = loaded.value();
    StreamSettings & s = cfg.stream;
    if (*o_model) s.model = o.model;
    if (*o_config) s.config = o.config, s.model = *o_model ? s.model : "";
    if (*o_vae) s.vae = o.vae;
    if (*o_dec) s.decoder = o.decoder;
    if (*o_be) s.backend = o.backend;
    if (*o_win) s.window = o.window;
    if (*o_sinks) s.sinks = o.sinks;
    if (*o_steps) s.steps = o.steps;
    if (*o_kv) s.kv_format = o.kv_format;
    if (*o_off) s.offload = o.offload;
    if (*o_rope) s.rope_mode = o.rope_mode;
    if (*o_seed) s.seed = o.seed;
    if (*o_ctx) s.context = o.context;
    if (!fl.audio.empty()) cfg.audio = fl.audio;
    if (!fl.audio_file.empty()) cfg.audio_file = fl.audio_file;
    // `--headless --audio-file x.wav` means that file is the source
    if (fl.headless && !fl.audio_file.empty() && fl.audio.empty()) cfg.audio = "file";
    if (fl.audio_device != -2) cfg.audio_device = fl.audio_device;

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    log_set_level(LogLevel::warn);
    av_log_set_level(AV_LOG_ERROR);  // the encoders' per-run statistics are not for the user
    int rc;
    if (fl.headless) {
        rc = run_headless(cfg, fl);
    } else {
        WindowRunOptions wo;
        wo.record = fl.record, wo.seconds = fl.seconds, wo.screenshot = fl.screenshot, wo.quit = &g_quit;
        rc = run_windowed(cfg, wo);
    }
    if (!fl.no_save)
        if (Status st = save_app_config(fl.settings, cfg); !st.ok()) std::fprintf(stderr, "avatarstream: warning: %s\n", st.message().c_str());
    return rc;
}
