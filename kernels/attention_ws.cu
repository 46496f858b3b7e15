#include "kernels/attention_ws.cuh"

#include "kernels/attention_keys.cuh"
#include "kernels/attention_tiles.cuh"
#include "kernels/kv_dequant.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

#include "kernels/tma_map.cuh"


namespace avs::kernels {
namespace {

using namespace attn;

// Warpgroup 0 produces (one thread issues the TMA loads), warpgroups 1 and 2 consume 64 query rows
// each: a staged tile feeds 128 queries, as in attention_mma.cu, so the split-KV heuristics carry over.
constexpr int kConsumers = 2;
constexpr int kThreads = 128 * (1 + kConsumers);
constexpr int kBQ = 64 * kConsumers;
// Register split (setmaxnreg): the consumers hold
// Q (32), O (64), S (64) and P (32) fragments; a producer that dequantizes needs more than one that
// only issues TMA loads.
template <int F> constexpr int kProducerRegs = F == int(KvFormat::bf16) ? 24 : 56;
template <int F> constexpr int kConsumerRegs = F == int(KvFormat::bf16) ? 240 : 224;
// A block starts with 168 registers per thread (64 K / 384, rounded down to 8); the consumers' increase
// must come out of what the producer gives back, or setmaxnreg.inc waits forever.
template <int F> __host__ __device__ constexpr bool regs_fit() { return kProducerRegs<F> * 128 + kConsumerRegs<F> * 128 * kConsumers <= (65536 / kThreads) / 8 * 8 * kThreads; }

// TMA descriptors (64-byte aligned in parameter space), each 4-D (channel, head, row, slot): `main`
// maps plain K/V or a bf16 ring store's slots, `tail` the ring's bf16 tail (boxes of BK rows x 64
// channels, 128-byte swizzle); `raw` a quantized store's data bytes (boxes of BK rows x one head's bytes).
struct Maps {
    CUtensorMap k_main, v_main, k_tail, v_tail, k_raw, v_raw;
};

// BK keys per tile (S is 64 x BK per consumer warpgroup); as many bf16 K/V stages as fit 200 KB (at most
// 4), or, for a quantized store, 2 bf16 stages plus 2 stages of raw bytes that the producer decodes.
// At the 1.3B chunk shape (H100, same process): 128-key tiles 565 TFLOP/s, 64-key tiles 362.
template <int D, int BK, int F> struct Cfg {
    static constexpr bool   kQuant = F != int(KvFormat::bf16);
    static constexpr int    kTile = BK * D;  // elements per staged K or V tile
    static constexpr int    kFit = (200 * 1024) / (2 * kTile * 2);
    static constexpr int    kStages = kQuant ? 2 : kFit < 4 ? kFit : 4;
    static constexpr int    kRawStages = kQuant ? 2 : 0;
    static constexpr int    kRawTile = BK * D;  // bytes per raw (8-bit) K or V tile
    // + the consumers' unrotated temporal Q fragments (kept in shared memory: registers are the limit)
    static constexpr size_t kQSave = size_t(temporal_blocks<D>()) * 4 * 128 * kConsumers * sizeof(uint32_t);
    static constexpr size_t kSmem = 1024 + 2 * kStages * kTile * sizeof(bf16) + 2 * size_t(kRawStages) * kRawTile +
                                    (3 * kStages + kRawStages) * sizeof(uint64_t) + kQSave;
};

template <int D, int BK, int F>
__global__ void __launch_bounds__(kThreads, 1) attention_ws_kernel(const __grid_constant__ Maps maps, bf16 * __restrict__ out,
                                                                  const bf16 * __restrict__ q, int64_t Lq, int H, AttnKeys K, SplitPlan plan,
                                                                  RopeTabs tabs, float scale) {
#if AVS_WGMMA
    using C = Cfg<D, BK, F>;
    static_assert(regs_fit<F>(), "the register split exceeds the block's registers");
    static_assert(!C::kQuant || BK % kKvBlockTokens == 0, "8-bit tiles start on a scale block (Kv8Decoder)");
    constexpr int kBK = BK, kStages = C::kStages, kTileE = C::kTile, kRawStages = C::kRawStages;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // stages start 1024-byte aligned: the 128-byte swizzle's pattern repeats every 8 rows of 128 B
    unsigned char * smem = smem_raw + ((1024u - (tma::saddr(smem_raw) & 1023u)) & 1023u);
    bf16 *     kst = reinterpret_cast<bf16 *>(smem);  // [kStages][D / 64 panels][kBK][64]
    bf16 *     vst = kst + kStages * kTileE;
    // quantized stores: raw K and V stages [kRawStages][BK][row bytes] (TMA destinations: 128-byte aligned)
    uint8_t *  kraw = reinterpret_cast<uint8_t *>(vst + kStages * kTileE);
    uint8_t *  vraw = kraw + kRawStages * C::kRawTile;
    uint64_t * full_k = reinterpret_cast<uint64_t *>(vraw + kRawStages * C::kRawTile);  // TMA landed (1 arrival + bytes)
    uint64_t * full_v = full_k + kStages;
    uint64_t * empty = full_v + kStages;  // every consumer warp released the stage
    uint64_t * raw_full = empty + kStages;  // quantized: raw K and V bytes landed (1 arrival + bytes)
    uint32_t * qsave = reinterpret_cast<uint32_t *>(raw_full + kRawStages);  // [kTK * 4][256 consumer threads]

    const WsBlock B = ws_block(K, plan, Lq, kBQ);
    const int     wg = B.wg, warp = B.warp, lane = B.lane, h = B.h, split = B.split;
    const int64_t q0 = B.q0, j_begin = B.j_begin, block_lim = B.block_lim;

    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            tma::mbar_init(&full_k[s], 1);
            tma::mbar_init(&full_v[s], 1);
            tma::mbar_init(&empty[s], 4 * kConsumers);
        }
        for (int s = 0; s < kRawStages; ++s) tma::mbar_init(&raw_full[s], 1);
        tma::mbar_fence_init();
    }
    __syncthreads();

    if (wg == 0) {  // producer
        tma::regs_dec<kProducerRegs<F>>();
        const int tpf = K.view.tokens_per_frame, hist = K.ring ? K.view.visible_frames() - K.tail_frames : 0;
        constexpr uint32_t bytes = kTileE * sizeof(bf16);
        // a bf16 tile (plain keys, a bf16 store, the ring's tail) goes by TMA straight into stage s;
        // rows past the tile's end (next frame, or past the tensor: zero-filled) are masked by the consumers
        auto load_bf16 = [&](const TileCursor<kBK> & cur, int s) {
            const CUtensorMap * km = &maps.k_main;
            const CUtensorMap * vm = &maps.v_main;
            int row = int(cur.a), slot = 0;
            if (K.ring) {
                if (cur.frame >= hist) km = &maps.k_tail, vm = &maps.v_tail, row = (cur.frame - hist) * tpf + cur.r;
                else row = cur.r, slot = K.view.slot_of_logical(cur.frame);
            }
            tma::mbar_expect_tx(&full_k[s], bytes);
#pragma unroll
            for (int p = 0; p < D / 64; ++p) tma::load_4d(kst + s * kTileE + p * kBK * 64, km, &full_k[s], 64 * p, h, row, slot);
            tma::mbar_expect_tx(&full_v[s], bytes);
#pragma unroll
            for (int p = 0; p < D / 64; ++p) tma::load_4d(vst + s * kTileE + p * kBK * 64, vm, &full_v[s], 64 * p, h, row, slot);
        };
        if constexpr (!C::kQuant) {
            if (warp != 0 || lane != 0) return;
            tma::prefetch_map(&maps.k_main), tma::prefetch_map(&maps.v_main);
            int it = 0;
            for (TileCursor<kBK> cur(K, j_begin, block_lim); cur.a < block_lim; cur.next(), ++it) {
                const int s = it % kStages;
                tma::mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
                load_bf16(cur, s);
            }
        } else {
            // Quantized store: thread 0 streams the history tiles' raw bytes into kRawStages stages ahead
            // of use; all 128 threads decode each into a free bf16 stage (the 128-byte swizzle), then
            // thread 0 marks it full. The ring's bf16 tail still goes by TMA straight into its stage.
            const int       pt = threadIdx.x;
            const bool      leader = pt == 0;
            TileCursor<kBK> lead(K, j_begin, block_lim);
            int             issued = 0;
            auto issue_raw = [&]() {  // thread 0: the next history tile's raw K and V bytes
                while (lead.a < block_lim && lead.frame >= hist) lead.next();
                if (lead.a >= block_lim) return;
                const int rs = issued % kRawStages, slot = K.view.slot_of_logical(lead.frame);
                tma::mbar_expect_tx(&raw_full[rs], 2 * C::kRawTile);
                tma::load_4d(kraw + rs * C::kRawTile, &maps.k_raw, &raw_full[rs], 0, h, lead.r, slot);
                tma::load_4d(vraw + rs * C::kRawTile, &maps.v_raw, &raw_full[rs], 0, h, lead.r, slot);
                ++issued, lead.next();
            };
            if (leader)
                for (int i = 0; i < kRawStages; ++i) issue_raw();
            // Thread pt decodes channels [8c, 8c + 8) of every kRowsPerPass-th row (K and V side by side,
            // unrolled for independent loads in flight); rows past the tile's n are zeros.
            constexpr int   rb = D, chunks = D / 8, kRowsPerPass = 128 / chunks;
            const int       c = pt % chunks, r0 = pt / chunks;
            Kv8Decoder<D>   dec;
            int             dec_frame = -1;
            int             it = 0, k = 0;  // k: history tiles decoded
            for (TileCursor<kBK> cur(K, j_begin, block_lim); cur.a < block_lim; cur.next(), ++it) {
                const int s = it % kStages;
                if (cur.frame >= hist) {
                    if (leader) {
                        tma::mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
                        load_bf16(cur, s);
                    }
                    continue;
                }
                const int rs = k % kRawStages;
                tma::mbar_wait(&empty[s], ((it / kStages) & 1) ^ 1);
                tma::mbar_wait(&raw_full[rs], (k / kRawStages) & 1);
                const uint8_t * slot = K.store + int64_t(K.view.slot_of_logical(cur.frame)) * K.layout.slot_bytes;
                const int       n = int(cur.end - cur.a);
                if constexpr (F == int(KvFormat::int8)) {
                    if (cur.frame != dec_frame) dec.frame_means(K.layout, slot, h, 8 * c), dec_frame = cur.frame;
                }
                dec.tile(K.layout, slot, h, cur.r);
                const uint8_t * kr = kraw + rs * C::kRawTile;
                const uint8_t * vr = vraw + rs * C::kRawTile;
#pragma unroll 2
                for (int i = 0; i < kBK / kRowsPerPass; ++i) {
                    const int row = r0 + kRowsPerPass * i;
                    uint4     ok = make_uint4(0, 0, 0, 0), ov = ok;
                    if (row < n) dec.template decode<F>(kr + row * rb, vr + row * rb, cur.r + row, 8 * c, ok, ov);
                    *reinterpret_cast<uint4 *>(kst + s * kTileE + wg::swz_off(kBK, row, c)) = ok;
                    *reinterpret_cast<uint4 *>(vst + s * kTileE + wg::swz_off(kBK, row, c)) = ov;
                }
                wg::fence_async_smem();  // the consumers' wgmma reads it through the async proxy
                tma::bar_sync(3, 128);   // every thread decoded its part and is done with raw stage rs
                if (leader) {
                    tma::mbar_arrive(&full_k[s]);
                    tma::mbar_arrive(&full_v[s]);
                    issue_raw();
                }
                ++k;
            }
        }
        return;
    }

    // consumer warpgroup cw: rows q0 + 64 cw + [0, 64); this thread rows row0 and row0 + 8
    tma::regs_inc<kConsumerRegs<F>>();
    constexpr int kTK = temporal_blocks<D>();
    const int     cw = wg - 1, g = lane / 4, t = lane % 4;
    const int64_t row0 = q0 + 64 * cw + 16 * warp + g, row1 = row0 + 8;
    const int64_t lim0 = key_limit(K, row0), lim1 = key_limit(K, row1);
    // a warpgroup skips a tile (the MMAs are warpgroup-wide) only when all its rows do
    const int64_t wg_lim = min(block_lim, key_limit(K, min(Lq - 1, q0 + 64 * cw + 63)));
    const int64_t wg_first_lim = key_limit(K, min(Lq - 1, q0 + 64 * cw));  // the fewest keys a row of it sees

    uint32_t qf[D / 16][4];
    load_q_frags<D>(qf, q, row0, Lq, H, h, t);
    // the unrotated temporal fragments, thread-private in shared memory ([fragment][thread]: no conflicts)
    uint32_t * my_qsave = qsave + (threadIdx.x - 128);
#pragma unroll
    for (int kd = 0; kd < kTK; ++kd)
#pragma unroll
        for (int r = 0; r < 4; ++r) my_qsave[(kd * 4 + r) * 128 * kConsumers] = qf[kd][r];
    int q_frame = -1;

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float       m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const float sl2 = scale * 1.4426950408889634f;
    float       s[kBK / 8][4];
    uint32_t    pa[kBK / 16][4];  // P of the previous tile, waiting for its P V

    auto release = [&](int st) {
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(&empty[st]);
    };
    // S[64 x kBK] = Q K^T of tile `it`: keys as K-major B (32 B per k16 step, a new 64-dim panel every 4)
    auto issue_s = [&](int it, int lf) {
        const int st = it % kStages;
        tma::mbar_wait(&full_k[st], (it / kStages) & 1);
        if (K.ring) {
            if (__shfl_sync(0xffffffffu, int(lf != q_frame), 0)) {  // provably uniform: Q feeds the wgmma
                q_frame = lf;
                uint32_t q_orig[kTK][4];
#pragma unroll
                for (int kd = 0; kd < kTK; ++kd)
#pragma unroll
                    for (int r = 0; r < 4; ++r) q_orig[kd][r] = my_qsave[(kd * 4 + r) * 128 * kConsumers];
                rotate_q_temporal<D>(qf, q_orig, K, tabs, lf, t);
            }
        }
        const uint32_t kb = tma::saddr(kst + st * kTileE);
        auto dk = [&](int kd) { return wg::desc_sw128(kb + (kd / 4) * (kBK * 128) + (kd % 4) * 32, 16, 1024); };
        wg::fence();
#pragma unroll
        for (int kd = 0; kd < D / 16; ++kd) {
            if constexpr (kBK == 128) wg::mma_m64n128k16<0>(s, qf[kd], dk(kd), kd > 0);
            else wg::mma_m64n64k16<0>(s, qf[kd], dk(kd), kd > 0);
        }
        wg::commit();
    };
    // O[64 x D] += P V of tile `it`: values as N-major B
    auto issue_pv = [&](int it) {
        const int st = it % kStages;
        tma::mbar_wait(&full_v[st], (it / kStages) & 1);
        const uint32_t vb = tma::saddr(vst + st * kTileE);
        wg::fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
            const uint64_t dv = wg::desc_sw128(vb + kk * 16 * 128, kBK * 128, 1024);
            if constexpr (D == 128) wg::mma_m64n128k16<1>(o, pa[kk], dv);
            else wg::mma_m64n64k16<1>(o, pa[kk], dv);
        }
        wg::commit();
    };
    // Masks tile [j0, jend) of the landed S, turns it into probabilities (in s) against the new row
    // maxima, updates the row sums and leaves the old O's rescale factors in c0, c1.
    float c0 = 0.0f, c1 = 0.0f;
    auto softmax = [&](int64_t j0, int64_t jend) {
        if (__shfl_sync(0xffffffffu, int(j0 + kBK > min(jend, wg_first_lim)), 0)) {  // partial tile (uniform)
            const int n0 = int(min(lim0, jend) - j0), n1 = int(min(lim1, jend) - j0);  // visible keys per row
#pragma unroll
            for (int j = 0; j < kBK / 8; ++j)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int key = 8 * j + 2 * t + c;
                    s[j][c] += mask_bias(key, n0);
                    s[j][2 + c] += mask_bias(key, n1);
                }
        }
        // running max on raw scores; the scale goes into the exponent: exp2(s * sl2 - max * sl2)
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
        // rows with no visible key yet keep m = -inf: 0 as the base keeps them NaN-free
        const float b0 = mx0 == -INFINITY ? 0.0f : mx0 * sl2, b1 = mx1 == -INFINITY ? 0.0f : mx1 * sl2;
        c0 = fast_exp2(m0 * sl2 - b0), c1 = fast_exp2(m1 * sl2 - b1);
        m0 = mx0, m1 = mx1;
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            s[j][0] = fast_exp2(fmaf(s[j][0], sl2, -b0)), s[j][1] = fast_exp2(fmaf(s[j][1], sl2, -b0));
            s[j][2] = fast_exp2(fmaf(s[j][2], sl2, -b1)), s[j][3] = fast_exp2(fmaf(s[j][3], sl2, -b1));
            ps0 += s[j][0] + s[j][1];
            ps1 += s[j][2] + s[j][3];
        }
        l0 = l0 * c0 + ps0;
        l1 = l1 * c1 + ps1;
    };
    // O, scaled to the previous row maxima, follows the new ones (before the next P V is added)
    auto rescale_o = [&]() {
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) o[nd][0] *= c0, o[nd][1] *= c0, o[nd][2] *= c1, o[nd][3] *= c1;
    };
    // once the previous P V landed, P becomes the next one's A operand: the C layout of two adjacent
    // key n-tiles is the A layout of one k16 step (FA2)
    auto pack_p = [&]() {
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            pa[j / 2][(j % 2) * 2 + 0] = pack_bf16(s[j][0], s[j][1]);
            pa[j / 2][(j % 2) * 2 + 1] = pack_bf16(s[j][2], s[j][3]);
        }
    };

    // Tiles [0, n_active) hold keys of this warpgroup's rows; the block's later tiles are released unread.
    // (shuffled: provably warp-uniform trip counts keep the wgmma asynchronous)
    const int n_tiles = __shfl_sync(0xffffffffu, count_tiles<kBK>(K, j_begin, block_lim), 0);
    const int n_active = __shfl_sync(0xffffffffu, count_tiles<kBK>(K, j_begin, wg_lim), 0);
    // Ping-pong (FA3): a consumer issues its GEMMs only after the other one has issued its own, so one
    // warpgroup's softmax runs under the other's tensor-core work (565 vs 497 TFLOP/s without, same
    // run). Consumer 0 issues first; each consumer syncs on its own barrier before its GEMMs and
    // arrives on the other's after issuing them, once per tile (consumer 1 skips its last arrival).
    auto pp_sync = [&]() {
        tma::bar_sync(1 + cw, 256);
    };
    auto pp_arrive = [&](int it) {
        if (!(cw == 1 && it == n_tiles - 1)) tma::bar_arrive(1 + (cw ^ 1), 256);
    };
    if (cw == 1 && n_tiles > 0) tma::bar_arrive(1, 256);

    // The steady state overlaps the softmax of tile `it` with the P V of tile it - 1 (FA3's intra-
    // warpgroup pipelining). O is rescaled after that P V lands, outside the ping-pong's critical
    // section: 565 TFLOP/s, vs 550 rescaling between the two GEMM issues as FA3 does (same run).
    // No wgmma is issued on a thread-dependent path, so ptxas keeps them asynchronous.
    TileCursor<kBK> cur(K, j_begin, block_lim);
    int             it = 0;
    if (n_active > 0) {
        pp_sync();
        issue_s(0, cur.frame);
        pp_arrive(0);
        wg::wait<0>();
        wg::fence_regs(s);
        softmax(cur.a, cur.end);
        pack_p();
        for (it = 1; it < n_active; ++it) {
            cur.next();
            pp_sync();
            issue_s(it, cur.frame);
            issue_pv(it - 1);
            pp_arrive(it);
            wg::wait<1>();  // S landed; P V still in flight
            wg::fence_regs(s);
            softmax(cur.a, cur.end);
            wg::wait<0>();
            wg::fence_regs(o);
            release((it - 1) % kStages);
            rescale_o();
            pack_p();
        }
        issue_pv(n_active - 1);
        wg::wait<0>();
        wg::fence_regs(o);
        release((n_active - 1) % kStages);
    }
    for (; it < n_tiles; ++it) {
        // past this warpgroup's rows: release the stage unread once it holds this tile (its barrier
        // phase is the current one), keeping the ping-pong rhythm
        pp_sync();
        pp_arrive(it);
        tma::mbar_wait(&full_k[it % kStages], (it / kStages) & 1);
        tma::mbar_wait(&full_v[it % kStages], (it / kStages) & 1);
        release(it % kStages);
    }
    store_rows<D>(K, out, o, m0, m1, l0, l1, sl2, row0, Lq, H, h, t, plan.slot0 + split);
#else
    __trap();
#endif
}

// bf16 [count][rows][H][D], boxes of bk rows x 64 channels of one head in the 128-byte swizzle; or
// (raw_bytes > 0) u8 [count][rows][H][raw_bytes], boxes of bk rows x raw_bytes, unswizzled.
bool encode(CUtensorMap & m, const void * base, int D, int H, int64_t rows, int64_t count, int64_t block_bytes, int bk, int raw_bytes = 0) {
    return raw_bytes > 0 ? tma::encode(m, base, false, raw_bytes, H, rows, count, block_bytes, bk, raw_bytes, false)
                         : tma::encode(m, base, true, 2 * D, H, rows, count, block_bytes, bk, 128, true);
}

// Runs the frames of `plan` (all of them: split_plan(K)); merge: combine K.nsplit partials afterwards.
template <int D, int BK, int F>
cudaError_t launch(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & K, const SplitPlan & plan, bool merge, float scale,
                   cudaStream_t stream) {
    Maps          maps{};
    const int64_t row_bytes = int64_t(heads) * D * 2;
    bool          ok = true;
    if (!K.ring) {
        ok = encode(maps.k_main, K.k, D, heads, K.nk, 1, K.nk * row_bytes, BK) && encode(maps.v_main, K.v, D, heads, K.nk, 1, K.nk * row_bytes, BK);
    } else {
        const int tpf = K.view.tokens_per_frame, slots = K.view.capacity();
        const int hist = K.view.visible_frames() - K.tail_frames;
        if (plan.f0 >= hist) {
            // the tail alone (the 8-bit kernel reads the store): no store maps
        } else if constexpr (F == int(KvFormat::bf16)) {
            ok = encode(maps.k_main, K.store + K.layout.k_data, D, heads, tpf, slots, K.layout.slot_bytes, BK) &&
                 encode(maps.v_main, K.store + K.layout.v_data, D, heads, tpf, slots, K.layout.slot_bytes, BK);
        } else {
            constexpr int rb = D;  // 8-bit formats: one byte per channel
            ok = encode(maps.k_raw, K.store + K.layout.k_data, D, heads, tpf, slots, K.layout.slot_bytes, BK, rb) &&
                 encode(maps.v_raw, K.store + K.layout.v_data, D, heads, tpf, slots, K.layout.slot_bytes, BK, rb);
        }
        if (ok && K.tail_frames > 0) {
            const int64_t rows = int64_t(K.tail_frames) * tpf;
            ok = encode(maps.k_tail, K.tail_k, D, heads, rows, 1, rows * row_bytes, BK) && encode(maps.v_tail, K.tail_v, D, heads, rows, 1, rows * row_bytes, BK);
        }
    }
    if (!ok) return cudaErrorNotSupported;
    using C = Cfg<D, BK, F>;
    auto *      kern = attention_ws_kernel<D, BK, F>;
    // the register split assumes the block starts with 168 per thread (regs_fit); otherwise
    // setmaxnreg.inc would wait forever, so decline and let the caller take the other kernel
    static const bool regs_ok = [kern] {
        cudaFuncAttributes a{};
        return cudaFuncGetAttributes(&a, kern) == cudaSuccess && a.numRegs == (65536 / kThreads) / 8 * 8;
    }();
    if (!regs_ok) return cudaErrorNotSupported;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(C::kSmem));
    if (e != cudaSuccess) return e;
    if (K.nsplit > 1 && (!K.split_scratch || !K.ring)) return cudaErrorInvalidValue;
    const dim3 grid(unsigned((Lq + kBQ - 1) / kBQ), unsigned(heads), unsigned(plan.n));
    kern<<<grid, kThreads, C::kSmem, stream>>>(maps, static_cast<bf16 *>(out), static_cast<const bf16 *>(q), Lq, heads, K, plan, rope_tabs(K),
                                                      scale);
    e = cudaGetLastError();
    if (e != cudaSuccess || !merge || K.nsplit <= 1) return e;
    return merge_splits<D>(out, K.split_scratch, Lq, heads, K.nsplit, stream);
}

template <int D, int BK>
cudaError_t launch_format(KvFormat f, void * out, const void * q, int64_t Lq, int heads, const AttnKeys & keys, const SplitPlan & plan, bool merge,
                          float scale, cudaStream_t stream) {
    switch (f) {
        case KvFormat::bf16: return launch<D, BK, int(KvFormat::bf16)>(out, q, Lq, heads, keys, plan, merge, scale, stream);
        case KvFormat::fp8: return launch<D, BK, int(KvFormat::fp8)>(out, q, Lq, heads, keys, plan, merge, scale, stream);
        case KvFormat::int8: return launch<D, BK, int(KvFormat::int8)>(out, q, Lq, heads, keys, plan, merge, scale, stream);
        default: return cudaErrorInvalidValue;
    }
}

} // namespace

bool attention_ws_supported(const AttnKeys & keys, int head_dim) {
    const bool hopper = tma::hopper_ready();
    if (!hopper || (head_dim != 64 && head_dim != 128) || keys.nk <= 0) return false;
    if (!keys.ring) return keys.dtype == DType::bf16;
    // 4-bit stores stay on attention_mma.cu: decoding them here starved the consumers (int4 19.9 ms vs
    // 16.4 ms there, nvfp4 14.7 vs 12.5, H100 at the 1.3B chunk shape)
    const KvFormat f = keys.layout.fmt;
    return (f == KvFormat::bf16 || f == KvFormat::fp8 || f == KvFormat::int8) && (keys.tail_frames == 0 || keys.tail_dtype == DType::bf16) &&
           keys.rope.pairs_t <= 8 * (head_dim == 128 ? temporal_blocks<128>() : temporal_blocks<64>());
}

cudaError_t attention_ws(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                         cudaStream_t stream) {
    if (!attention_ws_supported(keys, head_dim)) return cudaErrorInvalidValue;
    const KvFormat  f = keys.ring ? keys.layout.fmt : KvFormat::bf16;
    const SplitPlan plan = split_plan(keys);
    return head_dim == 128 ? launch_format<128, 128>(f, out, q, Lq, heads, keys, plan, true, scale, stream)
                           : launch_format<64, 64>(f, out, q, Lq, heads, keys, plan, true, scale, stream);
}

cudaError_t attention_ws_tail(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, int slot, float scale,
                              cudaStream_t stream) {
    if (!attention_ws_supported(keys, head_dim) || !keys.ring || keys.tail_frames <= 0 || keys.nsplit <= slot) return cudaErrorInvalidValue;
    SplitPlan plan;
    plan.f0 = keys.view.visible_frames() - keys.tail_frames, plan.nf = keys.tail_frames, plan.n = 1, plan.slot0 = slot;
    return head_dim == 128 ? launch_format<128, 128>(KvFormat::bf16, out, q, Lq, heads, keys, plan, false, scale, stream)
                           : launch_format<64, 64>(KvFormat::bf16, out, q, Lq, heads, keys, plan, false, scale, stream);
}

} // namespace avs::kernels
