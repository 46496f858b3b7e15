// avatarstream --headless end to end, as a user runs it: the default tiny model on the CPU, a WAV
// file as the audio source, an MP4 recording decoded back, the settings file written and read
// again, SIGTERM finishing the recording, a malformed settings file named in the error.
#include <catch2/catch.hpp>

extern "C" {
#include <libavformat/avformat.h>
}

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

std::filesystem::path temp_dir(const std::string & tag) {
    auto p = std::filesystem::temp_directory_path() / ("avs-app-" + tag + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
}

void write_tone_wav(const std::string & path, int rate, double seconds) {
    const int n = int(rate * seconds);
    std::ofstream f(path, std::ios::binary);
    auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char *>(&v), 4); };
    auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char *>(&v), 2); };
    f.write("RIFF", 4), u32(36 + 2 * n), f.write("WAVEfmt ", 8), u32(16), u16(1), u16(1), u32(rate), u32(2 * rate), u16(2), u16(16);
    f.write("data", 4), u32(2 * n);
    for (int i = 0; i < n; ++i) u16(uint16_t(int16_t(8000 * std::sin(2 * M_PI * 330.0 * i / rate))));
}

struct Run {
    int         code;
    std::string out;
};

Run run(const std::string & args, const std::filesystem::path & dir) {
    const std::string log = (dir / "log.txt").string();
    const int raw = std::system((std::string(AVS_APP_EXE) + " " + args + " > " + log + " 2>&1").c_str());
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, ss.str()};
}

struct Probe {
    int    streams = 0, video_frames = 0;
    double duration = 0;
    std::string vcodec, acodec;
};

Probe probe(const std::string & path) {
    Probe p;
    AVFormatContext * fmt = nullptr;
    REQUIRE(avformat_open_input(&fmt, path.c_str(), nullptr, nullptr) == 0);
    REQUIRE(avformat_find_stream_info(fmt, nullptr) >= 0);
    p.streams = int(fmt->nb_streams);
    int vi = -1;
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVCodecParameters * cp = fmt->streams[i]->codecpar;
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO) p.vcodec = avcodec_get_name(cp->codec_id), vi = int(i);
        if (cp->codec_type == AVMEDIA_TYPE_AUDIO) p.acodec = avcodec_get_name(cp->codec_id);
    }
    AVPacket * pkt = av_packet_alloc();
    double last = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == vi) {
            ++p.video_frames;
            last = std::max(last, double(pkt->pts + pkt->duration) * av_q2d(fmt->streams[vi]->time_base));
        }
        av_packet_unref(pkt);
    }
    p.duration = last;
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return p;
}

} // namespace

TEST_CASE("avatarstream --headless records the default model with file audio and keeps its settings", "[app][headless]") {
    auto dir = temp_dir("headless");
    const std::string wav = (dir / "tone.wav").string(), mp4 = (dir / "out.mp4").string(), cfg = (dir / "settings.json").string();
    write_tone_wav(wav, 22050, 4.0);
    Run r = run("--headless --backend cpu --config tiny --window 9 --seconds 2 --audio file --audio-file " + wav + " --record " + mp4 +
                    " --settings " + cfg,
                dir);
    INFO(r.out);
    REQUIRE(r.code == 0);
    REQUIRE_THAT(r.out, Catch::Contains("audio: file") && Catch::Contains("done: 32 frames"));
    const Probe p = probe(mp4);
    REQUIRE(p.streams == 2);
    REQUIRE(p.acodec == "aac");
    REQUIRE((p.vcodec == "h264" || p.vcodec == "mpeg4"));
    REQUIRE(p.video_frames == 32);
    REQUIRE(p.duration == Approx(2.0).margin(1.0 / 16));
    // the settings file remembers the flags; a second run without them uses it
    std::ifstream f(cfg);
    std::stringstream ss;
    ss << f.rdbuf();
    REQUIRE_THAT(ss.str(), Catch::Contains("\"window\": 9") && Catch::Contains("tone.wav"));
    Run again = run("--headless --backend cpu --seconds 0.5 --settings " + cfg, dir);
    INFO(again.out);
    REQUIRE(again.code == 0);
    REQUIRE_THAT(again.out, Catch::Contains("audio: file"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("avatarstream finishes the recording on SIGTERM and names a malformed settings file", "[app][headless]") {
    auto dir = temp_dir("sigterm");
    const std::string mp4 = (dir / "out.mp4").string(), cfg = (dir / "settings.json").string();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const std::string log = (dir / "child.txt").string();
        FILE * out = std::freopen(log.c_str(), "w", stdout);
        (void) out;
        execl(AVS_APP_EXE, AVS_APP_EXE, "--headless", "--backend", "cpu", "--config", "tiny", "--audio", "silence", "--record",
              mp4.c_str(), "--settings", cfg.c_str(), "--no-save", static_cast<char *>(nullptr));
        _exit(127);
    }
    // let it record for a while, then ask it to stop as a service manager would
    for (int i = 0; i < 600 && !std::filesystem::exists(mp4); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    REQUIRE(kill(pid, SIGTERM) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const Probe p = probe(mp4);
    REQUIRE(p.video_frames >= 16);  // about 2.5 s were shown before the signal
    REQUIRE_FALSE(std::filesystem::exists(cfg));  // --no-save

    std::ofstream(cfg) << "{\"window\": \"wide\"}";
    Run bad = run("--headless --backend cpu --seconds 1 --settings " + cfg, dir);
    REQUIRE(bad.code != 0);
    REQUIRE_THAT(bad.out, Catch::Contains(cfg) && Catch::Contains("window"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("avatarstream window shows the video letterboxed beside the panels and records", "[app][window]") {
    auto dir = temp_dir("window");
    const std::string mp4 = (dir / "out.mp4").string(), shot = (dir / "shot.ppm").string(), cfg = (dir / "settings.json").string();
    const std::string cmd = std::string(AVS_DISPLAY_WRAPPER) + " " + AVS_APP_EXE + " --backend cpu --config tiny --seconds 2 --audio silence --record " +
                            mp4 + " --screenshot " + shot + " --settings " + cfg + " > " + (dir / "log.txt").string() + " 2>&1";
    const int raw = std::system(cmd.c_str());
    std::ifstream lf(dir / "log.txt");
    std::stringstream log;
    log << lf.rdbuf();
    INFO(log.str());
    REQUIRE(WIFEXITED(raw));
    REQUIRE(WEXITSTATUS(raw) == 0);
    REQUIRE_THAT(log.str(), Catch::Contains("shown 32 frames"));
    REQUIRE(probe(mp4).video_frames == 32);
    // the last window frame: 1280x800, a 64x64 video aspect-fit to 800x800 in the middle
    std::ifstream f(shot, std::ios::binary);
    std::string magic;
    int w = 0, h = 0, maxv = 0;
    f >> magic >> w >> h >> maxv;
    f.get();
    REQUIRE(magic == "P6");
    REQUIRE(w == 1280);
    REQUIRE(h == 800);
    std::vector<unsigned char> px(size_t(w) * h * 3);
    f.read(reinterpret_cast<char *>(px.data()), std::streamsize(px.size()));
    auto at = [&](int x, int y) { return px.data() + (size_t(y) * w + x) * 3; };
    const unsigned char * bar = at(1200, 700), * bar2 = at(1100, 100);
    REQUIRE(std::equal(bar, bar + 3, bar2));  // both letterbox pixels: the clear colour
    int differ = 0;  // the video area is not the clear colour
    for (int y = 620; y < 780; y += 20)
        for (int x = 600; x < 1000; x += 40) differ += !std::equal(bar, bar + 3, at(x, y));
    REQUIRE(differ > 0);
    std::filesystem::remove_all(dir);
}
