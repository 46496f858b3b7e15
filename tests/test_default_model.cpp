// The embedded default avatar (assets/) on the CPU backend, end to end through the engine: speech it
// never saw in training (espeak-ng) moves the mouth with the loudness, silence keeps it closed, and
// five minutes of streaming stay stable. Mouth opening is measured from pixels alone, as
// tools/train/procedural.py's measure_mouth_opening.
#include <catch2/catch.hpp>

#include "engine/audio/audio_windows.h"
#include "engine/audio/live_audio.h"
#include "engine/audio/wav.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/decode/decoder.h"
#include "engine/model/default_model.h"
#include "engine/model/dit.h"
#include "engine/runtime/generator.h"
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

using namespace avs;

namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Mouth opening of one frame (f32 [H, W, 3] in [0, 1]): in the lower face region each pixel gets a
// soft dark-red score, a column's score sum is its interior height, the opening is the mean of the
// 5 tallest columns (in pixels at 128 px).
double mouth_opening(const float * rgb, int64_t H, int64_t W) {
    std::vector<double> cols;
    for (int64_t x = int64_t(0.2 * W); x < int64_t(0.8 * W); ++x) {
        double s = 0;
        for (int64_t y = int64_t(0.5 * H); y < int64_t(0.95 * H); ++y) {
            const float * p = rgb + (y * W + x) * 3;
            const float lum = 0.2126f * p[0] + 0.7152f * p[1] + 0.0722f * p[2];
            s += sigmoid((0.27f - lum) / 0.035f) * sigmoid((p[0] - p[1] - 0.17f) / 0.035f) * sigmoid((p[0] - 0.2f) / 0.04f);
        }
        cols.push_back(s);
    }
    std::sort(cols.rbegin(), cols.rend());
    double top = 0;
    for (int i = 0; i < 5; ++i) top += cols[size_t(i)];
    return top / 5.0 * (128.0 / double(H));
}

double pearson(const std::vector<double> & a, const std::vector<double> & b) {
    const size_t n = std::min(a.size(), b.size());
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; ++i) ma += a[i], mb += b[i];
    ma /= double(n), mb /= double(n);
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; ++i) sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

struct Avatar {
    CpuBackend                    be;
    std::unique_ptr<Dit>          dit;
    std::unique_ptr<VideoDecoder> dec;
    GenConfig                     g;

    Avatar() {
        const DefaultModel dm = default_model().value();
        dit = Dit::load(be, dm.dit, nullptr).value();  // the config comes from assets/config.json next to it
        dec = load_decoder(be, DecoderKind::tiny, dm.decoder).value();
        const InferenceDefaults d = inference_defaults(dm.config).value();
        g.chunk_frames = *d.chunk_frames, g.steps = *d.steps, g.shift = *d.shift;
        g.height_latent = *d.height / 8, g.width_latent = *d.width / 8;
        g.cache.window = *d.window, g.cache.sinks = *d.sinks;
        g.cache.rope_mode = *d.rope_mode == "window" ? RopeMode::window : RopeMode::absolute;
    }

    // Stream `chunks` chunks driven by `audio`; every decoded frame goes to `on_frame` as f32 [H, W, 3] in [0, 1].
    void stream(const ClipAudio & audio, int chunks, const std::function<void(const Tensor &)> & on_frame) {
        auto gen = Generator::create(*dit, g).value();
        gen->set_audio_source([&](int64_t f0, int n, const Tensor & w) { return audio.fill(f0, n, w); });
        SeededNoise noise(3);
        dec->reset();
        Tensor lat = Tensor::host(DType::f32, Shape{16, g.chunk_frames, g.height_latent, g.width_latent});
        std::vector<Tensor> out;
        for (int c = 0; c < chunks; ++c) {
            REQUIRE(gen->next_chunk(noise, lat).ok());
            for (int f = 0; f < g.chunk_frames; ++f) {
                out.clear();
                REQUIRE(dec->push(lat, f, out).ok());
                for (const Tensor & fr : out) {
                    Tensor x = Tensor::host(DType::f32, fr.shape());
                    for (int64_t i = 0; i < x.numel(); ++i)
                        x.data<float>()[i] = std::clamp(dec->out_scale() * fr.data<float>()[i] + dec->out_offset(), 0.0f, 1.0f);
                    on_frame(x);
                }
            }
        }
    }
};

ClipAudio clip_of(const std::vector<float> & samples) { return ClipAudio::create(samples, 16000, 32).value(); }

// RMS level (dBFS) of each video frame's audio: frame p = samples [1000 p, 1000 (p + 1)).
std::vector<double> frame_loudness(const std::vector<float> & a, size_t frames) {
    std::vector<double> db;
    for (size_t p = 0; p < frames; ++p) {
        double s = 0;
        for (size_t i = 1000 * p; i < 1000 * (p + 1); ++i) s += i < a.size() ? double(a[i]) * a[i] : 0.0;
        db.push_back(10.0 * std::log10(s / 1000.0 + 1e-10));
    }
    return db;
}

} // namespace

TEST_CASE("default avatar: held-out espeak-ng speech opens the mouth with the loudness and silence keeps it closed",
          "[default_model]") {
    Avatar av;
    const WavAudio speech = read_wav(default_model().value().sample_wav).value();  // espeak-ng, never seen in training
    REQUIRE(speech.sample_rate == 16000);
    const int chunks = int(speech.samples.size() / 1000 / 12) + 1;
    std::vector<double> mouth;
    av.stream(clip_of(speech.samples), chunks, [&](const Tensor & x) { mouth.push_back(mouth_opening(x.data<float>(), x.dim(0), x.dim(1))); });
    const size_t n = std::min(mouth.size(), speech.samples.size() / 1000);
    mouth.resize(n);
    const double r = pearson(mouth, frame_loudness(speech.samples, n));
    double open_speech = 0;
    for (double m : mouth) open_speech += m / double(n);
    WARN("mouth opening vs loudness over " << n << " frames: r = " << r << ", mean opening " << open_speech << " px");
    REQUIRE(r >= 0.6);

    std::vector<double> quiet;
    av.stream(clip_of(std::vector<float>(16000 * 6, 0.0f)), 8, [&](const Tensor & x) { quiet.push_back(mouth_opening(x.data<float>(), x.dim(0), x.dim(1))); });
    double open_quiet = 0, worst = 0;
    for (double m : quiet) open_quiet += m / double(quiet.size()), worst = std::max(worst, m);
    WARN("silence: mean opening " << open_quiet << " px, max " << worst);
    REQUIRE(open_quiet < 0.15 * open_speech);
    REQUIRE(worst < 0.5 * open_speech);
}

TEST_CASE("default avatar: five minutes of streaming stay stable", "[default_model][long]") {
    Avatar av;
    const WavAudio speech = read_wav(default_model().value().sample_wav).value();
    // 5 minutes: the sample looped with 2 s of silence between repeats
    std::vector<float> a;
    while (a.size() < size_t(16000 * 300)) {
        a.insert(a.end(), speech.samples.begin(), speech.samples.end());
        a.insert(a.end(), size_t(32000), 0.0f);
    }
    const int chunks = 16 * 300 / 12 + 1;
    std::vector<double> mean, sd;  // per 5 s window
    double s = 0, s2 = 0, cnt = 0;
    int64_t frames = 0, bad = 0;
    av.stream(clip_of(a), chunks, [&](const Tensor & x) {
        for (int64_t i = 0; i < x.numel(); ++i) {
            const double v = x.data<float>()[i];
            bad += !std::isfinite(v);
            s += v, s2 += v * v, cnt += 1;
        }
        if (++frames % 80 == 0) {
            mean.push_back(s / cnt), sd.push_back(std::sqrt(std::max(0.0, s2 / cnt - (s / cnt) * (s / cnt))));
            s = s2 = cnt = 0;
        }
    });
    REQUIRE(frames >= 16 * 300);
    REQUIRE(bad == 0);
    const auto [mn, mx] = std::minmax_element(mean.begin(), mean.end());
    const auto [sn, sx] = std::minmax_element(sd.begin(), sd.end());
    WARN(frames << " frames: 5 s window mean " << *mn << ".." << *mx << ", spread " << *sn << ".." << *sx);
    REQUIRE(*mx - *mn < 0.05);  // pixel statistics bounded: no drift, no blow-up
    REQUIRE(*sx - *sn < 0.05);
    REQUIRE(*sn > 0.1);         // and still a picture (not a flat field)
}

TEST_CASE("default avatar: one audio-conditioned forward matches the PyTorch reference (golden)", "[default_model]") {
    // tools/reference/make_default_model_goldens.py: wan_causal.py in float64 on the same weights
    CpuBackend be;
    auto       dit = Dit::load(be, default_model().value().dit, nullptr).value();
    REQUIRE(dit->config().conditioning == Conditioning::audio);
    const std::string g = test::data_path("golden_default_model.safetensors");
    const Tensor x = test::read_named(g, "x"), tt = test::read_named(g, "t"), w = test::read_named(g, "windows"), want = test::read_named(g, "v");
    std::vector<double> t;
    for (int64_t i = 0; i < tt.numel(); ++i) t.push_back(double(tt.data<float>()[i]));
    REQUIRE(dit->set_audio(w).ok());
    Tensor v = Tensor::host(DType::f32, want.shape());
    REQUIRE(dit->forward_full(x, t, 3, v).ok());
    const double e = test::rel_err(v, want);
    WARN("default avatar forward vs PyTorch reference: rel err " << e);
    REQUIRE(e <= 1e-4);
}

TEST_CASE("live audio pushed in pieces gives the same windows as the whole recording, and a wait can be interrupted", "[audio]") {
    const WavAudio speech = read_wav(default_model().value().sample_wav).value();
    const ClipAudio clip = clip_of(speech.samples);
    auto live = LiveAudio::create(32).value();
    std::mt19937 rng(5);
    size_t pos = 0;
    const int chunks = 12;
    for (int c = 0; c < chunks; ++c) {
        // push until this chunk's audio is there, in odd pieces
        const size_t need = size_t((4 * (3 * c + 2) + 1) * 1000);
        while (pos < std::min(need, speech.samples.size())) {
            const size_t n = std::min<size_t>(1 + rng() % 3000, speech.samples.size() - pos);
            live->push(speech.samples.data() + pos, int64_t(n));
            pos += n;
        }
        if (pos < need) break;
        Tensor a = Tensor::host(DType::f32, Shape{3, 32, 80}), b = Tensor::host(DType::f32, Shape{3, 32, 80});
        REQUIRE(live->fill(3 * c, 3, a, [] { return false; }).ok());
        REQUIRE(clip.fill(3 * c, 3, b).ok());
        INFO("chunk " << c);
        REQUIRE(test::bit_equal(a, b));
        // a chunk generated again (a retry) hears the same audio, not silence
        REQUIRE(live->fill(3 * c, 3, a, [] { return false; }).ok());
        REQUIRE(test::bit_equal(a, b));
        // one consumed by a later chunk is an error, not silence
        if (c >= 3) REQUIRE_THAT(live->fill(3 * (c - 2), 3, a, [] { return false; }).message(), Catch::Contains("already consumed"));
    }
    // the next chunk's audio never comes: the wait gives up when told to
    int polls = 0;
    Tensor w = Tensor::host(DType::f32, Shape{3, 32, 80});
    const Status st = live->fill(3 * 40, 3, w, [&] { return ++polls > 3; });
    REQUIRE_THAT(st.message(), Catch::Contains("interrupted"));
}
