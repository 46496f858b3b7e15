// Full-reference image metrics for the benchmarks' decoded frames (host f32, values in [0, data_range]).
// Kept out of the bench executables so that tests can check them.
#pragma once

#include "engine/core/result.h"
#include "engine/core/tensor.h"

namespace avs::bench {

// SSIM of `a` against `ref` (Wang, Bovik, Sheikh, Simoncelli 2004, as their reference ssim_index.m):
// 11x11 Gaussian window (sigma 1.5, normalised), C1 = (0.01 L)^2, C2 = (0.03 L)^2 with
// L = data_range, the SSIM map over the valid region only (no padding), averaged; a multi-channel
// image is scored per channel and the channels' means are averaged.
// Layout: contiguous host f32 [H, W] or [H, W, C] (channels last, as VideoDecoder frames are).
// A dimension shorter than 11 px shrinks the window to that size (sigma stays 1.5): the metric is
// still defined, but such values are not comparable with full-window SSIM.
// Errors (ErrorCode::shape / invalid_argument) for mismatched shapes, other layouts, empty images,
// non-host or non-f32 tensors, data_range <= 0.
Result<double> ssim(const Tensor & a, const Tensor & ref, double data_range = 1.0);

} // namespace avs::bench
