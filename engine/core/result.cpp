#include "engine/core/result.h"

#include <cstdarg>
#include <vector>

namespace avs {

const char * error_code_name(ErrorCode c) {
    switch (c) {
        case ErrorCode::ok:               return "ok";
        case ErrorCode::invalid_argument: return "invalid argument";
        case ErrorCode::io:               return "I/O error";
        case ErrorCode::format:           return "format error";
        case ErrorCode::missing:          return "missing";
        case ErrorCode::shape:            return "shape mismatch";
        case ErrorCode::unsupported:      return "unsupported";
        case ErrorCode::device:           return "device error";
        case ErrorCode::internal:         return "internal error";
    }
    return "unknown";
}

Status make_error(ErrorCode code, const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    const int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string msg(n > 0 ? size_t(n) : 0, '\0');
    if (n > 0) std::vsnprintf(msg.data(), size_t(n) + 1, fmt, ap2);
    va_end(ap2);
    return Status(code, std::move(msg));
}

} // namespace avs
