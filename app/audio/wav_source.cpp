// File source (--audio-file): decodes any audio file FFmpeg reads (WAV at least), converts it to
// 16 kHz mono and plays it out on its own thread, paced by the steady clock like a live input, or
// as fast as the consumers drain the rings (tests, offline rendering). Optionally loops.
#include <chrono>
#include <cstdio>
#include <thread>

#include "app/audio/audio_file_decoder.h"
#include "app/audio/audio_source.h"

namespace avs {

namespace {

class FileSource final : public AudioSource {
public:
    FileSource(const AudioSourceSpec & spec, std::unique_ptr<AudioFileDecoder> dec)
        : AudioSource("file: " + spec.file_path, spec.ring_capacity), dec_(std::move(dec)), loop_(spec.loop),
          realtime_(spec.realtime) {
        char buf[256];
        std::snprintf(buf, sizeof(buf), "file %d Hz x%d %s, %.1f s -> 16 kHz mono%s", dec_->source_rate(),
                      dec_->source_channels(), dec_->codec_name().c_str(), dec_->duration_s(), loop_ ? ", looping" : "");
        describe_ = buf;
        set_status(describe_ + " (stopped)");
    }
    ~FileSource() override { stop(); }

    AudioSourceKind kind() const override { return AudioSourceKind::file; }

    Status start() override {
        if (running()) return Status::success();
        if (thread_.joinable()) thread_.join();  // a thread that ended at end of file
        if (finished()) {  // played to the end before: start over
            AVS_TRY(dec_->rewind());
            pending_.clear();
            pending_pos_ = 0;
            decoded_this_pass_ = 0;
            eof_ = false;
            finished_.store(false, std::memory_order_release);
        }
        running_.store(true, std::memory_order_release);
        set_status(describe_);
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::exception & e) {
            running_.store(false, std::memory_order_release);
            return make_error(ErrorCode::internal, "%s: cannot start its thread: %s", name().c_str(), e.what());
        }
        return Status::success();
    }

    void stop() override {
        running_.store(false, std::memory_order_release);
        if (thread_.joinable()) thread_.join();
    }

private:
    // Makes sure pending_ holds at least `want` unsent samples unless the file (and looping) ends.
    bool refill(size_t want) {
        if (pending_pos_ > 0 && pending_pos_ * 2 >= pending_.size()) {  // compact: keep memory bounded
            pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(pending_pos_));
            pending_pos_ = 0;
        }
        while (pending_.size() - pending_pos_ < want && running()) {
            if (eof_) {
                if (!loop_) return true;
                if (decoded_this_pass_ == 0) {  // looping an empty file would spin forever
                    return fail(make_error(ErrorCode::format, "audio file '%s' decodes to no samples",
                                           dec_->path().c_str()));
                }
                if (Status st = dec_->rewind(); !st.ok()) return fail(st);
                eof_ = false;
                decoded_this_pass_ = 0;
            }
            const size_t before = pending_.size();
            if (Status st = dec_->read_more(pending_, eof_); !st.ok()) return fail(st);
            decoded_this_pass_ += pending_.size() - before;
        }
        return true;
    }

    bool fail(const Status & st) {
        set_status("error: " + st.message());
        eof_  = true;
        loop_ = false;
        return false;
    }

    void run() {
        using clock = std::chrono::steady_clock;
        constexpr size_t chunk = 320;  // 20 ms
        const auto t0   = clock::now();
        uint64_t   sent = 0;
        while (running()) {
            size_t n = chunk;
            if (realtime_) {
                const double   elapsed = std::chrono::duration<double>(clock::now() - t0).count();
                const uint64_t due     = uint64_t(elapsed * k_sample_rate);
                n = size_t(std::min<uint64_t>(due - std::min(due, sent), 4 * chunk));
                if (n == 0) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    continue;
                }
            }
            refill(n);
            const size_t have = std::min(n, pending_.size() - pending_pos_);
            if (have > 0) {
                publish(pending_.data() + pending_pos_, have, !realtime_, running_);
                pending_pos_ += have;
                sent += have;
            }
            if (have < n && eof_) {  // nothing more will come
                finished_.store(true, std::memory_order_release);
                const std::string st = status();
                if (st.rfind("error:", 0) != 0) set_status(describe_ + ": end of file");
                break;
            }
        }
        // running_ stays true until stop(): the source was started and not stopped.
    }

    std::unique_ptr<AudioFileDecoder> dec_;
    bool               loop_;
    bool               realtime_;
    std::string        describe_;
    std::vector<float> pending_;
    size_t             pending_pos_ = 0;
    size_t             decoded_this_pass_ = 0;
    bool               eof_ = false;
    std::thread        thread_;
};

} // namespace

Result<std::unique_ptr<AudioSource>> open_file_source(const AudioSourceSpec & spec) {
    AVS_ASSIGN_OR_RETURN(std::unique_ptr<AudioFileDecoder> dec, AudioFileDecoder::open(spec.file_path));
    return std::unique_ptr<AudioSource>(std::make_unique<FileSource>(spec, std::move(dec)));
}

} // namespace avs
