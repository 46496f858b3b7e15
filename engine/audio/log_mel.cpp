// Causal log-mel features: periodic Hann, FFTW single-precision real FFT, Slaney mel filterbank, ln.
#include "engine/audio/log_mel.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

namespace avs {

namespace {

// FFTW's planner (and plan destruction) is not thread-safe; only fftwf_execute is. Every plan in the
// process is made and destroyed under this one lock.
std::mutex & fftw_planner_mutex() {
    static std::mutex m;
    return m;
}

// Slaney mel scale (librosa htk=False): linear 200/3 Hz per mel below 1 kHz, logarithmic above.
constexpr double k_f_sp = 200.0 / 3.0;
constexpr double k_min_log_hz = 1000.0;
constexpr double k_min_log_mel = k_min_log_hz / k_f_sp;  // 15
const double k_logstep = std::log(6.4) / 27.0;

double hz_to_mel(double hz) {
    return hz < k_min_log_hz ? hz / k_f_sp : k_min_log_mel + std::log(hz / k_min_log_hz) / k_logstep;
}
double mel_to_hz(double mel) {
    return mel < k_min_log_mel ? mel * k_f_sp : k_min_log_hz * std::exp(k_logstep * (mel - k_min_log_mel));
}

} // namespace

Status validate(const LogMelConfig & c) {
    if (c.sample_rate <= 0) return make_error(ErrorCode::invalid_argument, "log-mel: sample_rate must be > 0 (got %d)", c.sample_rate);
    if (c.n_fft <= 0) return make_error(ErrorCode::invalid_argument, "log-mel: n_fft must be > 0 (got %d)", c.n_fft);
    if (c.hop <= 0) return make_error(ErrorCode::invalid_argument, "log-mel: hop must be > 0 (got %d)", c.hop);
    if (c.n_mels <= 0) return make_error(ErrorCode::invalid_argument, "log-mel: n_mels must be > 0 (got %d)", c.n_mels);
    if (!(c.fmin >= 0.0f))
        return make_error(ErrorCode::invalid_argument, "log-mel: fmin must be >= 0 (got %g)", double(c.fmin));
    if (!(c.fmax <= 0.5 * c.sample_rate))
        return make_error(ErrorCode::invalid_argument, "log-mel: fmax must be <= sample_rate / 2 = %g (got %g)",
                          0.5 * c.sample_rate, double(c.fmax));
    if (!(c.fmax > c.fmin))
        return make_error(ErrorCode::invalid_argument, "log-mel: fmax (%g) must be > fmin (%g)", double(c.fmax),
                          double(c.fmin));
    if (!(c.log_floor > 0.0f) || !std::isfinite(c.log_floor))
        return make_error(ErrorCode::invalid_argument, "log-mel: log_floor must be finite and > 0 (got %g)",
                          double(c.log_floor));
    return Status::success();
}

std::vector<float> hann_window(int n_fft) {
    std::vector<float> w(size_t(std::max(n_fft, 0)));
    // periodic (the DFT-even window used by STFTs), not symmetric: divide by N, not N - 1
    for (int n = 0; n < n_fft; ++n) w[size_t(n)] = float(0.5 - 0.5 * std::cos(2.0 * M_PI * n / n_fft));
    return w;
}

Result<std::vector<float>> mel_filterbank(const LogMelConfig & cfg) {
    AVS_TRY(validate(cfg));
    const int nb = cfg.n_bins(), nm = cfg.n_mels;
    // n_mels + 2 edges equally spaced in mel; triangle m rises over [e_m, e_m+1], falls over [e_m+1, e_m+2]
    std::vector<double> edge(size_t(nm) + 2);
    const double m0 = hz_to_mel(cfg.fmin), m1 = hz_to_mel(cfg.fmax);
    for (int i = 0; i < nm + 2; ++i) edge[size_t(i)] = mel_to_hz(m0 + (m1 - m0) * i / (nm + 1));
    std::vector<float> fb(size_t(nm) * size_t(nb));
    for (int m = 0; m < nm; ++m) {
        const double lo = edge[size_t(m)], mid = edge[size_t(m) + 1], hi = edge[size_t(m) + 2];
        const double norm = 2.0 / (hi - lo);  // Slaney: equal area per filter
        for (int k = 0; k < nb; ++k) {
            const double f = double(k) * cfg.sample_rate / cfg.n_fft;
            const double up = (f - lo) / (mid - lo), down = (hi - f) / (hi - mid);
            fb[size_t(m) * size_t(nb) + size_t(k)] = float(std::max(0.0, std::min(up, down)) * norm);
        }
    }
    return fb;
}

int64_t mel_frames_for_samples(const LogMelConfig & cfg, int64_t n_samples) {
    if (cfg.n_fft <= 0 || cfg.hop <= 0 || n_samples < cfg.n_fft) return 0;
    return (n_samples - cfg.n_fft) / cfg.hop + 1;
}

// ---- streaming extractor ----

struct LogMelExtractor::Plan {
    float *         in = nullptr;   // [n_fft]
    fftwf_complex * out = nullptr;  // [n_bins]
    fftwf_plan      plan = nullptr;
    std::vector<float> power;       // [n_bins]

    ~Plan() {
        std::lock_guard<std::mutex> lock(fftw_planner_mutex());
        if (plan) fftwf_destroy_plan(plan);
        fftwf_free(in);
        fftwf_free(out);
    }
};

LogMelExtractor::LogMelExtractor(const LogMelConfig & cfg) : cfg_(cfg) {}
LogMelExtractor::~LogMelExtractor() = default;

Result<std::unique_ptr<LogMelExtractor>> LogMelExtractor::create(const LogMelConfig & cfg) {
    AVS_TRY(validate(cfg));
    std::unique_ptr<LogMelExtractor> x(new LogMelExtractor(cfg));
    x->window_ = hann_window(cfg.n_fft);
    AVS_ASSIGN_OR_RETURN(x->filters_, mel_filterbank(cfg));
    auto p = std::make_unique<Plan>();
    p->in = fftwf_alloc_real(size_t(cfg.n_fft));
    p->out = fftwf_alloc_complex(size_t(cfg.n_bins()));
    if (!p->in || !p->out) return make_error(ErrorCode::internal, "log-mel: FFTW buffer allocation failed");
    {
        // FFTW_ESTIMATE: no timing-dependent planning, so the same algorithm (and bits) every run
        std::lock_guard<std::mutex> lock(fftw_planner_mutex());
        p->plan = fftwf_plan_dft_r2c_1d(cfg.n_fft, p->in, p->out, FFTW_ESTIMATE);
    }
    if (!p->plan) return make_error(ErrorCode::internal, "log-mel: FFTW could not plan a size-%d real FFT", cfg.n_fft);
    p->power.resize(size_t(cfg.n_bins()));
    x->plan_ = std::move(p);
    return x;
}

Status LogMelExtractor::push(const float * samples, int64_t n) {
    if (n < 0) return make_error(ErrorCode::invalid_argument, "log-mel push: n must be >= 0 (got %lld)", (long long)n);
    if (n > 0 && !samples) return make_error(ErrorCode::invalid_argument, "log-mel push: samples is null");
    buf_.insert(buf_.end(), samples, samples + n);
    samples_pushed_ += n;
    return Status::success();
}

int64_t LogMelExtractor::frames_available() const {
    return mel_frames_for_samples(cfg_, samples_pushed_) - next_frame_;
}

void LogMelExtractor::compute_frame(const float * x, float * out) {
    Plan & p = *plan_;
    const int n = cfg_.n_fft, nb = cfg_.n_bins();
    for (int i = 0; i < n; ++i) p.in[i] = x[i] * window_[size_t(i)];
    fftwf_execute(p.plan);
    for (int k = 0; k < nb; ++k) p.power[size_t(k)] = p.out[k][0] * p.out[k][0] + p.out[k][1] * p.out[k][1];
    // mel projection in double: 201 terms of very different size; keeps the CPU result the reference
    const double floor = cfg_.log_floor;
    for (int m = 0; m < cfg_.n_mels; ++m) {
        const float * row = filters_.data() + size_t(m) * size_t(nb);
        double acc = 0;
        for (int k = 0; k < nb; ++k) acc += double(row[k]) * p.power[size_t(k)];
        out[m] = float(std::log(std::max(acc, floor)));
    }
}

Result<int64_t> LogMelExtractor::read(float * out, int64_t max_frames) {
    if (max_frames < 0)
        return make_error(ErrorCode::invalid_argument, "log-mel read: max_frames must be >= 0 (got %lld)", (long long)max_frames);
    const int64_t n = std::min(max_frames, frames_available());
    if (n > 0 && !out) return make_error(ErrorCode::invalid_argument, "log-mel read: out is null");
    for (int64_t f = 0; f < n; ++f) {
        const int64_t start = (next_frame_ + f) * cfg_.hop - buf_start_;
        compute_frame(buf_.data() + start, out + f * cfg_.n_mels);
    }
    next_frame_ += n;
    // drop samples no future frame needs (frame next_frame_ starts at next_frame_ * hop)
    const int64_t keep_from = std::min(next_frame_ * cfg_.hop, samples_pushed_);
    if (keep_from > buf_start_) {
        buf_.erase(buf_.begin(), buf_.begin() + (keep_from - buf_start_));
        buf_start_ = keep_from;
    }
    return n;
}

void LogMelExtractor::reset() {
    buf_.clear();
    buf_start_ = samples_pushed_ = next_frame_ = 0;
}

Result<int64_t> compute_log_mel(const LogMelConfig & cfg, const float * samples, int64_t n, std::vector<float> & out) {
    AVS_ASSIGN_OR_RETURN(auto x, LogMelExtractor::create(cfg));
    AVS_TRY(x->push(samples, n));
    out.resize(size_t(x->frames_available()) * size_t(cfg.n_mels));
    return x->read(out.data(), x->frames_available());
}

// ---- latent frame -> mel window ----

Result<MelWindow> latent_audio_window(int64_t latent_index, int window_frames, const LogMelConfig & cfg,
                                      const LatentTiming & t) {
    AVS_TRY(validate(cfg));
    if (latent_index < 0)
        return make_error(ErrorCode::invalid_argument, "latent_audio_window: latent_index must be >= 0 (got %lld)",
                          (long long)latent_index);
    if (window_frames <= 0)
        return make_error(ErrorCode::invalid_argument, "latent_audio_window: window_frames must be > 0 (got %d)", window_frames);
    if (t.fps <= 0 || t.pixel_frames_per_latent <= 0)
        return make_error(ErrorCode::invalid_argument, "latent_audio_window: fps and pixel_frames_per_latent must be > 0");
    MelWindow w;
    // last pixel frame of latent L is P*L; its audio ends at (P*L + 1) / fps (floor: never past it)
    const int64_t end_pixel = int64_t(t.pixel_frames_per_latent) * latent_index + 1;
    w.audio_end_sample = end_pixel * cfg.sample_rate / t.fps;
    w.end = mel_frames_for_samples(cfg, w.audio_end_sample);
    w.first = std::max<int64_t>(0, w.end - window_frames);
    w.pad_front = window_frames - (w.end - w.first);
    return w;
}

Status gather_latent_window(const LogMelConfig & cfg, const MelWindow & w, const float * features,
                            int64_t frames_total, float * out) {
    if (w.end > frames_total)
        return make_error(ErrorCode::invalid_argument,
                          "gather_latent_window: needs mel frames up to %lld but only %lld are available",
                          (long long)w.end, (long long)frames_total);
    if (w.first < 0 || w.pad_front < 0 || w.end < w.first)
        return make_error(ErrorCode::invalid_argument, "gather_latent_window: malformed window");
    const size_t nm = size_t(cfg.n_mels);
    std::fill(out, out + size_t(w.pad_front) * nm, float(std::log(double(cfg.log_floor))));  // = silence
    if (w.end > w.first)
        std::memcpy(out + size_t(w.pad_front) * nm, features + size_t(w.first) * nm,
                    size_t(w.end - w.first) * nm * sizeof(float));
    return Status::success();
}

} // namespace avs
