// CPU twin of the ring KV write and the attention kernels. The twin may gather the visible frames
// into a scratch copy (the CUDA kernel reads the ring fragments in place); the math is the same:
// keys rotated at read time by their RingView position, fp32 softmax.
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace avs {
namespace {

constexpr int64_t kQueryBlock = 256;  // bounds the score scratch to 256 x keys floats

void store_row(const float * src, const Tensor & store, int64_t elem_offset, int64_t n) {
    if (store.dtype() == DType::f32) {
        std::memcpy(store.data<float>() + elem_offset, src, size_t(n) * 4);
    } else {  // bf16 (validated by KvCacheConfig)
        uint16_t * d = store.data<uint16_t>() + elem_offset;
        for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
    }
}

void load_row(const Tensor & store, int64_t elem_offset, float * dst, int64_t n) {
    if (store.dtype() == DType::f32) {
        std::memcpy(dst, store.data<float>() + elem_offset, size_t(n) * 4);
    } else {
        const uint16_t * s = store.data<uint16_t>() + elem_offset;
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
    }
}

} // namespace

void cpu_attend(float * out, const float * q, const float * K, const float * V, int64_t Lq, int64_t Nk, int64_t H, int64_t D,
                float scale, const std::function<int64_t(int64_t)> & key_limit, std::vector<float> & S) {
    const int64_t ld = H * D;
    S.resize(size_t(std::min(Lq, kQueryBlock) * std::max<int64_t>(Nk, 1)));
    for (int64_t h = 0; h < H; ++h) {
        for (int64_t r0 = 0; r0 < Lq; r0 += kQueryBlock) {
            const int64_t rows = std::min(kQueryBlock, Lq - r0);
            cpu_sgemm_nt(rows, Nk, D, q + r0 * ld + h * D, ld, K + h * D, ld, S.data(), Nk, false);
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t lim = key_limit(r0 + r);
                std::fill(S.data() + r * Nk + lim, S.data() + (r + 1) * Nk, -INFINITY);
            }
            cpu_softmax_rows(S.data(), rows, Nk, scale);
            cpu_sgemm_nn(rows, D, Nk, S.data(), Nk, V + h * D, ld, out + r0 * ld + h * D, ld);
        }
    }
}

Status CpuBackend::kv_write(const Tensor & k_store, const Tensor & v_store, const RingView & ring, int64_t frame0,
                            const Tensor & k, const Tensor & v) {
    const int64_t per_frame = int64_t(ring.tokens_per_frame) * k.dim(1) * k.dim(2);
    const int64_t frames    = k.numel() / per_frame;
    if (k.numel() != frames * per_frame || k_store.numel() != int64_t(ring.capacity()) * per_frame)
        return make_error(ErrorCode::shape, "kv_write: k %s does not fit store %s", k.str().c_str(), k_store.str().c_str());
    for (int64_t f = 0; f < frames; ++f) {
        const int64_t slot = ring.slot_of_frame(frame0 + f);
        store_row(k.data<float>() + f * per_frame, k_store, slot * per_frame, per_frame);
        store_row(v.data<float>() + f * per_frame, v_store, slot * per_frame, per_frame);
    }
    return {};
}

Status CpuBackend::attention_ring(const Tensor & out, const Tensor & q, const Tensor & k_store, const Tensor & v_store,
                                  const RingView & ring, const RopeLayout & layout, float scale) {
    const int64_t H = q.dim(1), D = q.dim(2), Lq = q.dim(0);
    const int64_t tpf = ring.tokens_per_frame, per_frame = tpf * H * D;
    const int32_t nvis = ring.visible_frames();
    const int64_t Nk   = int64_t(nvis) * tpf;
    att_k_.resize(size_t(Nk * H * D));
    att_v_.resize(size_t(Nk * H * D));
    std::vector<int64_t> pos(static_cast<size_t>(nvis));
    for (int32_t l = 0; l < nvis; ++l) {
        const int64_t slot = ring.slot_of_logical(l);
        load_row(k_store, slot * per_frame, att_k_.data() + l * per_frame, per_frame);
        load_row(v_store, slot * per_frame, att_v_.data() + l * per_frame, per_frame);
        pos[size_t(l)] = ring.rope_pos_of_logical(l);
    }
    // Stored keys carry their spatial rotation; only the temporal pairs turn with the read position.
    RopeTables tab = make_rope_tables(layout, pos);
    std::fill(tab.h_cos.begin(), tab.h_cos.end(), 1.0f), std::fill(tab.h_sin.begin(), tab.h_sin.end(), 0.0f);
    std::fill(tab.w_cos.begin(), tab.w_cos.end(), 1.0f), std::fill(tab.w_sin.begin(), tab.w_sin.end(), 0.0f);
    rope_apply_cpu(att_k_.data(), Nk, int(H), int(D), tab);
    cpu_attend(out.data<float>(), q.data<float>(), att_k_.data(), att_v_.data(), Lq, Nk, H, D, scale,
               [Nk](int64_t) { return Nk; }, att_s_);
    return {};
}

Status CpuBackend::attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale,
                             int64_t q_block, int64_t k_block) {
    const int64_t Lq = q.dim(0), H = q.dim(1), D = q.dim(2), Nk = k.dim(0);
    if (k.dim(1) != H || k.dim(2) != D || v.numel() != k.numel() || out.numel() != q.numel())
        return make_error(ErrorCode::shape, "attention: q %s k %s v %s out %s", q.str().c_str(), k.str().c_str(),
                          v.str().c_str(), out.str().c_str());
    const bool causal = q_block > 0 && k_block > 0;
    cpu_attend(out.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(), Lq, Nk, H, D, scale,
               [=](int64_t i) { return causal ? std::min(Nk, (i / q_block + 1) * k_block) : Nk; }, att_s_);
    return {};
}

} // namespace avs
