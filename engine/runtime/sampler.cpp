#include "engine/runtime/sampler.h"

namespace avs {

double shift_sigma(double sigma, double shift) { return shift * sigma / (1.0 + (shift - 1.0) * sigma); }

std::vector<double> sampler_timesteps(int steps, double shift) {
    std::vector<double> t;
    for (int s = 0; s < steps; ++s) {
        const double raw = 1000.0 * (1.0 - double(s) / double(steps));
        t.push_back(1000.0 * shift_sigma(raw / 1000.0, shift));
    }
    return t;
}

} // namespace avs
