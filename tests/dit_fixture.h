// Helpers for whole-model tests on the tiny config.
#pragma once

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/io/safetensors.h"
#include "engine/model/dit.h"
#include "test_util.h"

#include <cstring>

namespace avs::test {

// Copy frames [f0, f0+n) of a [C, F, h, w] tensor into frames [g0, ...) of another.
inline void copy_frames(const Tensor & src, int64_t f0, const Tensor & dst, int64_t g0, int64_t n) {
    const int64_t C = src.dim(0), hw = src.dim(2) * src.dim(3);
    for (int64_t c = 0; c < C; ++c)
        std::memcpy(dst.data<float>() + (c * dst.dim(1) + g0) * hw, src.data<float>() + (c * src.dim(1) + f0) * hw,
                    size_t(n * hw) * 4);
}

inline Tensor frames_of(const Tensor & src, int64_t f0, int64_t n) {
    Tensor out = Tensor::host(DType::f32, Shape{src.dim(0), n, src.dim(2), src.dim(3)});
    copy_frames(src, f0, out, 0, n);
    return out;
}

// Save random weights for `cfg` under official names (optionally renamed) to a safetensors file.
template <typename Rename>
Status save_random_weights(const std::string & path, const ModelConfig & cfg, uint64_t seed, DType dtype, Rename rename) {
    CpuBackend be;
    DitWeights w;
    AVS_TRY(random_weights(be, cfg, seed, w));
    std::vector<std::pair<std::string, Tensor>> named;
    for (auto & s : weight_slots(w, cfg)) {
        Tensor t = s.dst->reshape(s.checkpoint_shape);
        if (dtype != DType::f32) {
            Tensor c = Tensor::host(dtype, s.checkpoint_shape);
            AVS_TRY(convert_from_f32(t.data<float>(), c.raw(), dtype, uint64_t(t.numel())));
            t = c;
        }
        named.emplace_back(rename(s.name), t);
    }
    return write_safetensors(path, named);
}

} // namespace avs::test
