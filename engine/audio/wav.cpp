#include "engine/audio/wav.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

namespace avs {
namespace {

uint32_t u32(const uint8_t * p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint16_t u16(const uint8_t * p) { return uint16_t(p[0] | p[1] << 8); }

} // namespace

Result<WavAudio> read_wav(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(ErrorCode::io, "%s: cannot open", path.c_str());
    const std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 || std::memcmp(b.data() + 8, "WAVE", 4) != 0)
        return make_error(ErrorCode::format, "%s: not a RIFF/WAVE file", path.c_str());
    uint16_t fmt = 0, channels = 0, bits = 0;
    uint32_t rate = 0;
    const uint8_t * data = nullptr;
    uint64_t        data_bytes = 0;
    for (size_t off = 12; off + 8 <= b.size();) {
        const uint32_t size = u32(b.data() + off + 4);
        const uint8_t * body = b.data() + off + 8;
        const uint64_t avail = b.size() - (off + 8);
        if (std::memcmp(b.data() + off, "fmt ", 4) == 0) {
            if (size < 16 || avail < 16) return make_error(ErrorCode::format, "%s: truncated 'fmt ' chunk", path.c_str());
            fmt = u16(body), channels = u16(body + 2), rate = u32(body + 4), bits = u16(body + 14);
            if (fmt == 0xFFFE && size >= 26) fmt = u16(body + 24);  // WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
        } else if (std::memcmp(b.data() + off, "data", 4) == 0) {
            data = body, data_bytes = std::min<uint64_t>(size, avail);
        }
        off += 8 + size + (size & 1);
    }
    if (!channels || !rate) return make_error(ErrorCode::format, "%s: no 'fmt ' chunk", path.c_str());
    if (!data) return make_error(ErrorCode::format, "%s: no 'data' chunk", path.c_str());
    const bool pcm = fmt == 1 && (bits == 16 || bits == 24 || bits == 32), flt = fmt == 3 && bits == 32;
    if (!pcm && !flt)
        return make_error(ErrorCode::unsupported, "%s: encoding tag %u with %u bits per sample (expected PCM 16/24/32-bit or float 32-bit)",
                          path.c_str(), unsigned(fmt), unsigned(bits));
    const uint64_t bps = bits / 8, frames = data_bytes / (bps * channels);
    WavAudio a;
    a.sample_rate = int(rate);
    a.samples.resize(size_t(frames));
    for (uint64_t i = 0; i < frames; ++i) {
        double s = 0;
        for (uint16_t c = 0; c < channels; ++c) {
            const uint8_t * p = data + (i * channels + c) * bps;
            if (flt) {
                float v;
                std::memcpy(&v, p, 4);
                s += v;
            } else if (bits == 16) {
                s += int16_t(u16(p)) / 32768.0;
            } else if (bits == 24) {
                s += int32_t(uint32_t(p[0]) << 8 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 24) / 2147483648.0;
            } else {
                s += int32_t(u32(p)) / 2147483648.0;
            }
        }
        a.samples[size_t(i)] = float(s / channels);
    }
    return a;
}

} // namespace avs
