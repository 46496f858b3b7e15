// Hopper attention on an 8-bit ring store in its stored format (SageAttention2's operand formats, here
// the cache's own): Q K^T as an 8-bit warpgroup MMA on the stored keys (int8 x int8 -> s32 for the int8
// store, e4m3 x e4m3 -> f32 for fp8) at twice the bf16 tensor-core rate; the block scales multiply the
// scores, nothing on the key side is converted.
//
// Same schedule as attention_ws.cu (producer warpgroup + two ping-ponging consumer warpgroups), with:
//  - keys straight from the slot into the stage by TMA (the 128-byte swizzle of one 128-byte key row is
//    the K-major B layout);
//  - Q quantized per row once (int8 / e4m3) with a scale bounded by the temporal pairs' norms, so the
//    Q-side temporal RoPE of each key frame only re-quantizes those pairs;
//  - int8 keys: score = s_q s_k (q8 . k8) + s_q (q8 . mean of the frame);
//  - P V in f16 with fp32 accumulation: the producer widens each raw e4m3 value tile to f16 (exact,
//    one conversion per two values); each key's P carries its 64-key block's s_v / (the frame's largest
//    s_v) inside the exponent (P' = 2^(x + log2 ratio) <= 1), so O is kept in units of the frame's
//    largest value scale, re-based when the frame changes; the row sums add P' / ratio per block.
//    (P V as an e4m3 MMA was measured at ce1b3cd and f83171d: the e4m3 MMA accumulates in about 22 bits,
//    which lost 16-20 % over a 21-frame window with one accumulator; the two-level fix of SageAttention2
//    cost 32 registers, spilled, and ran 20-30 % slower than bf16. f16 P V costs half the key side's
//    tensor-core saving and none of its accuracy.)
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

constexpr int D = 128, BK = 128;  // a key row is one 128-byte swizzle row
constexpr int kConsumers = 2, kThreads = 128 * (1 + kConsumers), kBQ = 64 * kConsumers;
// Stages: keys are released after their tile's vote (a failed one computes S again), values after their
// P V. The keys' TMA (warp 0) and the raw values' (the wideners) are issued apart, so neither waits on
// the other. Widened value stages: 3 at most (the kernel picks per format).
constexpr int kKStages = 4, kVStagesMax = 3, kRawStages = 2;
constexpr int kTile = BK * D;       // bytes of one 8-bit K or raw V tile
constexpr int kVTile = BK * D * 2;  // bytes of one f16 V tile: 2 panels of 64 channels [BK keys][128 B]
// Register split: the widening producer needs about 40; the consumers hold O (64), S (64), P (32) and
// Q (16) fragments. Must fit the 168 x 384 the block starts with (see attention_ws.cu).
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumers <= (65536 / kThreads) / 8 * 8 * kThreads, "register split");
// k32 steps of Q that hold temporal RoPE pairs (their unrotated values are kept in shared memory)
constexpr int kTQ = 2;  // pairs_t <= 32 (Wan: 22)
constexpr size_t kQSave = size_t(kTQ) * 4 * 2 * 128 * kConsumers * sizeof(uint32_t);
// per consumer warp and 64-token block of the current frame: {log2 ratio, 1 / ratio, key scale, 0}
// (ratio: the block's value scale / the frame's largest, at least 2^-64 so that P' / ratio is P)
constexpr int    kMaxBlocks = 32;  // 64-token blocks per frame (tokens per frame <= 2048)
constexpr size_t kFrameTab = size_t(4 * kConsumers) * kMaxBlocks * sizeof(float4);
// A key frame's inputs, copied by the keys' producer warp into the key stage of the frame's first tile
// (ready with the keys, released with them): read from global memory when the frame started, their
// latency sat in front of its first S (4 % of fp8's time, 6 % of int8's; docs/KV_FORMATS.md step 12).
struct FrameInputs {
    float cs[32], sn[32];                  // temporal RoPE cos / sin of the frame (pairs_t <= 32)
    float ks[kMaxBlocks], vs[kMaxBlocks];  // key and value scale per 64-token block
    float mean[D];                         // int8: the keys' channel means
};
constexpr size_t kSmem = 1024 + size_t(kTile) * (kKStages + kRawStages) + size_t(kVTile) * kVStagesMax +
                         (2 * (kKStages + kVStagesMax) + kRawStages) * sizeof(uint64_t) + kQSave + kFrameTab +
                         kKStages * sizeof(FrameInputs);
static_assert(kSmem <= 227 * 1024, "shared memory");

struct Maps {
    CUtensorMap k, v;  // the store's K / V bytes: boxes of BK rows x 128 bytes of one head, 128-byte swizzle
};

// Four floats as e4m3 bytes (saturating), the first in the low byte.
__device__ __forceinline__ uint32_t e4m3x4(float a, float b, float c, float d) {
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
    return lo | (hi << 16);
}
// Two floats as an f16 pair (a in the low half): P's A fragment.
__device__ __forceinline__ uint32_t pack_f16(float a, float b) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t *>(&h);
}
// 1.5 * 2^23: a float in [2^23, 2^24) has a unit last place, so adding it rounds to an integer and leaves
// that integer in the low mantissa bits; kMagicBits is its bit pattern (exponent 127 + 23, mantissa .1b).
constexpr float kMagicF = 1.5f * 8388608.0f;
constexpr int   kMagicBits = (127 + 23) << 23 | 1 << 22;
// Four floats, each |x| < 127.5 (Q's scale bounds them), as int8 bytes: x + 1.5 * 2^23 rounds x to the
// nearest integer (ties to even) and leaves it, two's complement, in the low byte; the bytes are gathered
// by PRMT (no F2I, no clamps). The compiler fuses quant4's multiply into the add (one FFMA), so the exact
// product is rounded once: where its float rounding would cross a half, q8 differs by one from rintf.
__device__ __forceinline__ uint32_t s8x4(float a, float b, float c, float d) {
    const uint32_t ra = __float_as_uint(a + kMagicF), rb = __float_as_uint(b + kMagicF);
    const uint32_t rc = __float_as_uint(c + kMagicF), rd = __float_as_uint(d + kMagicF);
    return __byte_perm(__byte_perm(ra, rb, 0x0040), __byte_perm(rc, rd, 0x0040), 0x5410);
}
template <bool Int8> __device__ __forceinline__ uint32_t quant4(float a, float b, float c, float d, float inv) {
    return Int8 ? s8x4(a * inv, b * inv, c * inv, d * inv) : e4m3x4(a * inv, b * inv, c * inv, d * inv);
}
// The S registers as floats: int8's s32 accumulators hold their scores' (then P's) float bits in place.
__device__ __forceinline__ float as_f(float x) { return x; }
__device__ __forceinline__ float as_f(int x) { return __int_as_float(x); }
__device__ __forceinline__ void  set_f(float & r, float v) { r = v; }
__device__ __forceinline__ void  set_f(int & r, float v) { r = __float_as_int(v); }
// 4 bytes global -> shared, asynchronously (cp_async_arrive signals them landed)
__device__ __forceinline__ void cp_async4(void * dst, const void * src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(tma::saddr(dst)), "l"(src) : "memory");
}
// an arrival on bar once this thread's earlier cp.async copies have landed (counted in bar's init)
__device__ __forceinline__ void cp_async_arrive(uint64_t * bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(tma::saddr(bar)) : "memory");
}
// Byte i of w as a signed int8, as a float.
__device__ __forceinline__ float s8_value(uint32_t w, int i) { return float(int8_t((w >> (8 * i)) & 0xFFu)); }

// Producer: raw V tile [BK keys][128 B] e4m3 (128-byte swizzle, as TMA wrote it) -> f16 [2 panels of
// 64 channels][BK keys][128 B] (wg::swz_off's layout, attention_ws.cu's N-major B operand), exactly.
// Lane l of widener warp wi takes key l % 8 of the 8-key groups wi, wi + kWideners, ... and the 16-byte
// chunks c16 = l / 8 (pass 0) and l / 8 + 4 (pass 1): its offsets are the same in every group (+1 KB a
// group; pass 1: the read XOR 64, the writes one panel on), and the 8 lanes of a quarter-warp, 8
// different keys of one chunk, hit 8 different 16-byte bank groups on both sides.
constexpr int kWideners = 3;
// Lazy rescaling: P up to 2^15 (f16 holds 65504) before the running maxima must move.
constexpr float kSlack = 32768.0f;
// v over the 128 threads of a consumer warpgroup (named barrier id), for all of them
__device__ __forceinline__ bool wg_all(bool v, int id) {
    uint32_t r;
    asm volatile("{\n.reg .pred p, q;\nsetp.ne.u32 p, %1, 0;\nbar.red.and.pred q, %2, 128, p;\nselp.u32 %0, 1, 0, q;\n}\n"
                 : "=r"(r)
                 : "r"(uint32_t(v)), "r"(id)
                 : "memory");
    return r != 0;
}
// two e4m3 values (the first in the low byte) as an f16 pair, exactly
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint16_t pair) {
    uint32_t y;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(y) : "h"(pair));
    return y;
}
__device__ __forceinline__ void widen_v(const uint8_t * raw, uint8_t * vf, int wi, int lane) {
    const int k8 = lane % 8, ca = lane / 8;
    // byte offsets of 2 swz_off (raw chunk c16 = ca) and of swz_off's f16 chunks 2 ca, 2 ca + 1, group 0
    const int rd = k8 * 128 + ((ca ^ k8) * 16);
    const int w0 = k8 * 128 + (((2 * ca) ^ k8) * 16), w1 = k8 * 128 + (((2 * ca + 1) ^ k8) * 16);
#pragma unroll 1  // 2 would not fit the producer's 40 registers
    for (int g = wi; g < BK / 8; g += kWideners) {
#pragma unroll
        for (int pass = 0; pass < 2; ++pass) {
            const uint4 w = *reinterpret_cast<const uint4 *>(raw + g * 1024 + (pass ? rd ^ 64 : rd));
            uint32_t    hv[8];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const uint32_t wd = (&w.x)[j];
                hv[2 * j] = e4m3x2_to_f16x2(uint16_t(wd & 0xFFFFu)), hv[2 * j + 1] = e4m3x2_to_f16x2(uint16_t(wd >> 16));
            }
            uint8_t * o = vf + pass * (BK * 128) + g * 1024;
            *reinterpret_cast<uint4 *>(o + w0) = make_uint4(hv[0], hv[1], hv[2], hv[3]);
            *reinterpret_cast<uint4 *>(o + w1) = make_uint4(hv[4], hv[5], hv[6], hv[7]);
        }
    }
}

// TileCursor's walk of ring keys in 32-bit arithmetic (key indices are below nk): the consumers' per-tile
// bookkeeping sits in their critical path (side by side: fp8 1.70 ms with it vs 1.74 at step 7, int8
// 1.757-1.769 vs 1.774-1.779 at step 13 of docs/KV_FORMATS.md).
struct RingCursor32 {
    int a, end, lim, frame, r, tpf;
    __device__ __forceinline__ RingCursor32(int tpf_, int begin, int limit) : a(begin), lim(limit), tpf(tpf_) {
        frame = begin / tpf, r = begin - frame * tpf;
        set_end();
    }
    __device__ __forceinline__ void set_end() { end = min(lim, a + min(BK, tpf - r)); }
    __device__ __forceinline__ void next() {
        r += end - a, a = end;
        if (r == tpf) r = 0, ++frame;
        set_end();
    }
};

template <int F>
__global__ void __launch_bounds__(kThreads, 1) attention_ws8_kernel(const __grid_constant__ Maps maps, bf16 * __restrict__ out,
                                                                    const bf16 * __restrict__ q, int64_t Lq, int H, AttnKeys K, SplitPlan plan,
                                                                    RopeTabs tabs, float scale, int acc_init) {
#if AVS_WGMMA
    constexpr bool  kInt8 = F == int(KvFormat::int8);
    // int8 scores are read as the float bits of kMagic + acc: S's accumulators start at kMagic's bits
    // (the MMA adds the integer part; no conversion after it, not the quarter-rate I2F)
    constexpr float kMagic = kInt8 ? kMagicF : 0.0f;
    // widened value stages, as measured side by side (docs/KV_FORMATS.md, steps 9 and 13)
    constexpr int kVStages = kInt8 ? 3 : 2;
    static_assert(kVStages <= kVStagesMax);
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char * smem = smem_raw + ((1024u - (tma::saddr(smem_raw) & 1023u)) & 1023u);
    uint8_t *       kst = smem;                            // [kKStages][BK keys][128 B]
    uint8_t *       vst = kst + kKStages * kTile;          // [kVStages][2 panels][BK keys][64 f16]
    uint8_t *       vraw = vst + kVStages * kVTile;        // [kRawStages][BK keys][128 B]
    uint64_t *      full_k = reinterpret_cast<uint64_t *>(vraw + kRawStages * kTile);  // TMA landed
    uint64_t *      empty_k = full_k + kKStages;           // every consumer warp is through its softmax
    uint64_t *      full_v = empty_k + kKStages;           // f16 values written
    uint64_t *      empty_v = full_v + kVStages;           // every consumer warp's P V landed
    uint64_t *      raw_full = empty_v + kVStages;         // raw V landed (the wideners reload a stage once widened)
    uint32_t *      qsave = reinterpret_cast<uint32_t *>(raw_full + kRawStages);  // [kTQ * 4 * 2][256 consumer threads]
    float4 *        frame_tab = reinterpret_cast<float4 *>(qsave + kTQ * 4 * 2 * 128 * kConsumers);  // [8 warps][kMaxBlocks]
    FrameInputs *   frame_in = reinterpret_cast<FrameInputs *>(frame_tab + 4 * kConsumers * kMaxBlocks);  // [kKStages]

    const WsBlock B = ws_block(K, plan, Lq, kBQ);
    const int     wg = B.wg, warp = B.warp, lane = B.lane, h = B.h, split = B.split;
    const int64_t q0 = B.q0, j_begin = B.j_begin, block_lim = B.block_lim;

    if (threadIdx.x == 0) {
        // full_k: the keys' TMA (lane 0's expect_tx) and warp 0's 32 lanes once their frame-input copies landed
        for (int i = 0; i < kKStages; ++i) tma::mbar_init(&full_k[i], 1 + 32), tma::mbar_init(&empty_k[i], 4 * kConsumers);
        for (int i = 0; i < kVStages; ++i) tma::mbar_init(&full_v[i], 1), tma::mbar_init(&empty_v[i], 4 * kConsumers);
        for (int i = 0; i < kRawStages; ++i) tma::mbar_init(&raw_full[i], 1);
        tma::mbar_fence_init();
    }
    __syncthreads();

    if (wg == 0) {  // producer: warp 0 loads the keys (and each frame's inputs), warps 1-3 load the raw values and widen them
        tma::regs_dec<kProducerRegs>();
        if (warp == 0) {  // lane 0 loads the keys; the warp copies each frame's inputs beside its first tile
            if (lane == 0) tma::prefetch_map(&maps.k);
            const int pt = K.rope.pairs_t, nb = K.layout.blocks();
            int       it = 0;
            for (TileCursor<BK> cur(K, j_begin, block_lim); cur.a < block_lim; cur.next(), ++it) {
                const int sk = it % kKStages;
                const int slot = K.view.slot_of_logical(cur.frame);
                tma::mbar_wait(&empty_k[sk], ((it / kKStages) & 1) ^ 1);
                if (it == 0 || cur.r == 0) {  // a frame's first tile (uniform)
                    FrameInputs *   fi = frame_in + sk;
                    const float *   meta = reinterpret_cast<const float *>(K.store + int64_t(slot) * K.layout.slot_bytes + K.layout.k_meta);
                    const float *   vmeta = reinterpret_cast<const float *>(K.store + int64_t(slot) * K.layout.slot_bytes + K.layout.v_meta);
                    if (lane < pt) cp_async4(&fi->cs[lane], tabs.cos + int64_t(cur.frame) * pt + lane), cp_async4(&fi->sn[lane], tabs.sin + int64_t(cur.frame) * pt + lane);
                    if (lane < nb) cp_async4(&fi->ks[lane], meta + lane * H + h), cp_async4(&fi->vs[lane], vmeta + lane * H + h);
                    if (F == int(KvFormat::int8))  // the means follow the block scales (4-byte aligned only)
#pragma unroll
                        for (int i = 0; i < 4; ++i) cp_async4(&fi->mean[4 * lane + i], meta + nb * H + h * D + 4 * lane + i);
                }
                cp_async_arrive(&full_k[sk]);  // every tile (the count is fixed): after this lane's copies
                if (lane == 0) {
                    tma::mbar_expect_tx(&full_k[sk], kTile);
                    tma::load_4d(kst + sk * kTile, &maps.k, &full_k[sk], 0, h, cur.r, slot);
                }
            }
            return;
        }
        // thread 32 keeps the raw stages full: tile `ahead` goes into the stage tile ahead - kRawStages left
        const bool     loader = threadIdx.x == 32;
        TileCursor<BK> ahead(K, j_begin, block_lim);
        int            it_ahead = 0;
        auto           load_raw = [&]() {
            if (ahead.a >= block_lim) return;
            const int rs = it_ahead % kRawStages;
            tma::mbar_expect_tx(&raw_full[rs], kTile);
            tma::load_4d(vraw + rs * kTile, &maps.v, &raw_full[rs], 0, h, ahead.r, K.view.slot_of_logical(ahead.frame));
            ahead.next(), ++it_ahead;
        };
        if (loader) {
            tma::prefetch_map(&maps.v);
            for (int i = 0; i < kRawStages; ++i) load_raw();
        }
        const int n_tiles = count_tiles<BK>(K, j_begin, block_lim);
        for (int it = 0; it < n_tiles; ++it) {
            const int sv = it % kVStages, rs = it % kRawStages;
            tma::mbar_wait(&raw_full[rs], (it / kRawStages) & 1);
            tma::mbar_wait(&empty_v[sv], ((it / kVStages) & 1) ^ 1);
            widen_v(vraw + rs * kTile, vst + sv * kVTile, warp - 1, lane);
            wg::fence_async_smem();  // the consumers' wgmma reads the values through the async proxy
            tma::bar_sync(3, 32 * kWideners);
            if (loader) {
                tma::mbar_arrive(&full_v[sv]);
                load_raw();  // into stage rs, read by all wideners (bar_sync above)
            }
        }
        return;
    }

    tma::regs_inc<kConsumerRegs>();
    const int     cw = wg - 1, g = lane / 4, t = lane % 4;
    const int64_t row0 = q0 + 64 * cw + 16 * warp + g, row1 = row0 + 8;
    const int     lim0 = int(key_limit(K, row0)), lim1 = int(key_limit(K, row1));  // key indices (< nk) fit 32 bits
    const int64_t wg_lim = min(block_lim, key_limit(K, min(Lq - 1, q0 + 64 * cw + 63)));
    const int     wg_first_lim = int(key_limit(K, min(Lq - 1, q0 + 64 * cw)));
    const int     pt = K.rope.pairs_t;

    // Q, quantized per row. Register [kk][r] holds row g + 8 (r % 2), dims 32 kk + 16 (r / 2) + 4 t + [0, 4).
    // The scale bounds every rotation of a temporal pair by the pair's norm, so it never changes.
    uint32_t   qf[4][4];
    uint32_t * my_qsave = qsave + (threadIdx.x - 128);
    float      sq0, sq1, iq0, iq1;  // Q's scale per row and its inverse
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
        iq0 = 1.0f / sq0, iq1 = 1.0f / sq1;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw[kk][r].x));
                const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw[kk][r].y));
                qf[kk][r] = quant4<kInt8>(a.x, a.y, b.x, b.y, r % 2 ? iq1 : iq0);
                if (kk < kTQ) my_qsave[((kk * 4 + r) * 2 + 0) * 128 * kConsumers] = raw[kk][r].x, my_qsave[((kk * 4 + r) * 2 + 1) * 128 * kConsumers] = raw[kk][r].y;
            }
    }
    int                 q_frame = -1;
    const FrameInputs * fin = frame_in;    // the current key frame's inputs (in its first tile's key stage)
    float               qm0 = 0.0f, qm1 = 0.0f;  // int8: s_q (q8 . mean of the frame), per row

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float       m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    float       c0 = 0.0f, c1 = 0.0f;          // O's rescale (maxima and sigma) of the tile just through the softmax
    float       sigma = 1.0f, rebase = 1.0f;   // O is kept in units of sigma; rebase: old sigma / new, once
    float4 *    tab = frame_tab + ((threadIdx.x - 128) / 32) * kMaxBlocks;
    const float sl2 = scale * 1.4426950408889634f;
    // S in the registers its MMA wrote; int8's s32 values become floats in place (kMagic + acc as bits),
    // and the scores' exponent arguments and P follow in the same 64 registers, for both formats.
    std::conditional_t<kInt8, int, float> sa[BK / 8][4];
    uint32_t    pa[BK / 16][4];  // P of the previous tile in f16, waiting for its P V

    auto release = [&](uint64_t * bar) {
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(bar);
    };
    // A new key frame, before its first S: rotate the temporal pairs by its angle, re-quantize them.
    auto new_frame = [&](int lf, int st) {
        q_frame = lf;
        fin = frame_in + st;
#pragma unroll
        for (int kk = 0; kk < kTQ; ++kk)
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2) {
                const int p0 = 16 * kk + 8 * h2 + 2 * t;  // this thread's pairs p0, p0 + 1 (both rows)
                if (16 * kk + 8 * h2 >= pt) continue;     // no thread holds a temporal pair here (uniform)
                float c[2], sw[2];
#pragma unroll
                for (int w = 0; w < 2; ++w) {
                    const bool temporal = p0 + w < pt;
                    c[w] = temporal ? fin->cs[p0 + w] : 1.0f, sw[w] = temporal ? fin->sn[p0 + w] : 0.0f;
                }
#pragma unroll
                for (int row = 0; row < 2; ++row) {
                    const int r = 2 * h2 + row;
                    float     x[4];
#pragma unroll
                    for (int w = 0; w < 2; ++w) {
                        const uint32_t raw = my_qsave[((kk * 4 + r) * 2 + w) * 128 * kConsumers];
                        const float2   v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw));
                        x[2 * w] = v.x * c[w] + v.y * sw[w], x[2 * w + 1] = v.y * c[w] - v.x * sw[w];  // R(-phi)
                    }
                    qf[kk][r] = quant4<kInt8>(x[0], x[1], x[2], x[3], row ? iq1 : iq0);
                }
            }
    };
    // ... and after its first S was issued: the frame's key scales, its largest value scale (O's new unit)
    // and each block's ratio to it.
    auto frame_consts = [&]() {
        const int   nb = K.layout.blocks();  // lane b: block b
        const float ks = lane < nb ? fin->ks[lane] : 1.0f;
        const float vs = lane < nb ? fin->vs[lane] : 0.0f;
        float       vmax = vs;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) vmax = fmaxf(vmax, __shfl_xor_sync(0xffffffffu, vmax, off));
        const float nsig = vmax > 0.0f ? vmax : 1.0f;
        // 2^-64: a block of zero values still has its keys' P (P' / ratio) in the row sums
        const float ratio = fmaxf(vs / nsig, 0x1p-64f);
        __syncwarp();
        if (lane < nb) tab[lane] = make_float4(log2f(ratio), 1.0f / ratio, ks, 0.0f);
        __syncwarp();
        rebase = __fdividef(sigma, nsig), sigma = nsig;
    };
    // int8 keys: the frame's mean term, before the first S is issued (S's registers are free then)
    auto frame_mean = [&]() {
        if constexpr (kInt8) {
            // a thread's dims 32 kk + 16 half + 4 t + i (a loop over i: unrolled, ptxas spills)
            float a0 = 0.0f, a1 = 0.0f;
#pragma unroll 1
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int kk = 0; kk < 4; ++kk)
#pragma unroll
                    for (int half = 0; half < 2; ++half) {
                        const float mm = fin->mean[32 * kk + 16 * half + 4 * t + i];
                        a0 = fmaf(s8_value(qf[kk][2 * half], i), mm, a0);
                        a1 = fmaf(s8_value(qf[kk][2 * half + 1], i), mm, a1);
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
    float bc0, bc1;    // the tile's two blocks' key scales (frame table), read at issue
    int   blk0, blk1;  // and the blocks
    // int8: S's accumulators to kMagic's bits (|acc| < 2^22, so kMagic + acc stays in [2^23, 2^24), where
    // the float bits count units), before the ping-pong barrier, off the other warpgroup's path. The bits
    // come from a kernel argument (acc_init) and each move is pinned by an empty asm: from a constant, the
    // compiler sank the 64 moves past the barrier, next to the MMA (docs/KV_FORMATS.md, step 14).
    auto preset = [&]() {
        if constexpr (kInt8) {
#pragma unroll
            for (int j = 0; j < BK / 8; ++j)
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    sa[j][c] = acc_init;
                    asm volatile("" : "+r"(sa[j][c]));
                }
        }
    };
    auto mma_s = [&](int st) {
        // one descriptor per tile; a k32 step adds 32 B to its start-address field (no carry: shared
        // addresses are below 2^18, so a 32-bit add on the low word)
        const uint64_t d0 = wg::desc_sw128(tma::saddr(kst + st * kTile), 16, 1024);
        wg::fence();
#pragma unroll
        for (int kk = 0; kk < D / 32; ++kk) {
            const uint64_t dk = (d0 & 0xFFFFFFFF00000000ull) | uint32_t(uint32_t(d0) + kk * 32 / 16);
            if constexpr (kInt8) wg::mma_m64n128k32_s8(sa, qf[kk], dk, true);
            else wg::mma_m64n128k32_e4m3(sa, qf[kk], dk, kk > 0);
        }
        wg::commit();
    };
    // Around S of tile `it`, outside the ping-pong section (only the MMAs' issue is inside: work in it
    // delays the other warpgroup's): before, the keys, a new frame's Q and int8's preset; after, the new
    // frame's constants and the tile's key scales.
    bool fresh = false;
    auto pre_s = [&](int it, int lf) {
        const int st = it % kKStages;
        tma::mbar_wait(&full_k[st], (it / kKStages) & 1);
        fresh = __any_sync(0xffffffffu, lf != q_frame);  // uniform (a vote: no shuffle's latency)
        if (fresh) new_frame(lf, st), frame_mean();
        preset();
    };
    auto post_s = [&](int r) {
        if (fresh) frame_consts();
        blk0 = r / kKvBlockTokens, blk1 = min(blk0 + 1, K.layout.blocks() - 1);
        bc0 = tab[blk0].z, bc1 = tab[blk1].z;
    };
    // O[64 x D] += P' V of tile `it` (f16 values as N-major B, as attention_ws.cu)
    auto wait_v = [&](int it) { tma::mbar_wait(&full_v[it % kVStages], (it / kVStages) & 1); };
    auto issue_pv = [&](int it) {  // after wait_v(it)
        const int st = it % kVStages;
        const uint64_t d0 = wg::desc_sw128(tma::saddr(vst + st * kVTile), BK * 128, 1024);  // + 2 KB per k16 step
        wg::fence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk) wg::mma_m64n128k16<1, true>(o, pa[kk], d0 + uint64_t(kk * 16 * 128 / 16));
        wg::commit();
    };
    // partial tiles masked (S as floats; int8: kMagic + acc)
    auto mask_s = [&](int j0, int jend) {
        if (__any_sync(0xffffffffu, j0 + BK > min(jend, wg_first_lim))) {  // partial tile (uniform)
            // key 8 j + 2 t + c is visible while 8 j + c < n - 2 t: one compare and one select a score
            const int n0 = min(lim0, jend) - j0 - 2 * t, n1 = min(lim1, jend) - j0 - 2 * t;
#pragma unroll
            for (int j = 0; j < BK / 8; ++j)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    set_f(sa[j][c], 8 * j + c < n0 ? as_f(sa[j][c]) : -INFINITY);
                    set_f(sa[j][2 + c], 8 * j + c < n1 ? as_f(sa[j][2 + c]) : -INFINITY);
                }
        }
    };
    // S to P' in place against the bases b0s, b1s (log2 units), each a single FFMA before the exp2:
    // score = a_b acc + qm (a_b = s_q s_k of the key's 64-block), + the block's log2 ratio; the blocks'
    // ratios (ta, tb) for the row sums (pa_sums) are read here.
    float  inc0, inc1;
    float2 ta, tb;  // the tile's two blocks' {log2 ratio, 1 / ratio}
    auto exps = [&](float b0s, float b1s) {
        ta = *reinterpret_cast<const float2 *>(&tab[blk0]), tb = *reinterpret_cast<const float2 *>(&tab[blk1]);  // log2 ratio, 1 / ratio
        const float a00 = sq0 * bc0, a01 = sq0 * bc1, a10 = sq1 * bc0, a11 = sq1 * bc1;
        const float e00 = a00 * sl2, e01 = a01 * sl2, e10 = a10 * sl2, e11 = a11 * sl2;
        // (kMagic folded in: its rounding here is below one unit of acc)
        const float f00 = fmaf(qm0, sl2, -b0s) - kMagic * e00 + ta.x, f01 = fmaf(qm0, sl2, -b0s) - kMagic * e01 + tb.x;
        const float f10 = fmaf(qm1, sl2, -b1s) - kMagic * e10 + ta.x, f11 = fmaf(qm1, sl2, -b1s) - kMagic * e11 + tb.x;
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
            const bool second = j >= BK / 16;
            const float ea = second ? e01 : e00, fa = second ? f01 : f00, eb = second ? e11 : e10, fb = second ? f11 : f10;
#pragma unroll
            for (int c = 0; c < 4; ++c) set_f(sa[j][c], fast_exp2(fmaf(as_f(sa[j][c]), c < 2 ? ea : eb, c < 2 ? fa : fb)));
        }
    };
    // The row sums from P' as packed in f16 (pa), per row and block a tree of f16x2 adds (half
    // the instructions of fp32 FADDs; the sums the P V sees; a P' past 65504 sums to inf and fails the vote)
    auto pa_sums = [&]() {
        __half2 s[2][2];
#pragma unroll
        for (int row = 0; row < 2; ++row)
#pragma unroll
            for (int b = 0; b < 2; ++b) {
                __half2 v[4];
#pragma unroll
                for (int i = 0; i < 4; ++i)
                    v[i] = __hadd2(*reinterpret_cast<const __half2 *>(&pa[4 * b + i][row]), *reinterpret_cast<const __half2 *>(&pa[4 * b + i][2 + row]));
                s[row][b] = __hadd2(__hadd2(v[0], v[1]), __hadd2(v[2], v[3]));
            }
        auto f = [](__half2 h) { const float2 x = __half22float2(h); return x.x + x.y; };
        inc0 = fmaf(f(s[0][0]), ta.y, f(s[0][1]) * tb.y), inc1 = fmaf(f(s[1][0]), ta.y, f(s[1][1]) * tb.y);
    };
    // Tile [j0, jend) in K stage st: P' in place, the row sums, and O's rescale (c0, c1; rescale: needed).
    // First against the running maxima as they are (lazy rescaling, FlashAttention-4): while no P of the
    // tile exceeds kSlack (the row sums bound them; one vote per warpgroup), they stand and O needs no
    // rescale. Otherwise S is recomputed from the stage (released only after the vote) and settled: the
    // maxima move to the tile's. A block's first tile is settled directly.
    bool  rescale = false;
    float b0 = 0.0f, b1 = 0.0f, cm0 = 0.0f, cm1 = 0.0f;  // bases m * sl2 (0 while a row has no maximum)
    auto  settle = [&](int j0, int jend) {
        mask_s(j0, jend);
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
        // -inf (a fully masked block) stays -inf: scales are positive
        r00 -= kMagic, r01 -= kMagic, r10 -= kMagic, r11 -= kMagic;  // exact
        const float mx0 = fmaxf(m0, fmaxf(fmaf(r00, sq0 * bc0, qm0), fmaf(r01, sq0 * bc1, qm0)));
        const float mx1 = fmaxf(m1, fmaxf(fmaf(r10, sq1 * bc0, qm1), fmaf(r11, sq1 * bc1, qm1)));
        const float nb0 = mx0 == -INFINITY ? 0.0f : mx0 * sl2, nb1 = mx1 == -INFINITY ? 0.0f : mx1 * sl2;
        cm0 = fast_exp2(m0 * sl2 - nb0), cm1 = fast_exp2(m1 * sl2 - nb1);  // 0 at a row's first maximum
        c0 = cm0 * rebase, c1 = cm1 * rebase;
        rescale = true;
        rebase = 1.0f;
        m0 = mx0, m1 = mx1;
        b0 = nb0, b1 = nb1;
        exps(nb0, nb1);
    };
    auto settle_l = [&]() { l0 = fmaf(l0, cm0, inc0), l1 = fmaf(l1, cm1, inc1); };
    auto lazy_vote = [&](bool ok) {
        if (!wg_all(ok, 5 + cw)) return false;
        l0 += inc0, l1 += inc1;
        c0 = c1 = rebase;
        rescale = rebase != 1.0f;
        rebase = 1.0f;
        return true;
    };
    auto recompute_s = [&](int st) {
        preset();
        mma_s(st);
        wg::wait<0>();
        wg::fence_regs(sa);
    };
    // O, in the previous tile's maxima and sigma, follows the new ones (before the next P V is added)
    auto rescale_o = [&]() {
        if (!rescale) return;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) o[nd][0] *= c0, o[nd][1] *= c0, o[nd][2] *= c1, o[nd][3] *= c1;
    };
    // P in f16 as the A fragments of the eight k16 steps: the C layout of two adjacent key n-tiles is the
    // A layout of one k16 step (FA2)
    auto pack_p = [&]() {
#pragma unroll
        for (int j = 0; j < BK / 8; ++j) {
            pa[j / 2][(j % 2) * 2 + 0] = pack_f16(as_f(sa[j][0]), as_f(sa[j][1]));
            pa[j / 2][(j % 2) * 2 + 1] = pack_f16(as_f(sa[j][2]), as_f(sa[j][3]));
        }
    };

    const int n_tiles = __shfl_sync(0xffffffffu, count_tiles<BK>(K, j_begin, block_lim), 0);
    const int n_active = __shfl_sync(0xffffffffu, count_tiles<BK>(K, j_begin, wg_lim), 0);
    // Ping-pong as attention_ws.cu: the two warpgroups issue their MMAs in turn, each one's softmax under
    // the other's tensor-core work.
    auto pp_sync = [&]() { tma::bar_sync(1 + cw, 256); };
    const int pp_other = 1 + (cw ^ 1), pp_last = cw == 1 ? n_tiles - 1 : -1;  // the last tile arrives nowhere
    auto pp_arrive = [&](int it) {
        if (it != pp_last) tma::bar_arrive(pp_other, 256);
    };
    if (cw == 1 && n_tiles > 0) tma::bar_arrive(1, 256);

    // as attention_ws.cu: S of tile `it` issued with the P V of tile it - 1 (ptxas puts the wait for that
    // P V before the exponentials, so the softmax runs under the other warpgroup's MMAs: KV_FORMATS step 14)
    RingCursor32 cur(K.view.tokens_per_frame, int(j_begin), int(block_lim));
    int          it = 0;
    if (n_active > 0) {
        pre_s(0, cur.frame);
        pp_sync();
        mma_s(0);
        pp_arrive(0);
        post_s(cur.r);
        wg::wait<0>();
        wg::fence_regs(sa);
        settle(cur.a, cur.end);
        release(&empty_k[0]);
        pack_p();
        pa_sums();
        settle_l();
        for (it = 1; it < n_active; ++it) {
            cur.next();
            const int st = it % kKStages;
            pre_s(it, cur.frame);
            wait_v(it - 1);
            pp_sync();
            mma_s(st);
            issue_pv(it - 1);
            pp_arrive(it);
            post_s(cur.r);
            wg::wait<1>();  // S landed; P V still in flight
            wg::fence_regs(sa);
            mask_s(cur.a, cur.end);
            exps(b0, b1);
            wg::wait<0>();  // P V done: P' goes to f16, its sums from there
            wg::fence_regs(o);
            release(&empty_v[(it - 1) % kVStages]);
            pack_p();
            pa_sums();
            // (a row without visible keys has P = 0: every row has its maximum after the first tile)
            if (!lazy_vote(inc0 <= kSlack && inc1 <= kSlack)) {
                recompute_s(st);
                settle(cur.a, cur.end);
                pack_p();
                pa_sums();
                settle_l();
            }
            release(&empty_k[st]);
            rescale_o();
        }
        wait_v(n_active - 1);
        issue_pv(n_active - 1);
        wg::wait<0>();
        wg::fence_regs(o);
        release(&empty_v[(n_active - 1) % kVStages]);
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

template <int F>
cudaError_t launch(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & K, const SplitPlan & plan, float scale, cudaStream_t stream) {
    Maps      maps{};
    const int tpf = K.view.tokens_per_frame, slots = K.view.capacity();
    if (!tma::encode(maps.k, K.store + K.layout.k_data, false, D, heads, tpf, slots, K.layout.slot_bytes, BK, 128, true) ||
        !tma::encode(maps.v, K.store + K.layout.v_data, false, D, heads, tpf, slots, K.layout.slot_bytes, BK, 128, true))
        return cudaErrorNotSupported;
    auto *            kern = attention_ws8_kernel<F>;
    static const bool regs_ok = [kern] {
        cudaFuncAttributes a{};
        return cudaFuncGetAttributes(&a, kern) == cudaSuccess && a.numRegs == (65536 / kThreads) / 8 * 8;
    }();
    if (!regs_ok) return cudaErrorNotSupported;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem));
    if (e != cudaSuccess) return e;
    const dim3 grid(unsigned((Lq + kBQ - 1) / kBQ), unsigned(heads), unsigned(plan.n));
    kern<<<grid, kThreads, kSmem, stream>>>(maps, static_cast<bf16 *>(out), static_cast<const bf16 *>(q), Lq, heads, K, plan, rope_tabs(K), scale, kMagicBits);
    return cudaGetLastError();
}

} // namespace

bool attention_ws8_supported(const AttnKeys & keys, int head_dim) {
    return tma::hopper_ready() && head_dim == D && keys.ring && keys.nk > 0 &&
           (keys.layout.fmt == KvFormat::fp8 || keys.layout.fmt == KvFormat::int8) && (keys.tail_frames == 0 || keys.tail_dtype == DType::bf16) &&
           keys.rope.pairs_t <= 16 * kTQ && keys.view.visible_frames() > keys.tail_frames && keys.layout.blocks() <= kMaxBlocks;
}

cudaError_t attention_ws8(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream) {
    if (!attention_ws8_supported(keys, head_dim)) return cudaErrorInvalidValue;
    const int hist = keys.view.visible_frames() - keys.tail_frames;
    const int n = keys.nsplit > 1 ? keys.nsplit : 1;
    if (keys.tail_frames > 0 && (n < 2 || !keys.split_scratch)) return cudaErrorNotSupported;  // the tail needs a split of its own
    if (n > 1 && !keys.split_scratch) return cudaErrorInvalidValue;
    SplitPlan plan;
    plan.f0 = 0, plan.nf = hist, plan.n = keys.tail_frames > 0 ? n - 1 : n;
    cudaError_t e = keys.layout.fmt == KvFormat::int8 ? launch<int(KvFormat::int8)>(out, q, Lq, heads, keys, plan, scale, stream)
                                                      : launch<int(KvFormat::fp8)>(out, q, Lq, heads, keys, plan, scale, stream);
    if (e != cudaSuccess) return e;
    if (keys.tail_frames > 0) {
        e = attention_ws_tail(out, q, Lq, heads, head_dim, keys, n - 1, scale, stream);
        if (e != cudaSuccess) return e;
    }
    return n > 1 ? merge_splits<D>(out, keys.split_scratch, Lq, heads, n, stream) : cudaSuccess;
}

} // namespace avs::kernels
