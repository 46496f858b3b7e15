// ProfilingBackend: a Backend decorator that forwards every call to an inner backend and, while
// enabled, times each op class by wall clock between two inner.synchronize() calls.
//
// Why wall clock and not CUDA events: the CUDA backend runs on its own private stream, so events
// recorded on the legacy default stream from out here would not bracket its kernels. Synchronizing
// before and after each op serializes the pipeline (no CPU/GPU overlap, one sync latency per op), so
// the profiled chunk is slower than an unprofiled one: avs-bench takes only the per-op breakdown from
// the profiled pass and every headline number (ms per chunk, FPS) from unprofiled chunks. While
// disabled the decorator costs one extra virtual call and a branch per op.
#pragma once

#include "engine/backend/backend.h"

#include <cstdint>
#include <map>
#include <string>

namespace avs::bench {

struct OpStats {
    int64_t calls = 0;
    double  ms    = 0;  // wall clock, sync to sync
    double  flops = 0;  // 2·m·n·k of the GEMM / attention products; 0 for the other ops
};

class ProfilingBackend final : public Backend {
public:
    explicit ProfilingBackend(Backend & inner) : in_(inner) {}

    void set_enabled(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }
    void reset_stats() { stats_.clear(); }
    // Keyed by op class, e.g. "linear 4680x8960x1536" (M x N x K), "attention_ring", "rms_norm".
    const std::map<std::string, OpStats> & stats() const { return stats_; }

    const char * name() const override { return in_.name(); }
    Device       device() const override { return in_.device(); }
    DType        weight_dtype() const override { return in_.weight_dtype(); }
    DType        act_dtype() const override { return in_.act_dtype(); }

    Result<Tensor> alloc(DType dtype, const Shape & shape) override { return in_.alloc(dtype, shape); }
    Status upload(const Tensor & dst, const Tensor & host_src) override;
    Status download(const Tensor & host_dst, const Tensor & src) override;
    Status copy(const Tensor & dst, const Tensor & src) override;
    Status synchronize() override { return in_.synchronize(); }
    uint64_t bytes_in_use() const override { return in_.bytes_in_use(); }
    uint64_t peak_bytes() const override { return in_.peak_bytes(); }
    void     reset_peak() override { in_.reset_peak(); }

    Result<Tensor> alloc_host(DType dtype, const Shape & shape) override { return in_.alloc_host(dtype, shape); }
    Status copy_to_host_async(const Tensor & dst, const Tensor & src) override { return in_.copy_to_host_async(dst, src); }
    Status copy_from_host_async(const Tensor & dst, const Tensor & src) override { return in_.copy_from_host_async(dst, src); }
    Result<std::shared_ptr<BackendEvent>> record_event() override { return in_.record_event(); }
    Status         wait_event(const BackendEvent & e) override { return in_.wait_event(e); }
    Status         sync_event(const BackendEvent & e) override { return in_.sync_event(e); }
    Result<double> elapsed_ms(const BackendEvent & a, const BackendEvent & b) override { return in_.elapsed_ms(a, b); }
    Status linear(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor * b) override;
    Status layer_norm_modulate(const Tensor & y, const Tensor & x, const Tensor & shift, const Tensor & scale,
                               int64_t rows_per_frame, float eps) override;
    Status layer_norm_affine(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor & b, float eps) override;
    Status rms_norm(const Tensor & y, const Tensor & x, const Tensor & w, float eps) override;
    Status gelu_tanh(const Tensor & y, const Tensor & x) override;
    Status silu(const Tensor & y, const Tensor & x) override;
    Status gated_residual(const Tensor & x, const Tensor & y, const Tensor & gate, int64_t rows_per_frame) override;
    Status add(const Tensor & x, const Tensor & y) override;
    Status axpby(const Tensor & out, float a, const Tensor & x, float b, const Tensor & y) override;
    Status add_row(const Tensor & out, const Tensor & a, const Tensor & row) override;
    Status timestep_embedding(const Tensor & out, const std::vector<double> & t) override;
    Status patchify(const Tensor & tokens, const Tensor & x, int ph, int pw) override;
    Status unpatchify(const Tensor & x, const Tensor & u, int ph, int pw) override;
    Status rope(const Tensor & x, const RopeLayout & layout, const std::vector<int64_t> & frame_positions) override;
    Status kv_write(const Tensor & store, const KvLayout & layout, const RingView & ring, int64_t frame0, const Tensor & k,
                    const Tensor & v) override;
    Status kv_read(const Tensor & k, const Tensor & v, const Tensor & store, const KvLayout & layout, int64_t slot) override {
        return in_.kv_read(k, v, store, layout, slot);
    }
    Status attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & layout, const RingView & ring,
                          const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & rope, float scale) override;
    Status attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale, int64_t q_block,
                     int64_t k_block) override;
    Status conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                  const ConvSpec & spec) override;
    Status relu(const Tensor & y, const Tensor & x) override;
    Status tanh_clamp(const Tensor & y, const Tensor & x, float bound) override;
    Status transpose(const Tensor & y, const Tensor & x) override;
    Status to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) override;

private:
    template <class F> Status timed(const std::string & op, double flops, F && f);

    Backend &                      in_;
    bool                           enabled_ = false;
    std::map<std::string, OpStats> stats_;
};

} // namespace avs::bench
