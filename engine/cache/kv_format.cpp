#include "engine/cache/kv_format.h"

namespace avs {

const char * kv_format_name(KvFormat f) {
    switch (f) {
        case KvFormat::f32: return "f32";
        case KvFormat::bf16: return "bf16";
        case KvFormat::fp8: return "fp8";
        case KvFormat::int8: return "int8";
        case KvFormat::int4: return "int4";
        case KvFormat::nvfp4: return "nvfp4";
    }
    return "?";
}

std::vector<KvFormat> kv_formats() {
    return {KvFormat::f32, KvFormat::bf16, KvFormat::fp8, KvFormat::int8, KvFormat::int4, KvFormat::nvfp4};
}

Result<KvFormat> kv_format_parse(const std::string & name) {
    std::string all;
    for (KvFormat f : kv_formats()) {
        if (name == kv_format_name(f)) return f;
        all += (all.empty() ? "" : ", ") + std::string(kv_format_name(f));
    }
    return make_error(ErrorCode::invalid_argument, "unknown KV cache format '%s' (expected one of: %s)", name.c_str(), all.c_str());
}

Status kv_format_supports(KvFormat f, int head_dim) {
    const int need = f == KvFormat::int4 ? kKiviGroupV : (f == KvFormat::nvfp4 ? kNvfp4Block : 1);
    if (head_dim % need != 0)
        return make_error(ErrorCode::unsupported, "KV format %s needs head_dim to be a multiple of %d (got %d)", kv_format_name(f),
                          need, head_dim);
    return {};
}

} // namespace avs
