// Tensor-core attention (FlashAttention-2 style) for bf16 queries over bf16 or quantized K/V (every ring
// KV format, dequantized tile by tile in shared memory), fp32 accumulation, online softmax in registers.
// K/V tiles are copied asynchronously (cp.async, double-buffered) straight from the ring (or plain K/V);
// keys hold their spatial RoPE and the temporal rotation is applied to Q per key frame. sm_90a: both
// GEMMs as warpgroup MMAs (kernels/wgmma.cuh) on swizzled tiles; sm_80/86/89: mma.sync with ldmatrix
// on padded tiles. On sm_90a, plain bf16 K/V and bf16/fp8/int8 stores go to the warp-specialized kernel
// (attention_ws.cuh) instead.
// Internal to kernels/attention.cu (and tests, which pin a kernel).
#pragma once

#include "kernels/attention.cuh"

namespace avs::kernels {

// Which tensor-core kernel runs. `automatic` (the default) takes the fastest accurate one the build,
// device and keys allow (on Hopper: attention_ws8 for fp8 / int8 stores at head_dim 128 — 8-bit MMAs on
// the stored keys —, else attention_ws); tests and A/B benchmarks pin one (a pinned kernel the call
// cannot use falls back the same way): `warp_specialized` keeps 8-bit stores on attention_ws (which
// dequantizes them to bf16 tiles), `mma8` pins attention_ws8.
// The environment variable AVS_ATTN_KERNEL=ws|ws8|wgmma|mma_sync sets the initial choice.
enum class AttnKernel { automatic, warp_specialized, wgmma, mma_sync, mma8 };
void       attention_set_kernel(AttnKernel k);
AttnKernel attention_kernel();

// True when the mma path handles this shape (bf16 q/out and K/V, head_dim 64 or 128).
bool attention_mma_supported(DType q_dtype, const AttnKeys & keys, int head_dim);
cudaError_t attention_mma(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream);

} // namespace avs::kernels
