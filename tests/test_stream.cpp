// The engine's public streaming API on the CPU backend (tiny config, random weights, tiny decoder):
// frames flow with continuous indices and timestamps, the engine paces itself to the consumer,
// settings apply at a chunk boundary without stopping, bad settings give an error state and the
// stream recovers.
#include <catch2/catch.hpp>

#include "engine/runtime/stream.h"

#include <chrono>
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
