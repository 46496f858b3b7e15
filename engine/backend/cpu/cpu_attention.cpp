// CPU twin of the ring KV write and the attention kernels. The twin may gather the visible frames
// into a scratch copy (the CUDA kernel reads the ring fragments in place); the math is the same:
// keys rotated at read time by their RingView position, fp32 softmax.
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/cache/kv_codec.h"
#include "engine/core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace avs {
namespace {

constexpr int64_t kQueryBlock = 256;  // bounds the score scratch to 256 x keys floats

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

Status CpuBackend::kv_write(const Tensor & store, const KvLayout & L, const RingView & ring, int64_t frame0, const Tensor & k,
                            const Tensor & v) {
    const int64_t per_frame = L.elems();
    const int64_t frames    = k.numel() / per_frame;
    if (k.numel() != frames * per_frame || v.numel() != k.numel() || store.nbytes() != uint64_t(ring.capacity() * L.slot_bytes) ||
        L.tokens != ring.tokens_per_frame)
        return make_error(ErrorCode::shape, "kv_write: k %s does not fit store %s (%s, %lld bytes per slot)", k.str().c_str(),
                          store.str().c_str(), kv_format_name(L.fmt), (long long) L.slot_bytes);
    for (int64_t f = 0; f < frames; ++f) {
        uint8_t * slot = store.data<uint8_t>() + int64_t(ring.slot_of_frame(frame0 + f)) * L.slot_bytes;
        kv_encode_frame(L, slot, k.data<float>() + f * per_frame, v.data<float>() + f * per_frame);
    }
    return {};
}

Status CpuBackend::kv_read(const Tensor & k, const Tensor & v, const Tensor & store, const KvLayout & L, int64_t slot) {
    if (k.numel() != L.elems() || v.numel() != L.elems() || slot < 0 || uint64_t((slot + 1) * L.slot_bytes) > store.nbytes())
        return make_error(ErrorCode::shape, "kv_read: slot %lld of store %s into %s", (long long) slot, store.str().c_str(),
                          k.str().c_str());
    kv_decode_frame(L, store.data<uint8_t>() + slot * L.slot_bytes, k.data<float>(), v.data<float>());
    return {};
}

Status CpuBackend::attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & L,
                                  const RingView & ring, const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & rope,
                                  float scale) {
    const int64_t H = q.dim(1), D = q.dim(2), Lq = q.dim(0);
    const int64_t tpf = ring.tokens_per_frame, per_frame = tpf * H * D;
    const int32_t nvis = ring.visible_frames();
    const int32_t tail = tail_k.defined() ? int32_t(tail_k.dim(0) / tpf) : 0;
    if (tail > nvis || (tail_k.defined() && (tail_k.numel() != tail * per_frame || tail_v.numel() != tail_k.numel())) ||
        H != L.heads || D != L.head_dim || tpf != L.tokens)
        return make_error(ErrorCode::shape, "attention_ring: q %s, tail %s, %d visible frames, layout %d x %d x %d", q.str().c_str(),
                          tail_k.defined() ? tail_k.str().c_str() : "none", nvis, L.tokens, L.heads, L.head_dim);
    const int64_t Nk = int64_t(nvis) * tpf;
    att_k_.resize(size_t(Nk * H * D));
    att_v_.resize(size_t(Nk * H * D));
    std::vector<int64_t> pos(static_cast<size_t>(nvis));
    for (int32_t l = 0; l < nvis; ++l) {
        float * kd = att_k_.data() + l * per_frame;
        float * vd = att_v_.data() + l * per_frame;
        if (l >= nvis - tail) {
            const int64_t o = int64_t(l - (nvis - tail)) * per_frame;
            std::memcpy(kd, tail_k.data<float>() + o, size_t(per_frame) * 4);
            std::memcpy(vd, tail_v.data<float>() + o, size_t(per_frame) * 4);
        } else {
            kv_decode_frame(L, store.data<uint8_t>() + int64_t(ring.slot_of_logical(l)) * L.slot_bytes, kd, vd);
        }
        pos[size_t(l)] = ring.rope_pos_of_logical(l);
    }
    // Stored keys carry their spatial rotation; only the temporal pairs turn with the read position.
    RopeTables tab = make_rope_tables(rope, pos);
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
