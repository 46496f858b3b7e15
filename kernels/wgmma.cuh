// Hopper warpgroup MMA (wgmma) wrappers for the attention kernel: bf16 x bf16 -> f32, A from registers
// (the same per-warp fragment as mma.sync m16n8k16), B from shared memory through a matrix descriptor.
// Compiled to real instructions only for sm_90a (AVS_WGMMA); elsewhere the wrappers trap and the
// callers take their mma.sync path instead.
//
// Shared-memory tiles use the 128-byte swizzle of kernels/swizzle.h. The same layout serves both GEMMs
// of attention: keys as K-major B of S = Q K^T, values as N-major (transposed) B of O = P V.
#pragma once

#include "kernels/swizzle.h"

#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AVS_WGMMA 1
#else
#define AVS_WGMMA 0
#endif

namespace avs::kernels::wg {

// Matrix descriptor: start address, leading / stride byte offsets, 128-byte swizzle.
//  K-major B (keys, D contiguous): LBO unused (16), SBO = 1024 (8 rows x 128 B); a k16 step moves the
//    start by 32 B inside the 128-byte row, or to the next panel every 4 steps.
//  N-major B (values, D contiguous, transposed): LBO = bytes between 64-column panels, SBO = 1024
//    (8 key rows); a k16 step (16 keys) moves the start by 2048 B.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
    return uint64_t((smem_addr & 0x3FFFFu) >> 4) | (uint64_t(lbo >> 4) << 16) | (uint64_t(sbo >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void fence() {
#if AVS_WGMMA
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit_and_wait() {
#if AVS_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
// Asynchronous use: commit the issued MMAs as a group, later wait until at most N groups are pending.
__device__ __forceinline__ void commit() {
#if AVS_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void wait() {
#if AVS_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Accumulators of an in-flight MMA are written behind the compiler's back: after wait(), this pins
// every register so no read of it is scheduled before the wait (CUTLASS's warpgroup_fence_operand).
template <int R, int C> __device__ __forceinline__ void fence_regs(float (&d)[R][C]) {
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j) asm volatile("" : "+f"(d[i][j])::"memory");
}
// Generic-proxy writes to shared memory (st.shared, cp.async) made visible to wgmma's async proxy.
__device__ __forceinline__ void fence_async_smem() {
#if AVS_WGMMA
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

#define AVS_WG_D8(d, i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])

// d[64 x 64] (+)= A[64 x 16] B[16 x 64]; d[j] holds columns 8j..8j+7 in the mma.sync C layout.
// accumulate = false overwrites d (the first k-step of a fresh product).
template <int TransB>
__device__ __forceinline__ void mma_m64n64k16(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b, bool accumulate = true) {
#if AVS_WGMMA
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %38, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                 "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
                 "{%32,%33,%34,%35}, %36, p, 1, 1, %37;\n}\n"
                 : AVS_WG_D8(d, 0), AVS_WG_D8(d, 1), AVS_WG_D8(d, 2), AVS_WG_D8(d, 3), AVS_WG_D8(d, 4), AVS_WG_D8(d, 5), AVS_WG_D8(d, 6),
                   AVS_WG_D8(d, 7)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(TransB), "r"(int(accumulate)));
#else
    __trap();
#endif
}

// d[64 x 128] (+)= A[64 x 16] B[16 x 128]. F16: f16 operands instead of bf16 (the 8-bit kernel's P V,
// its values widened exactly from e4m3).
#define AVS_WG_N128_OPS                                                                                                                \
    : AVS_WG_D8(d, 0), AVS_WG_D8(d, 1), AVS_WG_D8(d, 2), AVS_WG_D8(d, 3), AVS_WG_D8(d, 4), AVS_WG_D8(d, 5), AVS_WG_D8(d, 6), AVS_WG_D8(d, 7), \
      AVS_WG_D8(d, 8), AVS_WG_D8(d, 9), AVS_WG_D8(d, 10), AVS_WG_D8(d, 11), AVS_WG_D8(d, 12), AVS_WG_D8(d, 13), AVS_WG_D8(d, 14),          \
      AVS_WG_D8(d, 15)                                                                                                                 \
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(TransB), "r"(int(accumulate))
#define AVS_WG_N128_ASM(T)                                                                                                             \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %70, 0;\n"                                                                                       \
    "wgmma.mma_async.sync.aligned.m64n128k16.f32." T "." T " "                                                                          \
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"                                                                           \
    "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"                                                                  \
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"                                                                  \
    "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "                                                                \
    "{%64,%65,%66,%67}, %68, p, 1, 1, %69;\n}\n"
template <int TransB, bool F16 = false>
__device__ __forceinline__ void mma_m64n128k16(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b, bool accumulate = true) {
#if AVS_WGMMA
    if constexpr (F16) asm volatile(AVS_WG_N128_ASM("f16") AVS_WG_N128_OPS);
    else asm volatile(AVS_WG_N128_ASM("bf16") AVS_WG_N128_OPS);
#else
    __trap();
#endif
}

#undef AVS_WG_N128_OPS
#undef AVS_WG_N128_ASM

// d[64 x 128] (+)= A[64 x 32] B[32 x 128] on 8-bit operands (twice the bf16 rate): s8 x s8 -> s32 or
// e4m3 x e4m3 -> f32. A from registers in the m16n8k32 fragment (register r of a warp's 16 rows: row
// g + 8 (r % 2), k = 16 (r / 2) + 4 t + byte); B K-major only (8-bit operands cannot be transposed), so
// values must be staged as V^T.
#define AVS_WG_I8(d, i) "+r"(d[i][0]), "+r"(d[i][1]), "+r"(d[i][2]), "+r"(d[i][3])
__device__ __forceinline__ void mma_m64n128k32_s8(int (&d)[16][4], const uint32_t (&a)[4], uint64_t b, bool accumulate = true) {
#if AVS_WGMMA
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                 "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
                 "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
                 "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "
                 "{%64,%65,%66,%67}, %68, p;\n}\n"
                 : AVS_WG_I8(d, 0), AVS_WG_I8(d, 1), AVS_WG_I8(d, 2), AVS_WG_I8(d, 3), AVS_WG_I8(d, 4), AVS_WG_I8(d, 5), AVS_WG_I8(d, 6),
                   AVS_WG_I8(d, 7), AVS_WG_I8(d, 8), AVS_WG_I8(d, 9), AVS_WG_I8(d, 10), AVS_WG_I8(d, 11), AVS_WG_I8(d, 12),
                   AVS_WG_I8(d, 13), AVS_WG_I8(d, 14), AVS_WG_I8(d, 15)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)));
#else
    __trap();
#endif
}
__device__ __forceinline__ void mma_m64n128k32_e4m3(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b, bool accumulate = true) {
#if AVS_WGMMA
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
                 "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
                 "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
                 "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "
                 "{%64,%65,%66,%67}, %68, p, 1, 1;\n}\n"
                 : AVS_WG_D8(d, 0), AVS_WG_D8(d, 1), AVS_WG_D8(d, 2), AVS_WG_D8(d, 3), AVS_WG_D8(d, 4), AVS_WG_D8(d, 5), AVS_WG_D8(d, 6),
                   AVS_WG_D8(d, 7), AVS_WG_D8(d, 8), AVS_WG_D8(d, 9), AVS_WG_D8(d, 10), AVS_WG_D8(d, 11), AVS_WG_D8(d, 12),
                   AVS_WG_D8(d, 13), AVS_WG_D8(d, 14), AVS_WG_D8(d, 15)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)));
#else
    __trap();
#endif
}
template <int R, int C> __device__ __forceinline__ void fence_regs(int (&d)[R][C]) {
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int j = 0; j < C; ++j) asm volatile("" : "+r"(d[i][j])::"memory");
}

#undef AVS_WG_I8
#undef AVS_WG_D8

} // namespace avs::kernels::wg
