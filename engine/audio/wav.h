// Minimal RIFF/WAVE reader for the tools (avs-gen --audio): PCM 16/24/32-bit or IEEE float 32-bit,
// any channel count (averaged to mono). The app decodes every other format through libav*.
#pragma once

#include "engine/core/result.h"

#include <string>
#include <vector>

namespace avs {

struct WavAudio {
    int                sample_rate = 0;
    std::vector<float> samples;  // mono, [-1, 1]
};

// Errors name the file and what was found (not RIFF, unsupported encoding, truncated data).
Result<WavAudio> read_wav(const std::string & path);

} // namespace avs
