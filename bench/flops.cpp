#include "bench/flops.h"

namespace avs::bench {

PassFlops pass_flops(const ModelConfig & m, int frames, int64_t tokens_per_frame, int64_t visible_tokens) {
    // Mirrors Dit::forward_impl op by op; ProfilingBackend counts the same FLOPs from the actual
    // call shapes, and avs-bench reports both so a drift between model and code shows.
    const double L = double(frames) * double(tokens_per_frame), F = frames, D = m.dim, ffn = m.ffn_dim;
    const double pv = m.patch_volume();
    auto gemm = [](double M, double N, double K) { return 2.0 * M * N * K; };
    PassFlops p;
    p.gemm += gemm(L, D, m.in_channels * pv);                                       // patch embedding
    p.gemm += gemm(F, D, m.freq_dim) + gemm(F, D, D) + gemm(F, 6 * D, D);           // time MLP + projection
    const double block = 4 * gemm(L, D, D)                                          // self q, k, v, o
                       + 2 * gemm(L, D, D)                                          // cross q, o
                       + gemm(L, ffn, D) + gemm(L, D, ffn);                         // FFN
    p.gemm += m.layers * block;
    p.gemm += gemm(L, m.out_channels * pv, D);                                      // head
    p.attn_self  = m.layers * attention_flops(int64_t(L), visible_tokens, m.heads, m.head_dim());
    p.attn_cross = m.layers * attention_flops(int64_t(L), m.text_len, m.heads, m.head_dim());
    return p;
}

} // namespace avs::bench
