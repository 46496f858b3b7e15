// Loading decoder weights: PyTorch conv weights [Cout, Cin, (kt,) kh, kw] become the GEMM layout
// conv3d reads, [Cout, kt*kh*kw*Cin] (input channel fastest), in the backend's weight dtype;
// vectors (biases, norm gammas) stay f32. Errors name the tensor and the expected shape.
#pragma once

#include "engine/backend/backend.h"
#include "engine/io/safetensors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace avs {

class DecodeWeightSource {
public:
    // From a checkpoint, or (ckpt == nullptr) deterministic random weights for tests/benchmarks:
    // conv weights ~ U(-1, 1) / sqrt(fan_in), vectors ~ 1 + U(-0.1, 0.1) for gammas, U(-0.1, 0.1) otherwise.
    DecodeWeightSource(Backend & backend, const Checkpoint * ckpt, uint64_t seed)
        : backend_(backend), ckpt_(ckpt), seed_(seed) {}

    // A conv weight stored as [cout, cin, kt, kh, kw] (5-D) or [cout, cin, kh, kw] (4-D, kt = 1).
    // Weights stored with trailing unit dims for a kernel-1 conv are accepted either way.
    Result<Tensor> conv(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw);
    // Same, keeping only input channels [c0, c1) (splitting a conv over a channel concatenation).
    Result<Tensor> conv_in_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw,
                                 int64_t c0, int64_t c1);
    // Same, keeping only output channels [o0, o1).
    Result<Tensor> conv_out_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw,
                                  int64_t o0, int64_t o1);
    // A vector of n values (any stored shape with n elements, e.g. gamma [C, 1, 1, 1]); f32.
    Result<Tensor> vec(const std::string & name, int64_t n, bool is_gamma = false);
    // Raw host f32 copy of a weight in its stored layout (for folding constants into weights).
    Result<Tensor> host_f32(const std::string & name, const std::vector<int64_t> & shape, bool is_gamma = false);
    // Upload a host f32 tensor in the conv GEMM layout [cout, K] to the backend's weight dtype.
    Result<Tensor> upload_weight(const Tensor & host_f32);
    Result<Tensor> upload_vec(const Tensor & host_f32);

    uint64_t bytes() const { return bytes_; }

private:
    Result<Tensor> conv_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw, int64_t c0,
                              int64_t c1, int64_t o0, int64_t o1);

    Backend &          backend_;
    const Checkpoint * ckpt_;
    uint64_t           seed_;
    uint64_t           bytes_ = 0;
};

} // namespace avs
