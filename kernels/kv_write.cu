#include "kernels/kv_write.cuh"

#include "engine/cache/kv_elem.h"
#include "engine/cache/kv_quant.h"
#include "kernels/common.cuh"

namespace avs::kernels {
namespace {

__device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }

// What one launch encodes: frame f of the chunk (blockIdx.z / 2), K (even) or V (odd).
struct Src {
    const void * k;
    const void * v;
    DType        dt;
    int64_t      per_frame;
};
__device__ __forceinline__ float src_at(const Src & s, bool is_v, int64_t f, int64_t i) {
    const void * p = is_v ? s.v : s.k;
    const int64_t j = f * s.per_frame + i;
    return s.dt == DType::f32 ? static_cast<const float *>(p)[j] : to_f32(static_cast<const bf16 *>(p)[j]);
}
__device__ __forceinline__ uint8_t * slot_of(uint8_t * store, const KvLayout & L, const RingView & ring, int64_t frame0, int64_t f) {
    return store + int64_t(ring.slot_of_frame(frame0 + f)) * L.slot_bytes;
}

__device__ float block_max(float v, float * red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < int(blockDim.x >> 5) ? red[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// f32 / bf16 stores: plain conversion. grid (x: elements, y: frame, z: K/V)
__global__ void plain_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s) {
    const int64_t f = blockIdx.y;
    const bool    is_v = blockIdx.z == 1;
    uint8_t *     dst = slot_of(store, L, ring, frame0, f) + (is_v ? L.v_data : L.k_data);
    for (int64_t i = global_thread(); i < s.per_frame; i += int64_t(gridDim.x) * blockDim.x) {
        const float x = src_at(s, is_v, f, i);
        if (L.fmt == KvFormat::f32) reinterpret_cast<float *>(dst)[i] = x;
        else reinterpret_cast<uint16_t *>(dst)[i] = f32_to_bf16(x);
    }
}

// int8 keys, step 1: the frame's per-channel mean (sequential over tokens, as the CPU twin).
// grid (x: head, y: frame), head_dim threads.
__global__ void key_mean_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s) {
    const int64_t f = blockIdx.y, h = blockIdx.x, d = threadIdx.x;
    float         sum = 0.0f;
    for (int64_t t = 0; t < L.tokens; ++t) sum += src_at(s, false, f, (t * L.heads + h) * L.head_dim + d);
    float * mean = reinterpret_cast<float *>(slot_of(store, L, ring, frame0, f) + L.k_meta) + int64_t(L.blocks()) * L.heads;
    mean[h * L.head_dim + d] = sum / float(L.tokens);
}

// fp8 K/V, int8 K (after the mean), int8's fp8 V: one block per (64-token block, head, frame*2 + K/V).
__global__ void block8_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s) {
    __shared__ float red[32];
    const int64_t b = blockIdx.x, h = blockIdx.y, f = blockIdx.z / 2;
    const bool    is_v = blockIdx.z % 2 == 1;
    const bool    int8_keys = L.fmt == KvFormat::int8 && !is_v;
    uint8_t *     slot = slot_of(store, L, ring, frame0, f);
    const int64_t t0 = b * kKvBlockTokens, nt = imin64(kKvBlockTokens, L.tokens - t0), D = L.head_dim;
    const float * mean = int8_keys ? reinterpret_cast<const float *>(slot + L.k_meta) + int64_t(L.blocks()) * L.heads + h * D : nullptr;
    float         amax = 0.0f;
    for (int64_t e = threadIdx.x; e < nt * D; e += blockDim.x) {
        const int64_t t = t0 + e / D, d = e % D;
        float         x = src_at(s, is_v, f, (t * L.heads + h) * D + d);
        if (int8_keys) x -= mean[d];
        amax = fmaxf(amax, fabsf(x));
    }
    amax = block_max(amax, red);
    const float sc = int8_keys ? kvq::int8_scale(amax) : kvq::fp8_scale(amax);
    if (threadIdx.x == 0) reinterpret_cast<float *>(slot + (is_v ? L.v_meta : L.k_meta))[b * L.heads + h] = sc;
    uint8_t * data = slot + (is_v ? L.v_data : L.k_data);
    for (int64_t e = threadIdx.x; e < nt * D; e += blockDim.x) {
        const int64_t t = t0 + e / D, d = e % D, i = (t * L.heads + h) * D + d;
        const float   x = src_at(s, is_v, f, i);
        data[i] = int8_keys ? uint8_t(kvq::int8_encode(x - mean[d], sc)) : f32_to_fp8e4m3(x / sc);
    }
}

// KIVI keys: thread = (group, head, channel pair); two channels so each thread owns whole bytes.
__global__ void kivi_keys_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s, int64_t n) {
    const int64_t id = global_thread();
    if (id >= n) return;
    const int64_t D = L.head_dim, pairs = D / 2, per_frame = int64_t(L.kivi_groups()) * L.heads * pairs;
    const int64_t f = id / per_frame, r = id % per_frame;
    const int64_t g = r / (L.heads * pairs), h = (r / pairs) % L.heads, d0 = 2 * (r % pairs);
    uint8_t *     slot = slot_of(store, L, ring, frame0, f);
    const int64_t t0 = g * kKiviGroupK, t1 = imin64(L.tokens, t0 + kKiviGroupK);
    float         sc[2], lo[2];
    for (int c = 0; c < 2; ++c) {
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t t = t0; t < t1; ++t) {
            const float x = src_at(s, false, f, (t * L.heads + h) * D + d0 + c);
            mn = fminf(mn, x), mx = fmaxf(mx, x);
        }
        const kvq::KiviParams p = kvq::kivi_params(mn, mx);
        uint16_t *            m = reinterpret_cast<uint16_t *>(slot + L.k_meta) + ((g * L.heads + h) * D + d0 + c) * 2;
        m[0] = p.scale, m[1] = p.min;
        sc[c] = f16_to_f32(p.scale), lo[c] = f16_to_f32(p.min);
    }
    for (int64_t t = t0; t < t1; ++t) {
        const int64_t i = (t * L.heads + h) * D + d0;
        const uint8_t a = kvq::kivi_encode(src_at(s, false, f, i), sc[0], lo[0]);
        const uint8_t b = kvq::kivi_encode(src_at(s, false, f, i + 1), sc[1], lo[1]);
        slot[L.k_data + i / 2] = uint8_t(a | (b << 4));
    }
}

// KIVI values: thread = (token, head, 32-channel group).
__global__ void kivi_values_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s, int64_t n) {
    const int64_t id = global_thread();
    if (id >= n) return;
    const int64_t D = L.head_dim, ng = D / kKiviGroupV, per_frame = int64_t(L.tokens) * L.heads * ng;
    const int64_t f = id / per_frame, r = id % per_frame;
    const int64_t th = r / ng, c = r % ng;  // th = t * H + h
    uint8_t *     slot = slot_of(store, L, ring, frame0, f);
    const int64_t i0 = th * D + c * kKiviGroupV;
    float         mn = INFINITY, mx = -INFINITY;
    for (int d = 0; d < kKiviGroupV; ++d) {
        const float x = src_at(s, true, f, i0 + d);
        mn = fminf(mn, x), mx = fmaxf(mx, x);
    }
    const kvq::KiviParams p = kvq::kivi_params(mn, mx);
    uint16_t *            m = reinterpret_cast<uint16_t *>(slot + L.v_meta) + (th * ng + c) * 2;
    m[0] = p.scale, m[1] = p.min;
    const float sc = f16_to_f32(p.scale), lo = f16_to_f32(p.min);
    for (int d = 0; d < kKiviGroupV; d += 2) {
        const uint8_t a = kvq::kivi_encode(src_at(s, true, f, i0 + d), sc, lo);
        const uint8_t b = kvq::kivi_encode(src_at(s, true, f, i0 + d + 1), sc, lo);
        slot[L.v_data + (i0 + d) / 2] = uint8_t(a | (b << 4));
    }
}

// NVFP4 step 1: the frame's amax per K/V into meta byte 4 (meta 0 gets the tensor scale in step 2).
// grid (x: element blocks, y: frame, z: K/V); meta[4] must start at 0 (set by nvfp4_clear_kernel).
__global__ void nvfp4_clear_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0) {
    uint8_t * slot = slot_of(store, L, ring, frame0, blockIdx.x);
    if (threadIdx.x < 2) reinterpret_cast<uint32_t *>(slot + (threadIdx.x ? L.v_meta : L.k_meta))[1] = 0u;
}
__global__ void nvfp4_amax_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s) {
    __shared__ float red[32];
    const int64_t f = blockIdx.y;
    const bool    is_v = blockIdx.z == 1;
    float         amax = 0.0f;
    for (int64_t i = global_thread(); i < s.per_frame; i += int64_t(gridDim.x) * blockDim.x) amax = fmaxf(amax, fabsf(src_at(s, is_v, f, i)));
    amax = block_max(amax, red);
    uint8_t * slot = slot_of(store, L, ring, frame0, f);
    // non-negative floats order like their bit patterns
    if (threadIdx.x == 0) atomicMax(reinterpret_cast<unsigned int *>(slot + (is_v ? L.v_meta : L.k_meta)) + 1, __float_as_uint(amax));
}
// NVFP4 step 2: thread = one 16-value micro-block. grid (x: blocks, y: frame, z: K/V)
__global__ void nvfp4_encode_kernel(uint8_t * store, KvLayout L, RingView ring, int64_t frame0, Src s) {
    const int64_t f = blockIdx.y;
    const bool    is_v = blockIdx.z == 1;
    uint8_t *     slot = slot_of(store, L, ring, frame0, f);
    uint8_t *     meta = slot + (is_v ? L.v_meta : L.k_meta);
    const float   g = kvq::nvfp4_tensor_scale(__uint_as_float(reinterpret_cast<const unsigned int *>(meta)[1]));
    const int64_t nb = s.per_frame / kNvfp4Block;
    for (int64_t b = global_thread(); b < nb; b += int64_t(gridDim.x) * blockDim.x) {
        if (b == 0) reinterpret_cast<float *>(meta)[0] = g;
        float x[kNvfp4Block], ba = 0.0f;
        for (int i = 0; i < kNvfp4Block; ++i) x[i] = src_at(s, is_v, f, b * kNvfp4Block + i), ba = fmaxf(ba, fabsf(x[i]));
        const uint8_t bs = kvq::nvfp4_block_scale(ba, g);
        meta[16 + b] = bs;
        const float dec = fp8e4m3_to_f32(bs) * g;
        uint8_t * data = slot + (is_v ? L.v_data : L.k_data) + b * (kNvfp4Block / 2);
        for (int i = 0; i < kNvfp4Block; i += 2)
            data[i / 2] = uint8_t(kvq::nvfp4_encode(x[i], dec) | (kvq::nvfp4_encode(x[i + 1], dec) << 4));
    }
}

template <typename T>
__global__ void read_kernel(T * k, T * v, const uint8_t * slot, KvLayout L) {
    const int64_t n = L.elems();
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t d = i % L.head_dim, th = i / L.head_dim, h = th % L.heads, t = th / L.heads;
        k[i] = from_f32<T>(kv_decode_elem(L, slot, false, t, h, d));
        v[i] = from_f32<T>(kv_decode_elem(L, slot, true, t, h, d));
    }
}

} // namespace

cudaError_t kv_write(uint8_t * store, const KvLayout & L, const RingView & ring, int64_t frame0, const void * k, const void * v,
                     DType kv_dtype, int64_t frames, cudaStream_t stream) {
    if (frames == 0 || L.elems() == 0) return cudaSuccess;
    if (frames > ring.window || frames > 32767 || frame0 < 0 || L.tokens != ring.tokens_per_frame) return cudaErrorInvalidValue;
    if (kv_dtype != DType::f32 && kv_dtype != DType::bf16) return cudaErrorInvalidValue;
    const Src      s{k, v, kv_dtype, L.elems()};
    const unsigned fz = unsigned(frames);
    switch (L.fmt) {
        case KvFormat::f32:
        case KvFormat::bf16:
            plain_kernel<<<dim3(min(grid_for(s.per_frame), 4096u), fz, 2), kElementThreads, 0, stream>>>(store, L, ring, frame0, s);
            break;
        case KvFormat::int8:
            if (L.head_dim > 1024) return cudaErrorInvalidValue;
            key_mean_kernel<<<dim3(unsigned(L.heads), fz), unsigned(L.head_dim), 0, stream>>>(store, L, ring, frame0, s);
            [[fallthrough]];
        case KvFormat::fp8:
            block8_kernel<<<dim3(unsigned(L.blocks()), unsigned(L.heads), 2 * fz), 256, 0, stream>>>(store, L, ring, frame0, s);
            break;
        case KvFormat::int4: {
            const int64_t nk = frames * L.kivi_groups() * L.heads * (L.head_dim / 2);
            const int64_t nv = frames * int64_t(L.tokens) * L.heads * (L.head_dim / kKiviGroupV);
            kivi_keys_kernel<<<grid_for(nk, 128), 128, 0, stream>>>(store, L, ring, frame0, s, nk);
            kivi_values_kernel<<<grid_for(nv, 128), 128, 0, stream>>>(store, L, ring, frame0, s, nv);
            break;
        }
        case KvFormat::nvfp4: {
            nvfp4_clear_kernel<<<fz, 32, 0, stream>>>(store, L, ring, frame0);
            nvfp4_amax_kernel<<<dim3(min(grid_for(s.per_frame), 1024u), fz, 2), kElementThreads, 0, stream>>>(store, L, ring, frame0, s);
            const int64_t nb = s.per_frame / kNvfp4Block;
            nvfp4_encode_kernel<<<dim3(min(grid_for(nb, 128), 4096u), fz, 2), 128, 0, stream>>>(store, L, ring, frame0, s);
            break;
        }
        default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

cudaError_t kv_read(void * k, void * v, DType out_dtype, const uint8_t * store, const KvLayout & L, int64_t slot, cudaStream_t stream) {
    const uint8_t * p = store + slot * L.slot_bytes;
    return dispatch_float(out_dtype, [&](auto ot) {
        using T = typename decltype(ot)::type;
        read_kernel<T><<<min(grid_for(L.elems()), 4096u), kElementThreads, 0, stream>>>(static_cast<T *>(k), static_cast<T *>(v), p, L);
        return cudaGetLastError();
    });
}

} // namespace avs::kernels
