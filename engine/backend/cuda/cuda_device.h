// CUDA device discovery, callable from plain C++ (the engine builds without CUDA too).
#pragma once

#include "engine/core/result.h"

#include <memory>
#include <string>

namespace avs {

class Backend;
// The CUDA backend on `device` (bf16 weights and activations, fp32 residual stream and norms).
Result<std::unique_ptr<Backend>> make_cuda_backend(int device);

// Number of usable CUDA devices; 0 when the build has no CUDA, there is no driver or no device.
int         cuda_device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)" or an explanation of why there is none.
std::string cuda_device_description(int device);

} // namespace avs
