#include <catch2/catch.hpp>

#include "engine/runtime/generator.h"
#include "engine/runtime/rng.h"
#include "engine/runtime/sampler.h"
#include "test_util.h"

using namespace avs;

TEST_CASE("warped timesteps match Self-Forcing's lists", "[sampler]") {
    auto t = sampler_timesteps(4, 5.0);
    REQUIRE(t.size() == 4);
    REQUIRE(t[0] == Approx(1000.0));
    REQUIRE(t[1] == Approx(937.5));
    REQUIRE(t[2] == Approx(833.3333333));
    REQUIRE(t[3] == Approx(625.0));
    auto c = sampler_timesteps(4, 8.0);  // CausVid / the Self-Forcing demo
    REQUIRE(c[1] == Approx(960.0));
    REQUIRE(c[2] == Approx(888.888889));
    REQUIRE(c[3] == Approx(727.272727));
    auto r = sampler_timesteps(2, 3.0);
    REQUIRE(r[1] == Approx(750.0));  // 3*0.5/(1+2*0.5)
    REQUIRE(shift_sigma(0.0, 5.0) == 0.0);
    REQUIRE(shift_sigma(1.0, 5.0) == 1.0);
}

TEST_CASE("seeded noise is reproducible, distinct per (chunk, step), and standard normal", "[sampler]") {
    SeededNoise a(42), b(42), c(43);
    Tensor x = Tensor::host(DType::f32, Shape{16, 3, 32, 32});
    Tensor y = Tensor::host(DType::f32, x.shape());
    REQUIRE(a.fill(3, 1, x).ok());
    REQUIRE(b.fill(3, 1, y).ok());
    REQUIRE(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0);
    REQUIRE(b.fill(3, 2, y).ok());
    REQUIRE(std::memcmp(x.raw(), y.raw(), x.nbytes()) != 0);
    REQUIRE(c.fill(3, 1, y).ok());
    REQUIRE(std::memcmp(x.raw(), y.raw(), x.nbytes()) != 0);
    double s = 0, s2 = 0;
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) {
        s += x.data<float>()[i];
        s2 += double(x.data<float>()[i]) * x.data<float>()[i];
    }
    REQUIRE(std::fabs(s / double(n)) < 0.03);
    REQUIRE(std::fabs(s2 / double(n) - 1.0) < 0.03);
}

TEST_CASE("tensor noise reads [chunks, steps, ...] and rejects what it does not hold", "[sampler]") {
    Tensor n = test::randn(Shape{2, 3, 4, 1, 2, 2}, 5);
    TensorNoise src(n);
    Tensor dst = Tensor::host(DType::f32, Shape{4, 1, 2, 2});
    REQUIRE(src.fill(1, 2, dst).ok());
    REQUIRE(dst.data<float>()[0] == n.data<float>()[(1 * 3 + 2) * 16]);
    REQUIRE_THAT(src.fill(2, 0, dst).message(), Catch::Contains("chunk 2"));
    Tensor wrong = Tensor::host(DType::f32, Shape{4, 2, 2, 2});
    REQUIRE(src.fill(0, 0, wrong).code() == ErrorCode::shape);
}
