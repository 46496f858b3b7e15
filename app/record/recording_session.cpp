#include "app/record/recording_session.h"

#include <vector>

namespace avs {

namespace {
constexpr size_t kMaxBacklog = 64;  // frames (4 s at 16 fps)
}

Result<std::unique_ptr<RecordingSession>> RecordingSession::start(const RecorderOptions & opt, std::shared_ptr<AudioRing> audio) {
    RecorderOptions o = opt;
    if (!audio) o.audio_sample_rate = 0;
    AVS_ASSIGN_OR_RETURN(auto rec, Mp4Recorder::open(o));
    std::unique_ptr<RecordingSession> s(new RecordingSession());
    s->rec_   = std::move(rec);
    s->audio_ = std::move(audio);
    s->path_  = opt.path;
    s->width_ = opt.width, s->height_ = opt.height;
    s->codec_ = s->rec_->video_codec_name();
    if (s->audio_) s->audio_->skip(s->audio_->available());  // audio starts with the recording
    s->thread_ = std::thread([p = s.get()] { p->run(); });
    return s;
}

RecordingSession::~RecordingSession() { (void) stop(); }

void RecordingSession::push_frame(const DecodedFrame & f) {
    {
        std::lock_guard<std::mutex> lock(m_);
        if (stopped_) return;
        if (queue_.size() >= kMaxBacklog) {
            ++dropped_;
            return;
        }
        queue_.push_back(f);
    }
    cv_.notify_one();
}

Status RecordingSession::error() const {
    std::lock_guard<std::mutex> lock(m_);
    return error_;
}

Status RecordingSession::stop() {
    {
        std::lock_guard<std::mutex> lock(m_);
        if (stopped_) return error_;
        stopped_ = true;
    }
    stop_ = true;
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    Status s = rec_->finish();
    std::lock_guard<std::mutex> lock(m_);
    if (error_.ok() && !s.ok()) error_ = s;
    return error_;
}

void RecordingSession::run() {
    std::vector<float> audio_buf(4096);
    auto fail = [&](const Status & s) {
        std::lock_guard<std::mutex> lock(m_);
        if (error_.ok()) error_ = s;
    };
    for (;;) {
        DecodedFrame f;
        bool have = false, done = false;
        {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_.load() || !queue_.empty(); });
            if (!queue_.empty()) {
                f = std::move(queue_.front());
                queue_.pop_front();
                have = true;
            } else if (stop_) {
                done = true;
            }
        }
        if (have && error().ok() && (f.rgba.ndim() != 3 || f.rgba.dim(0) != height_ || f.rgba.dim(1) != width_ || f.rgba.dim(2) != 4)) {
            fail(make_error(ErrorCode::invalid_argument, "%s: frame %lld is %s, the recording is %dx%d RGBA (a new size needs a new file)",
                            path_.c_str(), (long long) f.index, f.rgba.shape().str().c_str(), width_, height_));
        } else if (have && error().ok()) {
            if (first_index_ < 0) first_index_ = f.index;
            if (Status s = rec_->push_video(f.rgba.data<uint8_t>(), f.index - first_index_); !s.ok()) fail(s);
            else ++frames_;
        }
        // audio: whatever the source delivered so far, placed by its ring index
        while (audio_ && error().ok()) {
            uint64_t     first = 0;
            const size_t n     = audio_->read(audio_buf.data(), audio_buf.size(), first);
            if (n == 0) break;
            if (audio_start_ < 0) audio_start_ = int64_t(first);
            if (Status s = rec_->push_audio(audio_buf.data(), int64_t(n), int64_t(first) - audio_start_); !s.ok()) fail(s);
        }
        if (done) return;
    }
}

} // namespace avs
