// CUDA device discovery, callable from plain C++ (the engine builds without CUDA too).
#pragma once

#include <string>

namespace avs {

// Number of usable CUDA devices; 0 when the build has no CUDA, there is no driver or no device.
int         cuda_device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)" or an explanation of why there is none.
std::string cuda_device_description(int device);

} // namespace avs
