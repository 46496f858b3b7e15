#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(AVS_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace avs {

void cpu_sgemm_nt(int64_t M, int64_t N, int64_t K, const float * A, int64_t lda, const float * B, int64_t ldb, float * C,
                  int64_t ldc, bool accumulate) {
#if defined(AVS_HAVE_OPENBLAS)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(M), blasint(N), blasint(K), 1.0f, A, blasint(lda), B,
                blasint(ldb), accumulate ? 1.0f : 0.0f, C, blasint(ldc));
#else
    // Blocked fallback: rows of A against rows of B (both K-contiguous), parallel over M.
    parallel_for(M, [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
            const float * a = A + m * lda;
            float *       c = C + m * ldc;
            for (int64_t n = 0; n < N; ++n) {
                const float * b = B + n * ldb;
                float         s = 0.0f;
                for (int64_t k = 0; k < K; ++k) s += a[k] * b[k];
                c[n] = accumulate ? c[n] + s : s;
            }
        }
    });
#endif
}

void cpu_sgemm_nn(int64_t M, int64_t N, int64_t K, const float * A, int64_t lda, const float * B, int64_t ldb, float * C,
                  int64_t ldc) {
#if defined(AVS_HAVE_OPENBLAS)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(M), blasint(N), blasint(K), 1.0f, A, blasint(lda), B,
                blasint(ldb), 0.0f, C, blasint(ldc));
#else
    parallel_for(M, [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
            float * c = C + m * ldc;
            std::fill(c, c + N, 0.0f);
            for (int64_t k = 0; k < K; ++k) {
                const float   a = A[m * lda + k];
                const float * b = B + k * ldb;
                for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
            }
        }
    });
#endif
}

void cpu_softmax_rows(float * S, int64_t rows, int64_t cols, float scale) {
    parallel_for(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float * s  = S + r * cols;
            float   mx = -INFINITY;
            for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, s[c]);
            double sum = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                s[c] = std::exp((s[c] - mx) * scale);
                sum += s[c];
            }
            const float inv = float(1.0 / sum);
            for (int64_t c = 0; c < cols; ++c) s[c] *= inv;
        }
    }, 8);
}

Status CpuBackend::linear(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor * b) {
    const int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
    if (w.dim(1) != K || y.numel() != M * N)
        return make_error(ErrorCode::shape, "linear: x %s, w %s, y %s do not match", x.str().c_str(), w.str().c_str(),
                          y.str().c_str());
    float * Y = y.data<float>();
    cpu_sgemm_nt(M, N, K, x.data<float>(), K, w.data<float>(), K, Y, N, false);
    if (b) {
        const float * B = b->data<float>();
        parallel_for(M, [&](int64_t m0, int64_t m1) {
            for (int64_t m = m0; m < m1; ++m)
                for (int64_t n = 0; n < N; ++n) Y[m * N + n] += B[n];
        }, 64);
    }
    return {};
}

} // namespace avs
