#include "engine/runtime/rng.h"
#include "engine/core/parallel.h"

#include <cmath>

namespace avs {

void fill_normal(float * dst, int64_t n, uint64_t stream, float stddev) {
    parallel_for((n + 1) / 2, [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
            const uint64_t r  = splitmix64(stream + uint64_t(p) * 0x9e3779b97f4a7c15ull);
            // (0, 1] and [0, 1) uniforms from 2 x 32 bits
            const double u1 = (double(uint32_t(r >> 32)) + 1.0) / 4294967296.0;
            const double u2 = double(uint32_t(r)) / 4294967296.0;
            const double rad = std::sqrt(-2.0 * std::log(u1));
            const double th  = 6.283185307179586 * u2;
            dst[2 * p] = float(rad * std::cos(th)) * stddev;
            if (2 * p + 1 < n) dst[2 * p + 1] = float(rad * std::sin(th)) * stddev;
        }
    }, 1024);
}

} // namespace avs
