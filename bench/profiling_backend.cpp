#include "bench/profiling_backend.h"

#include "bench/flops.h"

#include <chrono>

namespace avs::bench {

template <class F> Status ProfilingBackend::timed(const std::string & op, double flops, F && f) {
    if (!enabled_) return f();
    using clock = std::chrono::steady_clock;
    AVS_TRY(in_.synchronize());  // nothing of an earlier op may leak into this one
    const auto t0 = clock::now();
    AVS_TRY(f());
    AVS_TRY(in_.synchronize());
    OpStats & s = stats_[op];
    s.calls += 1;
    s.ms += std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    s.flops += flops;
    return {};
}

Status ProfilingBackend::upload(const Tensor & dst, const Tensor & src) {
    return timed("upload", 0, [&] { return in_.upload(dst, src); });
}
Status ProfilingBackend::download(const Tensor & dst, const Tensor & src) {
    return timed("download", 0, [&] { return in_.download(dst, src); });
}
Status ProfilingBackend::copy(const Tensor & dst, const Tensor & src) {
    return timed("copy", 0, [&] { return in_.copy(dst, src); });
}

Status ProfilingBackend::linear(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor * b) {
    if (!enabled_) return in_.linear(y, x, w, b);
    // Keyed by the GEMM shape (M x N x K): each DiT linear layer class has its own.
    const int64_t M = x.numel() / x.dim(-1), K = x.dim(-1), N = w.dim(0);
    const std::string op = "linear " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
    return timed(op, 2.0 * double(M) * double(N) * double(K), [&] { return in_.linear(y, x, w, b); });
}
Status ProfilingBackend::layer_norm_modulate(const Tensor & y, const Tensor & x, const Tensor & shift, const Tensor & scale,
                                             int64_t rpf, float eps) {
    return timed("layer_norm_modulate", 0, [&] { return in_.layer_norm_modulate(y, x, shift, scale, rpf, eps); });
}
Status ProfilingBackend::layer_norm_affine(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor & b, float eps) {
    return timed("layer_norm_affine", 0, [&] { return in_.layer_norm_affine(y, x, w, b, eps); });
}
Status ProfilingBackend::rms_norm(const Tensor & y, const Tensor & x, const Tensor & w, float eps) {
    return timed("rms_norm", 0, [&] { return in_.rms_norm(y, x, w, eps); });
}
Status ProfilingBackend::gelu_tanh(const Tensor & y, const Tensor & x) {
    return timed("gelu_tanh", 0, [&] { return in_.gelu_tanh(y, x); });
}
Status ProfilingBackend::silu(const Tensor & y, const Tensor & x) {
    return timed("silu", 0, [&] { return in_.silu(y, x); });
}
Status ProfilingBackend::gated_residual(const Tensor & x, const Tensor & y, const Tensor & gate, int64_t rpf) {
    return timed("gated_residual", 0, [&] { return in_.gated_residual(x, y, gate, rpf); });
}
Status ProfilingBackend::add(const Tensor & x, const Tensor & y) {
    return timed("add", 0, [&] { return in_.add(x, y); });
}
Status ProfilingBackend::axpby(const Tensor & out, float a, const Tensor & x, float b, const Tensor & y) {
    return timed("axpby", 0, [&] { return in_.axpby(out, a, x, b, y); });
}
Status ProfilingBackend::add_row(const Tensor & out, const Tensor & a, const Tensor & row) {
    return timed("add_row", 0, [&] { return in_.add_row(out, a, row); });
}
Status ProfilingBackend::timestep_embedding(const Tensor & out, const std::vector<double> & t) {
    return timed("timestep_embedding", 0, [&] { return in_.timestep_embedding(out, t); });
}
Status ProfilingBackend::patchify(const Tensor & tokens, const Tensor & x, int ph, int pw) {
    return timed("patchify", 0, [&] { return in_.patchify(tokens, x, ph, pw); });
}
Status ProfilingBackend::unpatchify(const Tensor & x, const Tensor & u, int ph, int pw) {
    return timed("unpatchify", 0, [&] { return in_.unpatchify(x, u, ph, pw); });
}
Status ProfilingBackend::rope(const Tensor & x, const RopeLayout & layout, const std::vector<int64_t> & pos) {
    return timed("rope", 0, [&] { return in_.rope(x, layout, pos); });
}
Status ProfilingBackend::kv_write(const Tensor & store, const KvLayout & layout, const RingView & ring, int64_t frame0, const Tensor & k,
                                  const Tensor & v) {
    return timed("kv_write", 0, [&] { return in_.kv_write(store, layout, ring, frame0, k, v); });
}
Status ProfilingBackend::attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & layout,
                                        const RingView & ring, const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & rope,
                                        float scale) {
    const double f = attention_flops(q.dim(0), ring.visible_tokens(), q.dim(1), q.dim(2));
    return timed("attention_ring", f, [&] { return in_.attention_ring(out, q, store, layout, ring, tail_k, tail_v, rope, scale); });
}
Status ProfilingBackend::attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale,
                                   int64_t q_block, int64_t k_block) {
    // In the chunk loop plain attention is the cross-attention over the cached text K/V.
    const std::string op = "attention Lk=" + std::to_string(k.dim(0));
    const double      f  = attention_flops(q.dim(0), k.dim(0), q.dim(1), q.dim(2));
    return timed(op, f, [&] { return in_.attention(out, q, k, v, scale, q_block, k_block); });
}

Status ProfilingBackend::conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                                const ConvSpec & spec) {
    // 2 m n k with m = output pixels, n = Cout, k = the reduction (taps x Cin)
    const double f = 2.0 * double(y.numel()) * double(w.dim(1));
    return timed("conv3d k" + std::to_string(spec.kt) + "x" + std::to_string(spec.kh) + "x" + std::to_string(spec.kw), f,
                 [&] { return in_.conv3d(y, x, w, b, spec); });
}
Status ProfilingBackend::relu(const Tensor & y, const Tensor & x) {
    return timed("relu", 0, [&] { return in_.relu(y, x); });
}
Status ProfilingBackend::tanh_clamp(const Tensor & y, const Tensor & x, float bound) {
    return timed("tanh_clamp", 0, [&] { return in_.tanh_clamp(y, x, bound); });
}
Status ProfilingBackend::transpose(const Tensor & y, const Tensor & x) {
    return timed("transpose", 0, [&] { return in_.transpose(y, x); });
}
Status ProfilingBackend::to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) {
    return timed("to_rgba8", 0, [&] { return in_.to_rgba8(rgba, x, a, b); });
}

} // namespace avs::bench
