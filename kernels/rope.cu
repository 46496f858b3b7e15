#include "kernels/rope.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {
namespace {

template <typename T> struct PairOf;
template <> struct PairOf<float> { using type = float2; };
template <> struct PairOf<bf16> { using type = __nv_bfloat162; };

__device__ __forceinline__ float2 pair_to_f32(float2 v) { return v; }
__device__ __forceinline__ float2 pair_to_f32(__nv_bfloat162 v) { return __bfloat1622float2(v); }
template <typename P> __device__ __forceinline__ P pair_from_f32(float2 v);
template <> __device__ __forceinline__ float2 pair_from_f32<float2>(float2 v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat162 pair_from_f32<__nv_bfloat162>(float2 v) { return __float22bfloat162_rn(v); }

// Where the per-frame temporal positions come from: device memory or the launch parameters.
struct DevicePositions {
    const int64_t * p;
    __device__ __forceinline__ int64_t operator()(int64_t f) const { return p[f]; }
};
struct ParamPositions {
    FramePositions v;
    __device__ __forceinline__ int64_t operator()(int64_t f) const { return v.pos[f]; }
};

} // namespace

// One thread per (token, pair): the fp64 angle is computed once and applied to every head.
// Consecutive threads take consecutive pairs of a head, so each head's loads/stores are coalesced.
template <typename T, typename Positions>
static __global__ void rope_kernel(T * __restrict__ x, int64_t tokens, int heads, int head_dim, RopeLayout L,
                                   const Positions frame_positions) {
    using P = typename PairOf<T>::type;
    const int     pairs = L.pairs();
    const int64_t tpf   = L.tokens_per_frame();
    for (int64_t idx = global_thread(); idx < tokens * pairs; idx += grid_threads()) {
        const int64_t tok = idx / pairs;
        const int     p   = int(idx % pairs);
        const int     r   = int(tok % tpf);
        float         c, s;
        rope_cos_sin(L, p, frame_positions(tok / tpf), r / L.grid_w, r % L.grid_w, c, s);
        P * v = reinterpret_cast<P *>(x + tok * heads * head_dim) + p;
        for (int h = 0; h < heads; ++h, v += head_dim / 2) {
            const float2 a = pair_to_f32(*v);
            // no FMA contraction: the same roundings as rope_apply_cpu
            const float2 b = {__fsub_rn(__fmul_rn(a.x, c), __fmul_rn(a.y, s)), __fadd_rn(__fmul_rn(a.x, s), __fmul_rn(a.y, c))};
            *v = pair_from_f32<P>(b);
        }
    }
}

template <typename Positions>
static cudaError_t launch_rope(void * x, DType x_dtype, int64_t tokens, int heads, int head_dim, const RopeLayout & layout,
                               const Positions & positions, cudaStream_t stream) {
    const int pairs = layout.pairs();
    if (head_dim % 2 != 0 || 2 * pairs > head_dim || layout.tokens_per_frame() <= 0) return cudaErrorInvalidValue;
    if (tokens == 0 || heads == 0 || pairs == 0) return cudaSuccess;
    return dispatch_float(x_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if (reinterpret_cast<uintptr_t>(x) % (2 * sizeof(T)) != 0) return cudaErrorMisalignedAddress;
        rope_kernel<T, Positions><<<grid_for(tokens * pairs), kElementThreads, 0, stream>>>(static_cast<T *>(x), tokens, heads,
                                                                                            head_dim, layout, positions);
        return cudaGetLastError();
    });
}

cudaError_t rope(void * x, DType x_dtype, int64_t tokens, int heads, int head_dim, const RopeLayout & layout,
                 const int64_t * frame_positions, cudaStream_t stream) {
    return launch_rope(x, x_dtype, tokens, heads, head_dim, layout, DevicePositions{frame_positions}, stream);
}

cudaError_t rope(void * x, DType x_dtype, int64_t tokens, int heads, int head_dim, const RopeLayout & layout,
                 const FramePositions & frame_positions, cudaStream_t stream) {
    if (tokens > int64_t(frame_positions.frames) * layout.tokens_per_frame()) return cudaErrorInvalidValue;
    return launch_rope(x, x_dtype, tokens, heads, head_dim, layout, ParamPositions{frame_positions}, stream);
}

} // namespace avs::kernels
