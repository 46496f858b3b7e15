// The audio-conditioned DiT (config conditioning "audio"): its checkpoint keys, the adapter, per-frame
// cross-attention, causality, and the cached AR path against the block-causal full forward.
#include <catch2/catch.hpp>

#include "dit_fixture.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/sampler.h"

#include <cmath>
#include <filesystem>
#include <set>

using namespace avs;

namespace {

ModelConfig audio_tiny() {
    ModelConfig c = config_preset("tiny").value();
    c.name = "tiny-audio", c.conditioning = Conditioning::audio;
    c.audio_mels = 80, c.audio_window = 32, c.audio_tokens = 4;
    return c;
}

// [F, 32, 80] log-mel-like windows: silence (ln 1e-10) with speech-like bursts that depend on the frame
Tensor windows(int64_t F, uint64_t seed) {
    Tensor w = test::randn(Shape{F, 32, 80}, seed, 2.0f);
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] += (i / (32 * 80)) % 2 ? -4.0f : -20.0f;
    return w;
}

constexpr int kC = 3, kH = 8, kW = 8;

} // namespace

TEST_CASE("audio conditioning: checkpoint keys replace text_embedding with audio_embedding", "[dit][audio]") {
    const ModelConfig c = audio_tiny();
    REQUIRE(c.validate().ok());
    DitWeights w;
    std::set<std::string> names;
    for (auto & s : weight_slots(w, c)) names.insert(s.name);
    REQUIRE(names.count("audio_embedding.0.weight"));
    REQUIRE(names.count("audio_embedding.2.bias"));
    REQUIRE(names.count("audio_embedding.pos"));
    REQUIRE_FALSE(names.count("text_embedding.0.weight"));
    for (auto & s : weight_slots(w, c))
        if (s.name == "audio_embedding.0.weight") REQUIRE(s.checkpoint_shape == Shape{128, 8 * 80});
    ModelConfig bad = c;
    bad.audio_window = 30;
    REQUIRE_THAT(bad.validate().message(), Catch::Contains("audio_window"));
    // the config round-trips through our JSON
    const ModelConfig back = config_from_json(config_to_json(c), "test").value();
    REQUIRE(back.conditioning == Conditioning::audio);
    REQUIRE(back.audio_tokens == 4);
    // without a config its shapes cannot tell windows and bands: the error says so and how to give one
    // (it said text_embedding was missing)
    const auto dir = test::temp_dir("audio-infer");
    const std::string path = (dir / "audio.safetensors").string();
    REQUIRE(test::save_random_weights(path, c, 3, DType::f32, [](auto & n) { return n; }).ok());
    CpuBackend be;
    auto d = Dit::load(be, path, nullptr);
    REQUIRE_FALSE(d.ok());
    REQUIRE_THAT(d.status().message(), Catch::Contains(path) && Catch::Contains("audio-conditioned") && Catch::Contains("--config"));
    REQUIRE(Dit::load(be, path, &c).ok());
    std::filesystem::remove_all(dir);
}

TEST_CASE("audio conditioning: the output follows the audio, and a chunk never hears a later chunk's audio", "[dit][audio]") {
    CpuBackend be;
    auto       dit = Dit::random_init(be, audio_tiny(), test::test_seed()).value();
    REQUIRE_THAT(dit->set_context(test::randn(Shape{3, 64}, 1)).message(), Catch::Contains("audio"));
    REQUIRE_THAT(dit->set_audio(test::randn(Shape{3, 30, 80}, 1)).message(), Catch::Contains("[frames, 32, 80]"));
    REQUIRE_THAT(dit->set_audio(Tensor::host(DType::bf16, Shape{3, 32, 80})).message(), Catch::Contains("expected host f32"));
    const Tensor x = test::randn(Shape{16, 2 * kC, kH, kW}, 2);
    const std::vector<double> t(size_t(2 * kC), 500.0);
    Tensor a = windows(2 * kC, 3), b = windows(2 * kC, 3);
    for (int64_t i = kC * 32 * 80; i < b.numel(); ++i) b.data<float>()[i] += 3.0f;  // louder second chunk
    Tensor va = Tensor::host(DType::f32, x.shape()), vb = Tensor::host(DType::f32, x.shape());
    REQUIRE(dit->set_audio(a).ok());
    REQUIRE(dit->forward_full(x, t, kC, va).ok());
    REQUIRE(dit->set_audio(b).ok());
    REQUIRE(dit->forward_full(x, t, kC, vb).ok());
    REQUIRE(test::bit_equal(test::frames_of(va, 0, kC), test::frames_of(vb, 0, kC)));   // causal
    REQUIRE(test::rel_err(test::frames_of(vb, kC, kC), test::frames_of(va, kC, kC)) > 1e-3);  // it listens
    // a forward for another frame count than the audio set is an error, not a silent mismatch
    Tensor v1 = Tensor::host(DType::f32, Shape{16, kC, kH, kW});
    REQUIRE_FALSE(dit->forward_full(test::randn(Shape{16, kC, kH, kW}, 4), std::vector<double>(kC, 500.0), kC, v1).ok());
}

TEST_CASE("audio conditioning: AR through the cache equals the block-causal full forward (fp32)", "[dit][audio]") {
    CpuBackend be;
    auto       dit = Dit::random_init(be, audio_tiny(), test::test_seed() + 1).value();
    const int  chunks = 3;
    KvCacheConfig kc;
    kc.window = kC * chunks, kc.chunk_frames = kC;
    KvCache cache = KvCache::create(be, kc, dit->config().layers, (kH / 2) * (kW / 2), dit->config().heads, dit->config().head_dim()).value();
    const Tensor aud = windows(kC * chunks, 5);
    Tensor clean = Tensor::host(DType::f32, Shape{16, kC * chunks, kH, kW});
    for (int n = 0; n < chunks; ++n) {
        const int64_t f0 = int64_t(n) * kC;
        Tensor x = test::randn(Shape{16, kC, kH, kW}, 10 + uint64_t(n)), v = Tensor::host(DType::f32, x.shape());
        REQUIRE(dit->set_audio(aud.slice(0, f0, f0 + kC)).ok());
        REQUIRE(dit->forward_chunk(x, std::vector<double>(kC, 750.0), cache, 0, f0, v, nullptr, false).ok());
        // reference: clean history at t = 0 plus this input, over all frames' audio so far
        Tensor X = Tensor::host(DType::f32, Shape{16, f0 + kC, kH, kW}), V = Tensor::host(DType::f32, X.shape());
        test::copy_frames(clean, 0, X, 0, f0);
        test::copy_frames(x, 0, X, f0, kC);
        std::vector<double> t(size_t(f0), 0.0);
        t.insert(t.end(), kC, 750.0);
        REQUIRE(dit->set_audio(aud.slice(0, 0, f0 + kC)).ok());
        REQUIRE(dit->forward_full(X, t, kC, V).ok());
        INFO("chunk " << n);
        REQUIRE(test::rel_err(v, test::frames_of(V, f0, kC)) <= 1e-5);
        // commit the clean chunk
        Tensor x0 = test::randn(Shape{16, kC, kH, kW}, 90 + uint64_t(n));
        REQUIRE(dit->set_audio(aud.slice(0, f0, f0 + kC)).ok());
        REQUIRE(dit->forward_chunk(x0, std::vector<double>(kC, 0.0), cache, 0, f0, v).ok());
        test::copy_frames(x0, 0, clean, f0, kC);
    }
}

TEST_CASE("audio conditioning: the generator asks its audio source for each chunk's frames", "[dit][audio]") {
    CpuBackend be;
    auto       dit = Dit::random_init(be, audio_tiny(), test::test_seed() + 2).value();
    GenConfig  g;
    g.height_latent = kH, g.width_latent = kW, g.steps = 2, g.cache.window = 6;
    auto gen = Generator::create(*dit, g).value();
    std::vector<int64_t> asked;
    gen->set_audio_source([&](int64_t frame0, int frames, const Tensor & w) -> Status {
        asked.push_back(frame0);
        REQUIRE(frames == kC);
        REQUIRE(w.shape() == Shape{kC, 32, 80});
        const Tensor src = windows(kC, 20 + uint64_t(frame0));
        std::copy(src.data<float>(), src.data<float>() + src.numel(), w.data<float>());
        return {};
    });
    SeededNoise noise(1);
    Tensor      x = Tensor::host(DType::f32, Shape{16, kC, kH, kW});
    for (int i = 0; i < 3; ++i) REQUIRE(gen->next_chunk(noise, x).ok());
    REQUIRE(asked == std::vector<int64_t>{0, 3, 6});
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::isfinite(x.data<float>()[i]));
    // an audio source error names the chunk
    gen->set_audio_source([](int64_t, int, const Tensor &) -> Status { return make_error(ErrorCode::io, "mic gone"); });
    const Status st = gen->next_chunk(noise, x);
    REQUIRE_THAT(st.message(), Catch::Contains("mic gone") && Catch::Contains("chunk 3"));
}
