// avs-attn-bench: ring attention alone per KV format, side by side (issue 4: "int8/fp8 attention at
// least as fast as bf16"). The 1.3B chunk shape by default: 3 latent frames of queries (4680 rows)
// against a 21-frame window (32760 keys), 12 heads x 128, q/k/v drawn N(0, 1) once and the same keys
// and values encoded in every format.
//
// Rounds interleave the formats (the order rotates each round) and each format runs back to back for
// --seconds per round, so every format meets the same clocks and temperature; a format's time is the
// median over all its batches, its ratio the median over rounds of (its median / bf16's median in the
// same round). Three ring layouts: "plain" (logical frames 0-20 in slots 0-20: the window's first fill),
// "wrapped" (logical frames 9-29, wrapped at slot 21: every chunk of a stream after that) and "stream"
// (wrapped, its last 3 frames the chunk being generated, read as a bf16 tail from the activations: what
// every denoising step of a stream runs; the 8-bit kernel gives the tail a split of its own).
// The GPU's SM clock and board power are sampled (NVML) while each format runs: under sustained load a
// board at its power limit clocks each kernel by its power draw, so the time per call is reported with
// the clock it ran at and the cycles it took. Writes <out>/<date>-<gpu>-attention-formats.json.
#include "engine/backend/backend.h"
#include "engine/core/log.h"
#include "engine/model/rope.h"
#include "engine/runtime/rng.h"
#if defined(AVS_HAVE_CUDA)
#include "bench/gemm_peak.h"
#include "engine/backend/cuda/cuda_device.h"
#endif

#include "bench/bench_util.h"
#include "bench/gpu_sampler.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

using namespace avs;
using json = nlohmann::json;
using avs::bench::median;
using avs::bench::split;

namespace {

struct Options {
    std::string backend = "auto", out, commit, formats = "bf16,fp8,int8", rings = "plain,wrapped,stream", grid = "30x52";
    int         heads = 12, window = 21, chunk = 3, rounds = 5, batch = 10;
    double      seconds = 2.0;
};

int fail(const Status & s) {
    std::fprintf(stderr, "avs-attn-bench: error: %s\n", s.message().c_str());
    return 1;
}

Result<Tensor> random_tensor(Backend & be, const Shape & s, uint64_t stream) {
    Tensor h = Tensor::host(DType::f32, s);
    fill_normal(h.data<float>(), h.numel(), rng_stream(7, stream, 0));
    AVS_ASSIGN_OR_RETURN(Tensor d, be.alloc(be.act_dtype(), s));
    AVS_TRY(be.upload(d, h));
    return d;
}

// One format's store and the call that reads it.
struct Case {
    std::string name;
    KvLayout    L;
    Tensor      store;
};

} // namespace

int main(int argc, char ** argv) {
    Options  o;
    CLI::App app{"avs-attn-bench: ring attention per KV format, side by side (interleaved rounds, sustained load)"};
    app.add_option("--backend", o.backend, "auto | cpu | cuda");
    app.add_option("--out", o.out, "directory for <date>-<gpu>-attention-formats.json (empty: print only)");
    app.add_option("--commit", o.commit, "commit to record (default: $AVS_COMMIT)");
    app.add_option("--formats", o.formats, "comma-separated KV formats, bf16 first (the reference of the ratios)");
    app.add_option("--rings", o.rings, "ring layouts: plain, wrapped, stream");
    app.add_option("--grid", o.grid, "latent grid per frame after patchify, HxW (1.3B at 480x832: 30x52)");
    app.add_option("--heads", o.heads, "attention heads (head_dim 128)")->check(CLI::Range(1, 64));
    app.add_option("--window", o.window, "window in latent frames")->check(CLI::Range(4, 1000));
    app.add_option("--chunk", o.chunk, "query frames")->check(CLI::Range(1, 16));
    app.add_option("--rounds", o.rounds, "interleaved rounds")->check(CLI::Range(1, 1000));
    app.add_option("--seconds", o.seconds, "back-to-back time per format and round")->check(CLI::Range(0.0, 600.0));
    app.add_option("--batch", o.batch, "calls per timed batch")->check(CLI::Range(1, 100000));
    CLI11_PARSE(app, argc, argv);
    log_set_level(LogLevel::warn);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (o.commit.empty() && std::getenv("AVS_COMMIT")) o.commit = std::getenv("AVS_COMMIT");

    int        gh = 0, gw = 0;
    std::smatch m;
    if (!std::regex_match(o.grid, m, std::regex("([0-9]+)x([0-9]+)")) || (gh = std::stoi(m[1])) <= 0 || (gw = std::stoi(m[2])) <= 0)
        return fail(make_error(ErrorCode::invalid_argument, "--grid '%s': expected HxW, e.g. 30x52", o.grid.c_str()));
    if (o.chunk > o.window) return fail(make_error(ErrorCode::invalid_argument, "--chunk %d: at most the window (%d)", o.chunk, o.window));
    const std::vector<std::string> fnames = split(o.formats), rings = split(o.rings);
    if (fnames.empty() || fnames[0] != "bf16") return fail(make_error(ErrorCode::invalid_argument, "--formats '%s': bf16 must come first", o.formats.c_str()));
    for (const auto & r : rings)
        if (r != "plain" && r != "wrapped" && r != "stream")
            return fail(make_error(ErrorCode::invalid_argument, "--rings: '%s' is not plain, wrapped or stream", r.c_str()));

    auto be_r = make_backend(o.backend);
    if (!be_r) return fail(be_r.status().with_context("--backend"));
    Backend &   be = *be_r.value();
    std::string gpu = "cpu";
#if defined(AVS_HAVE_CUDA)
    if (be.device() == Device::cuda) gpu = std::regex_replace(cuda_device_description(0), std::regex(" \\(.*"), "");
#endif
    const int     H = o.heads, D = 128, tpf = gh * gw;
    // the issue's setup (the 1.3B chunk); anything else gets "_custom" keys so that no tool mistakes it for that
    const std::string suffix = gh == 30 && gw == 52 && H == 12 && o.window == 21 && o.chunk == 3 ? "" : "_custom";
    const int64_t lq = int64_t(o.chunk) * tpf, lk = int64_t(o.window) * tpf;
    auto q = random_tensor(be, Shape{lq, H, D}, 1), k = random_tensor(be, Shape{lk, H, D}, 2), v = random_tensor(be, Shape{lk, H, D}, 3);
    if (!q || !k || !v) return fail(!q ? q.status() : !k ? k.status() : v.status());
    auto tk = random_tensor(be, Shape{lq, H, D}, 4), tv = random_tensor(be, Shape{lq, H, D}, 5);  // "stream": the chunk's own keys
    if (!tk || !tv) return fail(!tk ? tk.status() : tv.status());
    auto out = be.alloc(be.act_dtype(), Shape{lq, H, D});
    if (!out) return fail(out.status());
    std::vector<Case> cases;
    for (const auto & n : fnames) {
        auto f = kv_format_parse(n);
        if (!f) return fail(f.status().with_context("--formats"));
        Case c{n, KvLayout::make(f.value(), tpf, H, D), {}};
        auto st = be.alloc(DType::u8, Shape{o.window, c.L.slot_bytes});
        if (!st) return fail(st.status().with_context(n));
        c.store = st.value();
        if (auto s = be.kv_write(c.store, c.L, RingView{0, o.window, tpf, o.window, RopeMode::absolute}, 0, k.value(), v.value()); !s.ok())
            return fail(s.with_context(n));
        cases.push_back(std::move(c));
    }
    const RopeLayout rope = make_rope_layout(D, gh, gw);
    const float      scale = float(1.0 / std::sqrt(double(D)));
    const Tensor     none;
    // dense tensor-core work of one call (Q K^T and P V, 2 FLOPs a multiply-add)
    const double flops = 4.0 * double(lq) * double(lk) * H * D;

    json doc, metrics, details;
    doc["bench"] = "attention-formats";
    doc[be.device() == Device::cuda ? "gpu" : "cpu"] = gpu;
    doc["commit"] = o.commit.empty() ? json(nullptr) : json(o.commit);
    doc["date"]   = bench::iso_now_utc();
    doc["config"] = {{"shape", std::to_string(lq) + " queries x " + std::to_string(lk) + " keys, " + std::to_string(H) + " heads x 128"},
                     {"grid", o.grid}, {"window", o.window}, {"chunk_frames", o.chunk}, {"rounds", o.rounds}, {"seconds_per_format_and_round", o.seconds},
                     {"batch", o.batch}, {"data", "q, k, v ~ N(0, 1), the same k and v encoded in each format"},
                     {"rings", {{"plain", "logical frames 0..window-1 in slots 0..window-1"},
                                {"wrapped", "logical frames 3*chunk .. 3*chunk+window-1, the ring wrapped (steady streaming)"},
                                {"stream", "wrapped, the last chunk frames a bf16 tail (the chunk being generated), as each denoising step"}}},
                     {"attn_ms", "median ms per call over every batch of every round"},
                     {"attn_ratio", "median over rounds of (format median / bf16 median in the same round)"}};
    std::printf("avs-attn-bench: %s, %lld x %lld keys, %d heads x 128, %d rounds x %.2f s per format\n", gpu.c_str(), (long long)lq, (long long)lk, H,
                o.rounds, o.seconds);
#if defined(AVS_HAVE_CUDA)
    if (be.device() == Device::cuda) {
        auto peak = bench::measure_gemm_peak(8192, 3, 10);
        if (peak) {
            const double floor_ms = flops / (peak.value().tflops * 1e12) * 1e3;
            doc["config"]["compute_floor"] = {{"cublas_bf16_tflops", peak.value().tflops}, {"dense_bf16_floor_ms", floor_ms}};
            std::printf("compute floor: %.3f ms of dense bf16 tensor work at the measured cuBLAS %.0f TFLOP/s\n", floor_ms, peak.value().tflops);
        }
    }
#endif

    std::unique_ptr<bench::GpuSampler> sampler;
    if (be.device() == Device::cuda) {
        sampler = std::make_unique<bench::GpuSampler>();
        if (sampler->available()) doc["config"]["power_limit_w"] = sampler->power_limit_mw() / 1000.0;
        else std::printf("no clock or power samples: %s\n", sampler->why_not().c_str());
    }
    for (size_t ri = 0; ri < rings.size(); ++ri) {
        const std::string & ring_name = rings[ri];
        const int64_t  end = ring_name == "plain" ? o.window : int64_t(o.window) + 3 * o.chunk;
        const bool     tail = ring_name == "stream";
        const RingView ring{0, o.window, tpf, end, RopeMode::absolute};
        std::vector<std::vector<double>> batches(cases.size()), round_ms(cases.size());
        for (int r = 0; r < o.rounds; ++r)
            for (size_t i = 0; i < cases.size(); ++i) {
                const size_t c = (i + size_t(r)) % cases.size();
                auto call = [&] { return be.attention_ring(out.value(), q.value(), cases[c].store, cases[c].L, ring, tail ? tk.value() : none,
                                                        tail ? tv.value() : none, rope, scale); };
                if (auto s = call(); !s.ok()) return fail(s.with_context(cases[c].name));
                if (auto s = be.synchronize(); !s.ok()) return fail(s);
                std::vector<double> mine;
                if (sampler) sampler->set_tag(int(ri * cases.size() + c));
                const auto          t_start = std::chrono::steady_clock::now();
                do {
                    const auto t0 = std::chrono::steady_clock::now();
                    for (int b = 0; b < o.batch; ++b)
                        if (auto s = call(); !s.ok()) return fail(s.with_context(cases[c].name));
                    if (auto s = be.synchronize(); !s.ok()) return fail(s);
                    const auto t1 = std::chrono::steady_clock::now();
                    mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / o.batch);
                } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() < o.seconds);
                if (sampler) sampler->set_tag(-1);
                batches[c].insert(batches[c].end(), mine.begin(), mine.end());
                round_ms[c].push_back(median(mine));
            }
        for (size_t c = 0; c < cases.size(); ++c) {
            const std::string key = ring_name + "_" + cases[c].name;
            const double      ms = median(batches[c]);
            std::vector<double> ratios;
            for (int r = 0; r < o.rounds; ++r) ratios.push_back(round_ms[c][size_t(r)] / round_ms[0][size_t(r)]);
            metrics["attn_ms_" + key + suffix] = ms;
            if (c > 0) metrics["attn_ratio_" + key + suffix] = median(ratios);
            details[key] = {{"round_median_ms", round_ms[c]}, {"batches", batches[c].size()}, {"tflops", flops / (ms * 1e-3) / 1e12}};
            std::string clock;
            if (sampler && sampler->available()) {
                std::vector<double> mhz, watts;
                for (const auto & smp : sampler->samples())
                    if (smp.tag == int(ri * cases.size() + c)) mhz.push_back(smp.sm_mhz), watts.push_back(smp.power_mw / 1000.0);
                if (!mhz.empty()) {
                    const double f = median(mhz);
                    details[key]["sm_mhz_median"] = f, details[key]["power_w_median"] = median(watts), details[key]["clock_samples"] = mhz.size();
                    details[key]["mcycles_per_call"] = ms * f * 1e-3;  // ms x MHz = 10^3 cycles
                    char buf[96];
                    std::snprintf(buf, sizeof buf, "  at %.0f MHz, %.0f W: %.3f M cycles", f, median(watts), ms * f * 1e-3);
                    clock = buf;
                }
            }
            std::printf("%-8s %-6s %8.4f ms  %7.4g TFLOP/s  vs bf16 %.3fx%s  (rounds: ", ring_name.c_str(), cases[c].name.c_str(), ms,
                        flops / (ms * 1e-3) / 1e12, median(ratios), clock.c_str());
            for (double x : round_ms[c]) std::printf(" %.4f", x);
            std::printf(")\n");
        }
    }
    doc["metrics"] = metrics;
    doc["details"] = details;
    if (o.out.empty()) return 0;
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    const std::string path = bench::result_path(o.out, doc["date"].get<std::string>(), gpu, "attention-formats");
    std::ofstream     f(path);
    f << doc.dump(2) << "\n";
    if (!f.good()) return fail(make_error(ErrorCode::io, "%s: write failed", path.c_str()));
    std::printf("wrote %s\n", path.c_str());
    return 0;
}
