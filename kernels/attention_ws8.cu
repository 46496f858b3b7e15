// Hopper attention on an 8-bit ring store in its stored format (SageAttention2's operand formats, here
// the cache's own): Q K^T as an 8-bit warpgroup MMA on the stored keys (int8 x int8 -> s32 for the int8
// store, e4m3 x e4m3 -> f32 for fp8) and P V as e4m3 x e4m3 on the stored values, both at twice the
// bf16 tensor-core rate. Nothing is dequantized: the block scales multiply the scores, and the value
// scales fold into P.
//
// Same schedule as attention_ws.cu (producer warpgroup + two ping-ponging consumer warpgroups), with:
//  - keys straight from the slot into the stage by TMA (the 128-byte swizzle of one 128-byte key row is
//    the K-major B layout);
//  - values by TMA into a raw stage, then transposed by the producer into V^T (8-bit B operands must be
//    K-major), keys permuted within each 16 so that P's accumulator layout is directly its A fragment;
//  - Q quantized per row once (int8 / e4m3) with a scale bounded by the temporal pairs' norms, so the
//    Q-side temporal RoPE of each key frame only re-quantizes those pairs;
//  - int8 keys: score = s_q s_k (q8 . k8) + s_q (q8 . mean of the frame);
//  - P' = P s_v(block) / sigma in e4m3 (sigma = the key frame's largest value scale / 448), O kept in
//    units of sigma and re-based when the frame changes;
//  - two-level accumulation (SageAttention2): the e4m3 MMA accumulates in about 22 bits, so each tile's
//    P' V goes to fresh registers (64 channels at a time: registers) and is added to the fp32 O.
// The ring's bf16 tail (the chunk being generated) is not read here: the caller runs it through the
// bf16 kernel as one more split and merges.
#include "kernels/attention_keys.cuh"
#include "kernels/attention_tiles.cuh"
#include "kernels/attention_ws.cuh"
#include "kernels/tma.cuh"
#include "kernels/tma_map.cuh"
#include "kernels/wgmma.cuh"

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <type_traits>

namespace avs::kernels {
namespace {

using namespace attn;

constexpr int D = 128, BK = 128;  // a key row and a V^T row are both one 128-byte swizzle row
constexpr int kConsumers = 2, kThreads = 128 * (1 + kConsumers), kBQ = 64 * kConsumers;
// Stages: keys are released as soon as S landed, so they can run further ahead than V^T.
constexpr int kKStages = 4, kVStages = 3, kRawStages = 3;
constexpr int kTile = BK * D;  // bytes of one 8-bit K, V^T or raw V tile
// Register split: the transposing producer needs about 40; the consumers hold O (64), S (64), Q (16)
// and P (16) fragments. Must fit the 168 x 384 the block starts with (see attention_ws.cu).
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumers <= (65536 / kThreads) / 8 * 8 * kThreads, "register split");
// k32 steps of Q that hold temporal RoPE pairs (their unrotated values are kept in shared memory)
constexpr int kTQ = 2;  // pairs_t <= 32 (Wan: 22)
constexpr size_t kQSave = size_t(kTQ) * 4 * 2 * 128 * kConsumers * sizeof(uint32_t);
// per consumer warp, the current frame's per-block constants (key scale, P' multiplier, its log2 and inverse)
constexpr int    kMaxBlocks = 32;  // 64-token blocks per frame (tokens per frame <= 2048)
constexpr size_t kFrameTab = size_t(4 * kConsumers) * kMaxBlocks * sizeof(float4);
// + 1 KB: the 0/1 B operand [8 rows][128 keys] whose MMA with P' gives the rows' sums per 64-key block
constexpr size_t kSmem = 1024 + 1024 + size_t(kTile) * (kKStages + kVStages + kRawStages) + 2 * (kKStages + kVStages + kRawStages) * sizeof(uint64_t) + kQSave +
                         kFrameTab;

struct Maps {
    CUtensorMap k, v;  // the store's K / V bytes: boxes of BK rows x 128 bytes of one head, 128-byte swizzle
};

// Four floats as e4m3 bytes (saturating), the first in the low byte.
__device__ __forceinline__ uint32_t e4m3x4(float a, float b, float c, float d) {
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
    return lo | (hi << 16);
}
// 2^a, 2^b as e4m3 (a in the low byte) by one half-precision SFU op on the pair: P' keeps 3 mantissa
// bits, so f16's 10 are plenty, and ex2.approx.f16x2 may halve the SFU work of two f32 ex2 (measure).
// -inf gives +0; the argument never exceeds log2(448) + rounding (it is saturated to 448).
__device__ __forceinline__ uint32_t exp2_e4m3x2(float a, float b) {
    const __half2 h = __floats2half2_rn(a, b);
    uint32_t      x = *reinterpret_cast<const uint32_t *>(&h), y;
    asm("ex2.approx.f16x2 %0, %1;" : "=r"(y) : "r"(x));
    __half2_raw r;
    r.x = static_cast<unsigned short>(y & 0xFFFFu), r.y = static_cast<unsigned short>(y >> 16);
    return __nv_cvt_halfraw2_to_fp8x2(r, __NV_SATFINITE, __NV_E4M3);
}
__device__ __forceinline__ uint32_t s8x4(float a, float b, float c, float d) {
    auto q = [](float x) { return uint32_t(max(-127, min(127, __float2int_rn(x)))) & 0xFFu; };
    return q(a) | (q(b) << 8) | (q(c) << 16) | (q(d) << 24);
}
template <bool Int8> __device__ __forceinline__ uint32_t quant4(float a, float b, float c, float d, float inv) {
    return Int8 ? s8x4(a * inv, b * inv, c * inv, d * inv) : e4m3x4(a * inv, b * inv, c * inv, d * inv);
}
// The S registers as floats: int8's s32 accumulators hold their scores' (then P's) float bits in place.
__device__ __forceinline__ float as_f(float x) { return x; }
__device__ __forceinline__ float as_f(int x) { return __int_as_float(x); }
__device__ __forceinline__ void  set_f(float & r, float v) { r = v; }
__device__ __forceinline__ void  set_f(int & r, float v) { r = __float_as_int(v); }
// Byte i of w as a signed int8, as a float.
__device__ __forceinline__ float s8_value(uint32_t w, int i) { return float(int8_t((w >> (8 * i)) & 0xFFu)); }

// Producer: raw V tile [BK keys][128 B] (128-byte swizzle) -> V^T [128 channels][BK keys] (128-byte
// swizzle), logical key column 16 G + 4 t + i holding key 16 G + 2 t + (i & 1) + 8 (i >> 1): the keys
// thread t owns in P's accumulator layout. A lane transposes 4 keys x 16 channels per step with byte
// permutes; reads and writes are both free of bank conflicts (odd groups read their key pairs swapped).
// Transposer warp w of kTransposers takes the 16-channel groups w, w + kTransposers, ...
constexpr int kTransposers = 3;
__device__ __forceinline__ void transpose_v(const uint8_t * raw, uint8_t * vt, int w, int lane) {
    const int      G = lane >> 2, tq = lane & 3, odd = G & 1;
    const int      kb = 16 * G + 2 * tq;
    const uint32_t sel_lo = odd ? 0x1504u : 0x5140u, sel_hi = odd ? 0x3726u : 0x7362u;
#pragma unroll 1
    for (int C = w; C < D / 16; C += kTransposers) {  // 16-channel group
        uint4     R[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int key = kb + ((i & 1) ^ odd) + 8 * (i >> 1);
            R[i] = *reinterpret_cast<const uint4 *>(raw + key * 128 + ((C ^ (key & 7)) << 4));
        }
#pragma unroll
        for (int wd = 0; wd < 4; ++wd) {
            const uint32_t a = (&R[0].x)[wd], b = (&R[1].x)[wd], c = (&R[2].x)[wd], d = (&R[3].x)[wd];
            const uint32_t lo_ab = __byte_perm(a, b, sel_lo), hi_ab = __byte_perm(a, b, sel_hi);
            const uint32_t lo_cd = __byte_perm(c, d, sel_lo), hi_cd = __byte_perm(c, d, sel_hi);
            const uint32_t out[4] = {__byte_perm(lo_ab, lo_cd, 0x5410), __byte_perm(lo_ab, lo_cd, 0x7632), __byte_perm(hi_ab, hi_cd, 0x5410),
                                     __byte_perm(hi_ab, hi_cd, 0x7632)};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int ch = 16 * C + 4 * wd + e;
                *reinterpret_cast<uint32_t *>(vt + ch * 128 + ((G ^ (ch & 7)) << 4) + 4 * tq) = out[e];
            }
        }
    }
}

// kExpH2: the exponentials as f16 pairs (exp2_e4m3x2) instead of f32 (an A/B variant, AttnKernel::mma8_h2)
template <int F, bool kExpH2>
__global__ void __launch_bounds__(kThreads, 1) attention_ws8_kernel(const __grid_constant__ Maps maps, bf16 * __restrict__ out,
                                                                    const bf16 * __restrict__ q, int64_t Lq, int H, AttnKeys K, SplitPlan plan,
                                                                    RopeTabs tabs, float scale) {
#if AVS_WGMMA
    constexpr bool  kInt8 = F == int(KvFormat::int8);
    // int8 scores convert as the bits of kMagic + acc (an integer add, not the quarter-rate I2F)
    constexpr float kMagic = kInt8 ? 12582912.0f : 0.0f;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char * smem = smem_raw + ((1024u - (tma::saddr(smem_raw) & 1023u)) & 1023u);
    uint8_t *       ones = smem;                           // [8][BK] e4m3: row 0 = 1 on block 0's keys, row 1 on block 1's
    uint8_t *       kst = smem + 1024;                     // [kKStages][BK keys][128 B]
    uint8_t *       vts = kst + kKStages * kTile;          // [kVStages][128 channels][BK keys]
    uint8_t *       vraw = vts + kVStages * kTile;         // [kRawStages][BK keys][128 B]
    uint64_t *      full_k = reinterpret_cast<uint64_t *>(vraw + kRawStages * kTile);  // TMA landed
    uint64_t *      empty_k = full_k + kKStages;           // every consumer warp's S landed
    uint64_t *      full_v = empty_k + kKStages;           // V^T written
    uint64_t *      empty_v = full_v + kVStages;           // every consumer warp's P V landed
    uint64_t *      raw_full = empty_v + kVStages;         // raw V landed
    uint64_t *      raw_empty = raw_full + kRawStages;     // raw V transposed
    uint32_t *      qsave = reinterpret_cast<uint32_t *>(raw_empty + kRawStages);  // [kTQ * 4 * 2][256 consumer threads]
    float4 *        frame_tab = reinterpret_cast<float4 *>(qsave + kTQ * 4 * 2 * 128 * kConsumers);  // [8 warps][kMaxBlocks]

    const WsBlock B = ws_block(K, plan, Lq, kBQ);
    const int     wg = B.wg, warp = B.warp, lane = B.lane, h = B.h, split = B.split;
    const int64_t q0 = B.q0, j_begin = B.j_begin, block_lim = B.block_lim;

    if (threadIdx.x == 0) {
        for (int i = 0; i < kKStages; ++i) tma::mbar_init(&full_k[i], 1), tma::mbar_init(&empty_k[i], 4 * kConsumers);
        for (int i = 0; i < kVStages; ++i) tma::mbar_init(&full_v[i], 1), tma::mbar_init(&empty_v[i], 4 * kConsumers);
        for (int i = 0; i < kRawStages; ++i) tma::mbar_init(&raw_full[i], 1), tma::mbar_init(&raw_empty[i], 1);
        tma::mbar_fence_init();
    }
    __syncthreads();

    if (wg == 0) {  // producer: warp 0 (one thread) issues the TMA loads, warps 1-3 transpose V
        tma::regs_dec<kProducerRegs>();
        const int n = count_tiles<BK>(K, j_begin, block_lim);
        if (warp == 0) {
            if (lane != 0) return;
            tma::prefetch_map(&maps.k), tma::prefetch_map(&maps.v);
            int it = 0;
            for (TileCursor<BK> cur(K, j_begin, block_lim); cur.a < block_lim; cur.next(), ++it) {
                const int sk = it % kKStages, rs = it % kRawStages, slot = K.view.slot_of_logical(cur.frame);
                tma::mbar_wait(&empty_k[sk], ((it / kKStages) & 1) ^ 1);
                tma::mbar_expect_tx(&full_k[sk], kTile);
                tma::load_4d(kst + sk * kTile, &maps.k, &full_k[sk], 0, h, cur.r, slot);
                tma::mbar_wait(&raw_empty[rs], ((it / kRawStages) & 1) ^ 1);
                tma::mbar_expect_tx(&raw_full[rs], kTile);
                tma::load_4d(vraw + rs * kTile, &maps.v, &raw_full[rs], 0, h, cur.r, slot);
            }
            return;
        }
        for (int it = 0; it < n; ++it) {
            const int sv = it % kVStages, rs = it % kRawStages;
            tma::mbar_wait(&raw_full[rs], (it / kRawStages) & 1);
            tma::mbar_wait(&empty_v[sv], ((it / kVStages) & 1) ^ 1);
            transpose_v(vraw + rs * kTile, vts + sv * kTile, warp - 1, lane);
            wg::fence_async_smem();  // the consumers' wgmma reads V^T through the async proxy
            tma::bar_sync(3, 32 * kTransposers);
            if (threadIdx.x == 32) {
                tma::mbar_arrive(&full_v[sv]);
                tma::mbar_arrive(&raw_empty[rs]);
            }
        }
        return;
    }

    tma::regs_inc<kConsumerRegs>();
    {  // the 0/1 operand, 4 bytes per consumer thread (128-byte swizzle), then visible to the async proxy
        const int i = threadIdx.x - 128, n = i / 32, c = 4 * (i % 32);
        const uint32_t v = (n == 0 && c < 64) || (n == 1 && c >= 64) ? 0x38383838u : 0u;  // e4m3 1.0
        *reinterpret_cast<uint32_t *>(ones + n * 128 + (((c >> 4) ^ (n & 7)) << 4) + (c & 15)) = v;
        wg::fence_async_smem();
        tma::bar_sync(4, 128 * kConsumers);
    }
    const int     cw = wg - 1, g = lane / 4, t = lane % 4;
    const int64_t row0 = q0 + 64 * cw + 16 * warp + g, row1 = row0 + 8;
    const int64_t lim0 = key_limit(K, row0), lim1 = key_limit(K, row1);
    const int64_t wg_lim = min(block_lim, key_limit(K, min(Lq - 1, q0 + 64 * cw + 63)));
    const int64_t wg_first_lim = key_limit(K, min(Lq - 1, q0 + 64 * cw));
    const int     pt = K.rope.pairs_t;

    // Q, quantized per row. Register [kk][r] holds row g + 8 (r % 2), dims 32 kk + 16 (r / 2) + 4 t + [0, 4).
    // The scale bounds every rotation of a temporal pair by the pair's norm, so it never changes.
    uint32_t   qf[4][4];
    uint32_t * my_qsave = qsave + (threadIdx.x - 128);
    float      sq0, sq1;
    {
        uint2 raw[4][4];
        float am0 = 0.0f, am1 = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int64_t row = r % 2 ? row1 : row0;
                const int     d0 = 32 * kk + 16 * (r / 2) + 4 * t;
                raw[kk][r] = row < Lq ? *reinterpret_cast<const uint2 *>(q + (row * H + h) * D + d0) : make_uint2(0, 0);
                float m = 0.0f;
#pragma unroll
                for (int w = 0; w < 2; ++w) {
                    const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(w ? &raw[kk][r].y : &raw[kk][r].x));
                    m = fmaxf(m, d0 / 2 + w < pt ? sqrtf(x.x * x.x + x.y * x.y) : fmaxf(fabsf(x.x), fabsf(x.y)));
                }
                if (r % 2) am1 = fmaxf(am1, m);
                else am0 = fmaxf(am0, m);
            }
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            am0 = fmaxf(am0, __shfl_xor_sync(0xffffffffu, am0, off));
            am1 = fmaxf(am1, __shfl_xor_sync(0xffffffffu, am1, off));
        }
        const float qmax = kInt8 ? 127.0f : 448.0f;
        sq0 = am0 > 0.0f ? am0 / qmax : 1.0f, sq1 = am1 > 0.0f ? am1 / qmax : 1.0f;
        const float i0 = 1.0f / sq0, i1 = 1.0f / sq1;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw[kk][r].x));
                const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw[kk][r].y));
                qf[kk][r] = quant4<kInt8>(a.x, a.y, b.x, b.y, r % 2 ? i1 : i0);
                if (kk < kTQ) my_qsave[((kk * 4 + r) * 2 + 0) * 128 * kConsumers] = raw[kk][r].x, my_qsave[((kk * 4 + r) * 2 + 1) * 128 * kConsumers] = raw[kk][r].y;
            }
    }
    int             q_frame = -1;
    const uint8_t * slot = nullptr;         // the current key frame's slot
    float           qm0 = 0.0f, qm1 = 0.0f;  // int8: s_q (q8 . mean of the frame), per row

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float       m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    // The row sums come from the tensor cores with the P V they belong to (lsum: per row and 64-key
    // block, on threads t = 0; zeros elsewhere), folded into l once landed, with that tile's factors.
    float       lsum[1][4];
    float       cm_pv0 = 0.0f, cm_pv1 = 0.0f, ip_pv0 = 0.0f, ip_pv1 = 0.0f;  // of the tile whose P V is in flight
    float       cm_n0 = 0.0f, cm_n1 = 0.0f, ip_n0 = 0.0f, ip_n1 = 0.0f;      // of the tile just through the softmax
    float       c0 = 0.0f, c1 = 0.0f;        // O's rescale of the tile just through the softmax
    float       c_pv0 = 0.0f, c_pv1 = 0.0f;  // O's rescale (maxima and sigma) before the tile in flight is added
    float       ot[8][4];                    // one tile's P' V, 64 channels
    float       sigma = 1.0f, rebase = 1.0f;  // O is kept in units of sigma; rebase: old sigma / new, once
    float4 *    tab = frame_tab + ((threadIdx.x - 128) / 32) * kMaxBlocks;
    const float sl2 = scale * 1.4426950408889634f;
    // S in the registers its MMA wrote; int8's s32 values become floats in place (kMagic + acc as bits),
    // and the scores' exponent arguments and P follow in the same 64 registers, for both formats.
    std::conditional_t<kInt8, int, float> sa[BK / 8][4];
    uint32_t    pa[BK / 32][4];  // P' of the previous tile in e4m3, waiting for its P V

    auto release = [&](uint64_t * bar) {
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(bar);
    };
    // A new key frame, before its first S: rotate the temporal pairs by its angle, re-quantize them.
    auto new_frame = [&](int lf) {
        q_frame = lf;
        slot = K.store + int64_t(K.view.slot_of_logical(lf)) * K.layout.slot_bytes;
        const float i0 = 1.0f / sq0, i1 = 1.0f / sq1;
#pragma unroll
        for (int kk = 0; kk < kTQ; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int p0 = (32 * kk + 16 * (r / 2) + 4 * t) / 2;
                float     x[4];
#pragma unroll
                for (int w = 0; w < 2; ++w) {
                    const uint32_t raw = my_qsave[((kk * 4 + r) * 2 + w) * 128 * kConsumers];
                    const float2   v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw));
                    const int      p = p0 + w;
                    const bool     temporal = p < pt;
                    const int64_t  ti = int64_t(lf) * pt + (temporal ? p : 0);
                    const float    c = temporal ? __ldg(tabs.cos + ti) : 1.0f, sn = temporal ? __ldg(tabs.sin + ti) : 0.0f;
                    x[2 * w] = v.x * c + v.y * sn, x[2 * w + 1] = v.y * c - v.x * sn;  // R(-phi)
                }
                qf[kk][r] = quant4<kInt8>(x[0], x[1], x[2], x[3], r % 2 ? i1 : i0);
            }
    };
    // ... and after its first S was issued (the loads' latency hides under the MMAs): the frame's block
    // constants, and for int8 keys the mean term (its 32 loads per thread are most of int8's spills:
    // 264 bytes vs fp8's 132, per ptxas; moving them before the MMA saved only 12).
    auto frame_consts = [&]() {
        {  // lane b: block b's constants, against the frame's largest value scale
            const int   nb = K.layout.blocks();
            const float ks = lane < nb ? __ldg(reinterpret_cast<const float *>(slot + K.layout.k_meta) + lane * H + h) : 1.0f;
            const float vs = lane < nb ? __ldg(reinterpret_cast<const float *>(slot + K.layout.v_meta) + lane * H + h) : 0.0f;
            float       vmax = vs;
#pragma unroll
            for (int off = 16; off >= 1; off >>= 1) vmax = fmaxf(vmax, __shfl_xor_sync(0xffffffffu, vmax, off));
            const float pv = __fdividef(448.0f * vs, vmax);
            __syncwarp();
            if (lane < nb) tab[lane] = make_float4(ks, pv, __log2f(pv), __fdividef(1.0f, pv));
            __syncwarp();
            const float nsig = vmax * (1.0f / 448.0f);
            rebase = __fdividef(sigma, nsig), sigma = nsig;
        }
        if constexpr (kInt8) {
            const float * mean = reinterpret_cast<const float *>(slot + K.layout.k_meta) + K.layout.blocks() * H + h * D;
            float         a0 = 0.0f, a1 = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 4; ++kk)
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const float * mp = mean + 32 * kk + 16 * half + 4 * t;  // 4-byte aligned only (the meta follows the block scales)
                    const float   mm[4] = {__ldg(mp), __ldg(mp + 1), __ldg(mp + 2), __ldg(mp + 3)};
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        a0 = fmaf(s8_value(qf[kk][2 * half], i), mm[i], a0);
                        a1 = fmaf(s8_value(qf[kk][2 * half + 1], i), mm[i], a1);
                    }
                }
#pragma unroll
            for (int off = 1; off <= 2; off <<= 1) {
                a0 += __shfl_xor_sync(0xffffffffu, a0, off);
                a1 += __shfl_xor_sync(0xffffffffu, a1, off);
            }
            qm0 = a0 * sq0, qm1 = a1 * sq1;
        }
    };
    // S = Q K^T of tile `it` from the stored 8-bit keys (K-major B: a k32 step is 32 B into the key row)
    float4 bc0, bc1;  // the tile's two blocks' constants (frame table), read at issue
    auto issue_s = [&](int it, int lf, int r) {
        const int st = it % kKStages;
        tma::mbar_wait(&full_k[st], (it / kKStages) & 1);
        const bool fresh = __shfl_sync(0xffffffffu, int(lf != q_frame), 0);
        if (fresh) new_frame(lf);
        const uint32_t kb = tma::saddr(kst + st * kTile);
        wg::fence();
#pragma unroll
        for (int kk = 0; kk < D / 32; ++kk) {
            const uint64_t dk = wg::desc_sw128(kb + kk * 32, 16, 1024);
            if constexpr (kInt8) wg::mma_m64n128k32_s8(sa, qf[kk], dk, kk > 0);
            else wg::mma_m64n128k32_e4m3(sa, qf[kk], dk, kk > 0);
        }
        wg::commit();
        if (fresh) frame_consts();
        bc0 = tab[r / kKvBlockTokens], bc1 = tab[min(r / kKvBlockTokens + 1, K.layout.blocks() - 1)];
    };
    // O += P' V of tile `it` (V^T: a k32 step is 32 keys into each channel row)
    // ot[64 x 64] = P' V[:, 64 half, +64) of tile `it` in fresh registers (V^T rows 64 half: 8 KB on);
    // half 0 also takes the row sums and the tile's factors for the merge
    auto issue_pv = [&](int it, int half) {
        const int st = it % kVStages;
        if (half == 0) tma::mbar_wait(&full_v[st], (it / kVStages) & 1);
        const uint32_t vb = tma::saddr(vts + st * kTile) + half * 64 * 128;
        wg::fence();
#pragma unroll
        for (int kk = 0; kk < BK / 32; ++kk) wg::mma_m64n64k32_e4m3(ot, pa[kk], wg::desc_sw128(vb + kk * 32, 16, 1024), kk > 0);
        if (half == 0) {
            const uint32_t ob = tma::saddr(ones);
#pragma unroll
            for (int kk = 0; kk < BK / 32; ++kk) wg::mma_m64n8k32_e4m3(lsum, pa[kk], wg::desc_sw128(ob + kk * 32, 16, 1024), kk > 0);
        }
        wg::commit();
        if (half == 0) cm_pv0 = cm_n0, cm_pv1 = cm_n1, ip_pv0 = ip_n0, ip_pv1 = ip_n1, c_pv0 = c0, c_pv1 = c1;
    };
    // Tile [j0, jend): raw products to P' = P s_v / sigma in place,
    // each a single FFMA before the exp2: score = a_b acc + qm (a_b = s_q s_k of the key's 64-block),
    // and exp2(score sl2 - max sl2) times the block's P' multiplier is exp2 of one more added constant.
    // Also updates the row maxima and sums and leaves O's rescale (maxima and sigma) in c0, c1.
    auto softmax = [&](int64_t j0, int64_t jend) {
        if constexpr (kInt8) {
#pragma unroll
            for (int j = 0; j < BK / 8; ++j)
#pragma unroll
                for (int c = 0; c < 4; ++c) sa[j][c] += 0x4B400000;  // as a float: kMagic + acc, exactly (|acc| < 2^22)
        }
        if (__shfl_sync(0xffffffffu, int(j0 + BK > min(jend, wg_first_lim)), 0)) {  // partial tile (uniform)
            const int n0 = int(min(lim0, jend) - j0), n1 = int(min(lim1, jend) - j0);
#pragma unroll
            for (int j = 0; j < BK / 8; ++j)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int key = 8 * j + 2 * t + c;
                    set_f(sa[j][c], as_f(sa[j][c]) + mask_bias(key, n0));
                    set_f(sa[j][2 + c], as_f(sa[j][2 + c]) + mask_bias(key, n1));
                }
        }
        // raw maxima per row and block (the blocks' scales differ), then the true row maxima
        float r00 = -INFINITY, r01 = -INFINITY, r10 = -INFINITY, r11 = -INFINITY;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
            if (j < BK / 16) r00 = fmaxf(r00, fmaxf(as_f(sa[j][0]), as_f(sa[j][1]))), r10 = fmaxf(r10, fmaxf(as_f(sa[j][2]), as_f(sa[j][3])));
            else r01 = fmaxf(r01, fmaxf(as_f(sa[j][0]), as_f(sa[j][1]))), r11 = fmaxf(r11, fmaxf(as_f(sa[j][2]), as_f(sa[j][3])));
        }
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            r00 = fmaxf(r00, __shfl_xor_sync(0xffffffffu, r00, off)), r01 = fmaxf(r01, __shfl_xor_sync(0xffffffffu, r01, off));
            r10 = fmaxf(r10, __shfl_xor_sync(0xffffffffu, r10, off)), r11 = fmaxf(r11, __shfl_xor_sync(0xffffffffu, r11, off));
        }
        const float a00 = sq0 * bc0.x, a01 = sq0 * bc1.x, a10 = sq1 * bc0.x, a11 = sq1 * bc1.x;
        // -inf (a fully masked block) stays -inf: scales are positive
        r00 -= kMagic, r01 -= kMagic, r10 -= kMagic, r11 -= kMagic;  // exact
        const float mx0 = fmaxf(m0, fmaxf(fmaf(r00, a00, qm0), fmaf(r01, a01, qm0)));
        const float mx1 = fmaxf(m1, fmaxf(fmaf(r10, a10, qm1), fmaf(r11, a11, qm1)));
        const float b0s = mx0 == -INFINITY ? 0.0f : mx0 * sl2, b1s = mx1 == -INFINITY ? 0.0f : mx1 * sl2;
        const float lp0 = bc0.z, lp1 = bc1.z;  // log2 of the P' multipliers
        const float cm0 = fast_exp2(m0 * sl2 - b0s), cm1 = fast_exp2(m1 * sl2 - b1s);
        c0 = cm0 * rebase, c1 = cm1 * rebase;
        rebase = 1.0f;
        m0 = mx0, m1 = mx1;
        const float e00 = a00 * sl2, e01 = a01 * sl2, e10 = a10 * sl2, e11 = a11 * sl2;
        // (kMagic folded in: its rounding here is below one unit of acc)
        const float f00 = fmaf(qm0, sl2, lp0 - b0s) - kMagic * e00, f01 = fmaf(qm0, sl2, lp1 - b0s) - kMagic * e01;
        const float f10 = fmaf(qm1, sl2, lp0 - b1s) - kMagic * e10, f11 = fmaf(qm1, sl2, lp1 - b1s) - kMagic * e11;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
            const bool second = j >= BK / 16;
            const float ea = second ? e01 : e00, fa = second ? f01 : f00, eb = second ? e11 : e10, fb = second ? f11 : f10;
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const float x = fmaf(as_f(sa[j][c]), c < 2 ? ea : eb, c < 2 ? fa : fb);
                set_f(sa[j][c], kExpH2 ? x : fast_exp2(x));
            }
        }  // kExpH2: pack_p takes the exponentials
        // for the row sums: they are of P itself, P' / multiplier (no sigma)
        cm_n0 = cm0, cm_n1 = cm1, ip_n0 = bc0.w, ip_n1 = bc1.w;
    };
    // after a P V landed: its tile's row sums into l (lsum columns 0 / 1: blocks 0 / 1, rows g / g + 8)
    auto fold_l = [&]() {
        wg::fence_regs(lsum);
        l0 = fmaf(l0, cm_pv0, fmaf(lsum[0][0], ip_pv0, lsum[0][1] * ip_pv1));
        l1 = fmaf(l1, cm_pv1, fmaf(lsum[0][2], ip_pv0, lsum[0][3] * ip_pv1));
    };
    // O (fp32) follows the landed tile's maxima and sigma, and takes its P' V half
    auto merge = [&](int half) {
        wg::fence_regs(ot);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            float(&d)[4] = o[8 * half + i];
            d[0] = fmaf(d[0], c_pv0, ot[i][0]), d[1] = fmaf(d[1], c_pv0, ot[i][1]);
            d[2] = fmaf(d[2], c_pv1, ot[i][2]), d[3] = fmaf(d[3], c_pv1, ot[i][3]);
        }
    };
    // both halves of tile `it`'s P V, merged: the second half's MMA runs while the first is merged
    auto pv_tile = [&](int it) {
        wg::wait<0>();
        merge(0);
        fold_l();
        issue_pv(it, 1);
        wg::wait<0>();
        merge(1);
        release(&empty_v[it % kVStages]);
    };
    // P' in e4m3 as the A fragments of the four k32 steps: n-tiles 4kk, 4kk+1 (keys 2t, 2t+1, 8+2t, 9+2t)
    // fill registers 0, 1 and n-tiles 4kk+2, 4kk+3 registers 2, 3 — the order V^T's columns are in.
    auto pack_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < BK / 32; ++kk)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                const int j = 4 * kk + 2 * hf;
                if constexpr (kExpH2) {
                    pa[kk][2 * hf + 0] = __byte_perm(exp2_e4m3x2(as_f(sa[j][0]), as_f(sa[j][1])), exp2_e4m3x2(as_f(sa[j + 1][0]), as_f(sa[j + 1][1])), 0x5410);
                    pa[kk][2 * hf + 1] = __byte_perm(exp2_e4m3x2(as_f(sa[j][2]), as_f(sa[j][3])), exp2_e4m3x2(as_f(sa[j + 1][2]), as_f(sa[j + 1][3])), 0x5410);
                } else {
                    pa[kk][2 * hf + 0] = e4m3x4(as_f(sa[j][0]), as_f(sa[j][1]), as_f(sa[j + 1][0]), as_f(sa[j + 1][1]));
                    pa[kk][2 * hf + 1] = e4m3x4(as_f(sa[j][2]), as_f(sa[j][3]), as_f(sa[j + 1][2]), as_f(sa[j + 1][3]));
                }
            }
    };

    const int n_tiles = __shfl_sync(0xffffffffu, count_tiles<BK>(K, j_begin, block_lim), 0);
    const int n_active = __shfl_sync(0xffffffffu, count_tiles<BK>(K, j_begin, wg_lim), 0);
    // ping-pong as attention_ws.cu (without it: the same speed here, fp8 1.94 vs 1.89 ms)
    auto pp_sync = [&]() { tma::bar_sync(1 + cw, 256); };
    auto pp_arrive = [&](int it) {
        if (!(cw == 1 && it == n_tiles - 1)) tma::bar_arrive(1 + (cw ^ 1), 256);
    };
    if (cw == 1 && n_tiles > 0) tma::bar_arrive(1, 256);

    auto land_s = [&]() {
        wg::fence_regs(sa);
    };
    TileCursor<BK> cur(K, j_begin, block_lim);
    int            it = 0;
    if (n_active > 0) {
        pp_sync();
        issue_s(0, cur.frame, cur.r);
        pp_arrive(0);
        wg::wait<0>();
        land_s();
        release(&empty_k[0]);
        softmax(cur.a, cur.end);
        pack_p();
        for (it = 1; it < n_active; ++it) {
            cur.next();
            pp_sync();
            issue_s(it, cur.frame, cur.r);
            issue_pv(it - 1, 0);
            pp_arrive(it);
            wg::wait<1>();  // S landed; P V still in flight
            land_s();
            release(&empty_k[it % kKStages]);
            softmax(cur.a, cur.end);
            pv_tile(it - 1);
            pack_p();
        }
        issue_pv(n_active - 1, 0);
        pv_tile(n_active - 1);
    }
    for (; it < n_tiles; ++it) {
        // past this warpgroup's rows: release the stages unread once they hold this tile
        pp_sync();
        pp_arrive(it);
        tma::mbar_wait(&full_k[it % kKStages], (it / kKStages) & 1);
        release(&empty_k[it % kKStages]);
        tma::mbar_wait(&full_v[it % kVStages], (it / kVStages) & 1);
        release(&empty_v[it % kVStages]);
    }
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] *= sigma, o[nd][1] *= sigma, o[nd][2] *= sigma, o[nd][3] *= sigma;
    store_rows<D>(K, out, o, m0, m1, l0, l1, sl2, row0, Lq, H, h, t, plan.slot0 + split);
#else
    __trap();
#endif
}

template <int F, bool kExpH2>
cudaError_t launch(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & K, const SplitPlan & plan, float scale, cudaStream_t stream) {
    Maps      maps{};
    const int tpf = K.view.tokens_per_frame, slots = K.view.capacity();
    if (!tma::encode(maps.k, K.store + K.layout.k_data, false, D, heads, tpf, slots, K.layout.slot_bytes, BK, 128, true) ||
        !tma::encode(maps.v, K.store + K.layout.v_data, false, D, heads, tpf, slots, K.layout.slot_bytes, BK, 128, true))
        return cudaErrorNotSupported;
    auto *            kern = attention_ws8_kernel<F, kExpH2>;
    static const bool regs_ok = [kern] {
        cudaFuncAttributes a{};
        return cudaFuncGetAttributes(&a, kern) == cudaSuccess && a.numRegs == (65536 / kThreads) / 8 * 8;
    }();
    if (!regs_ok) return cudaErrorNotSupported;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem));
    if (e != cudaSuccess) return e;
    const dim3 grid(unsigned((Lq + kBQ - 1) / kBQ), unsigned(heads), unsigned(plan.n));
    kern<<<grid, kThreads, kSmem, stream>>>(maps, static_cast<bf16 *>(out), static_cast<const bf16 *>(q), Lq, heads, K, plan, rope_tabs(K), scale);
    return cudaGetLastError();
}

} // namespace

bool attention_ws8_supported(const AttnKeys & keys, int head_dim) {
    return tma::hopper_ready() && head_dim == D && keys.ring && keys.nk > 0 &&
           (keys.layout.fmt == KvFormat::fp8 || keys.layout.fmt == KvFormat::int8) && (keys.tail_frames == 0 || keys.tail_dtype == DType::bf16) &&
           keys.rope.pairs_t <= 16 * kTQ && keys.view.visible_frames() > keys.tail_frames && keys.layout.blocks() <= kMaxBlocks;
}

cudaError_t attention_ws8(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale, bool exp_h2,
                          cudaStream_t stream) {
    if (!attention_ws8_supported(keys, head_dim)) return cudaErrorInvalidValue;
    const int hist = keys.view.visible_frames() - keys.tail_frames;
    const int n = keys.nsplit > 1 ? keys.nsplit : 1;
    if (keys.tail_frames > 0 && (n < 2 || !keys.split_scratch)) return cudaErrorNotSupported;  // the tail needs a split of its own
    if (n > 1 && !keys.split_scratch) return cudaErrorInvalidValue;
    SplitPlan plan;
    plan.f0 = 0, plan.nf = hist, plan.n = keys.tail_frames > 0 ? n - 1 : n;
    const bool  i8 = keys.layout.fmt == KvFormat::int8;
    cudaError_t e  = i8 ? (exp_h2 ? launch<int(KvFormat::int8), true>(out, q, Lq, heads, keys, plan, scale, stream)
                                  : launch<int(KvFormat::int8), false>(out, q, Lq, heads, keys, plan, scale, stream))
                        : (exp_h2 ? launch<int(KvFormat::fp8), true>(out, q, Lq, heads, keys, plan, scale, stream)
                                  : launch<int(KvFormat::fp8), false>(out, q, Lq, heads, keys, plan, scale, stream));
    if (e != cudaSuccess) return e;
    if (keys.tail_frames > 0) {
        e = attention_ws_tail(out, q, Lq, heads, head_dim, keys, n - 1, scale, stream);
        if (e != cudaSuccess) return e;
    }
    return n > 1 ? merge_splits<D>(out, keys.split_scratch, Lq, heads, n, stream) : cudaSuccess;
}

} // namespace avs::kernels
