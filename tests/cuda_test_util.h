// Helpers shared by the CUDA tests: a CUDA backend, and moving tensors between it and the host.
#pragma once

#include <catch2/catch.hpp>

#include "engine/backend/backend.h"
#include "engine/backend/cuda/cuda_device.h"

#include <memory>

namespace avs::test {

inline std::unique_ptr<Backend> cuda_backend() {
    auto b = make_cuda_backend(0);
    REQUIRE(b.ok());
    return std::move(b).value();
}

inline Tensor to_device(Backend & be, const Tensor & host, DType dtype) {
    auto t = be.alloc(dtype, host.shape());
    REQUIRE(t.ok());
    REQUIRE(be.upload(t.value(), host).ok());
    return t.value();
}

inline Tensor to_host(Backend & be, const Tensor & dev) {
    Tensor h = Tensor::host(DType::f32, dev.shape());
    REQUIRE(be.download(h, dev).ok());
    return h;
}

} // namespace avs::test
