// Resampler: streaming conversion of any rate / channel count / sample format to the model's
// 16 kHz mono float, over libswresample. It keeps filter state across process() calls, so a stream
// fed in arbitrary chunks gives the same output as one fed at once; flush() drains the filter tail.
//
// Downmix is the plain mean of the channels (a custom swr matrix): swr's default stereo->mono matrix
// sums L and R at -3 dB each, which would lift a centred source by +3 dB.
//
// Not real-time safe (swr and the output vector allocate): call it from a pump or decode thread.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/result.h"

struct SwrContext;

namespace avs {

class Resampler {
public:
    static constexpr int k_out_rate = 16000;

    // in_sample_format is an AVSampleFormat value; -1 means packed float (AV_SAMPLE_FMT_FLT).
    static Result<Resampler> create(int in_rate, int in_channels, int in_sample_format = -1);

    Resampler(Resampler && other) noexcept;
    Resampler & operator=(Resampler && other) noexcept;
    Resampler(const Resampler &) = delete;
    Resampler & operator=(const Resampler &) = delete;
    ~Resampler();

    // Interleaved float input (only when created with the float format); appends to out.
    Status process(const float * interleaved, int frames, std::vector<float> & out);
    // Raw input in the creation format: one pointer for packed formats, one per channel for planar.
    Status process_raw(const uint8_t * const * data, int frames, std::vector<float> & out);
    // End of stream: appends the samples still held in the filter.
    Status flush(std::vector<float> & out);
    // Forgets all state (a new stream with the same input parameters, e.g. a looping file).
    Status reset();

    int in_rate() const { return in_rate_; }
    int in_channels() const { return in_channels_; }
    int in_sample_format() const { return in_format_; }

private:
    Resampler() = default;
    Status init();
    Status convert(const uint8_t * const * data, int frames, std::vector<float> & out);

    SwrContext * swr_        = nullptr;
    int          in_rate_     = 0;
    int          in_channels_ = 0;
    int          in_format_   = 0;
};

} // namespace avs
