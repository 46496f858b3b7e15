// Silence: zeros at real-time pace, so the engine's audio clock runs when there is no input at all.
#include <array>
#include <chrono>
#include <thread>

#include "app/audio/audio_source.h"

namespace avs {

namespace {

class SilenceSource final : public AudioSource {
public:
    explicit SilenceSource(const AudioSourceSpec & spec) : AudioSource("silence", spec.ring_capacity) {
        set_status("silence (no audio input)");
    }
    ~SilenceSource() override { stop(); }

    AudioSourceKind kind() const override { return AudioSourceKind::silence; }

    Status start() override {
        if (running()) return Status::success();
        running_.store(true, std::memory_order_release);
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::exception & e) {
            running_.store(false, std::memory_order_release);
            return make_error(ErrorCode::internal, "silence source: cannot start its thread: %s", e.what());
        }
        return Status::success();
    }

    void stop() override {
        running_.store(false, std::memory_order_release);
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        using clock = std::chrono::steady_clock;
        static const std::array<float, 1600> zeros{};  // 100 ms
        const auto     t0   = clock::now();
        uint64_t       sent = 0;
        while (running()) {
            const double   elapsed = std::chrono::duration<double>(clock::now() - t0).count();
            const uint64_t due     = uint64_t(elapsed * k_sample_rate);
            while (sent < due && running()) {
                const size_t n = size_t(std::min<uint64_t>(due - sent, zeros.size()));
                publish(zeros.data(), n, false, running_);
                sent += n;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    std::thread thread_;
};

} // namespace

std::unique_ptr<AudioSource> open_silence_source(const AudioSourceSpec & spec) {
    return std::make_unique<SilenceSource>(spec);
}

} // namespace avs
