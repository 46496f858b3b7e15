#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/parallel.h"

#include <chrono>
#include <cmath>
#include <cstring>

namespace avs {

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

namespace {

Status need_f32(const char * op, const Tensor & t) {
    if (t.dtype() != DType::f32 || !t.defined())
        return make_error(ErrorCode::internal, "%s: expected an f32 tensor, got %s", op, t.defined() ? t.str().c_str() : "undefined");
    return {};
}

// Row r of a [F, D] tensor that may be a row-strided view (modulation chunks).
inline const float * row_ptr(const Tensor & t, int64_t r) { return t.data<float>() + r * t.stride(0); }

} // namespace

Result<Tensor> CpuBackend::alloc(DType dtype, const Shape & shape) {
    const uint64_t bytes = dtype_bytes(dtype, uint64_t(shape.numel()));
    const uint64_t size  = ((bytes ? bytes : 1) + 63) / 64 * 64;
    void * p = std::aligned_alloc(64, size);
    if (!p) return make_error(ErrorCode::internal, "cpu backend: out of memory allocating %s %s (%.1f MiB)", dtype_name(dtype),
                              shape.str().c_str(), double(bytes) / 1048576.0);
    std::memset(p, 0, size);
    auto in_use = in_use_, peak = peak_;
    const uint64_t now = in_use->fetch_add(size) + size;
    uint64_t prev = peak->load();
    while (now > prev && !peak->compare_exchange_weak(prev, now)) {}
    auto buf = std::make_shared<Buffer>(p, bytes, Device::cpu, [in_use, size](void * q) {
        std::free(q);
        in_use->fetch_sub(size);
    });
    return Tensor(std::move(buf), 0, dtype, shape);
}

namespace {
// The CPU twin runs every op to completion before returning, so an event is just the time it was recorded.
struct CpuEvent final : BackendEvent {
    std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
};
} // namespace

Result<std::shared_ptr<BackendEvent>> CpuBackend::record_event() { return std::shared_ptr<BackendEvent>(std::make_shared<CpuEvent>()); }

Result<double> CpuBackend::elapsed_ms(const BackendEvent & a, const BackendEvent & b) {
    const auto * ea = dynamic_cast<const CpuEvent *>(&a);
    const auto * eb = dynamic_cast<const CpuEvent *>(&b);
    if (!ea || !eb) return make_error(ErrorCode::invalid_argument, "elapsed_ms: events of another backend");
    return std::chrono::duration<double, std::milli>(eb->t - ea->t).count();
}

Status CpuBackend::upload(const Tensor & dst, const Tensor & src) {
    if (dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
        return make_error(ErrorCode::shape, "upload: %s -> %s", src.str().c_str(), dst.str().c_str());
    if (dst.dtype() == src.dtype()) {
        std::memcpy(dst.raw(), src.raw(), src.nbytes());
        return {};
    }
    if (dst.dtype() == DType::f32) return convert_to_f32(src.raw(), src.dtype(), dst.data<float>(), uint64_t(src.numel()));
    if (src.dtype() == DType::f32) return convert_from_f32(src.data<float>(), dst.raw(), dst.dtype(), uint64_t(src.numel()));
    return make_error(ErrorCode::unsupported, "upload: %s -> %s conversion", dtype_name(src.dtype()), dtype_name(dst.dtype()));
}

Status CpuBackend::download(const Tensor & dst, const Tensor & src) { return upload(dst, src); }

Status CpuBackend::copy(const Tensor & dst, const Tensor & src) {
    if (dst.dtype() != src.dtype() || dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
        return make_error(ErrorCode::shape, "copy: %s -> %s", src.str().c_str(), dst.str().c_str());
    std::memmove(dst.raw(), src.raw(), src.nbytes());
    return {};
}

// LayerNorm statistics in fp64 accumulation: it is the reference, and D is up to 5120.
static inline void ln_stats(const float * x, int64_t D, float eps, float & mean, float & rstd) {
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < D; ++i) s += x[i];
    const double m = s / double(D);
    for (int64_t i = 0; i < D; ++i) {
        const double d = x[i] - m;
        s2 += d * d;
    }
    mean = float(m);
    rstd = float(1.0 / std::sqrt(s2 / double(D) + double(eps)));
}

Status CpuBackend::layer_norm_modulate(const Tensor & y, const Tensor & x, const Tensor & shift, const Tensor & scale,
                                       int64_t rows_per_frame, float eps) {
    AVS_TRY(need_f32("layer_norm_modulate", x));
    const int64_t D = x.dim(-1), R = x.numel() / D;
    const float * X = x.data<float>();
    float *       Y = y.data<float>();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float mean, rstd;
            ln_stats(X + r * D, D, eps, mean, rstd);
            const float * sh = row_ptr(shift, r / rows_per_frame);
            const float * sc = row_ptr(scale, r / rows_per_frame);
            for (int64_t i = 0; i < D; ++i) Y[r * D + i] = (X[r * D + i] - mean) * rstd * (1.0f + sc[i]) + sh[i];
        }
    }, 16);
    return {};
}

Status CpuBackend::layer_norm_affine(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor & b, float eps) {
    AVS_TRY(need_f32("layer_norm_affine", x));
    const int64_t D = x.dim(-1), R = x.numel() / D;
    const float * X = x.data<float>();
    const float * W = w.data<float>();
    const float * B = b.data<float>();
    float *       Y = y.data<float>();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float mean, rstd;
            ln_stats(X + r * D, D, eps, mean, rstd);
            for (int64_t i = 0; i < D; ++i) Y[r * D + i] = (X[r * D + i] - mean) * rstd * W[i] + B[i];
        }
    }, 16);
    return {};
}

Status CpuBackend::rms_norm(const Tensor & y, const Tensor & x, const Tensor & w, float eps) {
    AVS_TRY(need_f32("rms_norm", x));
    const int64_t D = x.dim(-1), R = x.numel() / D;
    const float * X = x.data<float>();
    const float * W = w.data<float>();
    float *       Y = y.data<float>();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            double s2 = 0.0;
            for (int64_t i = 0; i < D; ++i) s2 += double(X[r * D + i]) * X[r * D + i];
            const float rs = float(1.0 / std::sqrt(s2 / double(D) + double(eps)));
            for (int64_t i = 0; i < D; ++i) Y[r * D + i] = X[r * D + i] * rs * W[i];
        }
    }, 16);
    return {};
}

template <typename F>
static void map_unary(const Tensor & y, const Tensor & x, F f) {
    const float * X = x.data<float>();
    float *       Y = y.data<float>();
    parallel_for(x.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) Y[i] = f(X[i]);
    }, 4096);
}

Status CpuBackend::gelu_tanh(const Tensor & y, const Tensor & x) {
    AVS_TRY(need_f32("gelu_tanh", x));
    map_unary(y, x, [](float v) {
        const float k = 0.7978845608028654f;  // sqrt(2/pi)
        return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    });
    return {};
}

Status CpuBackend::silu(const Tensor & y, const Tensor & x) {
    AVS_TRY(need_f32("silu", x));
    map_unary(y, x, [](float v) { return v / (1.0f + std::exp(-v)); });
    return {};
}

Status CpuBackend::gated_residual(const Tensor & x, const Tensor & y, const Tensor & gate, int64_t rows_per_frame) {
    const int64_t D = x.dim(-1), R = x.numel() / D;
    float *       X = x.data<float>();
    const float * Y = y.data<float>();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float * g = row_ptr(gate, r / rows_per_frame);
            for (int64_t i = 0; i < D; ++i) X[r * D + i] += Y[r * D + i] * g[i];
        }
    }, 16);
    return {};
}

Status CpuBackend::add(const Tensor & x, const Tensor & y) {
    float *       X = x.data<float>();
    const float * Y = y.data<float>();
    parallel_for(x.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) X[i] += Y[i];
    }, 4096);
    return {};
}

Status CpuBackend::axpby(const Tensor & out, float a, const Tensor & x, float b, const Tensor & y) {
    if (out.numel() != x.numel() || out.numel() != y.numel())
        return make_error(ErrorCode::shape, "axpby: %s, %s, %s", out.str().c_str(), x.str().c_str(), y.str().c_str());
    float *       O = out.data<float>();
    const float * X = x.data<float>();
    const float * Y = y.data<float>();
    parallel_for(out.numel(), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) O[i] = a * X[i] + b * Y[i];
    }, 4096);
    return {};
}

Status CpuBackend::add_row(const Tensor & out, const Tensor & a, const Tensor & row) {
    const int64_t N = row.numel(), R = a.numel() / N;
    const float * A = a.data<float>();
    const float * W = row.data<float>();
    float *       O = out.data<float>();
    for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < N; ++i) O[r * N + i] = A[r * N + i] + W[i];
    return {};
}

Status CpuBackend::timestep_embedding(const Tensor & out, const std::vector<double> & t) {
    const int64_t dim = out.dim(-1), half = dim / 2;
    if (int64_t(t.size()) != out.numel() / dim)
        return make_error(ErrorCode::shape, "timestep_embedding: %zu timesteps for %s", t.size(), out.str().c_str());
    float * O = out.data<float>();
    for (size_t f = 0; f < t.size(); ++f) {
        for (int64_t k = 0; k < half; ++k) {
            const double freq = std::pow(10000.0, -double(k) / double(half));
            const double a    = t[f] * freq;
            O[int64_t(f) * dim + k]        = float(std::cos(a));  // cos first (Wan2.1)
            O[int64_t(f) * dim + half + k] = float(std::sin(a));
        }
    }
    return {};
}

Status CpuBackend::patchify(const Tensor & tokens, const Tensor & x, int ph, int pw) {
    const int64_t C = x.dim(0), F = x.dim(1), H = x.dim(2), W = x.dim(3);
    const int64_t gh = H / ph, gw = W / pw, P = C * ph * pw;
    if (tokens.numel() != F * gh * gw * P) return make_error(ErrorCode::shape, "patchify: %s -> %s", x.str().c_str(), tokens.str().c_str());
    const float * X = x.data<float>();
    float *       T = tokens.data<float>();
    parallel_for(F * gh * gw, [&](int64_t b, int64_t e) {
        for (int64_t tok = b; tok < e; ++tok) {
            const int64_t f = tok / (gh * gw), i = (tok / gw) % gh, j = tok % gw;
            float * t = T + tok * P;
            for (int64_t c = 0; c < C; ++c)
                for (int64_t kh = 0; kh < ph; ++kh)
                    for (int64_t kw = 0; kw < pw; ++kw)
                        *t++ = X[((c * F + f) * H + i * ph + kh) * W + j * pw + kw];
        }
    }, 16);
    return {};
}

Status CpuBackend::unpatchify(const Tensor & x, const Tensor & u, int ph, int pw) {
    const int64_t C = x.dim(0), F = x.dim(1), H = x.dim(2), W = x.dim(3);
    const int64_t gh = H / ph, gw = W / pw, P = C * ph * pw;
    if (u.numel() != F * gh * gw * P) return make_error(ErrorCode::shape, "unpatchify: %s -> %s", u.str().c_str(), x.str().c_str());
    const float * U = u.data<float>();
    float *       X = x.data<float>();
    parallel_for(F * gh * gw, [&](int64_t b, int64_t e) {
        for (int64_t tok = b; tok < e; ++tok) {
            const int64_t f = tok / (gh * gw), i = (tok / gw) % gh, j = tok % gw;
            for (int64_t a = 0; a < ph; ++a)
                for (int64_t q = 0; q < pw; ++q)
                    for (int64_t c = 0; c < C; ++c)
                        X[((c * F + f) * H + i * ph + a) * W + j * pw + q] = U[tok * P + (a * pw + q) * C + c];
        }
    }, 16);
    return {};
}

Status CpuBackend::rope(const Tensor & x, const RopeLayout & layout, const std::vector<int64_t> & frame_positions) {
    AVS_TRY(need_f32("rope", x));
    const int64_t tokens = x.dim(0);
    if (tokens != int64_t(frame_positions.size()) * layout.tokens_per_frame())
        return make_error(ErrorCode::shape, "rope: %s for %zu frames of %d tokens", x.str().c_str(), frame_positions.size(),
                          layout.tokens_per_frame());
    rope_apply_cpu(x.data<float>(), tokens, int(x.dim(1)), int(x.dim(2)), make_rope_tables(layout, frame_positions));
    return {};
}

} // namespace avs
