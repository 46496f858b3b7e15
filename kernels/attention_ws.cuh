// Hopper (sm_90a) warp-specialized attention, FlashAttention-3's schedule: a producer warpgroup streams
// K/V tiles by TMA (straight from the ring slots, the bf16 tail or plain K/V) into a ring of shared-
// memory stages guarded by mbarriers; two consumer warpgroups of 64 query rows run both GEMMs as
// asynchronous warpgroup MMAs, each overlapping its softmax of tile j with its P V of tile j - 1, and
// ping-ponging with the other. For an 8-bit store (fp8, int8) the producer decodes raw tiles into the
// bf16 stages while the consumers multiply. Same math, masks, Q-side temporal RoPE and split-KV as
// attention_mma.cu. Internal to kernels/attention_mma.cu.
#pragma once

#include "kernels/attention.cuh"

namespace avs::kernels {

// True when this build and device can run it for these keys (sm_90a code built, a 9.0 device, plain bf16
// keys or a bf16 / fp8 / int8 ring store with a bf16 tail, head_dim 64 or 128).
bool attention_ws_supported(const AttnKeys & keys, int head_dim);
cudaError_t attention_ws(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                         cudaStream_t stream);
// The ring's bf16 tail alone, as split partial `slot` of keys.nsplit (no merge).
cudaError_t attention_ws_tail(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, int slot, float scale,
                              cudaStream_t stream);

// kernels/attention_ws8.cu: an fp8 / int8 ring store read by 8-bit warpgroup MMAs on its stored keys
// and f16 ones on its values widened in shared memory (head_dim 128). With a tail it needs keys.nsplit >= 2: the history takes splits [0, nsplit - 1), the
// tail (through attention_ws_tail) the last; the partials are merged.
bool        attention_ws8_supported(const AttnKeys & keys, int head_dim);
cudaError_t attention_ws8(void * out, const void * q, int64_t Lq, int heads, int head_dim, const AttnKeys & keys, float scale,
                          cudaStream_t stream);

} // namespace avs::kernels
