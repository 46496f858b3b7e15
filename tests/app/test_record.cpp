// Mp4Recorder tests: real libav* encoding, checked by decoding the file back with libavformat and
// libavcodec (codecs, frame count, durations, colours, A/V sync, audio frequency), plus the failure
// paths: MPEG-4 fallback, unwritable path, a killed process and a full disk (in forked children).
#include "app/record/mp4_recorder.h"
#include "app/record/record_path.h"
#include "app/record/recording_session.h"

#include <catch2/catch.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using avs::Mp4Recorder;
using avs::RecorderOptions;

constexpr int    kFps  = 16;
constexpr int    kRate = 16000;
constexpr double kPi   = 3.14159265358979323846;

// x264 and the AAC encoder log statistics at info level: keep the test output to what matters.
const int kQuietLibav = (av_log_set_level(AV_LOG_ERROR), 0);

// This process's scratch folder, removed at exit (forked children leave with _exit and skip it;
// they write into the parent's folder, which is what the parent then decodes).
struct TempDir {
    fs::path dir = fs::temp_directory_path() / ("avs_test_record_" + std::to_string(getpid()));
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
} g_temp;

std::string temp_path(const std::string & name) {
    fs::create_directories(g_temp.dir);
    return (g_temp.dir / name).string();
}

// Frame k: a flat colour that differs from frame to frame (so a decoded frame can be identified)
// plus a white bar that moves 5 px a frame.
std::array<uint8_t, 3> frame_colour(int64_t k) {
    return {static_cast<uint8_t>(40 + (k * 37) % 170), static_cast<uint8_t>(40 + (k * 71) % 170),
            static_cast<uint8_t>(40 + (k * 113) % 170)};
}

std::vector<uint8_t> make_frame(int w, int h, int64_t k) {
    std::vector<uint8_t> f(static_cast<size_t>(w) * h * 4);
    auto c = frame_colour(k);
    const int bar = static_cast<int>((k * 5) % (w - 12));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t * p = &f[(static_cast<size_t>(y) * w + x) * 4];
            bool in_bar = x >= bar && x < bar + 12;
            p[0] = in_bar ? 230 : c[0];
            p[1] = in_bar ? 230 : c[1];
            p[2] = in_bar ? 230 : c[2];
            p[3] = 255;
        }
    return f;
}

// The test signal: a 440 Hz sine at 0.5 amplitude from 0.5 s to 1.5 s and from 2.0 s on (phase
// from the absolute index), silence elsewhere. The recorder is never given 0..0.5 s nor
// 1.5..2.0 s: those gaps must come out as silence.
bool audio_present(int64_t i) { return (i >= kRate / 2 && i < kRate * 3 / 2) || i >= kRate * 2; }
float audio_sample(int64_t i) { return 0.5f * static_cast<float>(std::sin(2.0 * kPi * 440.0 * i / kRate)); }

// Pushes frames [first, last) and the audio up to the end of each frame, in odd-sized blocks, the
// way the app's recorder thread interleaves them. Returns the first failure.
avs::Status record_span(Mp4Recorder & rec, int w, int h, int64_t first, int64_t last, int64_t & audio_next) {
    static const int kBlocks[] = {333, 517, 160, 1000, 77};
    int block = 0;
    for (int64_t k = first; k < last; ++k) {
        auto frame = make_frame(w, h, k);
        AVS_TRY(rec.push_video(frame.data(), k));
        const int64_t audio_end = (k + 1) * kRate / kFps;
        while (audio_next < audio_end) {
            // Next run of present samples, cut into an odd-sized block.
            while (audio_next < audio_end && !audio_present(audio_next)) ++audio_next;
            int64_t n = 0;
            std::vector<float> buf;
            while (audio_next + n < audio_end && audio_present(audio_next + n) && n < kBlocks[block % 5]) {
                buf.push_back(audio_sample(audio_next + n));
                ++n;
            }
            ++block;
            if (n > 0) AVS_TRY(rec.push_audio(buf.data(), n, audio_next));
            audio_next += n;
        }
    }
    return avs::Status::success();
}

// ---- decoding back ----------------------------------------------------------------------------

struct Decoded {
    std::string                       error;
    int                               streams = 0;
    std::string                       video_codec, audio_codec;
    std::vector<std::vector<uint8_t>> frames;     // RGBA
    std::vector<double>               frame_time;  // seconds
    std::vector<float>                audio;       // mono
    double                            audio_start = 0.0;
    int                               audio_rate  = 0;
};

Decoded decode_file(const std::string & path, int w, int h) {
    Decoded d;
    AVFormatContext * fmt = nullptr;
    if (avformat_open_input(&fmt, path.c_str(), nullptr, nullptr) < 0) {
        d.error = "cannot open " + path;
        return d;
    }
    if (avformat_find_stream_info(fmt, nullptr) < 0) d.error = "no stream info";
    d.streams = static_cast<int>(fmt->nb_streams);
    std::vector<AVCodecContext *> dec(fmt->nb_streams, nullptr);
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVCodecParameters * par = fmt->streams[i]->codecpar;
        const AVCodec * codec = avcodec_find_decoder(par->codec_id);
        if (par->codec_type == AVMEDIA_TYPE_VIDEO) d.video_codec = avcodec_get_name(par->codec_id);
        if (par->codec_type == AVMEDIA_TYPE_AUDIO) d.audio_codec = avcodec_get_name(par->codec_id);
        if (!codec) continue;
        dec[i] = avcodec_alloc_context3(codec);
        avcodec_parameters_to_context(dec[i], par);
        if (avcodec_open2(dec[i], codec, nullptr) < 0) d.error = "cannot open decoder";
    }
    SwsContext * sws   = nullptr;
    AVPacket *   pkt   = av_packet_alloc();
    AVFrame *    frame = av_frame_alloc();
    bool         first_audio = true;
    auto receive = [&](unsigned si) {
        const AVStream * st = fmt->streams[si];
        while (avcodec_receive_frame(dec[si], frame) >= 0) {
            const double t = frame->best_effort_timestamp == AV_NOPTS_VALUE
                                 ? 0.0 : frame->best_effort_timestamp * av_q2d(st->time_base);
            if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
                sws = sws_getCachedContext(sws, frame->width, frame->height, static_cast<AVPixelFormat>(frame->format),
                                           w, h, AV_PIX_FMT_RGBA, SWS_BILINEAR, nullptr, nullptr, nullptr);
                std::vector<uint8_t> rgba(static_cast<size_t>(w) * h * 4);
                uint8_t * dst[1]    = {rgba.data()};
                int       stride[1] = {w * 4};
                sws_scale(sws, frame->data, frame->linesize, 0, frame->height, dst, stride);
                d.frames.push_back(std::move(rgba));
                d.frame_time.push_back(t);
            } else if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
                if (first_audio) d.audio_start = t;
                first_audio  = false;
                d.audio_rate = frame->sample_rate;
                // The AAC decoder gives planar float; channel 0 is the mono signal.
                const float * s = reinterpret_cast<const float *>(frame->data[0]);
                d.audio.insert(d.audio.end(), s, s + frame->nb_samples);
            }
        }
    };
    // A file cut short (killed process, full disk) ends in a read error: treat it as the end.
    while (av_read_frame(fmt, pkt) >= 0) {
        unsigned si = static_cast<unsigned>(pkt->stream_index);
        if (si < dec.size() && dec[si] && avcodec_send_packet(dec[si], pkt) >= 0) receive(si);
        av_packet_unref(pkt);
    }
    for (unsigned i = 0; i < dec.size(); ++i)
        if (dec[i]) {
            avcodec_send_packet(dec[i], nullptr);
            receive(i);
            avcodec_free_context(&dec[i]);
        }
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return d;
}

// Mean absolute error per RGB channel between two RGBA frames; the largest of the three.
double frame_mae(const std::vector<uint8_t> & a, const std::vector<uint8_t> & b) {
    double sum[3] = {0, 0, 0};
    const size_t px = a.size() / 4;
    for (size_t i = 0; i < px; ++i)
        for (int c = 0; c < 3; ++c) sum[c] += std::abs(int(a[i * 4 + c]) - int(b[i * 4 + c]));
    return std::max({sum[0], sum[1], sum[2]}) / static_cast<double>(px);
}

// Every decoded frame must look like the frame pushed at its position, and like no other.
void check_frames_match(const Decoded & d, int w, int h, double * worst_out = nullptr) {
    std::vector<std::vector<uint8_t>> pushed;
    for (size_t k = 0; k < d.frames.size() + 16; ++k) pushed.push_back(make_frame(w, h, static_cast<int64_t>(k)));
    double worst = 0.0;
    for (size_t i = 0; i < d.frames.size(); ++i) {
        const double own = frame_mae(d.frames[i], pushed[i]);
        worst = std::max(worst, own);
        INFO("decoded frame " << i << " error " << own);
        CHECK(own < 10.0);
        for (size_t j = 0; j < pushed.size(); ++j)
            if (j != i) CHECK(frame_mae(d.frames[i], pushed[j]) > own);
    }
    if (worst_out) *worst_out = worst;
}

double rms(const std::vector<float> & a, int64_t from, int64_t to) {
    double s = 0.0;
    from = std::max<int64_t>(from, 0);
    to   = std::min<int64_t>(to, static_cast<int64_t>(a.size()));
    for (int64_t i = from; i < to; ++i) s += double(a[i]) * a[i];
    return to > from ? std::sqrt(s / double(to - from)) : 0.0;
}

RecorderOptions options(const std::string & path, int w, int h) {
    RecorderOptions o;
    o.path   = path;
    o.width  = w;
    o.height = h;
    return o;
}

} // namespace

TEST_CASE("Mp4Recorder writes H.264 and AAC that decode back in sync", "[app][record]") {
    const int w = 128, h = 96;
    const std::string path = temp_path("sync.mp4");
    auto opened = Mp4Recorder::open(options(path, w, h));
    REQUIRE(opened.ok());
    auto rec = std::move(opened).value();
    CHECK(rec->video_codec_name() == "h264");  // libx264 is installed with Debian's FFmpeg
    CHECK(rec->video_encoder_name() == "libx264");
    CHECK(rec->audio_codec_name() == "aac");

    int64_t audio_next = 0;
    REQUIRE(record_span(*rec, w, h, 0, 3 * kFps, audio_next).ok());
    REQUIRE(rec->finish().ok());
    CHECK(rec->finish().ok());  // idempotent
    CHECK(!rec->push_video(make_frame(w, h, 48).data(), 48).ok());
    CHECK(rec->frames_written() == 48);
    CHECK(rec->audio_samples_written() == 3 * kRate);  // the gaps were filled
    CHECK(rec->duration_s() == Approx(3.0));
    const auto size = static_cast<int64_t>(fs::file_size(path));
    CHECK(rec->bytes_written() == size);

    Decoded d = decode_file(path, w, h);
    REQUIRE(d.error.empty());
    CHECK(d.streams == 2);
    CHECK(d.video_codec == "h264");
    CHECK(d.audio_codec == "aac");
    REQUIRE(d.frames.size() == 48);
    double worst = 0.0;
    check_frames_match(d, w, h, &worst);

    // Durations: video spans 48 frames; audio ends with the video, give or take one AAC frame.
    const double frame_s     = 1.0 / kFps;
    const double video_start = d.frame_time.front();
    const double video_end   = d.frame_time.back() + frame_s;
    for (size_t i = 1; i < d.frame_time.size(); ++i) CHECK(d.frame_time[i] - d.frame_time[i - 1] == Approx(frame_s));
    CHECK(video_end - video_start == Approx(3.0).margin(frame_s));
    REQUIRE(d.audio_rate == kRate);
    const double aac_frame_s = 1024.0 / kRate;
    const double audio_end   = d.audio_start + double(d.audio.size()) / kRate;
    CHECK(audio_end == Approx(video_end).margin(aac_frame_s));

    // Sync: the sine starts at 0.5 s of the recording, i.e. with video frame 8.
    auto sample_at = [&](double t_rec) {  // decoded audio index of recording time t_rec
        return static_cast<int64_t>(std::lround((t_rec + video_start - d.audio_start) * kRate));
    };
    int64_t onset = -1;
    for (size_t i = 0; i < d.audio.size() && onset < 0; ++i)
        if (std::abs(d.audio[i]) > 0.1f) onset = static_cast<int64_t>(i);
    REQUIRE(onset >= 0);
    const double offset = (d.audio_start + double(onset) / kRate) - d.frame_time[8];
    CHECK(std::abs(offset) < 0.010);

    // The two gaps decode to silence, the sine around them to its level (0.5 / sqrt 2).
    const double rms_gap0 = rms(d.audio, sample_at(0.05), sample_at(0.45));
    const double rms_gap1 = rms(d.audio, sample_at(1.55), sample_at(1.95));
    const double rms_tone = rms(d.audio, sample_at(2.1), sample_at(2.9));
    CHECK(rms_gap0 < 0.01);
    CHECK(rms_gap1 < 0.01);
    CHECK(rms_tone == Approx(0.5 / std::sqrt(2.0)).margin(0.05));

    // Frequency: rising zero crossings over 2.1..2.9 s, located to a fraction of a sample.
    int    crossings = 0;
    double first_x = 0.0, last_x = 0.0;
    for (int64_t i = sample_at(2.1) + 1; i < sample_at(2.9); ++i)
        if (d.audio[i - 1] < 0.0f && d.audio[i] >= 0.0f) {
            const double x = double(i - 1) + d.audio[i - 1] / double(d.audio[i - 1] - d.audio[i]);
            if (crossings++ == 0) first_x = x;
            last_x = x;
        }
    REQUIRE(crossings > 100);
    const double freq = (crossings - 1) * kRate / (last_x - first_x);
    CHECK(freq == Approx(440.0).margin(1.0));

    std::printf("record sync: %lld bytes, worst frame MAE %.2f, video %.4f..%.4f s, audio %.4f s + %zu samples, "
                "audio end - video end %+.4f s, A/V onset offset %+.5f s, gap rms %.4f/%.4f, tone rms %.3f, "
                "%.2f Hz\n", static_cast<long long>(size), worst, video_start, video_end, d.audio_start,
                d.audio.size(), audio_end - video_end, offset, rms_gap0, rms_gap1, rms_tone, freq);
}

TEST_CASE("Mp4Recorder falls back to MPEG-4 part 2", "[app][record]") {
    const int w = 64, h = 48;
    for (bool fragmented : {true, false}) {
        DYNAMIC_SECTION("fragmented " << fragmented) {
            const std::string path = temp_path(fragmented ? "mpeg4_frag.mp4" : "mpeg4_flat.mp4");
            RecorderOptions o = options(path, w, h);
            o.force_codec = avs::VideoCodecChoice::mpeg4;
            o.fragmented  = fragmented;
            auto opened = Mp4Recorder::open(o);
            REQUIRE(opened.ok());
            auto rec = std::move(opened).value();
            CHECK(rec->video_codec_name() == "mpeg4");
            int64_t audio_next = 0;
            REQUIRE(record_span(*rec, w, h, 0, kFps, audio_next).ok());
            REQUIRE(rec->finish().ok());

            Decoded d = decode_file(path, w, h);
            REQUIRE(d.error.empty());
            CHECK(d.streams == 2);
            CHECK(d.video_codec == "mpeg4");
            CHECK(d.audio_codec == "aac");
            REQUIRE(d.frames.size() == 16);
            double worst = 0.0;
            check_frames_match(d, w, h, &worst);
            std::printf("record mpeg4 (fragmented %d): %lld bytes, worst frame MAE %.2f\n", int(fragmented),
                        static_cast<long long>(fs::file_size(path)), worst);
        }
    }
}

TEST_CASE("Mp4Recorder rejects bad options and names an unwritable path", "[app][record]") {
    const std::string bad = "/nonexistent-avs-dir/sub/out.mp4";
    auto r = Mp4Recorder::open(options(bad, 64, 48));
    REQUIRE(!r.ok());
    CHECK(r.status().code() == avs::ErrorCode::io);
    CHECK(r.status().message().find(bad) != std::string::npos);

    auto odd = Mp4Recorder::open(options(temp_path("odd.mp4"), 63, 48));
    REQUIRE(!odd.ok());
    CHECK(odd.status().code() == avs::ErrorCode::invalid_argument);

    // Misuse after a good open is reported without breaking the recording.
    const std::string path = temp_path("misuse.mp4");
    auto opened = Mp4Recorder::open(options(path, 64, 48));
    REQUIRE(opened.ok());
    auto rec = std::move(opened).value();
    auto f0 = make_frame(64, 48, 0);
    REQUIRE(rec->push_video(f0.data(), 0).ok());
    CHECK(rec->push_video(f0.data(), 0).code() == avs::ErrorCode::invalid_argument);  // not increasing
    CHECK(rec->push_video(nullptr, 1).code() == avs::ErrorCode::invalid_argument);
    CHECK(rec->push_audio(nullptr, 10, 0).code() == avs::ErrorCode::invalid_argument);
    // Audio overlapping what was already pushed is dropped, not recorded twice.
    std::vector<float> tone(1000);
    for (int i = 0; i < 1000; ++i) tone[i] = audio_sample(i);
    REQUIRE(rec->push_audio(tone.data(), 1000, 0).ok());
    REQUIRE(rec->push_audio(tone.data(), 1000, 500).ok());
    CHECK(rec->audio_samples_written() == 1500);
    CHECK(rec->push_video(make_frame(64, 48, 1).data(), 1).ok());
    CHECK(rec->finish().ok());
    CHECK(decode_file(path, 64, 48).frames.size() == 2);
}

TEST_CASE("Mp4Recorder finishes the file in its destructor", "[app][record]") {
    const std::string path = temp_path("dtor.mp4");
    {
        auto opened = Mp4Recorder::open(options(path, 64, 48));
        REQUIRE(opened.ok());
        int64_t audio_next = 0;
        REQUIRE(record_span(*opened.value(), 64, 48, 0, 20, audio_next).ok());
    }
    Decoded d = decode_file(path, 64, 48);
    REQUIRE(d.error.empty());
    CHECK(d.frames.size() == 20);  // all of them, the last partial fragment included
}

TEST_CASE("Mp4Recorder leaves a playable file when the process dies without finish", "[app][record]") {
    const int w = 64, h = 48;
    const std::string path = temp_path("killed.mp4");
    std::fflush(nullptr);  // or the child's exit flushes the parent's pending output a second time
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: record 2 s, then die the way a crash would: no finish(), no destructors, no flush.
        auto opened = Mp4Recorder::open(options(path, w, h));
        if (!opened.ok()) _exit(2);
        int64_t audio_next = 0;
        if (!record_span(*opened.value(), w, h, 0, 2 * kFps, audio_next).ok()) _exit(3);
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    Decoded d = decode_file(path, w, h);
    REQUIRE(d.error.empty());
    CHECK(d.streams == 2);
    // Keyframes (and so fragments) every 16 frames: the fragment of frames 0..15 was complete when
    // frame 16 came; only the one in progress (16..31) may be lost.
    CHECK(d.frames.size() >= 16);
    CHECK(d.frames.size() <= 32);
    check_frames_match(d, w, h);
    CHECK(d.audio.size() >= static_cast<size_t>(kRate / 2));
    std::printf("record killed: %lld bytes on disk, %zu of 32 frames and %.3f s of audio decodable\n",
                static_cast<long long>(fs::file_size(path)), d.frames.size(), double(d.audio.size()) / kRate);
}

TEST_CASE("Mp4Recorder keeps what was written when the disk fills up", "[app][record]") {
    const int w = 128, h = 96;
    const std::string path = temp_path("full.mp4");
    // A full disk, simulated in a child with a file size limit: writes past it fail with EFBIG.
    const rlim_t limit = 24 * 1024;
    std::fflush(nullptr);  // or the child's exit flushes the parent's pending output a second time
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit rl{limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
        auto opened = Mp4Recorder::open(options(path, w, h));
        if (!opened.ok()) _exit(11);
        auto & rec = *opened.value();
        int64_t audio_next = 0;
        avs::Status first = avs::Status::success();
        for (int64_t k = 0; k < 20 * kFps && first.ok(); ++k) first = record_span(rec, w, h, k, k + 1, audio_next);
        if (first.ok()) _exit(12);                                             // never hit the limit
        if (first.code() != avs::ErrorCode::io) _exit(13);
        if (first.message().find(path) == std::string::npos) _exit(14);        // must name the file
        auto again = rec.push_video(make_frame(w, h, 1000).data(), 1000);
        if (again.ok() || again.message() != first.message()) _exit(15);       // sticky
        auto fin = rec.finish();
        if (fin.ok() || fin.message() != first.message()) _exit(16);
        std::printf("record disk full: error after %lld frames: %s\n", static_cast<long long>(rec.frames_written()),
                    first.message().c_str());
        std::fflush(stdout);
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    const auto size = fs::file_size(path);
    CHECK(size <= limit);
    Decoded d = decode_file(path, w, h);
    REQUIRE(d.error.empty());
    CHECK(d.frames.size() >= 16);  // at least the first complete fragment
    check_frames_match(d, w, h);
    std::printf("record disk full: %zu bytes on disk, %zu frames decodable\n", static_cast<size_t>(size),
                d.frames.size());
}

// A frame of another size (the model or resolution changed mid-recording) must not be read as one of
// the recording's size (it overran the buffer): an error that names the file and both sizes, and the
// file keeps every frame before it.
TEST_CASE("RecordingSession rejects a frame of another size and keeps the file", "[app][record]") {
    const int          w = 64, h = 48;
    const std::string  path = temp_path("resize.mp4");
    RecorderOptions    o = options(path, w, h);
    auto               r = avs::RecordingSession::start(o, nullptr);
    REQUIRE(r.ok());
    auto & rec = *r.value();
    auto   frame = [](int fw, int fh, int64_t k) {
        avs::DecodedFrame f;
        f.index = k;
        f.rgba  = avs::Tensor::host(avs::DType::u8, avs::Shape{fh, fw, 4});
        const std::vector<uint8_t> px = make_frame(fw, fh, k);
        std::copy(px.begin(), px.end(), f.rgba.data<uint8_t>());
        return f;
    };
    for (int64_t k = 0; k < 20; ++k) rec.push_frame(frame(w, h, k));
    rec.push_frame(frame(32, 32, 20));  // smaller: the old code read w*h*4 bytes from it
    rec.push_frame(frame(w, h, 21));
    const avs::Status st = rec.stop();
    REQUIRE_FALSE(st.ok());
    CHECK(st.message().find(path) != std::string::npos);
    CHECK(st.message().find("32, 32, 4") != std::string::npos);
    CHECK(st.message().find("64x48") != std::string::npos);
    CHECK(rec.frames_written() == 20);
    const Decoded d = decode_file(path, w, h);
    REQUIRE(d.error.empty());
    CHECK(d.frames.size() == 20);
}

TEST_CASE("the record button's path goes under the recording folder and never over an earlier take", "[app][record]") {
    const std::string dir = temp_path("takes");
    fs::create_directories(dir);
    CHECK(avs::unique_record_path(dir, "take.mp4") == (fs::path(dir) / "take.mp4").string());
    CHECK(avs::unique_record_path(dir, "") == (fs::path(dir) / "avatarstream.mp4").string());
    std::FILE * f = std::fopen((fs::path(dir) / "take.mp4").c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
    CHECK(avs::unique_record_path(dir, "take.mp4") == (fs::path(dir) / "take-2.mp4").string());
    f = std::fopen((fs::path(dir) / "take-2.mp4").c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
    CHECK(avs::unique_record_path(dir, "take.mp4") == (fs::path(dir) / "take-3.mp4").string());
    // an absolute path ignores the folder; no folder: the working directory
    const std::string abs = (fs::path(dir) / "abs.mp4").string();
    CHECK(avs::unique_record_path("/nonexistent-folder", abs) == abs);
    CHECK(avs::unique_record_path("", "x.mp4") == "x.mp4");
}
