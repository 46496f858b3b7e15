// Tensor-core attention (FlashAttention-2 style) for bf16 queries: mma.sync m16n8k16 bf16 with fp32
// accumulation, online softmax in registers, K/V tiles staged in shared memory straight from the
// ring (or plain K/V), keys rotated by their read-time RoPE position while they are staged.
// Runs on sm_80 and newer. Internal to kernels/attention.cu.
#pragma once

#include "kernels/attention.cuh"

namespace avs::kernels {

// True when the mma path handles this shape (bf16 q/out, head_dim 64 or 128).
bool attention_mma_supported(DType q_dtype, int head_dim);
cudaError_t attention_mma(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream);

} // namespace avs::kernels
