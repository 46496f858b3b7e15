// Device pieces shared by the two tensor-core attention kernels (attention_mma.cu: mma.sync / wgmma
// with a block barrier per tile; attention_ws.cu: Hopper, warp-specialized): key tiles that never cross
// a frame, Q-side temporal RoPE, the exp2 softmax arithmetic and the split-KV merge. .cu files only.
#pragma once

#include "kernels/attention_keys.cuh"
#include "kernels/common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace avs::kernels::attn {

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&v);
}

__device__ __forceinline__ uint32_t lds32(const bf16 * p) { return *reinterpret_cast<const uint32_t *>(p); }

// Two e4m3 values (bytes 2*half and 2*half+1 of w) as floats times 2^-8, exactly: the e4m3 bits
// shifted into an fp16 (exponent bias 15 instead of 7, subnormals included), then widened.
__device__ __forceinline__ float2 e4m3x2_scaled(uint32_t w, int half) {
    const uint32_t v = __byte_perm(w, 0u, half ? 0x3424u : 0x1404u);  // byte b -> b << 8 in each 16-bit lane
    const uint32_t h = (v & 0x80008000u) | ((v >> 1) & 0x3F803F80u);
    return __half22float2(*reinterpret_cast<const __half2 *>(&h));
}

// 2^x on the SFU; -inf gives +0 (masked keys)
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// -inf when key >= n, else +0, without a predicate: a predicated write to an MMA accumulator counts as
// a divergent path for ptxas, which then serializes every wgmma of the kernel.
__device__ __forceinline__ float mask_bias(int key, int n) { return __int_as_float(~((key - n) >> 31) & int(0xff800000u)); }

// Keys are consumed in tiles of at most BK that never cross a frame boundary (a 1560-token frame is
// 24 full 64-key tiles and one of 24 keys), so a tile has one temporal RoPE angle per pair.
template <int BK> __device__ __forceinline__ int64_t tile_end(const AttnKeys & K, int64_t j0, int64_t limit) {
    int64_t e = min(j0 + BK, limit);
    if (K.ring) e = min(e, (j0 / K.view.tokens_per_frame + 1) * K.view.tokens_per_frame);
    return e;
}

// Walks the key tiles of [begin, lim) as tile_end cuts them, without a 64-bit division per tile: `a`
// and `end` bound the current tile, `frame` and `r` are its first key's logical frame and offset
// (ring keys; tpf = 0 for plain keys).
template <int BK> struct TileCursor {
    int64_t a, end, lim;
    int     frame, r, tpf;
    __device__ __forceinline__ TileCursor(const AttnKeys & K, int64_t begin, int64_t limit) : a(begin), lim(limit) {
        tpf   = K.ring ? K.view.tokens_per_frame : 0;
        frame = tpf ? int(begin / tpf) : 0;
        r     = tpf ? int(begin - int64_t(frame) * tpf) : 0;
        set_end();
    }
    __device__ __forceinline__ void set_end() { end = tpf ? min(lim, a + min(BK, tpf - r)) : min(lim, a + BK); }
    __device__ __forceinline__ void next() {
        r += int(end - a), a = end;
        if (r == tpf) r = 0, ++frame;
        set_end();
    }
};

// Number of tiles a TileCursor visits over [begin, lim); ring reads begin at a frame start.
template <int BK> __device__ __forceinline__ int count_tiles(const AttnKeys & K, int64_t begin, int64_t lim) {
    if (lim <= begin) return 0;
    const int64_t n = lim - begin;
    if (!K.ring) return int((n + BK - 1) / BK);
    const int64_t tpf = K.view.tokens_per_frame, frames = n / tpf, rem = n - frames * tpf;
    return int(frames * ((tpf + BK - 1) / BK) + (rem + BK - 1) / BK);
}

// Temporal RoPE pairs live in the first kTK 16-column blocks of a head (22 pairs of 64 for
// head_dim 128, 12 of 32 for 64).
template <int D> __host__ __device__ constexpr int temporal_blocks() { return (D / 2 - 2 * (D / 6) + 7) / 8; }

// Ring keys are stored with their spatial rotation only. Rather than rotating every key tile by its
// frame's temporal angle phi, the (few) temporal Q pairs are rotated by -phi whenever the key frame
// changes: q . R(phi) k = (R(-phi) q) . k. qf / q_orig are m16n8k16 A fragments: register [kd][r]
// holds RoPE pair 8 kd + t (r = 0, 1) or 8 kd + 4 + t (r = 2, 3).
template <int D>
__device__ __forceinline__ void rotate_q_temporal(uint32_t (&qf)[D / 16][4], const uint32_t (&q_orig)[temporal_blocks<D>()][4],
                                                  const AttnKeys & K, const RopeTabs & tabs, int frame, int t) {
    const int pt = K.rope.pairs_t;
#pragma unroll
    for (int kd = 0; kd < temporal_blocks<D>(); ++kd)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            // branch-free (a select): fragments written on a divergent path make ptxas serialize wgmma
            const int    p = 8 * kd + 4 * (r / 2) + t;
            const bool   temporal = p < pt;
            const int64_t i = int64_t(frame) * pt + (temporal ? p : 0);
            const float  c = __ldg(tabs.cos + i), sn = __ldg(tabs.sin + i);
            const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&q_orig[kd][r]));
            const uint32_t rot = pack_bf16(x.x * c + x.y * sn, x.y * c - x.x * sn);  // R(-phi)
            qf[kd][r] = temporal ? rot : q_orig[kd][r];
        }
}

// Q A-fragments of rows r0 and r0 + 8 (zeros past Lq), lane (g, t) of an m16n8k16 warp tile.
template <int D>
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[D / 16][4], const bf16 * q, int64_t r0, int64_t Lq, int H, int h, int t) {
    const int64_t r1  = r0 + 8;
    const bf16 *  q0p = q + (r0 * H + h) * D + 2 * t;
    const bf16 *  q1p = q + (r1 * H + h) * D + 2 * t;
#pragma unroll
    for (int kd = 0; kd < D / 16; ++kd) {
        qf[kd][0] = r0 < Lq ? lds32(q0p + 16 * kd) : 0u;
        qf[kd][1] = r1 < Lq ? lds32(q1p + 16 * kd) : 0u;
        qf[kd][2] = r0 < Lq ? lds32(q0p + 16 * kd + 8) : 0u;
        qf[kd][3] = r1 < Lq ? lds32(q1p + 16 * kd + 8) : 0u;
    }
}

// Normalise and store the two rows of a thread's m16 C fragments (o[nd]: columns 8 nd + 2t, +1), or
// with split-KV the fp32 partials and their log2-sum-exp2 (m * sl2 + log2 l) for the merge.
template <int D>
__device__ __forceinline__ void store_rows(const AttnKeys & K, bf16 * out, float (&o)[D / 8][4], float m0, float m1, float l0, float l1,
                                           float sl2, int64_t row0, int64_t Lq, int H, int h, int t, int split) {
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {  // the row sums across the 4 threads of each row
        l0 += __shfl_xor_sync(0xffffffffu, l0, off);
        l1 += __shfl_xor_sync(0xffffffffu, l1, off);
    }
    const int64_t row1 = row0 + 8;
    const float   i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    if (K.nsplit > 1) {
        float * po  = K.split_scratch + (int64_t(split) * Lq * H) * D;
        float * lse = K.split_scratch + int64_t(K.nsplit) * Lq * H * D + int64_t(split) * Lq * H;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) {
            const int col = 8 * nd + 2 * t;
            if (row0 < Lq) *reinterpret_cast<float2 *>(po + (row0 * H + h) * D + col) = make_float2(o[nd][0] * i0, o[nd][1] * i0);
            if (row1 < Lq) *reinterpret_cast<float2 *>(po + (row1 * H + h) * D + col) = make_float2(o[nd][2] * i1, o[nd][3] * i1);
        }
        if (t == 0) {
            if (row0 < Lq) lse[row0 * H + h] = l0 > 0.0f ? m0 * sl2 + log2f(l0) : -INFINITY;
            if (row1 < Lq) lse[row1 * H + h] = l1 > 0.0f ? m1 * sl2 + log2f(l1) : -INFINITY;
        }
        return;
    }
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
        const int col = 8 * nd + 2 * t;
        if (row0 < Lq) *reinterpret_cast<uint32_t *>(out + (row0 * H + h) * D + col) = pack_bf16(o[nd][0] * i0, o[nd][1] * i0);
        if (row1 < Lq) *reinterpret_cast<uint32_t *>(out + (row1 * H + h) * D + col) = pack_bf16(o[nd][2] * i1, o[nd][3] * i1);
    }
}

// out[row, h, :] = sum_s w_s O_s / sum_s w_s with w_s = 2^(lse_s - max lse): one block per (row, head).
template <int D>
__global__ void merge_splits_kernel(bf16 * __restrict__ out, const float * __restrict__ scratch, int64_t Lq, int H, int n) {
    const int64_t rh = blockIdx.x;  // row * H + h
    const float * lse = scratch + int64_t(n) * Lq * H * D;
    float mx = -INFINITY;
    for (int s = 0; s < n; ++s) mx = fmaxf(mx, lse[int64_t(s) * Lq * H + rh]);
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < n; ++s) {
        const float l = lse[int64_t(s) * Lq * H + rh];
        const float w = l == -INFINITY ? 0.0f : exp2f(l - mx);
        num += w * scratch[(int64_t(s) * Lq * H + rh) * D + threadIdx.x];
        den += w;
    }
    out[rh * D + threadIdx.x] = __float2bfloat16_rn(den > 0.0f ? num / den : 0.0f);
}

// Launch the merge after a split-KV attention launch.
template <int D> inline cudaError_t merge_splits(void * out, const float * scratch, int64_t Lq, int heads, int n, cudaStream_t stream) {
    merge_splits_kernel<D><<<unsigned(Lq * heads), D, 0, stream>>>(static_cast<bf16 *>(out), scratch, Lq, heads, n);
    return cudaGetLastError();
}

// Split-KV: which frames the blocks of one launch read and where their partials go. blockIdx.z = s of n
// takes the whole frames [f0 + nf s / n, f0 + nf (s + 1) / n) (tiles still never cross a frame) and,
// when K.nsplit > 1, writes partial `slot0 + s` of K.nsplit. A launch may cover only part of the frames
// (the 8-bit kernel takes the history, the bf16 one the tail; the merge then combines all K.nsplit).
struct SplitPlan {
    int f0 = 0, nf = 0, n = 1, slot0 = 0;
};
// Every visible frame in K.nsplit shares, one launch.
inline SplitPlan split_plan(const AttnKeys & K) {
    SplitPlan p;
    p.n = K.nsplit > 1 ? K.nsplit : 1;
    p.nf = K.ring && K.view.tokens_per_frame > 0 ? int(K.nk / K.view.tokens_per_frame) : 0;
    return p;
}
// Narrows [begin, lim) to the share of split s.
__device__ __forceinline__ void split_range(const AttnKeys & K, const SplitPlan & P, int split, int64_t & begin, int64_t & lim) {
    begin = 0;
    if (K.nsplit <= 1) return;
    const int64_t tpf = K.view.tokens_per_frame;
    begin = (P.f0 + int64_t(P.nf) * split / P.n) * tpf;
    lim   = min(lim, (P.f0 + int64_t(P.nf) * (split + 1) / P.n) * tpf);
}

// A warp-specialized block's coordinates: its warpgroup and warp (warp-uniform by construction, a
// shuffle, so ptxas sees role branches as non-divergent and keeps the warpgroup MMAs asynchronous),
// head, split, first query row, and the keys [j_begin, block_lim) its split reads for its bq rows.
struct WsBlock {
    int     wg, warp, lane, h, split;
    int64_t q0, j_begin, block_lim;
};
__device__ __forceinline__ WsBlock ws_block(const AttnKeys & K, const SplitPlan & plan, int64_t Lq, int bq) {
    WsBlock b;
    b.wg = __shfl_sync(0xffffffffu, int(threadIdx.x / 128), 0), b.warp = __shfl_sync(0xffffffffu, int(threadIdx.x / 32) % 4, 0);
    b.lane = threadIdx.x % 32, b.h = blockIdx.y, b.split = int(blockIdx.z);
    b.q0 = int64_t(blockIdx.x) * bq;
    b.block_lim = key_limit(K, min(Lq - 1, b.q0 + bq - 1));
    split_range(K, plan, b.split, b.j_begin, b.block_lim);
    return b;
}

} // namespace avs::kernels::attn
