// bench/image_metrics: SSIM's defining properties, values from an independent implementation, and
// the errors it returns instead of crashing. Fixed seeds: the property checks must not depend on luck.
#include <catch2/catch.hpp>

#include "bench/image_metrics.h"
#include "engine/core/tensor.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

using namespace avs;

namespace {

Tensor image(const Shape & s, const std::function<float(int64_t, int64_t, int64_t)> & f) {
    Tensor        t = Tensor::host(DType::f32, s);
    const int64_t H = s[0], W = s[1], C = s.ndim == 3 ? s[2] : 1;
    for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c) t.data<float>()[(y * W + x) * C + c] = f(y, x, c);
    return t;
}

// Smooth texture in [0.05, 0.55] (mean ~0.3): room for +0.1 without clipping, and a dark enough mean
// that the offset's luminance term is clearly below 1.
Tensor textured(int64_t n) {
    return image(Shape{n, n, 3}, [](int64_t y, int64_t x, int64_t c) {
        return float(0.3 + 0.15 * std::sin(0.5 * double(x) + 0.3 * double(y) + double(c)) +
                     0.1 * std::cos(0.9 * double(y) - 0.4 * double(x) + 2.0 * double(c)));
    });
}

Tensor normal_noise(const Shape & s, uint32_t seed) {
    Tensor                          t = Tensor::host(DType::f32, s);
    std::mt19937                    rng(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
    return t;
}

double ssim_ok(const Tensor & a, const Tensor & ref) {
    auto r = bench::ssim(a, ref);
    INFO(r.status().message());
    REQUIRE(r.ok());
    return r.value();
}

} // namespace

TEST_CASE("ssim of an image with itself is 1", "[image_metrics]") {
    std::mt19937                          rng(3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    const Tensor x = image(Shape{24, 40, 3}, [&](int64_t, int64_t, int64_t) { return u(rng); });
    CHECK(std::fabs(ssim_ok(x, x) - 1.0) < 1e-12);
    const Tensor t = textured(32);
    CHECK(std::fabs(ssim_ok(t, t) - 1.0) < 1e-12);
}

TEST_CASE("ssim falls monotonically as Gaussian noise grows", "[image_metrics]") {
    const Tensor x = textured(32), z = normal_noise(x.shape(), 11);
    double       prev = 1.0;
    for (const float sigma : {0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 0.4f}) {
        // the same noise field scaled, clipped to the image range as a decoder's output would be
        const Tensor y = image(x.shape(), [&](int64_t r, int64_t c, int64_t ch) {
            const int64_t i = (r * 32 + c) * 3 + ch;
            return std::clamp(x.data<float>()[i] + sigma * z.data<float>()[i], 0.0f, 1.0f);
        });
        const double s = ssim_ok(y, x);
        INFO("sigma " << sigma << ": ssim " << s << ", previous " << prev);
        CHECK(s < prev);
        prev = s;
    }
    CHECK(prev < 0.5);  // sigma 0.4 (the independent Python computation, other noise: 0.155)
}

TEST_CASE("ssim: a constant offset scores below 1 but above noise of the same MSE", "[image_metrics]") {
    // SSIM's point over MSE: a brightness shift keeps the structure, noise destroys it. Independent
    // Python computation on this image (other noise draws): offset 0.954, same-MSE noise 0.690.
    const Tensor x = textured(32), z = normal_noise(x.shape(), 5);
    const int64_t n = x.numel();
    const Tensor off = image(x.shape(), [&](int64_t r, int64_t c, int64_t ch) {
        return std::min(1.0f, x.data<float>()[(r * 32 + c) * 3 + ch] + 0.1f);
    });
    double mse = 0, zz = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(off.data<float>()[i]) - x.data<float>()[i];
        mse += d * d / double(n), zz += double(z.data<float>()[i]) * z.data<float>()[i] / double(n);
    }
    const double k     = std::sqrt(mse / zz);
    const Tensor noisy = image(x.shape(), [&](int64_t r, int64_t c, int64_t ch) {
        const int64_t i = (r * 32 + c) * 3 + ch;
        return float(x.data<float>()[i] + k * z.data<float>()[i]);
    });
    double mse_noisy = 0;
    for (int64_t i = 0; i < n; ++i) mse_noisy += std::pow(double(noisy.data<float>()[i]) - x.data<float>()[i], 2) / double(n);
    REQUIRE(mse_noisy == Approx(mse).epsilon(1e-4));
    const double s_off = ssim_ok(off, x), s_noise = ssim_ok(noisy, x);
    INFO("offset " << s_off << ", noise " << s_noise << ", mse " << mse);
    CHECK(s_off < 0.97);
    CHECK(s_off > s_noise + 0.1);
}

// Expected values from an independent pure-Python SSIM with a direct (not separable) 2-D window:
//   g(n) = normalised exp(-(k - (n-1)/2)^2 / (2 * 1.5^2)), k < n;  wy, wx = min(11, H), min(11, W)
//   per channel, for every valid (y, x): mu/var/cov from w = g_y[i] g_x[j] over the window,
//   s = (2 ma mb + C1)(2 cov + C2) / ((ma^2 + mb^2 + C1)(va + vb + C2)), C1 = 1e-4, C2 = 9e-4;
//   mean over (y, x), then over channels.
TEST_CASE("ssim matches an independent computation on a 16x16x3 pair", "[image_metrics]") {
    // A = ((7i + 13j + 5c) % 17) / 16, B = clip(16 A + (ij + c) % 5 - 2, 0, 16) / 16: exact in f32
    auto a_q = [](int64_t i, int64_t j, int64_t c) { return int((i * 7 + j * 13 + c * 5) % 17); };
    const Tensor a = image(Shape{16, 16, 3}, [&](int64_t i, int64_t j, int64_t c) { return float(a_q(i, j, c)) / 16.0f; });
    const Tensor b = image(Shape{16, 16, 3}, [&](int64_t i, int64_t j, int64_t c) {
        return float(std::clamp(a_q(i, j, c) + int((i * j + c) % 5) - 2, 0, 16)) / 16.0f;
    });
    CHECK(std::fabs(ssim_ok(b, a) - 0.9631647623346834) < 1e-9);
    CHECK(std::fabs(ssim_ok(a, b) - 0.96316476233468362) < 1e-9);
}

TEST_CASE("ssim shrinks the window on images smaller than 11 px", "[image_metrics]") {
    // 8x5, one channel: the window becomes 8x5 (sigma 1.5), a single valid position; same Python.
    const Tensor p = image(Shape{8, 5}, [](int64_t i, int64_t j, int64_t) { return float((i * 3 + j * 5) % 8) / 8.0f; });
    const Tensor q = image(Shape{8, 5}, [](int64_t i, int64_t j, int64_t) { return float((i * 2 + j * 7 + 1) % 8) / 8.0f; });
    CHECK(std::fabs(ssim_ok(q, p) - 0.21132910630445076) < 1e-9);
    CHECK(std::fabs(ssim_ok(p, p) - 1.0) < 1e-12);
    // [H, W] and [H, W, 1] are the same image
    CHECK(ssim_ok(q.reshape(Shape{8, 5, 1}), p.reshape(Shape{8, 5, 1})) == ssim_ok(q, p));
}

TEST_CASE("ssim rejects mismatched shapes and other layouts", "[image_metrics]") {
    const Tensor a = textured(16);
    auto         code = [](const Result<double> & r) { return r.ok() ? ErrorCode::ok : r.status().code(); };
    CHECK(code(bench::ssim(a, Tensor::host(DType::f32, Shape{16, 16, 4}))) == ErrorCode::shape);
    CHECK(code(bench::ssim(a, Tensor::host(DType::f32, Shape{16, 17, 3}))) == ErrorCode::shape);
    CHECK(code(bench::ssim(Tensor::host(DType::f32, Shape{16, 16}), a)) == ErrorCode::shape);
    CHECK(code(bench::ssim(a.reshape(Shape{1, 16, 16, 3}), a.reshape(Shape{1, 16, 16, 3}))) == ErrorCode::shape);
    CHECK(code(bench::ssim(Tensor::host(DType::f16, Shape{16, 16, 3}), Tensor::host(DType::f16, Shape{16, 16, 3}))) ==
          ErrorCode::shape);
    CHECK(code(bench::ssim(Tensor::host(DType::f32, Shape{0, 16, 3}), Tensor::host(DType::f32, Shape{0, 16, 3}))) ==
          ErrorCode::shape);
    CHECK(code(bench::ssim(a, Tensor())) == ErrorCode::invalid_argument);
    CHECK(code(bench::ssim(a, a, 0.0)) == ErrorCode::invalid_argument);
    auto r = bench::ssim(a, Tensor::host(DType::f32, Shape{16, 16, 4}));
    CHECK(r.status().message().find("[16, 16, 4]") != std::string::npos);
}
