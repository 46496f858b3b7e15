#include "engine/audio/log_mel_cuda.h"

#include "engine/backend/cuda/cuda_check.h"
#include "kernels/log_mel.cuh"

#include <cufft.h>

#include <map>

namespace avs {

namespace {

Status cufft_status(cufftResult r, const char * what) {
    if (r == CUFFT_SUCCESS) return {};
    return make_error(ErrorCode::device, "cuFFT %s failed (cufftResult %d)", what, int(r));
}

} // namespace

struct LogMelCuda::Impl {
    float *                      window = nullptr;   // [n_fft]
    float *                      filters = nullptr;  // [n_mels, n_bins]
    float *                      frames = nullptr;   // [capacity, n_fft]
    float *                      spec = nullptr;     // [capacity, n_bins] complex
    int64_t                      capacity = 0;       // frames the scratch holds
    std::map<int64_t, cufftHandle> plans;            // by batch size

    ~Impl() {
        for (auto & [n, p] : plans) cufftDestroy(p);
        cudaFree(window), cudaFree(filters), cudaFree(frames), cudaFree(spec);
    }
};

LogMelCuda::LogMelCuda(const LogMelConfig & cfg) : cfg_(cfg), impl_(std::make_unique<Impl>()) {}
LogMelCuda::~LogMelCuda() = default;

Result<std::unique_ptr<LogMelCuda>> LogMelCuda::create(const LogMelConfig & cfg) {
    AVS_TRY(validate(cfg));
    std::unique_ptr<LogMelCuda> m(new LogMelCuda(cfg));
    const std::vector<float> win = hann_window(cfg.n_fft);
    AVS_ASSIGN_OR_RETURN(std::vector<float> fb, mel_filterbank(cfg));
    AVS_CUDA_CHECK(cudaMalloc(&m->impl_->window, win.size() * sizeof(float)));
    AVS_CUDA_CHECK(cudaMalloc(&m->impl_->filters, fb.size() * sizeof(float)));
    AVS_CUDA_CHECK(cudaMemcpy(m->impl_->window, win.data(), win.size() * sizeof(float), cudaMemcpyHostToDevice));
    AVS_CUDA_CHECK(cudaMemcpy(m->impl_->filters, fb.data(), fb.size() * sizeof(float), cudaMemcpyHostToDevice));
    return std::move(m);  // nvcc does not apply the implicit move into Result here
}

Result<int64_t> LogMelCuda::compute(const float * audio, int64_t n, float * out, void * stream_) {
    const auto    stream = static_cast<cudaStream_t>(stream_);
    const int64_t F = mel_frames_for_samples(cfg_, n);
    if (F == 0) return int64_t(0);
    Impl & im = *impl_;
    if (F > im.capacity) {  // grow the scratch (rare: a longer clip than before)
        cudaFree(im.frames), cudaFree(im.spec);
        im.frames = nullptr, im.spec = nullptr, im.capacity = 0;
        AVS_CUDA_CHECK(cudaMalloc(&im.frames, size_t(F) * size_t(cfg_.n_fft) * sizeof(float)));
        AVS_CUDA_CHECK(cudaMalloc(&im.spec, size_t(F) * size_t(cfg_.n_bins()) * 2 * sizeof(float)));
        im.capacity = F;
    }
    auto it = im.plans.find(F);
    if (it == im.plans.end()) {
        cufftHandle p;
        int         len = cfg_.n_fft;
        AVS_TRY(cufft_status(cufftPlanMany(&p, 1, &len, nullptr, 1, cfg_.n_fft, nullptr, 1, cfg_.n_bins(), CUFFT_R2C, int(F)),
                             "plan"));
        it = im.plans.emplace(F, p).first;
    }
    AVS_CUDA_CHECK(kernels::log_mel_frames(im.frames, audio, im.window, F, cfg_.n_fft, cfg_.hop, stream));
    AVS_TRY(cufft_status(cufftSetStream(it->second, stream), "set stream"));
    AVS_TRY(cufft_status(cufftExecR2C(it->second, im.frames, reinterpret_cast<cufftComplex *>(im.spec)), "R2C"));
    AVS_CUDA_CHECK(kernels::log_mel_project(out, im.spec, im.filters, F, cfg_.n_bins(), cfg_.n_mels, cfg_.log_floor, stream));
    return F;
}

} // namespace avs
