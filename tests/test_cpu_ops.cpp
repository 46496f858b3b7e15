// CPU backend ops against direct, naive formulas (fp64). These twins are what CUDA kernels are
// later checked against, so they are pinned down here first.
#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/model/rope.h"
#include "test_util.h"

#include <complex>

using namespace avs;

TEST_CASE("linear: y = x W^T + b at odd sizes", "[ops]") {
    CpuBackend be;
    for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{7, 13, 5}, std::tuple{33, 17, 65}}) {
        Tensor x = test::randn(Shape{M, K}, 1), w = test::randn(Shape{N, K}, 2), b = test::randn(Shape{N}, 3);
        Tensor y = Tensor::host(DType::f32, Shape{M, N});
        REQUIRE(be.linear(y, x, w, &b).ok());
        for (int m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n) {
                double s = b.data<float>()[n];
                for (int k = 0; k < K; ++k) s += double(x.data<float>()[m * K + k]) * w.data<float>()[n * K + k];
                REQUIRE(y.data<float>()[m * N + n] == Approx(s).epsilon(1e-5).margin(1e-5));
            }
    }
}

TEST_CASE("layer_norm_modulate applies each frame's shift and scale (strided rows)", "[ops]") {
    CpuBackend    be;
    const int64_t F = 3, tpf = 5, D = 24;
    Tensor x   = test::randn(Shape{F * tpf, D}, 4, 3.0f);
    Tensor mod = test::randn(Shape{F, 6, D}, 5, 0.5f);
    Tensor y   = Tensor::host(DType::f32, x.shape());
    REQUIRE(be.layer_norm_modulate(y, x, mod.select(1, 0), mod.select(1, 1), tpf, 1e-6f).ok());
    for (int64_t r = 0; r < F * tpf; ++r) {
        const float * xr = x.data<float>() + r * D;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < D; ++i) mean += xr[i];
        mean /= D;
        for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= D;
        const float * shift = mod.data<float>() + (r / tpf) * 6 * D;
        const float * scale = shift + D;
        for (int64_t i = 0; i < D; ++i) {
            const double want = (xr[i] - mean) / std::sqrt(var + 1e-6) * (1 + scale[i]) + shift[i];
            REQUIRE(y.data<float>()[r * D + i] == Approx(want).epsilon(1e-5).margin(1e-5));
        }
    }
}

TEST_CASE("rms_norm over the full dim, layer_norm_affine, gelu_tanh, silu", "[ops]") {
    CpuBackend be;
    const int64_t R = 9, D = 31;
    Tensor x = test::randn(Shape{R, D}, 6, 2.0f), w = test::randn(Shape{D}, 7), b = test::randn(Shape{D}, 8);
    Tensor y = Tensor::host(DType::f32, x.shape());
    REQUIRE(be.rms_norm(y, x, w, 1e-6f).ok());
    for (int64_t r = 0; r < R; ++r) {
        double ms = 0;
        for (int64_t i = 0; i < D; ++i) ms += double(x.data<float>()[r * D + i]) * x.data<float>()[r * D + i];
        const double rs = 1.0 / std::sqrt(ms / D + 1e-6);
        for (int64_t i = 0; i < D; ++i)
            REQUIRE(y.data<float>()[r * D + i] == Approx(x.data<float>()[r * D + i] * rs * w.data<float>()[i]).epsilon(1e-5).margin(1e-6));
    }
    REQUIRE(be.layer_norm_affine(y, x, w, b, 1e-6f).ok());
    {
        const float * xr = x.data<float>();
        double mean = 0, var = 0;
        for (int64_t i = 0; i < D; ++i) mean += xr[i];
        mean /= D;
        for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= D;
        for (int64_t i = 0; i < D; ++i)
            REQUIRE(y.data<float>()[i] ==
                    Approx((xr[i] - mean) / std::sqrt(var + 1e-6) * w.data<float>()[i] + b.data<float>()[i]).epsilon(1e-5).margin(1e-5));
    }
    REQUIRE(be.gelu_tanh(y, x).ok());
    for (int64_t i = 0; i < R * D; ++i) {
        const double v = x.data<float>()[i];
        REQUIRE(y.data<float>()[i] == Approx(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))).margin(1e-6));
    }
    REQUIRE(be.silu(y, x).ok());
    for (int64_t i = 0; i < R * D; ++i) {
        const double v = x.data<float>()[i];
        REQUIRE(y.data<float>()[i] == Approx(v / (1 + std::exp(-v))).margin(1e-6));
    }
}

TEST_CASE("timestep embedding is [cos, sin] with exponent -k/half", "[ops]") {
    CpuBackend be;
    Tensor out = Tensor::host(DType::f32, Shape{3, 8});
    REQUIRE(be.timestep_embedding(out, {0.0, 937.5, 1000.0}).ok());
    for (int f = 0; f < 3; ++f) {
        const double t = std::vector<double>{0.0, 937.5, 1000.0}[size_t(f)];
        for (int k = 0; k < 4; ++k) {
            REQUIRE(out.data<float>()[f * 8 + k] == Approx(std::cos(t * std::pow(10000.0, -k / 4.0))).margin(1e-6));
            REQUIRE(out.data<float>()[f * 8 + 4 + k] == Approx(std::sin(t * std::pow(10000.0, -k / 4.0))).margin(1e-6));
        }
    }
}

TEST_CASE("patchify uses (c, kh, kw) order; unpatchify puts the channel fastest", "[ops]") {
    CpuBackend be;
    const int C = 3, F = 2, H = 4, W = 6;
    Tensor x = test::randn(Shape{C, F, H, W}, 9);
    Tensor tok = Tensor::host(DType::f32, Shape{F * 2 * 3, C * 4});
    REQUIRE(be.patchify(tok, x, 2, 2).ok());
    auto X = [&](int c, int f, int h, int w) { return x.data<float>()[((c * F + f) * H + h) * W + w]; };
    // token (f=1, i=1, j=2), patch element (c=2, kh=1, kw=0)
    REQUIRE(tok.data<float>()[(1 * 6 + 1 * 3 + 2) * 12 + (2 * 4 + 1 * 2 + 0)] == X(2, 1, 3, 4));
    Tensor u = test::randn(Shape{F * 6, 4 * C}, 10);
    Tensor y = Tensor::host(DType::f32, Shape{C, F, H, W});
    REQUIRE(be.unpatchify(y, u, 2, 2).ok());
    // out[c, f, 2i+ph, 2j+pw] = u[token(f,i,j), (ph*2+pw)*C + c]
    for (int c = 0; c < C; ++c)
        for (int f = 0; f < F; ++f)
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 3; ++j)
                    for (int ph = 0; ph < 2; ++ph)
                        for (int pw = 0; pw < 2; ++pw)
                            REQUIRE(y.data<float>()[((c * F + f) * H + 2 * i + ph) * W + 2 * j + pw] ==
                                    u.data<float>()[(f * 6 + i * 3 + j) * 4 * C + (ph * 2 + pw) * C + c]);
}

TEST_CASE("RoPE rotates interleaved pairs per axis with restarting frequencies (complex reference)", "[ops][rope]") {
    CpuBackend be;
    const int Dh = 128, H = 2, gh = 3, gw = 4;
    const RopeLayout L = make_rope_layout(Dh, gh, gw);
    REQUIRE(L.pairs_t == 22);
    REQUIRE(L.pairs_h == 21);
    std::vector<int64_t> pos = {5, 1023, 4000};  // beyond the 1024 table of the official code
    Tensor x = test::randn(Shape{3 * gh * gw, H, Dh}, 11);
    Tensor y = Tensor::host(DType::f32, x.shape());
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    REQUIRE(be.rope(y, L, pos).ok());
    for (int f = 0; f < 3; ++f)
        for (int i = 0; i < gh; ++i)
            for (int j = 0; j < gw; ++j)
                for (int h = 0; h < H; ++h) {
                    const int64_t tok = (f * gh + i) * gw + j;
                    for (int p = 0; p < 64; ++p) {
                        int64_t n; int m, Da;
                        if (p < 22) { n = pos[size_t(f)]; m = p; Da = 44; }
                        else if (p < 43) { n = i; m = p - 22; Da = 42; }
                        else { n = j; m = p - 43; Da = 42; }
                        const std::complex<double> a(x.data<float>()[(tok * H + h) * Dh + 2 * p], x.data<float>()[(tok * H + h) * Dh + 2 * p + 1]);
                        const std::complex<double> r = a * std::polar(1.0, double(n) * std::pow(10000.0, -2.0 * m / Da));
                        REQUIRE(y.data<float>()[(tok * H + h) * Dh + 2 * p] == Approx(r.real()).margin(2e-5));
                        REQUIRE(y.data<float>()[(tok * H + h) * Dh + 2 * p + 1] == Approx(r.imag()).margin(2e-5));
                    }
                }
}

TEST_CASE("attention: softmax(scale q k^T) v, and the block-causal mask", "[ops][attention]") {
    CpuBackend be;
    const int64_t Lq = 12, Lk = 12, H = 3, D = 8, blk = 4;
    Tensor q = test::randn(Shape{Lq, H, D}, 12), k = test::randn(Shape{Lk, H, D}, 13), v = test::randn(Shape{Lk, H, D}, 14);
    for (bool causal : {false, true}) {
        Tensor out = Tensor::host(DType::f32, q.shape());
        REQUIRE(be.attention(out, q, k, v, 0.35f, causal ? blk : 0, causal ? blk : 0).ok());
        for (int64_t i = 0; i < Lq; ++i)
            for (int64_t h = 0; h < H; ++h) {
                const int64_t lim = causal ? (i / blk + 1) * blk : Lk;
                std::vector<double> s(static_cast<size_t>(lim));
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < lim; ++j) {
                    double d = 0;
                    for (int64_t c = 0; c < D; ++c) d += double(q.data<float>()[(i * H + h) * D + c]) * k.data<float>()[(j * H + h) * D + c];
                    s[size_t(j)] = d * 0.35;
                    mx = std::max(mx, s[size_t(j)]);
                }
                for (auto & e : s) sum += (e = std::exp(e - mx));
                for (int64_t c = 0; c < D; ++c) {
                    double o = 0;
                    for (int64_t j = 0; j < lim; ++j) o += s[size_t(j)] / sum * v.data<float>()[(j * H + h) * D + c];
                    REQUIRE(out.data<float>()[(i * H + h) * D + c] == Approx(o).margin(1e-5));
                }
            }
    }
}
