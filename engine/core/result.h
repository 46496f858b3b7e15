// Status / Result<T>: how library code reports failure. Library code never aborts on bad input;
// it returns an error naming the file/field and what was expected, and only main() decides to exit.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <variant>

namespace avs {

enum class ErrorCode {
    ok = 0,
    invalid_argument,  // a caller-supplied value (flag, config field) is out of range
    io,                // open/read/write/mmap failed
    format,            // a file's content is malformed (header, JSON, byte ranges)
    missing,           // a required tensor/key/file is absent
    shape,             // a tensor has the wrong shape or dtype
    unsupported,       // valid but not implemented by this build/backend
    device,            // CUDA/driver failure
    internal,
};

const char * error_code_name(ErrorCode c);

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status success() { return {}; }

    bool ok() const { return code_ == ErrorCode::ok; }
    explicit operator bool() const { return ok(); }
    ErrorCode code() const { return code_; }
    const std::string & message() const { return message_; }

    // Prefix context ("loading foo.safetensors: ") while an error travels up.
    Status with_context(const std::string & ctx) const {
        return ok() ? *this : Status(code_, ctx + ": " + message_);
    }

private:
    ErrorCode   code_ = ErrorCode::ok;
    std::string message_;
};

// printf-style error construction: make_error(ErrorCode::format, "%s: bad header", path)
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
Status make_error(ErrorCode code, const char * fmt, ...);

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
    Result(Status error) : v_(std::move(error)) {}     // NOLINT: implicit by design

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }

    T &       value() &       { return std::get<T>(v_); }
    const T & value() const & { return std::get<T>(v_); }
    T &&      value() &&      { return std::get<T>(std::move(v_)); }
    T *       operator->()    { return &std::get<T>(v_); }
    T &       operator*()     { return std::get<T>(v_); }

    Status status() const { return ok() ? Status() : std::get<Status>(v_); }

private:
    std::variant<T, Status> v_;
};

} // namespace avs

// Propagate a failed Status from an expression.
#define AVS_TRY(expr)                                   \
    do {                                                \
        ::avs::Status avs_try_status_ = (expr);         \
        if (!avs_try_status_.ok()) return avs_try_status_; \
    } while (0)

#define AVS_CONCAT_INNER(a, b) a##b
#define AVS_CONCAT(a, b) AVS_CONCAT_INNER(a, b)

// Unwrap a Result<T> into `lhs`, or return its error.
#define AVS_ASSIGN_OR_RETURN(lhs, expr) AVS_ASSIGN_OR_RETURN_IMPL(AVS_CONCAT(avs_res_, __LINE__), lhs, expr)
#define AVS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                            \
    if (!tmp.ok()) return tmp.status();           \
    lhs = std::move(tmp).value()
