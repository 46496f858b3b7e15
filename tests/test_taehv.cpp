// The streaming TAEHV decoder on the CPU backend against the PyTorch reference
// (tools/reference/taehv_ref.py; goldens from make_taehv_goldens.py: random weights at widths
// 32/16/8/8, latents [16, 4, 4, 6], the reference's whole-sequence batch decode before the clamp).
#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/decode/taehv.h"
#include "engine/io/safetensors.h"
#include "test_util.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

using namespace avs;

namespace {

const std::string k_weights = "taehv_tiny_weights.safetensors";
const std::string k_golden = "taehv_golden.safetensors";

std::unique_ptr<TaehvDecoder> load(Backend & be, const std::string & path) {
    auto d = TaehvDecoder::load(be, path, 0);
    INFO((d.ok() ? std::string() : d.status().message()));
    REQUIRE(d.ok());
    return std::move(d).value();
}

// Push latent frames [f0, f1) and gather the output as [N, H, W, 3] (the golden's layout), checking
// each push's frame count (1 for the stream's first latent, 4 after) and the frame shapes.
Tensor decode(TaehvDecoder & d, const Tensor & lat, int64_t f0, int64_t f1) {
    std::vector<Tensor> frames;
    for (int64_t f = f0; f < f1; ++f) {
        std::vector<Tensor> out;
        const bool first = d.pushed() == 0;
        auto st = d.push(lat, f, out);
        INFO(st.message());
        REQUIRE(st.ok());
        REQUIRE(out.size() == (first ? 1u : 4u));
        for (const Tensor & t : out) {  // copy: the decoder reuses its output buffers on the next push
            REQUIRE(t.ndim() == 3);
            REQUIRE(t.dim(0) == 8 * lat.dim(2));
            REQUIRE(t.dim(1) == 8 * lat.dim(3));
            REQUIRE(t.dim(2) == 3);
            REQUIRE(t.is_contiguous());
            Tensor c = Tensor::host(DType::f32, t.shape());
            std::memcpy(c.raw(), t.raw(), t.nbytes());
            frames.push_back(c);
        }
    }
    const int64_t N = int64_t(frames.size()), n = frames[0].numel();
    Tensor        r = Tensor::host(DType::f32, Shape{N, frames[0].dim(0), frames[0].dim(1), 3});
    for (int64_t i = 0; i < N; ++i) std::memcpy(r.data<float>() + i * n, frames[size_t(i)].raw(), size_t(n) * 4);
    return r;
}

Tensor first_frames(const Tensor & x, int64_t n) {
    Tensor r = Tensor::host(DType::f32, Shape{n, x.dim(1), x.dim(2), x.dim(3)});
    std::memcpy(r.raw(), x.raw(), r.nbytes());
    return r;
}

Tensor clamp01(const Tensor & x) {
    Tensor r = Tensor::host(DType::f32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) r.data<float>()[i] = std::clamp(x.data<float>()[i], 0.0f, 1.0f);
    return r;
}


// Rewrite the tiny weights (as f32) with renames / edits; `edit` returning false drops the tensor.
void save_edited(const std::string & out, const std::function<std::string(const std::string &)> & rename,
                 const std::function<bool(const std::string &, Tensor &)> & edit = {}) {
    REQUIRE(test::save_edited(test::data_path(k_weights), out, rename, edit));
}

std::string load_error(const std::string & path) {
    CpuBackend be;
    auto       d = TaehvDecoder::load(be, path, 0);
    REQUIRE_FALSE(d.ok());
    return d.status().message();
}

std::string keep(const std::string & n) { return n; }

} // namespace

TEST_CASE("taehv: streaming decode equals the reference batch decode (fp32)", "[taehv][acceptance]") {
    const std::string gold = test::data_path(k_golden);
    const Tensor      lat = test::read_named(gold, "latents");
    const Tensor      want = test::read_named(gold, "out_raw");
    REQUIRE(lat.shape() == Shape{16, 4, 4, 6});
    REQUIRE(want.shape() == Shape{13, 32, 48, 3});
    CpuBackend be;
    auto       d = load(be, test::data_path(k_weights));
    CHECK(d->config().latent == 16);
    CHECK(d->config().widths == std::array<int64_t, 4>{32, 16, 8, 8});
    const Tensor got = decode(*d, lat, 0, lat.dim(1));
    REQUIRE(got.shape() == want.shape());
    const double e_raw = test::rel_err(got, want), e_clamped = test::rel_err(clamp01(got), clamp01(want));
    INFO("rel err vs the batch reference: " << e_raw << " before the clamp, " << e_clamped << " after");
    CHECK(e_raw <= 1e-5);
    CHECK(e_clamped <= 1e-5);
    // push() returns the output before the reference's clamp to [0, 1]: the golden leaves [0, 1] on
    // both sides, and so must we; display conversion clamps with a = 1, b = 0
    float lo = 0, hi = 1, glo = 0, ghi = 1;
    for (int64_t i = 0; i < want.numel(); ++i) {
        glo = std::min(glo, want.data<float>()[i]), ghi = std::max(ghi, want.data<float>()[i]);
        lo = std::min(lo, got.data<float>()[i]), hi = std::max(hi, got.data<float>()[i]);
    }
    REQUIRE(glo < -0.1f);
    REQUIRE(ghi > 1.1f);
    CHECK(lo < -0.1f);
    CHECK(hi > 1.1f);
    CHECK(d->out_scale() == 1.0f);
    CHECK(d->out_offset() == 0.0f);
}

TEST_CASE("taehv: T latents give 1 + 4(T - 1) frames and a shorter stream is a prefix", "[taehv]") {
    const std::string gold = test::data_path(k_golden);
    const Tensor      lat = test::read_named(gold, "latents");
    const Tensor      want = test::read_named(gold, "out_raw");
    CpuBackend        be;
    auto              d = load(be, test::data_path(k_weights));
    for (int64_t T = 1; T <= 3; ++T) {
        d->reset();
        const Tensor got = decode(*d, lat, 0, T);
        REQUIRE(got.dim(0) == 1 + 4 * (T - 1));
        const double e = test::rel_err(got, first_frames(want, got.dim(0)));
        INFO("T = " << T << ": rel err " << e);
        CHECK(e <= 1e-5);
    }
}

TEST_CASE("taehv: reset() restarts the stream identically", "[taehv]") {
    const Tensor lat = test::read_named(test::data_path(k_golden), "latents");
    CpuBackend   be;
    auto         fresh = load(be, test::data_path(k_weights));
    const Tensor ref = decode(*fresh, lat, 0, 4);

    auto d = load(be, test::data_path(k_weights));
    const Tensor other = decode(*d, lat, 1, 4);  // another stream first: different memories
    REQUIRE_FALSE(test::bit_equal(first_frames(other, 9), first_frames(ref, 9)));
    const uint64_t held = d->state_bytes();
    d->reset();
    CHECK(d->pushed() == 0);
    CHECK(d->state_bytes() == held);  // buffers are kept for the next stream, memories forgotten
    CHECK(test::bit_equal(decode(*d, lat, 0, 4), ref));
    d->reset();
    CHECK(test::bit_equal(decode(*d, lat, 0, 4), ref));
}

TEST_CASE("taehv: state and weight accounting at the real widths", "[taehv]") {
    CpuBackend be;
    auto       r = TaehvDecoder::load(be, "", 7);
    REQUIRE(r.ok());
    auto & d = *r.value();
    // 9,844,611 decoder parameters (wan21-model.md section 4), all f32 on the CPU twin
    CHECK(d.weight_bytes() == uint64_t(9844611) * 4);
    CHECK(d.state_bytes() == 0);
    Tensor lat = test::randn(Shape{16, 2, 2, 3}, 1, 1.5f);
    decode(d, lat, 0, 2);
    // per pixel of stage s: 6 memory buffers + 2 scratch of c_s, TGrow output stride*c_s; then the
    // latent frame, decoder.20's output and 4 output frames
    const int64_t hw = 6, c0 = 256, c1 = 128, c2 = 64, c3 = 64;
    const int64_t elems = hw * (16 + 8 * c0 + c0) + 4 * hw * (8 * c1 + 2 * c1) + 16 * hw * (8 * c2 + 2 * c2) +
                          64 * hw * (c3 + 4 * 3);
    CHECK(d.state_bytes() == uint64_t(elems) * 4);
}

TEST_CASE("taehv: random weights at the real widths decode to finite frames", "[taehv]") {
    CpuBackend be;
    auto       r = load_taehv_decoder(be, "", 1234);
    REQUIRE(r.ok());
    VideoDecoder & d = *r.value();
    CHECK(std::string(d.name()) == "taehv");
    const Tensor lat = test::randn(Shape{16, 3, 3, 5}, 2, 1.5f);
    int64_t      frames = 0;
    double       sum2 = 0;
    for (int64_t f = 0; f < 3; ++f) {
        std::vector<Tensor> out;
        REQUIRE(d.push(lat, f, out).ok());
        REQUIRE(out.size() == (f == 0 ? 1u : 4u));
        for (const Tensor & t : out) {
            REQUIRE(t.shape() == Shape{24, 40, 3});
            for (int64_t i = 0; i < t.numel(); ++i) {
                REQUIRE(std::isfinite(t.data<float>()[i]));
                sum2 += double(t.data<float>()[i]) * t.data<float>()[i];
            }
            ++frames;
        }
    }
    CHECK(frames == 9);
    CHECK(sum2 > 0);  // not all zero (e.g. dead ReLUs everywhere)
    // a wrong latent layout or a size change mid-stream is an error, not a crash
    std::vector<Tensor> out;
    CHECK_FALSE(d.push(test::randn(Shape{8, 1, 3, 5}, 3), 0, out).ok());
    CHECK_FALSE(d.push(test::randn(Shape{16, 1, 4, 5}, 3), 0, out).ok());
    CHECK_FALSE(d.push(lat, 3, out).ok());
    CHECK(out.empty());
}

TEST_CASE("taehv: prefixed names and an exact-size TGrow weight load to the same output", "[taehv][loader]") {
    const Tensor lat = test::read_named(test::data_path(k_golden), "latents");
    CpuBackend   be;
    auto         d = load(be, test::data_path(k_weights));
    const Tensor ref = decode(*d, lat, 0, 3);
    const auto   dir = test::temp_dir("taehv-names");

    const std::string pre = (dir / "prefixed.safetensors").string();
    save_edited(pre, [](const std::string & n) { return "model." + n; });
    auto dp = load(be, pre);
    CHECK(test::bit_equal(decode(*dp, lat, 0, 3), ref));

    // The golden stores decoder.7.conv.weight with 2 * c0 rows and the loader keeps the last c0 (the
    // reference's patch_tgrow_layers); storing just those rows, and no encoder, must give the same output.
    const std::string exact = (dir / "exact.safetensors").string();
    save_edited(exact, keep, [](const std::string & n, Tensor & t) {
        if (n.rfind("encoder.", 0) == 0) return false;
        if (n == "decoder.7.conv.weight") {
            REQUIRE(t.shape() == Shape{64, 32, 1, 1});
            Tensor last = Tensor::host(DType::f32, Shape{32, 32, 1, 1});
            std::memcpy(last.raw(), t.data<float>() + 32 * 32, last.nbytes());
            t = last;
        }
        return true;
    });
    auto de = load(be, exact);
    CHECK(test::bit_equal(decode(*de, lat, 0, 3), ref));
    std::filesystem::remove_all(dir);
}

TEST_CASE("taehv: missing and wrong-shape tensors give errors naming the file and tensor", "[taehv][loader]") {
    const auto dir = test::temp_dir("taehv-errors");

    const std::string missing = (dir / "missing.safetensors").string();
    save_edited(missing, keep, [](const std::string & n, Tensor &) { return n != "decoder.10.conv.2.weight"; });
    std::string msg = load_error(missing);
    INFO(msg);
    CHECK(msg.find(missing) != std::string::npos);
    CHECK(msg.find("'decoder.10.conv.2.weight'") != std::string::npos);
    CHECK(msg.find("[16, 16, 3, 3]") != std::string::npos);

    // integer data of the right shape is not a float weight (it loaded as numbers and decoded garbage)
    const std::string ints = (dir / "ints.safetensors").string();
    save_edited(ints, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.1.bias") {
            Tensor q = Tensor::host(DType::i8, t.shape());
            for (int64_t i = 0; i < q.numel(); ++i) q.data<int8_t>()[i] = int8_t(i % 7);
            t = q;
        }
        return true;
    });
    msg = load_error(ints);
    INFO(msg);
    CHECK(msg.find("'decoder.1.bias'") != std::string::npos);
    CHECK(msg.find("expected F32, F16 or BF16") != std::string::npos);

    // same element count, wrong layout: conv.0 [C, 2C, 3, 3] stored as [2C, C, 3, 3]
    const std::string shape = (dir / "shape.safetensors").string();
    save_edited(shape, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.16.conv.0.weight") t = t.reshape(Shape{16, 8, 3, 3});
        return true;
    });
    msg = load_error(shape);
    INFO(msg);
    CHECK(msg.find("'decoder.16.conv.0.weight'") != std::string::npos);
    CHECK(msg.find("[16, 8, 3, 3]") != std::string::npos);
    CHECK(msg.find("expected [8, 16, 3, 3]") != std::string::npos);

    // a TGrow weight with fewer rows than its stride needs
    const std::string tgrow = (dir / "tgrow.safetensors").string();
    save_edited(tgrow, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.13.conv.weight") t = t.slice(0, 0, 16);
        return true;
    });
    msg = load_error(tgrow);
    INFO(msg);
    CHECK(msg.find("'decoder.13.conv.weight'") != std::string::npos);
    CHECK(msg.find("expected [32, 16, 1, 1]") != std::string::npos);

    // a patch-size-2 decoder (taew2_2 style: 12 output channels, pixel-shuffled) is refused, not misread
    const std::string patch = (dir / "patch.safetensors").string();
    save_edited(patch, keep, [](const std::string & n, Tensor & t) {
        if (n == "decoder.22.weight") t = Tensor::host(DType::f32, Shape{12, 8, 3, 3});
        return true;
    });
    msg = load_error(patch);
    INFO(msg);
    CHECK(msg.find("'decoder.22.weight'") != std::string::npos);
    CHECK(msg.find("patch size") != std::string::npos);

    // not a TAEHV file at all
    const std::string other = (dir / "other.safetensors").string();
    save_edited(other, [](const std::string & n) { return "x" + n; });
    msg = load_error(other);
    INFO(msg);
    CHECK(msg.find("decoder.1.weight") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("taehv: to_rgba8 of an output frame equals the clamped reference in 8 bits", "[taehv]") {
    const std::string gold = test::data_path(k_golden);
    const Tensor      lat = test::read_named(gold, "latents");
    const Tensor      want = test::read_named(gold, "out_raw");
    CpuBackend        be;
    auto              d = load(be, test::data_path(k_weights));
    std::vector<Tensor> out;
    REQUIRE(d->push(lat, 0, out).ok());
    REQUIRE(d->push(lat, 1, out).ok());
    REQUIRE(out.size() == 5);
    const Tensor & fr = out[3];  // frame 3 of the video
    auto rgba = be.alloc(DType::u8, Shape{fr.dim(0), fr.dim(1), 4});
    REQUIRE(rgba.ok());
    REQUIRE(be.to_rgba8(rgba.value(), fr, d->out_scale(), d->out_offset()).ok());
    const uint8_t * px = rgba.value().data<uint8_t>();
    const float *   g = want.data<float>() + 3 * fr.numel();
    int64_t         off_by_one = 0, zeros = 0, saturated = 0;
    for (int64_t p = 0; p < fr.dim(0) * fr.dim(1); ++p) {
        REQUIRE(px[p * 4 + 3] == 255);
        for (int c = 0; c < 3; ++c) {
            const int ref = int(std::lrint(255.0 * std::clamp(double(g[p * 3 + c]), 0.0, 1.0)));
            const int diff = std::abs(int(px[p * 4 + c]) - ref);
            REQUIRE(diff <= 1);  // fp32 rounding may flip a value sitting on a rounding boundary
            off_by_one += diff;
            zeros += px[p * 4 + c] == 0;
            saturated += px[p * 4 + c] == 255;
        }
    }
    CHECK(off_by_one <= 2);
    CHECK(zeros > 0);  // the clamp was exercised on both sides
    CHECK(saturated > 0);
}

// Timing only (hidden): one latent at 60x104 (480x832) with random weights at the real widths.
TEST_CASE("taehv: timing at 480x832", "[.taehv_bench]") {
    CpuBackend be;
    auto       r = TaehvDecoder::load(be, "", 99);
    REQUIRE(r.ok());
    auto &       d = *r.value();
    const Tensor lat = test::randn(Shape{16, 2, 60, 104}, 4, 1.5f);
    for (int64_t f = 0; f < 2; ++f) {
        std::vector<Tensor> out;
        const auto          t0 = std::chrono::steady_clock::now();
        REQUIRE(d.push(lat, f, out).ok());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        WARN("latent " << f << ": " << out.size() << " frames in " << ms << " ms; state " << d.state_bytes() / 1e6 << " MB");
    }
}
