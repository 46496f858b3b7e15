// 3D RoPE of Wan2.1: head_dim/2 interleaved pairs (x[2p], x[2p+1]) split into a frame group, a row
// group and a column group (for head_dim 128: 22/21/21 pairs). Pair m of an axis with D_a dims at
// position n is rotated by n * theta^(-2m / D_a). Frequencies restart at m = 0 for each axis.
// Positions are unbounded integers (no 1024-entry table), so RoPE can be applied at read time.
#pragma once

#include "engine/core/hd.h"

#include <cstdint>
#include <vector>

namespace avs {

struct RopeLayout {
    int32_t pairs_t = 22, pairs_h = 21, pairs_w = 21;  // pairs per axis
    int32_t grid_h = 1, grid_w = 1;                    // patch grid of one frame
    double  theta = 10000.0;

    AVS_HD int32_t pairs() const { return pairs_t + pairs_h + pairs_w; }
    AVS_HD int32_t tokens_per_frame() const { return grid_h * grid_w; }
};

RopeLayout make_rope_layout(int head_dim, int grid_h, int grid_w);

// cos/sin tables (fp32 values of fp64 math) for rotating a sequence of frames:
//   t_cos/t_sin [frames][pairs_t] for the given temporal positions,
//   h_cos/h_sin [grid_h][pairs_h], w_cos/w_sin [grid_w][pairs_w].
struct RopeTables {
    RopeLayout         layout;
    int32_t            frames = 0;
    std::vector<float> t_cos, t_sin, h_cos, h_sin, w_cos, w_sin;
};

RopeTables make_rope_tables(const RopeLayout & layout, const std::vector<int64_t> & frame_positions);

// Rotate x [frames * tokens_per_frame, heads, head_dim] in place (CPU reference).
void rope_apply_cpu(float * x, int64_t tokens, int heads, int head_dim, const RopeTables & tab);

} // namespace avs
