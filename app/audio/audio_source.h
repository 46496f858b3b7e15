// AudioSource: where the app's audio comes from (microphone, audio file, silence), always delivered
// as 16 kHz mono float into lock-free rings, with a level meter and a status line for the UI.
//
// Threading: start()/stop()/add_output() from one control thread (the UI). Each source runs its own
// producer thread (the mic: PortAudio's callback fills a raw ring and a pump thread resamples it, so
// the callback never allocates or locks). Consumers read ring() (and any extra outputs) from one
// thread each; level() and status() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/audio/audio_ring.h"
#include "app/audio/level_meter.h"
#include "engine/core/result.h"

namespace avs {

enum class AudioSourceKind { microphone, file, silence };
const char * audio_source_kind_name(AudioSourceKind kind);

class AudioSource {
public:
    static constexpr int k_sample_rate = 16000;  // what every source delivers

    virtual ~AudioSource() = default;
    AudioSource(const AudioSource &) = delete;
    AudioSource & operator=(const AudioSource &) = delete;

    virtual Status start() = 0;  // starting a running source is a no-op
    virtual void   stop()  = 0;  // idempotent; joins the source's threads
    virtual AudioSourceKind kind() const = 0;

    const std::string & name() const { return name_; }  // "mic: <device>", "file: <path>", "silence"
    int  sample_rate() const { return k_sample_rate; }
    bool running() const { return running_.load(std::memory_order_acquire); }
    // True once a non-looping file has delivered its last sample (never for mic/silence).
    bool finished() const { return finished_.load(std::memory_order_acquire); }
    // Samples delivered so far (including any a full ring dropped): the source's stream clock.
    uint64_t samples_produced() const { return produced_.load(std::memory_order_acquire); }

    // The primary output (one consumer thread).
    AudioRing & ring() { return *outputs_.front(); }
    std::shared_ptr<AudioRing> ring_ptr() const { return outputs_.front(); }
    // Another consumer (e.g. the recorder) gets its own ring with the same samples. Only while stopped.
    Status add_output(std::shared_ptr<AudioRing> ring);

    const LevelMeter & level() const { return meter_; }
    // Human-readable state for the UI ("capturing 48000 Hz x1 -> 16 kHz", "end of file", an error).
    std::string status() const;

protected:
    AudioSource(std::string name, size_t ring_capacity);

    // Producer thread: sends samples to every output and the meter. With wait_for_space (files played
    // as fast as possible) it waits for room instead of dropping, until `keep_going` turns false.
    void publish(const float * samples, size_t n, bool wait_for_space, const std::atomic<bool> & keep_going);
    void set_status(std::string text);

    std::atomic<bool>     running_{false};
    std::atomic<bool>     finished_{false};
    std::atomic<uint64_t> produced_{0};

private:
    std::string                             name_;
    std::vector<std::shared_ptr<AudioRing>> outputs_;
    LevelMeter                              meter_;
    mutable std::mutex                      status_mu_;  // never taken by a real-time callback
    std::string                             status_;
};

// ---- microphone (PortAudio) -----------------------------------------------------------------------
struct AudioInputDevice {
    int         index = -1;   // PortAudio device index: what AudioSourceSpec::device_index takes
    std::string name;
    std::string host_api;     // "ALSA", "JACK Audio Connection Kit", ...
    int         max_input_channels  = 0;
    double      default_sample_rate = 0.0;
    bool        is_default = false;
};

// The input-capable devices (an empty list when the machine has none). Errors only if PortAudio
// itself cannot start. Call from the control thread (PortAudio's init is not thread-safe).
Result<std::vector<AudioInputDevice>> list_input_devices();

// ---- opening ----------------------------------------------------------------------------------------
struct AudioSourceSpec {
    AudioSourceKind kind = AudioSourceKind::microphone;
    int             device_index = -1;      // microphone: PortAudio index, -1 = the default input
    std::string     file_path;              // file source; for open_audio_with_fallback, the fallback
    bool            loop     = false;       // file: start over at the end
    bool            realtime = true;        // file: pace at real time; false = as fast as the ring drains
    size_t          ring_capacity = 1u << 17;  // samples in each output ring (8 s at 16 kHz)
    std::vector<std::shared_ptr<AudioRing>> extra_outputs;  // attached before start
};

// Opens (does not start) the source the spec names.
Result<std::unique_ptr<AudioSource>> open_audio_source(const AudioSourceSpec & spec);

struct AudioOpenResult {
    std::unique_ptr<AudioSource> source;  // never null, already started
    std::string                  message; // for the UI: empty when the requested source works
    bool                         fell_back = false;
};

// Opens and starts what the spec asks; when that fails (no input device, PortAudio error, unreadable
// file) falls back to the file source (if spec.file_path is set and was not what failed) and then to
// silence, with a message saying what failed and what is used instead. Never fails.
AudioOpenResult open_audio_with_fallback(const AudioSourceSpec & spec);

// Implementations (one file each).
Result<std::unique_ptr<AudioSource>> open_mic_source(const AudioSourceSpec & spec);
Result<std::unique_ptr<AudioSource>> open_file_source(const AudioSourceSpec & spec);
std::unique_ptr<AudioSource>         open_silence_source(const AudioSourceSpec & spec);

} // namespace avs
