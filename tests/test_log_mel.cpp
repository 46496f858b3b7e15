// Causal log-mel features (engine/audio/log_mel.h) against the numpy reference
// (tools/reference/log_mel_ref.py; golden from make_log_mel_goldens.py: 1.5 s chirp + tones + noise with
// 0.1 s of leading silence), plus streaming, causality and latent-window properties.
#include <catch2/catch.hpp>

#include "engine/audio/log_mel.h"
#include "engine/io/safetensors.h"
#include "test_util.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

using namespace avs;

namespace {

std::vector<float> one_shot(const LogMelConfig & cfg, const std::vector<float> & x) {
    std::vector<float> out;
    auto n = compute_log_mel(cfg, x.data(), int64_t(x.size()), out);
    INFO((n.ok() ? std::string() : n.status().message()));
    REQUIRE(n.ok());
    REQUIRE(n.value() == mel_frames_for_samples(cfg, int64_t(x.size())));
    REQUIRE(out.size() == size_t(n.value()) * size_t(cfg.n_mels));
    return out;
}

std::vector<float> noise(int64_t n, uint64_t seed, float stddev = 0.1f) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> d(0.0f, stddev);
    std::vector<float> out(static_cast<size_t>(n));
    for (auto & v : out) v = d(g);
    return out;
}

float floor_value(const LogMelConfig & cfg) { return float(std::log(double(cfg.log_floor))); }

} // namespace

TEST_CASE("log-mel matches the numpy reference golden", "[log_mel]") {
    const std::string path = test::data_path("log_mel_golden.safetensors");
    Tensor audio = test::read_named(path, "audio"), want = test::read_named(path, "log_mel"), fb_want = test::read_named(path, "filterbank");
    const LogMelConfig cfg;
    REQUIRE(audio.numel() == 24000);
    REQUIRE(want.shape().ndim == 2);
    REQUIRE(want.shape()[1] == cfg.n_mels);

    auto fb = mel_filterbank(cfg);
    REQUIRE(fb.ok());
    REQUIRE(int64_t(fb.value().size()) == fb_want.numel());
    const double fb_err = test::rel_err(fb.value().data(), fb_want.data<float>(), fb_want.numel());

    std::vector<float> x(audio.data<float>(), audio.data<float>() + audio.numel());
    std::vector<float> got = one_shot(cfg, x);
    REQUIRE(int64_t(got.size()) == want.numel());  // 148 frames: no centre padding
    const double err = test::rel_err(got.data(), want.data<float>(), want.numel());
    double max_abs = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
        const double d = std::fabs(double(got[size_t(i)]) - want.data<float>()[i]);
        if (d > max_abs) max_abs = d, at = i;
    }
    std::printf("[log_mel] golden: filterbank rel err %.3g, log-mel rel err %.3g, max abs %.3g (frame %lld band %lld, "
                "value %.3f)\n", fb_err, err, max_abs, (long long)(at / cfg.n_mels), (long long)(at % cfg.n_mels),
                double(want.data<float>()[at]));
    CHECK(fb_err <= 1e-6);
    CHECK(err <= 1e-5);
    // the leading 0.1 s is digital silence: those frames sit exactly on the floor in both
    for (int64_t f = 0; f < mel_frames_for_samples(cfg, 1600); ++f)
        for (int m = 0; m < cfg.n_mels; ++m) REQUIRE(got[size_t(f * cfg.n_mels + m)] == floor_value(cfg));
}

TEST_CASE("log-mel streaming with random push and read sizes equals one-shot", "[log_mel]") {
    const LogMelConfig cfg;
    const std::vector<float> x = noise(16000 * 3 + 77, test::test_seed());
    const std::vector<float> want = one_shot(cfg, x);

    std::mt19937_64 g(test::test_seed() + 1);
    for (int trial = 0; trial < 3; ++trial) {
        auto ex = LogMelExtractor::create(cfg);
        REQUIRE(ex.ok());
        LogMelExtractor & e = *ex.value();
        std::vector<float> got, tmp;
        size_t pos = 0;
        while (pos < x.size() || e.frames_available() > 0) {
            // push 0..1200 samples (0 and sub-hop sizes included), then read a random number of frames
            const size_t n = std::min(x.size() - pos, size_t(g() % 1201));
            REQUIRE(e.push(x.data() + pos, int64_t(n)).ok());
            pos += n;
            REQUIRE(e.frames_available() == mel_frames_for_samples(cfg, int64_t(pos)) - e.next_frame());
            const int64_t want_frames = pos < x.size() ? int64_t(g() % 8) : e.frames_available();
            tmp.assign(size_t(std::max<int64_t>(want_frames, 1)) * size_t(cfg.n_mels), 0.0f);
            auto r = e.read(tmp.data(), want_frames);
            REQUIRE(r.ok());
            REQUIRE(r.value() == std::min(want_frames, r.value() + e.frames_available()));
            got.insert(got.end(), tmp.begin(), tmp.begin() + r.value() * cfg.n_mels);
        }
        REQUIRE(got.size() == want.size());
        CHECK(got == want);  // bit-identical: same code per frame whatever the buffering
        e.reset();
        CHECK(e.frames_available() == 0);
        CHECK(e.next_frame() == 0);
    }
}

TEST_CASE("log-mel: a 1 kHz tone peaks in the mel band containing 1 kHz; silence is the floor", "[log_mel]") {
    const LogMelConfig cfg;
    std::vector<float> tone(16000);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.5f * float(std::sin(2.0 * M_PI * 1000.0 * double(i) / 16000.0));
    const std::vector<float> f = one_shot(cfg, tone);

    // independently of the filterbank code: Slaney mel(1 kHz) = 15 exactly; band m is centred at
    // mel_max * (m + 1) / (n_mels + 1), so the band whose centre is nearest to mel 15 must win
    const double mel_max = 15.0 + std::log(8000.0 / 1000.0) / (std::log(6.4) / 27.0);
    const int expect = int(std::lround(15.0 * (cfg.n_mels + 1) / mel_max)) - 1;
    REQUIRE(expect > 10);
    REQUIRE(expect < 40);
    const int64_t frames = int64_t(f.size()) / cfg.n_mels;
    for (int64_t t = 0; t < frames; ++t) {
        const float * row = f.data() + t * cfg.n_mels;
        const int peak = int(std::max_element(row, row + cfg.n_mels) - row);
        INFO("frame " << t);
        REQUIRE(peak == expect);
        // energy well localised: far bands are orders of magnitude below (ln units)
        CHECK(row[peak] - row[peak + 8] > 5.0f);
        CHECK(row[peak] - row[std::max(peak - 8, 0)] > 5.0f);
    }

    const std::vector<float> silence = one_shot(cfg, std::vector<float>(4000, 0.0f));
    REQUIRE(!silence.empty());
    for (float v : silence) REQUIRE(v == floor_value(cfg));
    CHECK(floor_value(cfg) == Approx(-23.02585).epsilon(1e-6));
}

TEST_CASE("log-mel is causal: frames appear only when complete and never change", "[log_mel]") {
    const LogMelConfig cfg;
    auto ex = LogMelExtractor::create(cfg);
    REQUIRE(ex.ok());
    LogMelExtractor & e = *ex.value();
    const std::vector<float> x = noise(8000, test::test_seed() + 7);

    // frame 0 needs samples [0, 400): not available after 399, available after 400
    REQUIRE(e.push(x.data(), cfg.n_fft - 1).ok());
    CHECK(e.frames_available() == 0);
    REQUIRE(e.push(x.data() + cfg.n_fft - 1, 1).ok());
    CHECK(e.frames_available() == 1);
    // frame 1 needs [160, 560)
    REQUIRE(e.push(x.data() + cfg.n_fft, cfg.hop - 1).ok());
    CHECK(e.frames_available() == 1);
    REQUIRE(e.push(x.data() + cfg.n_fft + cfg.hop - 1, 1).ok());
    CHECK(e.frames_available() == 2);

    // a prefix's features are exactly the first frames of any continuation's features
    const int64_t prefix = 5000;
    const int64_t pf = mel_frames_for_samples(cfg, prefix);  // 29
    std::vector<float> a(x.begin(), x.begin() + prefix), b = a;
    const std::vector<float> tail_a = noise(3000, 11, 0.5f), tail_b = noise(3000, 12, 0.5f);
    a.insert(a.end(), tail_a.begin(), tail_a.end());
    b.insert(b.end(), tail_b.begin(), tail_b.end());
    const std::vector<float> fp = one_shot(cfg, std::vector<float>(x.begin(), x.begin() + prefix));
    const std::vector<float> fa = one_shot(cfg, a), fb = one_shot(cfg, b);
    REQUIRE(int64_t(fp.size()) == pf * cfg.n_mels);
    const size_t n = size_t(pf * cfg.n_mels);
    CHECK(std::equal(fp.begin(), fp.end(), fa.begin()));
    CHECK(std::equal(fp.begin(), fp.end(), fb.begin()));
    // ... and the test can tell: the first frame reaching into the tails differs
    CHECK(!std::equal(fa.begin() + long(n), fa.begin() + long(n) + cfg.n_mels, fb.begin() + long(n)));
}

TEST_CASE("latent_audio_window: causal mel windows per latent frame", "[log_mel]") {
    const LogMelConfig cfg;
    struct Row { int64_t L, first, end, pad, end_sample; };
    // the table in engine/audio/log_mel.h (and tools/reference/log_mel_ref.py's latent_audio_window)
    for (const Row & r : {Row{0, 0, 4, 28, 1000}, Row{1, 0, 29, 3, 5000}, Row{2, 22, 54, 0, 9000},
                          Row{10, 222, 254, 0, 41000}}) {
        auto w = latent_audio_window(r.L, 32, cfg);
        REQUIRE(w.ok());
        INFO("latent " << r.L);
        CHECK(w.value().first == r.first);
        CHECK(w.value().end == r.end);
        CHECK(w.value().pad_front == r.pad);
        CHECK(w.value().audio_end_sample == r.end_sample);
    }
    int64_t prev_end = 0;
    for (int64_t L = 0; L < 400; ++L) {
        auto w = latent_audio_window(L, 32, cfg).value();
        INFO("latent " << L);
        // the latent's audio ends at (4L + 1) / 16 s: the window's last frame ends at or before it ...
        REQUIRE(w.audio_end_sample * 16 <= (4 * L + 1) * 16000);
        REQUIRE((w.end - 1) * cfg.hop + cfg.n_fft <= w.audio_end_sample);
        // ... and is the latest such frame (no needless lag)
        REQUIRE(w.end * cfg.hop + cfg.n_fft > w.audio_end_sample);
        REQUIRE(w.end - w.first + w.pad_front == 32);
        if (L > 0) {  // 0.25 s = 25 hops per latent
            REQUIRE(w.end == prev_end + 25);
            REQUIRE(w.first >= 0);
        }
        prev_end = w.end;
    }

    // gather: front padding is the silence floor, the rest is a copy; missing frames are an error
    std::vector<float> feats(size_t(40) * size_t(cfg.n_mels));
    for (size_t i = 0; i < feats.size(); ++i) feats[i] = float(i);
    const MelWindow w1 = latent_audio_window(1, 32, cfg).value();
    std::vector<float> out(size_t(32) * size_t(cfg.n_mels), 1.0f);
    REQUIRE(gather_latent_window(cfg, w1, feats.data(), 40, out.data()).ok());
    for (int m = 0; m < 3 * cfg.n_mels; ++m) REQUIRE(out[size_t(m)] == floor_value(cfg));
    for (int m = 3 * cfg.n_mels; m < 32 * cfg.n_mels; ++m) REQUIRE(out[size_t(m)] == float(m - 3 * cfg.n_mels));
    Status st = gather_latent_window(cfg, w1, feats.data(), 28, out.data());
    CHECK(!st.ok());

    CHECK(!latent_audio_window(-1, 32, cfg).ok());
    CHECK(!latent_audio_window(0, 0, cfg).ok());
}

TEST_CASE("log-mel rejects bad configs, naming the field", "[log_mel]") {
    auto expect_error = [](LogMelConfig c, const std::string & field) {
        Status st = validate(c);
        INFO(field << ": " << st.message());
        REQUIRE(!st.ok());
        CHECK(st.code() == ErrorCode::invalid_argument);
        CHECK(st.message().find(field) != std::string::npos);
        CHECK(!LogMelExtractor::create(c).ok());
        CHECK(!mel_filterbank(c).ok());
    };
    LogMelConfig c;
    REQUIRE(validate(c).ok());
    c = {}; c.n_fft = 0;         expect_error(c, "n_fft");
    c = {}; c.n_fft = -400;      expect_error(c, "n_fft");
    c = {}; c.hop = 0;           expect_error(c, "hop");
    c = {}; c.fmax = 8001.0f;    expect_error(c, "fmax");
    c = {}; c.n_mels = 0;        expect_error(c, "n_mels");
    c = {}; c.sample_rate = 0;   expect_error(c, "sample_rate");
    c = {}; c.log_floor = 0.0f;  expect_error(c, "log_floor");
    c = {}; c.fmin = 9000.0f;    expect_error(c, "fmax");  // fmax must exceed fmin

    auto ex = LogMelExtractor::create(LogMelConfig{});
    REQUIRE(ex.ok());
    CHECK(!ex.value()->push(nullptr, -1).ok());
    CHECK(!ex.value()->read(nullptr, -1).ok());
}

TEST_CASE("log-mel cost per second of audio", "[log_mel]") {
    const LogMelConfig cfg;
    const std::vector<float> x = noise(16000 * 20, 5);
    auto ex = LogMelExtractor::create(cfg);
    REQUIRE(ex.ok());
    std::vector<float> out(size_t(2100) * size_t(cfg.n_mels));
    const auto t0 = std::chrono::steady_clock::now();
    int64_t frames = 0;
    for (size_t pos = 0; pos < x.size(); pos += 4000) {  // 0.25 s pushes: one latent frame's audio
        REQUIRE(ex.value()->push(x.data() + pos, 4000).ok());
        frames += ex.value()->read(out.data(), ex.value()->frames_available()).value();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[log_mel] %lld frames from 20 s of audio in %.2f ms: %.3f ms per second of audio\n",
                (long long)frames, s * 1e3, s * 1e3 / 20.0);
    CHECK(frames == mel_frames_for_samples(cfg, int64_t(x.size())));
    CHECK(s < 2.0);  // generous: real time would be 20 s
}
