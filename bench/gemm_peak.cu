#include "bench/gemm_peak.h"

#include "engine/backend/cuda/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <vector>

namespace avs::bench {
namespace {

__global__ void fill_random_bf16(__nv_bfloat16 * p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        uint32_t h = uint32_t(i) * 2654435761u ^ seed;  // cheap integer hash, uniform enough for power draw
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        p[i] = __float2bfloat16(float(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
}

// Owns everything it creates, so every early return cleans up.
struct GemmRig {
    cudaStream_t      stream = nullptr;
    cublasHandle_t    blas   = nullptr;
    void *            a = nullptr, * b = nullptr, * c = nullptr;
    std::vector<cudaEvent_t> events;
    ~GemmRig() {
        if (stream) cudaStreamSynchronize(stream);
        for (cudaEvent_t e : events) cudaEventDestroy(e);
        cudaFree(a);
        cudaFree(b);
        cudaFree(c);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }
};

} // namespace

#define AVS_BENCH_CUBLAS(stmt)                                                                                  \
    do {                                                                                                        \
        const cublasStatus_t st_ = (stmt);                                                                      \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                       \
            return make_error(ErrorCode::device, "cuBLAS error %s in '%s'", cublasGetStatusName(st_), #stmt); \
    } while (0)

Result<GemmPeak> measure_gemm_peak(int n, int warmup, int iters) {
    if (n <= 0 || iters <= 0) return make_error(ErrorCode::invalid_argument, "GEMM peak: n and iters must be positive");
    GemmRig r;
    const size_t elems = size_t(n) * size_t(n);
    AVS_CUDA_CHECK(cudaSetDevice(0));
    AVS_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    AVS_BENCH_CUBLAS(cublasCreate(&r.blas));
    AVS_BENCH_CUBLAS(cublasSetStream(r.blas, r.stream));
    AVS_CUDA_CHECK(cudaMalloc(&r.a, elems * 2));
    AVS_CUDA_CHECK(cudaMalloc(&r.b, elems * 2));
    AVS_CUDA_CHECK(cudaMalloc(&r.c, elems * 2));
    fill_random_bf16<<<1024, 256, 0, r.stream>>>(static_cast<__nv_bfloat16 *>(r.a), elems, 1u);
    fill_random_bf16<<<1024, 256, 0, r.stream>>>(static_cast<__nv_bfloat16 *>(r.b), elems, 2u);
    AVS_CUDA_CHECK(cudaGetLastError());

    // C = A·B (column-major, no transposes; the layout does not change the rate of a square GEMM).
    const float alpha = 1.0f, beta = 0.0f;
    auto gemm = [&]() {
        return cublasGemmEx(r.blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, r.a, CUDA_R_16BF, n, r.b, CUDA_R_16BF, n, &beta,
                            r.c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    for (int i = 0; i < warmup; ++i) AVS_BENCH_CUBLAS(gemm());
    r.events.resize(size_t(2 * iters));
    for (cudaEvent_t & e : r.events) AVS_CUDA_CHECK(cudaEventCreate(&e));
    for (int i = 0; i < iters; ++i) {
        AVS_CUDA_CHECK(cudaEventRecord(r.events[size_t(2 * i)], r.stream));
        AVS_BENCH_CUBLAS(gemm());
        AVS_CUDA_CHECK(cudaEventRecord(r.events[size_t(2 * i + 1)], r.stream));
    }
    AVS_CUDA_CHECK(cudaStreamSynchronize(r.stream));
    std::vector<double> ms(static_cast<size_t>(iters), 0.0);
    for (int i = 0; i < iters; ++i) {
        float t = 0;
        AVS_CUDA_CHECK(cudaEventElapsedTime(&t, r.events[size_t(2 * i)], r.events[size_t(2 * i + 1)]));
        ms[size_t(i)] = t;
    }
    std::sort(ms.begin(), ms.end());
    GemmPeak g;
    g.n      = n;
    g.iters  = iters;
    g.ms     = ms[ms.size() / 2];
    g.tflops = 2.0 * double(n) * double(n) * double(n) / (g.ms * 1e-3) / 1e12;
    return g;
}

} // namespace avs::bench
