#include "engine/backend/cuda/cuda_check.h"
#include "engine/backend/cuda/cuda_device.h"

#include <cstdio>

namespace avs {

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error so later calls are not poisoned
        return 0;
    }
    return n;
}

std::string cuda_device_description(int device) {
    cudaDeviceProp p{};
    const cudaError_t err = cudaGetDeviceProperties(&p, device);
    if (err != cudaSuccess) return std::string("no CUDA device ") + std::to_string(device) + ": " + cudaGetErrorString(err);
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
                  double(p.totalGlobalMem) / double(1ull << 30));
    return buf;
}

} // namespace avs
