#include "app/audio/audio_source.h"

#include <chrono>
#include <thread>

namespace avs {

const char * audio_source_kind_name(AudioSourceKind kind) {
    switch (kind) {
        case AudioSourceKind::microphone: return "microphone";
        case AudioSourceKind::file:       return "file";
        case AudioSourceKind::silence:    return "silence";
    }
    return "unknown";
}

AudioSource::AudioSource(std::string name, size_t ring_capacity)
    : name_(std::move(name)), meter_(k_sample_rate) {
    outputs_.push_back(std::make_shared<AudioRing>(ring_capacity < 1024 ? 1024 : ring_capacity));
}

Status AudioSource::add_output(std::shared_ptr<AudioRing> ring) {
    if (!ring) return make_error(ErrorCode::invalid_argument, "%s: add_output got a null ring", name_.c_str());
    if (running()) {
        return make_error(ErrorCode::invalid_argument, "%s: add_output while running (stop the source first)",
                          name_.c_str());
    }
    outputs_.push_back(std::move(ring));
    return Status::success();
}

std::string AudioSource::status() const {
    std::lock_guard<std::mutex> lock(status_mu_);
    return status_;
}

void AudioSource::set_status(std::string text) {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_ = std::move(text);
}

void AudioSource::publish(const float * samples, size_t n, bool wait_for_space, const std::atomic<bool> & keep_going) {
    if (n == 0) return;
    for (auto & out : outputs_) {
        if (!wait_for_space) {
            out->push(samples, n);
            continue;
        }
        size_t done = 0;
        while (done < n && keep_going.load(std::memory_order_acquire)) {
            const size_t room = std::min(out->write_available(), n - done);
            if (room == 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            done += out->push(samples + done, room);
        }
    }
    meter_.process(samples, n);
    produced_.fetch_add(n, std::memory_order_release);
}

Result<std::unique_ptr<AudioSource>> open_audio_source(const AudioSourceSpec & spec) {
    std::unique_ptr<AudioSource> src;
    switch (spec.kind) {
        case AudioSourceKind::microphone: {
            AVS_ASSIGN_OR_RETURN(src, open_mic_source(spec));
            break;
        }
        case AudioSourceKind::file: {
            AVS_ASSIGN_OR_RETURN(src, open_file_source(spec));
            break;
        }
        case AudioSourceKind::silence: src = open_silence_source(spec); break;
    }
    if (!src) return make_error(ErrorCode::invalid_argument, "audio: unknown source kind %d", int(spec.kind));
    for (const auto & extra : spec.extra_outputs) AVS_TRY(src->add_output(extra));
    return src;
}

namespace {

// Opens and starts; on failure returns the error, with the source's own status if it had one.
Result<std::unique_ptr<AudioSource>> open_and_start(const AudioSourceSpec & spec) {
    AVS_ASSIGN_OR_RETURN(std::unique_ptr<AudioSource> src, open_audio_source(spec));
    AVS_TRY(src->start());
    return src;
}

} // namespace

AudioOpenResult open_audio_with_fallback(const AudioSourceSpec & spec) {
    AudioOpenResult res;
    auto first = open_and_start(spec);
    if (first.ok()) {
        res.source = std::move(first).value();
        return res;
    }
    res.fell_back = true;
    std::string why = first.status().message();

    if (spec.kind != AudioSourceKind::file && !spec.file_path.empty()) {
        AudioSourceSpec file_spec = spec;
        file_spec.kind = AudioSourceKind::file;
        auto file = open_and_start(file_spec);
        if (file.ok()) {
            res.source  = std::move(file).value();
            res.message = "No usable microphone (" + why + "); playing audio file '" + spec.file_path + "' instead.";
            return res;
        }
        why += "; the fallback file failed too (" + file.status().message() + ")";
    }

    AudioSourceSpec silence_spec = spec;
    silence_spec.kind = AudioSourceKind::silence;
    res.source = open_silence_source(silence_spec);
    for (const auto & extra : spec.extra_outputs) (void)res.source->add_output(extra);
    Status started = res.source->start();  // a thread start; only fails if the OS cannot make threads
    const char * what = spec.kind == AudioSourceKind::file ? "Cannot play the audio file" : "No usable microphone";
    res.message = std::string(what) + " (" + why + "); using silence.";
    if (spec.file_path.empty()) res.message += " Pass --audio-file to drive the avatar from a file.";
    if (!started.ok()) res.message += " Silence failed to start as well: " + started.message();
    return res;
}

} // namespace avs
