// Shared helpers for the tests: error metrics, random tensors, temp dirs, golden data paths.
#pragma once

#include <catch2/catch.hpp>

#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"
#include "engine/runtime/rng.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <unistd.h>

namespace avs::test {

// ||a - b|| / ||b|| over all elements; NaN anywhere gives +inf so it never passes a bound.
inline double rel_err(const float * a, const float * b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        den += double(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-30));
}
inline double rel_err(const Tensor & a, const Tensor & b) {
    if (a.numel() != b.numel()) return INFINITY;
    return rel_err(a.data<float>(), b.data<float>(), a.numel());
}
inline double max_abs(const Tensor & a) {
    double m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double(a.data<float>()[i])));
    return m;
}

// Fresh random values each run unless AVS_TEST_SEED is set (then reproducible).
inline uint64_t test_seed() {
    static const uint64_t s = [] {
        if (const char * e = std::getenv("AVS_TEST_SEED")) return uint64_t(std::strtoull(e, nullptr, 10));
        return uint64_t(std::random_device{}()) << 32 | std::random_device{}();
    }();
    return s;
}

inline Tensor randn(const Shape & shape, uint64_t stream, float stddev = 1.0f) {
    Tensor t = Tensor::host(DType::f32, shape);
    fill_normal(t.data<float>(), t.numel(), rng_stream(test_seed(), stream), stddev);
    return t;
}

inline std::filesystem::path temp_dir(const std::string & tag) {
    auto p = std::filesystem::temp_directory_path() /
             ("avs-test-" + tag + "-" + std::to_string(test_seed() % 1000000) + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
}

inline std::string data_path(const std::string & name) { return std::string(AVS_TEST_DATA_DIR) + "/" + name; }

// Tensor `name` of a safetensors file as f32 (the test fails when it is missing).
inline Tensor read_named(const std::string & path, const std::string & name) {
    auto f = SafetensorsFile::open(path);
    INFO(path << ": " << (f.ok() ? std::string() : f.status().message()));
    REQUIRE(f.ok());
    const TensorInfo * info = f.value()->find(name);
    INFO("tensor " << name);
    REQUIRE(info != nullptr);
    auto t = read_tensor(*info, DType::f32);
    REQUIRE(t.ok());
    return std::move(t).value();
}

inline bool bit_equal(const Tensor & a, const Tensor & b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Rewrite a safetensors file (every tensor as f32) with renamed keys; `edit` may change a tensor or
// drop it by returning false. Returns false when reading or writing failed.
inline bool save_edited(const std::string & src, const std::string & out, const std::function<std::string(const std::string &)> & rename,
                        const std::function<bool(const std::string &, Tensor &)> & edit = {}) {
    auto f = SafetensorsFile::open(src);
    if (!f.ok()) return false;
    std::vector<std::pair<std::string, Tensor>> named;
    for (const TensorInfo & info : f.value()->tensors()) {
        auto t = read_tensor(info, DType::f32);
        if (!t.ok()) return false;
        Tensor v = std::move(t).value();
        if (edit && !edit(info.name, v)) continue;
        named.emplace_back(rename(info.name), v);
    }
    return write_safetensors(out, named).ok();
}

} // namespace avs::test
