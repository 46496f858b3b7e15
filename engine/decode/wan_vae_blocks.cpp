// Wan2.1 VAE decoder forward pass, one latent frame per push (the official decode loop).
// Activations are channels-last frames [T, H, W, C] in the backend's act dtype: T = 1 up to the
// first upsample3d, then 2, then 4 (1 throughout for the first latent). Residual adds never use
// Backend::add: the branch's last conv accumulates into the shortcut (or into x itself).
#include "engine/decode/wan_vae.h"

#include <cmath>

namespace avs {

namespace {

using Spec = Backend::ConvSpec;

constexpr Spec k_conv3x3x3{3, 3, 3, 1, false};
constexpr Spec k_time_conv{3, 1, 1, 1, false};
constexpr Spec k_pointwise{1, 1, 1, 1, false};
constexpr Spec k_pointwise_acc{1, 1, 1, 1, true};
constexpr Spec k_up_conv3x3{1, 3, 3, 2, false};  // nearest x2 fused into the 3x3 conv's read

// The frames of x [T, H, W, C] as [H, W, C] views.
std::vector<Tensor> frames_of(const Tensor & x) {
    std::vector<Tensor> f;
    for (int64_t t = 0; t < x.dim(0); ++t) f.push_back(x.select(0, t));
    return f;
}

// Wan's RMS_norm is x / max(|x|, 1e-12) * sqrt(C) * gamma over the channels. Backend::rms_norm
// computes x * rsqrt(mean(x^2) + eps) * gamma = x * sqrt(C) / sqrt(|x|^2 + C eps) * gamma, so with
// eps = 1e-24 / C the two agree to relative 1e-24 / |x|^2 wherever |x| >= 1e-12 (differing only for
// |x| ~ 1e-12, where neither value matters, and both give 0 for x = 0).
float rms_eps(int64_t c) { return float(1e-24 / double(c)); }

} // namespace

Result<std::vector<Tensor>> WanVaeDecoder::norm_frames(const Tensor & x, const Tensor & gamma, bool silu) {
    // x [T, H, W, C] -> T separate frames [H, W, C] = silu(rms(x[t])): separate allocations, so that a
    // causal history referencing the last two keeps only those two alive.
    std::vector<Tensor> out;
    const float         eps = rms_eps(x.dim(3));
    for (int64_t t = 0; t < x.dim(0); ++t) {
        AVS_ASSIGN_OR_RETURN(Tensor n, be_.alloc(be_.act_dtype(), Shape{x.dim(1), x.dim(2), x.dim(3)}));
        AVS_TRY(be_.rms_norm(n, x.select(0, t), gamma, eps));
        if (silu) AVS_TRY(be_.silu(n, n));
        out.push_back(std::move(n));
    }
    return out;
}

Status WanVaeDecoder::causal_conv(const Tensor & y, const std::vector<Tensor> & frames, const WanConv & c, CausalHistory & h,
                                  const Spec & spec) {
    // The conv sees its input stream continuously, preceded by two zero frames (undefined tensors):
    // inputs = [prev0, prev1, frames...] -> y [frames.size(), H, W, Cout]. Then the history keeps the
    // last two of those inputs (references, no copies) = the official cache_x rule.
    std::vector<Tensor> in = {h.prev[0], h.prev[1]};
    in.insert(in.end(), frames.begin(), frames.end());
    AVS_TRY(be_.conv3d(y, in, c.w, &c.b, spec));
    h.prev[0] = in[in.size() - 2];
    h.prev[1] = in[in.size() - 1];
    return {};
}

Result<Tensor> WanVaeDecoder::res_block(WanResBlock & b, const Tensor & x) {
    const int64_t T = x.dim(0), H = x.dim(1), W = x.dim(2);
    AVS_ASSIGN_OR_RETURN(auto n0, norm_frames(x, b.gamma0, true));                  // T x [H, W, cin]
    AVS_ASSIGN_OR_RETURN(Tensor h, be_.alloc(be_.act_dtype(), Shape{T, H, W, b.cout}));
    AVS_TRY(causal_conv(h, n0, b.conv2, b.hist2, k_conv3x3x3));                       // [T, H, W, cout]
    AVS_ASSIGN_OR_RETURN(auto n3, norm_frames(h, b.gamma3, true));                  // T x [H, W, cout]
    Tensor y = x;  // identity shortcut: accumulate into x in place (no cache references x itself)
    if (b.shortcut.w.defined()) {
        AVS_ASSIGN_OR_RETURN(y, be_.alloc(be_.act_dtype(), Shape{T, H, W, b.cout}));
        AVS_TRY(be_.conv3d(y, frames_of(x), b.shortcut.w, &b.shortcut.b, k_pointwise));  // [T, H, W, cout]
    }
    Spec acc = k_conv3x3x3;
    acc.accumulate = true;
    AVS_TRY(causal_conv(y, n3, b.conv6, b.hist6, acc));                              // y += residual
    return y;
}

Status WanVaeDecoder::attn_block(const WanAttnBlock & a, const Tensor & x) {
    // x [T, H, W, C], in place: x[t] += proj(softmax(q k^T / sqrt(C)) v), one head over H*W tokens.
    const int64_t H = x.dim(1), W = x.dim(2), C = x.dim(3), L = H * W;
    const DType   act = be_.act_dtype();
    for (int64_t t = 0; t < x.dim(0); ++t) {
        AVS_ASSIGN_OR_RETURN(Tensor n, be_.alloc(act, Shape{H, W, C}));
        AVS_TRY(be_.rms_norm(n, x.select(0, t), a.gamma, rms_eps(C)));               // [H, W, C]
        Tensor qkv[3];
        const WanConv * w[3] = {&a.q, &a.k, &a.v};
        for (int i = 0; i < 3; ++i) {
            AVS_ASSIGN_OR_RETURN(qkv[i], be_.alloc(act, Shape{1, H, W, C}));
            AVS_TRY(be_.conv3d(qkv[i], {n}, w[i]->w, &w[i]->b, k_pointwise));       // [1, H, W, C]
        }
        AVS_ASSIGN_OR_RETURN(Tensor o, be_.alloc(act, Shape{L, 1, C}));
        AVS_TRY(be_.attention(o, qkv[0].reshape(Shape{L, 1, C}), qkv[1].reshape(Shape{L, 1, C}), qkv[2].reshape(Shape{L, 1, C}),
                              float(1.0 / std::sqrt(double(C)))));                    // [L, 1, C]
        AVS_TRY(be_.conv3d(x.slice(0, t, t + 1), {o.reshape(Shape{H, W, C})}, a.proj.w, &a.proj.b, k_pointwise_acc));
    }
    return {};
}

Result<Tensor> WanVaeDecoder::resample(WanResample & r, const Tensor & x) {
    // x [T, H, W, c] -> [T' , 2H, 2W, c/2] with T' = 2T after the time_conv, T otherwise.
    const int64_t H = x.dim(1), W = x.dim(2), c = r.c;
    std::vector<Tensor> frames;
    if (r.temporal && r.started) {
        // time_conv [T, H, W, 2c]; output frame 2tau = channels [0, c) at tau, 2tau+1 = [c, 2c):
        // channel-slice views (pixel stride 2c) read straight by the spatial conv, no interleave copy.
        AVS_ASSIGN_OR_RETURN(Tensor tc, be_.alloc(be_.act_dtype(), Shape{x.dim(0), H, W, 2 * c}));
        AVS_TRY(causal_conv(tc, frames_of(x), r.time_conv, r.hist, k_time_conv));
        for (int64_t t = 0; t < x.dim(0); ++t) {
            frames.push_back(tc.select(0, t).slice(2, 0, c));
            frames.push_back(tc.select(0, t).slice(2, c, 2 * c));
        }
    } else {
        // upsample2d, or upsample3d on the first call ('Rep'): no time_conv, and its history stays
        // empty, so the second call runs time_conv from zero history as the official code does.
        r.started = r.temporal;
        frames = frames_of(x);
    }
    AVS_ASSIGN_OR_RETURN(Tensor y, be_.alloc(be_.act_dtype(), Shape{int64_t(frames.size()), 2 * H, 2 * W, r.conv.w.dim(0)}));
    AVS_TRY(be_.conv3d(y, frames, r.conv.w, &r.conv.b, k_up_conv3x3));              // [T', 2H, 2W, c/2]
    return y;
}

Status WanVaeDecoder::push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) {
    const int64_t z = cfg_.z_dim;
    if (latents.ndim() != 4 || latents.dim(0) != z || latents.dtype() != DType::f32 || !latents.is_contiguous())
        return make_error(ErrorCode::shape, "wan vae: latents %s, expected contiguous f32 [%lld, F, h, w]", latents.str().c_str(),
                          (long long) z);
    if (f < 0 || f >= latents.dim(1))
        return make_error(ErrorCode::invalid_argument, "wan vae: frame %lld of latents %s", (long long) f, latents.str().c_str());
    const int64_t h = latents.dim(2), w = latents.dim(3);
    if (pushed_ > 0 && (h != h_ || w != w_))
        return make_error(ErrorCode::shape, "wan vae: latent size %lldx%lld changed mid-stream (was %lldx%lld); reset() first",
                          (long long) h, (long long) w, (long long) h_, (long long) w_);
    h_ = h, w_ = w;
    const DType act = be_.act_dtype();

    // Frame f of [z, F, h, w] is the row-strided [z, h*w] view; transposed to channels-last [h*w, z].
    AVS_ASSIGN_OR_RETURN(Tensor zt, be_.alloc(act, Shape{h * w, z}));
    AVS_TRY(be_.transpose(zt, latents.select(1, f).reshape(Shape{z, h * w})));
    // conv2 (de-normalisation folded in) -> VAE-space latent [1, h, w, z]; decoder.conv1 -> [1, h, w, 4d]
    AVS_ASSIGN_OR_RETURN(Tensor zv, be_.alloc(act, Shape{1, h, w, z}));
    AVS_TRY(be_.conv3d(zv, {zt.reshape(Shape{h, w, z})}, conv2_.w, &conv2_.b, k_pointwise));
    AVS_ASSIGN_OR_RETURN(Tensor x, be_.alloc(act, Shape{1, h, w, 4 * cfg_.dim}));
    AVS_TRY(causal_conv(x, {zv.select(0, 0)}, conv1_, conv1_hist_, k_conv3x3x3));

    // middle: Res, Attn, Res at (h, w), 4d channels
    AVS_ASSIGN_OR_RETURN(x, res_block(mid0_, x));
    AVS_TRY(attn_block(mid1_, x));
    AVS_ASSIGN_OR_RETURN(x, res_block(mid2_, x));
    // upsamples: [1, h, w, 4d] -> ... -> [T, 8h, 8w, d], T = 1 for the first latent, 4 after
    for (int idx : order_) {
        if (idx >= 0) {
            AVS_ASSIGN_OR_RETURN(x, res_block(res_[size_t(idx)], x));
        } else {
            AVS_ASSIGN_OR_RETURN(x, resample(resamples_[size_t(-idx - 1)], x));
        }
    }
    // head: RMS, SiLU, causal conv d -> 3: [T, 8h, 8w, 3]
    AVS_ASSIGN_OR_RETURN(auto n, norm_frames(x, head_gamma_, true));
    AVS_ASSIGN_OR_RETURN(Tensor y, be_.alloc(act, Shape{x.dim(0), x.dim(1), x.dim(2), 3}));
    AVS_TRY(causal_conv(y, n, head_, head_hist_, k_conv3x3x3));

    last_out_ = frames_of(y);
    out.insert(out.end(), last_out_.begin(), last_out_.end());
    ++pushed_;
    return {};
}

} // namespace avs
