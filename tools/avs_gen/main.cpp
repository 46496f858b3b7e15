// avs-gen: generate latents chunk by chunk from the command line (the engine end to end, no UI).
#include "engine/backend/backend.h"
#include "engine/core/log.h"
#include "engine/io/safetensors.h"
#include "engine/model/dit.h"
#include "engine/decode/decoder.h"
#include "engine/runtime/decode_pipeline.h"
#include "engine/runtime/generator.h"
#include "engine/model/default_model.h"
#include "engine/audio/wav.h"
#if defined(AVS_HAVE_FFTW3F)
#include "engine/audio/audio_windows.h"
#endif
#include "engine/runtime/trace.h"

#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <chrono>
#include <filesystem>

using namespace avs;

namespace {

struct Options {
    std::string model, config, context, noise, dump_latents, backend = "auto";
    std::string decoder = "none", vae, dump_frames, trace, audio;
    int         decode_in_flight = 2;
    bool        random_init = false;
    bool        offload = false;
    uint64_t    seed = 0;
    int         height = 0, width = 0;  // pixels; 0 = the config's default
    int         chunks = 1, chunk_frames = 3, steps = 4, window = 21, sinks = 0;
    double      shift = 5.0;
    std::string rope_mode = "absolute", cache_mode = "commit", kv_format = "auto", log_level = "info";
};

double peak_rss_mib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

int fail(const Status & s) {
    std::fprintf(stderr, "avs-gen: error: %s\n", s.message().c_str());
    return 1;
}

Result<Tensor> load_named(const std::string & path, const std::string & name, const char * flag) {
    auto f = SafetensorsFile::open(path);
    if (!f) return f.status().with_context(std::string(flag));
    const TensorInfo * info = f.value()->find(name);
    if (!info) return make_error(ErrorCode::missing, "%s %s: no tensor named '%s' in the file", flag, path.c_str(), name.c_str());
    return read_tensor(*info, DType::f32);
}

int run(const Options & o) {
    LogLevel level = LogLevel::info;
    log_level_from_name(o.log_level.c_str(), level);  // CLI11 already restricted the choices
    log_set_level(level);

    auto backend_r = make_backend(o.backend);
    if (!backend_r) return fail(backend_r.status().with_context("--backend"));
    std::unique_ptr<Backend> be = std::move(backend_r).value();

    // ---- model ----
    std::unique_ptr<Dit> dit;
    if (o.random_init) {
        auto cfg = config_resolve(o.config.empty() ? "tiny" : o.config);
        if (!cfg) return fail(cfg.status().with_context("--config"));
        auto d = Dit::random_init(*be, cfg.value(), o.seed);
        if (!d) return fail(d.status());
        dit = std::move(d).value();
    } else {
        std::unique_ptr<ModelConfig> cfg;
        if (!o.config.empty()) {
            auto c = config_resolve(o.config);
            if (!c) return fail(c.status().with_context("--config"));
            cfg = std::make_unique<ModelConfig>(c.value());
        }
        auto d = Dit::load(*be, o.model, cfg.get());
        if (!d) return fail(d.status().with_context("--model " + o.model));
        dit = std::move(d).value();
    }
    const ModelConfig & mc = dit->config();
    std::printf("model: %s, dim %d, %d layers, %d heads, %.1f M params, weights %.1f MiB on %s\n", mc.name.c_str(), mc.dim,
                mc.layers, mc.heads, double(mc.param_count()) / 1e6, double(dit->weight_bytes()) / 1048576.0, be->name());

    // ---- audio (audio-conditioned models): the whole recording's features, a window per latent ----
#if defined(AVS_HAVE_FFTW3F)
    std::unique_ptr<ClipAudio> clip;
    if (!o.audio.empty()) {
        if (mc.conditioning != Conditioning::audio)
            return fail(make_error(ErrorCode::invalid_argument, "--audio: model '%s' is %s-conditioned", mc.name.c_str(),
                                   conditioning_name(mc.conditioning)));
        auto wav = read_wav(o.audio);
        if (!wav) return fail(wav.status().with_context("--audio"));
        LogMelConfig lm;
        lm.n_mels = mc.audio_mels;
        auto c = ClipAudio::create(wav.value().samples, wav.value().sample_rate, mc.audio_window, lm);
        if (!c) return fail(c.status().with_context("--audio " + o.audio));
        clip = std::make_unique<ClipAudio>(std::move(c).value());
        std::printf("audio: %s, %.2f s, %lld log-mel frames\n", o.audio.c_str(), clip->seconds(), (long long) clip->mel_frames());
    } else if (mc.conditioning == Conditioning::audio) {
        std::printf("audio: none given (--audio FILE.wav): the model hears silence\n");
    }
#else
    if (!o.audio.empty()) return fail(make_error(ErrorCode::unsupported, "--audio: built without FFTW (no log-mel features)"));
#endif

    if (!o.context.empty()) {
        auto ctx = load_named(o.context, "context", "--context");
        if (!ctx) return fail(ctx.status());
        if (auto s = dit->set_context(ctx.value()); !s.ok()) return fail(s.with_context("--context " + o.context));
    }

    // ---- generator ----
    const bool small = mc.dim <= 256;  // tiny-class configs default to a small frame
    const int  H = o.height ? o.height : (small ? 64 : 480), W = o.width ? o.width : (small ? 64 : 832);
    if (H % 8 || W % 8) return fail(make_error(ErrorCode::invalid_argument, "--height/--width must be multiples of 8 (got %dx%d)", H, W));
    GenConfig g;
    g.chunk_frames           = o.chunk_frames;
    g.steps                  = o.steps;
    g.shift                  = o.shift;
    g.height_latent          = H / 8;
    g.width_latent           = W / 8;
    g.cache.window           = o.window;
    g.cache.sinks            = o.sinks;
    g.cache.rope_mode        = o.rope_mode == "window" ? RopeMode::window : RopeMode::absolute;
    g.cache.mode             = o.cache_mode == "step" ? CacheMode::step : CacheMode::commit;
    // auto: the backend's activation dtype (f32 on the CPU twin, bf16 on CUDA)
    if (o.kv_format == "auto") {
        g.cache.format = be->act_dtype() == DType::bf16 ? KvFormat::bf16 : KvFormat::f32;
    } else {
        auto f = kv_format_parse(o.kv_format);
        if (!f) return fail(f.status().with_context("--kv-format"));
        g.cache.format = f.value();
    }
    g.cache.offload          = o.offload;
    g.cache.max_total_frames = int64_t(o.chunks) * o.chunk_frames;
    auto gen_r = Generator::create(*dit, g);
    if (!gen_r) return fail(gen_r.status().with_context("--window/--sinks/--chunk-frames/--steps/--height/--width"));
    Generator & gen = *gen_r.value();
#if defined(AVS_HAVE_FFTW3F)
    if (clip) gen.set_audio_source([&clip](int64_t f0, int n, const Tensor & w) { return clip->fill(f0, n, w); });
#endif

    std::unique_ptr<NoiseSource> noise;
    if (!o.noise.empty()) {
        auto n = load_named(o.noise, "noise", "--noise");
        if (!n) return fail(n.status());
        const Tensor & t = n.value();
        const Shape want{o.chunks, o.steps, mc.in_channels, o.chunk_frames, g.height_latent, g.width_latent};
        if (t.ndim() != 6 || t.dim(0) < o.chunks || t.dim(1) < o.steps || t.dim(2) != want[2] || t.dim(3) != want[3] ||
            t.dim(4) != want[4] || t.dim(5) != want[5])
            return fail(make_error(ErrorCode::shape, "--noise %s: tensor 'noise' has shape %s, expected %s", o.noise.c_str(),
                                   t.shape().str().c_str(), want.str().c_str()));
        noise = std::make_unique<TensorNoise>(t);
    } else {
        noise = std::make_unique<SeededNoise>(o.seed);
    }

    std::printf("run: %dx%d px (latent %dx%d), %d chunks x %d frames, %d steps (t = ", W, H, g.width_latent, g.height_latent,
                o.chunks, o.chunk_frames, o.steps);
    for (size_t i = 0; i < gen.timesteps().size(); ++i) std::printf("%s%.2f", i ? ", " : "", gen.timesteps()[i]);
    const KvMemory km0 = gen.cache().memory();
    std::printf("), window %d, sinks %d, rope %s, cache %s\n", o.window, o.sinks, o.rope_mode.c_str(), o.cache_mode.c_str());
    std::printf("kv cache: %s, %.1f MiB (bf16 would be %.1f MiB), %s: %.1f MiB on the device%s\n", kv_format_name(g.cache.format),
                double(km0.store_bytes) / 1048576.0, double(km0.bf16_bytes) / 1048576.0, o.offload ? "offloaded to pinned host memory" : "resident",
                double(km0.device_bytes) / 1048576.0, o.offload ? " (two staging buffers)" : "");

    // ---- decoder: its own backend (a second stream), fed through the pipeline's hook ----
    std::unique_ptr<DecodePipeline> pipe;
    if (o.decoder != "none") {
        if (mc.out_channels != 16)
            return fail(make_error(ErrorCode::invalid_argument, "--decoder %s: the model makes %d latent channels, decoders take 16",
                                   o.decoder.c_str(), mc.out_channels));
        if (o.vae.empty() && !o.random_init)
            return fail(make_error(ErrorCode::invalid_argument, "--decoder %s needs --vae FILE (or --random-init for random decoder weights)",
                                   o.decoder.c_str()));
        auto dbe = make_backend(be->name());
        if (!dbe) return fail(dbe.status().with_context("decode backend"));
        const DecoderKind kind = o.decoder == "wan" ? DecoderKind::wan : DecoderKind::tiny;
        auto dec = load_decoder(*dbe.value(), kind, o.vae, o.vae.empty() ? o.seed + 1 : 0);
        if (!dec) return fail(dec.status().with_context(o.vae.empty() ? "--decoder" : "--vae " + o.vae));
        std::printf("decoder: %s, weights %.1f MiB on %s\n", dec.value()->name(), double(dec.value()->weight_bytes()) / 1048576.0,
                    dbe.value()->name());
        DecodePipeline::Options po;
        po.max_in_flight = o.decode_in_flight;
        po.max_ready     = size_t(1) << 30;  // avs-gen consumes every frame
        auto p = DecodePipeline::create(*be, std::move(dbe).value(), std::move(dec).value(),
                                        Shape{mc.out_channels, o.chunk_frames, g.height_latent, g.width_latent}, po);
        if (!p) return fail(p.status().with_context("--decoder"));
        pipe = std::move(p).value();
        gen.set_latents_hook([&pipe](const Tensor & lat) { return pipe->submit(lat); });
    }
    std::vector<DecodedFrame> frames_out;
    auto drain = [&] {
        DecodedFrame f;
        while (pipe && pipe->pop(f))
            if (!o.dump_frames.empty()) frames_out.push_back(std::move(f));
    };
    const auto wall0 = std::chrono::steady_clock::now();

    // the whole run's latents are kept only to be written (an hour at 480x832 is ~6 GB); without
    // --dump-latents they stay on the device (the decoder reads them there) and nothing is downloaded
    const int64_t total_frames = int64_t(o.chunks) * o.chunk_frames;
    const bool    keep         = !o.dump_latents.empty();
    Tensor        latents, chunk;
    if (keep) {
        latents = Tensor::host(DType::f32, Shape{mc.out_channels, total_frames, g.height_latent, g.width_latent});
        chunk   = Tensor::host(DType::f32, Shape{mc.out_channels, o.chunk_frames, g.height_latent, g.width_latent});
        if (!latents.defined() || !chunk.defined())
            return fail(make_error(ErrorCode::internal, "out of memory for --dump-latents (%lld latent frames)", (long long) total_frames));
    }
    std::vector<double> totals;
    for (int c = 0; c < o.chunks; ++c) {
        ChunkStats st;
        // The last chunk's commit pass writes K/V nobody reads: skip it.
        if (auto s = gen.next_chunk(*noise, chunk, &st, c + 1 < o.chunks); !s.ok()) return fail(s);
        for (int64_t ch = 0; keep && ch < mc.out_channels; ++ch)
            for (int f = 0; f < o.chunk_frames; ++f)
                std::copy_n(chunk.data<float>() + (ch * o.chunk_frames + f) * g.height_latent * g.width_latent,
                            g.height_latent * g.width_latent,
                            latents.data<float>() + (ch * total_frames + int64_t(c) * o.chunk_frames + f) * g.height_latent * g.width_latent);
        std::printf("chunk %d: steps", c);
        for (double ms : st.step_ms) std::printf(" %.1f", ms);
        std::printf(" ms, commit %.1f ms, total %.1f ms (%.2f latent frames/s)\n", st.commit_ms, st.total_ms,
                    1000.0 * o.chunk_frames / st.total_ms);
        totals.push_back(st.total_ms);
        if (pipe) {
            if (auto s = pipe->add_dit_span("chunk " + std::to_string(c), *gen.chunk_begin_event(), *gen.chunk_end_event()); !s.ok())
                return fail(s);
            drain();
        }
    }
    if (pipe) {
        if (auto s = pipe->flush(); !s.ok()) return fail(s);
        drain();
        const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
        DecodeStats ds = pipe->stats();
        std::vector<double> dms = ds.chunk_ms;
        std::sort(dms.begin(), dms.end());
        const auto spans = pipe->spans();
        std::printf("decode: %lld frames from %lld chunks, median %.1f ms per chunk, %.0f%% hidden behind DiT work, "
                    "%.2f frames/s end to end\n", (long long) ds.frames, (long long) ds.chunks, dms.empty() ? 0.0 : dms[dms.size() / 2],
                    100.0 * decode_hidden_fraction(spans), double(ds.frames) / wall_s);
        if (!o.trace.empty()) {
            if (auto s = write_chrome_trace(o.trace, spans); !s.ok()) return fail(s.with_context("--trace"));
            std::printf("wrote %s (%zu spans)\n", o.trace.c_str(), spans.size());
        }
        if (!o.dump_frames.empty()) {
            if (frames_out.empty()) return fail(make_error(ErrorCode::internal, "--dump-frames: no frames were decoded"));
            const int64_t N = int64_t(frames_out.size()), FH = frames_out[0].rgba.dim(0), FW = frames_out[0].rgba.dim(1);
            Tensor rgb = Tensor::host(DType::u8, Shape{N, FH, FW, 3});
            if (!rgb.defined()) return fail(make_error(ErrorCode::internal, "--dump-frames: out of memory for %lld frames", (long long) N));
            for (int64_t i = 0; i < N; ++i) {
                const uint8_t * src = frames_out[size_t(i)].rgba.data<uint8_t>();
                uint8_t *       dst = rgb.data<uint8_t>() + i * FH * FW * 3;
                for (int64_t p = 0; p < FH * FW; ++p) dst[3 * p] = src[4 * p], dst[3 * p + 1] = src[4 * p + 1], dst[3 * p + 2] = src[4 * p + 2];
            }
            if (auto s = write_safetensors(o.dump_frames, {{"frames", rgb}}, {{"fps", "16"}, {"decoder", o.decoder}}); !s.ok())
                return fail(s.with_context("--dump-frames"));
            std::printf("wrote %s (frames %s)\n", o.dump_frames.c_str(), rgb.shape().str().c_str());
        }
    }
    std::sort(totals.begin(), totals.end());
    std::printf("summary: median chunk %.1f ms, backend peak %.1f MiB, process peak RSS %.1f MiB\n", totals[totals.size() / 2],
                double(be->peak_bytes()) / 1048576.0, peak_rss_mib());
    const KvMemory km = gen.cache().memory();
    std::printf("kv memory: %s store %.1f MiB, device %.1f MiB (staging %.1f MiB), host %.1f MiB, moved H2D %.1f MiB D2H %.1f MiB\n",
                kv_format_name(g.cache.format), double(km.store_bytes) / 1048576.0, double(km.device_bytes) / 1048576.0,
                double(km.staging_bytes) / 1048576.0, double(km.host_bytes) / 1048576.0, km.h2d_bytes / 1048576.0, km.d2h_bytes / 1048576.0);

    if (!o.dump_latents.empty()) {
        std::map<std::string, std::string> meta = {{"chunks", std::to_string(o.chunks)},
                                                   {"chunk_frames", std::to_string(o.chunk_frames)},
                                                   {"steps", std::to_string(o.steps)},
                                                   {"window", std::to_string(o.window)},
                                                   {"sinks", std::to_string(o.sinks)},
                                                   {"rope_mode", o.rope_mode},
                                                   {"cache_mode", o.cache_mode}};
        if (auto s = write_safetensors(o.dump_latents, {{"latents", latents}}, meta); !s.ok())
            return fail(s.with_context("--dump-latents"));
        std::printf("wrote %s (latents %s)\n", o.dump_latents.c_str(), latents.shape().str().c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char ** argv) {
    Options o;
    CLI::App app{"avs-gen: autoregressive Wan2.1-family video latents, chunk by chunk over a ring KV cache"};
    auto * model = app.add_option("--model", o.model, "checkpoint: .safetensors file, *.index.json, or a directory")->check(CLI::ExistingPath);
    auto * rnd   = app.add_flag("--random-init", o.random_init, "random weights instead of a checkpoint (needs --config)");
    model->excludes(rnd);
    app.add_option("--config", o.config, "model config: tiny | wan2.1-t2v-1.3b | wan2.1-t2v-14b | FILE.json");
    app.add_option("--seed", o.seed, "seed for random weights and noise");
    app.add_option("--backend", o.backend, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    app.add_option("--context", o.context, "safetensors with tensor 'context' [L, text_dim] (default: zero context)")->check(CLI::ExistingFile);
    app.add_option("--height", o.height, "frame height in pixels (multiple of 16)")->check(CLI::PositiveNumber);
    app.add_option("--width", o.width, "frame width in pixels (multiple of 16)")->check(CLI::PositiveNumber);
    app.add_option("--chunks", o.chunks, "chunks to generate")->check(CLI::Range(1, 1000000));
    app.add_option("--chunk-frames", o.chunk_frames, "latent frames per chunk")->check(CLI::Range(1, 64));
    app.add_option("--steps", o.steps, "denoising steps per chunk")->check(CLI::Range(1, 4));
    app.add_option("--shift", o.shift, "timestep shift")->check(CLI::Range(0.01, 100.0));
    app.add_option("--window", o.window, "rolling window in latent frames, including the current chunk")->check(CLI::Range(1, 100000));
    app.add_option("--sinks", o.sinks, "sink frames kept forever")->check(CLI::Range(0, 1000));
    app.add_option("--rope-mode", o.rope_mode, "absolute | window")->check(CLI::IsMember({"absolute", "window"}));
    app.add_option("--cache-mode", o.cache_mode, "commit | step")->check(CLI::IsMember({"commit", "step"}));
    app.add_option("--kv-format", o.kv_format, "KV cache format: auto | f32 | bf16 | fp8 | int8 | int4 | nvfp4 (auto: f32 on cpu, bf16 on cuda)")
        ->check(CLI::IsMember({"auto", "f32", "bf16", "fp8", "int8", "int4", "nvfp4"}));
    app.add_flag("--offload", o.offload, "keep the KV cache in pinned host memory, prefetched layer by layer");
    app.add_option("--noise", o.noise, "safetensors with 'noise' [chunks, steps, 16, chunk_frames, h, w]")->check(CLI::ExistingFile);
    app.add_option("--dump-latents", o.dump_latents, "write 'latents' [16, frames, h, w] to this safetensors file");
    app.add_option("--decoder", o.decoder, "decode latents to pixels: none | tiny (TAEHV) | wan (Wan2.1 VAE)")
        ->check(CLI::IsMember({"none", "tiny", "wan"}));
    app.add_option("--vae", o.vae, "decoder weights (safetensors, tools/convert_*.py); random with --random-init")->check(CLI::ExistingFile);
    app.add_option("--decode-in-flight", o.decode_in_flight, "chunks queued for decoding before the DiT waits")->check(CLI::Range(1, 16));
    app.add_option("--dump-frames", o.dump_frames, "write 'frames' uint8 [N, H, W, 3] to this safetensors file (needs --decoder)");
    app.add_option("--trace", o.trace, "write a Chrome trace (JSON) of the DiT and decode stream spans (needs --decoder)");
    app.add_option("--audio", o.audio, "audio-conditioned models: a WAV file (16 kHz) that drives the avatar")->check(CLI::ExistingFile);
    app.add_option("--log-level", o.log_level, "debug | info | warn | error")->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    }
    if (!o.random_init && o.model.empty()) {
        // the embedded default avatar, with the settings its config recommends unless given
        auto dm = default_model();
        if (!dm) {
            std::fprintf(stderr, "avs-gen: error: no --model and %s\n", dm.status().message().c_str());
            return 2;
        }
        auto d = inference_defaults(dm.value().config);
        if (!d) {
            std::fprintf(stderr, "avs-gen: error: %s\n", d.status().message().c_str());
            return 2;
        }
        const InferenceDefaults & df = d.value();
        o.model = dm.value().dit;
        if (o.config.empty()) o.config = dm.value().config;
        if (!app.count("--decoder")) o.decoder = "tiny";
        if (o.vae.empty() && o.decoder == "tiny") o.vae = dm.value().decoder;
        if (!app.count("--steps") && df.steps) o.steps = *df.steps;
        if (!app.count("--shift") && df.shift) o.shift = *df.shift;
        if (!app.count("--window") && df.window) o.window = *df.window;
        if (!app.count("--sinks") && df.sinks) o.sinks = *df.sinks;
        if (!app.count("--chunk-frames") && df.chunk_frames) o.chunk_frames = *df.chunk_frames;
        if (!app.count("--rope-mode") && df.rope_mode) o.rope_mode = *df.rope_mode;
        if (!app.count("--height") && df.height) o.height = *df.height;
        if (!app.count("--width") && df.width) o.width = *df.width;
        std::printf("model: the embedded default avatar (%s)\n", dm.value().dir.c_str());
    }
    if (o.decoder == "none" && (!o.dump_frames.empty() || !o.trace.empty() || app.count("--vae"))) {
        std::fprintf(stderr, "avs-gen: error: --dump-frames, --trace and --vae need --decoder tiny|wan\n");
        return 2;
    }
    // outputs are written after the run: a folder that is not there fails now, not after an hour
    for (auto [flag, path] : {std::pair<const char *, const std::string *>{"--dump-latents", &o.dump_latents}, {"--dump-frames", &o.dump_frames},
                              {"--trace", &o.trace}}) {
        const std::filesystem::path dir = std::filesystem::path(*path).parent_path();
        if (!path->empty() && !dir.empty() && !std::filesystem::is_directory(dir)) {
            std::fprintf(stderr, "avs-gen: error: %s %s: the folder %s does not exist\n", flag, path->c_str(), dir.c_str());
            return 2;
        }
    }
    if (!o.dump_latents.empty() && o.dump_latents == o.dump_frames) {
        std::fprintf(stderr, "avs-gen: error: --dump-latents and --dump-frames name the same file %s\n", o.dump_latents.c_str());
        return 2;
    }
    return run(o);
}
