#include "kernels/conv3d.cuh"

#include "kernels/common.cuh"

#include <mma.h>

#include <cstdint>

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

// ---- fast path: mma.sync m16n8k16 with ldmatrix fragments and a cp.async double buffer ----
// For Cin % 8 == 0 with 16-byte aligned frames and weights (every decoder conv): each 16-byte piece
// of an im2col row (8 channels of one tap of one pixel) and of a weight row is copied asynchronously
// straight into shared memory (zero-filled for padding, causal zero frames and tails), so the next
// K-slice's gather flies while the tensor cores work on this one. 128 pixels x 128 output channels
// per block, 8 warps of 32 x 64.
namespace fast {

constexpr int kBM = 128, kBN = 128, kBK = 32, kLd = kBK + 8;  // rows 80 B apart: ldmatrix conflict-free
constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t smem_addr(const void * p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp_async16(void * dst, const void * src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 * p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename TY>
__global__ void __launch_bounds__(kThreads) conv3d_mma_kernel(TY * __restrict__ y, ConvFrames f, const bf16 * __restrict__ w,
                                                              const float * __restrict__ b, ConvGeom g, int64_t P) {
    __shared__ __align__(128) bf16 as[2][kBM * kLd];
    __shared__ __align__(128) bf16 bs[2][kBN * kLd];
    const int64_t Ho = g.H * g.up, Wo = g.W * g.up, HWo = Ho * Wo;
    const int64_t K  = int64_t(g.kt) * g.kh * g.kw * g.Cin;
    const int64_t p0 = int64_t(blockIdx.x) * kBM, n0 = int64_t(blockIdx.y) * kBN;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

    // This thread copies 16-byte piece c8 of rows r = tid/4 and tid/4 + 64 of both tiles.
    const int c8 = (tid % 4) * 8;
    int  rt[2], ry[2], rx[2];
    bool rok[2];
    for (int i = 0; i < 2; ++i) {
        const int64_t p = p0 + tid / 4 + 64 * i;
        rok[i] = p < P;
        const int64_t pp = rok[i] ? p : 0;
        rt[i] = int(pp / HWo), ry[i] = int((pp % HWo) / Wo), rx[i] = int(pp % Wo);
    }
    auto load = [&](int buf, int64_t k0) {
        const int64_t k = k0 + c8;
        // the piece's tap and first channel (Cin % 8 == 0: a piece never straddles taps)
        const int64_t tap = k / g.Cin, ci = k % g.Cin;
        const int dx = int(tap % g.kw), dy = int((tap / g.kw) % g.kh), dt = int(tap / (int64_t(g.kw) * g.kh));
        for (int i = 0; i < 2; ++i) {
            const int r = tid / 4 + 64 * i;
            const int uy = ry[i] + dy - g.kh / 2, ux = rx[i] + dx - g.kw / 2;
            const void * base = k < K ? f.ptr[rt[i] + dt] : nullptr;
            const bool ok = rok[i] && base && uy >= 0 && uy < Ho && ux >= 0 && ux < Wo;
            const bf16 * src = ok ? static_cast<const bf16 *>(base) + ((uy / g.up) * g.W + ux / g.up) * f.stride[rt[i] + dt] + ci
                                  : w;  // any valid address: nothing is read when !ok
            cp_async16(&as[buf][r * kLd + c8], src, ok);
            const int64_t n = n0 + r;
            const bool wok = n < g.Cout && k < K;
            cp_async16(&bs[buf][r * kLd + c8], wok ? w + n * K + k : w, wok);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };

    float acc[2][8][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 64;
    // ldmatrix lane addressing: A [m][k] x4 = (m 0-7 | 8-15) x (k 0-7 | 8-15); B [n][k] x4 = two n8 tiles x (k lo | hi)
    const int a_row = lane % 16, a_col = (lane / 16) * 8;
    const int b_row = (lane % 8) + 8 * (lane / 16), b_col = 8 * ((lane / 8) % 2);

    const int64_t nk = (K + kBK - 1) / kBK;
    load(0, 0);
    for (int64_t kt = 0; kt < nk; ++kt) {
        const int buf = int(kt & 1);
        if (kt + 1 < nk) {
            load(buf ^ 1, (kt + 1) * kBK);
            asm volatile("cp.async.wait_group 1;\n" ::);
        } else {
            asm volatile("cp.async.wait_group 0;\n" ::);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            uint32_t af[2][4];
#pragma unroll
            for (int i = 0; i < 2; ++i) ldsm_x4(af[i], &as[buf][(wm + 16 * i + a_row) * kLd + kk + a_col]);
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                uint32_t bf[4];
                ldsm_x4(bf, &bs[buf][(wn + 8 * j + b_row) * kLd + kk + b_col]);
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    mma(acc[i][j], af[i], bf[0], bf[1]);
                    mma(acc[i][j + 1], af[i], bf[2], bf[3]);
                }
            }
        }
        __syncthreads();  // this buffer is refilled by the next iteration's load
    }
    // Epilogue: thread holds rows (g, g + 8) x columns (2t, 2t + 1) of each 16 x 8 tile.
    const int gq = lane / 4, tq = lane % 4;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int hrow = 0; hrow < 2; ++hrow) {
            const int64_t p = p0 + wm + 16 * i + gq + 8 * hrow;
            if (p >= P) continue;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const int64_t n = n0 + wn + 8 * j + 2 * tq;
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    if (n + c >= g.Cout) continue;
                    float v = acc[i][j][2 * hrow + c] + (b ? b[n + c] : 0.0f);
                    TY * dst = y + p * g.Cout + n + c;
                    if (g.accumulate) v += to_f32(*dst);
                    *dst = from_f32<TY>(v);
                }
            }
        }
}

} // namespace fast

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
    if (vec_a && vec_b) {
        const dim3 grid(unsigned((P + fast::kBM - 1) / fast::kBM), unsigned((g.Cout + fast::kBN - 1) / fast::kBN));
        return dispatch_float(y_dtype, [&](auto out) {
            using TY = typename decltype(out)::type;
            fast::conv3d_mma_kernel<TY><<<grid, fast::kThreads, 0, stream>>>(static_cast<TY *>(y), frames,
                                                                              static_cast<const bf16 *>(w), b, g, P);
            return cudaGetLastError();
        });
    }
    // generic path (unaligned channel counts): register gather, wmma
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
