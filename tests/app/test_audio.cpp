// Tests for app/audio: the SPSC ring under real threads, libswresample conversion, the level meter,
// the file / silence sources and PortAudio device handling (this CI machine has no audio device;
// the mic tests accept either outcome but check the invariants of each).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "app/audio/audio_file_decoder.h"
#include "app/audio/audio_ring.h"
#include "app/audio/audio_source.h"
#include "app/audio/level_meter.h"
#include "app/audio/resampler.h"

using namespace avs;

namespace {

constexpr double k_pi = 3.14159265358979323846;

std::vector<float> sine(double freq, double rate, size_t frames, double amp, int channels = 1, double phase = 0.0) {
    std::vector<float> out(frames * size_t(channels));
    for (size_t i = 0; i < frames; ++i) {
        const float v = float(amp * std::sin(2.0 * k_pi * freq * double(i) / rate + phase));
        for (int c = 0; c < channels; ++c) out[i * size_t(channels) + size_t(c)] = v;
    }
    return out;
}

// Frequency from upward zero crossings, interpolated between samples.
double zero_crossing_freq(const std::vector<float> & x, size_t begin, size_t end, double rate) {
    double first = -1.0, last = -1.0;
    int    count = 0;
    for (size_t i = begin + 1; i < end; ++i) {
        if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
            const double t = double(i - 1) + double(-x[i - 1]) / double(x[i] - x[i - 1]);
            if (first < 0) first = t;
            last = t;
            ++count;
        }
    }
    if (count < 2) return 0.0;
    return double(count - 1) * rate / (last - first);
}

double rms(const std::vector<float> & x, size_t begin, size_t end) {
    double s = 0.0;
    for (size_t i = begin; i < end; ++i) s += double(x[i]) * double(x[i]);
    return std::sqrt(s / double(end - begin));
}

double db(double linear) { return 20.0 * std::log10(linear); }

// Magnitude of one DFT bin (Goertzel-style direct sum) normalised to a sine's amplitude.
double dft_amplitude(const std::vector<float> & x, size_t begin, size_t end, double freq, double rate) {
    double re = 0.0, im = 0.0;
    for (size_t i = begin; i < end; ++i) {
        const double w = 2.0 * k_pi * freq * double(i - begin) / rate;
        re += x[i] * std::cos(w);
        im -= x[i] * std::sin(w);
    }
    return 2.0 * std::sqrt(re * re + im * im) / double(end - begin);
}

// A 16-bit PCM WAV, header written by hand (RIFF / fmt / data, little endian).
void write_wav_s16(const std::string & path, int rate, int channels, const std::vector<int16_t> & interleaved) {
    std::ofstream f(path, std::ios::binary);
    auto u32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) f.put(char((v >> (8 * i)) & 0xff)); };
    auto u16 = [&](uint16_t v) { for (int i = 0; i < 2; ++i) f.put(char((v >> (8 * i)) & 0xff)); };
    const uint32_t data_bytes = uint32_t(interleaved.size() * 2);
    f.write("RIFF", 4);
    u32(36 + data_bytes);
    f.write("WAVE", 4);
    f.write("fmt ", 4);
    u32(16);
    u16(1);  // PCM
    u16(uint16_t(channels));
    u32(uint32_t(rate));
    u32(uint32_t(rate * channels * 2));
    u16(uint16_t(channels * 2));
    u16(16);
    f.write("data", 4);
    u32(data_bytes);
    for (int16_t s : interleaved) u16(uint16_t(s));
}

std::string temp_path(const std::string & name) {
    return (std::filesystem::temp_directory_path() / ("avs_test_audio_" + std::to_string(::getpid()) + "_" + name))
        .string();
}

// Reads everything a source delivers until it finishes (or the deadline passes).
std::vector<float> drain_until_finished(AudioSource & src, double timeout_s) {
    std::vector<float> got, buf(4096);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
        const bool   done = src.finished();
        const size_t n    = src.ring().read(buf.data(), buf.size());
        got.insert(got.end(), buf.begin(), buf.begin() + std::ptrdiff_t(n));
        if (n == 0 && done) break;
        if (std::chrono::steady_clock::now() > deadline) break;
        if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
}

} // namespace

// ---- AudioRing ------------------------------------------------------------------------------------

TEST_CASE("audio ring: capacity rounds up and single-thread push/read keep order", "[audio]") {
    AudioRing ring(1000);
    REQUIRE(ring.capacity() == 1024);
    std::vector<float> in(700), out(1024);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(i);
    REQUIRE(ring.push(in.data(), 700) == 700);
    REQUIRE(ring.read(out.data(), 500) == 500);
    // This push wraps around the end of the buffer.
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(700 + i);
    REQUIRE(ring.push(in.data(), 700) == 700);
    uint64_t first = 0;
    REQUIRE(ring.read(out.data(), 1024, first) == 900);
    CHECK(first == 500);
    for (size_t i = 0; i < 900; ++i) REQUIRE(out[i] == float(500 + i));
    CHECK(ring.overruns() == 0);
    CHECK(ring.read_index() == 1400);
    CHECK(ring.write_index() == 1400);
}

TEST_CASE("audio ring: a full ring drops the newest samples and counts them", "[audio]") {
    AudioRing ring(1024);
    std::vector<float> in(3000), out(2048);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(i);
    CHECK(ring.push(in.data(), 3000) == 1024);
    CHECK(ring.overruns() == 3000 - 1024);
    CHECK(ring.write_available() == 0);
    REQUIRE(ring.read(out.data(), 2048) == 1024);
    for (size_t i = 0; i < 1024; ++i) REQUIRE(out[i] == float(i));
    // Granule: interleaved stereo frames are never split.
    REQUIRE(ring.push(in.data(), 1023) == 1023);
    CHECK(ring.push(in.data(), 4, 2) == 0);  // one free slot: no whole frame fits
    CHECK(ring.overruns() == 3000 - 1024 + 4);
    CHECK(ring.skip(100) == 100);
    CHECK(ring.read_index() == 1124);
}

TEST_CASE("audio ring: millions of samples through producer and consumer threads arrive exactly", "[audio]") {
    constexpr uint64_t total = 8'000'000;  // floats hold these integers exactly (< 2^24)
    AudioRing          ring(4096);
    std::atomic<bool>  short_push{false};  // Catch assertions are not thread-safe: report after join
    std::thread producer([&] {
        std::vector<float> chunk(777);
        uint64_t next = 0, step = 1;
        while (next < total) {
            step = step * 1103515245u + 12345u;  // varied chunk sizes
            const size_t want = std::min<uint64_t>(1 + (step >> 16) % chunk.size(), total - next);
            const size_t n    = std::min(want, ring.write_available());
            if (n == 0) {
                std::this_thread::yield();
                continue;
            }
            for (size_t i = 0; i < n; ++i) chunk[i] = float(next + i);
            if (ring.push(chunk.data(), n) != n) short_push = true;
            next += n;
        }
    });
    std::vector<float> buf(1000);
    uint64_t           expect = 0;
    bool               ok     = true;
    size_t             reads  = 0;
    while (expect < total && ok) {
        uint64_t     first = 0;
        const size_t n     = ring.read(buf.data(), 1 + (reads++ * 37) % buf.size(), first);
        if (n == 0) {
            std::this_thread::yield();
            continue;
        }
        ok = first == expect;
        for (size_t i = 0; i < n && ok; ++i) ok = buf[i] == float(expect + i);
        expect += n;
    }
    producer.join();
    CHECK_FALSE(short_push);
    CHECK(ok);
    CHECK(expect == total);
    CHECK(ring.overruns() == 0);
    CHECK(ring.available() == 0);
}

TEST_CASE("audio ring: a stalled consumer loses samples and overruns account for every one", "[audio]") {
    constexpr uint64_t total = 256 * 8000;  // whole chunks
    AudioRing          ring(2048);
    std::atomic<bool>  done{false};
    std::thread producer([&] {
        std::vector<float> chunk(256);
        for (uint64_t next = 0; next < total; next += chunk.size()) {
            for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = float(next + i);
            ring.push(chunk.data(), chunk.size());  // callback style: never waits
            if ((next / chunk.size()) % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        done = true;
    });
    std::vector<float> buf(512);
    uint64_t received = 0, last_index = 0, stalls = 0;
    float    prev     = -1.0f;
    bool     ordered  = true, indexed = true;
    for (;;) {
        const bool finished = done.load();
        uint64_t   first    = 0;
        const size_t n      = ring.read(buf.data(), buf.size(), first);
        if (n == 0 && finished) break;
        indexed = indexed && first == last_index;  // indices are contiguous over stored samples
        last_index = first + n;
        for (size_t i = 0; i < n; ++i) {
            ordered = ordered && buf[i] > prev;  // values only ever increase: order kept, gaps allowed
            prev    = buf[i];
        }
        received += n;
        if (received / 100000 > stalls) {  // the consumer stalls now and then
            ++stalls;
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
        }
    }
    producer.join();
    CHECK(ordered);
    CHECK(indexed);
    CHECK(ring.overruns() > 0);
    CHECK(received + ring.overruns() == total);
    CHECK(ring.write_index() == received);
}

// ---- Resampler ------------------------------------------------------------------------------------

TEST_CASE("resampler: 48 kHz stereo 1 kHz sine becomes 16 kHz mono with frequency and level kept", "[audio]") {
    const size_t frames = 48000;  // 1 s
    const auto   in     = sine(1000.0, 48000.0, frames, 0.5, 2);
    auto rs = Resampler::create(48000, 2);
    REQUIRE(rs.ok());
    std::vector<float> out;
    // Irregular chunks: the filter state must carry across calls.
    size_t pos = 0, k = 0;
    const size_t sizes[] = {480, 1, 1000, 37, 4096, 333};
    while (pos < frames) {
        const size_t n = std::min(sizes[k++ % 6], frames - pos);
        REQUIRE(rs->process(in.data() + pos * 2, int(n), out).ok());
        pos += n;
    }
    REQUIRE(rs->flush(out).ok());

    const double expected_len = double(frames) / 3.0;
    INFO("output length " << out.size());
    CHECK(std::abs(double(out.size()) - expected_len) <= 4.0);

    const size_t b = 500, e = out.size() - 500;  // skip the filter's edges
    const double f   = zero_crossing_freq(out, b, e, 16000.0);
    const double amp = rms(out, b, e) * std::sqrt(2.0);
    const double bin = dft_amplitude(out, b, b + 14000, 1000.0, 16000.0);
    std::printf("resampler 48k stereo -> 16k: %zu samples, freq %.4f Hz, amp %.5f (%.4f dB), DFT bin amp %.5f\n",
                out.size(), f, amp, db(amp / 0.5), bin);
    CHECK(std::abs(f - 1000.0) < 0.5);
    CHECK(std::abs(db(amp / 0.5)) < 1.0);
    CHECK(std::abs(db(bin / 0.5)) < 1.0);

    // Streaming matches one-shot processing.
    auto rs2 = Resampler::create(48000, 2);
    REQUIRE(rs2.ok());
    std::vector<float> once;
    REQUIRE(rs2->process(in.data(), int(frames), once).ok());
    REQUIRE(rs2->flush(once).ok());
    REQUIRE(once.size() == out.size());
    float max_diff = 0.0f;
    for (size_t i = 0; i < once.size(); ++i) max_diff = std::max(max_diff, std::abs(once[i] - out[i]));
    CHECK(max_diff < 1e-5f);
}

TEST_CASE("resampler: stereo downmix is the channel mean and 44.1 kHz converts", "[audio]") {
    // Left 0.6 sine, right 0.2 sine (same phase): mono is a 0.4 sine (a -3 dB sum would give 0.566).
    const size_t frames = 44100;
    std::vector<float> in(frames * 2);
    for (size_t i = 0; i < frames; ++i) {
        const double s = std::sin(2.0 * k_pi * 440.0 * double(i) / 44100.0);
        in[2 * i]     = float(0.6 * s);
        in[2 * i + 1] = float(0.2 * s);
    }
    auto rs = Resampler::create(44100, 2);
    REQUIRE(rs.ok());
    std::vector<float> out;
    REQUIRE(rs->process(in.data(), int(frames), out).ok());
    REQUIRE(rs->flush(out).ok());
    CHECK(std::abs(double(out.size()) - 16000.0) <= 4.0);
    const double amp = rms(out, 500, out.size() - 500) * std::sqrt(2.0);
    CHECK(std::abs(amp - 0.4) < 0.005);
    CHECK(std::abs(zero_crossing_freq(out, 500, out.size() - 500, 16000.0) - 440.0) < 0.5);
}

TEST_CASE("resampler: bad parameters are errors that name the value", "[audio]") {
    auto bad_rate = Resampler::create(12, 1);
    REQUIRE_FALSE(bad_rate.ok());
    CHECK(bad_rate.status().message().find("12 Hz") != std::string::npos);
    auto bad_ch = Resampler::create(48000, 0);
    REQUIRE_FALSE(bad_ch.ok());
    CHECK(bad_ch.status().message().find("channel") != std::string::npos);
    auto bad_fmt = Resampler::create(48000, 1, 999);
    REQUIRE_FALSE(bad_fmt.ok());
}

// ---- LevelMeter -----------------------------------------------------------------------------------

TEST_CASE("level meter: a -6 dBFS sine reads -9 dB RMS and -6 dB peak; silence reads the floor", "[audio]") {
    LevelMeter meter(16000, 0.05, 1.0, 20.0);
    const double amp = std::pow(10.0, -6.0 / 20.0);
    const auto   s   = sine(997.0, 16000.0, 8000, amp);
    for (size_t i = 0; i < s.size(); i += 160) meter.process(s.data() + i, 160);
    LevelReading r = meter.read();
    std::printf("level meter -6 dBFS sine: rms %.3f dB, peak %.3f dB, hold %.3f dB\n", r.rms_db, r.peak_db, r.hold_db);
    CHECK(std::abs(r.rms_db - (-9.01)) < 0.5);
    CHECK(std::abs(r.peak_db - (-6.0)) < 0.5);
    CHECK(std::abs(r.hold_db - (-6.0)) < 0.5);

    // 0.5 s of silence: window values fall to the floor at once, the hold stays (held for 1 s).
    const std::vector<float> zeros(160, 0.0f);
    for (int i = 0; i < 50; ++i) meter.process(zeros.data(), zeros.size());
    r = meter.read();
    CHECK(r.rms_db < -100.0f);
    CHECK(r.peak_db < -100.0f);
    CHECK(std::abs(r.hold_db - (-6.0)) < 0.5);
    // 1 s more: 0.5 s past the hold time at 20 dB/s -> about 10 dB lower.
    for (int i = 0; i < 100; ++i) meter.process(zeros.data(), zeros.size());
    r = meter.read();
    CHECK(std::abs(r.hold_db - (-16.0)) < 1.0);

    LevelMeter quiet;
    const std::vector<float> silence(16000, 0.0f);
    quiet.process(silence.data(), silence.size());
    CHECK(quiet.read().rms_db <= LevelMeter::k_floor_db + 1.0f);
    CHECK(quiet.read().peak_db <= LevelMeter::k_floor_db + 1.0f);
}

// ---- file source ----------------------------------------------------------------------------------

TEST_CASE("file source: a 44.1 kHz stereo WAV plays out as its 16 kHz mono resampling", "[audio]") {
    const std::string path   = temp_path("tone.wav");
    const int         rate   = 44100;
    const size_t      frames = 22050;  // 0.5 s
    std::vector<int16_t> pcm(frames * 2);
    std::vector<float>   as_float(frames * 2);
    for (size_t i = 0; i < frames; ++i) {
        const double s = std::sin(2.0 * k_pi * 440.0 * double(i) / rate);
        pcm[2 * i]     = int16_t(std::lround(0.5 * 32767.0 * s));
        pcm[2 * i + 1] = int16_t(std::lround(0.3 * 32767.0 * s));
        as_float[2 * i]     = float(pcm[2 * i]) / 32768.0f;  // FFmpeg's s16 -> float scale
        as_float[2 * i + 1] = float(pcm[2 * i + 1]) / 32768.0f;
    }
    write_wav_s16(path, rate, 2, pcm);

    // Expected: the same samples through the resampler in one go.
    auto rs = Resampler::create(rate, 2);
    REQUIRE(rs.ok());
    std::vector<float> expected;
    REQUIRE(rs->process(as_float.data(), int(frames), expected).ok());
    REQUIRE(rs->flush(expected).ok());

    AudioSourceSpec spec;
    spec.kind      = AudioSourceKind::file;
    spec.file_path = path;
    spec.realtime  = false;
    spec.ring_capacity = 2048;  // smaller than the file: fast mode must wait for the reader, not drop
    auto opened = open_audio_source(spec);
    REQUIRE(opened.ok());
    AudioSource & src = **opened;
    CHECK(src.kind() == AudioSourceKind::file);
    CHECK(src.sample_rate() == 16000);
    CHECK(src.status().find("44100 Hz x2") != std::string::npos);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(src.start().ok());
    const auto got = drain_until_finished(src, 20.0);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    src.stop();
    CHECK(src.finished());
    CHECK(src.status().find("end of file") != std::string::npos);
    CHECK(src.ring().overruns() == 0);
    CHECK(took < 0.4);  // 0.5 s of audio, as fast as possible
    REQUIRE(got.size() == expected.size());
    CHECK(std::abs(double(got.size()) - frames * 16000.0 / rate) <= 4.0);
    float max_diff = 0.0f;
    for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, std::abs(got[i] - expected[i]));
    std::printf("file source: %zu samples in %.3f s, max |diff| vs resampled reference %.3g\n", got.size(), took,
                double(max_diff));
    CHECK(max_diff < 1e-5f);
    // And it is the tone: 440 Hz at the mean amplitude 0.4.
    CHECK(std::abs(zero_crossing_freq(got, 300, got.size() - 300, 16000.0) - 440.0) < 1.0);
    CHECK(std::abs(rms(got, 300, got.size() - 300) * std::sqrt(2.0) - 0.4) < 0.01);
    // The meter saw the end of the file: its hold is still around the tone's -8 dB peak.
    CHECK(std::abs(src.level().read().hold_db - float(db(0.4))) < 1.0f);
    std::filesystem::remove(path);
}

TEST_CASE("file source: looping repeats the file and real-time mode is paced by the clock", "[audio]") {
    const std::string path = temp_path("loop.wav");
    std::vector<int16_t> pcm(8000);  // 0.5 s at 16 kHz mono
    for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = int16_t((i * 37) % 20000 - 10000);
    write_wav_s16(path, 16000, 1, pcm);

    AudioSourceSpec spec;
    spec.kind      = AudioSourceKind::file;
    spec.file_path = path;
    spec.realtime  = false;
    spec.loop      = true;
    {
        auto opened = open_audio_source(spec);
        REQUIRE(opened.ok());
        AudioSource & src = **opened;
        REQUIRE(src.start().ok());
        std::vector<float> got(3 * pcm.size()), buf(1000);
        size_t have = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (have < got.size() && std::chrono::steady_clock::now() < deadline) {
            have += src.ring().read(got.data() + have, got.size() - have);
        }
        src.stop();
        REQUIRE(have == got.size());
        CHECK_FALSE(src.finished());
        // 16 kHz in, 16 kHz out: the samples are the file's, three times over.
        bool same = true;
        for (size_t i = 0; i < got.size() && same; ++i) same = std::abs(got[i] - pcm[i % pcm.size()] / 32768.0f) < 1e-4f;
        CHECK(same);
    }
    {
        spec.loop     = false;
        spec.realtime = true;
        auto opened   = open_audio_source(spec);
        REQUIRE(opened.ok());
        AudioSource & src = **opened;
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(src.start().ok());
        const auto   got  = drain_until_finished(src, 10.0);
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        src.stop();
        std::printf("file source real time: %zu samples in %.3f s\n", got.size(), took);
        CHECK(got.size() == pcm.size());
        CHECK(took > 0.45);
        CHECK(took < 3.0);
    }
    std::filesystem::remove(path);
}

TEST_CASE("file source: missing and non-audio files are errors naming the path", "[audio]") {
    AudioSourceSpec spec;
    spec.kind      = AudioSourceKind::file;
    spec.file_path = temp_path("does_not_exist.wav");
    auto missing   = open_audio_source(spec);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().message().find(spec.file_path) != std::string::npos);

    const std::string junk = temp_path("junk.wav");
    {
        std::ofstream f(junk);
        f << "this is not audio at all, just text";
    }
    spec.file_path = junk;
    auto bad = open_audio_source(spec);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().find(junk) != std::string::npos);
    std::filesystem::remove(junk);

    // a valid WAV at a rate the resampler cannot take fails when opened (it failed at the first read,
    // unseen), naming the path and the rate
    const std::string slow = temp_path("500hz.wav");
    write_wav_s16(slow, 500, 1, std::vector<int16_t>(500, 1000));
    spec.file_path = slow;
    auto low = open_audio_source(spec);
    REQUIRE_FALSE(low.ok());
    CHECK(low.status().message().find(slow) != std::string::npos);
    CHECK(low.status().message().find("500 Hz") != std::string::npos);
    std::filesystem::remove(slow);
}

// ---- silence --------------------------------------------------------------------------------------

TEST_CASE("silence source: zeros at 16 kHz in real time", "[audio]") {
    AudioSourceSpec spec;
    spec.kind = AudioSourceKind::silence;
    auto opened = open_audio_source(spec);
    REQUIRE(opened.ok());
    AudioSource & src = **opened;
    CHECK(src.kind() == AudioSourceKind::silence);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(src.start().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    src.stop();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<float> buf(src.ring().capacity());
    const size_t n = src.ring().read(buf.data(), buf.size());
    std::printf("silence: %zu samples in %.3f s\n", n, elapsed);
    // Paced by the clock: never ahead of real time, and at most a few pacing periods behind.
    CHECK(double(n) <= elapsed * 16000.0 + 1.0);
    CHECK(double(n) >= (elapsed - 0.1) * 16000.0);
    CHECK(src.samples_produced() == n);
    bool all_zero = true;
    for (size_t i = 0; i < n; ++i) all_zero = all_zero && buf[i] == 0.0f;
    CHECK(all_zero);
    CHECK(src.level().read().peak_db <= LevelMeter::k_floor_db);
}

TEST_CASE("audio source: extra outputs get the same samples as the primary ring", "[audio]") {
    const std::string path = temp_path("tap.wav");
    std::vector<int16_t> pcm(4000);
    for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = int16_t(i * 3);
    write_wav_s16(path, 16000, 1, pcm);
    AudioSourceSpec spec;
    spec.kind      = AudioSourceKind::file;
    spec.file_path = path;
    spec.realtime  = false;
    auto tap = std::make_shared<AudioRing>(8192);
    spec.extra_outputs.push_back(tap);
    auto opened = open_audio_source(spec);
    REQUIRE(opened.ok());
    AudioSource & src = **opened;
    REQUIRE(src.start().ok());
    const auto main_out = drain_until_finished(src, 10.0);
    CHECK_FALSE(src.add_output(std::make_shared<AudioRing>(16)).ok());  // not while running
    src.stop();
    std::vector<float> tap_out(8192);
    tap_out.resize(tap->read(tap_out.data(), tap_out.size()));
    CHECK(main_out.size() == pcm.size());
    CHECK(tap_out == main_out);
    std::filesystem::remove(path);
}

// ---- microphone / PortAudio -----------------------------------------------------------------------

TEST_CASE("mic: listing input devices works and every entry is a usable input", "[audio]") {
    auto devices = list_input_devices();
    REQUIRE(devices.ok());  // an empty list is fine; PortAudio failing to start is not
    int defaults = 0;
    for (const auto & d : *devices) {
        std::printf("input device %d: %s (%s) %d ch %.0f Hz%s\n", d.index, d.name.c_str(), d.host_api.c_str(),
                    d.max_input_channels, d.default_sample_rate, d.is_default ? " [default]" : "");
        CHECK(d.index >= 0);
        CHECK(d.max_input_channels >= 1);
        CHECK_FALSE(d.name.empty());
        defaults += d.is_default ? 1 : 0;
    }
    CHECK(defaults <= 1);
    std::printf("%zu input devices\n", devices->size());
}

TEST_CASE("mic: a device index that does not exist is an error naming the index", "[audio]") {
    AudioSourceSpec spec;
    spec.kind         = AudioSourceKind::microphone;
    spec.device_index = 4242;
    auto src = open_audio_source(spec);
    REQUIRE_FALSE(src.ok());
    CHECK(src.status().message().find("4242") != std::string::npos);
}

TEST_CASE("mic: fallback gives a working file or silence source with a message when there is no mic", "[audio]") {
    const std::string path = temp_path("fallback.wav");
    write_wav_s16(path, 16000, 1, std::vector<int16_t>(1600, 1000));

    // A device that cannot exist: always falls back, to the file when one is given.
    AudioSourceSpec spec;
    spec.kind         = AudioSourceKind::microphone;
    spec.device_index = 4242;
    spec.file_path    = path;
    spec.realtime     = false;
    {
        AudioOpenResult r = open_audio_with_fallback(spec);
        REQUIRE(r.source);
        CHECK(r.fell_back);
        CHECK(r.source->kind() == AudioSourceKind::file);
        CHECK(r.source->running());
        CHECK(r.message.find("4242") != std::string::npos);
        CHECK(r.message.find(path) != std::string::npos);
        const auto got = drain_until_finished(*r.source, 10.0);
        CHECK(got.size() == 1600);
        std::printf("fallback message: %s\n", r.message.c_str());
    }
    // No file either (or an unreadable one): silence, and the message says both.
    spec.file_path = temp_path("missing_fallback.wav");
    {
        AudioOpenResult r = open_audio_with_fallback(spec);
        REQUIRE(r.source);
        CHECK(r.fell_back);
        CHECK(r.source->kind() == AudioSourceKind::silence);
        CHECK(r.source->running());
        CHECK(r.message.find("silence") != std::string::npos);
        CHECK(r.message.find("missing_fallback.wav") != std::string::npos);
        std::printf("fallback message: %s\n", r.message.c_str());
    }

    // The default device: on a machine without one, the file; with one, the mic. Either way a
    // running source, and a message exactly when it fell back.
    spec.device_index = -1;
    spec.file_path    = path;
    auto devices      = list_input_devices();
    REQUIRE(devices.ok());
    AudioOpenResult r = open_audio_with_fallback(spec);
    REQUIRE(r.source);
    CHECK(r.source->running());
    CHECK(r.source->sample_rate() == 16000);
    if (r.fell_back) {
        CHECK(r.source->kind() == AudioSourceKind::file);
        CHECK_FALSE(r.message.empty());
        std::printf("default device fallback: %s\n", r.message.c_str());
    } else {
        CHECK(r.source->kind() == AudioSourceKind::microphone);
        CHECK(r.message.empty());
        CHECK_FALSE(devices->empty());
    }
    if (devices->empty()) CHECK(r.fell_back);
    r.source->stop();
    CHECK_FALSE(r.source->running());
    std::filesystem::remove(path);
}
