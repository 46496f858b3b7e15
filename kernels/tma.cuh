// Hopper asynchronous-copy primitives for warp-specialized kernels: shared-memory mbarriers (arrival
// counts plus TMA transaction bytes), TMA tile loads, named barriers and warpgroup register
// reallocation. Real instructions on sm_90a only (AVS_WGMMA); elsewhere they trap, and callers never
// launch those kernels there.
#pragma once

#include "kernels/wgmma.cuh"

#include <cstdint>

namespace avs::kernels::tma {

__device__ __forceinline__ uint32_t saddr(const void * p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint64_t * bar, uint32_t count) {
#if AVS_WGMMA
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(saddr(bar)), "r"(count) : "memory");
#endif
}
// Makes initialised barriers visible to the async proxy (TMA) and the other threads.
__device__ __forceinline__ void mbar_fence_init() {
#if AVS_WGMMA
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
// One arrival that also announces `bytes` of TMA data the current phase waits for.
__device__ __forceinline__ void mbar_expect_tx(uint64_t * bar, uint32_t bytes) {
#if AVS_WGMMA
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(saddr(bar)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint64_t * bar) {
#if AVS_WGMMA
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(saddr(bar)) : "memory");
#endif
}
// Blocks until the phase with parity `parity` has completed. On a fresh barrier, parity 1 (the phase
// "before" the first) counts as completed, which lets producers start without a special case.
__device__ __forceinline__ void mbar_wait(uint64_t * bar, uint32_t parity) {
#if AVS_WGMMA
    uint32_t done = 0;
    while (!done) {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done) : "r"(saddr(bar)), "r"(parity) : "memory");
    }
#endif
}

// A 4-D tile of the tensor map (coordinates innermost first) into shared memory; completion is
// counted in bytes on `bar`. The map lives in kernel parameter space (__grid_constant__).
__device__ __forceinline__ void load_4d(void * dst, const void * map, uint64_t * bar, int c0, int c1, int c2, int c3) {
#if AVS_WGMMA
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n"
                 ::"r"(saddr(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(saddr(bar)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
#else
    __trap();
#endif
}
__device__ __forceinline__ void prefetch_map(const void * map) {
#if AVS_WGMMA
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

// Named barriers (ids 1..15; 0 is __syncthreads) over `threads` threads of the block.
__device__ __forceinline__ void bar_sync(int id, int threads) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory"); }
__device__ __forceinline__ void bar_arrive(int id, int threads) { asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory"); }

// Warpgroup-wide register budget changes (the producer gives registers to the consumers).
template <int N> __device__ __forceinline__ void regs_dec() {
#if AVS_WGMMA
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N> __device__ __forceinline__ void regs_inc() {
#if AVS_WGMMA
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

} // namespace avs::kernels::tma
