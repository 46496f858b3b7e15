// The CUDA backend: bf16 weight matrices and GEMM activations with fp32 accumulation (cuBLAS), fp32
// residual stream, norms and modulation (as the CPU twin), every op on one stream, device memory
// from a caching pool so the steady-state chunk loop never calls cudaMalloc/cudaFree.
#include "engine/backend/backend.h"
#include "engine/backend/cuda/cuda_check.h"
#include "engine/backend/cuda/cuda_device.h"

#include "kernels/add.cuh"
#include "kernels/add_row.cuh"
#include "kernels/attention.cuh"
#include "kernels/axpby.cuh"
#include "kernels/broadcast_rows.cuh"
#include "kernels/conv3d.cuh"
#include "kernels/gated_residual.cuh"
#include "kernels/gelu_tanh.cuh"
#include "kernels/kv_write.cuh"
#include "kernels/layer_norm_affine.cuh"
#include "kernels/layer_norm_modulate.cuh"
#include "kernels/patchify.cuh"
#include "kernels/relu.cuh"
#include "kernels/rms_norm.cuh"
#include "kernels/rope.cuh"
#include "kernels/silu.cuh"
#include "kernels/tanh_clamp.cuh"
#include "kernels/timestep_embedding.cuh"
#include "kernels/to_rgba8.cuh"
#include "kernels/transpose.cuh"
#include "kernels/unpatchify.cuh"

#include <cublas_v2.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace avs {
namespace {

#define AVS_CUBLAS_CHECK(stmt)                                                                                     \
    do {                                                                                                           \
        const cublasStatus_t avs_st_ = (stmt);                                                                     \
        if (avs_st_ != CUBLAS_STATUS_SUCCESS)                                                                      \
            return make_error(ErrorCode::device, "cuBLAS error %s in '%s' at %s:%d", cublasGetStatusName(avs_st_), \
                              #stmt, __FILE__, __LINE__);                                                          \
    } while (0)

// Launcher results -> Status, naming the op.
Status launched(cudaError_t e, const char * op) {
    if (e == cudaSuccess) return {};
    return make_error(ErrorCode::device, "CUDA kernel %s failed: %s (%s)", op, cudaGetErrorName(e), cudaGetErrorString(e));
}

// Caching allocator: freed blocks go to a size-keyed free list and are reused best-fit (at most 2x
// the request). Blocks are only reused in stream order (one stream), so no event is needed.
class Pool {
public:
    ~Pool() {
        for (auto & [size, p] : free_) cudaFree(p);
    }
    Result<void *> get(uint64_t bytes) {
        const uint64_t size = round(bytes);
        std::lock_guard<std::mutex> lock(m_);
        auto it = free_.lower_bound(size);
        if (it != free_.end() && it->first <= 2 * size) {
            void * p = it->second;
            live_[p] = it->first;
            in_use_ += it->first;
            free_.erase(it);
            peak_ = std::max(peak_, in_use_);
            return p;
        }
        void * p = nullptr;
        cudaError_t e = cudaMalloc(&p, size);
        if (e != cudaSuccess) {  // give cached blocks back and retry once
            cudaGetLastError();
            for (auto & [s, q] : free_) { cudaFree(q); reserved_ -= s; }
            free_.clear();
            e = cudaMalloc(&p, size);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            return make_error(ErrorCode::device, "CUDA out of memory allocating %.1f MiB (%.1f MiB in use): %s",
                              double(size) / 1048576.0, double(in_use_) / 1048576.0, cudaGetErrorString(e));
        }
        reserved_ += size;
        live_[p] = size;
        in_use_ += size;
        peak_ = std::max(peak_, in_use_);
        return p;
    }
    void put(void * p) {
        std::lock_guard<std::mutex> lock(m_);
        auto it = live_.find(p);
        if (it == live_.end()) return;
        in_use_ -= it->second;
        free_.emplace(it->second, p);
        live_.erase(it);
    }
    uint64_t in_use() const { return in_use_; }
    uint64_t peak() const { return peak_; }
    // Also hands the cached free blocks back: a benchmark's next configuration then allocates at its
    // own sizes instead of reusing up-to-2x larger blocks (which inflated int4's measured peak).
    void reset_peak() {
        std::lock_guard<std::mutex> lock(m_);
        for (auto & [size, p] : free_) cudaFree(p), reserved_ -= size;
        free_.clear();
        peak_ = in_use_;
    }

private:
    static uint64_t round(uint64_t b) {
        const uint64_t g = b < (1u << 20) ? 512 : (2u << 20);
        return (std::max<uint64_t>(b, 1) + g - 1) / g * g;
    }
    std::mutex                     m_;
    std::multimap<uint64_t, void *> free_;
    std::map<void *, uint64_t>     live_;
    uint64_t                       in_use_ = 0, peak_ = 0, reserved_ = 0;
};

struct CudaEvent final : BackendEvent {
    cudaEvent_t ev = nullptr;
    ~CudaEvent() override {
        if (ev) cudaEventDestroy(ev);
    }
};

#define AVS_TRY_ASSIGN_EVENT(name, e)                                                                    \
    const auto * name##_p = dynamic_cast<const CudaEvent *>(&(e));                                       \
    if (!name##_p) return make_error(ErrorCode::invalid_argument, "event of another backend (CUDA expected)"); \
    cudaEvent_t name = name##_p->ev

class CudaBackend final : public Backend {
public:
    static Result<std::unique_ptr<Backend>> create(int device) {
        std::unique_ptr<CudaBackend> b(new CudaBackend());
        AVS_CUDA_CHECK(cudaSetDevice(device));
        AVS_CUDA_CHECK(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking));
        AVS_CUBLAS_CHECK(cublasCreate(&b->blas_));
        AVS_CUBLAS_CHECK(cublasSetStream(b->blas_, b->stream_));
        // fp32 GEMMs (the time embedding) stay true fp32: no TF32 shortcut.
        AVS_CUBLAS_CHECK(cublasSetMathMode(b->blas_, CUBLAS_DEFAULT_MATH));
        b->device_ = device;
        return std::unique_ptr<Backend>(std::move(b));
    }
    ~CudaBackend() override {
        if (blas_) cublasDestroy(blas_);
        if (stream_) {
            cudaStreamSynchronize(stream_);
            cudaStreamDestroy(stream_);
        }
    }

    const char * name() const override { return "cuda"; }
    Device       device() const override { return Device::cuda; }
    DType        weight_dtype() const override { return DType::bf16; }
    DType        act_dtype() const override { return DType::bf16; }

    Result<Tensor> alloc(DType dtype, const Shape & shape) override {
        const uint64_t bytes = dtype_bytes(dtype, uint64_t(shape.numel()));
        AVS_ASSIGN_OR_RETURN(void * p, pool_->get(bytes));
        auto pool = pool_;
        auto buf  = std::make_shared<Buffer>(p, bytes, Device::cuda, [pool](void * q) { pool->put(q); });
        return Tensor(std::move(buf), 0, dtype, shape);
    }

    Status upload(const Tensor & dst, const Tensor & src) override {
        if (dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
            return make_error(ErrorCode::shape, "upload: %s -> %s", src.str().c_str(), dst.str().c_str());
        const void * host = src.raw();
        std::vector<uint8_t> staged;
        if (src.dtype() != dst.dtype()) {
            std::vector<float> f(size_t(src.numel()));
            AVS_TRY(convert_to_f32(src.raw(), src.dtype(), f.data(), uint64_t(src.numel())));
            staged.resize(dst.nbytes());
            AVS_TRY(convert_from_f32(f.data(), staged.data(), dst.dtype(), uint64_t(src.numel())));
            host = staged.data();
        }
        AVS_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), host, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
        AVS_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `staged` dies here
        return {};
    }

    Status download(const Tensor & dst, const Tensor & src) override {
        if (dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
            return make_error(ErrorCode::shape, "download: %s -> %s", src.str().c_str(), dst.str().c_str());
        std::vector<uint8_t> raw(src.nbytes());
        AVS_CUDA_CHECK(cudaMemcpyAsync(raw.data(), src.raw(), src.nbytes(), cudaMemcpyDeviceToHost, stream_));
        AVS_CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (dst.dtype() == src.dtype()) {
            std::memcpy(dst.raw(), raw.data(), raw.size());
            return {};
        }
        if (dst.dtype() != DType::f32) return make_error(ErrorCode::unsupported, "download into %s", dtype_name(dst.dtype()));
        return convert_to_f32(raw.data(), src.dtype(), dst.data<float>(), uint64_t(src.numel()));
    }

    Status copy(const Tensor & dst, const Tensor & src) override {
        if (dst.dtype() != src.dtype() || dst.numel() != src.numel())
            return make_error(ErrorCode::shape, "copy: %s -> %s", src.str().c_str(), dst.str().c_str());
        AVS_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
        return {};
    }
    Status synchronize() override {
        AVS_CUDA_CHECK(cudaStreamSynchronize(stream_));
        return {};
    }
    uint64_t bytes_in_use() const override { return pool_->in_use(); }
    uint64_t peak_bytes() const override { return pool_->peak(); }
    void     reset_peak() override { pool_->reset_peak(); }

    Result<Tensor> alloc_host(DType dtype, const Shape & shape) override {
        const uint64_t bytes = dtype_bytes(dtype, uint64_t(shape.numel()));
        void * p = nullptr;
        AVS_CUDA_CHECK(cudaMallocHost(&p, std::max<uint64_t>(bytes, 1)));
        std::memset(p, 0, bytes);
        auto buf = std::make_shared<Buffer>(p, bytes, Device::cpu, [](void * q) { cudaFreeHost(q); });
        return Tensor(std::move(buf), 0, dtype, shape);
    }
    Status copy_to_host_async(const Tensor & dst, const Tensor & src) override {
        if (dst.dtype() != src.dtype() || dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
            return make_error(ErrorCode::shape, "copy_to_host_async: %s -> %s", src.str().c_str(), dst.str().c_str());
        AVS_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToHost, stream_));
        return {};
    }

    Status copy_from_host_async(const Tensor & dst, const Tensor & src) override {
        if (dst.dtype() != src.dtype() || dst.numel() != src.numel() || !dst.is_contiguous() || !src.is_contiguous())
            return make_error(ErrorCode::shape, "copy_from_host_async: %s -> %s", src.str().c_str(), dst.str().c_str());
        AVS_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyHostToDevice, stream_));
        return {};
    }

    Result<std::shared_ptr<BackendEvent>> record_event() override {
        auto e = std::make_shared<CudaEvent>();
        AVS_CUDA_CHECK(cudaEventCreate(&e->ev));  // timing enabled: spans for traces
        AVS_CUDA_CHECK(cudaEventRecord(e->ev, stream_));
        return std::shared_ptr<BackendEvent>(std::move(e));
    }
    Status wait_event(const BackendEvent & e) override {
        AVS_TRY_ASSIGN_EVENT(ev, e);
        AVS_CUDA_CHECK(cudaStreamWaitEvent(stream_, ev, 0));
        return {};
    }
    Status sync_event(const BackendEvent & e) override {
        AVS_TRY_ASSIGN_EVENT(ev, e);
        AVS_CUDA_CHECK(cudaEventSynchronize(ev));
        return {};
    }
    Result<double> elapsed_ms(const BackendEvent & a, const BackendEvent & b) override {
        AVS_TRY_ASSIGN_EVENT(ea, a);
        AVS_TRY_ASSIGN_EVENT(eb, b);
        float ms = 0.0f;
        AVS_CUDA_CHECK(cudaEventElapsedTime(&ms, ea, eb));
        return double(ms);
    }

    // y[M,N] = x[M,K] w[N,K]^T (+ b): column-major cuBLAS sees y^T = w . x^T.
    Status linear(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor * b) override {
        const int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
        if (w.dim(1) != K || y.numel() != M * N || x.dtype() != w.dtype())
            return make_error(ErrorCode::shape, "linear: x %s, w %s, y %s do not match", x.str().c_str(), w.str().c_str(),
                              y.str().c_str());
        float beta = 0.0f;
        if (b) {  // bias first, then beta = 1: one rounding for bf16 outputs
            AVS_TRY(launched(kernels::broadcast_rows(y.raw(), y.dtype(), b->data<float>(), M, N, stream_), "broadcast_rows"));
            beta = 1.0f;
        }
        const float alpha = 1.0f;
        auto cuda_type = [](DType t) { return t == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F; };
        AVS_CUBLAS_CHECK(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &alpha, w.raw(),
                                      cuda_type(w.dtype()), int(K), x.raw(), cuda_type(x.dtype()), int(K), &beta, y.raw(),
                                      cuda_type(y.dtype()), int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return {};
    }

    Status layer_norm_modulate(const Tensor & y, const Tensor & x, const Tensor & shift, const Tensor & scale,
                               int64_t rows_per_frame, float eps) override {
        const int64_t D = x.dim(-1);
        return launched(kernels::layer_norm_modulate(y.raw(), y.dtype(), x.data<float>(), shift.data<float>(), shift.stride(0),
                                                     scale.data<float>(), scale.stride(0), x.numel() / D, D, rows_per_frame,
                                                     eps, stream_),
                        "layer_norm_modulate");
    }
    Status layer_norm_affine(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor & b, float eps) override {
        const int64_t D = x.dim(-1);
        return launched(kernels::layer_norm_affine(y.raw(), y.dtype(), x.data<float>(), w.data<float>(), b.data<float>(),
                                                   x.numel() / D, D, eps, stream_),
                        "layer_norm_affine");
    }
    Status rms_norm(const Tensor & y, const Tensor & x, const Tensor & w, float eps) override {
        const int64_t D = x.dim(-1);
        return launched(kernels::rms_norm(y.raw(), y.dtype(), x.raw(), x.dtype(), w.data<float>(), x.numel() / D, D, eps, stream_),
                        "rms_norm");
    }
    Status gelu_tanh(const Tensor & y, const Tensor & x) override {
        return launched(kernels::gelu_tanh(y.raw(), y.dtype(), x.raw(), x.dtype(), x.numel(), stream_), "gelu_tanh");
    }
    Status silu(const Tensor & y, const Tensor & x) override {
        return launched(kernels::silu(y.raw(), y.dtype(), x.raw(), x.dtype(), x.numel(), stream_), "silu");
    }
    Status gated_residual(const Tensor & x, const Tensor & y, const Tensor & gate, int64_t rows_per_frame) override {
        const int64_t D = x.dim(-1);
        return launched(kernels::gated_residual(x.data<float>(), y.raw(), y.dtype(), gate.data<float>(), gate.stride(0),
                                                x.numel() / D, D, rows_per_frame, stream_),
                        "gated_residual");
    }
    Status add(const Tensor & x, const Tensor & y) override {
        return launched(kernels::add(x.data<float>(), y.raw(), y.dtype(), x.numel(), stream_), "add");
    }
    Status axpby(const Tensor & out, float a, const Tensor & x, float b, const Tensor & y) override {
        return launched(kernels::axpby(out.data<float>(), a, x.data<float>(), b, y.data<float>(), out.numel(), stream_), "axpby");
    }
    Status add_row(const Tensor & out, const Tensor & a, const Tensor & row) override {
        const int64_t N = row.numel();
        return launched(kernels::add_row(out.data<float>(), a.data<float>(), row.data<float>(), a.numel() / N, N, stream_),
                        "add_row");
    }
    Status timestep_embedding(const Tensor & out, const std::vector<double> & t) override {
        if (t.size() > size_t(kernels::FrameTimesteps::kMax))
            return make_error(ErrorCode::unsupported, "timestep_embedding: %zu frames in one forward (at most %d)", t.size(),
                              kernels::FrameTimesteps::kMax);
        kernels::FrameTimesteps ft;
        ft.frames = int32_t(t.size());
        std::copy(t.begin(), t.end(), ft.t);
        return launched(kernels::timestep_embedding(out.data<float>(), ft, out.dim(-1), stream_), "timestep_embedding");
    }
    Status patchify(const Tensor & tokens, const Tensor & x, int ph, int pw) override {
        return launched(kernels::patchify(tokens.raw(), tokens.dtype(), x.data<float>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                                          ph, pw, stream_),
                        "patchify");
    }
    Status unpatchify(const Tensor & x, const Tensor & u, int ph, int pw) override {
        return launched(kernels::unpatchify(x.data<float>(), u.data<float>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), ph, pw,
                                            stream_),
                        "unpatchify");
    }
    Status rope(const Tensor & x, const RopeLayout & layout, const std::vector<int64_t> & frame_positions) override {
        if (frame_positions.size() > size_t(kernels::FramePositions::kMax))
            return make_error(ErrorCode::unsupported, "rope: %zu frames in one forward (at most %d)", frame_positions.size(),
                              kernels::FramePositions::kMax);
        kernels::FramePositions fp;
        fp.frames = int32_t(frame_positions.size());
        std::copy(frame_positions.begin(), frame_positions.end(), fp.pos);
        return launched(kernels::rope(x.raw(), x.dtype(), x.dim(0), int(x.dim(1)), int(x.dim(2)), layout, fp, stream_), "rope");
    }

    Status kv_write(const Tensor & store, const KvLayout & L, const RingView & ring, int64_t frame0, const Tensor & k,
                    const Tensor & v) override {
        const int64_t frames = L.elems() > 0 ? k.numel() / L.elems() : 0;
        if (k.numel() != frames * L.elems() || v.numel() != k.numel() || v.dtype() != k.dtype() ||
            store.nbytes() != uint64_t(ring.capacity() * L.slot_bytes))
            return make_error(ErrorCode::shape, "kv_write: k %s v %s do not fit store %s (%s, %lld bytes per slot)", k.str().c_str(),
                              v.str().c_str(), store.str().c_str(), kv_format_name(L.fmt), (long long) L.slot_bytes);
        return launched(kernels::kv_write(store.data<uint8_t>(), L, ring, frame0, k.raw(), v.raw(), k.dtype(), frames, stream_),
                        "kv_write");
    }
    Status kv_read(const Tensor & k, const Tensor & v, const Tensor & store, const KvLayout & L, int64_t slot) override {
        if (k.numel() != L.elems() || v.numel() != L.elems() || k.dtype() != v.dtype() || slot < 0 ||
            uint64_t((slot + 1) * L.slot_bytes) > store.nbytes())
            return make_error(ErrorCode::shape, "kv_read: slot %lld of store %s into %s", (long long) slot, store.str().c_str(),
                              k.str().c_str());
        return launched(kernels::kv_read(k.raw(), v.raw(), k.dtype(), store.data<uint8_t>(), L, slot, stream_), "kv_read");
    }
    Status attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & L, const RingView & ring,
                          const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & layout, float scale) override {
        kernels::AttnKeys keys;
        keys.store = store.data<uint8_t>(), keys.layout = L;
        keys.nk = ring.visible_tokens(), keys.ring = true, keys.view = ring, keys.rope = layout;
        if (tail_k.defined()) {
            keys.tail_k = tail_k.raw(), keys.tail_v = tail_v.raw(), keys.tail_dtype = tail_k.dtype();
            keys.tail_frames = int32_t(tail_k.dim(0) / ring.tokens_per_frame);
            if (tail_k.numel() != int64_t(keys.tail_frames) * ring.tokens_per_frame * q.dim(1) * q.dim(2) ||
                tail_v.numel() != tail_k.numel() || tail_v.dtype() != tail_k.dtype() || keys.tail_frames > ring.visible_frames())
                return make_error(ErrorCode::shape, "attention_ring: tail k %s v %s for q %s", tail_k.str().c_str(), tail_v.str().c_str(),
                                  q.str().c_str());
        }
        if (!kernels::attention_ring_supported(q.dtype(), keys, int(q.dim(2))))
            return make_error(ErrorCode::unsupported, "attention over a %s KV cache on CUDA needs bf16 activations and head_dim 64 or 128 "
                              "(got %s, head_dim %lld)", kv_format_name(L.fmt), dtype_name(q.dtype()), (long long) q.dim(2));
        AVS_ASSIGN_OR_RETURN(Tensor tab, alloc(DType::f32, Shape{kernels::attention_rope_table_floats(ring, layout)}));
        AVS_TRY(launched(kernels::attention_rope_tables(tab.data<float>(), ring, layout, stream_), "attention_rope_tables"));
        keys.rope_tab = tab.data<float>();
        Tensor split_scratch;  // split-KV partials when the grid would leave SMs idle (pool-cached)
        keys.nsplit = kernels::attention_splits(q.dtype(), q.dim(0), int(q.dim(1)), int(q.dim(2)), keys);
        if (keys.nsplit > 1) {
            AVS_ASSIGN_OR_RETURN(split_scratch, alloc(DType::f32, Shape{kernels::attention_split_scratch_floats(
                                                                          keys.nsplit, q.dim(0), int(q.dim(1)), int(q.dim(2)))}));
            keys.split_scratch = split_scratch.data<float>();
        }
        return launched(kernels::attention(out.raw(), q.raw(), q.dtype(), q.dim(0), int(q.dim(1)), int(q.dim(2)), keys, scale, stream_),
                        "attention (ring)");
    }
    Status attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale, int64_t q_block,
                     int64_t k_block) override {
        if (k.dtype() != v.dtype() || out.dtype() != q.dtype())
            return make_error(ErrorCode::shape, "attention: q %s k %s v %s out %s", q.str().c_str(), k.str().c_str(), v.str().c_str(),
                              out.str().c_str());
        kernels::AttnKeys keys;
        keys.k = k.raw(), keys.v = v.raw(), keys.dtype = k.dtype(), keys.nk = k.dim(0);
        keys.q_block = q_block, keys.k_block = k_block;
        return launched(kernels::attention(out.raw(), q.raw(), q.dtype(), q.dim(0), int(q.dim(1)), int(q.dim(2)), keys, scale, stream_),
                        "attention");
    }

    // ---- video decoders ----
    Status conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                  const ConvSpec & spec) override {
        kernels::ConvFrames f;
        if (x.size() > size_t(kernels::ConvFrames::kMax))
            return make_error(ErrorCode::unsupported, "conv3d: %zu input frames (at most %d)", x.size(), kernels::ConvFrames::kMax);
        const Tensor * ref = nullptr;
        f.count = int(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
            f.ptr[i] = x[i].defined() ? x[i].raw() : nullptr;
            f.stride[i] = x[i].defined() ? x[i].stride(1) : 0;
            if (x[i].defined()) ref = &x[i];
        }
        if (!ref) return make_error(ErrorCode::shape, "conv3d: every input frame is a zero frame");
        kernels::ConvGeom g;
        g.H = ref->dim(0), g.W = ref->dim(1), g.Cin = ref->dim(2), g.Cout = y.dim(-1);
        g.kt = spec.kt, g.kh = spec.kh, g.kw = spec.kw, g.up = spec.upsample, g.accumulate = spec.accumulate;
        const int64_t T = int64_t(x.size()) - spec.kt + 1;
        for (const Tensor & t : x)
            if (t.defined() && (t.dtype() != DType::bf16 || t.ndim() != 3 || t.dim(0) != g.H || t.dim(1) != g.W ||
                                t.dim(2) != g.Cin || t.stride(2) != 1 || t.stride(0) != g.W * t.stride(1)))
                return make_error(ErrorCode::shape, "conv3d: input frame %s (want bf16 [%lld, %lld, %lld], unit channel stride)",
                                  t.str().c_str(), (long long) g.H, (long long) g.W, (long long) g.Cin);
        if (T < 1 || y.ndim() != 4 || y.dim(0) != T || y.dim(1) != g.H * g.up || y.dim(2) != g.W * g.up || !y.is_contiguous() ||
            w.dtype() != DType::bf16 || w.dim(0) != g.Cout || w.dim(1) != int64_t(spec.kt) * spec.kh * spec.kw * g.Cin ||
            (b && (b->dtype() != DType::f32 || b->numel() != g.Cout)))
            return make_error(ErrorCode::shape, "conv3d: %zu frames [%lld, %lld, %lld], w %s, y %s", x.size(), (long long) g.H,
                              (long long) g.W, (long long) g.Cin, w.str().c_str(), y.str().c_str());
        return launched(kernels::conv3d(y.raw(), y.dtype(), f, w.raw(), b ? b->data<float>() : nullptr, g, stream_), "conv3d");
    }
    Status relu(const Tensor & y, const Tensor & x) override {
        return launched(kernels::relu(y.raw(), y.dtype(), x.raw(), x.dtype(), x.numel(), stream_), "relu");
    }
    Status tanh_clamp(const Tensor & y, const Tensor & x, float bound) override {
        return launched(kernels::tanh_clamp(y.raw(), y.dtype(), x.raw(), x.dtype(), x.numel(), bound, stream_), "tanh_clamp");
    }
    Status transpose(const Tensor & y, const Tensor & x) override {
        if (x.ndim() != 2 || y.ndim() != 2 || y.dim(0) != x.dim(1) || y.dim(1) != x.dim(0) || x.stride(1) != 1 ||
            !y.is_contiguous())
            return make_error(ErrorCode::shape, "transpose: x %s -> y %s", x.str().c_str(), y.str().c_str());
        return launched(kernels::transpose(y.raw(), y.dtype(), x.raw(), x.dtype(), x.dim(0), x.dim(1), x.stride(0), stream_),
                        "transpose");
    }
    Status to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) override {
        if (x.ndim() != 3 || x.dim(2) != 3 || x.stride(2) != 1 || x.stride(0) != x.dim(1) * x.stride(1) ||
            rgba.dtype() != DType::u8 || rgba.ndim() != 3 || rgba.dim(0) != x.dim(0) || rgba.dim(1) != x.dim(1) ||
            rgba.dim(2) != 4 || !rgba.is_contiguous())
            return make_error(ErrorCode::shape, "to_rgba8: x %s -> rgba %s", x.str().c_str(), rgba.str().c_str());
        return launched(kernels::to_rgba8(rgba.data<uint8_t>(), x.raw(), x.dtype(), x.dim(0) * x.dim(1), x.stride(1), a, b, stream_),
                        "to_rgba8");
    }

private:
    CudaBackend() = default;
    int                   device_ = 0;
    cudaStream_t          stream_ = nullptr;
    cublasHandle_t        blas_   = nullptr;
    std::shared_ptr<Pool> pool_   = std::make_shared<Pool>();
};

} // namespace

Result<std::unique_ptr<Backend>> make_cuda_backend(int device) { return CudaBackend::create(device); }

} // namespace avs
