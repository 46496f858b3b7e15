// DecodePipeline mechanics on the CPU backend with a small stand-in decoder (its frames are the
// latent's first three channels, so every delivered pixel can be traced to its latent): order and
// presentation timestamps, backpressure, dropping for a slow consumer, error propagation; and the
// trace helpers.
#include <catch2/catch.hpp>

#include "engine/runtime/decode_pipeline.h"
#include "engine/runtime/trace.h"
#include "test_util.h"

#include <nlohmann/json.hpp>

#include <fstream>

using namespace avs;

namespace {

// Frame per latent: rgb = latent channels 0..2, as [h, w, 3] in [0, 1] after out_scale/offset.
// The first latent of a stream gives one frame and every later one two, so frame counts differ
// from latent counts as with the real decoders.
class ChannelDecoder final : public VideoDecoder {
public:
    explicit ChannelDecoder(Backend & be, int fail_at = -1) : be_(be), fail_at_(fail_at) {}
    const char * name() const override { return "channels"; }
    Status push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) override {
        if (pushes_++ == fail_at_) return make_error(ErrorCode::internal, "stand-in failure");
        // (runs on the pipeline's worker thread: report through Status, never REQUIRE)
        const int64_t C = latents.dim(0), h = latents.dim(2), w = latents.dim(3);
        AVS_ASSIGN_OR_RETURN(Tensor hw_c, be_.alloc(DType::f32, Shape{h * w, C}));
        AVS_TRY(be_.transpose(hw_c, latents.select(1, f).reshape(Shape{C, h * w})));
        const Tensor rgb = hw_c.reshape(Shape{h, w, C}).slice(2, 0, 3);
        out.push_back(rgb);
        if (!first_) out.push_back(rgb);
        first_ = false;
        keep_ = hw_c;
        return {};
    }
    void     reset() override { first_ = true; }
    float    out_scale() const override { return 1.0f; }
    float    out_offset() const override { return 0.0f; }
    uint64_t weight_bytes() const override { return 0; }
    uint64_t state_bytes() const override { return 0; }

private:
    Backend & be_;
    int       fail_at_;
    int       pushes_ = 0;
    bool      first_ = true;
    Tensor    keep_;
};

// Latents whose channel c of frame f at pixel p is a distinct value in [0, 1].
Tensor chunk_latents(int64_t chunk, int64_t F, int64_t h, int64_t w) {
    Tensor t = Tensor::host(DType::f32, Shape{16, F, h, w});
    for (int64_t c = 0; c < 16; ++c)
        for (int64_t f = 0; f < F; ++f)
            for (int64_t p = 0; p < h * w; ++p)
                t.data<float>()[(c * F + f) * h * w + p] = float(((chunk * F + f) * 7 + c * 3 + p) % 251) / 250.0f;
    return t;
}

} // namespace

TEST_CASE("decode pipeline delivers every frame in order with 16 fps timestamps", "[decode][pipeline]") {
    auto dit = make_cpu_backend();
    auto dbe = make_cpu_backend();
    Backend & dbe_ref = *dbe;
    const int64_t F = 3, h = 4, w = 5;
    DecodePipeline::Options o;
    o.max_in_flight = 2;
    auto p = DecodePipeline::create(*dit, std::move(dbe), std::make_unique<ChannelDecoder>(dbe_ref), Shape{16, F, h, w}, o);
    REQUIRE(p.ok());
    auto & pipe = *p.value();
    const int chunks = 4;
    for (int c = 0; c < chunks; ++c) {
        Tensor lat = chunk_latents(c, F, h, w);
        REQUIRE(pipe.submit(lat).ok());
        // the pipeline copied the latents: scribbling over them now must not change any frame
        std::fill_n(lat.data<float>(), lat.numel(), -1.0f);
    }
    REQUIRE(pipe.flush().ok());
    std::vector<DecodedFrame> got;
    DecodedFrame f;
    while (pipe.pop(f)) got.push_back(f);
    const int64_t want_frames = 1 + 2 * (chunks * F - 1);
    REQUIRE(int64_t(got.size()) == want_frames);
    REQUIRE(pipe.stats().frames == want_frames);
    REQUIRE(pipe.stats().chunks == chunks);
    int64_t latent = 0, k = 0;  // walk latents: the first gives 1 frame, later ones 2
    for (int64_t i = 0; i < want_frames; ++i) {
        REQUIRE(got[size_t(i)].index == i);
        REQUIRE(got[size_t(i)].pts == Approx(double(i) / 16.0));
        const Tensor ref = chunk_latents(latent / F, F, h, w);
        const Tensor & px = got[size_t(i)].rgba;
        REQUIRE(px.shape() == Shape{h, w, 4});
        for (int64_t q = 0; q < h * w; ++q) {
            for (int64_t c = 0; c < 3; ++c) {
                const float v = ref.data<float>()[(c * F + latent % F) * h * w + q];
                REQUIRE(px.data<uint8_t>()[q * 4 + c] == uint8_t(std::lrintf(v * 255.0f)));
            }
            REQUIRE(px.data<uint8_t>()[q * 4 + 3] == 255);
        }
        if (++k == (latent == 0 ? 1 : 2)) ++latent, k = 0;
    }
    // one decode span per chunk, each with a duration
    int decode_spans = 0;
    for (const StreamSpan & s : pipe.spans()) decode_spans += s.track == "decode" && s.dur_ms >= 0;
    REQUIRE(decode_spans == chunks);
}

TEST_CASE("decode pipeline drops the oldest frames for a slow consumer and reports errors", "[decode][pipeline]") {
    const int64_t F = 2, h = 3, w = 3;
    // a pipeline on CPU backends over the channel decoder (failing at `fail_at`, -1: never)
    struct Rig {
        std::unique_ptr<Backend>        dit = make_cpu_backend();
        std::unique_ptr<DecodePipeline> p;
        Rig(int64_t F, int64_t h, int64_t w, const DecodePipeline::Options & o, int fail_at = -1) {
            auto      dbe = make_cpu_backend();
            Backend & r   = *dbe;
            auto made = DecodePipeline::create(*dit, std::move(dbe), std::make_unique<ChannelDecoder>(r, fail_at), Shape{16, F, h, w}, o);
            REQUIRE(made.ok());
            p = std::move(made).value();
        }
    };
    {
        DecodePipeline::Options o;
        o.max_ready = 3;
        Rig rig(F, h, w, o);
        for (int c = 0; c < 3; ++c) REQUIRE(rig.p->submit(chunk_latents(c, F, h, w)).ok());
        REQUIRE(rig.p->flush().ok());
        const int64_t total = 1 + 2 * (3 * F - 1);
        REQUIRE(rig.p->stats().dropped == total - 3);
        DecodedFrame f;
        REQUIRE(rig.p->pop(f));
        REQUIRE(f.index == total - 3);  // the newest three survive
    }
    {
        Rig rig(F, h, w, {}, 3);
        REQUIRE(rig.p->submit(chunk_latents(0, F, h, w)).ok());
        REQUIRE(rig.p->submit(chunk_latents(1, F, h, w)).ok());
        const Status s = rig.p->flush();
        REQUIRE_FALSE(s.ok());
        REQUIRE_THAT(s.message(), Catch::Contains("chunk 1") && Catch::Contains("stand-in failure"));
        REQUIRE_FALSE(rig.p->submit(chunk_latents(2, F, h, w)).ok());  // the error sticks
    }
    {
        // latents that cannot be taken (wrong shape) are an error each time and free their slot:
        // max_in_flight of them blocked every later submit for good
        DecodePipeline::Options o;
        o.max_in_flight = 2;
        Rig rig(F, h, w, o);
        for (int i = 0; i < 4; ++i) REQUIRE_FALSE(rig.p->submit(chunk_latents(0, F + 1, h, w)).ok());
        REQUIRE(rig.p->submit(chunk_latents(0, F, h, w)).ok());
        REQUIRE(rig.p->flush().ok());
    }
    auto dit = make_cpu_backend();
    REQUIRE_FALSE(DecodePipeline::create(*dit, make_cpu_backend(), nullptr, Shape{16, F, h, w}, {}).ok());
}

TEST_CASE("decode hidden fraction and the Chrome trace", "[decode][trace]") {
    // decode [10, 30) overlaps DiT [0, 20) and [25, 40): hidden 10 + 5 of 20
    std::vector<StreamSpan> spans = {{"dit", "chunk 0", 0, 20}, {"dit", "chunk 1", 25, 15}, {"decode", "decode chunk 0", 10, 20}};
    REQUIRE(decode_hidden_fraction(spans) == Approx(0.75));
    spans.push_back({"decode", "decode chunk 1", 45, 10});  // fully exposed
    REQUIRE(decode_hidden_fraction(spans) == Approx(15.0 / 30.0));
    REQUIRE(decode_hidden_fraction({{"dit", "x", 0, 5}}) == 0.0);

    const auto path = test::temp_dir("trace") / "trace.json";
    REQUIRE(write_chrome_trace(path.string(), spans).ok());
    std::ifstream f(path);
    const auto j = nlohmann::json::parse(f);
    int complete = 0;
    for (const auto & e : j["traceEvents"])
        if (e["ph"] == "X") {
            ++complete;
            if (e["name"] == "decode chunk 0") {
                REQUIRE(e["ts"].get<double>() == Approx(10000.0));
                REQUIRE(e["dur"].get<double>() == Approx(20000.0));
            }
        }
    REQUIRE(complete == 4);
    REQUIRE_FALSE(write_chrome_trace("/nonexistent-dir/x/trace.json", spans).ok());
}
