// Few-step flow-matching sampler of the Self-Forcing family (wan21-model.md §5.4):
// raw timesteps 1000·(1 - s/steps) warped by the shift, x0 = x_t − σ·v, then re-noise with fresh
// Gaussian noise to the next σ (a DMD-style "predict x0, re-noise" sampler, not an ODE).
#pragma once

#include <vector>

namespace avs {

// σ' = shift·σ / (1 + (shift − 1)·σ)
double shift_sigma(double sigma, double shift);
// The timesteps fed to the model (σ = t/1000): steps 4, shift 5 -> 1000, 937.5, 833.33, 625.
std::vector<double> sampler_timesteps(int steps, double shift);

} // namespace avs
