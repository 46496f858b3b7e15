// The accuracy of the 8-bit MMA attention's algorithm (tests/attention_q8_model.h: kernels/attention_ws8.cu's
// roundings with exact arithmetic otherwise) against the exact CPU twin on a cache with real caches'
// features (make_q8_case). The CUDA kernel is held to this model in test_cuda_backend.cpp.
#include <catch2/catch.hpp>

#include "attention_q8_model.h"

#include <cmath>

using namespace avs;

TEST_CASE("the 8-bit MMA attention's roundings keep it within a few percent of exact attention on uneven caches",
          "[attention_q8][cpu]") {
    CpuBackend cpu;
    for (KvFormat fmt : {KvFormat::int8, KvFormat::fp8}) {
        double prev = 0.0;
        for (float spread : {0.0f, 1.0f}) {
            const test::Q8Case c = test::make_q8_case(fmt, spread);
            Tensor twin = Tensor::host(DType::f32, c.q.shape());
            REQUIRE(cpu.attention_ring(twin, c.q, c.store, c.L, c.view, c.tail_k, c.tail_v, c.rope, 0.088f).ok());
            const double e = test::rel_err(test::q8_model_out(c, 0.088f), twin);
            INFO(kv_format_name(fmt) << ", value-scale spread " << spread << ": model vs exact rel err " << e);
            // measured: int8 0.004 / 0.016, fp8 0.010 / 0.040 (fp8: mostly Q in e4m3). Uneven values raise
            // every rounding's effect (outputs further from each value), but no more than that.
            CHECK(std::isfinite(e));
            CHECK(e > 1e-4);  // the roundings are there (an exact model would be a useless reference)
            CHECK(e < (fmt == KvFormat::int8 ? 0.03 : 0.06));
            if (spread > 0.0f) CHECK(e < 8.0 * prev);
            prev = e;
        }
    }
}
