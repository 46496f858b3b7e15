// Device helpers shared by the kernels: f32/bf16 element access, warp and block sums, launch
// shapes and dtype dispatch. Included from kernels/*.cu only; the per-op launcher headers
// (kernels/<op>.cuh) stay plain C++ so that host code compiled by g++ can include them.
#pragma once

#include "engine/core/dtype.h"
#include "engine/model/rope.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace avs::kernels {

using bf16 = __nv_bfloat16;

// ---- element access (math is always fp32; bf16 rounds to nearest even like the CPU twin) ----

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(bf16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float v) { return __float2bfloat16_rn(v); }

// ---- reductions ----

// Butterfly sum: every lane ends with the same bits (fp addition is commutative).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block; every thread gets the total. blockDim.x must be a multiple of 32 (<= 1024);
// `red` is a __shared__ float[32] that may be reused by back-to-back calls.
__device__ __forceinline__ float block_sum(float v, float * red) {
    v = warp_sum(v);
    const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
    __syncthreads();  // a previous call may still be reading red
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < int(blockDim.x >> 5) ? red[lane] : 0.0f;
    return warp_sum(v);
}

// ---- row kernels (norms): one block per row, the row held in registers ----
// Thread t holds elements t, t + blockDim.x, ... (kVec of them): coalesced, and the row is read
// from memory once however many passes the statistics take.

struct RowLaunch {
    int threads = 0;  // 0: the row is too long
    int vec     = 0;  // 1, 4 or 16 elements per thread
};

inline RowLaunch row_launch(int64_t D) {
    const auto threads_for = [D](int vec) { return int((((D + vec - 1) / vec) + 31) / 32 * 32); };
    for (int vec : {1, 4, 16})
        if (threads_for(vec) <= 512) return {threads_for(vec), vec};
    if (threads_for(16) <= 1024) return {threads_for(16), 16};  // D <= 16384
    return {};
}

// Calls f(std::integral_constant<int, vec>{}) so a launcher can instantiate its kernel per vec.
template <typename F> cudaError_t with_row_vec(int vec, F && f) {
    switch (vec) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 16: return f(std::integral_constant<int, 16>{});
    default: return cudaErrorInvalidValue;
    }
}

template <int kVec, typename T> __device__ __forceinline__ void load_row(float (&v)[kVec], const T * row, int D) {
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
        const int i = int(threadIdx.x) + k * int(blockDim.x);
        v[k] = i < D ? to_f32(row[i]) : 0.0f;
    }
}

// LayerNorm statistics of a register-held row, two-pass in fp32 (no cancellation from E[x^2]-E[x]^2).
template <int kVec>
__device__ __forceinline__ void row_mean_rstd(const float (&v)[kVec], int D, float eps, float * red, float & mean, float & rstd) {
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kVec; ++k) s += v[k];
    mean = block_sum(s, red) / float(D);
    float s2 = 0.0f;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
        const int   i = int(threadIdx.x) + k * int(blockDim.x);
        const float d = i < D ? v[k] - mean : 0.0f;
        s2 += d * d;
    }
    rstd = 1.0f / sqrtf(block_sum(s2, red) / float(D) + eps);  // IEEE sqrt/div: rsqrtf is 2 ulp
}

// ---- RoPE ----

// cos/sin of pair p (0 .. layout.pairs()-1) of a token at temporal position `t_pos` and grid cell
// (row i, column j): the same fp64 angle as engine/model/rope.cpp (frequencies restart per axis),
// rounded to fp32. Shared by the rope kernel and attention's read-time key rotation.
__device__ __forceinline__ void rope_cos_sin(const RopeLayout & L, int p, int64_t t_pos, int i, int j, float & c, float & s) {
    int64_t n;
    int     m, pairs;
    if (p < L.pairs_t) {
        n = t_pos, m = p, pairs = L.pairs_t;
    } else if (p < L.pairs_t + L.pairs_h) {
        n = i, m = p - L.pairs_t, pairs = L.pairs_h;
    } else {
        n = j, m = p - L.pairs_t - L.pairs_h, pairs = L.pairs_w;
    }
    const double inv_freq = pow(L.theta, -2.0 * m / (2.0 * pairs));
    double       sd, cd;
    sincos(double(n) * inv_freq, &sd, &cd);
    c = float(cd);
    s = float(sd);
}

// ---- elementwise launch shape ----

constexpr int     kElementThreads = 256;
constexpr int64_t kMaxGrid        = int64_t(1) << 20;  // grid-stride loops cover the rest

inline unsigned grid_for(int64_t n, int threads = kElementThreads) {
    const int64_t b = (n + threads - 1) / threads;
    return unsigned(b < kMaxGrid ? b : kMaxGrid);
}

__device__ __forceinline__ int64_t global_thread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

// ---- dtype dispatch: f(Tag<float>{}) or f(Tag<bf16>{}) ----

template <typename T> struct Tag { using type = T; };

template <typename F> cudaError_t dispatch_float(DType t, F && f) {
    switch (t) {
    case DType::f32: return f(Tag<float>{});
    case DType::bf16: return f(Tag<bf16>{});
    default: return cudaErrorInvalidValue;
    }
}

// ---- elementwise y = Op::apply(x) over f32/bf16 operands (fp32 math) ----

// No __restrict__: in place is allowed.
template <typename Op, typename TIn, typename TOut>
static __global__ void unary_kernel(TOut * y, const TIn * x, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = from_f32<TOut>(Op::apply(to_f32(x[i])));
}

template <typename Op>
cudaError_t launch_unary(void * y, DType y_dtype, const void * x, DType x_dtype, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (y == x && y_dtype != x_dtype) return cudaErrorInvalidValue;  // element i would overwrite others' inputs
    return dispatch_float(x_dtype, [&](auto in) {
        using TIn = typename decltype(in)::type;
        return dispatch_float(y_dtype, [&](auto out) {
            using TOut = typename decltype(out)::type;
            unary_kernel<Op, TIn, TOut><<<grid_for(n), kElementThreads, 0, stream>>>(static_cast<TOut *>(y),
                                                                                    static_cast<const TIn *>(x), n);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
