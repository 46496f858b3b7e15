// Tensor-core attention (FlashAttention-2 style) for bf16 queries and K/V: mma.sync m16n8k16 bf16
// with fp32 accumulation, online softmax in registers, K/V tiles copied asynchronously (cp.async,
// double-buffered) into shared memory straight from the ring (or plain K/V), keys' temporal pairs
// rotated in shared memory by their read-time RoPE position, fragments loaded with ldmatrix (V transposed on load).
// Runs on sm_80 and newer. Internal to kernels/attention.cu.
#pragma once

#include "kernels/attention.cuh"

namespace avs::kernels {

// True when the mma path handles this shape (bf16 q/out and K/V, head_dim 64 or 128).
bool attention_mma_supported(DType q_dtype, const AttnKeys & keys, int head_dim);
cudaError_t attention_mma(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream);

} // namespace avs::kernels
