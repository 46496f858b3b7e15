#include "kernels/attention_mma.cuh"

#include "kernels/attention_keys.cuh"
#include "kernels/attention_tiles.cuh"
#include "kernels/attention_ws.cuh"
#include "kernels/common.cuh"
#include "kernels/wgmma.cuh"
#include "engine/cache/kv_quant.h"

#include <cuda_fp16.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace avs::kernels {
namespace {

using namespace attn;

// 8 warps x 16 query rows: a staged K/V tile feeds 128 queries, which halves the staging work per
// tensor-core op compared with 64-row blocks. K/V tiles arrive by cp.async into a double buffer,
// so the next tile's loads fly while this one is multiplied. Each step was an A/B on H100 at the 1.3B
// chunk shape (docs/PERFORMANCE.md). On sm_90a the two GEMMs run as warpgroup MMAs (two warpgroups of
// 64 rows) reading the same tiles; elsewhere as mma.sync with ldmatrix.
constexpr int kWarps = 8;
constexpr int kBQ    = 16 * kWarps;
constexpr int kBK    = 64;
// K/V tiles in shared memory, kBK rows x D bf16. sm_90a: the 128-byte swizzle of kernels/wgmma.cuh
// (the layout wgmma reads). Elsewhere: rows padded by 8 bf16 (16 B apart mod 128 B, so ldmatrix is
// conflict-free); mma.sync on H100 took 5.47 ms on the swizzle, 4.76 ms on padded tiles (separate runs).
constexpr int  kPad = 8;
constexpr bool kSwizzled = AVS_WGMMA;
template <int D> __host__ __device__ constexpr int tile_elems(bool swizzled) { return kBK * (swizzled ? D : D + kPad); }
// element offset of 16-byte chunk c of row t
template <int D> __device__ __forceinline__ int toff(int t, int c) { return kSwizzled ? wg::swz_off(kBK, t, c) : t * (D + kPad) + 8 * c; }

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void * p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 * p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const bf16 * p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}

// 16-byte async copy; src_bytes = 0 writes zeros (keys past the limit).
__device__ __forceinline__ void cp_async16(bf16 * dst, const bf16 * src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

// A store tile's slot and its token offset within the frame (ring keys before the tail only).
struct TileSrc {
    const uint8_t * slot;
    int             r0;
};
__device__ __forceinline__ TileSrc tile_src(const AttnKeys & K, int64_t a) {
    const int tpf = K.view.tokens_per_frame;
    const int lf = int(a / tpf);
    return {K.store + int64_t(K.view.slot_of_logical(lf)) * K.layout.slot_bytes, int(a - int64_t(lf) * tpf)};
}

// bf16 rows of keys [a, b) (plain, tail, or bf16 store) as raw 16-byte chunks into shared memory;
// rows past b are zero-filled.
template <int D>
__device__ __forceinline__ void issue_bf16(const bf16 * kp, const bf16 * vp, int64_t row0, int H, int h, int n, bf16 * ks, bf16 * vs) {
    constexpr int chunks = D / 8;
    for (int e = threadIdx.x; e < kBK * chunks; e += blockDim.x) {
        const int     t = e / chunks, c = e % chunks;
        const bool    valid = t < n;
        const int64_t off = ((valid ? row0 + t : 0) * H + h) * D + 8 * c;
        cp_async16(ks + toff<D>(t, c), kp + off, valid);
        cp_async16(vs + toff<D>(t, c), vp + off, valid);
    }
}

// Bytes per key row of the quantized data (one head): 8-bit formats D, 4-bit formats D / 2.
template <int D, int F> __host__ __device__ constexpr int raw_row_bytes() { return (F == int(KvFormat::int4) || F == int(KvFormat::nvfp4)) ? D / 2 : D; }

// Raw quantized K and V rows of a store tile into shared memory (16-byte chunks).
template <int D, int F>
__device__ __forceinline__ void issue_raw(const KvLayout & L, const uint8_t * slot, int r0, int h, int n, uint8_t * kr, uint8_t * vr) {
    constexpr int rb = raw_row_bytes<D, F>(), chunks = rb / 16;
    for (int e = threadIdx.x; e < kBK * chunks; e += blockDim.x) {
        const int     t = e / chunks, c = e % chunks;
        const bool    valid = t < n;
        const int64_t off = (int64_t(valid ? r0 + t : 0) * L.heads + h) * rb + 16 * c;
        cp_async16(reinterpret_cast<bf16 *>(kr + t * rb + 16 * c), reinterpret_cast<const bf16 *>(slot + L.k_data + off), valid);
        cp_async16(reinterpret_cast<bf16 *>(vr + t * rb + 16 * c), reinterpret_cast<const bf16 *>(slot + L.v_data + off), valid);
    }
}

// Issue the tile [a, b) of one frame; returns whether it went to the raw (quantized) buffers.
template <int D, int F>
__device__ __forceinline__ bool issue_tile(const AttnKeys & K, int H, int h, int64_t a, int64_t b, bf16 * ks, bf16 * vs, uint8_t * kr,
                                           uint8_t * vr) {
    const int n = int(b - a);
    bool      raw = false;
    if (!K.ring) {
        issue_bf16<D>(static_cast<const bf16 *>(K.k), static_cast<const bf16 *>(K.v), a, H, h, n, ks, vs);
    } else {
        const int tpf = K.view.tokens_per_frame;
        const int lf = int(a / tpf), r0 = int(a - int64_t(lf) * tpf);
        const int hist = K.view.visible_frames() - K.tail_frames;
        if (lf >= hist) {
            issue_bf16<D>(static_cast<const bf16 *>(K.tail_k), static_cast<const bf16 *>(K.tail_v), int64_t(lf - hist) * tpf + r0, H, h, n,
                          ks, vs);
        } else {
            const uint8_t * slot = K.store + int64_t(K.view.slot_of_logical(lf)) * K.layout.slot_bytes;
            if constexpr (F == int(KvFormat::bf16)) {
                issue_bf16<D>(reinterpret_cast<const bf16 *>(slot + K.layout.k_data), reinterpret_cast<const bf16 *>(slot + K.layout.v_data),
                              r0, H, h, n, ks, vs);
            } else {
                issue_raw<D, F>(K.layout, slot, r0, h, n, kr, vr);
                raw = true;
            }
        }
    }
    cp_async_commit();
    return raw;
}

__device__ __forceinline__ uint32_t bf2(float lo, float hi) { return pack_bf16(lo, hi); }

// Two e4m3 values -> bf16x2 of value * 2^-8, exact (e4m3x2_scaled); the 2^8 is folded into the tile's scale.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2(uint32_t w, int half) {
    const float2 f = e4m3x2_scaled(w, half);
    return bf2(f.x, f.y);
}

// Dequantize the raw tile (rows [0, n), zeros past n) into the bf16 tiles. 8 values per step: one
// 16-byte row chunk of the bf16 tile. Values whose scale is one per (tile, head) stay unscaled here
// (exact in bf16) and the scale is applied to the scores / probabilities instead.
template <int D, int F>
__device__ __forceinline__ void dequant_tile(const KvLayout & L, const uint8_t * slot, int r0, int h, int n, const uint8_t * kr,
                                             const uint8_t * vr, bf16 * ks, bf16 * vs) {
    constexpr int rb = raw_row_bytes<D, F>(), chunks = D / 8;
    for (int e = threadIdx.x; e < 2 * kBK * chunks; e += blockDim.x) {
        const bool is_v = e >= kBK * chunks;
        const int  ee = is_v ? e - kBK * chunks : e, t = ee / chunks, c = ee % chunks, d0 = 8 * c;
        uint4      out = make_uint4(0, 0, 0, 0);
        if (t < n) {
            const uint8_t * src = (is_v ? vr : kr) + t * rb;
            if constexpr (F == int(KvFormat::fp8) || F == int(KvFormat::int8)) {
                const uint2 w = *reinterpret_cast<const uint2 *>(src + d0);
                uint32_t    o[4];
                if (F == int(KvFormat::int8) && !is_v) {
                    const uint8_t * by = reinterpret_cast<const uint8_t *>(&w);
#pragma unroll
                    for (int i = 0; i < 4; ++i) o[i] = bf2(float(int8_t(by[2 * i])), float(int8_t(by[2 * i + 1])));
                } else {
#pragma unroll
                    for (int i = 0; i < 4; ++i) o[i] = e4m3x2_to_bf16x2(i < 2 ? w.x : w.y, i % 2);
                }
                out = make_uint4(o[0], o[1], o[2], o[3]);
            } else {
                float          x[8];
                const uint32_t w = *reinterpret_cast<const uint32_t *>(src + d0 / 2);
                const int64_t  tok = int64_t(r0 + t);
                if constexpr (F == int(KvFormat::int4)) {
                    if (!is_v) {  // per channel of the 32-token group: (scale, min) fp16 pairs
                        const uint16_t * m = reinterpret_cast<const uint16_t *>(slot + L.k_meta) +
                                             ((int64_t(tok / kKiviGroupK) * L.heads + h) * D + d0) * 2;
                        const uint4 m0 = __ldg(reinterpret_cast<const uint4 *>(m)), m1 = __ldg(reinterpret_cast<const uint4 *>(m + 8));
                        const uint16_t * mm0 = reinterpret_cast<const uint16_t *>(&m0);
                        const uint16_t * mm1 = reinterpret_cast<const uint16_t *>(&m1);
#pragma unroll
                        for (int i = 0; i < 8; ++i) {
                            const uint16_t * p = i < 4 ? mm0 + 2 * i : mm1 + 2 * (i - 4);
                            x[i] = kvq::kivi_decode(uint8_t((w >> (4 * i)) & 15u), f16_to_f32(p[0]), f16_to_f32(p[1]));
                        }
                    } else {      // per token, 32-channel group
                        const uint16_t * m = reinterpret_cast<const uint16_t *>(slot + L.v_meta) +
                                             ((tok * L.heads + h) * (D / kKiviGroupV) + d0 / kKiviGroupV) * 2;
                        const float sc = f16_to_f32(__ldg(m)), mn = f16_to_f32(__ldg(m + 1));
#pragma unroll
                        for (int i = 0; i < 8; ++i) x[i] = kvq::kivi_decode(uint8_t((w >> (4 * i)) & 15u), sc, mn);
                    }
                } else {  // nvfp4: e2m1 x e4m3 block scale (exact in bf16); the tensor scale goes on the scores
                    const uint8_t bs = __ldg(slot + (is_v ? L.v_meta : L.k_meta) + 16 + (tok * L.heads + h) * (D / kNvfp4Block) + d0 / kNvfp4Block);
                    const float   sc = fp8e4m3_to_f32(bs);
#pragma unroll
                    for (int i = 0; i < 8; ++i) x[i] = kvq::e2m1_decode(uint8_t((w >> (4 * i)) & 15u)) * sc;
                }
                out = make_uint4(bf2(x[0], x[1]), bf2(x[2], x[3]), bf2(x[4], x[5]), bf2(x[6], x[7]));
            }
        }
        *reinterpret_cast<uint4 *>((is_v ? vs : ks) + toff<D>(t, c)) = out;
    }
}

template <int D, int F>
__global__ void __launch_bounds__(kWarps * 32, 1) attention_mma_kernel(bf16 * __restrict__ out, const bf16 * __restrict__ q,
                                                                       int64_t Lq, int H, AttnKeys K, SplitPlan plan, RopeTabs tabs,
                                                                       float scale, bool use_wgmma) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int ld = tile_elems<D>(kSwizzled), kTK = temporal_blocks<D>();  // ld: elements per tile
    constexpr bool kQuant = F != int(KvFormat::bf16);
    constexpr int  rb = raw_row_bytes<D, F>();
    // the swizzled tiles must start 1024-byte aligned (the launch adds the slack)
    unsigned char * smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    bf16 *    kbuf = reinterpret_cast<bf16 *>(smem);  // [2][ld]
    bf16 *    vbuf = kbuf + 2 * ld;                    // [2][ld]
    uint8_t * kraw = reinterpret_cast<uint8_t *>(vbuf + 2 * ld);  // quantized formats: [2][kBK][rb]
    uint8_t * vraw = kraw + 2 * kBK * rb;

    const int     h    = blockIdx.y;
    const int     warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // wgmma is warpgroup-wide: a warpgroup (4 warps, 64 rows) skips a tile only if all its rows do
    const bool    wgmma = AVS_WGMMA && use_wgmma;
    const int     g = lane / 4, t = lane % 4;
    const int64_t q0 = int64_t(blockIdx.x) * kBQ;

    // Q A-fragments, in registers for the whole key loop
    uint32_t qf[D / 16][4];
    load_q_frags<D>(qf, q, q0 + warp * 16 + g, Lq, H, h, t);
    // temporal RoPE on the Q side (rotate_q_temporal). Measured at the 1.3B chunk shape: rotating the
    // keys in shared memory cost 29 % of the kernel (all 64 pairs: 43 %).
    uint32_t q_orig[kTK][4];
#pragma unroll
    for (int kd = 0; kd < kTK; ++kd)
#pragma unroll
        for (int r = 0; r < 4; ++r) q_orig[kd][r] = qf[kd][r];
    int   q_frame = -1;
    float qm0 = 0.0f, qm1 = 0.0f;  // int8 keys: (rotated q) . (the frame's key mean), added to the scores
    const int hist_frames = K.ring ? K.view.visible_frames() - K.tail_frames : 0;

    const int64_t row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const int64_t lim0 = key_limit(K, row0), lim1 = key_limit(K, row1);
    int64_t       block_lim = key_limit(K, min(Lq - 1, q0 + kBQ - 1));
    const int     split = int(blockIdx.z);
    int64_t       j_begin;
    split_range(K, plan, split, j_begin, block_lim);
    // A warp whose rows all end before a tile skips its math but still joins every barrier.
    const int64_t warp_lim = key_limit(K, min(Lq - 1, q0 + (wgmma ? (warp / 4) * 64 + 63 : warp * 16 + 15)));

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const float sl2 = scale * 1.4426950408889634f;

    // ldmatrix lane addressing (fragment layouts of m16n8k16):
    //  K (B of S = Q K^T, non-transposed): lane -> key row 8j + lane%8, dim column 8 * (lane/8) within 32
    //  V (B of O = P V, transposed):       lane -> key row (lane%8) + 8 * ((lane/8)%2), dim column 8 * (lane/16) within 16
    const int k_row = lane % 8, k_col = 8 * (lane / 8);
    const int v_row = (lane % 8) + 8 * ((lane / 8) % 2), v_col = 8 * (lane / 16);

    int64_t a = j_begin, b = j_begin < block_lim ? tile_end<kBK>(K, j_begin, block_lim) : j_begin;
    bool    raw = false;
    if (a < block_lim) raw = issue_tile<D, F>(K, H, h, a, b, kbuf, vbuf, kraw, vraw);
    for (int cur = 0; a < block_lim; cur ^= 1) {
        cp_async_wait_all();
        wg::fence_async_smem();  // the landed tile is read by wgmma (async proxy)
        __syncthreads();  // tile [a, b) landed for everyone; the other buffers' tile is consumed
        const int64_t na = b, nb = na < block_lim ? tile_end<kBK>(K, na, block_lim) : na;
        const bool    cur_raw = raw;
        if (na < block_lim)
            raw = issue_tile<D, F>(K, H, h, na, nb, kbuf + (cur ^ 1) * ld, vbuf + (cur ^ 1) * ld, kraw + (cur ^ 1) * kBK * rb,
                                   vraw + (cur ^ 1) * kBK * rb);
        bf16 * ks = kbuf + cur * ld;
        bf16 * vs = vbuf + cur * ld;
        const int64_t j0 = a, jend = b;
        a = na, b = nb;
        // per-tile scales of the quantized store (1 for bf16 rows)
        float kscale = 1.0f, vscale = 1.0f;
        if constexpr (kQuant) {
            if (cur_raw) {
                const TileSrc src = tile_src(K, j0);
                dequant_tile<D, F>(K.layout, src.slot, src.r0, h, int(jend - j0), kraw + cur * kBK * rb, vraw + cur * kBK * rb, ks, vs);
                wg::fence_async_smem();
                if constexpr (F == int(KvFormat::fp8) || F == int(KvFormat::int8)) {
                    const int64_t bi = int64_t(src.r0 / kKvBlockTokens) * H + h;
                    // e4m3 tiles hold value * 2^-8 (e4m3x2_to_bf16x2)
                    kscale = __ldg(reinterpret_cast<const float *>(src.slot + K.layout.k_meta) + bi) * (F == int(KvFormat::fp8) ? 256.0f : 1.0f);
                    vscale = __ldg(reinterpret_cast<const float *>(src.slot + K.layout.v_meta) + bi) * 256.0f;
                } else if constexpr (F == int(KvFormat::nvfp4)) {
                    kscale = __ldg(reinterpret_cast<const float *>(src.slot + K.layout.k_meta));
                    vscale = __ldg(reinterpret_cast<const float *>(src.slot + K.layout.v_meta));
                }
                __syncthreads();  // the dequantized tile is complete
            }
        }
        if (j0 >= warp_lim) continue;

        if (K.ring) {
            const int lf = int(j0 / K.view.tokens_per_frame);
            if (lf != q_frame) {
                q_frame = lf;
                rotate_q_temporal<D>(qf, q_orig, K, tabs, lf, t);
                if constexpr (F == int(KvFormat::int8)) {
                    // keys are stored as k - mean: add (R(-phi) q) . mean back, one value per row and frame
                    qm0 = qm1 = 0.0f;
                    if (lf < hist_frames) {
                        const float * mean = reinterpret_cast<const float *>(K.store + int64_t(K.view.slot_of_logical(lf)) * K.layout.slot_bytes +
                                                                            K.layout.k_meta) + int64_t(K.layout.blocks()) * H + int64_t(h) * D;
#pragma unroll
                        for (int kd = 0; kd < D / 16; ++kd)
#pragma unroll
                            for (int r = 0; r < 4; ++r) {
                                const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&qf[kd][r]));
                                const int    col = 16 * kd + 8 * (r / 2) + 2 * t;
                                const float  d = x.x * __ldg(mean + col) + x.y * __ldg(mean + col + 1);
                                if (r % 2 == 0) qm0 += d; else qm1 += d;
                            }
                        qm0 += __shfl_xor_sync(0xffffffffu, qm0, 1), qm0 += __shfl_xor_sync(0xffffffffu, qm0, 2);
                        qm1 += __shfl_xor_sync(0xffffffffu, qm1, 1), qm1 += __shfl_xor_sync(0xffffffffu, qm1, 2);
                    }
                }
            }
        }

        float s[kBK / 8][4];
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
        if (wgmma) {
            // S[64 x 64] of this warpgroup: D / 16 steps, keys as K-major B (32 B per step, a new panel every 4)
            const uint32_t kb = smem_addr(ks);
            wg::fence();
#pragma unroll
            for (int kd = 0; kd < D / 16; ++kd) wg::mma_m64n64k16<0>(s, qf[kd], wg::desc_sw128(kb + (kd / 4) * (kBK * 128) + (kd % 4) * 32, 16, 1024));
            wg::commit_and_wait();
        } else {
#pragma unroll
            for (int j = 0; j < kBK / 8; ++j) {
#pragma unroll
                for (int kd = 0; kd < D / 16; kd += 2) {
                    uint32_t bb[4];
                    ldsm_x4(bb, ks + toff<D>(8 * j + k_row, 2 * kd + k_col / 8));
                    mma_bf16(s[j], qf[kd], bb[0], bb[1]);
                    mma_bf16(s[j], qf[kd + 1], bb[2], bb[3]);
                }
            }
        }
        if constexpr (kQuant) {
            if (cur_raw) {
#pragma unroll
                for (int j = 0; j < kBK / 8; ++j) {
                    s[j][0] = fmaf(s[j][0], kscale, qm0), s[j][1] = fmaf(s[j][1], kscale, qm0);
                    s[j][2] = fmaf(s[j][2], kscale, qm1), s[j][3] = fmaf(s[j][3], kscale, qm1);
                }
            }
        }
        const int64_t e0 = min(lim0, jend), e1 = min(lim1, jend);
        if (j0 + kBK > min(e0, e1)) {  // partial tile: mask keys past each row's limit
#pragma unroll
            for (int j = 0; j < kBK / 8; ++j) {
                const int64_t key = j0 + 8 * j + 2 * t;
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    if (key + c >= e0) s[j][c] = -INFINITY;
                    if (key + c >= e1) s[j][2 + c] = -INFINITY;
                }
            }
        }
        // running max on raw scores; the scale goes into the exponent: exp2(s * sl2 - max * sl2), one FFMA
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
            mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
        }
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
        }
        // rows with no visible key yet keep m = -inf: use 0 as the base so nothing becomes NaN
        const float b0 = mx0 == -INFINITY ? 0.0f : mx0 * sl2, b1 = mx1 == -INFINITY ? 0.0f : mx1 * sl2;
        const float c0 = fast_exp2(m0 * sl2 - b0), c1 = fast_exp2(m1 * sl2 - b1);
        m0 = mx0, m1 = mx1;
        float ps0 = 0.0f, ps1 = 0.0f;
        uint32_t pa[kBK / 16][4];
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            const float p0 = fast_exp2(fmaf(s[j][0], sl2, -b0)), p1 = fast_exp2(fmaf(s[j][1], sl2, -b0));
            const float p2 = fast_exp2(fmaf(s[j][2], sl2, -b1)), p3 = fast_exp2(fmaf(s[j][3], sl2, -b1));
            ps0 += p0 + p1;
            ps1 += p2 + p3;
            // the C layout of two adjacent key n-tiles is the A layout of one k16 step (FA2)
            // a V tile stored with one scale per (tile, head) is multiplied through P
            pa[j / 2][(j % 2) * 2 + 0] = pack_bf16(p0 * vscale, p1 * vscale);
            pa[j / 2][(j % 2) * 2 + 1] = pack_bf16(p2 * vscale, p3 * vscale);
        }
        l0 = l0 * c0 + ps0;
        l1 = l1 * c1 + ps1;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) o[nd][0] *= c0, o[nd][1] *= c0, o[nd][2] *= c1, o[nd][3] *= c1;
        if (wgmma) {
            // O[64 x D] += P V: kBK / 16 steps of 16 keys, values as N-major (transposed) B
            const uint32_t vb = smem_addr(vs);
            wg::fence();
#pragma unroll
            for (int kk = 0; kk < kBK / 16; ++kk) {
                const uint64_t dv = wg::desc_sw128(vb + kk * 16 * 128, kBK * 128, 1024);
                if constexpr (D == 128) wg::mma_m64n128k16<1>(o, pa[kk], dv);
                else wg::mma_m64n64k16<1>(o, pa[kk], dv);
            }
            wg::commit_and_wait();
        } else {
#pragma unroll
            for (int kk = 0; kk < kBK / 16; ++kk) {
#pragma unroll
                for (int nd = 0; nd < D / 8; nd += 2) {
                    uint32_t bb[4];
                    ldsm_x4_t(bb, vs + toff<D>(16 * kk + v_row, nd + v_col / 8));
                    mma_bf16(o[nd], pa[kk], bb[0], bb[1]);
                    mma_bf16(o[nd + 1], pa[kk], bb[2], bb[3]);
                }
            }
        }
    }
    store_rows<D>(K, out, o, m0, m1, l0, l1, sl2, row0, Lq, H, h, t, plan.slot0 + split);
}

template <int D, int F>
cudaError_t launch(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & keys, const RopeTabs & tabs, float scale,
                   cudaStream_t stream) {
    // the larger (padded) tile layout plus the alignment slack: the device code picks its layout per arch
    const size_t smem = 1024 + sizeof(bf16) * size_t(4 * tile_elems<D>(false)) + (F != int(KvFormat::bf16) ? size_t(4 * kBK * raw_row_bytes<D, F>()) : 0);
    auto * kern = attention_mma_kernel<D, F>;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const int  n = keys.nsplit > 1 ? keys.nsplit : 1;
    if (n > 1 && (!keys.split_scratch || !keys.ring)) return cudaErrorInvalidValue;
    const dim3 grid(unsigned((Lq + kBQ - 1) / kBQ), unsigned(heads), unsigned(n));
    const bool use_wgmma = attention_kernel() != AttnKernel::mma_sync;
    kern<<<grid, kWarps * 32, smem, stream>>>(static_cast<bf16 *>(out), static_cast<const bf16 *>(q), Lq, heads, keys, split_plan(keys), tabs, scale,
                                              use_wgmma);
    if (n > 1) {
        e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        return merge_splits<D>(out, keys.split_scratch, Lq, heads, n, stream);
    }
    return cudaGetLastError();
}

template <int D>
cudaError_t launch_format(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & keys, const RopeTabs & tabs, float scale,
                          cudaStream_t stream) {
    switch (keys.ring ? keys.layout.fmt : KvFormat::bf16) {
        case KvFormat::bf16: return launch<D, int(KvFormat::bf16)>(out, q, Lq, heads, keys, tabs, scale, stream);
        case KvFormat::fp8: return launch<D, int(KvFormat::fp8)>(out, q, Lq, heads, keys, tabs, scale, stream);
        case KvFormat::int8: return launch<D, int(KvFormat::int8)>(out, q, Lq, heads, keys, tabs, scale, stream);
        case KvFormat::int4: return launch<D, int(KvFormat::int4)>(out, q, Lq, heads, keys, tabs, scale, stream);
        case KvFormat::nvfp4: return launch<D, int(KvFormat::nvfp4)>(out, q, Lq, heads, keys, tabs, scale, stream);
        default: return cudaErrorInvalidValue;
    }
}

std::atomic<int> & kernel_choice() {
    static std::atomic<int> k = [] {
        const char * e = std::getenv("AVS_ATTN_KERNEL");
        if (e && !std::strcmp(e, "ws")) return int(AttnKernel::warp_specialized);
        if (e && !std::strcmp(e, "ws8")) return int(AttnKernel::mma8);
        if (e && !std::strcmp(e, "wgmma")) return int(AttnKernel::wgmma);
        if (e && !std::strcmp(e, "mma_sync")) return int(AttnKernel::mma_sync);
        return int(AttnKernel::automatic);
    }();
    return k;
}

// The 8-bit kernel runs for fp8 / int8 stores unless another kernel is pinned.
bool uses_ws8(AttnKernel k, const AttnKeys & keys, int head_dim) {
    return (k == AttnKernel::automatic || k == AttnKernel::mma8) && attention_ws8_supported(keys, head_dim);
}

} // namespace

void       attention_set_kernel(AttnKernel k) { kernel_choice().store(int(k)); }
AttnKernel attention_kernel() { return AttnKernel(kernel_choice().load()); }

bool attention_mma_supported(DType q_dtype, const AttnKeys & keys, int head_dim) {
    if (q_dtype != DType::bf16 || (head_dim != 64 && head_dim != 128)) return false;
    if (!keys.ring && keys.dtype != DType::bf16) return false;
    if (keys.ring && (keys.layout.fmt == KvFormat::f32 || (keys.tail_frames > 0 && keys.tail_dtype != DType::bf16))) return false;
    // the temporal pairs must sit in the Q blocks the kernel re-rotates (always so for Wan layouts)
    const int kTK = head_dim == 128 ? temporal_blocks<128>() : temporal_blocks<64>();
    return !keys.ring || keys.rope.pairs_t <= 8 * kTK;
}

int attention_splits(DType q_dtype, int64_t Lq, int heads, int head_dim, const AttnKeys & keys) {
    if (!keys.ring || !attention_mma_supported(q_dtype, keys, head_dim) || keys.view.tokens_per_frame <= 0) return 1;
    static int sms = [] {
        int dev = 0, n = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) n = 0;
        return n;
    }();
    if (sms <= 0) return 1;
    // One block per SM (8 warps, 248 registers): the last wave of a grid that is not a multiple of the
    // SM count idles part of the GPU. Splitting the frames in n raises the block count n-fold; pick the
    // n (at least 2 frames each) whose waves are fullest, preferring fewer splits (each costs a merge).
    const int64_t blocks = (Lq + kBQ - 1) / kBQ * heads, frames = keys.nk / keys.view.tokens_per_frame;
    auto fill = [&](int n) { const int64_t b = blocks * n; return double(b) / double((b + sms - 1) / sms * sms); };
    int best = 1;
    for (int n = 2; n <= 4; ++n)
        if (frames / n >= 2 && fill(n) > fill(best) + 0.05) best = n;
    // the 8-bit kernel reads the history only; the bf16 tail is one more split
    if (uses_ws8(attention_kernel(), keys, head_dim) && keys.tail_frames > 0) ++best;
    return best;
}

int64_t attention_split_scratch_floats(int nsplit, int64_t Lq, int heads, int head_dim) {
    return nsplit > 1 ? int64_t(nsplit) * Lq * heads * (head_dim + 1) : 0;
}

cudaError_t attention_mma(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream) {
    if (!attention_mma_supported(DType::bf16, keys, head_dim)) return cudaErrorInvalidValue;
    const AttnKernel k = attention_kernel();
    // NotSupported (a tensor map, the register count, no split for the tail): the next kernel down
    const bool       ws8 = k == AttnKernel::mma8;
    if (uses_ws8(k, keys, head_dim)) {
        const cudaError_t e = attention_ws8(out, q, Lq, heads, head_dim, keys, scale, stream);
        if (e != cudaErrorNotSupported) return e;
    }
    if ((k == AttnKernel::automatic || k == AttnKernel::warp_specialized || ws8) && attention_ws_supported(keys, head_dim)) {
        // NotSupported: a tensor map it could not encode (alignment, sizes) or an unexpected register
        // count; this kernel handles those keys too
        const cudaError_t e = attention_ws(out, q, Lq, heads, head_dim, keys, scale, stream);
        if (e != cudaErrorNotSupported) return e;
    }
    const RopeTabs tabs = rope_tabs(keys);
    return head_dim == 128 ? launch_format<128>(out, q, Lq, heads, keys, tabs, scale, stream)
                           : launch_format<64>(out, q, Lq, heads, keys, tabs, scale, stream);
}

} // namespace avs::kernels
