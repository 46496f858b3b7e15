// FLOP model of one streamed chunk (issue 3 part 4): every GEMM and both attention products count
// 2·m·n·k. The compute floor divides these FLOPs by the bf16 rate of one large cuBLAS GEMM, i.e. it
// assumes every op of the chunk could run at peak GEMM speed and everything else were free.
#pragma once

#include "engine/model/config.h"

#include <cstdint>

namespace avs::bench {

struct PassFlops {
    double gemm       = 0;  // patch embedding, time MLP, q/k/v/o, cross q/o, FFN, head
    double attn_self  = 0;  // QK^T + PV over the visible keys (sinks + window, incl. the chunk)
    double attn_cross = 0;  // QK^T + PV over the text_len cached text keys
    double total() const { return gemm + attn_self + attn_cross; }
};

// One DiT pass over a chunk of `frames` latent frames with `tokens_per_frame` tokens each, whose
// self-attention sees `visible_tokens` keys. The cross-attention K/V (computed once per prompt) are
// not counted: they are not part of the chunk loop.
PassFlops pass_flops(const ModelConfig & m, int frames, int64_t tokens_per_frame, int64_t visible_tokens);

// Self-attention FLOPs of one call: 4·Lq·Lk·H·D (QK^T and PV).
inline double attention_flops(int64_t lq, int64_t lk, int64_t heads, int64_t head_dim) {
    return 4.0 * double(lq) * double(lk) * double(heads) * double(head_dim);
}

} // namespace avs::bench
