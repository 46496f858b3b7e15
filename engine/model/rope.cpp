#include "engine/model/rope.h"

#include "engine/core/parallel.h"

#include <cmath>

namespace avs {

RopeLayout make_rope_layout(int head_dim, int grid_h, int grid_w) {
    RopeLayout l;
    const int d6 = head_dim / 6;
    l.pairs_t = (head_dim - 4 * d6) / 2;
    l.pairs_h = d6;
    l.pairs_w = d6;
    l.grid_h  = grid_h;
    l.grid_w  = grid_w;
    return l;
}

namespace {

// Table rows for positions `pos`, `pairs` pairs of an axis whose sub-dimension is 2*pairs.
void fill_axis(std::vector<float> & c, std::vector<float> & s, const std::vector<int64_t> & pos, int pairs, double theta) {
    c.resize(pos.size() * size_t(pairs));
    s.resize(pos.size() * size_t(pairs));
    for (size_t i = 0; i < pos.size(); ++i) {
        for (int m = 0; m < pairs; ++m) {
            const double inv_freq = std::pow(theta, -2.0 * m / (2.0 * pairs));
            const double a        = double(pos[i]) * inv_freq;
            c[i * size_t(pairs) + size_t(m)] = float(std::cos(a));
            s[i * size_t(pairs) + size_t(m)] = float(std::sin(a));
        }
    }
}

} // namespace

RopeTables make_rope_tables(const RopeLayout & layout, const std::vector<int64_t> & frame_positions) {
    RopeTables t;
    t.layout = layout;
    t.frames = int32_t(frame_positions.size());
    std::vector<int64_t> hp(size_t(layout.grid_h)), wp(size_t(layout.grid_w));
    for (int i = 0; i < layout.grid_h; ++i) hp[size_t(i)] = i;
    for (int j = 0; j < layout.grid_w; ++j) wp[size_t(j)] = j;
    fill_axis(t.t_cos, t.t_sin, frame_positions, layout.pairs_t, layout.theta);
    fill_axis(t.h_cos, t.h_sin, hp, layout.pairs_h, layout.theta);
    fill_axis(t.w_cos, t.w_sin, wp, layout.pairs_w, layout.theta);
    return t;
}

void rope_apply_cpu(float * x, int64_t tokens, int heads, int head_dim, const RopeTables & tab) {
    const RopeLayout & L   = tab.layout;
    const int64_t      tpf = L.tokens_per_frame();
    parallel_for(tokens, [&](int64_t b, int64_t e) {
        for (int64_t tok = b; tok < e; ++tok) {
            const int64_t f = tok / tpf, r = tok % tpf;
            const int64_t i = r / L.grid_w, j = r % L.grid_w;
            const float * cs[3] = {&tab.t_cos[size_t(f * L.pairs_t)], &tab.h_cos[size_t(i * L.pairs_h)], &tab.w_cos[size_t(j * L.pairs_w)]};
            const float * sn[3] = {&tab.t_sin[size_t(f * L.pairs_t)], &tab.h_sin[size_t(i * L.pairs_h)], &tab.w_sin[size_t(j * L.pairs_w)]};
            const int     np[3] = {L.pairs_t, L.pairs_h, L.pairs_w};
            for (int h = 0; h < heads; ++h) {
                float * v = x + (tok * heads + h) * head_dim;
                int     p = 0;
                for (int a = 0; a < 3; ++a) {
                    for (int m = 0; m < np[a]; ++m, ++p) {
                        const float c = cs[a][m], s = sn[a][m];
                        const float x0 = v[2 * p], x1 = v[2 * p + 1];
                        v[2 * p]     = x0 * c - x1 * s;
                        v[2 * p + 1] = x0 * s + x1 * c;
                    }
                }
            }
        }
    }, 16);
}

} // namespace avs
