// The bf16 rate of one large cuBLAS GEMM (bf16 in and out, fp32 accumulate), measured in the same
// run as the DiT benchmark: the denominator of the compute floor. Built only with CUDA.
#pragma once

#include "engine/core/result.h"

namespace avs::bench {

struct GemmPeak {
    int    n      = 0;   // M = N = K
    int    iters  = 0;
    double ms     = 0;   // median of `iters` event-timed GEMMs
    double tflops = 0;   // 2·n³ / ms
};

// n x n x n, `warmup` untimed calls then `iters` calls, each timed by its own cudaEvent pair on a
// private stream of device 0. Inputs are filled with pseudo-random bf16 in [-1, 1): zeros would let
// the GPU run cooler and clock higher than real data allows.
Result<GemmPeak> measure_gemm_peak(int n, int warmup, int iters);

} // namespace avs::bench
