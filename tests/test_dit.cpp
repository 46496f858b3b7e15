#include <catch2/catch.hpp>

#include "dit_fixture.h"
#include "engine/cache/kv_codec.h"
#include "engine/model/name_map.h"
#include "engine/runtime/sampler.h"

#include <fstream>

using namespace avs;
using test::frames_of;

namespace {

constexpr int kC = 3, kChunks = 4, kH = 8, kW = 8;

std::unique_ptr<Dit> tiny_dit(Backend & be, uint64_t seed) {
    auto d = Dit::random_init(be, config_preset("tiny").value(), seed);
    REQUIRE(d.ok());
    return std::move(d).value();
}

KvCache make_cache(Backend & be, const ModelConfig & m, CacheMode mode, int window, int sinks = 0) {
    KvCacheConfig c;
    c.mode = mode; c.window = window; c.sinks = sinks; c.chunk_frames = kC; c.steps = 4;
    return KvCache::create(be, c, m.layers, (kH / 2) * (kW / 2), m.heads, m.head_dim()).value();
}

} // namespace

TEST_CASE("commit mode: AR through the cache equals one block-causal full forward (fp32, rel <= 1e-5)", "[dit][acceptance]") {
    CpuBackend be;
    auto       dit = tiny_dit(be, test::test_seed());
    REQUIRE(dit->set_context(test::randn(Shape{7, 64}, 50)).ok());
    const ModelConfig & m = dit->config();
    KvCache cache = make_cache(be, m, CacheMode::commit, kC * kChunks);
    const auto ts = sampler_timesteps(4, 5.0);

    Tensor clean = Tensor::host(DType::f32, Shape{16, kC * kChunks, kH, kW});  // committed x0 of each chunk
    Tensor v_ar  = Tensor::host(DType::f32, Shape{16, kC, kH, kW});
    double worst = 0;
    for (int n = 0; n < kChunks; ++n) {
        const int64_t f0 = int64_t(n) * kC;
        for (int s = 0; s < 4; ++s) {
            Tensor x = test::randn(Shape{16, kC, kH, kW}, 100 + uint64_t(n * 10 + s));
            REQUIRE(dit->forward_chunk(x, std::vector<double>(kC, ts[size_t(s)]), cache, 0, f0, v_ar).ok());
            // Full forward over [clean chunks 0..n-1 at t = 0, this step's input at t_s].
            Tensor X = Tensor::host(DType::f32, Shape{16, f0 + kC, kH, kW});
            test::copy_frames(clean, 0, X, 0, f0);
            test::copy_frames(x, 0, X, f0, kC);
            std::vector<double> t(size_t(f0), 0.0);
            t.insert(t.end(), kC, ts[size_t(s)]);
            Tensor V = Tensor::host(DType::f32, X.shape());
            REQUIRE(dit->forward_full(X, t, kC, V).ok());
            const double e = test::rel_err(v_ar, frames_of(V, f0, kC));
            worst = std::max(worst, e);
            INFO("chunk " << n << " step " << s);
            REQUIRE(e <= 1e-5);
        }
        // commit pass with this chunk's clean latent
        Tensor x0 = test::randn(Shape{16, kC, kH, kW}, 900 + uint64_t(n));
        REQUIRE(dit->forward_chunk(x0, std::vector<double>(kC, 0.0), cache, 0, f0, v_ar).ok());
        test::copy_frames(x0, 0, clean, f0, kC);
    }
    WARN("worst AR vs full rel err " << worst);
    REQUIRE(test::max_abs(v_ar) > 0.1);  // not a degenerate model
}

TEST_CASE("step mode: step s of a chunk sees the earlier chunks' step-s K/V, and only those", "[dit][acceptance]") {
    // Pinned down as: for every step s, the AR outputs of all chunks equal one block-causal full
    // forward over the concatenation of the chunks' step-s inputs, all at t_s.
    CpuBackend be;
    auto       dit = tiny_dit(be, test::test_seed() + 1);
    const ModelConfig & m = dit->config();
    KvCache cache = make_cache(be, m, CacheMode::step, kC * kChunks);
    const auto ts = sampler_timesteps(4, 5.0);
    std::vector<std::vector<Tensor>> xin(4), vout(4);
    for (int n = 0; n < kChunks; ++n)
        for (int s = 0; s < 4; ++s) {
            Tensor x = test::randn(Shape{16, kC, kH, kW}, 300 + uint64_t(n * 10 + s));
            Tensor v = Tensor::host(DType::f32, x.shape());
            REQUIRE(dit->forward_chunk(x, std::vector<double>(kC, ts[size_t(s)]), cache, s, int64_t(n) * kC, v).ok());
            xin[size_t(s)].push_back(x);
            vout[size_t(s)].push_back(v);
        }
    for (int s = 0; s < 4; ++s) {
        Tensor X = Tensor::host(DType::f32, Shape{16, kC * kChunks, kH, kW});
        for (int n = 0; n < kChunks; ++n) test::copy_frames(xin[size_t(s)][size_t(n)], 0, X, int64_t(n) * kC, kC);
        Tensor V = Tensor::host(DType::f32, X.shape());
        REQUIRE(dit->forward_full(X, std::vector<double>(size_t(kC * kChunks), ts[size_t(s)]), kC, V).ok());
        for (int n = 0; n < kChunks; ++n) REQUIRE(test::rel_err(vout[size_t(s)][size_t(n)], frames_of(V, int64_t(n) * kC, kC)) <= 1e-5);
    }
    // A step never reads another step's cache: the step-0 caches differ from step-3's.
    const KvLayout & L = cache.layout();
    Tensor k0 = Tensor::host(DType::f32, Shape{L.elems()}), k3 = Tensor::host(DType::f32, Shape{L.elems()});
    kv_decode_frame(L, cache.store(0, 0).data<uint8_t>(), k0.data<float>(), nullptr);
    kv_decode_frame(L, cache.store(3, 0).data<uint8_t>(), k3.data<float>(), nullptr);
    REQUIRE(test::rel_err(k0, k3) > 1e-3);
}

TEST_CASE("text context is zero-padded to text_len before the MLP and attended unmasked", "[dit]") {
    CpuBackend be;
    auto       dit = tiny_dit(be, test::test_seed() + 2);
    Tensor short_ctx = test::randn(Shape{5, 64}, 60);
    Tensor full_ctx  = Tensor::host(DType::f32, Shape{32, 64});
    std::memcpy(full_ctx.raw(), short_ctx.raw(), short_ctx.nbytes());
    KvCache c1 = make_cache(be, dit->config(), CacheMode::commit, 3), c2 = make_cache(be, dit->config(), CacheMode::commit, 3);
    Tensor  x  = test::randn(Shape{16, kC, kH, kW}, 61);
    Tensor  a = Tensor::host(DType::f32, x.shape()), b = Tensor::host(DType::f32, x.shape()), z = Tensor::host(DType::f32, x.shape());
    REQUIRE(dit->set_context(short_ctx).ok());
    REQUIRE(dit->forward_chunk(x, {500, 500, 500}, c1, 0, 0, a).ok());
    REQUIRE(dit->set_context(full_ctx).ok());
    REQUIRE(dit->forward_chunk(x, {500, 500, 500}, c2, 0, 0, b).ok());
    REQUIRE(test::rel_err(a, b) < 1e-7);
    REQUIRE(dit->set_zero_context().ok());
    REQUIRE(dit->forward_chunk(x, {500, 500, 500}, c2, 0, 0, z).ok());
    REQUIRE(test::rel_err(a, z) > 1e-4);  // the context matters
    auto too_long = dit->set_context(test::randn(Shape{33, 64}, 62));
    REQUIRE_THAT(too_long.message(), Catch::Contains("[33, 64]") && Catch::Contains("32"));
}

TEST_CASE("per-frame timesteps: each frame is modulated by its own t", "[dit]") {
    CpuBackend be;
    auto       dit = tiny_dit(be, test::test_seed() + 3);
    KvCache c = make_cache(be, dit->config(), CacheMode::commit, 3);
    Tensor  x = test::randn(Shape{16, 3, kH, kW}, 70);
    Tensor  a = Tensor::host(DType::f32, x.shape()), b = Tensor::host(DType::f32, x.shape());
    REQUIRE(dit->forward_chunk(x, {900, 900, 900}, c, 0, 0, a).ok());
    REQUIRE(dit->forward_chunk(x, {900, 900, 100}, c, 0, 0, b).ok());
    // frames attend to each other, so all change, but the last frame changes most
    const double d0 = test::rel_err(frames_of(a, 0, 1), frames_of(b, 0, 1));
    const double d2 = test::rel_err(frames_of(a, 2, 1), frames_of(b, 2, 1));
    REQUIRE(d2 > 1e-3);
    REQUIRE(d2 > d0);
}

TEST_CASE("a checkpoint loads identically under official, diffusers and prefixed names, from bf16 too", "[dit][loader]") {
    const uint64_t seed = test::test_seed() + 4;
    auto dir = test::temp_dir("dit-load");
    const ModelConfig cfg = config_preset("tiny").value();
    REQUIRE(test::save_random_weights((dir / "official.safetensors").string(), cfg, seed, DType::f32, [](auto & n) { return n; }).ok());
    REQUIRE(test::save_random_weights((dir / "diffusers.safetensors").string(), cfg, seed, DType::f32,
                                      [](auto & n) { return official_to_diffusers(n); }).ok());
    REQUIRE(test::save_random_weights((dir / "sf.safetensors").string(), cfg, seed, DType::f32,
                                      [](auto & n) { return "generator." + n; }).ok());
    REQUIRE(test::save_random_weights((dir / "bf16.safetensors").string(), cfg, seed, DType::bf16, [](auto & n) { return n; }).ok());

    {
        // Other writers need not align tensor data: one more header byte misaligns every tensor.
        std::ifstream in(dir / "official.safetensors", std::ios::binary);
        std::string   bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
        bytes.insert(size_t(8 + n), " ");
        ++n;
        for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char(uint8_t(n >> (8 * i)));
        std::ofstream(dir / "unaligned.safetensors", std::ios::binary) << bytes;
    }
    CpuBackend be;
    auto ref = tiny_dit(be, seed);
    Tensor x = test::randn(Shape{16, 3, kH, kW}, 80);
    Tensor want = Tensor::host(DType::f32, x.shape());
    KvCache c0 = make_cache(be, cfg, CacheMode::commit, 3);
    REQUIRE(ref->forward_chunk(x, {700, 700, 700}, c0, 0, 0, want).ok());
    for (const char * f : {"official", "diffusers", "sf", "bf16", "unaligned"}) {
        auto d = Dit::load(be, (dir / (std::string(f) + ".safetensors")).string(), nullptr);  // config inferred from shapes
        INFO(f << ": " << (d.ok() ? "" : d.status().message()));
        REQUIRE(d.ok());
        REQUIRE(d.value()->config().dim == 128);
        REQUIRE(d.value()->config().layers == 2);
        REQUIRE(d.value()->config().ffn_dim == 256);
        REQUIRE(d.value()->config().heads == 1);  // inferred with head_dim 128, as every Wan2.1 model
        // the tiny preset has 2 heads of 64: load again with its config
        auto e = Dit::load(be, (dir / (std::string(f) + ".safetensors")).string(), &cfg);
        REQUIRE(e.ok());
        // a caller's config is checked like a file's (heads 0 divided by zero)
        ModelConfig zero = cfg;
        zero.heads = 0;
        auto z = Dit::load(be, (dir / (std::string(f) + ".safetensors")).string(), &zero);
        REQUIRE_FALSE(z.ok());
        REQUIRE_THAT(z.status().message(), Catch::Contains("heads") && Catch::Contains(std::string(f) + ".safetensors"));
        KvCache c1 = make_cache(be, cfg, CacheMode::commit, 3);
        Tensor  got = Tensor::host(DType::f32, x.shape());
        REQUIRE(e.value()->forward_chunk(x, {700, 700, 700}, c1, 0, 0, got).ok());
        REQUIRE(test::rel_err(got, want) < (std::string(f) == "bf16" ? 2e-2 : 1e-7));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("a config in the file's metadata is used when no config is given", "[dit][loader]") {
    auto dir = test::temp_dir("dit-meta");
    const ModelConfig cfg = config_preset("tiny").value();
    CpuBackend be;
    DitWeights w;
    REQUIRE(random_weights(be, cfg, 9, w).ok());
    std::vector<std::pair<std::string, Tensor>> named;
    for (auto & s : weight_slots(w, cfg)) named.emplace_back(s.name, s.dst->reshape(s.checkpoint_shape));
    const std::string p = (dir / "own.safetensors").string();
    REQUIRE(write_safetensors(p, named, {{"avs.config", config_to_json(cfg)}}).ok());
    auto d = Dit::load(be, p, nullptr);
    REQUIRE(d.ok());
    REQUIRE(d.value()->config().heads == 2);
    // an odd dim without any config cannot be inferred: a clear error asks for one
    ModelConfig odd = cfg;
    odd.dim = 96; odd.heads = 2;
    REQUIRE(test::save_random_weights((dir / "odd.safetensors").string(), odd, 1, DType::f32, [](auto & n) { return n; }).ok());
    auto e = Dit::load(be, (dir / "odd.safetensors").string(), nullptr);
    REQUIRE_THAT(e.status().message(), Catch::Contains("--config") && Catch::Contains("96"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("loader errors name the tensor and the expected and found shapes", "[dit][loader]") {
    auto dir = test::temp_dir("dit-bad");
    const ModelConfig cfg = config_preset("tiny").value();
    CpuBackend be;
    SECTION("missing tensor") {
        const std::string p = (dir / "m.safetensors").string();
        REQUIRE(test::save_random_weights(p, cfg, 1, DType::f32, [](const std::string & n) {
            return n == "blocks.1.cross_attn.norm_k.weight" ? std::string("ignored.by.rename") : n;
        }).ok());
        auto d = Dit::load(be, p, &cfg);
        REQUIRE(!d.ok());
        // the renamed tensor is unexpected; it is reported first, naming it
        REQUIRE_THAT(d.status().message(), Catch::Contains("ignored.by.rename") && Catch::Contains(p));
    }
    SECTION("wrong shape for the config") {
        const std::string p = (dir / "w.safetensors").string();
        REQUIRE(test::save_random_weights(p, cfg, 1, DType::f32, [](auto & n) { return n; }).ok());
        ModelConfig other = cfg;
        other.ffn_dim = 512;
        auto d = Dit::load(be, p, &other);
        REQUIRE(!d.ok());
        // tensors are checked in name order: ffn.0.bias [256] comes before ffn.0.weight [256, 128]
        REQUIRE_THAT(d.status().message(), Catch::Contains("tensor 'blocks.0.ffn.0.bias' has shape [256], expected [512]"));
    }
    SECTION("config with an extra layer: missing tensors are listed") {
        const std::string p = (dir / "l.safetensors").string();
        REQUIRE(test::save_random_weights(p, cfg, 1, DType::f32, [](auto & n) { return n; }).ok());
        ModelConfig deeper = cfg;
        deeper.layers = 3;
        auto d = Dit::load(be, p, &deeper);
        REQUIRE(!d.ok());
        REQUIRE(d.status().code() == ErrorCode::missing);
        REQUIRE_THAT(d.status().message(), Catch::Contains("blocks.2.modulation [1, 6, 128]"));
    }
    std::filesystem::remove_all(dir);
}
