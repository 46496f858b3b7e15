#include "kernels/attention.cuh"

#include "kernels/attention_keys.cuh"
#include "kernels/attention_mma.cuh"

#include <cfloat>

namespace avs::kernels {

namespace {

constexpr int kWarps = 8;   // query rows per block
constexpr int kTile  = 32;  // keys per shared-memory tile (one per lane in the score phase)
constexpr int kMaxChunks = 12;  // D <= 384: the Wan VAE's mid-block attention is one head of 384

__global__ void rope_tables_kernel(float * tab, RingView view, RopeLayout rope, int64_t nt, int64_t nh, int64_t total) {
    const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= total) return;
    int64_t pos;
    int     m, pairs;
    if (e < nt) {
        pos = view.rope_pos_of_logical(int32_t(e / rope.pairs_t)), m = int(e % rope.pairs_t), pairs = rope.pairs_t;
    } else if (e < nt + nh) {
        pos = (e - nt) / rope.pairs_h, m = int((e - nt) % rope.pairs_h), pairs = rope.pairs_h;
    } else {
        pos = (e - nt - nh) / rope.pairs_w, m = int((e - nt - nh) % rope.pairs_w), pairs = rope.pairs_w;
    }
    // fp64 angle, as the CPU twin's tables, so positions far beyond 1024 stay exact
    const double inv_freq = pow(rope.theta, -2.0 * m / (2.0 * pairs));
    double s, c;
    sincos(double(pos) * inv_freq, &s, &c);
    tab[e]         = float(c);
    tab[total + e] = float(s);
}

template <typename TQ>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(void * out_, const void * q_, int64_t Lq, int H, int D,
                                                                AttnKeys K, RopeTabs tabs, float scale) {
    extern __shared__ float smem[];
    const int ld = D + 1;  // padded rows: lane j reads row j without bank conflicts
    float * ks = smem;                 // [kTile][ld]
    float * vs = ks + kTile * ld;      // [kTile][D]
    float * qs = vs + kTile * D;       // [kWarps][D]
    const int  h    = blockIdx.y;
    const int  warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t qi = int64_t(blockIdx.x) * kWarps + warp;
    const bool active = qi < Lq;
    const TQ * q = static_cast<const TQ *>(q_);

    for (int d = lane; d < D; d += 32) qs[warp * D + d] = active ? to_f32(q[(qi * H + h) * D + d]) : 0.0f;
    // keys this query may see (block-causal) and the block's furthest
    const int64_t lim       = active ? key_limit(K, qi) : 0;
    const int64_t block_lim = key_limit(K, min(Lq - 1, int64_t(blockIdx.x) * kWarps + kWarps - 1));

    float acc[kMaxChunks] = {};  // dims lane + 32*c
    float m = -FLT_MAX, l = 0.0f;

    for (int64_t j0 = 0; j0 < block_lim; j0 += kTile) {
        __syncthreads();  // previous tile fully consumed
        // Load K (rotated) and V for keys j0..j0+kTile: one pair of elements per thread step.
        const int pairs = D / 2;
        for (int e = threadIdx.x; e < kTile * pairs; e += blockDim.x) {
            const int     t = e / pairs, p = e % pairs;
            const int64_t j = j0 + t;
            float k0 = 0.0f, k1 = 0.0f, v0 = 0.0f, v1 = 0.0f;
            if (j < block_lim) {
                const KeySrc  ks_ = key_src(K, j);
                const int64_t off = (ks_.row * H + h) * D + 2 * p;
                k0 = load_elem(ks_.k, ks_.dtype, off), k1 = load_elem(ks_.k, ks_.dtype, off + 1);
                v0 = load_elem(ks_.v, ks_.dtype, off), v1 = load_elem(ks_.v, ks_.dtype, off + 1);
                if (K.ring) rotate_key_pair(K, tabs, ks_.frame, p, k0, k1);
            }
            ks[t * ld + 2 * p] = k0, ks[t * ld + 2 * p + 1] = k1;
            vs[t * D + 2 * p] = v0, vs[t * D + 2 * p + 1] = v1;
        }
        __syncthreads();
        if (!active || j0 >= lim) continue;  // no early return: every thread must reach the barriers

        // Scores: lane t scores key j0 + t against this warp's query.
        float s = -FLT_MAX;
        if (j0 + lane < lim) {
            float dot = 0.0f;
            for (int d = 0; d < D; ++d) dot += qs[warp * D + d] * ks[lane * ld + d];
            s = dot * scale;
        }
        float tile_max = s;
        for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, o));
        const float m_new = fmaxf(m, tile_max);
        const float p     = j0 + lane < lim ? expf(s - m_new) : 0.0f;
        const float corr  = expf(m - m_new);
        float psum = p;
        for (int o = 16; o > 0; o >>= 1) psum += __shfl_xor_sync(0xffffffffu, psum, o);
        l = l * corr + psum;
        m = m_new;
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) acc[c] *= corr;
        for (int t = 0; t < kTile; ++t) {
            const float pt = __shfl_sync(0xffffffffu, p, t);
#pragma unroll
            for (int c = 0; c < kMaxChunks; ++c)
                if (lane + 32 * c < D) acc[c] += pt * vs[t * D + lane + 32 * c];
        }
    }
    if (!active) return;
    TQ * out = static_cast<TQ *>(out_);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c)
        if (lane + 32 * c < D) out[(qi * H + h) * D + lane + 32 * c] = from_f32<TQ>(acc[c] * inv);
}

} // namespace

int64_t attention_rope_table_floats(const RingView & view, const RopeLayout & rope) { return 2 * rope_tab_entries(view, rope); }

cudaError_t attention_rope_tables(float * tab, const RingView & view, const RopeLayout & rope, cudaStream_t stream) {
    int64_t       nt, nh;
    const int64_t total = rope_tab_entries(view, rope, &nt, &nh);
    if (total == 0) return cudaSuccess;
    rope_tables_kernel<<<unsigned((total + 255) / 256), 256, 0, stream>>>(tab, view, rope, nt, nh, total);
    return cudaGetLastError();
}

cudaError_t attention(void * out, const void * q, DType dtype, int64_t Lq, int heads, int head_dim, const AttnKeys & keys,
                      float scale, cudaStream_t stream) {
    if (Lq == 0) return cudaSuccess;
    if (keys.ring && !keys.rope_tab) return cudaErrorInvalidValue;
    if (attention_mma_supported(dtype, keys, head_dim)) return attention_mma(out, q, Lq, heads, head_dim, keys, scale, stream);
    if (head_dim % 32 != 0 || head_dim > 32 * kMaxChunks) return cudaErrorInvalidValue;
    const RopeTabs tabs = rope_tabs(keys);
    const size_t    smem = sizeof(float) * size_t(kTile * (head_dim + 1) + kTile * head_dim + kWarps * head_dim);
    const dim3      grid(unsigned((Lq + kWarps - 1) / kWarps), unsigned(heads));
    if (keys.ring && keys.layout.fmt != KvFormat::f32 && keys.layout.fmt != KvFormat::bf16) return cudaErrorInvalidValue;
    return dispatch_float(dtype, [&](auto qt) {
        using TQ = typename decltype(qt)::type;
        if (smem > 48 * 1024) {  // D > 128 needs more than the default dynamic shared memory
            const cudaError_t e = cudaFuncSetAttribute(attention_kernel<TQ>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
            if (e != cudaSuccess) return e;
        }
        attention_kernel<TQ><<<grid, kWarps * 32, smem, stream>>>(out, q, Lq, heads, head_dim, keys, tabs, scale);
        return cudaGetLastError();
    });
}

bool attention_ring_supported(DType q_dtype, const AttnKeys & keys, int head_dim) {
    if (attention_mma_supported(q_dtype, keys, head_dim)) return true;
    return head_dim % 32 == 0 && head_dim <= 32 * kMaxChunks && (!keys.ring || keys.layout.fmt == KvFormat::f32 ||
                                                                 keys.layout.fmt == KvFormat::bf16);
}

} // namespace avs::kernels
