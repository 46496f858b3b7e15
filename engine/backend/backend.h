// Backend: the ops the model calls, implemented by the CPU reference backend (fp32, the twin every
// CUDA kernel is checked against) and by the CUDA backend. All tensors live on the backend's device
// and are contiguous unless an op says otherwise. Ops return a Status; shapes are checked by the
// model at load time, so a failing op means a bug or a device error.
#pragma once

#include "engine/cache/kv_format.h"
#include "engine/cache/ring_view.h"
#include "engine/core/result.h"
#include "engine/core/tensor.h"
#include "engine/model/rope.h"

#include <memory>
#include <string>
#include <vector>

namespace avs {

// A point in a backend's queue of work: CUDA events on the CUDA backend, host timestamps on the
// synchronous CPU twin. Used to order work across backends (the decode stream waits for the DiT's
// latents) and to time spans on each stream for traces.
class BackendEvent {
public:
    virtual ~BackendEvent() = default;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual const char * name() const = 0;
    virtual Device       device() const = 0;
    // dtype the weight matrices are converted to at load time (f32 on the CPU twin, bf16 on CUDA)
    virtual DType        weight_dtype() const = 0;
    // dtype of activations that feed GEMMs and attention (LN outputs, q/k/v, FFN hidden); the
    // residual stream, norm statistics, modulation and the time embedding stay f32 everywhere.
    virtual DType        act_dtype() const = 0;

    // ---- memory ----
    virtual Result<Tensor> alloc(DType dtype, const Shape & shape) = 0;
    // dst (device, contiguous) <- host tensor of any float dtype, converted to dst's dtype
    virtual Status upload(const Tensor & dst, const Tensor & host_src) = 0;
    // host f32 tensor <- device tensor
    virtual Status download(const Tensor & host_dst, const Tensor & src) = 0;
    virtual Status copy(const Tensor & dst, const Tensor & src) = 0;  // same device, same dtype
    virtual Status synchronize() = 0;
    // bytes currently allocated / peak, for memory accounting
    virtual uint64_t bytes_in_use() const = 0;
    virtual uint64_t peak_bytes() const = 0;
    // peak := bytes in use now; cached free device blocks are released (benchmarks measure one
    // configuration at a time, each at its own allocation sizes)
    virtual void     reset_peak() = 0;

    // Host memory for asynchronous device-to-host copies (pinned on CUDA), zero-filled.
    virtual Result<Tensor> alloc_host(DType dtype, const Shape & shape) = 0;
    // dst (host, from alloc_host) <- src (device), same dtype, raw bytes, queued on this backend:
    // complete once an event recorded after it has completed.
    virtual Status copy_to_host_async(const Tensor & host_dst, const Tensor & src) = 0;
    // dst (device) <- src (host, from alloc_host), same dtype and size, raw bytes, queued on this backend.
    virtual Status copy_from_host_async(const Tensor & dst, const Tensor & host_src) = 0;

    // ---- events (see BackendEvent) ----
    virtual Result<std::shared_ptr<BackendEvent>> record_event() = 0;
    // Work queued on this backend after the call runs after `e` (recorded on any backend of the same
    // device) has completed; the host does not wait.
    virtual Status wait_event(const BackendEvent & e) = 0;
    // The host waits until `e` has completed.
    virtual Status sync_event(const BackendEvent & e) = 0;
    // Milliseconds from a to b; both complete (sync_event first).
    virtual Result<double> elapsed_ms(const BackendEvent & a, const BackendEvent & b) = 0;

    // ---- ops ----
    // y[M,N] = x[M,K] . w[N,K]^T (+ b[N])
    virtual Status linear(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor * b) = 0;
    // y = LN(x) * (1 + scale[f]) + shift[f], no affine; f = row / rows_per_frame; shift/scale are
    // [F, D] and may be row-strided views (the per-frame modulation chunks).
    virtual Status layer_norm_modulate(const Tensor & y, const Tensor & x, const Tensor & shift, const Tensor & scale,
                                       int64_t rows_per_frame, float eps) = 0;
    // y = LN(x) * w + b
    virtual Status layer_norm_affine(const Tensor & y, const Tensor & x, const Tensor & w, const Tensor & b, float eps) = 0;
    // y = x * rsqrt(mean(x^2) + eps) * w over the last dim (q/k norm over the full dim, all heads)
    virtual Status rms_norm(const Tensor & y, const Tensor & x, const Tensor & w, float eps) = 0;
    virtual Status gelu_tanh(const Tensor & y, const Tensor & x) = 0;
    virtual Status silu(const Tensor & y, const Tensor & x) = 0;
    // x += y * gate[f]; gate [F, D] (may be row-strided)
    virtual Status gated_residual(const Tensor & x, const Tensor & y, const Tensor & gate, int64_t rows_per_frame) = 0;
    // x += y
    virtual Status add(const Tensor & x, const Tensor & y) = 0;
    // out = a * x + b * y (the flow-matching sampler's updates); out may alias x or y
    virtual Status axpby(const Tensor & out, float a, const Tensor & x, float b, const Tensor & y) = 0;
    // out[r, :] = a[r, :] + row[:]   (a, out [R, N]; row [N])
    virtual Status add_row(const Tensor & out, const Tensor & a, const Tensor & row) = 0;
    // out[F, freq_dim] = [cos(t f_k), sin(t f_k)], f_k = 10000^(-k/(freq_dim/2)), computed in fp64
    virtual Status timestep_embedding(const Tensor & out, const std::vector<double> & t) = 0;
    // tokens[F*(H/ph)*(W/pw), C*ph*pw] (patch vector order c, kh, kw) <- x[C, F, H, W]
    virtual Status patchify(const Tensor & tokens, const Tensor & x, int ph, int pw) = 0;
    // x[C, F, H, W] <- u[tokens, ph*pw*C] (channel fastest)
    virtual Status unpatchify(const Tensor & x, const Tensor & u, int ph, int pw) = 0;
    // rotate x [frames*tokens_per_frame, heads, head_dim] in place; one temporal position per frame
    virtual Status rope(const Tensor & x, const RopeLayout & layout, const std::vector<int64_t> & frame_positions) = 0;

    // ---- KV cache and attention ----
    // Quantize k, v [F*tokens_per_frame, heads, head_dim] (act dtype or f32) of frames [frame0, frame0+F)
    // into their ring slots of `store` (u8 [slots, layout.slot_bytes], format layout.fmt, kv_format.h).
    virtual Status kv_write(const Tensor & store, const KvLayout & layout, const RingView & ring, int64_t frame0,
                            const Tensor & k, const Tensor & v) = 0;
    // Dequantize slot `slot` of `store` into k, v [tokens_per_frame, heads, head_dim] (act dtype or f32).
    virtual Status kv_read(const Tensor & k, const Tensor & v, const Tensor & store, const KvLayout & layout, int64_t slot) = 0;
    // out[Lq, H, D] = softmax(scale * q K^T) V over the frames the ring shows, in logical order. The
    // last `tail` visible frames (the chunk being generated; tail = tail_k.dim(0) / tokens_per_frame,
    // 0 when tail_k is undefined) are read from tail_k/tail_v [tail*tpf, H, D] (act dtype), the others
    // from `store` in its format, dequantized tile by tile. All keys carry their spatial (row/column)
    // RoPE and not their temporal one: the temporal pairs are rotated here by the frame's read-time
    // position. q is already fully rotated.
    virtual Status attention_ring(const Tensor & out, const Tensor & q, const Tensor & store, const KvLayout & layout,
                                  const RingView & ring, const Tensor & tail_k, const Tensor & tail_v, const RopeLayout & rope,
                                  float scale) = 0;
    // Plain attention, q [Lq, H, D], k/v [Lk, H, D]. With q_block, k_block > 0 it is block-causal:
    // key j is visible to query i iff j / k_block <= i / q_block.
    virtual Status attention(const Tensor & out, const Tensor & q, const Tensor & k, const Tensor & v, float scale,
                             int64_t q_block = 0, int64_t k_block = 0) = 0;

    // ---- video decoders (engine/decode); activations are channels-last frames [H, W, C] ----
    // Causal 3D convolution, stride 1, "same" zero padding in space, no padding in time:
    //   y[t, oy, ox, co] (+)= b[co] + sum_{dt,dy,dx,ci} w[co, ((dt*kh + dy)*kw + dx)*Cin + ci]
    //                                   * up(x[t + dt])[oy + dy - kh/2, ox + dx - kw/2, ci]
    // x: kt - 1 + T frames, each [H, W, Cin] (its pixel stride may exceed Cin: a channel slice of a
    // wider frame); an undefined Tensor is an all-zero frame (causal padding, no buffer needed).
    // up(): nearest-neighbour upsampling by spec.upsample (1 or 2) fused into the read.
    // y: [T, H*up, W*up, Cout] contiguous. w: [Cout, kt*kh*kw*Cin] (weight dtype). b may be null.
    // With spec.accumulate the result is added to y (residual adds, split-weight concatenations).
    struct ConvSpec {
        int  kt = 1, kh = 1, kw = 1;
        int  upsample = 1;
        bool accumulate = false;
    };
    virtual Status conv3d(const Tensor & y, const std::vector<Tensor> & x, const Tensor & w, const Tensor * b,
                          const ConvSpec & spec) = 0;
    virtual Status relu(const Tensor & y, const Tensor & x) = 0;
    // y = bound * tanh(x / bound) (TAEHV's soft clamp)
    virtual Status tanh_clamp(const Tensor & y, const Tensor & x, float bound) = 0;
    // y[N, M] = x[M, N]^T; x may be row-strided (one frame of a [C, F, h, w] latent)
    virtual Status transpose(const Tensor & y, const Tensor & x) = 0;
    // Display conversion: rgba[H, W, 4] u8 = round(255 * clamp(a * x + b, 0, 1)), alpha 255;
    // x [H, W, 3] (pixel stride may exceed 3).
    virtual Status to_rgba8(const Tensor & rgba, const Tensor & x, float a, float b) = 0;
};

// "cpu" or "cuda"; "auto" picks CUDA when a device is present.
Result<std::unique_ptr<Backend>> make_backend(const std::string & name);
std::unique_ptr<Backend> make_cpu_backend();
bool cuda_available();  // built with CUDA and a device is present

} // namespace avs
