#include "bench/image_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace avs::bench {

namespace {

constexpr int64_t k_window = 11;
constexpr double  k_sigma  = 1.5;

// Normalised 1-D Gaussian of n taps centred at (n - 1) / 2; the 2-D window is the outer product of
// two of these, so filtering rows then columns equals the 2-D window of the paper.
std::vector<double> gaussian(int64_t n) {
    std::vector<double> g(size_t(n), 0.0);
    const double        c = 0.5 * double(n - 1);
    double              s = 0;
    for (int64_t k = 0; k < n; ++k) s += g[size_t(k)] = std::exp(-(double(k) - c) * (double(k) - c) / (2 * k_sigma * k_sigma));
    for (double & v : g) v /= s;
    return g;
}

// Mean SSIM of channel c of two [H, W, C] images over the valid region of a wy x wx window.
double ssim_channel(const float * a, const float * b, int64_t H, int64_t W, int64_t C, int64_t c, double c1, double c2) {
    const int64_t             wy = std::min(k_window, H), wx = std::min(k_window, W);
    const int64_t             oh = H - wy + 1, ow = W - wx + 1;
    const std::vector<double> gy = gaussian(wy), gx = gaussian(wx);
    // rows filtered: a, b, a^2, b^2, ab for every row and valid column
    std::array<std::vector<double>, 5> h;
    for (auto & v : h) v.assign(size_t(H * ow), 0.0);
    for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < ow; ++x) {
            std::array<double, 5> s{};
            for (int64_t j = 0; j < wx; ++j) {
                const int64_t i = (y * W + x + j) * C + c;
                const double  p = a[i], q = b[i], g = gx[size_t(j)];
                s[0] += g * p, s[1] += g * q, s[2] += g * p * p, s[3] += g * q * q, s[4] += g * p * q;
            }
            for (size_t k = 0; k < 5; ++k) h[k][size_t(y * ow + x)] = s[k];
        }
    double total = 0;
    for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
            std::array<double, 5> m{};
            for (int64_t i = 0; i < wy; ++i)
                for (size_t k = 0; k < 5; ++k) m[k] += gy[size_t(i)] * h[k][size_t((y + i) * ow + x)];
            const double mu_a = m[0], mu_b = m[1];
            const double var_a = m[2] - mu_a * mu_a, var_b = m[3] - mu_b * mu_b, cov = m[4] - mu_a * mu_b;
            total += ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
        }
    return total / double(oh * ow);
}

} // namespace

Result<double> ssim(const Tensor & a, const Tensor & ref, double data_range) {
    if (!a.defined() || !ref.defined()) return make_error(ErrorCode::invalid_argument, "ssim: undefined tensor");
    if (a.shape() != ref.shape())
        return make_error(ErrorCode::shape, "ssim: shapes differ: %s vs reference %s", a.str().c_str(), ref.str().c_str());
    if (a.ndim() != 2 && a.ndim() != 3)
        return make_error(ErrorCode::shape, "ssim: %s, expected [H, W] or [H, W, C]", a.str().c_str());
    if (a.dtype() != DType::f32 || ref.dtype() != DType::f32 || !a.is_contiguous() || !ref.is_contiguous())
        return make_error(ErrorCode::shape, "ssim: %s and %s, expected contiguous f32", a.str().c_str(), ref.str().c_str());
    if (a.device() != Device::cpu || ref.device() != Device::cpu)
        return make_error(ErrorCode::invalid_argument, "ssim: tensors must be on the host");
    if (a.numel() == 0) return make_error(ErrorCode::shape, "ssim: empty image %s", a.str().c_str());
    if (!(data_range > 0)) return make_error(ErrorCode::invalid_argument, "ssim: data_range %g, expected > 0", data_range);
    const int64_t H = a.dim(0), W = a.dim(1), C = a.ndim() == 3 ? a.dim(2) : 1;
    const double  c1 = (0.01 * data_range) * (0.01 * data_range), c2 = (0.03 * data_range) * (0.03 * data_range);
    double        s  = 0;
    for (int64_t c = 0; c < C; ++c) s += ssim_channel(a.data<float>(), ref.data<float>(), H, W, C, c, c1, c2);
    return s / double(C);
}

} // namespace avs::bench
