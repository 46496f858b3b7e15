// Microphone source over PortAudio.
//
// Real-time rule: the PortAudio callback only copies the device's float frames into a preallocated
// lock-free raw ring (no locks, no allocation, no syscalls). A pump thread drains that ring every few
// milliseconds, resamples to 16 kHz mono with libswresample (which allocates, hence not in the
// callback), feeds the level meter and publishes to the output rings. The raw ring holds ~1.4 s at
// 48 kHz stereo, far more than the pump's 5 ms period.
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include <portaudio.h>
#if AVS_HAVE_ALSA
#include <alsa/asoundlib.h>
#endif
#if AVS_HAVE_JACK
#include <jack/jack.h>
#endif

#include "app/audio/audio_source.h"
#include "app/audio/resampler.h"
#include "engine/core/log.h"

namespace avs {

namespace {

#if AVS_HAVE_ALSA
void alsa_to_log(const char * file, int line, const char * function, int err, const char * fmt, ...) {
    char    msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    AVS_LOG_DEBUG("ALSA %s:%d %s: %s (%d)", file, line, function, msg, err);
}
#endif
#if AVS_HAVE_JACK
void jack_to_log(const char * msg) { AVS_LOG_DEBUG("JACK: %s", msg); }
#endif

// PortAudio's backends print every failed probe to stderr (with no sound card ALSA reports ~40 PCM
// aliases, JACK a missing server): route them to the debug log so the terminal stays readable.
void quiet_backend_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
#if AVS_HAVE_ALSA
        snd_lib_error_set_handler(&alsa_to_log);
#endif
#if AVS_HAVE_JACK
        jack_set_error_function(&jack_to_log);
        jack_set_info_function(&jack_to_log);
#endif
    });
}

// Pa_Initialize / Pa_Terminate are reference counted; each successful init needs one terminate.
class PaSession {
public:
    PaSession() = default;
    PaSession(const PaSession &) = delete;
    PaSession & operator=(const PaSession &) = delete;
    ~PaSession() {
        if (ok_) Pa_Terminate();
    }
    Status init() {
        quiet_backend_logging();
        const PaError err = Pa_Initialize();
        if (err != paNoError) {
            return make_error(ErrorCode::device, "PortAudio cannot start: %s", Pa_GetErrorText(err));
        }
        ok_ = true;
        return Status::success();
    }

private:
    bool ok_ = false;
};

std::string host_api_name(PaHostApiIndex i) {
    const PaHostApiInfo * h = Pa_GetHostApiInfo(i);
    return h && h->name ? h->name : "?";
}

class MicSource final : public AudioSource {
public:
    MicSource(const AudioSourceSpec & spec, std::string device_name)
        : AudioSource("mic: " + device_name, spec.ring_capacity), raw_(1u << 18), device_name_(std::move(device_name)) {}

    ~MicSource() override {
        stop();
        if (stream_) Pa_CloseStream(stream_);
    }

    AudioSourceKind kind() const override { return AudioSourceKind::microphone; }

    // Everything that can fail before capture starts: PortAudio, the device, the format.
    Status open(int device, const PaDeviceInfo & info) {
        const int max_ch = info.maxInputChannels;
        rate_ = info.defaultSampleRate > 0 ? info.defaultSampleRate : 48000.0;
        PaStreamParameters in{};
        in.device                    = device;
        in.sampleFormat              = paFloat32;  // PortAudio converts the device's format for us
        in.suggestedLatency          = info.defaultLowInputLatency;
        in.hostApiSpecificStreamInfo = nullptr;
        // Mono is all the model needs; some devices (raw ALSA hw:) only open with 2 channels.
        PaError fmt_err = paInvalidChannelCount;
        for (int ch : {1, 2, max_ch}) {
            if (ch < 1 || ch > max_ch) continue;
            in.channelCount = ch;
            fmt_err = Pa_IsFormatSupported(&in, nullptr, rate_);
            if (fmt_err == paFormatIsSupported) break;
        }
        if (fmt_err != paFormatIsSupported) {
            return make_error(ErrorCode::device, "microphone '%s': no float format at %.0f Hz with 1..%d channels: %s",
                              device_name_.c_str(), rate_, max_ch, Pa_GetErrorText(fmt_err));
        }
        channels_ = in.channelCount;
        AVS_ASSIGN_OR_RETURN(Resampler rs, Resampler::create(int(rate_ + 0.5), channels_));
        resampler_.emplace(std::move(rs));
        PaError err = Pa_OpenStream(&stream_, &in, nullptr, rate_, paFramesPerBufferUnspecified, paNoFlag,
                                    &MicSource::callback, this);
        if (err != paNoError) {
            stream_ = nullptr;
            return make_error(ErrorCode::device, "microphone '%s': cannot open a %.0f Hz x%d stream: %s",
                              device_name_.c_str(), rate_, channels_, Pa_GetErrorText(err));
        }
        Pa_SetStreamFinishedCallback(stream_, &MicSource::finished_callback);
        scratch_.resize(size_t(4096) * size_t(channels_));
        out_.reserve(8192);
        char buf[512];
        std::snprintf(buf, sizeof(buf), "microphone '%s' %.0f Hz x%d -> 16 kHz mono", device_name_.c_str(), rate_,
                      channels_);
        describe_ = buf;
        set_status(describe_ + " (stopped)");
        return Status::success();
    }

    PaSession & session() { return pa_; }

    Status start() override {
        if (running()) return Status::success();
        if (!stream_) return make_error(ErrorCode::internal, "%s: not open", name().c_str());
        stream_ended_.store(false, std::memory_order_release);
        const PaError err = Pa_StartStream(stream_);
        if (err != paNoError) {
            set_status("error: cannot start capture: " + std::string(Pa_GetErrorText(err)));
            return make_error(ErrorCode::device, "microphone '%s': cannot start capture: %s", device_name_.c_str(),
                              Pa_GetErrorText(err));
        }
        running_.store(true, std::memory_order_release);
        set_status("capturing from " + describe_);
        try {
            pump_ = std::thread([this] { pump(); });
        } catch (const std::exception & e) {
            running_.store(false, std::memory_order_release);
            Pa_StopStream(stream_);
            return make_error(ErrorCode::internal, "%s: cannot start the pump thread: %s", name().c_str(), e.what());
        }
        return Status::success();
    }

    void stop() override {
        if (stream_ && running()) Pa_StopStream(stream_);  // returns after the last callback
        running_.store(false, std::memory_order_release);
        if (pump_.joinable()) pump_.join();
        if (stream_) set_status(describe_ + " (stopped)");
    }

private:
    static int callback(const void * input, void *, unsigned long frames, const PaStreamCallbackTimeInfo *,
                        PaStreamCallbackFlags flags, void * user) {
        auto * self = static_cast<MicSource *>(user);
        if (flags & paInputOverflow) self->input_overflows_.fetch_add(1, std::memory_order_relaxed);
        if (input) {
            const size_t ch = size_t(self->channels_);
            self->raw_.push(static_cast<const float *>(input), size_t(frames) * ch, ch);
        }
        return paContinue;
    }

    static void finished_callback(void * user) {
        static_cast<MicSource *>(user)->stream_ended_.store(true, std::memory_order_release);
    }

    void drain() {
        for (;;) {
            const size_t got = raw_.read(scratch_.data(), scratch_.size());
            if (got == 0) return;
            out_.clear();
            if (Status st = resampler_->process(scratch_.data(), int(got / size_t(channels_)), out_); !st.ok()) {
                set_status("error: " + st.message());
                return;
            }
            publish(out_.data(), out_.size(), false, running_);
        }
    }

    void pump() {
        uint64_t reported_drops = 0;
        auto     last_report    = std::chrono::steady_clock::now();
        while (running()) {
            drain();
            if (stream_ended_.load(std::memory_order_acquire)) {
                set_status("error: capture from '" + device_name_ + "' stopped (device unplugged or failed)");
                break;
            }
            const auto now = std::chrono::steady_clock::now();
            if (now - last_report > std::chrono::milliseconds(500)) {
                last_report = now;
                const uint64_t drops = raw_.overruns() + input_overflows_.load(std::memory_order_relaxed);
                if (drops != reported_drops) {
                    reported_drops = drops;
                    set_status("capturing from " + describe_ + "; " + std::to_string(drops) +
                               " overflows (audio lost: the system is overloaded)");
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        drain();
    }

    PaSession                pa_;   // declared first: terminated last
    PaStream *               stream_ = nullptr;
    AudioRing                raw_;  // interleaved device frames, callback -> pump
    std::string              device_name_;
    std::string              describe_;
    double                   rate_     = 0.0;
    int                      channels_ = 1;
    std::optional<Resampler> resampler_;
    std::vector<float>       scratch_;
    std::vector<float>       out_;
    std::thread              pump_;
    std::atomic<uint64_t>    input_overflows_{0};
    std::atomic<bool>        stream_ended_{false};
};

} // namespace

Result<std::vector<AudioInputDevice>> list_input_devices() {
    PaSession pa;
    AVS_TRY(pa.init());
    const PaDeviceIndex count = Pa_GetDeviceCount();
    if (count < 0) return make_error(ErrorCode::device, "PortAudio cannot count devices: %s", Pa_GetErrorText(count));
    const PaDeviceIndex def = Pa_GetDefaultInputDevice();
    std::vector<AudioInputDevice> out;
    for (PaDeviceIndex i = 0; i < count; ++i) {
        const PaDeviceInfo * info = Pa_GetDeviceInfo(i);
        if (!info || info->maxInputChannels < 1) continue;
        AudioInputDevice d;
        d.index               = i;
        d.name                = info->name ? info->name : "?";
        d.host_api            = host_api_name(info->hostApi);
        d.max_input_channels  = info->maxInputChannels;
        d.default_sample_rate = info->defaultSampleRate;
        d.is_default          = i == def;
        out.push_back(std::move(d));
    }
    return out;
}

Result<std::unique_ptr<AudioSource>> open_mic_source(const AudioSourceSpec & spec) {
    // The session lives in the source (PortAudio must stay initialised while the stream exists); a
    // temporary one answers the device questions first so errors need no half-built source.
    PaSession probe;
    AVS_TRY(probe.init());
    const PaDeviceIndex count = Pa_GetDeviceCount();
    if (count < 0) return make_error(ErrorCode::device, "PortAudio cannot count devices: %s", Pa_GetErrorText(count));
    int device = spec.device_index;
    if (device < 0) {
        device = Pa_GetDefaultInputDevice();
        if (device == paNoDevice) {
            return make_error(ErrorCode::missing, "PortAudio reports no input device (%d audio devices, none usable for "
                              "capture)", int(count));
        }
    } else if (device >= count) {
        return make_error(ErrorCode::invalid_argument, "audio input device %d does not exist (PortAudio lists %d devices)",
                          device, int(count));
    }
    const PaDeviceInfo * info = Pa_GetDeviceInfo(device);
    if (!info) return make_error(ErrorCode::device, "audio device %d: PortAudio has no information for it", device);
    if (info->maxInputChannels < 1) {
        return make_error(ErrorCode::invalid_argument, "audio device %d '%s' has no input channels", device,
                          info->name ? info->name : "?");
    }
    auto src = std::make_unique<MicSource>(spec, info->name ? info->name : "?");
    AVS_TRY(src->session().init());
    AVS_TRY(src->open(device, *info));
    return std::unique_ptr<AudioSource>(std::move(src));
}

} // namespace avs
