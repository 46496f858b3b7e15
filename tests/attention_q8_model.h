// A host model of the numerics of the 8-bit MMA attention (kernels/attention_ws8.cu), for tests: what
// that kernel computes if its arithmetic were exact fp32 apart from the roundings it does on purpose.
//   - Q per row in int8 (int8 store) or e4m3 (fp8 store), the scale bounded by the temporal pairs' norms,
//     the temporal pairs rotated by each key frame's angle before rounding;
//   - scores from the stored key bytes: s_q s_k (q8 . k8) (+ s_q (q8 . mean) for int8 keys);
//   - an online softmax over 128-key tiles that never cross a frame, P' = P s_v / sigma rounded to e4m3
//     (sigma = the frame's largest value scale / 448), P' V on the stored value bytes, the row sums of P';
//   - the bf16 tail (the chunk being generated) exactly, as its own partial, merged by log-sum-exp.
// The CPU twin (CpuBackend::attention_ring) is the exact reference; this model separates what the
// algorithm costs in accuracy from what the hardware adds (e.g. the e4m3 MMA's accumulator).
#pragma once

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/cache/kv_format.h"
#include "engine/cache/ring_view.h"
#include "engine/core/dtype.h"
#include "engine/model/rope.h"
#include "mma_acc_model.h"
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace avs::test {

// How the model sums what the kernel sums on the e4m3 tensor cores (P'V, the row sums; fp8's Q K^T):
// exactly (the algorithm's roundings only), or by the accumulator model of mma_acc_model.h with O
// carried over the whole history in the MMA's accumulator (one_level: the kernel measured at ce1b3cd) or
// fresh per 128-key tile and added into fp32 (two_level: measured at f83171d). f16: the kernel now —
// P V in f16 with fp32 accumulation (P times its block's s_v / the frame's largest rounded to f16, the
// values widened exactly), fp8's Q K^T still on the e4m3 accumulator.
enum class PvSum { exact, one_level, two_level, f16 };
struct Q8Numerics {
    PvSum  pv = PvSum::exact;
    MmaAcc acc{};
    bool   q_hi_lo = false;  // fp8: Q as the sum of two e4m3 terms (hi + the remainder), two Q K^T MMAs (not in the kernel)
    // counts the (row, tile)s past a row's first history tile whose maximum exceeds the row's lazily held
    // one by more than 15 in log2 units (where the kernel's lazy rescaling recomputes S); that held
    // maximum moves only then
    int64_t * max_jumps = nullptr;
};

// out, q: [Lq, H, D] f32 (q as the kernel sees it: bf16-rounded). tail_k / tail_v: the last `tail`
// visible frames [tail * tpf, H, D] f32, keys without their temporal rotation (as the store's).
inline void attention_q8_model(float * out, const float * q, int64_t Lq, const uint8_t * store, const KvLayout & L, const RingView & view,
                               const float * tail_k, const float * tail_v, int tail, const RopeLayout & rope, float scale,
                               const Q8Numerics & num = {}) {
    const int     H = L.heads, D = L.head_dim, tpf = L.tokens, pt = rope.pairs_t, nb = L.blocks();
    const bool    int8 = L.fmt == KvFormat::int8;
    const int     nvis = view.visible_frames(), hist = nvis - tail;
    const float   sl2 = scale * 1.4426950408889634f, qmax = int8 ? 127.0f : 448.0f;
    std::vector<int64_t> pos(static_cast<size_t>(nvis));
    for (int l = 0; l < nvis; ++l) pos[size_t(l)] = view.rope_pos_of_logical(l);
    const RopeTables tab = make_rope_tables(rope, pos);  // t_cos / t_sin: [frame][pairs_t]
    auto e4m3 = [](float x) { return fp8e4m3_to_f32(f32_to_fp8e4m3(x)); };
    auto quant = [&](float x) {
        if (int8) return std::clamp(std::nearbyint(x), -127.0f, 127.0f);
        return num.q_hi_lo ? e4m3(x) + e4m3(x - e4m3(x)) : e4m3(x);
    };

    std::vector<float> qr(static_cast<size_t>(D)), q8(qr), o(qr), kr(qr), vt(static_cast<size_t>(D) * 128);
    for (int64_t row = 0; row < Lq; ++row)
        for (int h = 0; h < H; ++h) {
            const float * qv = q + (row * H + h) * D;
            float amax = 0.0f;
            for (int p = 0; p < D / 2; ++p) {
                const float a = qv[2 * p], b = qv[2 * p + 1];
                amax = std::max(amax, p < pt ? std::sqrt(a * a + b * b) : std::max(std::fabs(a), std::fabs(b)));
            }
            const float sq = amax > 0.0f ? amax / qmax : 1.0f;
            // history: the 8-bit path
            float m = -INFINITY, l = 0.0f, sigma = 1.0f, lazy = -INFINITY;
            std::fill(o.begin(), o.end(), 0.0f);
            for (int f = 0; f < hist; ++f) {
                const uint8_t * slot = store + int64_t(view.slot_of_logical(f)) * L.slot_bytes;
                const float *   km = reinterpret_cast<const float *>(slot + L.k_meta);
                const float *   vm = reinterpret_cast<const float *>(slot + L.v_meta);
                for (int p = 0; p < D / 2; ++p) {  // R(-phi) on the temporal pairs, then rounding
                    const float c = p < pt ? tab.t_cos[size_t(f * pt + p)] : 1.0f, s = p < pt ? tab.t_sin[size_t(f * pt + p)] : 0.0f;
                    qr[size_t(2 * p)] = qv[2 * p] * c + qv[2 * p + 1] * s, qr[size_t(2 * p + 1)] = qv[2 * p + 1] * c - qv[2 * p] * s;
                }
                for (int d = 0; d < D; ++d) q8[size_t(d)] = quant(qr[size_t(d)] / sq);
                float qm = 0.0f;
                if (int8) {
                    const float * mean = km + int64_t(nb) * H + int64_t(h) * D;
                    for (int d = 0; d < D; ++d) qm += q8[size_t(d)] * mean[d];
                    qm *= sq;
                }
                float vmax = 0.0f;
                for (int b = 0; b < nb; ++b) vmax = std::max(vmax, vm[b * H + h]);
                const bool  pv16 = num.pv == PvSum::f16;
                const float nsig = pv16 ? (vmax > 0.0f ? vmax : 1.0f) : vmax / 448.0f, rebase = sigma / nsig;
                sigma = nsig;
                bool first_tile = true;
                for (int r0 = 0; r0 < tpf; r0 += 128) {
                    const int n = std::min(128, tpf - r0);
                    float     s[128], tmax = -INFINITY;
                    for (int j = 0; j < n; ++j) {
                        const int       tok = r0 + j;
                        const uint8_t * kb = slot + L.k_data + (int64_t(tok) * H + h) * D;
                        float           acc = 0.0f;
                        if (int8 || num.pv == PvSum::exact) {  // int8 x int8 sums in s32: exact
                            for (int d = 0; d < D; ++d) acc += q8[size_t(d)] * (int8 ? float(int8_t(kb[d])) : fp8e4m3_to_f32(kb[d]));
                        } else {
                            float prod[128];
                            for (int d = 0; d < D; ++d) prod[d] = q8[size_t(d)] * fp8e4m3_to_f32(kb[d]);
                            acc = mma_acc_sum(0.0f, prod, D, num.acc);
                        }
                        s[j] = sq * km[(tok / kKvBlockTokens) * H + h] * acc + qm;
                        tmax = std::max(tmax, s[j]);
                    }
                    if (num.max_jumps && tmax > -INFINITY) {
                        if (lazy == -INFINITY) lazy = tmax;
                        else if ((tmax - lazy) * sl2 > 15.0f) ++*num.max_jumps, lazy = tmax;
                    }
                    const float mn = std::max(m, tmax), cm = m == -INFINITY ? 0.0f : std::exp2((m - mn) * sl2);
                    const float c = cm * (first_tile ? rebase : 1.0f);
                    first_tile = false;
                    m = mn;
                    // P' of the tile's keys (0 past its end) and the value bytes as numbers
                    float pp[128] = {}, ip[2] = {1.0f, 1.0f};
                    for (int j = 0; j < n; ++j) {
                        const int   tok = r0 + j;
                        const float pv = 448.0f * vm[(tok / kKvBlockTokens) * H + h] / vmax;
                        pp[j] = e4m3(std::exp2((s[j] - m) * sl2) * pv), ip[j / kKvBlockTokens] = 1.0f / pv;
                        const uint8_t * vb = slot + L.v_data + (int64_t(tok) * H + h) * D;
                        for (int d = 0; d < D; ++d) vt[size_t(d) * 128 + size_t(j)] = fp8e4m3_to_f32(vb[d]);
                    }
                    if (pv16) {  // P' = P ratio in f16, the values widened exactly, the row sums of P
                        auto f16 = [](float x) { return f16_to_f32(f32_to_f16(x)); };
                        l *= cm;
                        for (int d = 0; d < D; ++d) o[size_t(d)] *= c;
                        for (int j = 0; j < n; ++j) {
                            const int   tok = r0 + j;
                            const float p = std::exp2((s[j] - m) * sl2), ratio = std::max(vm[(tok / kKvBlockTokens) * H + h] / sigma, 0x1p-64f);
                            const float pr = f16(p * ratio);
                            l += p;
                            for (int d = 0; d < D; ++d) o[size_t(d)] += pr * vt[size_t(d) * 128 + size_t(j)];
                        }
                        continue;
                    }
                    if (num.pv == PvSum::exact) {
                        l *= cm;
                        for (int j = 0; j < n; ++j) l += pp[j] * ip[j / kKvBlockTokens];
                        for (int d = 0; d < D; ++d) {
                            float a = o[size_t(d)] * c;
                            for (int j = 0; j < n; ++j) a += pp[j] * vt[size_t(d) * 128 + size_t(j)];
                            o[size_t(d)] = a;
                        }
                        continue;
                    }
                    // the row sums: an MMA of P' with a 0/1 matrix per 64-key block, fresh per tile
                    const float l0 = mma_acc_sum(0.0f, pp, kKvBlockTokens, num.acc);
                    const float l1 = mma_acc_sum(0.0f, pp + kKvBlockTokens, 128 - kKvBlockTokens, num.acc);
                    l = std::fma(l, cm, std::fma(l0, ip[0], l1 * ip[1]));
                    for (int d = 0; d < D; ++d) {
                        float prod[128];
                        for (int j = 0; j < 128; ++j) prod[j] = pp[j] * vt[size_t(d) * 128 + size_t(j)];
                        if (num.pv == PvSum::one_level) o[size_t(d)] = mma_acc_sum(o[size_t(d)] * c, prod, 128, num.acc);
                        else o[size_t(d)] = std::fma(o[size_t(d)], c, mma_acc_sum(0.0f, prod, 128, num.acc));
                    }
                }
            }
            const float lse_h = l > 0.0f ? m * sl2 + std::log2(l) : -INFINITY;
            std::vector<float> oh(static_cast<size_t>(D));
            for (int d = 0; d < D; ++d) oh[size_t(d)] = l > 0.0f ? o[size_t(d)] * sigma / l : 0.0f;
            // tail: exact (keys rotated by their frame's angle)
            float mt = -INFINITY, lt = 0.0f;
            std::vector<float> ot(static_cast<size_t>(D), 0.0f), st(static_cast<size_t>(tail) * size_t(tpf));
            for (int64_t j = 0; j < int64_t(tail) * tpf; ++j) {
                const int     f = hist + int(j / tpf);
                const float * k = tail_k + (j * H + h) * D;
                for (int p = 0; p < D / 2; ++p) {
                    const float c = p < pt ? tab.t_cos[size_t(f * pt + p)] : 1.0f, s = p < pt ? tab.t_sin[size_t(f * pt + p)] : 0.0f;
                    kr[size_t(2 * p)] = k[2 * p] * c - k[2 * p + 1] * s, kr[size_t(2 * p + 1)] = k[2 * p] * s + k[2 * p + 1] * c;
                }
                float acc = 0.0f;
                for (int d = 0; d < D; ++d) acc += qv[d] * kr[size_t(d)];
                st[size_t(j)] = acc, mt = std::max(mt, acc);
            }
            for (int64_t j = 0; j < int64_t(tail) * tpf; ++j) {
                const float p = std::exp2((st[size_t(j)] - mt) * sl2);
                lt += p;
                for (int d = 0; d < D; ++d) ot[size_t(d)] += p * tail_v[(j * H + h) * D + d];
            }
            const float lse_t = lt > 0.0f ? mt * sl2 + std::log2(lt) : -INFINITY;
            // merge the two partials
            const float mx = std::max(lse_h, lse_t);
            const float wh = lse_h == -INFINITY ? 0.0f : std::exp2(lse_h - mx), wt = lse_t == -INFINITY ? 0.0f : std::exp2(lse_t - mx);
            float * dst = out + (row * H + h) * D;
            for (int d = 0; d < D; ++d)
                dst[d] = (wh + wt) > 0.0f ? (wh * oh[size_t(d)] + wt * (lt > 0.0f ? ot[size_t(d)] / lt : 0.0f)) / (wh + wt) : 0.0f;
        }
}

// A ring with what real caches have and random tests lack: keys with channel offsets, values with
// channel means and scales that change per 64-token block and per frame (value_spread 0: even), sharp
// queries (bf16-rounded), a bf16 tail, several 128-key tiles per frame, a sink, a wrapped window.
// The default shape is small (tests); Q8Shape::wan_1_3b() is the 1.3B model's chunk over a 21-frame window.
struct Q8Shape {
    int     H = 2, gh = 10, gw = 30, chunk = 2, sinks = 1, window = 7, end_frame = 9;
    int64_t q_rows  = 0;  // 0: the whole chunk
    float   q_scale = 2.0f;
    float   key_ramp = 0.0f;  // logical frame l's keys times 1 + key_ramp l: scores that grow along the history
    static Q8Shape wan_1_3b(int64_t rows) { return {1, 30, 52, 3, 1, 20, 40, rows, 2.0f}; }
};
struct Q8Case {
    int        H = 2, D = 128, chunk = 2;
    RingView   view{};
    RopeLayout rope;
    KvLayout   L{};
    Tensor     store, tail_k, tail_v, q;  // host f32 (store u8)
};
inline Q8Case make_q8_case(KvFormat fmt, float value_spread, const Q8Shape & sh = {}) {
    Q8Case c;
    CpuBackend cpu;
    const int  tpf = sh.gh * sh.gw;
    c.H = sh.H, c.chunk = sh.chunk;
    c.view  = RingView{sh.sinks, sh.window, tpf, sh.end_frame, RopeMode::absolute};
    const int nvis = c.view.visible_frames();
    c.rope = make_rope_layout(c.D, sh.gh, sh.gw);
    c.L    = KvLayout::make(fmt, tpf, c.H, c.D);
    c.store = Tensor::host(DType::u8, Shape{c.view.capacity(), c.L.slot_bytes});
    auto frame_kv = [&](int l, Tensor & k, Tensor & v) {
        k = randn(Shape{tpf, c.H, c.D}, 300 + uint64_t(l)), v = randn(Shape{tpf, c.H, c.D}, 400 + uint64_t(l));
        for (int64_t i = 0; i < k.numel(); ++i) {
            const int64_t tok = i / (c.H * c.D), d = i % c.D;
            k.data<float>()[i] = (k.data<float>()[i] + (d == 7 ? 8.0f : 0.5f * float(d % 5))) * (1.0f + sh.key_ramp * float(l));
            const float mag = 1.0f + value_spread * (float((tok / 64 + l) % 5) + 2.0f * float(l % 3));
            v.data<float>()[i] = mag * v.data<float>()[i] + (d % 4 == 1 ? 1.5f : 0.0f);
        }
    };
    for (int l = 0; l < nvis - c.chunk; ++l) {
        Tensor k, v;
        frame_kv(l, k, v);
        (void)cpu.kv_write(c.store, c.L, c.view, c.view.frame_of_logical(l), k, v);
    }
    c.tail_k = Tensor::host(DType::f32, Shape{int64_t(c.chunk) * tpf, c.H, c.D}), c.tail_v = Tensor::host(DType::f32, c.tail_k.shape());
    for (int i = 0; i < c.chunk; ++i) {
        Tensor k, v;
        frame_kv(nvis - c.chunk + i, k, v);
        for (int64_t j = 0; j < k.numel(); ++j) {  // bf16, as the tail is on the GPU
            c.tail_k.data<float>()[int64_t(i) * k.numel() + j] = bf16_to_f32(f32_to_bf16(k.data<float>()[j]));
            c.tail_v.data<float>()[int64_t(i) * k.numel() + j] = bf16_to_f32(f32_to_bf16(v.data<float>()[j]));
        }
    }
    c.q = randn(Shape{sh.q_rows > 0 ? sh.q_rows : int64_t(c.chunk) * tpf, c.H, c.D}, 77, sh.q_scale);
    for (int64_t i = 0; i < c.q.numel(); ++i) c.q.data<float>()[i] = bf16_to_f32(f32_to_bf16(c.q.data<float>()[i]));
    return c;
}
inline Tensor q8_model_out(const Q8Case & c, float scale, const Q8Numerics & num = {}) {
    Tensor out = Tensor::host(DType::f32, c.q.shape());
    attention_q8_model(out.data<float>(), c.q.data<float>(), c.q.dim(0), c.store.data<uint8_t>(), c.L, c.view, c.tail_k.data<float>(),
                       c.tail_v.data<float>(), c.chunk, c.rope, scale, num);
    return out;
}

} // namespace avs::test
