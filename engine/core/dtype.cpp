#include "engine/core/dtype.h"

namespace avs {

int dtype_bits(DType t) {
    switch (t) {
        case DType::f32:      return 32;
        case DType::f16:      return 16;
        case DType::bf16:     return 16;
        case DType::f64:      return 64;
        case DType::fp8_e4m3: return 8;
        case DType::i8:       return 8;
        case DType::u8:       return 8;
        case DType::i32:      return 32;
        case DType::i64:      return 64;
        case DType::int4:     return 4;
    }
    return 0;
}

const char * dtype_name(DType t) {
    switch (t) {
        case DType::f32:      return "f32";
        case DType::f16:      return "f16";
        case DType::bf16:     return "bf16";
        case DType::f64:      return "f64";
        case DType::fp8_e4m3: return "fp8_e4m3";
        case DType::i8:       return "i8";
        case DType::u8:       return "u8";
        case DType::i32:      return "i32";
        case DType::i64:      return "i64";
        case DType::int4:     return "int4";
    }
    return "?";
}

std::optional<DType> dtype_from_name(std::string_view s) {
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::fp8_e4m3, DType::i8, DType::u8,
                    DType::i32, DType::i64, DType::int4}) {
        if (s == dtype_name(t)) return t;
    }
    return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view s) {
    if (s == "F32") return DType::f32;
    if (s == "F16") return DType::f16;
    if (s == "BF16") return DType::bf16;
    if (s == "F64") return DType::f64;
    if (s == "F8_E4M3") return DType::fp8_e4m3;
    if (s == "I8") return DType::i8;
    if (s == "U8") return DType::u8;
    if (s == "I32") return DType::i32;
    if (s == "I64") return DType::i64;
    return std::nullopt;  // BOOL, U16, F8_E5M2, ... are valid safetensors but not used by our models
}

const char * dtype_to_safetensors(DType t) {
    switch (t) {
        case DType::f32:      return "F32";
        case DType::f16:      return "F16";
        case DType::bf16:     return "BF16";
        case DType::f64:      return "F64";
        case DType::fp8_e4m3: return "F8_E4M3";
        case DType::i8:       return "I8";
        case DType::u8:       return "U8";
        case DType::i32:      return "I32";
        case DType::i64:      return "I64";
        case DType::int4:     return nullptr;  // no safetensors name; stored as U8 by callers
    }
    return nullptr;
}

const char * device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

} // namespace avs
