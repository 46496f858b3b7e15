#include "bench/gpu_sampler.h"

#include <chrono>
#include <dlfcn.h>

namespace avs::bench {
namespace {
// the few NVML entry points used (nvml.h: NVML_SUCCESS = 0, NVML_CLOCK_SM = 1)
constexpr int kNvmlSuccess = 0, kNvmlClockSm = 1;
} // namespace

GpuSampler::GpuSampler(int period_ms) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib_) {
        why_not_ = "libnvidia-ml.so.1 not found (no NVIDIA driver)";
        return;
    }
    auto sym = [&](const char * name) { return dlsym(lib_, name); };
    auto init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
    auto by_index = reinterpret_cast<int (*)(unsigned, void **)>(sym("nvmlDeviceGetHandleByIndex_v2"));
    auto limit = reinterpret_cast<int (*)(void *, unsigned *)>(sym("nvmlDeviceGetEnforcedPowerLimit"));
    clock_ = reinterpret_cast<int (*)(void *, int, unsigned *)>(sym("nvmlDeviceGetClockInfo"));
    power_ = reinterpret_cast<int (*)(void *, unsigned *)>(sym("nvmlDeviceGetPowerUsage"));
    shutdown_ = reinterpret_cast<int (*)()>(sym("nvmlShutdown"));
    if (!init || !by_index || !limit || !clock_ || !power_ || !shutdown_) {
        why_not_ = "libnvidia-ml.so.1 lacks the NVML entry points used";
        return;
    }
    if (init() != kNvmlSuccess) {
        why_not_ = "nvmlInit_v2 failed";
        shutdown_ = nullptr;
        return;
    }
    void * dev = nullptr;
    if (by_index(0, &dev) != kNvmlSuccess || !dev) {
        why_not_ = "NVML has no device 0";
        return;
    }
    if (limit(dev, &limit_mw_) != kNvmlSuccess) limit_mw_ = 0;
    dev_ = dev;
    thread_ = std::thread([this, period_ms] { run(period_ms); });
}

GpuSampler::~GpuSampler() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (shutdown_) shutdown_();
    if (lib_) dlclose(lib_);
}

void GpuSampler::run(int period_ms) {
    while (!stop_.load()) {
        const int tag = tag_.load();
        unsigned  mhz = 0, mw = 0;
        if (tag >= 0 && clock_(dev_, kNvmlClockSm, &mhz) == kNvmlSuccess && power_(dev_, &mw) == kNvmlSuccess && tag == tag_.load()) {
            std::lock_guard<std::mutex> lock(mu_);
            samples_.push_back({tag, mhz, mw});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    }
}

std::vector<GpuSampler::Sample> GpuSampler::samples() const {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
}

} // namespace avs::bench
