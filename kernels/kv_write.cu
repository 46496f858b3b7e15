#include "kernels/kv_write.cuh"

#include "kernels/common.cuh"

namespace avs::kernels {

template <typename TSrc, typename TDst> __device__ __forceinline__ TDst convert(TSrc v) { return from_f32<TDst>(to_f32(v)); }
template <> __device__ __forceinline__ bf16 convert<bf16, bf16>(bf16 v) { return v; }  // bits kept as they are

// grid.y = frame of the chunk (one slot lookup per block), grid-stride over the frame's elements.
template <typename TSrc, typename TDst>
static __global__ void kv_write_kernel(TDst * __restrict__ k_store, TDst * __restrict__ v_store, RingView ring,
                                       int64_t frame0, const TSrc * __restrict__ k, const TSrc * __restrict__ v,
                                       int64_t per_frame) {
    const int64_t f   = blockIdx.y;
    const int64_t src = f * per_frame, dst = int64_t(ring.slot_of_frame(frame0 + f)) * per_frame;
    for (int64_t i = global_thread(); i < per_frame; i += grid_threads()) {
        k_store[dst + i] = convert<TSrc, TDst>(k[src + i]);
        v_store[dst + i] = convert<TSrc, TDst>(v[src + i]);
    }
}

cudaError_t kv_write(void * k_store, void * v_store, DType store_dtype, const RingView & ring, int64_t frame0,
                     const void * k, const void * v, DType kv_dtype, int64_t frames, int64_t heads, int64_t head_dim,
                     cudaStream_t stream) {
    if (frames == 0) return cudaSuccess;
    if (frames > ring.window || frames > 65535 || frame0 < 0) return cudaErrorInvalidValue;
    const int64_t per_frame = int64_t(ring.tokens_per_frame) * heads * head_dim;
    if (per_frame == 0) return cudaSuccess;
    const dim3 grid(grid_for(per_frame) < 4096 ? grid_for(per_frame) : 4096u, unsigned(frames));
    return dispatch_float(kv_dtype, [&](auto in) {
        using TSrc = typename decltype(in)::type;
        return dispatch_float(store_dtype, [&](auto out) {
            using TDst = typename decltype(out)::type;
            kv_write_kernel<TSrc, TDst><<<grid, kElementThreads, 0, stream>>>(
                static_cast<TDst *>(k_store), static_cast<TDst *>(v_store), ring, frame0, static_cast<const TSrc *>(k),
                static_cast<const TSrc *>(v), per_frame);
            return cudaGetLastError();
        });
    });
}

} // namespace avs::kernels
