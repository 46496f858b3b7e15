#include "kernels/conv3d.cuh"

#include "kernels/common.cuh"

#include <mma.h>

namespace avs::kernels {

namespace {

using namespace nvcuda;

constexpr int kBM = 64, kBN = 64, kBK = 32;  // output pixels x output channels x reduction per tile
constexpr int kThreads = 128;                // 4 warps in 2 x 2, each a 32 x 32 sub-tile
constexpr int kLd = kBK + 8;                 // padded smem rows (bf16): wmma needs a multiple of 8

// One 8-element piece of an im2col row: output pixel (t, oy, ox), reduction index k (tap, ci).
__device__ __forceinline__ uint4 gather8(const ConvFrames & f, const ConvGeom & g, int64_t Ho, int64_t Wo, bool row_ok,
                                         int t, int oy, int ox, int64_t k, int64_t K, bool vec) {
    uint4 out = make_uint4(0, 0, 0, 0);
    if (!row_ok) return out;
    bf16 * e = reinterpret_cast<bf16 *>(&out);
    if (vec) {  // Cin % 8 == 0: the 8 values are one tap, consecutive channels, one 16-byte load
        if (k >= K) return out;
        const int64_t tap = k / g.Cin, ci = k % g.Cin;
        const int dx = int(tap % g.kw), dy = int((tap / g.kw) % g.kh), dt = int(tap / (int64_t(g.kw) * g.kh));
        const int uy = oy + dy - g.kh / 2, ux = ox + dx - g.kw / 2;
        const void * base = f.ptr[t + dt];
        if (!base || uy < 0 || uy >= Ho || ux < 0 || ux >= Wo) return out;
        const bf16 * src = static_cast<const bf16 *>(base) + ((uy / g.up) * g.W + ux / g.up) * f.stride[t + dt] + ci;
        return *reinterpret_cast<const uint4 *>(src);
    }
    for (int i = 0; i < 8; ++i) {
        const int64_t kk = k + i;
        if (kk >= K) break;
        const int64_t tap = kk / g.Cin, ci = kk % g.Cin;
        const int dx = int(tap % g.kw), dy = int((tap / g.kw) % g.kh), dt = int(tap / (int64_t(g.kw) * g.kh));
        const int uy = oy + dy - g.kh / 2, ux = ox + dx - g.kw / 2;
        const void * base = f.ptr[t + dt];
        if (!base || uy < 0 || uy >= Ho || ux < 0 || ux >= Wo) continue;
        e[i] = static_cast<const bf16 *>(base)[((uy / g.up) * g.W + ux / g.up) * f.stride[t + dt] + ci];
    }
    return out;
}

template <typename TY>
__global__ void __launch_bounds__(kThreads) conv3d_kernel(TY * __restrict__ y, ConvFrames f, const bf16 * __restrict__ w,
                                                          const float * __restrict__ b, ConvGeom g, int64_t P, bool vec_a,
                                                          bool vec_b) {
    __shared__ __align__(128) bf16 as[kBM * kLd];
    __shared__ __align__(128) bf16 bs[kBN * kLd];
    __shared__ __align__(128) float cs[kBM * (kBN + 4)];
    const int64_t Ho = g.H * g.up, Wo = g.W * g.up, HWo = Ho * Wo;
    const int64_t K  = int64_t(g.kt) * g.kh * g.kw * g.Cin;
    const int64_t p0 = int64_t(blockIdx.x) * kBM, n0 = int64_t(blockIdx.y) * kBN;
    const int tid = threadIdx.x, warp = tid / 32;

    // This thread gathers pieces (row r, 8-column group c) for r = tid/4 and tid/4 + 32, c = tid%4.
    const int c8 = (tid % 4) * 8;
    int  rt[2], ry[2], rx[2];
    bool rok[2];
    for (int i = 0; i < 2; ++i) {
        const int64_t p = p0 + tid / 4 + 32 * i;
        rok[i] = p < P;
        const int64_t pp = rok[i] ? p : 0;
        rt[i] = int(pp / HWo), ry[i] = int((pp % HWo) / Wo), rx[i] = int(pp % Wo);
    }

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;

    for (int64_t k0 = 0; k0 < K; k0 += kBK) {
        for (int i = 0; i < 2; ++i) {
            const int r = tid / 4 + 32 * i;
            *reinterpret_cast<uint4 *>(&as[r * kLd + c8]) = gather8(f, g, Ho, Wo, rok[i], rt[i], ry[i], rx[i], k0 + c8, K, vec_a);
            // weights: row n0 + r of [Cout, K]
            uint4 wv = make_uint4(0, 0, 0, 0);
            const int64_t n = n0 + r, k = k0 + c8;
            if (n < g.Cout) {
                if (vec_b && k < K) {
                    wv = *reinterpret_cast<const uint4 *>(w + n * K + k);
                } else {
                    bf16 * e = reinterpret_cast<bf16 *>(&wv);
                    for (int q = 0; q < 8; ++q)
                        if (k + q < K) e[q] = w[n * K + k + q];
                }
            }
            *reinterpret_cast<uint4 *>(&bs[r * kLd + c8]) = wv;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb[2];
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &as[(wm + 16 * i) * kLd + kk], kLd);
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &bs[(wn + 16 * j) * kLd + kk], kLd);
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&cs[(wm + 16 * i) * (kBN + 4) + wn + 16 * j], acc[i][j], kBN + 4, wmma::mem_row_major);
    __syncthreads();
    for (int e = tid; e < kBM * kBN; e += kThreads) {
        const int r = e / kBN, c = e % kBN;
        const int64_t p = p0 + r, n = n0 + c;
        if (p >= P || n >= g.Cout) continue;
        float v = cs[r * (kBN + 4) + c] + (b ? b[n] : 0.0f);
        TY * dst = y + p * g.Cout + n;
        if (g.accumulate) v += to_f32(*dst);
        *dst = from_f32<TY>(v);
    }
}

} // namespace

cudaError_t conv3d(void * y, DType y_dtype, const ConvFrames & frames, const void * w, const float * b, const ConvGeom & g,
                   cudaStream_t stream) {
    const int64_t T = frames.count - g.kt + 1;
    if (T < 1 || frames.count > ConvFrames::kMax || (g.up != 1 && g.up != 2) || g.kh % 2 == 0 || g.kw % 2 == 0)
        return cudaErrorInvalidValue;
    const int64_t P = T * g.H * g.up * g.W * g.up;
    if (P == 0 || g.Cout == 0) return cudaSuccess;
    // 16-byte gathers need 8-aligned channel counts, strides and frame offsets.
    bool vec_a = g.Cin % 8 == 0;
    for (int i = 0; i < frames.count; ++i)
        if (frames.ptr[i] && (frames.stride[i] % 8 != 0 || reinterpret_cast<uintptr_t>(frames.ptr[i]) % 16 != 0)) vec_a = false;
    const int64_t K = int64_t(g.kt) * g.kh * g.kw * g.Cin;
    const bool vec_b = K % 8 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
    const dim3 grid(unsigned((P + kBM - 1) / kBM), unsigned((g.Cout + kBN - 1) / kBN));
    if (grid.y > 65535) return cudaErrorInvalidValue;
    return dispatch_float(y_dtype, [&](auto out) {
        using TY = typename decltype(out)::type;
        conv3d_kernel<TY><<<grid, kThreads, 0, stream>>>(static_cast<TY *>(y), frames, static_cast<const bf16 *>(w), b, g, P,
                                                         vec_a, vec_b);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
