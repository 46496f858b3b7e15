// The engine's public streaming API on the CPU backend (tiny config, random weights, tiny decoder):
// frames flow with continuous indices and timestamps, the engine paces itself to the consumer,
// settings apply at a chunk boundary without stopping, bad settings give an error state and the
// stream recovers.
#include <catch2/catch.hpp>

#include "engine/model/config.h"
#include "engine/runtime/stream.h"
#include "test_util.h"

#include <chrono>
#include <fstream>
#include <thread>

using namespace avs;

namespace {

StreamSettings tiny_settings() {
    StreamSettings s;
    s.backend = "cpu", s.config = "tiny", s.decoder = "tiny", s.window = 6, s.seed = 9;
    s.max_ahead_s = 1.0;
    return s;
}

// Pop until `n` frames arrived or the deadline passes.
std::vector<DecodedFrame> pop_n(Stream & st, size_t n, double timeout_s) {
    std::vector<DecodedFrame> got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    DecodedFrame f;
    while (got.size() < n && std::chrono::steady_clock::now() < end) {
        if (st.pop_frame(f)) got.push_back(f);
        else std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return got;
}

bool wait_state(Stream & st, const std::string & state, double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
        if (st.stats().state == state) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

} // namespace

TEST_CASE("stream delivers frames with continuous indices and applies settings at a chunk boundary", "[stream]") {
    auto st = Stream::start(tiny_settings());
    auto a  = pop_n(*st, 21, 120);
    REQUIRE(a.size() == 21);
    for (size_t i = 0; i < a.size(); ++i) {
        REQUIRE(a[i].index == int64_t(i));
        REQUIRE(a[i].pts == Approx(double(i) / 16.0));
        REQUIRE(a[i].rgba.shape() == Shape{64, 64, 4});
    }
    StreamStats s0 = st->stats();
    REQUIRE(s0.state == "running");
    REQUIRE(s0.backend == "cpu");
    REQUIRE(s0.decoder == "taehv");
    REQUIRE(s0.chunks >= 2);
    REQUIRE(s0.kv_bytes > 0);
    REQUIRE(s0.fps > 0);
    REQUIRE_FALSE(s0.chunk_ms_history.empty());

    // a smaller window: the cache is rebuilt, frames keep coming with the next indices
    StreamSettings s = tiny_settings();
    s.window = 3;
    st->apply(s);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (st->stats().kv_bytes == s0.kv_bytes && std::chrono::steady_clock::now() < deadline) {
        DecodedFrame f;
        st->pop_frame(f);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE(st->stats().kv_bytes == s0.kv_bytes / 2);  // (sinks 0 + window 3) vs 6 slots
    REQUIRE(st->stats().model_loads == 1);             // a cache change keeps the loaded model
    REQUIRE(st->stats().cache_switches == 1);          // ... and the video: applied live, not as a new segment
    // a format change is live too: the cache is re-encoded
    s.kv_format = "int8";
    st->apply(s);
    while (st->stats().kv_format != "int8" && std::chrono::steady_clock::now() < deadline) {
        DecodedFrame f;
        st->pop_frame(f);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE(st->stats().kv_format == "int8");
    REQUIRE(st->stats().cache_switches == 2);
    REQUIRE(st->stats().kv_bytes < s0.kv_bytes / 2);
    auto b = pop_n(*st, 5, 120);
    REQUIRE(b.size() == 5);
    for (size_t i = 1; i < b.size(); ++i) REQUIRE(b[i].index == b[i - 1].index + 1);
    REQUIRE(b[0].index > a.back().index);
    st->stop();
}

TEST_CASE("stream paces itself to a consumer that stops popping", "[stream]") {
    StreamSettings s = tiny_settings();
    s.max_ahead_s = 0.5;  // 8 frames
    auto st = Stream::start(s);
    REQUIRE(wait_state(*st, "running", 120));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const StreamStats a = st->stats();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const StreamStats b = st->stats();
    // nobody pops: the engine stops once it is one chunk past the limit, and nothing is dropped
    REQUIRE(b.chunks == a.chunks);
    REQUIRE(b.frames <= 8 + 12);
    REQUIRE(b.dropped == 0);
    auto got = pop_n(*st, 30, 120);  // popping lets it go on
    REQUIRE(got.size() == 30);
}

TEST_CASE("stream reports bad settings as an error state and recovers on new settings", "[stream]") {
    StreamSettings bad = tiny_settings();
    bad.model = "/nonexistent/model.safetensors";
    auto st = Stream::start(bad);
    REQUIRE(wait_state(*st, "error", 60));
    REQUIRE_THAT(st->stats().message, Catch::Contains("/nonexistent/model.safetensors"));
    DecodedFrame f;
    REQUIRE_FALSE(st->pop_frame(f));
    st->apply(tiny_settings());
    REQUIRE(pop_n(*st, 1, 120).size() == 1);
    REQUIRE(st->stats().state == "running");
}

TEST_CASE("stream settings name the field and the accepted values of a bad choice", "[stream]") {
    REQUIRE(tiny_settings().validate().ok());
    auto bad = [](auto edit) {
        StreamSettings s = tiny_settings();
        edit(s);
        return s.validate().message();
    };
    // these fell back silently (a typo meant another decoder or RoPE mode)
    REQUIRE_THAT(bad([](StreamSettings & s) { s.decoder = "wam"; }), Catch::Contains("decoder") && Catch::Contains("tiny, wan"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.rope_mode = "x"; }), Catch::Contains("rope_mode") && Catch::Contains("window, absolute"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.backend = "gpu"; }), Catch::Contains("backend"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.kv_format = "int3"; }), Catch::Contains("kv_format"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.window = 0; }), Catch::Contains("window"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.sinks = -1; }), Catch::Contains("sinks"));
    REQUIRE_THAT(bad([](StreamSettings & s) { s.width = 100; }), Catch::Contains("multiples of 16"));
}

#if defined(AVS_HAVE_FFTW3F)
TEST_CASE("stream on the default avatar waits for audio and generates as it arrives", "[stream][default_model]") {
    StreamSettings s;
    s.backend = "cpu", s.config = "default", s.decoder = "tiny", s.window = 9, s.sinks = 3, s.rope_mode = "window";
    s.max_ahead_s = 2.0;
    auto st = Stream::start(s);
    // loaded and warmed, but no audio yet: no frame
    const auto t0 = std::chrono::steady_clock::now();
    while (st->stats().model_name.empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(st->stats().model_name == "avatarstream-default");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    DecodedFrame f;
    REQUIRE_FALSE(st->pop_frame(f));
    // 1.5 s of audio: the chunks whose audio it covers (latent L needs audio up to (4L + 1) / 16 s)
    std::vector<float> tone(24000);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * float(i)) * (i % 4000 < 2000 ? 1.0f : 0.0f);
    st->push_audio(tone.data(), int64_t(tone.size()));
    auto got = pop_n(*st, 9, 120);  // the first chunk: 1 + 4 * 2 frames
    REQUIRE(got.size() == 9);
    REQUIRE(got[0].rgba.shape() == Shape{128, 128, 4});
    REQUIRE(st->stats().state == "running");
    // latents 0..5 are covered (audio end (4*5+1)/16 = 1.31 s <= 1.5 s), latent 6 is not: 2 chunks, 21 frames, then it waits
    auto more = pop_n(*st, 12, 60);
    REQUIRE(more.size() == 12);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    REQUIRE_FALSE(st->pop_frame(f));
    st->stop();
}

// Settings that start a new segment interrupt the wait for audio; the interrupted chunks were never
// generated, so they must not count against the frames the engine may run ahead (it stalled for good
// after two such changes).
TEST_CASE("stream on the default avatar keeps generating after settings changes interrupt its wait for audio", "[stream][default_model]") {
    StreamSettings s;
    s.backend = "cpu", s.config = "default", s.decoder = "tiny", s.window = 9, s.rope_mode = "window";
    s.max_ahead_s = 1.0;  // 16 frames: two lost promises of 9 would fill it
    auto       st = Stream::start(s);
    const auto t0 = std::chrono::steady_clock::now();
    while (st->stats().model_name.empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(st->stats().model_name == "avatarstream-default");
    for (double shift : {4.0, 4.5, 5.5}) {  // a new segment each (the model stays loaded)
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        s.shift = shift;
        st->apply(s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    REQUIRE(st->stats().model_loads == 1);
    std::vector<float> tone(24000);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * float(i));
    st->push_audio(tone.data(), int64_t(tone.size()));
    const auto got = pop_n(*st, 21, 120);  // two chunks: 9 + 12 frames
    REQUIRE(got.size() == 21);
    st->stop();
}

// Audio pushed while the stream is in an error state is heard by nobody: the next working settings
// start a video at "now", not with the speech of the failed minutes (which also piled up unbounded).
TEST_CASE("stream on the default avatar drops the audio pushed while its settings failed", "[stream][default_model]") {
    StreamSettings s;
    s.backend = "cpu", s.config = "default", s.decoder = "tiny", s.window = 9, s.rope_mode = "window";
    s.max_ahead_s = 2.0;
    StreamSettings bad = s;
    bad.vae = "/nonexistent/decoder.safetensors";
    auto st = Stream::start(bad);
    REQUIRE(wait_state(*st, "error", 120));
    std::vector<float> tone(16000 * 5);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * float(i));
    st->push_audio(tone.data(), int64_t(tone.size()));  // 5 s nobody hears
    st->apply(s);
    const auto t0 = std::chrono::steady_clock::now();
    while (st->stats().state != "loading" && st->stats().state != "running" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    while (st->stats().message != "warming up" && st->stats().state != "running" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // 1.5 s after the working settings: latents 0..5, two chunks, 21 frames, then it waits
    tone.resize(24000);
    st->push_audio(tone.data(), int64_t(tone.size()));
    const auto got = pop_n(*st, 21, 120);
    REQUIRE(got.size() == 21);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    DecodedFrame f;
    REQUIRE_FALSE(st->pop_frame(f));  // the stale 5 s would have fed more chunks
    st->stop();
}

// The stream's audio front end follows the model: a window of 16 log-mel frames (the default
// avatar has 32) and 40 bands, where every chunk failed on a [3, 32, 80] window.
TEST_CASE("stream feeds an audio model its own audio window and mel bands", "[stream]") {
    ModelConfig c = config_preset("tiny").value();
    c.name = "tiny-audio-16", c.conditioning = Conditioning::audio;
    c.audio_mels = 40, c.audio_window = 16, c.audio_tokens = 4;
    REQUIRE(c.validate().ok());
    const auto path = test::temp_dir("stream-audio") / "config.json";
    std::ofstream(path) << config_to_json(c);
    StreamSettings s = tiny_settings();
    s.config = path.string();
    auto st = Stream::start(s);
    // audio from before the model is known is of the default kind: this model hears from its setup on
    const auto t0 = std::chrono::steady_clock::now();
    while (st->stats().message != "warming up" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::vector<float> tone(24000);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * float(i));
    st->push_audio(tone.data(), int64_t(tone.size()));
    const auto got = pop_n(*st, 9, 120);
    INFO(st->stats().message);
    REQUIRE(got.size() == 9);
    REQUIRE(st->stats().model_name == "tiny-audio-16");
    st->stop();
}
#endif
