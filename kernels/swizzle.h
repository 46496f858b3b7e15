// Shared-memory tile layout of the sm_90a attention path, shared by the kernel and its CPU test: the
// 128-byte swizzle that wgmma's matrix descriptors read. A tile of `rows` rows x D bf16 is stored as
// D / 64 panels of rows x 64 (128 B per row); 16-byte chunk c of row r sits at chunk (c % 8) ^ (r % 8)
// of its row in panel c / 8. Eight consecutive rows reading the same chunk hit eight different 16-byte
// bank groups, and panels start 1024-byte aligned when the tile does.
#pragma once

#include "engine/core/hd.h"

namespace avs::kernels::wg {

// Element (bf16) offset of 16-byte chunk c of row r in a swizzled tile of `rows` rows.
AVS_HD constexpr int swz_off(int rows, int r, int c) { return (c / 8) * (rows * 64) + r * 64 + (((c % 8) ^ (r % 8)) * 8); }

} // namespace avs::kernels::wg
