// LevelMeter: RMS and peak (dBFS, full scale = 1.0, so a full-scale sine reads 0 dB peak and
// -3 dB RMS) over a sliding window, plus a peak-hold that holds, then decays. One thread feeds it
// (the audio pump); any thread (the UI) reads the latest values through atomics, without locks.
#pragma once

#include <atomic>
#include <cstddef>
#include <vector>

namespace avs {

struct LevelReading {
    float rms_db  = -120.0f;
    float peak_db = -120.0f;
    float hold_db = -120.0f;  // highest recent peak; decays after hold_s
};

class LevelMeter {
public:
    static constexpr float k_floor_db = -120.0f;  // what silence reads

    explicit LevelMeter(int sample_rate = 16000, double window_s = 0.05, double hold_s = 1.0,
                        double decay_db_per_s = 20.0);
    LevelMeter(const LevelMeter &) = delete;
    LevelMeter & operator=(const LevelMeter &) = delete;

    // Feeder thread only. Never allocates (the window is allocated by the constructor).
    void process(const float * samples, size_t n);
    // Feeder thread only (or while no feeder runs).
    void reset();

    // Any thread.
    LevelReading read() const {
        return {rms_db_.load(std::memory_order_relaxed), peak_db_.load(std::memory_order_relaxed),
                hold_db_.load(std::memory_order_relaxed)};
    }

    static float to_db(double linear);

private:
    int                sample_rate_;
    double             hold_s_;
    double             decay_db_per_s_;
    std::vector<float> sq_;    // squares of the last window's samples (circular)
    std::vector<float> abs_;   // magnitudes of the last window's samples (circular)
    size_t             pos_     = 0;
    double             sum_sq_  = 0.0;  // running sum of sq_, recomputed every wrap against drift
    float              hold_    = k_floor_db;
    double             hold_age_ = 0.0;

    std::atomic<float> rms_db_{k_floor_db};
    std::atomic<float> peak_db_{k_floor_db};
    std::atomic<float> hold_db_{k_floor_db};
};

} // namespace avs
