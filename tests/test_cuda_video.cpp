// The decoder ops of the CUDA backend (implicit-GEMM conv3d, relu, tanh_clamp, transpose, to_rgba8,
// wide-head attention) against the CPU twin on fresh random inputs at odd sizes: causal zero
// frames, channel-slice inputs, fused upsampling, accumulation, unaligned channel counts.
#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/decode/decoder.h"
#include "test_util.h"

#include <cstdio>
#include <tuple>

using namespace avs;
using avs::test::cuda_backend;
using avs::test::to_device;
using avs::test::to_host;

namespace {


// The values a bf16 store holds, widened back to f32 (the twin's inputs).
Tensor bf16_rounded(const Tensor & x) {
    CpuBackend cpu;
    Tensor     b = Tensor::host(DType::bf16, x.shape()), f = Tensor::host(DType::f32, x.shape());
    REQUIRE(cpu.upload(b, x).ok());
    REQUIRE(cpu.download(f, b).ok());
    return f;
}

} // namespace

TEST_CASE("conv3d implicit GEMM matches the CPU twin (zero frames, slices, upsampling, accumulation)", "[cuda][conv3d]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    struct Case {
        int kt, kh, kw, up;
        int64_t H, W, Cin, Cout, T;
        bool accumulate, bias, zero_first, slice;
    };
    const Case cases[] = {
        {3, 3, 3, 1, 5, 7, 16, 24, 1, false, true, true, false},    // causal conv, first call: 2 zero frames
        {3, 3, 3, 1, 6, 5, 32, 40, 2, true, true, false, false},    // residual accumulation, 2 output frames
        {1, 3, 3, 2, 4, 6, 24, 16, 1, false, true, false, true},    // upsample + conv on a channel slice
        {1, 1, 1, 1, 9, 11, 48, 72, 3, false, false, false, false}, // pointwise (TGrow / shortcut)
        {3, 1, 1, 1, 3, 4, 64, 128, 1, false, true, false, false},  // upsample3d time_conv
        {1, 3, 3, 1, 7, 9, 3, 5, 1, false, true, false, false},     // Cin, Cout not multiples of 8
        {3, 3, 3, 1, 13, 17, 96, 3, 2, false, true, false, false},  // the VAE head: 3 outputs
        {1, 3, 3, 1, 33, 65, 64, 96, 1, true, false, false, false}, // several tiles in both dims
    };
    for (const Case & c : cases) {
        const int64_t n_in = c.kt - 1 + c.T, K = int64_t(c.kt) * c.kh * c.kw * c.Cin;
        const int64_t Ho = c.H * c.up, Wo = c.W * c.up;
        const int64_t wide = c.slice ? c.Cin * 2 : c.Cin;  // slice: channels [Cin, 2 Cin) of wider frames
        std::vector<Tensor> hx_cpu, hx_gpu;
        std::vector<Tensor> keep;
        for (int64_t i = 0; i < n_in; ++i) {
            if (c.zero_first && i < c.kt - 1) {
                hx_cpu.emplace_back();
                hx_gpu.emplace_back();
                continue;
            }
            Tensor full = bf16_rounded(test::randn(Shape{c.H, c.W, wide}, 100 + uint64_t(i)));
            Tensor dev  = to_device(*gpu, full, DType::bf16);
            keep.push_back(full), keep.push_back(dev);
            hx_cpu.push_back(c.slice ? full.slice(2, c.Cin, 2 * c.Cin) : full);
            hx_gpu.push_back(c.slice ? dev.slice(2, c.Cin, 2 * c.Cin) : dev);
        }
        Tensor w = bf16_rounded(test::randn(Shape{c.Cout, K}, 200, float(1.0 / std::sqrt(double(K)))));
        Tensor b = test::randn(Shape{c.Cout}, 201);
        Tensor y0 = test::randn(Shape{c.T, Ho, Wo, c.Cout}, 202);
        Backend::ConvSpec spec;
        spec.kt = c.kt, spec.kh = c.kh, spec.kw = c.kw, spec.upsample = c.up, spec.accumulate = c.accumulate;
        for (DType out : {DType::f32, DType::bf16}) {
            Tensor y0r = out == DType::bf16 ? bf16_rounded(y0) : y0;
            Tensor want = Tensor::host(DType::f32, y0.shape());
            std::memcpy(want.raw(), y0r.raw(), y0r.nbytes());
            REQUIRE(cpu.conv3d(want, hx_cpu, w, c.bias ? &b : nullptr, spec).ok());
            Tensor yd = to_device(*gpu, y0r, out), wd = to_device(*gpu, w, DType::bf16), bd = to_device(*gpu, b, DType::f32);
            const Status st = gpu->conv3d(yd, hx_gpu, wd, c.bias ? &bd : nullptr, spec);
            INFO(st.message());
            REQUIRE(st.ok());
            const double e = test::rel_err(to_host(*gpu, yd), want);
            std::printf("kernel-err conv3d k%dx%dx%d up%d Cin %lld Cout %lld T %lld out %s: %.2e\n", c.kt, c.kh, c.kw, c.up,
                        (long long) c.Cin, (long long) c.Cout, (long long) c.T, dtype_name(out), e);
            INFO("case k" << c.kt << c.kh << c.kw << " up " << c.up << " Cin " << c.Cin << " Cout " << c.Cout << " out "
                          << dtype_name(out) << " rel err " << e);
            REQUIRE(e < (out == DType::bf16 ? 1e-2 : 1e-4));
        }
    }
}

TEST_CASE("relu tanh_clamp transpose and to_rgba8 match the CPU twins", "[cuda][video]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    Tensor x = bf16_rounded(test::randn(Shape{37, 53}, 300, 4.0f));
    for (DType dt : {DType::f32, DType::bf16}) {
        Tensor xd = to_device(*gpu, x, dt);
        for (int op = 0; op < 2; ++op) {
            Tensor want = Tensor::host(DType::f32, x.shape());
            REQUIRE((op == 0 ? cpu.relu(want, x) : cpu.tanh_clamp(want, x, 3.0f)).ok());
            Tensor yd = gpu->alloc(dt, x.shape()).value();
            REQUIRE((op == 0 ? gpu->relu(yd, xd) : gpu->tanh_clamp(yd, xd, 3.0f)).ok());
            const double e = test::rel_err(to_host(*gpu, yd), want);
            INFO((op == 0 ? "relu " : "tanh_clamp ") << dtype_name(dt) << " rel err " << e);
            REQUIRE(e < (dt == DType::bf16 ? 1e-2 : 1e-5));
        }
        // transpose of a row-strided view: frame 2 of a [C=16, F=4, 7*9] latent
        Tensor lat = test::randn(Shape{16, 4, 7 * 9}, 301);
        Tensor latd = to_device(*gpu, bf16_rounded(lat), dt);
        Tensor view_c = bf16_rounded(lat).select(1, 2), view_g = latd.select(1, 2);
        Tensor want = Tensor::host(DType::f32, Shape{63, 16});
        REQUIRE(cpu.transpose(want, view_c).ok());
        Tensor yd = gpu->alloc(dt, Shape{63, 16}).value();
        REQUIRE(gpu->transpose(yd, view_g).ok());
        REQUIRE(test::rel_err(to_host(*gpu, yd), want) == 0.0);
        // display conversion from a [H, W, 6] frame's first 3 channels: bytes identical
        Tensor fr = bf16_rounded(test::randn(Shape{11, 13, 6}, 302));
        Tensor frd = to_device(*gpu, fr, dt);
        Tensor want8 = Tensor::host(DType::u8, Shape{11, 13, 4});
        REQUIRE(cpu.to_rgba8(want8, fr.slice(2, 0, 3), 0.5f, 0.5f).ok());
        Tensor got8d = gpu->alloc(DType::u8, Shape{11, 13, 4}).value();
        REQUIRE(gpu->to_rgba8(got8d, frd.slice(2, 0, 3), 0.5f, 0.5f).ok());
        Tensor got8 = Tensor::host(DType::u8, Shape{11, 13, 4});
        REQUIRE(gpu->download(got8, got8d).ok());
        int diff = 0;
        for (int64_t i = 0; i < got8.numel(); ++i) diff += got8.data<uint8_t>()[i] != want8.data<uint8_t>()[i];
        REQUIRE(diff == 0);
    }
}

TEST_CASE("single-head attention with head_dim 384 (the VAE mid block) matches the CPU twin", "[cuda][attention]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    const int64_t L = 157, D = 384;
    Tensor q = bf16_rounded(test::randn(Shape{L, 1, D}, 400)), k = bf16_rounded(test::randn(Shape{L, 1, D}, 401));
    Tensor v = bf16_rounded(test::randn(Shape{L, 1, D}, 402));
    const float scale = float(1.0 / std::sqrt(double(D)));
    Tensor want = Tensor::host(DType::f32, q.shape());
    REQUIRE(cpu.attention(want, q, k, v, scale, 0, 0).ok());
    for (DType dt : {DType::f32, DType::bf16}) {
        Tensor od = gpu->alloc(dt, q.shape()).value();
        REQUIRE(gpu->attention(od, to_device(*gpu, q, dt), to_device(*gpu, k, dt), to_device(*gpu, v, dt), scale, 0, 0).ok());
        const double e = test::rel_err(to_host(*gpu, od), want);
        INFO(dtype_name(dt) << " rel err " << e);
        REQUIRE(e < (dt == DType::bf16 ? 1e-2 : 1e-5));
    }
}

TEST_CASE("both decoders on CUDA match the CPU twin on a short stream (random weights)", "[cuda][decode]") {
    for (DecoderKind kind : {DecoderKind::tiny, DecoderKind::wan}) {
        auto       gpu = cuda_backend();
        CpuBackend cpu;
        auto dg = load_decoder(*gpu, kind, "", 11);
        auto dc = load_decoder(cpu, kind, "", 11);
        REQUIRE(dg.ok());
        REQUIRE(dc.ok());
        // 3 latents of 6x10 (48x80 px): the first-latent special cases and the steady state
        const int64_t T = 3, h = 6, w = 10;
        Tensor lat = test::randn(Shape{16, T, h, w}, 500);
        Tensor lat_d = to_device(*gpu, lat, DType::f32);
        double worst = 0;
        int64_t frames = 0;
        for (int64_t f = 0; f < T; ++f) {
            std::vector<Tensor> fg, fc;
            REQUIRE(dg.value()->push(lat_d, f, fg).ok());
            REQUIRE(dc.value()->push(lat, f, fc).ok());
            REQUIRE(fg.size() == fc.size());
            for (size_t i = 0; i < fg.size(); ++i) {
                REQUIRE(fg[i].shape() == Shape{8 * h, 8 * w, 3});
                REQUIRE(fc[i].is_contiguous());
                worst = std::max(worst, test::rel_err(to_host(*gpu, fg[i]), fc[i]));
            }
            frames += int64_t(fg.size());
        }
        std::printf("kernel-err decoder %s CUDA (bf16) vs CPU (f32), %lld frames: worst rel err %.2e\n", dg.value()->name(),
                    (long long) frames, worst);
        REQUIRE(frames == 1 + 4 * (T - 1));
        REQUIRE(worst < 5e-2);
    }
}
