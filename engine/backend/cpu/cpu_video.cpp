// CPU twins of the decoder ops: causal 3D convolution (im2col + sgemm, in bands of output rows so
// the column buffer stays small), ReLU, the TAEHV soft clamp, 2D transpose and display conversion.
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace avs {

namespace {

Status need_f32_frame(const char * op, const Tensor & t) {
    if (t.defined() && t.dtype() != DType::f32)
        return make_error(ErrorCode::internal, "%s: expected f32, got %s", op, t.str().c_str());
    return {};
}

} // namespace

Status CpuBackend::conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                          const ConvSpec & spec) {
    const int64_t kt = spec.kt, kh = spec.kh, kw = spec.kw, up = spec.upsample;
    const int64_t n_in = int64_t(x.size());
    const int64_t T = n_in - kt + 1;
    if (T < 1 || y.ndim() != 4 || y.dim(0) != T || !y.is_contiguous())
        return make_error(ErrorCode::shape, "conv3d: %lld input frames for kt=%lld cannot give y %s", (long long) n_in,
                          (long long) kt, y.str().c_str());
    const Tensor * ref = nullptr;  // any defined input frame gives H, W, Cin
    for (const Tensor & f : x) {
        AVS_TRY(need_f32_frame("conv3d", f));
        if (f.defined()) ref = &f;
    }
    if (!ref) return make_error(ErrorCode::shape, "conv3d: every input frame is a zero frame");
    const int64_t H = ref->dim(0), W = ref->dim(1), Cin = ref->dim(2);
    const int64_t Ho = H * up, Wo = W * up, Cout = y.dim(3), K = kt * kh * kw * Cin;
    if (y.dim(1) != Ho || y.dim(2) != Wo || w.dim(0) != Cout || w.dim(1) != K || (b && b->numel() != Cout))
        return make_error(ErrorCode::shape, "conv3d: x [%lld, %lld, %lld] w %s y %s (kernel %lldx%lldx%lld, up %lld)",
                          (long long) H, (long long) W, (long long) Cin, w.str().c_str(), y.str().c_str(),
                          (long long) kt, (long long) kh, (long long) kw, (long long) up);
    for (const Tensor & f : x) {
        if (f.defined() && (f.ndim() != 3 || f.dim(0) != H || f.dim(1) != W || f.dim(2) != Cin || f.stride(2) != 1 ||
                            f.stride(1) < Cin || f.stride(0) != W * f.stride(1)))
            return make_error(ErrorCode::shape, "conv3d: input frame %s does not match [%lld, %lld, %lld] with unit channel stride",
                              f.str().c_str(), (long long) H, (long long) W, (long long) Cin);
    }
    const float * Wt = w.data<float>();
    // Band of output rows per sgemm: keep the column buffer near 32 MB.
    const int64_t band = std::clamp<int64_t>((int64_t(8) << 20) / std::max<int64_t>(1, Wo * K), 1, Ho);
    conv_cols_.resize(size_t(band * Wo * K));
    float * cols = conv_cols_.data();
    for (int64_t t = 0; t < T; ++t) {
        float * Y = y.data<float>() + t * Ho * Wo * Cout;
        for (int64_t oy0 = 0; oy0 < Ho; oy0 += band) {
            const int64_t rows = std::min(band, Ho - oy0);
            // cols[(r*Wo + ox), ((dt*kh + dy)*kw + dx)*Cin + ci]
            parallel_for(rows * Wo, [&](int64_t p0, int64_t p1) {
                for (int64_t p = p0; p < p1; ++p) {
                    const int64_t oy = oy0 + p / Wo, ox = p % Wo;
                    float * c = cols + p * K;
                    for (int64_t dt = 0; dt < kt; ++dt) {
                        const Tensor & f = x[size_t(t + dt)];
                        for (int64_t dy = 0; dy < kh; ++dy) {
                            const int64_t uy = oy + dy - kh / 2;
                            for (int64_t dx = 0; dx < kw; ++dx, c += Cin) {
                                const int64_t ux = ox + dx - kw / 2;
                                if (!f.defined() || uy < 0 || uy >= Ho || ux < 0 || ux >= Wo) {
                                    std::memset(c, 0, size_t(Cin) * sizeof(float));
                                    continue;
                                }
                                const float * src = f.data<float>() + (uy / up) * f.stride(0) + (ux / up) * f.stride(1);
                                std::memcpy(c, src, size_t(Cin) * sizeof(float));
                            }
                        }
                    }
                }
            }, 64);
            float * Yb = Y + oy0 * Wo * Cout;
            if (b && !spec.accumulate) {
                const float * B = b->data<float>();
                for (int64_t p = 0; p < rows * Wo; ++p) std::memcpy(Yb + p * Cout, B, size_t(Cout) * sizeof(float));
            } else if (b) {
                const float * B = b->data<float>();
                for (int64_t p = 0; p < rows * Wo; ++p)
                    for (int64_t co = 0; co < Cout; ++co) Yb[p * Cout + co] += B[co];
            }
            cpu_sgemm_nt(rows * Wo, Cout, K, cols, K, Wt, K, Yb, Cout, spec.accumulate || b != nullptr);
        }
    }
    return {};
}

Status CpuBackend::relu(const Tensor & y, const Tensor & x) {
    AVS_TRY(need_f32_frame("relu", x));
    const float * X = x.data<float>();
    float *       Y = y.data<float>();
    parallel_for(x.numel(), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) Y[i] = X[i] > 0.0f ? X[i] : 0.0f;
    }, 4096);
    return {};
}

Status CpuBackend::tanh_clamp(const Tensor & y, const Tensor & x, float bound) {
    AVS_TRY(need_f32_frame("tanh_clamp", x));
    const float * X = x.data<float>();
    float *       Y = y.data<float>();
    parallel_for(x.numel(), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) Y[i] = bound * std::tanh(X[i] / bound);
    }, 4096);
    return {};
}

Status CpuBackend::transpose(const Tensor & y, const Tensor & x) {
    AVS_TRY(need_f32_frame("transpose", x));
    if (x.ndim() != 2 || y.ndim() != 2 || y.dim(0) != x.dim(1) || y.dim(1) != x.dim(0) || x.stride(1) != 1 ||
        !y.is_contiguous())
        return make_error(ErrorCode::shape, "transpose: x %s -> y %s", x.str().c_str(), y.str().c_str());
    const int64_t M = x.dim(0), N = x.dim(1), ld = x.stride(0);
    const float * X = x.data<float>();
    float *       Y = y.data<float>();
    parallel_for(N, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n)
            for (int64_t m = 0; m < M; ++m) Y[n * M + m] = X[m * ld + n];
    }, 256);
    return {};
}

Status CpuBackend::to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) {
    AVS_TRY(need_f32_frame("to_rgba8", x));
    if (x.ndim() != 3 || x.dim(2) != 3 || x.stride(2) != 1 || x.stride(0) != x.dim(1) * x.stride(1) ||
        rgba.dtype() != DType::u8 || rgba.ndim() != 3 || rgba.dim(0) != x.dim(0) || rgba.dim(1) != x.dim(1) ||
        rgba.dim(2) != 4 || !rgba.is_contiguous())
        return make_error(ErrorCode::shape, "to_rgba8: x %s -> rgba %s", x.str().c_str(), rgba.str().c_str());
    const int64_t P = x.dim(0) * x.dim(1), ps = x.stride(1);
    const float * X = x.data<float>();
    uint8_t *     O = rgba.data<uint8_t>();
    parallel_for(P, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            for (int c = 0; c < 3; ++c) {
                const float v = std::clamp(a * X[p * ps + c] + b, 0.0f, 1.0f);
                O[p * 4 + c] = uint8_t(std::lrintf(v * 255.0f));
            }
            O[p * 4 + 3] = 255;
        }
    }, 4096);
    return {};
}

} // namespace avs
