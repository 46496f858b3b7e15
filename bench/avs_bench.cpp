// avs-bench: the DiT streaming benchmark (issue 3 part 4). For each (window, sinks) it runs the
// Generator — random weights, 4 steps + commit pass per chunk — warms up until the window is full
// (+1 chunk), times N steady-state chunks, and prints the median ms per chunk and FPS beside the
// compute floor (the chunk's GEMM + attention FLOPs at the bf16 rate of a large cuBLAS GEMM measured
// in the same run). Also: the ring attention alone at the chunk shape, peak device memory and a
// per-op breakdown from a separate, serialized profiling pass (bench/profiling_backend.h).
// `--out DIR` writes DIR/bench.json with everything measured; bench/make_results.py turns it (and
// tools/reference/bench_torch.py's JSON) into bench/results/<date>-<gpu>-dit-stream.json.
#include "bench/flops.h"
#include "bench/profiling_backend.h"
#if defined(AVS_HAVE_CUDA)
#include "bench/gemm_peak.h"
#endif
#include "engine/backend/backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/log.h"
#include "engine/model/dit.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/rng.h"

#include "bench/bench_util.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>
#include <vector>

using namespace avs;
using namespace avs::bench;
using json = nlohmann::ordered_json;

namespace {

// The Wan VAE decodes 4 pixel frames per latent frame (the first frame of a video aside).
constexpr int kPixelFramesPerLatent = 4;

struct Options {
    std::string      backend = "auto", config = "wan2.1-t2v-1.3b", out, rope_mode = "absolute", log_level = "warn";
    std::vector<int> windows{6, 12, 21}, sinks{0, 3};
    int              chunks = 5, warmup = -1, profile_chunks = 1, height = 0, width = 0, chunk_frames = 3, steps = 4;
    int              attn_window = 21, attn_iters = 20, gemm_size = 8192;
    uint64_t         seed = 0;
    bool             quick = false;
};

using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t0) { return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count(); }


int ceil_div(int a, int b) { return (a + b - 1) / b; }


// Everything the configs share, resolved once.
struct Setup {
    ModelConfig model;
    GenConfig   gen;                // window/sinks are set per config
    int         height = 0, width = 0, tpf = 0;
    int         passes       = 0;   // DiT passes per chunk: steps + the commit pass
    int         pixel_frames = 0;   // pixel frames per chunk
    double      gemm_tflops  = 0;   // 0: no floor (no GPU)
};

double fps_of(const Setup & s, double chunk_ms) { return chunk_ms > 0 ? s.pixel_frames / (chunk_ms * 1e-3) : 0; }

// Profile of one config: per op class, per chunk.
json profile_json(const ProfilingBackend & pb, int chunks, double wall_ms, double sync_us) {
    std::vector<std::pair<std::string, OpStats>> ops(pb.stats().begin(), pb.stats().end());
    std::sort(ops.begin(), ops.end(), [](const auto & a, const auto & b) { return a.second.ms > b.second.ms; });
    double sum = 0;
    for (auto & [n, s] : ops) sum += s.ms;
    json j;
    j["chunks"]            = chunks;
    j["method"]            = "wall clock between two Backend::synchronize() per op (serialized; breakdown only)";
    j["sync_us"]           = sync_us;
    j["wall_ms_per_chunk"] = wall_ms / chunks;
    j["ops_ms_per_chunk"]  = sum / chunks;
    j["other_ms_per_chunk"] = (wall_ms - sum) / chunks;  // host work between ops (noise, bookkeeping)
    json arr = json::array();
    for (auto & [n, s] : ops) {
        json o;
        o["op"]              = n;
        o["calls_per_chunk"] = double(s.calls) / chunks;
        o["ms_per_chunk"]    = s.ms / chunks;
        o["share"]           = wall_ms > 0 ? s.ms / wall_ms : 0;
        if (s.flops > 0) {
            o["gflop_per_chunk"] = s.flops / chunks / 1e9;
            o["tflops"]          = s.flops / (s.ms * 1e-3) / 1e12;
        }
        arr.push_back(std::move(o));
    }
    j["ops"] = std::move(arr);
    return j;
}

void print_profile(const json & p, const char * label) {
    std::printf("\nper-op breakdown, %s (%d chunk(s), serialized: every op between two synchronize calls, ~%.0f us each;\n"
                "  the headline numbers above come from unprofiled chunks; bench.json has every config's breakdown)\n",
                label, p["chunks"].get<int>(), p["sync_us"].get<double>());
    std::printf("  %-28s %9s %10s %7s %9s\n", "op", "calls", "ms/chunk", "share", "TFLOP/s");
    for (const json & o : p["ops"]) {
        std::printf("  %-28s %9.0f %10.2f %6.1f%%", o["op"].get<std::string>().c_str(), o["calls_per_chunk"].get<double>(),
                    o["ms_per_chunk"].get<double>(), 100.0 * o["share"].get<double>());
        if (o.contains("tflops")) std::printf(" %9.3g", o["tflops"].get<double>());
        std::printf("\n");
    }
    std::printf("  %-28s %9s %10.2f   (host work between ops)\n  %-28s %9s %10.2f\n", "other", "",
                p["other_ms_per_chunk"].get<double>(), "total (profiled)", "", p["wall_ms_per_chunk"].get<double>());
}

// Mean latency of an empty synchronize(): the per-op overhead of the profiling pass.
double sync_overhead_us(Backend & be) {
    (void) be.synchronize();
    const auto t0 = clock_type::now();
    const int  n  = 200;
    for (int i = 0; i < n; ++i) (void) be.synchronize();
    return ms_since(t0) * 1e3 / n;
}

// One (window, sinks) config: warm-up, timed chunks, profiled chunks.
json run_config(ProfilingBackend & pb, Dit & dit, const Setup & s, const Options & o, int window, int sinks, double sync_us) {
    json j;
    j["window"] = window;
    j["sinks"]  = sinks;
    GenConfig g      = s.gen;
    g.cache.window   = window;
    g.cache.sinks    = sinks;
    auto gen_r       = Generator::create(dit, g);
    if (!gen_r) {
        j["error"] = gen_r.status().message();
        return j;
    }
    Generator & gen = *gen_r.value();
    SeededNoise noise(o.seed + 1);
    Tensor      out = Tensor::host(DType::f32, Shape{s.model.out_channels, g.chunk_frames, g.height_latent, g.width_latent});

    // Steady state: the chunk's end reaches sinks + window, so every later chunk sees the same keys.
    const int     warmup   = o.warmup >= 0 ? o.warmup : ceil_div(sinks + window, g.chunk_frames) + 1;
    const int64_t visible  = int64_t(sinks + window) * s.tpf;
    const int64_t lq       = int64_t(g.chunk_frames) * s.tpf;
    std::vector<double> chunk_ms, commit_ms;
    std::vector<std::vector<double>> step_ms(size_t(g.steps));
    auto fail = [&](const Status & st) {
        j["error"] = st.message();
        return j;
    };
    for (int c = 0; c < warmup; ++c)
        if (auto st = gen.next_chunk(noise, out); !st.ok()) return fail(st);
    for (int c = 0; c < o.chunks; ++c) {
        ChunkStats st;
        const auto t0 = clock_type::now();
        if (auto r = gen.next_chunk(noise, out, &st); !r.ok()) return fail(r);
        chunk_ms.push_back(ms_since(t0));
        commit_ms.push_back(st.commit_ms);
        for (size_t i = 0; i < st.step_ms.size() && i < step_ms.size(); ++i) step_ms[i].push_back(st.step_ms[i]);
    }
    const double med = median(chunk_ms);
    const PassFlops pf = pass_flops(s.model, g.chunk_frames, s.tpf, visible);
    j["warmup_chunks"]   = warmup;
    // The first timed chunk ends at frame (warmup + 1)·C; below sinks + window it sees fewer keys.
    j["steady_state"]    = (warmup + 1) * g.chunk_frames >= sinks + window;
    j["visible_frames"]  = sinks + window;
    j["lq"]              = lq;
    j["lkv"]             = visible;
    j["cache_bytes"]     = gen.cache().bytes();
    j["chunk_ms"]        = chunk_ms;
    j["chunk_ms_median"] = med;
    json steps = json::array();
    for (auto & v : step_ms) steps.push_back(median(v));
    j["step_ms_median"]   = steps;
    j["commit_ms_median"] = median(commit_ms);
    j["fps"]              = fps_of(s, med);
    j["flops_per_chunk"]  = {{"gemm", pf.gemm * s.passes},
                             {"attn_self", pf.attn_self * s.passes},
                             {"attn_cross", pf.attn_cross * s.passes},
                             {"total", pf.total() * s.passes}};
    if (s.gemm_tflops > 0) {
        const double floor_ms = pf.total() * s.passes / (s.gemm_tflops * 1e12) * 1e3;
        j["floor_ms"]          = floor_ms;
        j["floor_fps"]         = fps_of(s, floor_ms);
        j["fraction_of_floor"] = floor_ms / med;  // achieved / floor speed
    }
    // Configs run in increasing cache size on one backend, so the peak so far is this config's peak.
    j["peak_bytes"] = pb.peak_bytes();

    if (o.profile_chunks > 0) {
        pb.reset_stats();
        pb.set_enabled(true);
        const auto t0 = clock_type::now();
        Status     st;
        for (int c = 0; c < o.profile_chunks && st.ok(); ++c) st = gen.next_chunk(noise, out);
        const double wall = ms_since(t0);
        pb.set_enabled(false);
        if (!st.ok()) return fail(st);
        j["profile"] = profile_json(pb, o.profile_chunks, wall, sync_us);
        // The same FLOPs counted from the actual call shapes: a check on the FLOP model.
        double counted = 0;
        for (auto & [n, os] : pb.stats()) counted += os.flops;
        j["profile"]["counted_flops_per_chunk"] = counted / o.profile_chunks;
    }
    return j;
}

// The ring attention alone at the chunk shape: Lq = chunk tokens, a `window`-frame ring that wraps
// (two fragments), keys rotated on load. Median over 5 batches of back-to-back calls.
json bench_attention(Backend & be, const Setup & s, const Options & o, KvFormat fmt) {
    json          j;
    j["kv_format"] = kv_format_name(fmt);
    const int     H = s.model.heads, Dh = s.model.head_dim(), W = o.attn_window, C = s.gen.chunk_frames;
    const int64_t lq = int64_t(C) * s.tpf, lk = int64_t(W) * s.tpf;
    RingView      ring{0, W, s.tpf, int64_t(W) + int64_t(C) * std::max(1, W / C / 2), s.gen.cache.rope_mode};
    RingFragment  frags[3];
    j["lq"]          = lq;
    j["lk"]          = lk;
    j["heads"]       = H;
    j["head_dim"]    = Dh;
    j["ring_frames"] = W;
    j["fragments"]   = ring.fragments(frags);
    const DType dt = be.act_dtype();
    auto make = [&](const Shape & sh, uint64_t stream) -> Result<Tensor> {
        AVS_ASSIGN_OR_RETURN(Tensor host, Tensor::zeros(DType::f32, sh));
        fill_normal(host.data<float>(), host.numel(), rng_stream(o.seed, 77, stream));
        AVS_ASSIGN_OR_RETURN(Tensor dev, be.alloc(dt, sh));
        AVS_TRY(be.upload(dev, host));
        return dev;
    };
    // every visible frame from the store (no bf16 tail), in the format under test
    const KvLayout L = KvLayout::make(fmt, s.tpf, H, Dh);
    auto q  = make(Shape{lq, H, Dh}, 1);
    auto ks = make(Shape{lk, H, Dh}, 2);
    auto vs = make(Shape{lk, H, Dh}, 3);
    auto ot = be.alloc(dt, Shape{lq, H, Dh});
    auto st_r = be.alloc(DType::u8, Shape{W, L.slot_bytes});
    for (auto * r : {&q, &ks, &vs, &ot, &st_r})
        if (!*r) {
            j["error"] = r->status().message();
            return j;
        }
    {
        const RingView all{0, W, s.tpf, ring.end_frame, ring.rope_mode};
        const Status   w = be.kv_write(st_r.value(), L, all, ring.end_frame - W, ks.value(), vs.value());
        if (!w.ok()) {
            j["error"] = w.message();
            return j;
        }
    }
    const Tensor none;
    const RopeLayout layout = make_rope_layout(Dh, s.height / 8 / s.model.patch_size[1], s.width / 8 / s.model.patch_size[2]);
    const float      scale  = float(1.0 / std::sqrt(double(Dh)));
    auto call = [&] { return be.attention_ring(ot.value(), q.value(), st_r.value(), L, ring, none, none, layout, scale); };
    Status st;
    for (int i = 0; i < 2 && st.ok(); ++i) st = call();
    if (st.ok()) st = be.synchronize();
    const int           per_batch = std::max(1, o.attn_iters / 5);
    std::vector<double> ms;
    for (int b = 0; b < 5 && st.ok(); ++b) {
        const auto t0 = clock_type::now();
        for (int i = 0; i < per_batch && st.ok(); ++i) st = call();
        if (st.ok()) st = be.synchronize();
        ms.push_back(ms_since(t0) / per_batch);
    }
    if (!st.ok()) {
        j["error"] = st.message();
        return j;
    }
    const double med = median(ms), fl = attention_flops(lq, lk, H, Dh);
    j["calls"]  = 5 * per_batch;
    j["ms"]     = med;
    j["tflops"] = fl / (med * 1e-3) / 1e12;
    if (s.gemm_tflops > 0) j["floor_ms"] = fl / (s.gemm_tflops * 1e12) * 1e3;
    return j;
}

int fail(const Status & s) {
    std::fprintf(stderr, "avs-bench: error: %s\n", s.message().c_str());
    return 1;
}

int run(const Options & o) {
    LogLevel level = LogLevel::info;
    log_level_from_name(o.log_level.c_str(), level);  // CLI11 already restricted the choices
    log_set_level(level);

    auto inner_r = make_backend(o.backend);
    if (!inner_r) return fail(inner_r.status().with_context("--backend"));
    std::unique_ptr<Backend> inner = std::move(inner_r).value();
    ProfilingBackend         pb(*inner);
    const bool               gpu = inner->device() == Device::cuda;

    Setup s;
    auto  cfg = config_resolve(o.config);
    if (!cfg) return fail(cfg.status().with_context("--config"));
    s.model  = cfg.value();
    s.height = o.height ? o.height : (o.quick ? 128 : 480);
    s.width  = o.width ? o.width : (o.quick ? 128 : 832);
    const int cell = 8 * std::max(s.model.patch_size[1], s.model.patch_size[2]);
    if (s.height % cell || s.width % cell)
        return fail(make_error(ErrorCode::invalid_argument, "--height/--width must be multiples of %d (got %dx%d)", cell, s.height, s.width));
    s.gen.chunk_frames   = o.chunk_frames;
    s.gen.steps          = o.steps;
    s.gen.height_latent  = s.height / 8;
    s.gen.width_latent   = s.width / 8;
    s.gen.cache.mode     = CacheMode::commit;
    s.gen.cache.rope_mode = o.rope_mode == "window" ? RopeMode::window : RopeMode::absolute;
    s.gen.cache.format   = inner->act_dtype() == DType::bf16 ? KvFormat::bf16 : KvFormat::f32;
    s.tpf          = (s.gen.height_latent / s.model.patch_size[1]) * (s.gen.width_latent / s.model.patch_size[2]);
    s.passes       = o.steps + 1;
    s.pixel_frames = o.chunk_frames * kPixelFramesPerLatent;

    json doc;
    doc["tool"]   = "avs-bench";
    doc["date"]   = iso_now_utc();  // when measured: make_results.py may run later, elsewhere
    doc["backend"] = inner->name();
#if defined(AVS_HAVE_CUDA)
    doc["device"] = gpu ? cuda_device_description(0) : std::string("cpu");
#else
    doc["device"] = "cpu";  // cuda_device_description exists only in CUDA builds
#endif
    std::printf("avs-bench: backend %s (%s)\n", inner->name(), doc["device"].get<std::string>().c_str());

    // ---- the floor's denominator: a large cuBLAS GEMM, before the model takes memory ----
    json gj;
#if defined(AVS_HAVE_CUDA)
    if (gpu) {
        auto gp = measure_gemm_peak(o.gemm_size, 5, o.quick ? 5 : 20);
        if (!gp) return fail(gp.status().with_context("GEMM peak"));
        s.gemm_tflops = gp.value().tflops;
        gj = {{"measured", true}, {"m", o.gemm_size}, {"n", o.gemm_size}, {"k", o.gemm_size}, {"iters", gp.value().iters},
              {"ms", gp.value().ms}, {"tflops", s.gemm_tflops}, {"op", "cublasGemmEx bf16 in/out, CUBLAS_COMPUTE_32F"}};
        std::printf("GEMM peak: cuBLAS bf16 %d^3 (fp32 accumulate): %.3f ms = %.1f TFLOP/s (median of %d)\n", o.gemm_size,
                    gp.value().ms, s.gemm_tflops, gp.value().iters);
    }
#endif
    if (!gpu) {
        gj = {{"measured", false}, {"reason", "no GPU"}};
        std::printf("floor: n/a (no GPU)\n");
    }
    doc["gemm_peak"] = gj;

    // ---- model (one for all configs: random init of 1.3B takes a while) ----
    const auto t_init = clock_type::now();
    auto       dit_r  = Dit::random_init(pb, s.model, o.seed);
    if (!dit_r) return fail(dit_r.status());
    std::unique_ptr<Dit> dit = std::move(dit_r).value();
    std::printf("model: %s, dim %d, %d layers, %d heads, %.1f M params, weights %.1f MiB (%s, init %.1f s)\n", s.model.name.c_str(),
                s.model.dim, s.model.layers, s.model.heads, double(s.model.param_count()) / 1e6,
                double(dit->weight_bytes()) / 1048576.0, dtype_name(inner->weight_dtype()), ms_since(t_init) / 1e3);
    std::printf("run: %dx%d px (latent %dx%d, %d tokens/frame), %d-frame chunks = %d pixel frames, %d steps + commit = %d passes/chunk,\n"
                "     %d timed chunks after warm-up (window full + 1), rope %s, KV %s\n",
                s.width, s.height, s.gen.width_latent, s.gen.height_latent, s.tpf, o.chunk_frames, s.pixel_frames, o.steps, s.passes,
                o.chunks, o.rope_mode.c_str(), kv_format_name(s.gen.cache.format));
    doc["model"] = json::parse(config_to_json(s.model));
    doc["model"]["name"]   = s.model.name;
    doc["model"]["params"] = s.model.param_count();
    doc["weight_bytes"]    = dit->weight_bytes();
    doc["run"] = {{"height", s.height}, {"width", s.width}, {"height_latent", s.gen.height_latent},
                  {"width_latent", s.gen.width_latent}, {"tokens_per_frame", s.tpf}, {"chunk_frames", o.chunk_frames},
                  {"steps", o.steps}, {"commit_pass", true}, {"passes_per_chunk", s.passes},
                  {"pixel_frames_per_chunk", s.pixel_frames}, {"chunks_timed", o.chunks}, {"profile_chunks", o.profile_chunks},
                  {"rope_mode", o.rope_mode}, {"cache_mode", "commit"}, {"kv_dtype", kv_format_name(s.gen.cache.format)},
                  {"act_dtype", dtype_name(inner->act_dtype())}, {"weight_dtype", dtype_name(inner->weight_dtype())},
                  {"seed", o.seed}, {"quick", o.quick},
                  {"timing", "wall clock around Generator::next_chunk (incl. noise upload and the x0 download); median"}};

    // ---- configs, in increasing cache size (peak memory per config on one backend) ----
    std::vector<std::pair<int, int>> cfgs;
    for (int w : o.windows)
        for (int sk : o.sinks) cfgs.emplace_back(w, sk);
    std::sort(cfgs.begin(), cfgs.end(), [](auto a, auto b) { return std::pair(a.first + a.second, a.second) < std::pair(b.first + b.second, b.second); });
    cfgs.erase(std::unique(cfgs.begin(), cfgs.end()), cfgs.end());
    const double sync_us = sync_overhead_us(*inner);

    std::printf("\n%6s %5s %7s %6s | %9s %7s | %9s %9s %7s | %10s\n", "window", "sinks", "Lkv", "warmup", "chunk ms", "FPS",
                "floor ms", "floor FPS", "%floor", "peak MiB");
    json results = json::array();
    int  failed  = 0;
    for (auto [w, sk] : cfgs) {
        json r = run_config(pb, *dit, s, o, w, sk, sync_us);
        if (r.contains("error")) {
            ++failed;
            std::printf("%6d %5d  error: %s\n", w, sk, r["error"].get<std::string>().c_str());
        } else {
            std::printf("%6d %5d %7lld %6d | %9.1f %7.2f | ", w, sk, (long long) r["lkv"].get<int64_t>(), r["warmup_chunks"].get<int>(),
                        r["chunk_ms_median"].get<double>(), r["fps"].get<double>());
            if (r.contains("floor_ms"))
                std::printf("%9.1f %9.2f %6.1f%% | ", r["floor_ms"].get<double>(), r["floor_fps"].get<double>(),
                            100.0 * r["fraction_of_floor"].get<double>());
            else
                std::printf("%9s %9s %7s | ", "n/a", "n/a", "n/a");
            std::printf("%10.1f%s\n", double(r["peak_bytes"].get<uint64_t>()) / 1048576.0,
                        r["steady_state"].get<bool>() ? "" : "  (not steady: --warmup too small to fill the window)");
        }
        std::fflush(stdout);
        results.push_back(std::move(r));
    }
    doc["configs"] = results;
    if (!gpu) std::printf("floor: n/a (no GPU)\n");

    // Print one breakdown (the largest window, fewest sinks: the headline config); bench.json has all.
    const json * shown = nullptr;
    for (const json & r : results)
        if (r.contains("profile") && (!shown || r["window"].get<int>() > (*shown)["window"].get<int>() ||
                                      (r["window"] == (*shown)["window"] && r["sinks"].get<int>() < (*shown)["sinks"].get<int>())))
            shown = &r;
    if (shown) {
        const json &      r     = *shown;
        const std::string label = "window " + std::to_string(r["window"].get<int>()) + ", sinks " + std::to_string(r["sinks"].get<int>());
        print_profile(r["profile"], label.c_str());
        const double model = r["flops_per_chunk"]["total"].get<double>(), counted = r["profile"]["counted_flops_per_chunk"].get<double>();
        if (model > 0 && std::abs(counted - model) > 1e-3 * model)
            std::printf("  note: FLOPs counted from the calls (%.4g) differ from the FLOP model (%.4g)\n", counted, model);
    }

    // ---- attention alone, after the configs so that it does not raise their peaks ----
    if (o.attn_window > 0) {
        json a = bench_attention(*inner, s, o, s.gen.cache.format);
        if (a.contains("error")) {
            ++failed;
            std::printf("\nattention alone: error: %s\n", a["error"].get<std::string>().c_str());
        } else {
            std::printf("\nattention alone (attention_ring, keys rotated on load): %lld queries x %lld keys, %d heads x %d, "
                        "%d-frame ring in %d fragments: %.3f ms = %.3g TFLOP/s",
                        (long long) a["lq"].get<int64_t>(), (long long) a["lk"].get<int64_t>(), a["heads"].get<int>(),
                        a["head_dim"].get<int>(), a["ring_frames"].get<int>(), a["fragments"].get<int>(), a["ms"].get<double>(),
                        a["tflops"].get<double>());
            if (a.contains("floor_ms"))
                std::printf(" | floor %.3f ms at the GEMM peak\n", a["floor_ms"].get<double>());
            else
                std::printf(" | floor: n/a (no GPU)\n");
        }
        doc["attention"] = a;
    }

    if (!o.out.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o.out, ec);
        const std::string path = (std::filesystem::path(o.out) / "bench.json").string();
        std::ofstream     f(path);
        f << doc.dump(2) << "\n";
        if (!f) return fail(make_error(ErrorCode::io, "cannot write %s", path.c_str()));
        std::printf("\nwrote %s\n", path.c_str());
    }
    return failed ? 1 : 0;
}

} // namespace

int main(int argc, char ** argv) {
    Options   o;
    CLI::App  app{"avs-bench: steady-state streaming speed of the causal DiT (random weights) beside its compute floor"};
    app.add_option("--backend", o.backend, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}))->capture_default_str();
    app.add_option("--config", o.config, "model config: wan2.1-t2v-1.3b | wan2.1-t2v-14b | tiny | FILE.json")->capture_default_str();
    app.add_option("--windows", o.windows, "rolling windows in latent frames (incl. the chunk), comma-separated")->delimiter(',')->capture_default_str();
    app.add_option("--sinks", o.sinks, "sink frame counts, comma-separated")->delimiter(',')->capture_default_str();
    auto * chunks = app.add_option("--chunks", o.chunks, "timed steady-state chunks per config (default 5; 2 with --quick)")->check(CLI::Range(1, 10000));
    app.add_option("--warmup", o.warmup, "warm-up chunks (default: until the window is full, plus 1)")->check(CLI::Range(0, 10000));
    app.add_option("--profile-chunks", o.profile_chunks, "chunks of the serialized per-op profiling pass per config (0: none)")
        ->check(CLI::Range(0, 100))->capture_default_str();
    app.add_option("--height", o.height, "frame height in pixels (default 480; 128 with --quick)")->check(CLI::PositiveNumber);
    app.add_option("--width", o.width, "frame width in pixels (default 832; 128 with --quick)")->check(CLI::PositiveNumber);
    app.add_option("--chunk-frames", o.chunk_frames, "latent frames per chunk")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--steps", o.steps, "denoising steps per chunk (plus one commit pass)")->check(CLI::Range(1, 50))->capture_default_str();
    app.add_option("--rope-mode", o.rope_mode, "absolute | window")->check(CLI::IsMember({"absolute", "window"}))->capture_default_str();
    app.add_option("--attn-window", o.attn_window, "ring frames of the attention-alone measurement (0: skip it)")
        ->check(CLI::Range(0, 100000))->capture_default_str();
    auto * attn_iters = app.add_option("--attn-iters", o.attn_iters, "attention-alone calls (default 20; 5 with --quick)")->check(CLI::Range(1, 100000));
    auto * gemm = app.add_option("--gemm-size", o.gemm_size, "M = N = K of the peak GEMM (default 8192; 2048 with --quick)")->check(CLI::Range(256, 32768));
    app.add_option("--seed", o.seed, "seed for weights and noise")->capture_default_str();
    app.add_option("--out", o.out, "write DIR/bench.json with everything measured");
    app.add_flag("--quick", o.quick, "smoke-test sizes: 128x128 px, 2 timed chunks, small GEMM and attention runs");
    app.add_option("--log-level", o.log_level, "debug | info | warn | error")->check(CLI::IsMember({"debug", "info", "warn", "error"}))->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    }
    if (o.quick) {
        if (!chunks->count()) o.chunks = 2;
        if (!attn_iters->count()) o.attn_iters = 5;
        if (!gemm->count()) o.gemm_size = 2048;
    }
    if (o.windows.empty() || o.sinks.empty()) {
        std::fprintf(stderr, "avs-bench: error: --windows and --sinks need at least one value\n");
        return 2;
    }
    for (int w : o.windows)
        if (w < o.chunk_frames) {
            std::fprintf(stderr, "avs-bench: error: window %d is smaller than the chunk (%d frames)\n", w, o.chunk_frames);
            return 2;
        }
    for (int sk : o.sinks)
        if (sk < 0) {
            std::fprintf(stderr, "avs-bench: error: sinks must be >= 0 (got %d)\n", sk);
            return 2;
        }
    return run(o);
}
