// avs-gen end to end, as a user runs it: exit codes, outputs and error messages.
#include <catch2/catch.hpp>

#include "dit_fixture.h"

#include <fstream>
#include <sstream>
#include <sys/wait.h>

using namespace avs;

namespace {

struct Run {
    int         code;
    std::string out;
};

Run run_gen(const std::string & args, const std::filesystem::path & dir) {
    const std::string log = (dir / "log.txt").string();
    const std::string cmd = std::string(AVS_GEN_EXE) + " " + args + " > " + log + " 2>&1";
    const int raw = std::system(cmd.c_str());
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, ss.str()};
}

} // namespace

TEST_CASE("avs-gen --random-init --config tiny runs end to end and dumps latents", "[avs_gen]") {
    auto dir = test::temp_dir("gen-ok");
    const std::string out = (dir / "lat.safetensors").string();
    Run r = run_gen("--backend cpu --random-init --config tiny --seed 3 --chunks 3 --window 6 --sinks 1 --rope-mode window --dump-latents " + out, dir);
    INFO(r.out);
    REQUIRE(r.code == 0);
    REQUIRE_THAT(r.out, Catch::Contains("chunk 2:") && Catch::Contains("summary"));
    Tensor lat = test::read_named(out, "latents");
    REQUIRE(lat.shape() == Shape{16, 9, 8, 8});
    REQUIRE(std::isfinite(test::rel_err(lat, lat)));
    REQUIRE(test::max_abs(lat) > 0.1);
    // same seed, same latents
    const std::string out2 = (dir / "lat2.safetensors").string();
    REQUIRE(run_gen("--backend cpu --random-init --config tiny --seed 3 --chunks 3 --window 6 --sinks 1 --rope-mode window --dump-latents " + out2, dir).code == 0);
    REQUIRE(test::rel_err(test::read_named(out2, "latents"), lat) == 0.0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("avs-gen reproduces the PyTorch golden from the command line", "[avs_gen][golden]") {
    auto dir = test::temp_dir("gen-golden");
    const std::string out = (dir / "lat.safetensors").string();
    Run r = run_gen("--backend cpu --model " + test::data_path("tiny_weights.safetensors") + " --config " + test::data_path("tiny_config.json") +
                        " --context " + test::data_path("tiny_context.safetensors") + " --noise " +
                        test::data_path("golden_commit_w6_s1_window.safetensors") +
                        " --height 64 --width 64 --chunks 4 --window 6 --sinks 1 --rope-mode window --dump-latents " + out,
                    dir);
    INFO(r.out);
    REQUIRE(r.code == 0);
    REQUIRE(test::rel_err(test::read_named(out, "latents"),
                          test::read_named(test::data_path("golden_commit_w6_s1_window.safetensors"), "latents")) <= 1e-4);
    std::filesystem::remove_all(dir);
}

TEST_CASE("avs-gen --model with a truncated file exits non-zero naming the file", "[avs_gen][loader]") {
    auto dir = test::temp_dir("gen-trunc");
    const std::string p = (dir / "w.safetensors").string();
    REQUIRE(test::save_random_weights(p, config_preset("tiny").value(), 1, DType::f32, [](auto & n) { return n; }).ok());
    std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2);
    Run r = run_gen("--model " + p + " --config tiny", dir);
    INFO(r.out);
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains("error") && Catch::Contains(p));
    REQUIRE_THAT(r.out, Catch::Contains("--model"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("avs-gen errors name the flag and what was expected", "[avs_gen]") {
    auto dir = test::temp_dir("gen-err");
    Run a = run_gen("--random-init --config nosuch", dir);
    REQUIRE(a.code != 0);
    REQUIRE_THAT(a.out, Catch::Contains("--config") && Catch::Contains("nosuch") && Catch::Contains("tiny"));
    // noise of the wrong shape
    const std::string n = (dir / "n.safetensors").string();
    REQUIRE(write_safetensors(n, {{"noise", test::randn(Shape{1, 4, 16, 3, 4, 4}, 1)}}).ok());
    Run b = run_gen("--random-init --config tiny --noise " + n, dir);
    REQUIRE(b.code != 0);
    REQUIRE_THAT(b.out, Catch::Contains("--noise") && Catch::Contains("[1, 4, 16, 3, 8, 8]"));
    Run c = run_gen("--random-init --config tiny --window 2", dir);
    REQUIRE(c.code != 0);
    REQUIRE_THAT(c.out, Catch::Contains("--window") && Catch::Contains("window 2 < chunk frames 3"));
    Run d = run_gen("--random-init --config tiny --rope-mode sideways", dir);
    REQUIRE(d.code != 0);
    REQUIRE_THAT(d.out, Catch::Contains("--rope-mode"));
    Run e = run_gen("--random-init --config tiny --height 60", dir);
    REQUIRE(e.code != 0);
    REQUIRE_THAT(e.out, Catch::Contains("--height"));
    // outputs in a folder that is not there fail before generating, not after the run
    Run f = run_gen("--backend cpu --random-init --config tiny --chunks 2 --dump-latents /nonexistent-avs-dir/l.safetensors", dir);
    REQUIRE(f.code != 0);
    REQUIRE_THAT(f.out, Catch::Contains("--dump-latents") && Catch::Contains("/nonexistent-avs-dir"));
    REQUIRE_THAT(f.out, !Catch::Contains("chunk 0:"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("avs-gen decodes to frames with the tiny decoder and writes a trace", "[avs_gen][decode]") {
    auto dir = test::temp_dir("gen-frames");
    const std::string frames = (dir / "frames.safetensors").string(), trace = (dir / "trace.json").string(),
                      lat = (dir / "lat.safetensors").string();
    // 2 chunks of 3 latents at 64x64 px: T = 6 latents give 1 + 4 (T - 1) = 21 frames
    Run r = run_gen("--backend cpu --random-init --config tiny --seed 5 --chunks 2 --window 6 --decoder tiny --dump-frames " +
                        frames + " --trace " + trace + " --dump-latents " + lat,
                    dir);
    INFO(r.out);
    REQUIRE(r.code == 0);
    REQUIRE_THAT(r.out, Catch::Contains("decode: 21 frames from 2 chunks"));
    auto f = SafetensorsFile::open(frames);
    REQUIRE(f.ok());
    const TensorInfo * info = f.value()->find("frames");
    REQUIRE(info);
    REQUIRE(info->dtype == DType::u8);
    REQUIRE(info->shape == Shape{21, 64, 64, 3});
    Tensor px = test::read_named(frames, "frames");
    double lo = 255, hi = 0;
    for (int64_t i = 0; i < px.numel(); ++i) lo = std::min(lo, double(px.data<float>()[i])), hi = std::max(hi, double(px.data<float>()[i]));
    REQUIRE(hi > lo);  // not a constant image
    std::ifstream tf(trace);
    std::stringstream ts;
    ts << tf.rdbuf();
    REQUIRE_THAT(ts.str(), Catch::Contains("decode chunk 1") && Catch::Contains("traceEvents"));
    // decoding is a consumer: the latents are the same with and without it
    const std::string lat2 = (dir / "lat2.safetensors").string();
    REQUIRE(run_gen("--backend cpu --random-init --config tiny --seed 5 --chunks 2 --window 6 --dump-latents " + lat2, dir).code == 0);
    REQUIRE(test::rel_err(test::read_named(lat2, "latents"), test::read_named(lat, "latents")) == 0.0);

    // flags that need a decoder, and a decoder that needs weights, fail with a clear message
    Run bad = run_gen("--backend cpu --random-init --config tiny --dump-frames " + frames, dir);
    REQUIRE(bad.code != 0);
    REQUIRE_THAT(bad.out, Catch::Contains("--decoder"));
    Run nov = run_gen("--backend cpu --model " + test::data_path("tiny_weights.safetensors") + " --config " +
                          test::data_path("tiny_config.json") + " --decoder tiny",
                      dir);
    REQUIRE(nov.code != 0);
    REQUIRE_THAT(nov.out, Catch::Contains("--vae"));
    std::filesystem::remove_all(dir);
}
