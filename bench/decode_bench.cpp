// avs-decode-bench: the decoders' benchmark (issue 5 part 6). Random weights, so it needs no files:
//  1. each decoder alone: median ms per 3-latent chunk at 480x832 on its own backend, in a continuing
//     stream (streaming state warm), with the display conversion to RGBA8;
//  2. a full stream: the 1.3B DiT (window 21, 4 steps + commit) feeding the DecodePipeline, pixels out:
//     end-to-end frames per second and the share of decode time hidden behind DiT work (CUDA events).
// Writes the result file bench/results/<date>-<gpu>-decode.json with exactly the measured metrics.
#include "engine/backend/backend.h"
#include "engine/core/log.h"
#include "engine/decode/decoder.h"
#include "engine/model/dit.h"
#include "engine/runtime/decode_pipeline.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/trace.h"
#if defined(AVS_HAVE_CUDA)
#include "engine/backend/cuda/cuda_device.h"
#endif

#include "bench/bench_util.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <regex>

using namespace avs;
using json = nlohmann::json;
using avs::bench::iso_now_utc;
using avs::bench::median;

namespace {

struct Options {
    std::string backend = "auto", out, commit, dit_config = "wan2.1-t2v-1.3b", decoders = "tiny,wan", trace;
    int         height = 480, width = 832, chunk_frames = 3, chunks = 5, stream_chunks = 6, window = 21, in_flight = 2;
    bool        conv = true;
};



int fail(const Status & s) {
    std::fprintf(stderr, "avs-decode-bench: error: %s\n", s.message().c_str());
    return 1;
}

// Decoder alone: a stream of chunks, each timed between two events on the decoder's backend.
Result<double> decoder_alone(const std::string & backend, DecoderKind kind, const Options & o, json & cfg) {
    AVS_ASSIGN_OR_RETURN(auto be, make_backend(backend));
    AVS_ASSIGN_OR_RETURN(auto dec, load_decoder(*be, kind, "", 7));
    const int64_t h = o.height / 8, w = o.width / 8;
    AVS_ASSIGN_OR_RETURN(Tensor lat, be->alloc(DType::f32, Shape{16, o.chunk_frames, h, w}));
    Tensor host = Tensor::host(DType::f32, lat.shape());
    for (int64_t i = 0; i < host.numel(); ++i) host.data<float>()[i] = float((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    AVS_TRY(be->upload(lat, host));
    AVS_ASSIGN_OR_RETURN(Tensor rgba, be->alloc(DType::u8, Shape{o.height, o.width, 4}));
    std::vector<double> ms;
    int64_t frames_per_chunk = 0;
    for (int c = 0; c < o.chunks + 1; ++c) {  // chunk 0 warms up (first-latent special cases, allocation)
        AVS_ASSIGN_OR_RETURN(auto e0, be->record_event());
        int64_t n = 0;
        for (int64_t f = 0; f < o.chunk_frames; ++f) {
            std::vector<Tensor> frames;
            AVS_TRY(dec->push(lat, f, frames));
            for (const Tensor & fr : frames) AVS_TRY(be->to_rgba8(rgba, fr, dec->out_scale(), dec->out_offset()));
            n += int64_t(frames.size());
        }
        AVS_ASSIGN_OR_RETURN(auto e1, be->record_event());
        AVS_TRY(be->sync_event(*e1));
        AVS_ASSIGN_OR_RETURN(double t, be->elapsed_ms(*e0, *e1));
        if (c > 0) ms.push_back(t), frames_per_chunk = n;
    }
    cfg["weight_mib"]       = double(dec->weight_bytes()) / 1048576.0;
    cfg["state_mib"]        = double(dec->state_bytes()) / 1048576.0;
    cfg["frames_per_chunk"] = frames_per_chunk;
    cfg["chunk_ms"]         = ms;
    std::printf("  %-6s decoder alone: median %.1f ms per %d-latent chunk (%lld frames), weights %.1f MiB, state %.1f MiB\n",
                dec->name(), median(ms), o.chunk_frames, (long long) frames_per_chunk, double(dec->weight_bytes()) / 1048576.0,
                double(dec->state_bytes()) / 1048576.0);
    return median(ms);
}

// The decoders' main convolution shapes alone (implicit GEMM), for comparison with cuDNN
// (tools/reference/bench_conv_torch.py times the same list).
struct ConvShape {
    const char * what;
    int64_t      cin, cout, h, w, t;
    int          kt, kh, kw;
};
const ConvShape kConvShapes[] = {
    {"wan 384ch 60x104", 384, 384, 60, 104, 1, 3, 3, 3},   {"wan 384ch 120x208", 384, 384, 120, 208, 2, 3, 3, 3},
    {"wan 192ch 240x416", 192, 192, 240, 416, 4, 3, 3, 3}, {"wan 96ch 480x832", 96, 96, 480, 832, 4, 3, 3, 3},
    {"tiny 64ch 480x832", 64, 64, 480, 832, 1, 1, 3, 3},   {"tiny memblock 512->256 60x104", 512, 256, 60, 104, 1, 1, 3, 3},
};

Status conv_alone(const std::string & backend, json & out) {
    AVS_ASSIGN_OR_RETURN(auto be, make_backend(backend));
    for (const ConvShape & c : kConvShapes) {
        const int64_t K = int64_t(c.kt) * c.kh * c.kw * c.cin;
        std::vector<Tensor> frames;
        for (int64_t i = 0; i < c.t + c.kt - 1; ++i) {
            AVS_ASSIGN_OR_RETURN(Tensor f, be->alloc(be->act_dtype(), Shape{c.h, c.w, c.cin}));
            frames.push_back(f);  // zeros: the timing does not depend on values
        }
        AVS_ASSIGN_OR_RETURN(Tensor wt, be->alloc(be->weight_dtype(), Shape{c.cout, K}));
        AVS_ASSIGN_OR_RETURN(Tensor y, be->alloc(be->act_dtype(), Shape{c.t, c.h, c.w, c.cout}));
        Backend::ConvSpec spec;
        spec.kt = c.kt, spec.kh = c.kh, spec.kw = c.kw;
        std::vector<double> ms;
        for (int it = 0; it < 12; ++it) {
            AVS_ASSIGN_OR_RETURN(auto e0, be->record_event());
            AVS_TRY(be->conv3d(y, frames, wt, nullptr, spec));
            AVS_ASSIGN_OR_RETURN(auto e1, be->record_event());
            AVS_TRY(be->sync_event(*e1));
            AVS_ASSIGN_OR_RETURN(double t, be->elapsed_ms(*e0, *e1));
            if (it >= 2) ms.push_back(t);
        }
        const double flops = 2.0 * double(c.t * c.h * c.w) * double(c.cout) * double(K), m = median(ms);
        out.push_back({{"shape", c.what}, {"cin", c.cin}, {"cout", c.cout}, {"h", c.h}, {"w", c.w}, {"t", c.t},
                       {"kernel", {c.kt, c.kh, c.kw}}, {"ms", m}, {"tflops", flops / (m * 1e-3) / 1e12}});
        std::printf("  conv3d %-30s k%dx%dx%d T %lld: %8.3f ms = %6.1f TFLOP/s\n", c.what, c.kt, c.kh, c.kw, (long long) c.t, m,
                    flops / (m * 1e-3) / 1e12);
    }
    return {};
}

struct StreamResult {
    double fps = 0, hidden = 0;
};

// DiT + decode pipeline, end to end. Steady state: the first chunks fill the window and are not timed.
Result<StreamResult> full_stream(const std::string & backend, DecoderKind kind, const Options & o, json & cfg) {
    AVS_ASSIGN_OR_RETURN(auto be, make_backend(backend));
    AVS_ASSIGN_OR_RETURN(ModelConfig mc, config_resolve(o.dit_config));
    AVS_ASSIGN_OR_RETURN(auto dit, Dit::random_init(*be, mc, 1));
    GenConfig g;
    g.chunk_frames = o.chunk_frames, g.steps = 4, g.shift = 5.0;
    g.height_latent = o.height / 8, g.width_latent = o.width / 8;
    g.cache.window = o.window, g.cache.sinks = 0;
    g.cache.format = be->act_dtype() == DType::bf16 ? KvFormat::bf16 : KvFormat::f32;
    AVS_ASSIGN_OR_RETURN(auto gen, Generator::create(*dit, g));
    AVS_ASSIGN_OR_RETURN(auto dbe, make_backend(backend));
    AVS_ASSIGN_OR_RETURN(auto dec, load_decoder(*dbe, kind, "", 7));
    DecodePipeline::Options po;
    po.max_in_flight = o.in_flight;
    AVS_ASSIGN_OR_RETURN(auto pipe, DecodePipeline::create(*be, std::move(dbe), std::move(dec),
                                                           Shape{16, o.chunk_frames, g.height_latent, g.width_latent}, po));
    gen->set_latents_hook([&](const Tensor & lat) { return pipe->submit(lat); });
    SeededNoise noise(3);
    const int warm = (o.window + o.chunk_frames - 1) / o.chunk_frames + 1;
    Tensor none;
    DecodedFrame f;
    int64_t frames_timed = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<StreamSpan> spans;
    for (int c = 0; c < warm + o.stream_chunks; ++c) {
        if (c == warm) {  // start timing once the window is full and the pipeline is primed
            AVS_TRY(pipe->flush());
            while (pipe->pop(f)) {}
            t0 = std::chrono::steady_clock::now();
        }
        AVS_TRY(gen->next_chunk(noise, none, nullptr, true));
        AVS_TRY(pipe->add_dit_span("chunk " + std::to_string(c), *gen->chunk_begin_event(), *gen->chunk_end_event()));
        while (pipe->pop(f)) frames_timed += c >= warm;
    }
    AVS_TRY(pipe->flush());
    while (pipe->pop(f)) ++frames_timed;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // hidden fraction over the timed chunks only
    for (const StreamSpan & sp : pipe->spans()) {
        const bool timed = sp.name.rfind("chunk ", 0) == 0 ? std::stoi(sp.name.substr(6)) >= warm
                                                            : std::stoi(sp.name.substr(13)) >= warm;
        if (timed) spans.push_back(sp);
    }
    if (!o.trace.empty()) AVS_TRY(write_chrome_trace(o.trace + "-" + pipe->decoder().name() + ".json", pipe->spans()));
    StreamResult r;
    r.fps    = double(frames_timed) / s;
    r.hidden = decode_hidden_fraction(spans);
    const DecodeStats st = pipe->stats();
    cfg["stream_chunks_timed"] = o.stream_chunks;
    cfg["stream_warmup_chunks"] = warm;
    cfg["stream_frames_timed"] = frames_timed;
    cfg["stream_seconds"]      = s;
    cfg["decode_chunk_ms_in_stream"] = st.chunk_ms;
    std::printf("  %-6s full stream (DiT %s w%d + decode): %.2f frames/s end to end, %lld frames in %.2f s, decode %.0f%% hidden\n",
                pipe->decoder().name(), mc.name.c_str(), o.window, r.fps, (long long) frames_timed, s, 100.0 * r.hidden);
    return r;
}

} // namespace

int main(int argc, char ** argv) {
    Options o;
    CLI::App app{"avs-decode-bench: decoder speed alone and in a full DiT stream (random weights)"};
    app.add_option("--backend", o.backend, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    app.add_option("--decoders", o.decoders, "comma-separated: tiny, wan");
    app.add_option("--height", o.height, "frame height in pixels")->check(CLI::PositiveNumber);
    app.add_option("--width", o.width, "frame width in pixels")->check(CLI::PositiveNumber);
    app.add_option("--chunk-frames", o.chunk_frames, "latent frames per chunk")->check(CLI::Range(1, 16));
    app.add_option("--chunks", o.chunks, "timed chunks of the decoder-alone runs")->check(CLI::Range(1, 1000));
    app.add_option("--stream-chunks", o.stream_chunks, "timed chunks of the full stream (0: skip it)")->check(CLI::Range(0, 1000));
    app.add_option("--dit-config", o.dit_config, "DiT of the full stream");
    app.add_option("--window", o.window, "DiT window of the full stream")->check(CLI::Range(1, 1000));
    app.add_option("--in-flight", o.in_flight, "decode pipeline slots")->check(CLI::Range(1, 16));
    app.add_flag("!--no-conv", o.conv, "skip the conv3d-alone shapes");
    app.add_option("--commit", o.commit, "commit to record (default: $AVS_COMMIT)");
    app.add_option("--trace", o.trace, "write PREFIX-<decoder>.json Chrome traces of the full streams");
    app.add_option("--out", o.out, "directory for <date>-<gpu>-decode.json");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    }
    log_set_level(LogLevel::warn);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress survives into a piped log even if a later step fails
    if (o.height % 16 || o.width % 16) return fail(make_error(ErrorCode::invalid_argument, "--height/--width: multiples of 16"));
    if (o.commit.empty() && std::getenv("AVS_COMMIT")) o.commit = std::getenv("AVS_COMMIT");
    auto probe = make_backend(o.backend);
    if (!probe) return fail(probe.status().with_context("--backend"));
    const std::string backend = probe.value()->name();
    probe.value().reset();
    std::string gpu = "cpu";
#if defined(AVS_HAVE_CUDA)
    if (backend == "cuda") gpu = cuda_device_description(0);
#endif
    std::printf("avs-decode-bench: %s (%s), %dx%d px, %d-latent chunks\n", backend.c_str(), gpu.c_str(), o.width, o.height,
                o.chunk_frames);

    json doc, config, metrics;
    doc["bench"] = "decode";
    doc[backend == "cuda" ? "gpu" : "cpu"] = backend == "cuda" ? std::regex_replace(gpu, std::regex(" \\(.*"), "") : gpu;
    doc["commit"] = o.commit.empty() ? json(nullptr) : json(o.commit);
    doc["date"]   = iso_now_utc();
    config = {{"height", o.height}, {"width", o.width}, {"chunk_frames", o.chunk_frames}, {"weights", "random"},
              {"backend", backend}, {"device", gpu}, {"dit", o.dit_config}, {"window", o.window}, {"sinks", 0},
              {"steps", 4}, {"commit_pass", true}, {"decode_in_flight", o.in_flight}};
    if (o.conv)
        if (auto st = conv_alone(backend, config["conv3d"]); !st.ok()) return fail(st.with_context("conv3d alone"));
    const bool standard = o.height == 480 && o.width == 832 && o.chunk_frames == 3;
    std::vector<std::pair<std::string, double>> hidden;
    for (const std::string name : {"tiny", "wan"}) {
        if (o.decoders.find(name) == std::string::npos) continue;
        const DecoderKind kind = name == "wan" ? DecoderKind::wan : DecoderKind::tiny;
        json & dc = config["decoders"][name];
        auto ms = decoder_alone(backend, kind, o, dc);
        if (!ms) return fail(ms.status().with_context(name + " decoder"));
        if (standard) metrics["decode_ms_" + name + "_chunk3"] = ms.value();
        if (o.stream_chunks > 0) {
            auto r = full_stream(backend, kind, o, dc);
            if (!r) return fail(r.status().with_context(name + " full stream"));
            if (standard && o.dit_config == "wan2.1-t2v-1.3b") {
                metrics["fps_stream_" + name] = r.value().fps;
                hidden.emplace_back(name, r.value().hidden);
            }
        }
    }
    // The issue's single decode_hidden_fraction: the full (Wan VAE) decoder's, the one that needs hiding;
    // both are in the config.
    for (auto & [name, h] : hidden) config["decoders"][name]["decode_hidden_fraction"] = h;
    for (auto & [name, h] : hidden)
        if (name == "wan") metrics["decode_hidden_fraction"] = h;
    doc["config"]  = config;
    doc["metrics"] = metrics;
    std::printf("%s\n", doc["metrics"].dump(2).c_str());
    if (!o.out.empty()) {
        const std::string path = bench::result_path(o.out, doc["date"].get<std::string>(),
                                                    doc.contains("gpu") ? doc["gpu"].get<std::string>() : std::string("cpu"), "decode");
        std::ofstream f(path);
        f << doc.dump(2) << "\n";
        if (!f.good()) return fail(make_error(ErrorCode::io, "%s: write failed", path.c_str()));
        std::printf("wrote %s\n", path.c_str());
    }
    return 0;
}
