// The exact Wan2.1 VAE decoder (wan21-model.md section 3), streaming: one latent frame per push,
// bit-for-bit the official per-latent decode loop up to float rounding. Written only against Backend
// ops, so the same code runs on the CPU twin (fp32) and on CUDA (bf16 activations).
//
// Streaming state: every temporal-kernel-3 causal conv keeps references to its last two input frames
// (an undefined Tensor is a zero frame, so the causal zero padding costs nothing); each conv input
// is its own per-frame allocation, so a history keeps alive exactly the frames it needs and no
// frame is ever copied into a cache. See WanVaeDecoder::state_bytes for the sizes.
#pragma once

#include "engine/decode/decode_weights.h"
#include "engine/decode/decoder.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace avs {

class WanKeyMap;  // checkpoint key layout (wan_vae.cpp)

// Widths, inferred from `decoder.conv1.weight` [4*dim, z_dim, 3, 3, 3] (dim 96, z_dim 16 for Wan2.1).
// The decoder's stages run at 4*dim, 4*dim, 2*dim and dim channels.
struct WanVaeConfig {
    int64_t dim   = 96;
    int64_t z_dim = 16;
};

// Wan's latent normalisation (DiT space <-> VAE space): z_vae = z_dit * std + mean, per channel.
extern const float kWanVaeLatentMean[16];
extern const float kWanVaeLatentStd[16];

// The last two input frames of one causal conv with temporal kernel 3, oldest first.
struct CausalHistory {
    std::array<Tensor, 2> prev;
    void clear() { prev = {}; }
};

struct WanConv {
    Tensor w;  // GEMM layout [Cout, kt*kh*kw*Cin], backend weight dtype
    Tensor b;  // f32 [Cout]
};

// ResidualBlock(cin, cout): x + conv6(silu(rms3(conv2(silu(rms0(x)))))), shortcut 1x1 when cin != cout.
struct WanResBlock {
    int64_t       cin = 0, cout = 0;
    Tensor        gamma0, gamma3;       // residual.0.gamma [cin], residual.3.gamma [cout] (f32)
    WanConv       conv2, conv6;         // residual.2 (cin -> cout, 3x3x3), residual.6 (cout -> cout, 3x3x3)
    WanConv       shortcut;             // shortcut (1x1x1), undefined when cin == cout
    CausalHistory hist2, hist6;         // inputs of residual.2 / residual.6
};

// AttentionBlock(C): x + proj(attn(q, k, v)), single head over one frame's H*W tokens; to_qkv split.
struct WanAttnBlock {
    Tensor  gamma;                      // norm.gamma [C]
    WanConv q, k, v, proj;              // 1x1: q/k/v are the output-channel thirds of to_qkv
};

// Resample 'upsample3d' (temporal) or 'upsample2d': [time_conv ->] nearest x2 -> 3x3 conv (c -> c/2).
struct WanResample {
    bool          temporal = false;
    int64_t       c = 0;
    WanConv       time_conv;            // (3,1,1) conv c -> 2c (upsample3d only)
    WanConv       conv;                 // resample.1 (3x3, c -> c/2)
    bool          started = false;      // false before the first call: that call skips time_conv (the
                                        // official 'Rep' state), so the second one starts from zero history
    CausalHistory hist;                 // time_conv inputs
};

class WanVaeDecoder final : public VideoDecoder {
public:
    // From a checkpoint (official, diffusers or prefixed official key names; encoder keys ignored),
    // or with an empty path random weights from `random_seed` at the widths of `cfg` (default: the
    // real model). With a checkpoint, `cfg` is ignored: the widths come from the tensor shapes.
    static Result<std::unique_ptr<WanVaeDecoder>> load(Backend & backend, const std::string & path, uint64_t random_seed,
                                                       const WanVaeConfig & cfg = {});

    const char * name() const override { return "wan2.1-vae"; }
    // Returns the decoder output before the official clamp to [-1, 1] (values can exceed it); the
    // clamp happens at display conversion: display = clamp(0.5 x + 0.5, 0, 1).
    Status push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) override;
    void   reset() override;
    float  out_scale() const override { return 0.5f; }
    float  out_offset() const override { return 0.5f; }
    uint64_t weight_bytes() const override { return weight_bytes_; }
    // Bytes of the buffers the causal histories keep alive (distinct buffers counted once) plus the
    // frames handed out by the last push. At 480x832 (60x104 latents) the histories hold 2 frames of
    // every cached conv: 944 M elements, 1.89 GB in bf16, 3.78 GB in fp32 -- the same 2 frames per
    // conv the official cache holds (a conv needs them), minus its clone/cat copies per call.
    uint64_t state_bytes() const override;

    const WanVaeConfig & config() const { return cfg_; }
    int64_t              pushed() const { return pushed_; }

private:
    WanVaeDecoder(Backend & be, const WanVaeConfig & cfg) : be_(be), cfg_(cfg) {}
    Status load_weights(DecodeWeightSource & src, const WanKeyMap & keys, const Checkpoint * ckpt);

    // The blocks (wan_vae_blocks.cpp); activations are frames [T, H, W, C] in the act dtype.
    Result<Tensor> res_block(WanResBlock & b, const Tensor & x);
    Status         attn_block(const WanAttnBlock & a, const Tensor & x);
    Result<Tensor> resample(WanResample & r, const Tensor & x);
    Result<std::vector<Tensor>> norm_frames(const Tensor & x, const Tensor & gamma, bool silu);
    Status causal_conv(const Tensor & y, const std::vector<Tensor> & frames, const WanConv & c, CausalHistory & h,
                       const Backend::ConvSpec & spec);

    Backend &    be_;
    WanVaeConfig cfg_;
    uint64_t     weight_bytes_ = 0;

    WanConv                  conv2_;      // top-level conv2 with the de-normalisation folded in (z -> z, 1x1)
    WanConv                  conv1_;      // decoder.conv1 (z -> 4 dim, 3x3x3)
    CausalHistory            conv1_hist_;
    WanResBlock              mid0_, mid2_;
    WanAttnBlock             mid1_;
    std::vector<WanResBlock> res_;        // the ResidualBlocks of decoder.upsamples, in order
    std::vector<WanResample> resamples_;  // upsamples.3, .7, .11
    std::vector<int>         order_;      // decoder.upsamples.N: >= 0 index into res_, < 0 -(1 + index into resamples_)
    Tensor                   head_gamma_; // decoder.head.0.gamma [dim]
    WanConv                  head_;       // decoder.head.2 (dim -> 3, 3x3x3)
    CausalHistory            head_hist_;

    int64_t             pushed_ = 0, h_ = 0, w_ = 0;
    std::vector<Tensor> last_out_;
};

} // namespace avs
