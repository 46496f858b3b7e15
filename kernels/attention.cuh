// Attention over either plain K/V or the ring KV cache, read in place (sinks + ring fragments, no
// gather copy), the keys' temporal RoPE pairs rotated by their read-time position as they are loaded
// (ring keys are stored with their spatial rotation already applied).
//
// This is the correctness-first version: fp32 math on CUDA cores, one warp per query row, K/V tiles
// in shared memory, online softmax. The tensor-core (mma.sync / wgmma) kernel replaces its inner
// loops behind the same launcher.
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/ring_view.h"
#include "engine/core/dtype.h"
#include "engine/model/rope.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// Where the keys come from.
struct AttnKeys {
    const void * k = nullptr;  // plain: [nk, H, D] (dtype)
    const void * v = nullptr;
    DType        dtype = DType::f32;
    int64_t      nk = 0;       // number of keys (ring: visible frames * tpf)
    bool         ring = false;
    // ring: the history frames come from `store` (u8 [slots, layout.slot_bytes] in layout.fmt), the
    // last `tail_frames` visible frames (the chunk being generated) from tail_k/tail_v
    // [tail_frames * tpf, H, D] in tail_dtype.
    const uint8_t * store = nullptr;
    KvLayout     layout{};
    const void * tail_k = nullptr;
    const void * tail_v = nullptr;
    DType        tail_dtype = DType::bf16;
    int32_t      tail_frames = 0;
    RingView     view{};       // ring only
    RopeLayout   rope{};       // ring only: keys are rotated at read time
    const float * rope_tab = nullptr;  // ring only: tables from attention_rope_tables()
    int64_t      q_block = 0, k_block = 0;  // > 0: block-causal, key j visible to query i iff j/k_block <= i/q_block
    // Split-KV (ring reads on the tensor-core path): nsplit blocks per query tile each take a share of
    // the frames and write fp32 partial outputs + log-sum-exp to `split_scratch`
    // (attention_split_scratch_floats), merged afterwards. 1 = no split.
    int          nsplit = 1;
    float *      split_scratch = nullptr;
};

// Whether a ring read of this layout/head_dim/q dtype can run on CUDA (quantized formats need the
// tensor-core path: bf16 q, head_dim 64 or 128).
bool attention_ring_supported(DType q_dtype, const AttnKeys & keys, int head_dim);

// How many key splits the tensor-core path wants for this call (1 when it would not fill the GPU
// better, or the path does not apply); the caller provides the scratch for that many.
int     attention_splits(DType q_dtype, int64_t Lq, int heads, int head_dim, const AttnKeys & keys);
int64_t attention_split_scratch_floats(int nsplit, int64_t Lq, int heads, int head_dim);

// Floats needed for the ring's RoPE tables (cos and sin per frame/row/column pair).
int64_t attention_rope_table_floats(const RingView & view, const RopeLayout & rope);
// Fill the tables on the device (fp64 angles) for the frames `view` shows.
cudaError_t attention_rope_tables(float * tab, const RingView & view, const RopeLayout & rope, cudaStream_t stream);

// out[Lq, H, D] = softmax(scale * q K^T) V. q/out f32 or bf16; D a multiple of 32, at most 384
// (tensor cores for D = 64 and 128, the fp32 CUDA-core path otherwise, which reads f32/bf16 stores only).
cudaError_t attention(void * out, const void * q, DType dtype, int64_t Lq, int heads, int head_dim, const AttnKeys & keys,
                      float scale, cudaStream_t stream);

} // namespace avs::kernels
