// Element types and their scalar conversions. Conversions are AVS_HD so that kernels and the
// CPU twin share one definition (rounding: round-to-nearest-even everywhere).
#pragma once

#include "engine/core/hd.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace avs {

enum class DType : uint8_t {
    f32,
    f16,
    bf16,
    f64,
    fp8_e4m3,
    i8,
    u8,
    i32,
    i64,
    int4,  // packed: two values per byte, element 2i in the low nibble
};

// Size in bits of one element (4 for packed int4).
int dtype_bits(DType t);
// Bytes for `n` elements (rounded up for sub-byte types).
inline uint64_t dtype_bytes(DType t, uint64_t n) { return (n * uint64_t(dtype_bits(t)) + 7) / 8; }
const char * dtype_name(DType t);                     // "f32", "bf16", ...
// safetensors dtype strings ("F32", "BF16", "F8_E4M3", ...)
std::optional<DType> dtype_from_safetensors(std::string_view s);
const char * dtype_to_safetensors(DType t);
std::optional<DType> dtype_from_name(std::string_view s);  // our names

enum class Device : uint8_t { cpu, cuda };
const char * device_name(Device d);

// ---- scalar conversions -------------------------------------------------------------------

AVS_HD uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
AVS_HD float    bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

AVS_HD float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }
AVS_HD uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                           // RNE
    return uint16_t(u >> 16);
}

AVS_HD float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp  = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));  // inf/nan
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        // subnormal: value = mant * 2^-24
        float v = float(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

AVS_HD uint16_t f32_to_f16(float f) {
    uint32_t u    = f32_bits(f);
    uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    uint32_t a    = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u); // overflow (>= 65520 rounds to inf)
    if (a < 0x38800000u) {                                  // subnormal or zero in f16
        // scale into the subnormal grid and round to nearest even via float arithmetic
        float v = bits_f32(a) * 16777216.0f;  // * 2^24
        uint32_t m = uint32_t(v);
        float rem = v - float(m);
        if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
        return uint16_t(sign | m);
    }
    uint32_t exp  = (a >> 23) - 112u;
    uint32_t mant = a & 0x7fffffu;
    uint32_t h    = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return uint16_t(sign | h);
}

// FP8 E4M3 (OCP "fn" variant: no infinities, 0x7f/0xff are NaN, max finite 448).
AVS_HD float fp8e4m3_to_f32(uint8_t b) {
    const uint32_t sign = uint32_t(b & 0x80u) << 24;
    const uint32_t exp  = (b >> 3) & 0xfu;
    const uint32_t mant = b & 0x7u;
    if (exp == 0xf && mant == 0x7) return bits_f32(sign | 0x7fc00000u);
    if (exp == 0) {
        float v = float(mant) * 0.001953125f;  // mant * 2^-9
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 120u) << 23) | (mant << 20));
}

AVS_HD uint8_t f32_to_fp8e4m3(float f) {
    uint32_t u    = f32_bits(f);
    uint8_t  sign = uint8_t((u >> 24) & 0x80u);
    uint32_t a    = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint8_t(sign | 0x7f);  // NaN
    float x = bits_f32(a);
    if (x >= 464.0f) return uint8_t(sign | 0x7e);       // saturate to 448 (fn has no inf)
    if (x < 0.015625f) {                                  // below min normal 2^-6: subnormal grid 2^-9
        float v = x * 512.0f;
        uint32_t m = uint32_t(v);
        float rem = v - float(m);
        if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
        return uint8_t(sign | m);                         // m == 8 carries into the exponent correctly
    }
    uint32_t exp  = (a >> 23) - 120u;
    uint32_t mant = a & 0x7fffffu;
    uint32_t r    = (exp << 3) | (mant >> 20);
    uint32_t rest = mant & 0xfffffu;
    if (rest > 0x80000u || (rest == 0x80000u && (r & 1u))) r++;
    if (r > 0x7e) r = 0x7e;
    return uint8_t(sign | r);
}

} // namespace avs
