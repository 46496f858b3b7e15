// The CUDA kernels of kernels/ against their CPU twins (CpuBackend) on fresh random inputs, at
// odd sizes and every dtype combination the launchers accept. bf16 inputs are rounded on the host
// first and the twin gets the widened values, so only the kernel's own arithmetic and its output
// rounding are measured. Each test case prints its largest relative error per dtype combination
// ("kernel-err ..." lines) so that a GPU run documents the achieved accuracy.
#include <catch2/catch.hpp>

#include "engine/backend/cpu/cpu_backend.h"
#include "kernels/add.cuh"
#include "kernels/add_row.cuh"
#include "kernels/axpby.cuh"
#include "kernels/gated_residual.cuh"
#include "kernels/gelu_tanh.cuh"
#include "kernels/layer_norm_affine.cuh"
#include "kernels/layer_norm_modulate.cuh"
#include "kernels/patchify.cuh"
#include "kernels/rms_norm.cuh"
#include "kernels/rope.cuh"
#include "kernels/silu.cuh"
#include "kernels/timestep_embedding.cuh"
#include "kernels/unpatchify.cuh"
#include "test_util.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace avs;

namespace {

constexpr double kBoundF32  = 1e-5;  // f32 outputs: fp32 math in another order / another libm
constexpr double kBoundBf16 = 1e-2;  // bf16 outputs: one rounding to 8 mantissa bits (~2e-3 rms)

double bound_for(DType out) { return out == DType::bf16 ? kBoundBf16 : kBoundF32; }

// Device memory for one test value; freed on scope exit (also when a REQUIRE throws).
class DevBuf {
public:
    explicit DevBuf(uint64_t bytes) : bytes_(bytes) { REQUIRE(cudaMalloc(&p_, bytes ? bytes : 1) == cudaSuccess); }
    ~DevBuf() { cudaFree(p_); }
    DevBuf(const DevBuf &) = delete;
    DevBuf & operator=(const DevBuf &) = delete;

    void *   get() const { return p_; }
    float *  f32() const { return static_cast<float *>(p_); }
    uint64_t bytes() const { return bytes_; }

private:
    void *   p_ = nullptr;
    uint64_t bytes_;
};

// Host bytes of f32 values in dtype dt (bf16: round to nearest even, as the CPU twin stores).
std::vector<uint8_t> encode(const Tensor & h, DType dt) {
    std::vector<uint8_t> b(dtype_bytes(dt, uint64_t(h.numel())));
    if (dt == DType::f32) {
        std::memcpy(b.data(), h.raw(), b.size());
    } else {
        auto * d = reinterpret_cast<uint16_t *>(b.data());
        for (int64_t i = 0; i < h.numel(); ++i) d[i] = f32_to_bf16(h.data<float>()[i]);
    }
    return b;
}

Tensor decode(const std::vector<uint8_t> & b, DType dt, const Shape & shape) {
    Tensor t = Tensor::host(DType::f32, shape);
    if (dt == DType::f32) {
        std::memcpy(t.raw(), b.data(), b.size());
    } else {
        const auto * s = reinterpret_cast<const uint16_t *>(b.data());
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = bf16_to_f32(s[i]);
    }
    return t;
}

std::vector<uint8_t> host_bytes(const Tensor & t) {
    const auto * p = static_cast<const uint8_t *>(t.raw());
    return {p, p + t.nbytes()};
}

// The values a kernel sees when fed `h` in dtype dt (identity for f32).
Tensor rounded(const Tensor & h, DType dt) { return decode(encode(h, dt), dt, h.shape()); }

void upload_into(const DevBuf & d, const std::vector<uint8_t> & b) {
    REQUIRE(d.bytes() >= b.size());
    REQUIRE(cudaMemcpy(d.get(), b.data(), b.size(), cudaMemcpyHostToDevice) == cudaSuccess);
}

DevBuf * to_device(std::vector<std::unique_ptr<DevBuf>> & keep, const Tensor & h, DType dt) {
    const auto b = encode(h, dt);
    keep.push_back(std::make_unique<DevBuf>(b.size()));
    upload_into(*keep.back(), b);
    return keep.back().get();
}

std::vector<uint8_t> download_bytes(const void * d, uint64_t bytes) {
    std::vector<uint8_t> b(bytes);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // surfaces a kernel fault here, not later
    REQUIRE(cudaMemcpy(b.data(), d, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    return b;
}

// Device values of dtype dt, widened to a host f32 tensor.
Tensor from_device(const void * d, DType dt, const Shape & shape) {
    return decode(download_bytes(d, dtype_bytes(dt, uint64_t(shape.numel()))), dt, shape);
}

// Largest relative error per dtype combination of one op, printed when the test case ends.
class ErrTable {
public:
    explicit ErrTable(std::string op) : op_(std::move(op)) {}
    ~ErrTable() {
        for (const auto & [key, e] : max_) std::printf("kernel-err %-20s %-22s max rel err %.3g\n", op_.c_str(), key.c_str(), e);
        std::fflush(stdout);
    }
    void check(const std::string & key, const Tensor & got, const Tensor & want, double bound, const std::string & where) {
        const double e = test::rel_err(got, want);  // +inf on NaN or a size mismatch
        double &     m = max_[key];
        m              = std::max(m, e);
        INFO(op_ << " [" << key << "] " << where << ": rel err " << e << " (bound " << bound << ")");
        CHECK(e <= bound);
    }

private:
    std::string                   op_;
    std::map<std::string, double> max_;
};

std::string dt_name(DType t) { return dtype_name(t); }
std::string rd(int64_t R, int64_t D) { return "R=" + std::to_string(R) + " D=" + std::to_string(D); }

const std::vector<std::pair<int64_t, int64_t>> & row_shapes() {
    static const std::vector<std::pair<int64_t, int64_t>> s = [] {
        std::vector<std::pair<int64_t, int64_t>> v;
        for (int64_t R : {1, 3, 37, 4680})
            for (int64_t D : {7, 64, 1536, 5120}) v.emplace_back(R, D);
        return v;
    }();
    return s;
}

constexpr DType kF32 = DType::f32, kBf16 = DType::bf16;
constexpr DType kFloatTypes[] = {DType::f32, DType::bf16};

} // namespace

// ---- norms ----------------------------------------------------------------------------------------

TEST_CASE("layer_norm_modulate kernel matches the CPU twin (strided per-frame shift and scale)", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   errs("layer_norm_modulate");
    uint64_t   stream = 1000;
    for (auto [R, D] : row_shapes()) {
        const int64_t rpf = std::max<int64_t>(1, R / 3), F = (R + rpf - 1) / rpf;
        Tensor x = test::randn(Shape{R, D}, stream++, 3.0f);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += 1.5f;  // a mean for the two-pass stats
        Tensor mod  = test::randn(Shape{F, 6, D}, stream++, 0.5f);
        Tensor want = Tensor::host(kF32, x.shape());
        REQUIRE(cpu.layer_norm_modulate(want, x, mod.select(1, 3), mod.select(1, 4), rpf, 1e-6f).ok());
        std::vector<std::unique_ptr<DevBuf>> keep;
        const float * dx = to_device(keep, x, kF32)->f32();
        const float * dm = to_device(keep, mod, kF32)->f32();
        for (DType yt : kFloatTypes) {
            DevBuf dy(dtype_bytes(yt, uint64_t(R * D)));
            REQUIRE(kernels::layer_norm_modulate(dy.get(), yt, dx, dm + 3 * D, 6 * D, dm + 4 * D, 6 * D, R, D, rpf, 1e-6f,
                                                 nullptr) == cudaSuccess);
            errs.check("y " + dt_name(yt), from_device(dy.get(), yt, x.shape()), want, bound_for(yt), rd(R, D));
        }
    }
}

TEST_CASE("layer_norm_affine kernel matches the CPU twin", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   errs("layer_norm_affine");
    uint64_t   stream = 2000;
    for (auto [R, D] : row_shapes()) {
        Tensor x = test::randn(Shape{R, D}, stream++, 2.0f);
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] -= 3.0f;
        Tensor w = test::randn(Shape{D}, stream++), b = test::randn(Shape{D}, stream++);
        Tensor want = Tensor::host(kF32, x.shape());
        REQUIRE(cpu.layer_norm_affine(want, x, w, b, 1e-6f).ok());
        std::vector<std::unique_ptr<DevBuf>> keep;
        const float * dx = to_device(keep, x, kF32)->f32();
        const float * dw = to_device(keep, w, kF32)->f32();
        const float * db = to_device(keep, b, kF32)->f32();
        for (DType yt : kFloatTypes) {
            DevBuf dy(dtype_bytes(yt, uint64_t(R * D)));
            REQUIRE(kernels::layer_norm_affine(dy.get(), yt, dx, dw, db, R, D, 1e-6f, nullptr) == cudaSuccess);
            errs.check("y " + dt_name(yt), from_device(dy.get(), yt, x.shape()), want, bound_for(yt), rd(R, D));
        }
    }
}

TEST_CASE("rms_norm kernel matches the CPU twin over the full dim (also in place)", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   errs("rms_norm");
    uint64_t   stream = 3000;
    for (auto [R, D] : row_shapes()) {
        const Tensor x0 = test::randn(Shape{R, D}, stream++, 2.0f);
        const Tensor w  = test::randn(Shape{D}, stream++);
        std::vector<std::unique_ptr<DevBuf>> keep;
        const float * dw = to_device(keep, w, kF32)->f32();
        for (DType xt : kFloatTypes) {
            const Tensor x    = rounded(x0, xt);
            Tensor       want = Tensor::host(kF32, x.shape());
            REQUIRE(cpu.rms_norm(want, x, w, 1e-6f).ok());
            DevBuf * dx = to_device(keep, x, xt);
            for (DType yt : kFloatTypes) {
                DevBuf dy(dtype_bytes(yt, uint64_t(R * D)));
                REQUIRE(kernels::rms_norm(dy.get(), yt, dx->get(), xt, dw, R, D, 1e-6f, nullptr) == cudaSuccess);
                errs.check("x " + dt_name(xt) + " y " + dt_name(yt), from_device(dy.get(), yt, x.shape()), want,
                           bound_for(yt), rd(R, D));
            }
            // in place, as the model normalises q and k
            REQUIRE(kernels::rms_norm(dx->get(), xt, dx->get(), xt, dw, R, D, 1e-6f, nullptr) == cudaSuccess);
            errs.check("in place " + dt_name(xt), from_device(dx->get(), xt, x.shape()), want, bound_for(xt), rd(R, D));
        }
    }
    // mixed-dtype aliasing is refused rather than racing
    DevBuf d(64 * 4);
    REQUIRE(kernels::rms_norm(d.get(), kBf16, d.get(), kF32, d.f32(), 1, 64, 1e-6f, nullptr) == cudaErrorInvalidValue);
}

// ---- residual and elementwise ----------------------------------------------------------------------

TEST_CASE("gated_residual kernel matches the CPU twin (strided per-frame gate)", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   errs("gated_residual");
    uint64_t   stream = 4000;
    for (auto [R, D] : row_shapes()) {
        const int64_t rpf = std::max<int64_t>(1, R / 4), F = (R + rpf - 1) / rpf;
        const Tensor  x0  = test::randn(Shape{R, D}, stream++, 4.0f);
        const Tensor  y0  = test::randn(Shape{R, D}, stream++);
        const Tensor  mod = test::randn(Shape{F, 6, D}, stream++, 0.5f);
        std::vector<std::unique_ptr<DevBuf>> keep;
        const float * dm = to_device(keep, mod, kF32)->f32();
        for (DType yt : kFloatTypes) {
            const Tensor y    = rounded(y0, yt);
            Tensor       want = rounded(x0, kF32);  // a copy: the twin updates it in place
            REQUIRE(cpu.gated_residual(want, y, mod.select(1, 2), rpf).ok());
            DevBuf * dx = to_device(keep, x0, kF32);
            DevBuf * dy = to_device(keep, y, yt);
            REQUIRE(kernels::gated_residual(dx->f32(), dy->get(), yt, dm + 2 * D, 6 * D, R, D, rpf, nullptr) == cudaSuccess);
            errs.check("y " + dt_name(yt), from_device(dx->get(), kF32, x0.shape()), want, kBoundF32, rd(R, D));
        }
    }
}

TEST_CASE("gelu_tanh and silu kernels match the CPU twins (every dtype pair and in place)", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   gelu_errs("gelu_tanh"), silu_errs("silu");
    uint64_t   stream = 5000;
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(1000), int64_t(37 * 1536), int64_t(4680) * 8960 + 3}) {
        const Tensor x0 = test::randn(Shape{n}, stream++, 3.0f);
        for (int op = 0; op < 2; ++op) {
            ErrTable & errs = op == 0 ? gelu_errs : silu_errs;
            const auto launch = [op](void * y, DType yt, const void * x, DType xt, int64_t m) {
                return op == 0 ? kernels::gelu_tanh(y, yt, x, xt, m, nullptr) : kernels::silu(y, yt, x, xt, m, nullptr);
            };
            for (DType xt : kFloatTypes) {
                const Tensor x    = rounded(x0, xt);
                Tensor       want = Tensor::host(kF32, x.shape());
                REQUIRE((op == 0 ? cpu.gelu_tanh(want, x) : cpu.silu(want, x)).ok());
                std::vector<std::unique_ptr<DevBuf>> keep;
                DevBuf * dx = to_device(keep, x, xt);
                for (DType yt : kFloatTypes) {
                    DevBuf dy(dtype_bytes(yt, uint64_t(n)));
                    REQUIRE(launch(dy.get(), yt, dx->get(), xt, n) == cudaSuccess);
                    errs.check("x " + dt_name(xt) + " y " + dt_name(yt), from_device(dy.get(), yt, x.shape()), want,
                               bound_for(yt), "n=" + std::to_string(n));
                }
                REQUIRE(launch(dx->get(), xt, dx->get(), xt, n) == cudaSuccess);
                errs.check("in place " + dt_name(xt), from_device(dx->get(), xt, x.shape()), want, bound_for(xt),
                           "n=" + std::to_string(n));
            }
        }
    }
}

TEST_CASE("add axpby and add_row kernels match the CPU twins", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   add_errs("add"), axpby_errs("axpby"), row_errs("add_row");
    uint64_t   stream = 6000;
    for (auto [R, D] : row_shapes()) {
        const Tensor x0 = test::randn(Shape{R, D}, stream++, 2.0f);
        const Tensor y0 = test::randn(Shape{R, D}, stream++);
        const Tensor r0 = test::randn(Shape{D}, stream++);
        std::vector<std::unique_ptr<DevBuf>> keep;
        for (DType yt : kFloatTypes) {  // add: x f32 += y f32 | bf16
            const Tensor y    = rounded(y0, yt);
            Tensor       want = rounded(x0, kF32);
            REQUIRE(cpu.add(want, y).ok());
            DevBuf * dx = to_device(keep, x0, kF32);
            REQUIRE(kernels::add(dx->f32(), to_device(keep, y, yt)->get(), yt, R * D, nullptr) == cudaSuccess);
            add_errs.check("y " + dt_name(yt), from_device(dx->get(), kF32, x0.shape()), want, kBoundF32, rd(R, D));
        }
        {  // axpby into a fresh buffer, and aliasing x (the sampler's in-place update)
            const float a = 0.8125f, b = -0.3f;
            Tensor      want = Tensor::host(kF32, x0.shape());
            REQUIRE(cpu.axpby(want, a, x0, b, y0).ok());
            DevBuf * dx = to_device(keep, x0, kF32);
            DevBuf * dy = to_device(keep, y0, kF32);
            DevBuf   out(uint64_t(R * D) * 4);
            REQUIRE(kernels::axpby(out.f32(), a, dx->f32(), b, dy->f32(), R * D, nullptr) == cudaSuccess);
            axpby_errs.check("f32", from_device(out.get(), kF32, x0.shape()), want, kBoundF32, rd(R, D));
            REQUIRE(kernels::axpby(dx->f32(), a, dx->f32(), b, dy->f32(), R * D, nullptr) == cudaSuccess);
            axpby_errs.check("f32 out=x", from_device(dx->get(), kF32, x0.shape()), want, kBoundF32, rd(R, D));
        }
        {
            Tensor want = Tensor::host(kF32, x0.shape());
            REQUIRE(cpu.add_row(want, x0, r0).ok());
            DevBuf * da = to_device(keep, x0, kF32);
            DevBuf   out(uint64_t(R * D) * 4);
            REQUIRE(kernels::add_row(out.f32(), da->f32(), to_device(keep, r0, kF32)->f32(), R, D, nullptr) == cudaSuccess);
            row_errs.check("f32", from_device(out.get(), kF32, x0.shape()), want, kBoundF32, rd(R, D));
        }
    }
}

TEST_CASE("timestep_embedding kernel matches the CPU twin (fp64 angles)", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   errs("timestep_embedding");
    const Tensor u = test::randn(Shape{16}, 7000);
    for (int64_t dim : {2, 8, 256, 5120}) {
        for (int64_t F : {1, 3, 7}) {
            std::vector<double> t(static_cast<size_t>(F));
            for (int64_t f = 0; f < F; ++f)
                t[size_t(f)] = f == 0 ? 1000.0 : std::fabs(double(u.data<float>()[f])) * 400.0 + double(f);
            if (F == 7) t[1] = 0.0;
            Tensor want = Tensor::host(kF32, Shape{F, dim});
            REQUIRE(cpu.timestep_embedding(want, t).ok());
            DevBuf dt(uint64_t(F) * 8), out(uint64_t(F * dim) * 4);
            REQUIRE(cudaMemcpy(dt.get(), t.data(), t.size() * 8, cudaMemcpyHostToDevice) == cudaSuccess);
            const auto * tdev = static_cast<const double *>(dt.get());
            REQUIRE(kernels::timestep_embedding(out.f32(), tdev, F, dim, nullptr) == cudaSuccess);
            errs.check("f32", from_device(out.get(), kF32, want.shape()), want, kBoundF32,
                       "F=" + std::to_string(F) + " dim=" + std::to_string(dim));
        }
    }
}

// ---- layout ops --------------------------------------------------------------------------------

TEST_CASE("patchify and unpatchify kernels match the CPU twins exactly", "[cuda][kernels]") {
    CpuBackend cpu;
    ErrTable   p_errs("patchify"), u_errs("unpatchify");
    uint64_t   stream = 8000;
    // (C, F, H, W, ph, pw): the 480x832 latent of the 1.3B model, and odd shapes with dropped edges
    for (auto [C, F, H, W, ph, pw] : {std::tuple{16, 3, 60, 104, 2, 2}, std::tuple{3, 2, 5, 7, 2, 3},
                                      std::tuple{5, 1, 4, 4, 1, 2}, std::tuple{16, 1, 2, 2, 2, 2}}) {
        const int64_t gh = H / ph, gw = W / pw, L = int64_t(F) * gh * gw, P = int64_t(C) * ph * pw;
        const std::string where = "C=" + std::to_string(C) + " F=" + std::to_string(F) + " H=" + std::to_string(H) +
                                  " W=" + std::to_string(W) + " p=" + std::to_string(ph) + "x" + std::to_string(pw);
        const Tensor x = test::randn(Shape{C, F, H, W}, stream++);
        Tensor       want_tok = Tensor::host(kF32, Shape{L, P});
        REQUIRE(cpu.patchify(want_tok, x, ph, pw).ok());
        std::vector<std::unique_ptr<DevBuf>> keep;
        const float * dx = to_device(keep, x, kF32)->f32();
        for (DType tt : kFloatTypes) {
            DevBuf dtok(dtype_bytes(tt, uint64_t(L * P)));
            REQUIRE(kernels::patchify(dtok.get(), tt, dx, C, F, H, W, ph, pw, nullptr) == cudaSuccess);
            const Tensor got = from_device(dtok.get(), tt, want_tok.shape());
            p_errs.check("tokens " + dt_name(tt), got, want_tok, bound_for(tt), where);
            if (tt == kF32) CHECK(std::memcmp(got.raw(), want_tok.raw(), want_tok.nbytes()) == 0);  // a pure copy
        }
        // unpatchify: elements outside the patch grid stay as they were on both sides
        const Tensor u    = test::randn(Shape{L, P}, stream++);
        const Tensor init = test::randn(Shape{C, F, H, W}, stream++);
        Tensor       want = rounded(init, kF32);
        REQUIRE(cpu.unpatchify(want, u, ph, pw).ok());
        DevBuf * dy = to_device(keep, init, kF32);
        REQUIRE(kernels::unpatchify(dy->f32(), to_device(keep, u, kF32)->f32(), C, F, H, W, ph, pw, nullptr) == cudaSuccess);
        const Tensor got = from_device(dy->get(), kF32, want.shape());
        u_errs.check("f32", got, want, kBoundF32, where);
        CHECK(std::memcmp(got.raw(), want.raw(), want.nbytes()) == 0);
    }
}

TEST_CASE("rope kernel matches the CPU twin for head_dim 128 and 64 with positions beyond 1024", "[cuda][kernels][rope]") {
    CpuBackend cpu;
    ErrTable   errs("rope");
    uint64_t   stream = 9000;
    // (head_dim, heads, grid_h, grid_w, positions): the 1.3B layout at its real grid, a small one
    // with huge positions, and head_dim 64 (pairs 12/10/10)
    const std::vector<std::tuple<int, int, int, int, std::vector<int64_t>>> cases = {
        {128, 12, 30, 52, {0, 1, 2}},
        {128, 12, 30, 52, {1023, 1024, 4097}},
        {128, 3, 3, 5, {5, 1023, 4000, 65537, 1234567}},
        {64, 4, 7, 3, {0, 700, 1025, 99999}},
        {64, 1, 1, 1, {2048}},
    };
    for (const auto & [Dh, H, gh, gw, pos] : cases) {
        const RopeLayout L = make_rope_layout(Dh, gh, gw);
        REQUIRE(2 * L.pairs() == Dh);
        const int64_t     tokens = int64_t(pos.size()) * L.tokens_per_frame();
        const std::string where  = "Dh=" + std::to_string(Dh) + " H=" + std::to_string(H) + " grid=" + std::to_string(gh) +
                                  "x" + std::to_string(gw) + " last pos=" + std::to_string(pos.back());
        const Tensor x0 = test::randn(Shape{tokens, H, Dh}, stream++);
        DevBuf       dpos(pos.size() * 8);
        REQUIRE(cudaMemcpy(dpos.get(), pos.data(), pos.size() * 8, cudaMemcpyHostToDevice) == cudaSuccess);
        for (DType xt : kFloatTypes) {
            Tensor want = rounded(x0, xt);  // the twin rotates the values the kernel is given
            REQUIRE(cpu.rope(want, L, pos).ok());
            std::vector<std::unique_ptr<DevBuf>> keep;
            DevBuf * dx = to_device(keep, x0, xt);
            REQUIRE(kernels::rope(dx->get(), xt, tokens, H, Dh, L, static_cast<const int64_t *>(dpos.get()), nullptr) ==
                    cudaSuccess);
            errs.check("x " + dt_name(xt) + " Dh " + std::to_string(Dh), from_device(dx->get(), xt, x0.shape()), want,
                       bound_for(xt), where);
        }
    }
}

