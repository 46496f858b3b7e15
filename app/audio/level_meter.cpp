#include "app/audio/level_meter.h"

#include <algorithm>
#include <cmath>

namespace avs {

LevelMeter::LevelMeter(int sample_rate, double window_s, double hold_s, double decay_db_per_s)
    : sample_rate_(std::max(1, sample_rate)), hold_s_(std::max(0.0, hold_s)),
      decay_db_per_s_(std::max(0.0, decay_db_per_s)) {
    const size_t window = std::max<size_t>(1, size_t(std::lround(std::max(0.0, window_s) * sample_rate_)));
    sq_.assign(window, 0.0f);
    abs_.assign(window, 0.0f);
}

float LevelMeter::to_db(double linear) {
    if (!(linear > 0.0)) return k_floor_db;
    return std::max(k_floor_db, float(20.0 * std::log10(linear)));
}

void LevelMeter::reset() {
    std::fill(sq_.begin(), sq_.end(), 0.0f);
    std::fill(abs_.begin(), abs_.end(), 0.0f);
    pos_      = 0;
    sum_sq_   = 0.0;
    hold_     = k_floor_db;
    hold_age_ = 0.0;
    rms_db_.store(k_floor_db, std::memory_order_relaxed);
    peak_db_.store(k_floor_db, std::memory_order_relaxed);
    hold_db_.store(k_floor_db, std::memory_order_relaxed);
}

void LevelMeter::process(const float * samples, size_t n) {
    if (!samples || n == 0) return;
    const size_t window = sq_.size();
    for (size_t i = 0; i < n; ++i) {
        float s = samples[i];
        if (!std::isfinite(s)) s = 0.0f;  // a NaN from a broken driver must not stick in the sum
        const float q = s * s;
        sum_sq_ += double(q) - double(sq_[pos_]);
        sq_[pos_]  = q;
        abs_[pos_] = std::fabs(s);
        if (++pos_ == window) {
            pos_ = 0;
            double exact = 0.0;
            for (float v : sq_) exact += v;
            sum_sq_ = exact;
        }
    }
    const double rms  = std::sqrt(std::max(0.0, sum_sq_) / double(window));
    const float  peak = *std::max_element(abs_.begin(), abs_.end());
    const float  rms_db  = to_db(rms);
    const float  peak_db = to_db(peak);

    // Hold the highest peak for hold_s, then let it fall at decay_db_per_s (never below the peak).
    const double dt = double(n) / sample_rate_;
    if (peak_db >= hold_) {
        hold_     = peak_db;
        hold_age_ = 0.0;
    } else {
        const double before = hold_age_;
        hold_age_ += dt;
        const double decaying = std::max(0.0, hold_age_ - std::max(before, hold_s_));
        hold_ = std::max(peak_db, float(hold_ - decay_db_per_s_ * decaying));
    }
    rms_db_.store(rms_db, std::memory_order_relaxed);
    peak_db_.store(peak_db, std::memory_order_relaxed);
    hold_db_.store(hold_, std::memory_order_relaxed);
}

} // namespace avs
