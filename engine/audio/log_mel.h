// Log-mel audio features for the audio-driven avatar model, computed causally while the microphone
// streams in. Everything is plain float arrays in and out and fully deterministic, so a CUDA twin can
// upload the same window and filterbank (hann_window / mel_filterbank) and be checked against this one.
//
// Definition (tools/reference/log_mel_ref.py implements exactly the same; golden in tests/data):
//   * frame i covers samples [i*hop, i*hop + n_fft) -- no centre padding, no look-ahead: a frame exists
//     only once its whole window has arrived, and its end time is (i*hop + n_fft) / sample_rate.
//   * x * periodic Hann (w[n] = 0.5 - 0.5 cos(2 pi n / n_fft)), real FFT, power |X_k|^2, k = 0..n_fft/2.
//   * mel filterbank: Slaney mel scale (linear below 1 kHz, log above) with Slaney area normalisation
//     (each triangle scaled by 2 / (f_hi - f_lo)) -- librosa's default (htk=False, norm="slaney").
//   * out = ln(max(mel_power, log_floor)) -- NATURAL log, no per-clip max/normalisation (Whisper's
//     "max - 8" clamp needs the whole clip, which a live stream never has). Digital silence gives
//     exactly ln(log_floor) (= -23.02585 for 1e-10).
#pragma once

#include "engine/core/result.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace avs {

struct LogMelConfig {
    int   sample_rate = 16000;
    int   n_fft = 400;          // window length = FFT size: 25 ms at 16 kHz
    int   hop = 160;            // 10 ms: 100 frames per second
    int   n_mels = 80;
    float fmin = 0.0f, fmax = 8000.0f;  // Hz; fmax <= sample_rate / 2
    float log_floor = 1e-10f;           // mel power is clamped to this before ln()

    int n_bins() const { return n_fft / 2 + 1; }
};

// Every field in range (errors name the field): sample_rate, n_fft, hop, n_mels > 0;
// 0 <= fmin < fmax <= sample_rate / 2; log_floor > 0.
Status validate(const LogMelConfig & cfg);

// Periodic Hann window [n_fft].
std::vector<float> hann_window(int n_fft);
// Slaney mel filterbank [n_mels, n_fft/2 + 1], row-major (computed in double, stored as float).
Result<std::vector<float>> mel_filterbank(const LogMelConfig & cfg);

// Number of complete frames in n samples: 0 if n < n_fft, else (n - n_fft) / hop + 1.
int64_t mel_frames_for_samples(const LogMelConfig & cfg, int64_t n_samples);

// Streaming extractor. push() only appends samples; read() computes and returns the complete frames in
// order. The FFTW plan is made once in create() and reused; one extractor must be used from one thread
// at a time (different extractors may run concurrently).
class LogMelExtractor {
public:
    static Result<std::unique_ptr<LogMelExtractor>> create(const LogMelConfig & cfg);
    ~LogMelExtractor();
    LogMelExtractor(const LogMelExtractor &) = delete;
    LogMelExtractor & operator=(const LogMelExtractor &) = delete;

    const LogMelConfig & config() const { return cfg_; }

    // Append n mono samples (any n >= 0; float PCM, nominally [-1, 1]).
    Status push(const float * samples, int64_t n);
    // Complete frames not read yet.
    int64_t frames_available() const;
    // Index of the next frame read() returns (= frames read so far since create/reset).
    int64_t next_frame() const { return next_frame_; }
    int64_t samples_pushed() const { return samples_pushed_; }
    // Write min(max_frames, frames_available()) frames to out as [frames, n_mels]; returns how many.
    Result<int64_t> read(float * out, int64_t max_frames);
    // Forget all audio (a new stream starts at frame 0).
    void reset();

private:
    struct Plan;
    explicit LogMelExtractor(const LogMelConfig & cfg);
    void compute_frame(const float * window_start, float * out);

    LogMelConfig       cfg_;
    std::vector<float> window_, filters_;  // [n_fft], [n_mels, n_bins]
    std::vector<float> buf_;               // samples from buf_start_ on (older ones are dropped)
    int64_t            buf_start_ = 0;     // absolute index of buf_[0]
    int64_t            samples_pushed_ = 0, next_frame_ = 0;
    std::unique_ptr<Plan> plan_;
};

// One-shot: all complete frames of samples[0, n) into out ([frames, n_mels]); returns the frame count.
// Identical to pushing the same samples into a fresh extractor in any split and reading everything.
Result<int64_t> compute_log_mel(const LogMelConfig & cfg, const float * samples, int64_t n, std::vector<float> & out);

// Which mel frames condition latent frame L (the engine's 16 fps video, 4 pixel frames per latent, the
// first latent of a stream covers a single pixel frame). Pixel frame p shows audio [p/fps, (p+1)/fps);
// latent 0 is pixel frame 0, latent L >= 1 is pixel frames 4L-3 .. 4L, so latent L's audio ends at
//     audio_end(L) = (4L + 1) / fps seconds          (samples: floor((4L+1) * sample_rate / fps))
// The window is the `window_frames` mel frames that end there -- the last one is the latest frame whose
// whole n_fft span lies before audio_end, so nothing past the latent being generated is ever read
// (the Seko-AR causal audio window cuts at the latent's right edge the same way, look-ahead 0):
//     end   = mel_frames_for_samples(audio_end_samples)      (exclusive)
//     first = end - window_frames, clamped at 0; pad_front = frames missing before frame 0
// Defaults (16 kHz, n_fft 400, hop 160, 16 fps), window_frames = 32 (0.32 s):
//     L  | pixel frames | audio end  | end sample | mel [first, end) | pad_front
//     0  | 0            | 0.0625 s   |   1000     | [0, 4)           | 28
//     1  | 1..4         | 0.3125 s   |   5000     | [0, 29)          | 3
//     2  | 5..8         | 0.5625 s   |   9000     | [22, 54)         | 0
//     10 | 37..40       | 2.5625 s   |  41000     | [222, 254)       | 0
// Padding rows should be filled with ln(log_floor) (what silence before the stream would give);
// gather_latent_window does that.
struct MelWindow {
    int64_t first = 0, end = 0;  // mel frames [first, end)
    int64_t pad_front = 0;       // window_frames - (end - first)
    int64_t audio_end_sample = 0;
};
struct LatentTiming {
    int fps = 16;                     // pixel frames per second
    int pixel_frames_per_latent = 4;  // after the first latent, which has one
};
Result<MelWindow> latent_audio_window(int64_t latent_index, int window_frames, const LogMelConfig & cfg = {},
                                      const LatentTiming & timing = {});

// Copy a latent's window out of features [frames_total, n_mels] (frame 0 = stream start) into
// out [window_frames, n_mels], padding the front with ln(log_floor). Error if the window needs frames
// that are not in `features` yet (the caller must wait for more audio).
Status gather_latent_window(const LogMelConfig & cfg, const MelWindow & w, const float * features,
                            int64_t frames_total, float * out);

} // namespace avs
