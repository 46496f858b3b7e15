#include <catch2/catch.hpp>

#include "engine/core/dtype.h"
#include "engine/core/log.h"
#include "engine/core/result.h"
#include "engine/core/tensor.h"

#include <cmath>
#include <string>

using namespace avs;

TEST_CASE("bf16 conversion rounds to nearest even and keeps specials", "[core]") {
    REQUIRE(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
    // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0
    REQUIRE(bf16_to_f32(f32_to_bf16(1.00390625f)) == 1.0f);
    // slightly above the tie rounds up
    REQUIRE(bf16_to_f32(f32_to_bf16(1.0040f)) == 1.0078125f);
    REQUIRE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
    REQUIRE(std::isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
    REQUIRE(bf16_to_f32(f32_to_bf16(-3.5f)) == -3.5f);
}

TEST_CASE("f16 conversion matches IEEE half for normals, subnormals and overflow", "[core]") {
    REQUIRE(f32_to_f16(1.0f) == 0x3c00);
    REQUIRE(f32_to_f16(-2.0f) == 0xc000);
    REQUIRE(f32_to_f16(65504.0f) == 0x7bff);
    REQUIRE(f32_to_f16(65536.0f) == 0x7c00);            // overflow -> inf
    REQUIRE(f32_to_f16(5.9604644775390625e-8f) == 0x0001);  // smallest subnormal
    REQUIRE(f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    REQUIRE(f16_to_f32(0x3555) == Approx(0.33325195f).epsilon(0));
    for (uint32_t h = 0; h < 0x7c00; h += 7) REQUIRE(f32_to_f16(f16_to_f32(uint16_t(h))) == h);  // round trip
}

TEST_CASE("fp8 e4m3 conversion: exact grid values, saturation at 448, NaN", "[core]") {
    REQUIRE(fp8e4m3_to_f32(f32_to_fp8e4m3(1.0f)) == 1.0f);
    REQUIRE(fp8e4m3_to_f32(f32_to_fp8e4m3(448.0f)) == 448.0f);
    REQUIRE(fp8e4m3_to_f32(f32_to_fp8e4m3(1e6f)) == 448.0f);
    REQUIRE(fp8e4m3_to_f32(f32_to_fp8e4m3(-0.001953125f)) == -0.001953125f);  // min subnormal 2^-9
    REQUIRE(std::isnan(fp8e4m3_to_f32(0x7f)));
    REQUIRE(fp8e4m3_to_f32(f32_to_fp8e4m3(1.06f)) == 1.0f);     // below the 1.0625 midpoint of 1.0 and 1.125
    for (int b = 0; b < 256; ++b) {
        if ((b & 0x7f) == 0x7f) continue;
        const float v = fp8e4m3_to_f32(uint8_t(b));
        if (v == 0.0f) continue;  // +0 / -0
        REQUIRE(f32_to_fp8e4m3(v) == uint8_t(b));
    }
}

TEST_CASE("tensor views: slice and select share storage with correct strides", "[core]") {
    Tensor t = Tensor::host(DType::f32, Shape{2, 3, 4});
    for (int i = 0; i < 24; ++i) t.data<float>()[i] = float(i);
    REQUIRE(t.is_contiguous());
    Tensor s = t.slice(1, 1, 3);  // [2, 2, 4]
    REQUIRE(s.shape() == Shape{2, 2, 4});
    REQUIRE(!s.is_contiguous());
    REQUIRE(s.data<float>()[0] == 4.0f);
    REQUIRE(s.stride(0) == 12);
    Tensor r = t.select(1, 2);  // [2, 4], row stride 12
    REQUIRE(r.shape() == Shape{2, 4});
    REQUIRE(r.stride(0) == 12);
    REQUIRE(r.data<float>()[r.stride(0)] == 20.0f);
    REQUIRE(!t.reshape(Shape{5, 5}).defined());  // wrong element count
    REQUIRE(t.reshape(Shape{6, 4}).data<float>()[23] == 23.0f);
    REQUIRE(!t.slice(0, 1, 3).defined());  // out of range
    // reshape of strided views, PyTorch view rules: frame 1 of a [C=2, F=3, 2, 2] latent, inner dims merged
    Tensor lat = t.reshape(Shape{2, 3, 2, 2});
    Tensor fr  = lat.select(1, 1).reshape(Shape{2, 4});  // [C, h*w] with row stride F*h*w
    REQUIRE(fr.defined());
    REQUIRE(fr.stride(0) == 12);
    REQUIRE(fr.stride(1) == 1);
    REQUIRE(fr.data<float>()[fr.stride(0) + 3] == 19.0f);  // c 1, f 1, p 3
    REQUIRE(s.reshape(Shape{2, 8}).stride(0) == 12);        // merging the contiguous inner dims of a slice
    REQUIRE(s.reshape(Shape{2, 8}).data<float>()[12 + 7] == 23.0f);  // s starts at element 4
    REQUIRE(!s.reshape(Shape{16}).defined());               // the rows are not evenly spaced
    REQUIRE(!t.slice(2, 0, 2).reshape(Shape{2, 6}).defined());  // a last-dim slice cannot merge
    REQUIRE(dtype_bytes(DType::int4, 5) == 3);
}

TEST_CASE("Status and Result carry errors with context; AVS_TRY propagates", "[core]") {
    auto inner = []() -> Result<int> { return make_error(ErrorCode::format, "bad byte at %d", 7); };
    auto outer = [&]() -> Status {
        AVS_ASSIGN_OR_RETURN(int v, inner());
        (void) v;
        return {};
    };
    Status s = outer().with_context("file.bin");
    REQUIRE(!s.ok());
    REQUIRE(s.code() == ErrorCode::format);
    REQUIRE(s.message() == "file.bin: bad byte at 7");
    Result<int> ok = 5;
    REQUIRE(ok.ok());
    REQUIRE(ok.value() == 5);
}

TEST_CASE("logging honours the level and routes through the callback", "[core]") {
    static std::string got;
    log_set_callback([](LogLevel lvl, const char * msg, void *) { got += std::string(log_level_name(lvl)) + ":" + msg + ";"; },
                     nullptr);
    log_set_level(LogLevel::warn);
    AVS_LOG_INFO("hidden %d", 1);
    AVS_LOG_WARN("shown %d", 2);
    log_set_callback(nullptr, nullptr);
    log_set_level(LogLevel::info);
    REQUIRE(got == "warn:shown 2;");
}
