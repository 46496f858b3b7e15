// avs-kv-bench: the KV cache formats' benchmark and fidelity harness (issue 4 parts 4-6).
// Random 1.3B weights at 480x832, 3-latent chunks, 4 steps + commit, a 21-frame window. For each
// format the same seeded rollout (same initial noise and re-noise) runs for --seconds of video:
//   * speed: median ms per chunk once the window is full -> fps_w21_<fmt>; KV bytes; peak VRAM;
//   * drift: per chunk, the latent's relative error and PSNR against the bf16 rollout (the curve),
//     psnr_<fmt> after the whole rollout; the decoded last chunk's PSNR and SSIM (tiny decoder,
//     details.<fmt>.decoded_{psnr,ssim}_last_chunk, means over its frames);
//   * attention error per layer: the bf16 rollout's final cache re-encoded in the format, one forward
//     of the next chunk through both, each layer's attention output compared;
//   * attention alone at the chunk shape (4680 x 32760) per format;
//   * offload: short rollouts with the cache in pinned host memory (fps, bit-identity to resident).
// Writes <out>/<date>-<gpu>-kv-formats.json after every format, so a cut-off run keeps what it measured.
#include "engine/backend/backend.h"
#include "engine/core/log.h"
#include "engine/decode/decoder.h"
#include "engine/model/dit.h"
#include "engine/model/rope.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/rng.h"
#if defined(AVS_HAVE_CUDA)
#include "engine/backend/cuda/cuda_device.h"
#endif

#include "bench/bench_util.h"
#include "bench/image_metrics.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>

using namespace avs;
using json = nlohmann::json;
using avs::bench::iso_now_utc;
using avs::bench::median;
using avs::bench::split;

namespace {

struct Options {
    std::string backend = "auto", out, commit, config = "wan2.1-t2v-1.3b", formats = "bf16,fp8,int8,int4,nvfp4", offload = "bf16,int4";
    int         height = 480, width = 832, window = 21, sinks = 0, steps = 4, offload_chunks = 20, attn_iters = 10;
    double      seconds = 60.0;
    uint64_t    seed = 1;
};



double rel_err(const Tensor & a, const Tensor & ref) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        const double d = double(a.data<float>()[i]) - ref.data<float>()[i];
        num += d * d, den += double(ref.data<float>()[i]) * ref.data<float>()[i];
    }
    return den > 0 ? std::sqrt(num / den) : 0.0;
}
// PSNR with the reference's peak magnitude as the signal peak (latents have no fixed range)
double psnr(const Tensor & a, const Tensor & ref, double peak = 0) {
    double se = 0, mx = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        const double d = double(a.data<float>()[i]) - ref.data<float>()[i];
        se += d * d, mx = std::max(mx, std::fabs(double(ref.data<float>()[i])));
    }
    if (peak <= 0) peak = mx;
    const double mse = se / double(std::max<int64_t>(1, a.numel()));
    return mse > 0 ? 10.0 * std::log10(peak * peak / mse) : 200.0;
}

struct Rollout {
    std::vector<Tensor> latents;   // host [16, 3, h, w] per chunk
    std::vector<double> chunk_ms;  // wall per chunk
    uint64_t            kv_bytes = 0, kv_device = 0, peak = 0;
    double              h2d = 0, d2h = 0;
};

struct Bench {
    Backend &    be;
    Dit &        dit;
    GenConfig    g;
    int          chunks = 0;
    uint64_t     seed = 1;

    Result<std::unique_ptr<Generator>> generator(KvFormat f, bool offload) {
        GenConfig c      = g;
        c.cache.format   = f;
        c.cache.offload  = offload;
        return Generator::create(dit, c);
    }

    Result<Rollout> run(KvFormat f, bool offload, int n, std::unique_ptr<Generator> * keep = nullptr) {
        AVS_TRY(be.synchronize());
        be.reset_peak();
        AVS_ASSIGN_OR_RETURN(auto gen, generator(f, offload));
        SeededNoise noise(seed);
        Rollout     r;
        for (int i = 0; i < n; ++i) {
            Tensor     x  = Tensor::host(DType::f32, Shape{16, g.chunk_frames, g.height_latent, g.width_latent});
            const auto t0 = std::chrono::steady_clock::now();
            AVS_TRY(gen->next_chunk(noise, x));  // the download synchronizes
            r.chunk_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            r.latents.push_back(x);
        }
        const KvMemory m = gen->cache().memory();
        r.kv_bytes = m.store_bytes, r.kv_device = m.device_bytes, r.peak = be.peak_bytes(), r.h2d = m.h2d_bytes, r.d2h = m.d2h_bytes;
        if (keep) *keep = std::move(gen);
        return r;
    }

    // steady state: chunks after the window has filled
    double fps(const Rollout & r) const {
        const size_t first = size_t((g.cache.window + g.chunk_frames - 1) / g.chunk_frames);
        std::vector<double> ms(r.chunk_ms.begin() + std::min(first, r.chunk_ms.size() - 1), r.chunk_ms.end());
        return double(g.chunk_frames * 4) / (median(ms) * 1e-3);
    }
};

// Per-layer attention outputs of one forward of the next chunk through `cache` (not written).
Result<std::vector<Tensor>> attention_taps(Backend & be, Dit & dit, KvCache & cache, const GenConfig & g, int64_t frame0) {
    std::vector<Tensor> taps;
    dit.set_attention_tap([&](int, const Tensor & out) -> Status {
        Tensor h = Tensor::host(DType::f32, out.shape());
        AVS_TRY(be.download(h, out));
        taps.push_back(h);
        return {};
    });
    const Shape s{16, g.chunk_frames, g.height_latent, g.width_latent};
    Tensor      host = Tensor::host(DType::f32, s);
    fill_normal(host.data<float>(), host.numel(), rng_stream(99, 1, 1));
    AVS_ASSIGN_OR_RETURN(Tensor x, be.alloc(DType::f32, s));
    AVS_ASSIGN_OR_RETURN(Tensor v, be.alloc(DType::f32, s));
    AVS_TRY(be.upload(x, host));
    const Status st = dit.forward_chunk(x, std::vector<double>(size_t(g.chunk_frames), 1000.0), cache, 0, frame0, v, nullptr, false);
    dit.set_attention_tap({});
    AVS_TRY(st);
    return taps;
}

// The last chunk decoded with the tiny decoder (fixed random weights) -> frames in [0, 1].
Result<std::vector<Tensor>> decode_last(Backend & be, const Tensor & lat) {
    AVS_ASSIGN_OR_RETURN(auto dec, load_decoder(be, DecoderKind::tiny, "", 7));
    AVS_ASSIGN_OR_RETURN(Tensor d, be.alloc(DType::f32, lat.shape()));
    AVS_TRY(be.upload(d, lat));
    std::vector<Tensor> frames, out;
    for (int64_t f = 0; f < lat.dim(1); ++f) AVS_TRY(dec->push(d, f, frames));
    for (auto & fr : frames) {
        Tensor h = Tensor::host(DType::f32, fr.shape());
        AVS_TRY(be.download(h, fr));
        for (int64_t i = 0; i < h.numel(); ++i)
            h.data<float>()[i] = std::clamp(dec->out_scale() * h.data<float>()[i] + dec->out_offset(), 0.0f, 1.0f);
        out.push_back(h);
    }
    return out;
}

// Ring attention alone at the chunk shape, all keys from a store in format f.
Result<double> attention_alone_ms(Backend & be, const ModelConfig & m, int tpf, int gh, int gw, int window, int chunk, KvFormat f, int iters) {
    const int H = m.heads, D = m.head_dim();
    const int64_t lq = int64_t(chunk) * tpf, lk = int64_t(window) * tpf;
    const KvLayout L = KvLayout::make(f, tpf, H, D);
    auto rnd = [&](const Shape & s, uint64_t st) -> Result<Tensor> {
        Tensor h = Tensor::host(DType::f32, s);
        fill_normal(h.data<float>(), h.numel(), rng_stream(5, st, 0));
        AVS_ASSIGN_OR_RETURN(Tensor d, be.alloc(be.act_dtype(), s));
        AVS_TRY(be.upload(d, h));
        return d;
    };
    AVS_ASSIGN_OR_RETURN(Tensor q, rnd(Shape{lq, H, D}, 1));
    AVS_ASSIGN_OR_RETURN(Tensor o, be.alloc(be.act_dtype(), Shape{lq, H, D}));
    AVS_ASSIGN_OR_RETURN(Tensor store, be.alloc(DType::u8, Shape{window, L.slot_bytes}));
    {
        AVS_ASSIGN_OR_RETURN(Tensor k, rnd(Shape{lk, H, D}, 2));
        AVS_ASSIGN_OR_RETURN(Tensor v, rnd(Shape{lk, H, D}, 3));
        AVS_TRY(be.kv_write(store, L, RingView{0, window, tpf, window, RopeMode::absolute}, 0, k, v));
    }
    const RingView   ring{0, window, tpf, int64_t(window) + chunk * 3, RopeMode::absolute};  // wrapped
    const RopeLayout rope = make_rope_layout(D, gh, gw);
    const Tensor     none;
    auto call = [&] { return be.attention_ring(o, q, store, L, ring, none, none, rope, float(1.0 / std::sqrt(double(D)))); };
    AVS_TRY(call());
    AVS_TRY(be.synchronize());
    std::vector<double> ms;
    for (int b = 0; b < 5; ++b) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) AVS_TRY(call());
        AVS_TRY(be.synchronize());
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters);
    }
    return median(ms);
}

int fail(const Status & s) {
    std::fprintf(stderr, "avs-kv-bench: error: %s\n", s.message().c_str());
    return 1;
}

} // namespace

int main(int argc, char ** argv) {
    Options  o;
    CLI::App app{"avs-kv-bench: KV cache formats: bytes, VRAM, speed, drift vs bf16, offload (random weights)"};
    app.add_option("--backend", o.backend, "auto | cpu | cuda");
    app.add_option("--out", o.out, "directory for <date>-<gpu>-kv-formats.json");
    app.add_option("--commit", o.commit, "commit to record (default: $AVS_COMMIT)");
    app.add_option("--config", o.config, "model preset or config JSON");
    app.add_option("--formats", o.formats, "comma-separated formats (bf16 first: it is the reference)");
    app.add_option("--offload", o.offload, "formats also measured with CPU offload (empty: none)");
    app.add_option("--seconds", o.seconds, "video length of the fidelity rollout at 16 fps")->check(CLI::Range(0.5, 3600.0));
    app.add_option("--offload-chunks", o.offload_chunks, "chunks of each offload rollout")->check(CLI::Range(1, 10000));
    app.add_option("--height", o.height, "pixels (multiple of 16)");
    app.add_option("--width", o.width, "pixels (multiple of 16)");
    app.add_option("--window", o.window, "window in latent frames")->check(CLI::Range(3, 1000));
    app.add_option("--sinks", o.sinks, "sink frames")->check(CLI::Range(0, 100));
    app.add_option("--seed", o.seed, "noise and weight seed");
    CLI11_PARSE(app, argc, argv);
    log_set_level(LogLevel::warn);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (o.commit.empty() && std::getenv("AVS_COMMIT")) o.commit = std::getenv("AVS_COMMIT");

    auto be_r = make_backend(o.backend);
    if (!be_r) return fail(be_r.status().with_context("--backend"));
    Backend & be = *be_r.value();
    std::string gpu = "cpu";
#if defined(AVS_HAVE_CUDA)
    if (be.device() == Device::cuda) gpu = std::regex_replace(cuda_device_description(0), std::regex(" \\(.*"), "");
#endif
    auto mc = config_resolve(o.config);
    if (!mc) return fail(mc.status().with_context("--config"));
    auto dit_r = Dit::random_init(be, mc.value(), o.seed);
    if (!dit_r) return fail(dit_r.status());
    Dit & dit = *dit_r.value();
    if (auto st = dit.set_zero_context(); !st.ok()) return fail(st);

    Bench b{be, dit, {}, 0, o.seed};
    b.g.chunk_frames = 3, b.g.steps = o.steps, b.g.shift = 5.0, b.g.height_latent = o.height / 8, b.g.width_latent = o.width / 8;
    b.g.cache.window = o.window, b.g.cache.sinks = o.sinks, b.g.cache.rope_mode = RopeMode::absolute;
    // first chunk: 1 + 4 * 2 pixel frames, then 12 each
    b.chunks = std::max(1, int(std::ceil((o.seconds * 16.0 - 9.0) / 12.0)) + 1);
    const int gh = b.g.height_latent / mc.value().patch_size[1], gw = b.g.width_latent / mc.value().patch_size[2], tpf = gh * gw;

    json doc, config, metrics, curves, layers, extra;
    doc["bench"] = "kv-formats";
    doc[be.device() == Device::cuda ? "gpu" : "cpu"] = gpu;
    doc["commit"] = o.commit.empty() ? json(nullptr) : json(o.commit);
    doc["date"]   = iso_now_utc();
    config = {{"model", o.config}, {"weights", "random"}, {"height", o.height}, {"width", o.width}, {"chunk_frames", 3},
              {"steps", o.steps}, {"commit_pass", true}, {"window", o.window}, {"sinks", o.sinks}, {"rope_mode", "absolute"},
              {"seconds", o.seconds}, {"chunks", b.chunks}, {"offload_chunks", o.offload_chunks}, {"seed", o.seed},
              {"psnr", "latent PSNR vs the bf16 rollout at the last chunk, peak = max |bf16 latent|"},
              {"decoded_ssim", "SSIM (Wang 2004: 11x11 Gaussian sigma 1.5, L = 1, per channel, valid region) of each decoded "
                               "last-chunk frame vs bf16's, mean over the frames"},
              {"fps", "12 pixel frames / median wall ms per chunk after the window is full"}};
    std::printf("avs-kv-bench: %s, %s %dx%d, window %d, %d chunks (%.0f s of video) per format\n", gpu.c_str(), o.config.c_str(),
                o.width, o.height, o.window, b.chunks, o.seconds);

    auto write = [&] {
        doc["config"] = config;
        doc["metrics"] = metrics;
        doc["curves"] = curves;
        doc["attention_error_per_layer"] = layers;
        doc["details"] = extra;
        if (o.out.empty()) return;
        std::error_code ec;
        std::filesystem::create_directories(o.out, ec);
        const std::string path = bench::result_path(o.out, doc["date"].get<std::string>(), gpu, "kv-formats");
        std::ofstream     f(path);
        f << doc.dump(2) << "\n";
        if (!f.good()) std::fprintf(stderr, "avs-kv-bench: error: %s: write failed\n", path.c_str());
    };
    // the issue's setup; anything else gets "_custom" keys so that no tool mistakes it for that
    const bool w21 = o.window == 21 && o.sinks == 0 && o.steps == 4 && o.config == "wan2.1-t2v-1.3b" && o.height == 480 && o.width == 832;
    // offload fps is a median over steady chunks: at least 8 after the window filled
    const int steady0 = (o.window + 2) / 3;
    if (!split(o.offload).empty() && o.offload_chunks < steady0 + 8)
        return fail(make_error(ErrorCode::invalid_argument, "--offload-chunks %d: at least %d (the window fills after %d chunks, then 8 to time)",
                               o.offload_chunks, steady0 + 8, steady0));
    auto key = [&](const std::string & k) { return w21 ? k : k + "_custom"; };

    Rollout                    ref;
    std::unique_ptr<Generator> ref_gen;
    std::vector<Tensor>        ref_taps, ref_frames;
    for (const std::string & name : split(o.formats)) {
        auto f = kv_format_parse(name);
        if (!f) return fail(f.status().with_context("--formats"));
        const bool is_ref = f.value() == KvFormat::bf16;
        if (!is_ref && ref.latents.empty()) return fail(make_error(ErrorCode::invalid_argument, "--formats: bf16 must come first (the reference)"));
        std::unique_ptr<Generator> gen;
        auto r = b.run(f.value(), false, b.chunks, &gen);
        if (!r) return fail(r.status().with_context(name));
        const Rollout & R = r.value();
        metrics[key("kv_bytes_w21_" + name)]  = R.kv_bytes;
        metrics[key("peak_vram_w21_" + name)] = R.peak;
        metrics[key("fps_w21_" + name)]       = b.fps(R);
        extra[name]["chunk_ms"]               = R.chunk_ms;
        auto am = attention_alone_ms(be, mc.value(), tpf, gh, gw, o.window, 3, f.value(), o.attn_iters);
        if (am) extra[name]["attention_alone_ms"] = am.value();
        const int64_t next0 = int64_t(b.chunks) * 3;
        if (is_ref) {
            ref = R;
            ref_gen = std::move(gen);
            auto t = attention_taps(be, dit, ref_gen->cache(), b.g, next0);
            if (!t) return fail(t.status().with_context("bf16 attention taps"));
            ref_taps = std::move(t).value();
            auto fr = decode_last(be, R.latents.back());
            if (fr) ref_frames = std::move(fr).value();
            // attention error per layer: the bf16 history re-encoded in each format, one forward each;
            // done now so that the bf16 cache is freed before the other formats' peak VRAM is measured
            for (const std::string & other : split(o.formats)) {
                auto of = kv_format_parse(other);
                if (!of || of.value() == KvFormat::bf16) continue;
                KvCacheConfig kc = ref_gen->cache().config();
                kc.format = of.value();
                auto mig = ref_gen->cache().migrate(kc, next0);
                if (!mig) return fail(mig.status().with_context(other + " migrate"));
                auto t2 = attention_taps(be, dit, mig.value(), b.g, next0);
                if (!t2) return fail(t2.status().with_context(other + " attention taps"));
                std::vector<double> le;
                for (size_t l = 0; l < t2.value().size() && l < ref_taps.size(); ++l) le.push_back(rel_err(t2.value()[l], ref_taps[l]));
                layers[other] = le;
            }
            ref_gen.reset();
        } else {
            std::vector<double> rel, pl;
            for (size_t i = 0; i < R.latents.size(); ++i) {
                rel.push_back(rel_err(R.latents[i], ref.latents[i]));
                pl.push_back(psnr(R.latents[i], ref.latents[i]));
            }
            curves[name] = {{"latent_rel_err", rel}, {"latent_psnr", pl}};
            metrics[key("psnr_" + name)] = pl.back();
            // chunk 0 reads no stored history: what is left there is the attention kernel's own difference
            // from bf16's (another kernel for int4 / NVFP4), the floor under the format's PSNR
            extra[name]["psnr_chunk0_kernel_floor"] = pl.front();
            const std::vector<double> le = layers.contains(name) ? layers[name].get<std::vector<double>>() : std::vector<double>{};
            auto        fr = decode_last(be, R.latents.back());
            std::string decoded;  // stays empty when a decode failed: the bench goes on without it
            if (fr && !ref_frames.empty() && fr.value().size() == ref_frames.size()) {
                const double n  = double(fr.value().size());
                double       sp = 0, ss = 0;
                bool         ssim_ok = true;
                for (size_t i = 0; i < fr.value().size(); ++i) {
                    sp += psnr(fr.value()[i], ref_frames[i], 1.0);
                    auto si = bench::ssim(fr.value()[i], ref_frames[i]);
                    if (!si && ssim_ok) std::fprintf(stderr, "avs-kv-bench: warning: %s: SSIM: %s\n", name.c_str(), si.status().message().c_str());
                    ssim_ok = ssim_ok && si.ok();
                    if (si) ss += si.value();
                }
                extra[name]["decoded_psnr_last_chunk"] = sp / n;
                char buf[96];
                std::snprintf(buf, sizeof buf, "; decoded last chunk PSNR %.1f dB", sp / n);
                decoded = buf;
                if (ssim_ok) {
                    extra[name]["decoded_ssim_last_chunk"] = ss / n;
                    std::snprintf(buf, sizeof buf, ", SSIM %.6f (1 - SSIM %.2e)", ss / n, 1.0 - ss / n);  // near 1: the gap says more
                    decoded += buf;
                }
            }
            std::printf("  %-6s drift: latent rel err %.4f -> %.4f, PSNR %.1f dB at %d chunks; attention rel err per layer %.4f..%.4f%s\n",
                        name.c_str(), rel.front(), rel.back(), pl.back(), b.chunks, le.empty() ? 0.0 : *std::min_element(le.begin(), le.end()),
                        le.empty() ? 0.0 : *std::max_element(le.begin(), le.end()), decoded.c_str());
        }
        std::printf("  %-6s kv %.2f GB, peak VRAM %.2f GB, %.2f fps (median %.1f ms/chunk), attention alone %.3f ms\n", name.c_str(),
                    double(R.kv_bytes) * 1e-9, double(R.peak) * 1e-9, b.fps(R), double(12) / b.fps(R) * 1e3, am ? am.value() : -1.0);
        write();
    }
    for (const std::string & name : split(o.offload)) {
        auto f = kv_format_parse(name);
        if (!f) return fail(f.status().with_context("--offload"));
        auto on = b.run(f.value(), true, o.offload_chunks);
        if (!on) return fail(on.status().with_context(name + " offload"));
        auto off = b.run(f.value(), false, o.offload_chunks);
        if (!off) return fail(off.status().with_context(name + " resident"));
        bool same = true;
        for (size_t i = 0; i < on.value().latents.size(); ++i)
            same = same && std::memcmp(on.value().latents[i].raw(), off.value().latents[i].raw(), on.value().latents[i].nbytes()) == 0;
        metrics[key("fps_w21_" + name + "_offload")] = b.fps(on.value());
        extra[name + "_offload"] = {{"fps_resident_same_run", b.fps(off.value())}, {"bit_identical_to_resident", same},
                                    {"peak_vram", on.value().peak}, {"kv_device_bytes", on.value().kv_device},
                                    {"h2d_gb", on.value().h2d * 1e-9}, {"d2h_gb", on.value().d2h * 1e-9}, {"chunk_ms", on.value().chunk_ms}};
        std::printf("  %-6s offload: %.2f fps vs %.2f resident (same run), peak VRAM %.2f GB, bit-identical %s\n", name.c_str(),
                    b.fps(on.value()), b.fps(off.value()), double(on.value().peak) * 1e-9, same ? "yes" : "NO");
        write();
    }
    std::printf("%s\n", metrics.dump(2).c_str());
    return 0;
}
