#include "kernels/attention_mma.cuh"

#include "kernels/attention_keys.cuh"
#include "kernels/common.cuh"

namespace avs::kernels {
namespace {

constexpr int kWarps = 4;            // 16 query rows each
constexpr int kBQ    = 16 * kWarps;  // query rows per block
constexpr int kBK    = 64;           // keys per tile
constexpr int kPad   = 8;            // bf16 padding per smem row: conflict-free fragment loads

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&v);
}

// d += a . b  (m16n8k16, bf16 inputs, fp32 accumulators)
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 32-bit load of two adjacent bf16 (shared or global)
__device__ __forceinline__ uint32_t lds32(const bf16 * p) { return *reinterpret_cast<const uint32_t *>(p); }

template <int D, typename TK>
__global__ void __launch_bounds__(kWarps * 32) attention_mma_kernel(bf16 * __restrict__ out, const bf16 * __restrict__ q,
                                                                    int64_t Lq, int H, AttnKeys K, RopeTabs tabs, float scale) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 * ks = reinterpret_cast<bf16 *>(smem_raw);  // [kBK][D + kPad]
    bf16 * vt = ks + kBK * (D + kPad);               // [D][kBK + kPad]  (V transposed)
    KeyInfo * info = reinterpret_cast<KeyInfo *>(vt + D * (kBK + kPad));  // [kBK]
    constexpr int ldk = D + kPad, ldv = kBK + kPad;

    const int     h    = blockIdx.y;
    const int     warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int     g = lane / 4, t = lane % 4;
    const int64_t q0 = int64_t(blockIdx.x) * kBQ;

    // Q A-fragments straight from global memory into registers, kept for the whole key loop (no
    // shared-memory staging: it would cost a quarter of the block's shared memory for one use).
    uint32_t qf[D / 16][4];
    {
        const int64_t r0 = q0 + warp * 16 + g, r1 = r0 + 8;
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

    // Rows this thread owns: r0 = g, r1 = g + 8 of the warp's 16.
    const int64_t row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const int64_t lim0 = key_limit(K, row0), lim1 = key_limit(K, row1);
    const int64_t last_row  = min(Lq - 1, q0 + kBQ - 1);
    const int64_t block_lim = key_limit(K, last_row);

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const float sl2 = scale * 1.4426950408889634f;  // exp(x*scale) = exp2(x*scale*log2 e)

    for (int64_t j0 = 0; j0 < block_lim; j0 += kBK) {
        __syncthreads();  // the previous tile is consumed
        stage_kv_tile<D, TK>(K, tabs, H, h, j0, kBK, block_lim, ks, ldk, vt, ldv, info);
        __syncthreads();

        // S = Q K^T for this warp's 16 rows x kBK keys
        float s[kBK / 8][4];
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            const bf16 * kr = ks + (8 * j + g) * ldk + 2 * t;
#pragma unroll
            for (int kd = 0; kd < D / 16; ++kd) mma_bf16(s[j], qf[kd], lds32(kr + 16 * kd), lds32(kr + 16 * kd + 8));
        }
        // mask, running max
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            const int64_t key = j0 + 8 * j + 2 * t;
#pragma unroll
            for (int c = 0; c < 2; ++c) {
                s[j][c]     = key + c < lim0 ? s[j][c] * sl2 : -INFINITY;
                s[j][2 + c] = key + c < lim1 ? s[j][2 + c] * sl2 : -INFINITY;
                mx0 = fmaxf(mx0, s[j][c]);
                mx1 = fmaxf(mx1, s[j][2 + c]);
            }
        }
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
        }
        // rows with no visible key yet keep m = -inf: use 0 as the base so nothing becomes NaN
        const float b0 = mx0 == -INFINITY ? 0.0f : mx0, b1 = mx1 == -INFINITY ? 0.0f : mx1;
        const float c0 = exp2f(m0 - b0), c1 = exp2f(m1 - b1);
        m0 = mx0, m1 = mx1;
        float ps0 = 0.0f, ps1 = 0.0f;
        uint32_t pa[kBK / 16][4];
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j) {
            const float p0 = exp2f(s[j][0] - b0), p1 = exp2f(s[j][1] - b0);
            const float p2 = exp2f(s[j][2] - b1), p3 = exp2f(s[j][3] - b1);
            ps0 += p0 + p1;
            ps1 += p2 + p3;
            // the C layout of two adjacent key n-tiles is the A layout of one k16 step (FA2)
            pa[j / 2][(j % 2) * 2 + 0] = pack_bf16(p0, p1);
            pa[j / 2][(j % 2) * 2 + 1] = pack_bf16(p2, p3);
        }
        l0 = l0 * c0 + ps0;
        l1 = l1 * c1 + ps1;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) {
            o[nd][0] *= c0, o[nd][1] *= c0, o[nd][2] *= c1, o[nd][3] *= c1;
            const bf16 * vr = vt + (8 * nd + g) * ldv + 2 * t;
#pragma unroll
            for (int kk = 0; kk < kBK / 16; ++kk) mma_bf16(o[nd], pa[kk], lds32(vr + 16 * kk), lds32(vr + 16 * kk + 8));
        }
    }
    // finish the row sums across the 4 threads of each row, normalise, store
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, off);
        l1 += __shfl_xor_sync(0xffffffffu, l1, off);
    }
    const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
        const int col = 8 * nd + 2 * t;
        if (row0 < Lq) *reinterpret_cast<uint32_t *>(out + (row0 * H + h) * D + col) = pack_bf16(o[nd][0] * i0, o[nd][1] * i0);
        if (row1 < Lq) *reinterpret_cast<uint32_t *>(out + (row1 * H + h) * D + col) = pack_bf16(o[nd][2] * i1, o[nd][3] * i1);
    }
}

template <int D, typename TK>
cudaError_t launch(void * out, const void * q, int64_t Lq, int heads, const AttnKeys & keys, const RopeTabs & tabs, float scale,
                   cudaStream_t stream) {
    const size_t smem = sizeof(bf16) * size_t(kBK * (D + kPad) + D * (kBK + kPad)) + sizeof(KeyInfo) * kBK;
    auto * kern = attention_mma_kernel<D, TK>;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const dim3 grid(unsigned((Lq + kBQ - 1) / kBQ), unsigned(heads));
    kern<<<grid, kWarps * 32, smem, stream>>>(static_cast<bf16 *>(out), static_cast<const bf16 *>(q), Lq, heads, keys, tabs, scale);
    return cudaGetLastError();
}

} // namespace

bool attention_mma_supported(DType q_dtype, int head_dim) { return q_dtype == DType::bf16 && (head_dim == 64 || head_dim == 128); }

cudaError_t attention_mma(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream) {
    const RopeTabs tabs = rope_tabs(keys);
    return dispatch_float(keys.dtype, [&](auto kt) {
        using TK = typename decltype(kt)::type;
        return head_dim == 128 ? launch<128, TK>(out, q, Lq, heads, keys, tabs, scale, stream)
                               : launch<64, TK>(out, q, Lq, heads, keys, tabs, scale, stream);
    });
}

} // namespace avs::kernels
