// The log-mel front end on CUDA (cuFFT + kernels/log_mel.cu) against its CPU twin (FFTW) on fresh
// random audio: tones plus noise, several lengths including partial trailing windows.
#include <catch2/catch.hpp>

#include "engine/audio/log_mel.h"
#include "engine/audio/log_mel_cuda.h"
#include "test_util.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>

using namespace avs;

TEST_CASE("log-mel on CUDA matches the CPU twin", "[cuda][log_mel]") {
    LogMelConfig cfg;
    auto gpu = LogMelCuda::create(cfg);
    REQUIRE(gpu.ok());
    for (int64_t n : {int64_t(399), int64_t(400), int64_t(5000), int64_t(16000 * 2 + 77)}) {
        Tensor a = test::randn(Shape{n}, 700 + uint64_t(n), 0.05f);
        for (int64_t i = 0; i < n; ++i) a.data<float>()[i] += 0.3f * std::sin(2.0f * float(M_PI) * 440.0f * float(i) / 16000.0f);
        std::vector<float> want;
        auto fc = compute_log_mel(cfg, a.data<float>(), n, want);
        REQUIRE(fc.ok());
        float * da = nullptr, * dout = nullptr;
        REQUIRE(cudaMalloc(&da, size_t(n) * 4) == cudaSuccess);
        REQUIRE(cudaMalloc(&dout, std::max<size_t>(1, want.size()) * 4) == cudaSuccess);
        REQUIRE(cudaMemcpy(da, a.raw(), size_t(n) * 4, cudaMemcpyHostToDevice) == cudaSuccess);
        auto fg = gpu.value()->compute(da, n, dout);
        REQUIRE(fg.ok());
        REQUIRE(fg.value() == fc.value());
        std::vector<float> got(want.size());
        REQUIRE(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
        cudaFree(da), cudaFree(dout);
        const double e = want.empty() ? 0.0 : test::rel_err(got.data(), want.data(), int64_t(want.size()));
        std::printf("kernel-err log_mel CUDA vs CPU, %lld samples (%lld frames): %.2e\n", (long long) n, (long long) fc.value(), e);
        INFO(n << " samples, rel err " << e);
        REQUIRE(e < 1e-5);
    }
}
