// Device-side key access shared by the attention kernels: which keys a query row sees, where key j
// lives (plain row, or ring slot via RingView), and the RoPE table rows a key's rotation reads.
// Included by .cu files only.
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

// Where key j lives: base pointers of its K and V rows ([rows, H, D] from `row`) and their dtype.
// Ring keys come from the store's slot (f32/bf16 formats on this path) or, for the last
// tail_frames frames, from the tail tensors.
struct KeySrc {
    const void * k;
    const void * v;
    DType        dtype;
    int64_t      row;
    int          frame;  // logical frame (ring)
};
__device__ __forceinline__ KeySrc key_src(const AttnKeys & K, int64_t j) {
    if (!K.ring) return {K.k, K.v, K.dtype, j, 0};
    const int tpf = K.view.tokens_per_frame;
    const int l = int(j / tpf), r = int(j % tpf);
    const int hist = K.view.visible_frames() - K.tail_frames;
    if (l >= hist) return {K.tail_k, K.tail_v, K.tail_dtype, int64_t(l - hist) * tpf + r, l};
    const uint8_t * slot = K.store + int64_t(K.view.slot_of_logical(l)) * K.layout.slot_bytes;
    return {slot + K.layout.k_data, slot + K.layout.v_data, K.layout.fmt == KvFormat::f32 ? DType::f32 : DType::bf16, r, l};
}
__device__ __forceinline__ float load_elem(const void * p, DType dt, int64_t i) {
    return dt == DType::f32 ? static_cast<const float *>(p)[i] : to_f32(static_cast<const bf16 *>(p)[i]);
}

// Rotate pair p of a ring key of logical frame `frame` by its read-time temporal angle. Stored keys
// already carry their spatial rotation (a rope pass at temporal position 0), so pairs past pairs_t stay.
__device__ __forceinline__ void rotate_key_pair(const AttnKeys & K, const RopeTabs & T, int frame, int p, float & k0, float & k1) {
    const RopeLayout & R = K.rope;
    if (p >= R.pairs_t) return;
    const int64_t ti = int64_t(frame) * R.pairs_t + p;
    const float c = T.cos[ti], s = T.sin[ti];
    const float r0 = k0 * c - k1 * s, r1 = k0 * s + k1 * c;
    k0 = r0, k1 = r1;
}

} // namespace avs::kernels
