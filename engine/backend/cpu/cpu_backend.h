// The CPU reference backend: every op in fp32 (bf16/f16 inputs are widened), multithreaded with
// OpenMP, GEMMs through OpenBLAS. It is the twin every CUDA kernel is tested against, so clarity
// and exactness come before speed; it is still fast enough to run the tiny model in CI.
#pragma once

#include "engine/backend/backend.h"

#include <atomic>
#include <functional>
#include <vector>

namespace avs {

class CpuBackend final : public Backend {
public:
    const char * name() const override { return "cpu"; }
    Device       device() const override { return Device::cpu; }
    DType        weight_dtype() const override { return DType::f32; }
    DType        act_dtype() const override { return DType::f32; }

    Result<Tensor> alloc(DType dtype, const Shape & shape) override;
    Status   upload(const Tensor & dst, const Tensor & host_src) override;
    Status   download(const Tensor & host_dst, const Tensor & src) override;
    Status   copy(const Tensor & dst, const Tensor & src) override;
    Status   synchronize() override { return {}; }
    uint64_t bytes_in_use() const override { return in_use_->load(); }
    uint64_t peak_bytes() const override { return peak_->load(); }
    void     reset_peak() override { peak_->store(in_use_->load()); }

    Result<Tensor> alloc_host(DType dtype, const Shape & shape) override { return alloc(dtype, shape); }
    Status copy_to_host_async(const Tensor & host_dst, const Tensor & src) override { return copy(host_dst, src); }
    Status copy_from_host_async(const Tensor & dst, const Tensor & host_src) override { return copy(dst, host_src); }
    Result<std::shared_ptr<BackendEvent>> record_event() override;
    Status         wait_event(const BackendEvent &) override { return {}; }  // every op has completed on return
    Status         sync_event(const BackendEvent &) override { return {}; }
    Result<double> elapsed_ms(const BackendEvent & a, const BackendEvent & b) override;

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
    Status kv_read(const Tensor & k, const Tensor & v, const Tensor & store, const KvLayout & layout, int64_t slot) override;
    Status attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & layout,
                          const RingView & ring, const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & rope,
                          float scale) override;
    Status attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale,
                     int64_t q_block, int64_t k_block) override;

    Status conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                  const ConvSpec & spec) override;
    Status relu(const Tensor & y, const Tensor & x) override;
    Status tanh_clamp(const Tensor & y, const Tensor & x, float bound) override;
    Status transpose(const Tensor & y, const Tensor & x) override;
    Status to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) override;

private:
    std::vector<float> conv_cols_;  // conv3d im2col scratch, kept between calls
    // Attention scratch (gathered, rotated K/V and one block of scores), kept between calls: the
    // 1.3B chunk needs ~60 MB per call and reallocating it every layer costs page faults.
    std::vector<float> att_k_, att_v_, att_s_;
    // shared so that buffers outliving the backend can still decrement safely
    std::shared_ptr<std::atomic<uint64_t>> in_use_ = std::make_shared<std::atomic<uint64_t>>(0);
    std::shared_ptr<std::atomic<uint64_t>> peak_   = std::make_shared<std::atomic<uint64_t>>(0);
};

// Row-major sgemm: C[M,N] = A[M,K] . B^T (B stored [N,K]) (+ C if accumulate). OpenBLAS when built
// with it, else a blocked OpenMP fallback with the same results up to summation order.
void cpu_sgemm_nt(int64_t M, int64_t N, int64_t K, const float * A, int64_t lda, const float * B, int64_t ldb, float * C,
                  int64_t ldc, bool accumulate);
// C[M,N] = A[M,K] . B[K,N]
void cpu_sgemm_nn(int64_t M, int64_t N, int64_t K, const float * A, int64_t lda, const float * B, int64_t ldb, float * C,
                  int64_t ldc);

// softmax(scale * s) over each row of S [rows, cols] in place (fp32, max-subtracted)
void cpu_softmax_rows(float * S, int64_t rows, int64_t cols, float scale);

// out[Lq, H, D] = softmax(scale * q K^T) V per head, q/K/V row stride H*D, in blocks of query
// rows; key_limit(i) = how many leading keys query i sees. `scores` is scratch (resized as needed).
void cpu_attend(float * out, const float * q, const float * K, const float * V, int64_t Lq, int64_t Nk, int64_t H, int64_t D,
                float scale, const std::function<int64_t(int64_t)> & key_limit, std::vector<float> & scores);

} // namespace avs
