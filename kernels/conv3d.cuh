// Causal 3-D convolution as an implicit GEMM on tensor cores (bf16 in, fp32 accumulate): the video
// decoders' workhorse. The im2col matrix is never materialised: each tile of it is gathered from the
// input frames straight into shared memory, with the "same" spatial zero padding, nearest-neighbour
// x2 upsampling and causal zero frames resolved in the gather.
#pragma once

#include "engine/core/dtype.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace avs::kernels {

// The input frames, oldest first: frame i is [H, W, Cin] with pixel stride stride[i] (>= Cin, a
// channel slice of a wider frame) or, with ptr[i] == nullptr, all zeros.
struct ConvFrames {
    static constexpr int kMax = 16;
    const void * ptr[kMax];
    int64_t      stride[kMax];
    int          count = 0;
};

struct ConvGeom {
    int64_t H = 0, W = 0, Cin = 0, Cout = 0;  // input size; output is [T, H*up, W*up, Cout]
    int     kt = 1, kh = 1, kw = 1, up = 1;
    bool    accumulate = false;                // y += conv (else y = conv)
};

// y[T, Ho, Wo, Cout] (f32 or bf16) (+)= b + conv(x); x bf16, w bf16 [Cout, kt*kh*kw*Cin], b f32 or null.
// T = frames.count - kt + 1.
cudaError_t conv3d(void * y, DType y_dtype, const ConvFrames & frames, const void * w, const float * b, const ConvGeom & g,
                   cudaStream_t stream);

} // namespace avs::kernels
