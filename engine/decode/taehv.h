// TAEHV tiny video decoder (madebyollin/taehv, taew2_1 weights; wan21-model.md section 4), streaming:
// one latent frame per push, equal to the reference's whole-sequence decode up to float rounding.
// Written only against Backend ops, so the same code runs on the CPU twin (fp32) and on CUDA (bf16
// activations).
//
// Layers (checkpoint key prefix decoder.N), per latent frame [h, w]:
//   0 Clamp 3 tanh(x/3), 1 conv 3x3 16 -> c0 (+b), 2 ReLU
//   3-5   MemBlock(c0) at [h, w]     6 Upsample x2, 7  TGrow(c0, 1), 8  conv c0 -> c1 (no bias)
//   9-11  MemBlock(c1) at [2h, 2w]   12 Upsample x2, 13 TGrow(c1, 2), 14 conv c1 -> c2 (no bias)
//   15-17 MemBlock(c2) at [4h, 4w]   18 Upsample x2, 19 TGrow(c2, 2), 20 conv c2 -> c3 (no bias)
//   21 ReLU, 22 conv 3x3 c3 -> 3 (+b) at [8h, 8w]; the stream's first 3 frames are dropped.
// Streaming state: each MemBlock's previous input frame (9 frames in all), kept by swapping two
// preallocated buffers per block, so no frame is ever copied into a cache.
#pragma once

#include "engine/decode/decode_weights.h"
#include "engine/decode/decoder.h"

#include <array>
#include <memory>
#include <string>

namespace avs {

// Widths: the latent channels and c0..c3 above (taew2_1: 16 and 256, 128, 64, 64). From a checkpoint
// they come from the shapes of decoder.1/8/14/20.weight, so a narrower test model loads the same way.
struct TaehvConfig {
    int64_t                latent = 16;
    std::array<int64_t, 4> widths = {256, 128, 64, 64};
};

struct TaehvConv {
    Tensor w;  // GEMM layout [Cout, kt*kh*kw*Cin], backend weight dtype
    Tensor b;  // f32 [Cout]; undefined for the bias-free convs
};

// MemBlock(C): ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(cat[x_t, past]))))) + x_t). conv.0 runs as one conv
// with temporal kernel 2 over the frames {past, x_t}: an undefined past is the zero frame of t = 0.
struct TaehvMemBlock {
    TaehvConv             conv0, conv2, conv4;
    std::array<Tensor, 2> buf;          // [H, W, C] each: buf[cur] receives the next input, buf[cur ^ 1] is the past
    int                   cur = 0;
    bool                  has_past = false;

    const Tensor & next_input() const { return buf[size_t(cur)]; }
};

// Three MemBlocks, then Upsample x2, TGrow and the 3x3 conv into the next stage's width. The TGrow
// 1x1 conv runs before the upsample (they commute; 4x less work) and the upsample is fused into the
// following conv's read.
struct TaehvStage {
    int64_t                      c = 0, stride = 1;  // channels; TGrow stride (frames per input frame)
    std::array<TaehvMemBlock, 3> blocks;
    TaehvConv                    tgrow;             // decoder.{7,13,19}.conv: [stride*c, c], no bias
    TaehvConv                    proj;              // decoder.{8,14,20}: 3x3 c -> next width, no bias
    Tensor                       a, b;              // scratch [H, W, c]; `a` ends up holding the stage output
    Tensor                       grown;             // TGrow output [H, W, stride*c]
};

class TaehvDecoder final : public VideoDecoder {
public:
    // From a checkpoint in the taew2_1 key layout (optionally under a prefix such as "model."; encoder
    // keys ignored; a TGrow weight with extra rows keeps its last ones, as the reference loader's
    // patch_tgrow_layers does), or with an empty path random weights from `random_seed` at the widths
    // of `cfg`. With a checkpoint `cfg` is ignored.
    static Result<std::unique_ptr<TaehvDecoder>> load(Backend & backend, const std::string & path, uint64_t random_seed,
                                                      const TaehvConfig & cfg = {});

    const char * name() const override { return "taehv"; }
    // Appends the frames this latent completes: 1 for the stream's first latent (its 3 startup frames
    // are trimmed, and not even computed past decoder.17), 4 after. The frames are [8h, 8w, 3] in the
    // act dtype, the decoder output BEFORE the reference's final clamp to [0, 1] (values may leave
    // [0, 1]); display conversion clamps (out_scale 1, out_offset 0). They live in buffers owned by
    // the decoder, overwritten by the next push.
    Status push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) override;
    // Forgets the MemBlock memories; the buffers stay allocated for the next stream.
    void   reset() override;
    float  out_scale() const override { return 1.0f; }
    float  out_offset() const override { return 0.0f; }
    uint64_t weight_bytes() const override { return weight_bytes_; }
    // All activation buffers at the current resolution (memories, scratch, outputs). At 60x104 latents
    // (480x832) that is 140 M elements: 0.28 GB in bf16, 0.56 GB in fp32.
    uint64_t state_bytes() const override;

    const TaehvConfig & config() const { return cfg_; }
    int64_t             pushed() const { return pushed_; }

private:
    TaehvDecoder(Backend & be, const TaehvConfig & cfg) : be_(be), cfg_(cfg) {}
    Status load_weights(DecodeWeightSource & src, const std::string & prefix, const Checkpoint * ck);
    Status ensure_buffers(int64_t h, int64_t w);
    Status mem_block(TaehvMemBlock & m, TaehvStage & st, const Tensor & dst);
    Status run_stage(int s, std::vector<Tensor> & out);

    Backend &   be_;
    TaehvConfig cfg_;
    uint64_t    weight_bytes_ = 0;

    TaehvConv                 conv1_;   // decoder.1: 3x3 latent -> c0 (+b)
    std::array<TaehvStage, 3> stages_;
    TaehvConv                 conv22_;  // decoder.22: 3x3 c3 -> 3 (+b)

    int64_t               pushed_ = 0, raw_frames_ = 0, n_out_ = 0, h_ = 0, w_ = 0;
    Tensor                zt_;          // the latent frame, channels-last [h*w, latent]
    Tensor                head_;        // decoder.20 output [8h, 8w, c3]
    std::array<Tensor, 4> out_;         // output frames [8h, 8w, 3]
};

} // namespace avs
