// SM clock and board power of GPU 0, sampled in the background while a benchmark runs, each sample
// tagged with what was running (the caller's tag). NVML is loaded at run time from the driver
// (libnvidia-ml.so.1), so the benchmarks build and run where there is none: available() is then false.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace avs::bench {

class GpuSampler {
  public:
    struct Sample {
        int      tag;
        unsigned sm_mhz, power_mw;
    };

    explicit GpuSampler(int period_ms = 20);
    ~GpuSampler();
    GpuSampler(const GpuSampler &) = delete;
    GpuSampler & operator=(const GpuSampler &) = delete;

    bool               available() const { return dev_ != nullptr; }
    const std::string & why_not() const { return why_not_; }  // when not available
    unsigned           power_limit_mw() const { return limit_mw_; }
    void               set_tag(int tag) { tag_.store(tag); }  // -1: not recorded
    std::vector<Sample> samples() const;

  private:
    void run(int period_ms);

    void *                  lib_ = nullptr;
    void *                  dev_ = nullptr;
    unsigned                limit_mw_ = 0;
    std::string             why_not_;
    int (*clock_)(void *, int, unsigned *) = nullptr;
    int (*power_)(void *, unsigned *) = nullptr;
    int (*shutdown_)() = nullptr;
    std::atomic<int>        tag_{-1};
    std::atomic<bool>       stop_{false};
    mutable std::mutex      mu_;
    std::vector<Sample>     samples_;
    std::thread             thread_;
};

} // namespace avs::bench
