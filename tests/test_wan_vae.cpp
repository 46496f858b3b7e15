// The streaming Wan2.1 VAE decoder on the CPU backend against the PyTorch reference
// (tools/reference/wan_vae_ref.py; goldens from make_wan_vae_goldens.py: random weights at dim 6,
// latents [16, 4, 4, 4], the official per-latent loop and the layer-by-layer batch formulation).
#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/decode/wan_vae.h"
#include "engine/io/safetensors.h"
#include "test_util.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>

using namespace avs;

namespace {

const std::string k_weights = "wan_vae_tiny_weights.safetensors";

std::unique_ptr<WanVaeDecoder> load(Backend & be, const std::string & path) {
    auto d = WanVaeDecoder::load(be, path, 0);
    INFO((d.ok() ? std::string() : d.status().message()));
    REQUIRE(d.ok());
    return std::move(d).value();
}

// Push latents frames [f0, f1) and gather the output as [3, N, H, W] (the reference's layout),
// checking each push's frame count (1 for the stream's first latent, 4 after).
Tensor decode(VideoDecoder & d, const Tensor & lat, int64_t f0, int64_t f1) {
    std::vector<Tensor> frames;
    for (int64_t f = f0; f < f1; ++f) {
        std::vector<Tensor> out;
        const bool first = static_cast<WanVaeDecoder &>(d).pushed() == 0;
        REQUIRE(d.push(lat, f, out).ok());
        REQUIRE(out.size() == (first ? 1u : 4u));
        frames.insert(frames.end(), out.begin(), out.end());
    }
    const int64_t N = int64_t(frames.size()), H = frames[0].dim(0), W = frames[0].dim(1);
    REQUIRE(H == 8 * lat.dim(2));
    REQUIRE(W == 8 * lat.dim(3));
    Tensor r = Tensor::host(DType::f32, Shape{3, N, H, W});
    for (int64_t n = 0; n < N; ++n) {
        REQUIRE(frames[size_t(n)].ndim() == 3);
        REQUIRE(frames[size_t(n)].dim(2) == 3);
        const float * src = frames[size_t(n)].data<float>();
        for (int64_t p = 0; p < H * W; ++p)
            for (int64_t c = 0; c < 3; ++c) r.data<float>()[(c * N + n) * H * W + p] = src[p * 3 + c];
    }
    return r;
}

// The first n frames of a [3, N, H, W] tensor.
Tensor first_frames(const Tensor & x, int64_t n) {
    const int64_t N = x.dim(1), hw = x.dim(2) * x.dim(3);
    Tensor        r = Tensor::host(DType::f32, Shape{3, n, x.dim(2), x.dim(3)});
    for (int64_t c = 0; c < 3; ++c)
        std::memcpy(r.data<float>() + c * n * hw, x.data<float>() + c * N * hw, size_t(n * hw) * 4);
    return r;
}


// Rewrite the tiny weights under other names (every tensor as f32, values unchanged).
void save_renamed(const std::string & out, const std::function<std::string(const std::string &)> & rename,
                  const std::function<bool(const std::string &, Tensor &)> & edit = {}) {
    REQUIRE(test::save_edited(test::data_path(k_weights), out, rename, edit));
}

std::string load_error(const std::string & path) {
    CpuBackend be;
    auto       d = WanVaeDecoder::load(be, path, 0);
    REQUIRE_FALSE(d.ok());
    return d.status().message();
}

} // namespace

TEST_CASE("wan vae: streaming decode equals the reference per-latent loop and its batch decode (fp32)", "[wan_vae][acceptance]") {
    const std::string gold = test::data_path("wan_vae_golden.safetensors");
    const Tensor      lat = test::read_named(gold, "latents");
    const Tensor      want_stream = test::read_named(gold, "out_stream"), want_batch = test::read_named(gold, "out_batch");
    CpuBackend        be;
    auto              d = load(be, test::data_path(k_weights));
    REQUIRE(d->config().dim == 6);
    REQUIRE(d->config().z_dim == 16);
    const Tensor got = decode(*d, lat, 0, lat.dim(1));
    REQUIRE(got.shape() == want_stream.shape());
    const double e_stream = test::rel_err(got, want_stream), e_batch = test::rel_err(got, want_batch);
    INFO("rel err vs streaming reference " << e_stream << ", vs batch reference " << e_batch);
    CHECK(e_stream <= 1e-5);
    CHECK(e_batch <= 1e-5);
    // push() returns the decoder output before the official clamp: the golden exceeds [-1, 1]
    REQUIRE(test::max_abs(want_stream) > 1.5);
    CHECK(test::max_abs(got) > 1.5);
    // and display conversion clamps: 0.5 x + 0.5 in [0, 1]
    CHECK(d->out_scale() == 0.5f);
    CHECK(d->out_offset() == 0.5f);
}

TEST_CASE("wan vae: T latents give 1 + 4(T - 1) frames and a shorter stream is a prefix", "[wan_vae]") {
    const std::string gold = test::data_path("wan_vae_golden.safetensors");
    const Tensor      lat = test::read_named(gold, "latents");
    const Tensor      want = test::read_named(gold, "out_stream");
    CpuBackend        be;
    auto              d = load(be, test::data_path(k_weights));
    for (int64_t T = 1; T <= 3; ++T) {
        d->reset();
        const Tensor got = decode(*d, lat, 0, T);
        REQUIRE(got.dim(1) == 1 + 4 * (T - 1));
        const double e = test::rel_err(got, first_frames(want, got.dim(1)));
        INFO("T = " << T << ": rel err " << e);
        CHECK(e <= 1e-5);
    }
}

TEST_CASE("wan vae: reset() restarts the stream identically", "[wan_vae]") {
    const Tensor lat = test::read_named(test::data_path("wan_vae_golden.safetensors"), "latents");
    CpuBackend   be;
    auto         fresh = load(be, test::data_path(k_weights));
    const Tensor ref = decode(*fresh, lat, 0, 4);

    auto d = load(be, test::data_path(k_weights));
    decode(*d, lat, 1, 4);  // another stream first (starts at a different latent: different caches)
    REQUIRE(d->state_bytes() > 0);
    d->reset();
    CHECK(d->state_bytes() == 0);
    CHECK(d->pushed() == 0);
    CHECK(test::bit_equal(decode(*d, lat, 0, 4), ref));
    d->reset();
    CHECK(test::bit_equal(decode(*d, lat, 0, 4), ref));
}

TEST_CASE("wan vae: the streaming state holds exactly two input frames per causal conv", "[wan_vae]") {
    const Tensor lat = test::read_named(test::data_path("wan_vae_golden.safetensors"), "latents");
    CpuBackend   be;
    auto         d = load(be, test::data_path(k_weights));
    decode(*d, lat, 0, 3);  // after 3 pushes every history is full (time_conv's starts at push 2)
    const int64_t hw = lat.dim(2) * lat.dim(3), c = d->config().dim, z = d->config().z_dim;
    // per resolution: conv1 input; 11 convs at 4d; 1 at 2d + 6 at 4d (x4 pixels); 6 at 2d (x16); 7 at d (x64)
    const int64_t hist = 2 * (z * hw + 11 * 4 * c * hw + (2 * c + 6 * 4 * c) * 4 * hw + 6 * 2 * c * 16 * hw + 7 * c * 64 * hw);
    const int64_t out = 4 * 3 * 64 * hw;  // the frames handed out by the last push
    CHECK(d->state_bytes() == uint64_t(hist + out) * 4);
}

TEST_CASE("wan vae: diffusers names and prefixed official names load to the same output", "[wan_vae][loader]") {
    const Tensor lat = test::read_named(test::data_path("wan_vae_golden.safetensors"), "latents");
    CpuBackend   be;
    auto         d = load(be, test::data_path(k_weights));
    const Tensor ref = decode(*d, lat, 0, 3);

    // official -> diffusers map written by the reference (independent of the engine's own mapping)
    std::ifstream  in(test::data_path("wan_vae_tiny_diffusers_names.json"));
    nlohmann::json names = nlohmann::json::parse(in);
    REQUIRE(names.size() == 108);
    const auto dir = test::temp_dir("wan-vae-names");

    const std::string dif = (dir / "diffusers.safetensors").string();
    save_renamed(dif, [&](const std::string & n) {
        return names.contains(n) ? names[n].get<std::string>() : n;  // stray encoder keys keep their names
    });
    auto dd = load(be, dif);
    CHECK(test::bit_equal(decode(*dd, lat, 0, 3), ref));

    const std::string pre = (dir / "prefixed.safetensors").string();
    save_renamed(pre, [](const std::string & n) { return "first_stage_model." + n; });
    auto dp = load(be, pre);
    CHECK(test::bit_equal(decode(*dp, lat, 0, 3), ref));
    std::filesystem::remove_all(dir);
}

TEST_CASE("wan vae: missing and wrong-shape tensors give errors naming the file and tensor", "[wan_vae][loader]") {
    const auto dir = test::temp_dir("wan-vae-errors");
    auto keep = [](const std::string & n) { return n; };

    const std::string missing = (dir / "missing.safetensors").string();
    save_renamed(missing, keep, [](const std::string & n, Tensor &) { return n != "decoder.upsamples.7.time_conv.weight"; });
    std::string e = load_error(missing);
    INFO(e);
    CHECK(e.find("decoder.upsamples.7.time_conv.weight") != std::string::npos);
    CHECK(e.find("missing.safetensors") != std::string::npos);
    CHECK(e.find("[48, 24, 3, 1, 1]") != std::string::npos);  // 2c x c x 3 x 1 x 1 with c = 4 dim = 24

    // the same element count, transposed: must not load silently
    const std::string transposed = (dir / "transposed.safetensors").string();
    save_renamed(transposed, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.upsamples.4.shortcut.weight") t = t.reshape(Shape{12, 24, 1, 1, 1});
        return true;
    });
    e = load_error(transposed);
    INFO(e);
    CHECK(e.find("decoder.upsamples.4.shortcut.weight") != std::string::npos);
    CHECK(e.find("[24, 12, 1, 1, 1]") != std::string::npos);

    const std::string short_bias = (dir / "short_bias.safetensors").string();
    save_renamed(short_bias, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.head.2.bias") t = t.slice(0, 0, 2);
        return true;
    });
    e = load_error(short_bias);
    INFO(e);
    CHECK(e.find("decoder.head.2.bias") != std::string::npos);

    const std::string no_decoder = (dir / "no_decoder.safetensors").string();
    save_renamed(no_decoder, keep, [](const std::string & n, Tensor &) { return n.rfind("decoder.conv1.", 0) != 0; });
    e = load_error(no_decoder);
    INFO(e);
    CHECK(e.find("decoder.conv1.weight") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("wan vae: random weights at the real width decode to finite frames", "[wan_vae]") {
    CpuBackend be;
    auto       r = load_wan_vae_decoder(be, "", 1234);
    REQUIRE(r.ok());
    VideoDecoder & d = *r.value();
    CHECK(static_cast<WanVaeDecoder &>(d).config().dim == 96);
    CHECK(d.weight_bytes() == uint64_t(73295603) * 4);  // decoder + conv2 parameters (wan21-model.md 3.1), f32
    const Tensor lat = test::randn(Shape{16, 2, 2, 3}, 77);
    const Tensor got = decode(d, lat, 0, 2);
    REQUIRE(got.dim(1) == 5);
    const double m = test::max_abs(got);
    INFO("max |x| " << m);
    CHECK(std::isfinite(m));
    CHECK(m > 0.0);
    CHECK_FALSE(load_wan_vae_decoder(be, "", 0).ok());
}

// Timing (not run by default): avs_tests_cpu "[.wan_vae_bench]"
TEST_CASE("wan vae: CPU time per latent", "[.wan_vae_bench]") {
    CpuBackend be;
    auto time_latents = [&](VideoDecoder & d, int64_t h, int64_t w, int n) {
        const Tensor lat = test::randn(Shape{16, n, h, w}, 5);
        for (int f = 0; f < n; ++f) {
            std::vector<Tensor> out;
            const auto          t0 = std::chrono::steady_clock::now();
            REQUIRE(d.push(lat, f, out).ok());
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("latent %d at %lldx%lld: %zu frames in %.3f s, state %.1f MiB\n", f, (long long) h, (long long) w,
                        out.size(), s, double(d.state_bytes()) / 1048576.0);
        }
    };
    auto tiny = load(be, test::data_path(k_weights));
    time_latents(*tiny, 4, 4, 3);
    auto real = load_wan_vae_decoder(be, "", 1);
    REQUIRE(real.ok());
    const char * hw = std::getenv("AVS_WAN_VAE_BENCH_HW");  // e.g. "15x26"
    int64_t      h = 4, w = 6;
    if (hw) std::sscanf(hw, "%lldx%lld", reinterpret_cast<long long *>(&h), reinterpret_cast<long long *>(&w));
    time_latents(*real.value(), h, w, 2);
}
