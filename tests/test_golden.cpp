// The CPU engine against goldens from the PyTorch reference in tools/reference (tiny config,
// official key names, bf16-stored weights, fixed noise). Regenerate: tools/reference/README.md.
#include <catch2/catch.hpp>

#include "dit_fixture.h"
#include "engine/runtime/generator.h"

using namespace avs;

namespace {

std::string meta(const SafetensorsFile & f, const std::string & key) {
    auto it = f.metadata().find(key);
    REQUIRE(it != f.metadata().end());
    return it->second;
}

std::unique_ptr<Dit> golden_dit(Backend & be) {
    auto cfg = config_from_file(test::data_path("tiny_config.json"));
    REQUIRE(cfg.ok());
    auto dit = Dit::load(be, test::data_path("tiny_weights.safetensors"), &cfg.value());
    REQUIRE(dit.ok());
    REQUIRE(dit.value()->set_context(test::read_named(test::data_path("tiny_context.safetensors"), "context")).ok());
    return std::move(dit).value();
}

void check_rollout(const std::string & name) {
    const std::string path = test::data_path("golden_" + name + ".safetensors");
    auto file = SafetensorsFile::open(path);
    REQUIRE(file.ok());
    const SafetensorsFile & f = *file.value();

    CpuBackend be;
    auto       dit = golden_dit(be);
    GenConfig  g;
    g.chunk_frames     = std::stoi(meta(f, "chunk_frames"));
    g.steps            = std::stoi(meta(f, "steps"));
    g.shift            = std::stod(meta(f, "shift"));
    g.height_latent    = std::stoi(meta(f, "height_latent"));
    g.width_latent     = std::stoi(meta(f, "width_latent"));
    g.cache.window     = std::stoi(meta(f, "window"));
    g.cache.sinks      = std::stoi(meta(f, "sinks"));
    g.cache.rope_mode  = meta(f, "rope_mode") == "window" ? RopeMode::window : RopeMode::absolute;
    g.cache.mode       = meta(f, "cache_mode") == "step" ? CacheMode::step : CacheMode::commit;
    const int chunks   = std::stoi(meta(f, "chunks"));
    auto gen = Generator::create(*dit, g);
    REQUIRE(gen.ok());
    TensorNoise noise(test::read_named(path, "noise"));
    Tensor want = test::read_named(path, "latents");
    Tensor got  = Tensor::host(DType::f32, want.shape());
    Tensor chunk = Tensor::host(DType::f32, Shape{16, g.chunk_frames, g.height_latent, g.width_latent});
    for (int c = 0; c < chunks; ++c) {
        REQUIRE(gen.value()->next_chunk(noise, chunk).ok());
        test::copy_frames(chunk, 0, got, int64_t(c) * g.chunk_frames, g.chunk_frames);
        const double e = test::rel_err(test::frames_of(got, 0, int64_t(c + 1) * g.chunk_frames),
                                       test::frames_of(want, 0, int64_t(c + 1) * g.chunk_frames));
        INFO(name << " after chunk " << c << ": rel err " << e);
        REQUIRE(e <= 1e-4);
    }
    REQUIRE(test::max_abs(want) > 0.1);
}

} // namespace

TEST_CASE("golden: commit mode, window holds every frame, absolute RoPE", "[golden][acceptance]") { check_rollout("commit_full"); }
TEST_CASE("golden: commit mode, window 6 with 1 sink (non-aligned ring), window RoPE", "[golden]") { check_rollout("commit_w6_s1_window"); }
TEST_CASE("golden: commit mode, window 3 with 3 sinks, absolute RoPE", "[golden]") { check_rollout("commit_w3_s3_absolute"); }
TEST_CASE("golden: step mode, window 6, window RoPE", "[golden]") { check_rollout("step_w6_s0_window"); }
TEST_CASE("golden: 2 steps at shift 3", "[golden]") { check_rollout("commit_steps2_shift3"); }

TEST_CASE("golden: one forward's intermediates (time, text, patch embedding, block 0, output)", "[golden]") {
    const std::string path = test::data_path("golden_layer_tiny.safetensors");
    CpuBackend be;
    auto dit = golden_dit(be);
    Tensor x = test::read_named(path, "x"), t = test::read_named(path, "t");
    std::vector<double> ts;
    for (int64_t i = 0; i < t.numel(); ++i) ts.push_back(t.data<float>()[i]);
    KvCacheConfig kc;
    kc.window = 12; kc.chunk_frames = int(x.dim(1));
    const ModelConfig & m = dit->config();
    auto cache = KvCache::create(be, kc, m.layers, int(x.dim(2) / 2 * x.dim(3) / 2), m.heads, m.head_dim()).value();
    Tensor out = Tensor::host(DType::f32, x.shape());
    DitTaps taps;
    REQUIRE(dit->forward_chunk(x, ts, cache, 0, 0, out, &taps).ok());
    Tensor text = Tensor::host(DType::f32, dit->text_embedding().shape());
    REQUIRE(be.download(text, dit->text_embedding()).ok());
    CHECK(test::rel_err(text, test::read_named(path, "text_emb")) <= 1e-5);
    CHECK(test::rel_err(taps.e, test::read_named(path, "e")) <= 1e-5);
    CHECK(test::rel_err(taps.e0, test::read_named(path, "e0")) <= 1e-5);
    CHECK(test::rel_err(taps.tokens_in, test::read_named(path, "tokens_in")) <= 1e-5);
    CHECK(test::rel_err(taps.block0_out, test::read_named(path, "block0_out")) <= 1e-5);
    CHECK(test::rel_err(out, test::read_named(path, "out")) <= 1e-4);
}
