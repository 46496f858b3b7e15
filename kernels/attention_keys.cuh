// Device-side key access shared by the attention kernels: which keys a query row sees, where key j
// lives (plain row, or ring slot via RingView), and staging a tile of K (rotated by its read-time
// RoPE position) and V into shared memory as bf16. Included by .cu files only.
#pragma once

#include "kernels/attention.cuh"
#include "kernels/common.cuh"

namespace avs::kernels {

// RoPE tables of a ring read: [t: frames x pairs_t][h: grid_h x pairs_h][w: grid_w x pairs_w], cos then sin.
struct RopeTabs {
    const float * cos = nullptr;
    const float * sin = nullptr;
    int64_t       t = 0, h = 0, w = 0;  // entries per axis block
};

AVS_HD int64_t rope_tab_entries(const RingView & v, const RopeLayout & r, int64_t * t = nullptr, int64_t * h = nullptr) {
    const int64_t tt = int64_t(v.visible_frames()) * r.pairs_t, hh = int64_t(r.grid_h) * r.pairs_h;
    if (t) *t = tt;
    if (h) *h = hh;
    return tt + hh + int64_t(r.grid_w) * r.pairs_w;
}

inline RopeTabs rope_tabs(const AttnKeys & K) {
    RopeTabs T;
    if (!K.ring) return T;
    const int64_t total = rope_tab_entries(K.view, K.rope, &T.t, &T.h);
    T.w   = total - T.t - T.h;
    T.cos = K.rope_tab;
    T.sin = K.rope_tab + total;
    return T;
}

// Number of leading keys query `row` may see (block-causal when q_block > 0).
__device__ __forceinline__ int64_t key_limit(const AttnKeys & K, int64_t row) {
    return K.q_block > 0 ? min(K.nk, (row / K.q_block + 1) * K.k_block) : K.nk;
}

// Physical row of logical key j, and (ring) its frame's logical index and grid position.
struct KeyRow {
    int64_t row;
    int     frame, i, j;
};
__device__ __forceinline__ KeyRow key_row(const AttnKeys & K, int64_t j) {
    if (!K.ring) return {j, 0, 0, 0};
    const int tpf = K.view.tokens_per_frame;
    const int l = int(j / tpf), r = int(j % tpf);
    return {int64_t(K.view.slot_of_logical(l)) * tpf + r, l, r / K.rope.grid_w, r % K.rope.grid_w};
}

// Rotate the pair p of a ring key by its table entry.
__device__ __forceinline__ void rotate_key_pair(const AttnKeys & K, const RopeTabs & T, const KeyRow & kr, int p, float & k0,
                                                float & k1) {
    const RopeLayout & R = K.rope;
    int64_t ti;
    if (p < R.pairs_t) ti = int64_t(kr.frame) * R.pairs_t + p;
    else if (p < R.pairs_t + R.pairs_h) ti = T.t + int64_t(kr.i) * R.pairs_h + (p - R.pairs_t);
    else ti = T.t + T.h + int64_t(kr.j) * R.pairs_w + (p - R.pairs_t - R.pairs_h);
    const float c = T.cos[ti], s = T.sin[ti];
    const float r0 = k0 * c - k1 * s, r1 = k0 * s + k1 * c;
    k0 = r0, k1 = r1;
}

// Per-key facts of one tile, computed once per key rather than per element.
struct KeyInfo {
    int32_t row;    // physical row (token) in the K/V arrays, -1 past the limit
    int32_t t_off;  // frame's row in the temporal RoPE table (ring)
    int32_t h_off;  // grid row's row in the h table
    int32_t w_off;  // grid column's row in the w table
};

// 8 consecutive K/V elements as floats (16 bytes of bf16, or 32 of f32).
__device__ __forceinline__ void load8(const bf16 * p, float (&v)[8]) {
    const uint4 u = *reinterpret_cast<const uint4 *>(p);
    const __nv_bfloat162 * b = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(b[i]);
        v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void load8(const float * p, float (&v)[8]) {
    const float4 a = *reinterpret_cast<const float4 *>(p), b = *reinterpret_cast<const float4 *>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

// Stage keys [j0, j0 + bk) of head h: K rotated into ks[key][d] (row stride ldk), V transposed into
// vt[d][key] (row stride ldv), both bf16; keys at or past `limit` are zero. `info` is bk entries of
// shared scratch. Threads walk keys fastest, so the transposed V stores hit distinct banks and the
// 16-byte K stores of a quarter-warp cover all 32 banks (ldk = D + 8).
template <int D, typename TK>
__device__ __forceinline__ void stage_kv_tile(const AttnKeys & K, const RopeTabs & T, int H, int h, int64_t j0, int bk, int64_t limit,
                                              bf16 * ks, int ldk, bf16 * vt, int ldv, KeyInfo * info) {
    const RopeLayout & R = K.rope;
    for (int t = threadIdx.x; t < bk; t += blockDim.x) {
        const int64_t j = j0 + t;
        KeyInfo       ki{-1, 0, 0, 0};
        if (j < limit) {
            const KeyRow kr = key_row(K, j);
            ki.row   = int32_t(kr.row);
            ki.t_off = kr.frame * R.pairs_t;
            ki.h_off = int32_t(T.t) + kr.i * R.pairs_h - R.pairs_t;               // index by pair p directly
            ki.w_off = int32_t(T.t + T.h) + kr.j * R.pairs_w - R.pairs_t - R.pairs_h;
        }
        info[t] = ki;
    }
    __syncthreads();
    const TK * kp = static_cast<const TK *>(K.k);
    const TK * vp = static_cast<const TK *>(K.v);
    constexpr int kChunks = D / 8;
    for (int e = threadIdx.x; e < bk * kChunks; e += blockDim.x) {
        const int     t = e % bk, c = e / bk;
        const KeyInfo ki = info[t];
        float k[8], v[8];
        if (ki.row >= 0) {
            const int64_t off = (int64_t(ki.row) * H + h) * D + 8 * c;
            load8(kp + off, k);
            load8(vp + off, v);
            if (K.ring) {
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const int p  = 4 * c + u;
                    const int ti = p < R.pairs_t ? ki.t_off + p : (p < R.pairs_t + R.pairs_h ? ki.h_off + p : ki.w_off + p);
                    const float cs = T.cos[ti], sn = T.sin[ti];
                    const float r0 = k[2 * u] * cs - k[2 * u + 1] * sn, r1 = k[2 * u] * sn + k[2 * u + 1] * cs;
                    k[2 * u] = r0, k[2 * u + 1] = r1;
                }
            }
        } else {
#pragma unroll
            for (int u = 0; u < 8; ++u) k[u] = v[u] = 0.0f;
        }
        uint4 kq;
        __nv_bfloat162 * kb = reinterpret_cast<__nv_bfloat162 *>(&kq);
#pragma unroll
        for (int u = 0; u < 4; ++u) kb[u] = __floats2bfloat162_rn(k[2 * u], k[2 * u + 1]);
        *reinterpret_cast<uint4 *>(ks + t * ldk + 8 * c) = kq;
#pragma unroll
        for (int u = 0; u < 8; ++u) vt[(8 * c + u) * ldv + t] = __float2bfloat16_rn(v[u]);
    }
}

} // namespace avs::kernels
