// DiT weights, named and nested as the official Wan2.1 checkpoint keys (blocks.N.self_attn.q.weight
// lives at blocks[N].self_attn.q.weight). Loading checks every tensor against the config.
#pragma once

#include "engine/core/result.h"
#include "engine/core/tensor.h"
#include "engine/model/config.h"

#include <functional>
#include <string>
#include <vector>

namespace avs {

class Backend;
class Checkpoint;

struct Linear {
    Tensor weight;  // [out, in]
    Tensor bias;    // [out]
};

struct AttnWeights {
    Linear q, k, v, o;
    Tensor norm_q, norm_k;  // RMSNorm over the full dim
};

struct BlockWeights {
    Tensor      modulation;     // [6*dim]   (checkpoint [1, 6, dim])
    AttnWeights self_attn;
    AttnWeights cross_attn;
    Tensor      norm3_weight;   // cross-attention LayerNorm (affine)
    Tensor      norm3_bias;
    Linear      ffn_0, ffn_2;
};

struct DitWeights {
    Linear                    patch_embedding;  // weight [dim, in*pt*ph*pw] (checkpoint [dim, in, pt, ph, pw])
    Linear                    text_embedding_0, text_embedding_2;    // text conditioning
    Linear                    audio_embedding_0, audio_embedding_2;  // audio conditioning: [dim, G*mels], [dim, dim]
    Tensor                    audio_embedding_pos;                   // [audio_tokens, dim]
    Linear                    time_embedding_0, time_embedding_2;
    Linear                    time_projection_1;
    std::vector<BlockWeights> blocks;
    Tensor                    head_modulation;  // [2*dim]   (checkpoint [1, 2, dim])
    Linear                    head_head;
};

// One expected tensor: its official name, the checkpoint shape, and where it goes (with the
// engine's internal shape, same element count).
struct WeightSlot {
    std::string name;
    Shape       checkpoint_shape;
    Shape       shape;
    Tensor *    dst;
};

std::vector<WeightSlot> weight_slots(DitWeights & w, const ModelConfig & c);

// Load from a checkpoint (official, diffusers or prefixed names), converting to the backend's
// weight dtype (norm and modulation vectors stay f32: they feed fp32 math). Errors name the tensor
// and the expected and found shapes; unknown tensors are errors too.
Status load_weights(Backend & backend, const ModelConfig & c, const Checkpoint & ckpt, DitWeights & w);

// Deterministic random weights (Kaiming-like scale, so activations stay O(1)) for --random-init.
Status random_weights(Backend & backend, const ModelConfig & c, uint64_t seed, DitWeights & w);

// Infer a config from tensor shapes (checkpoints without config.json, e.g. Self-Forcing exports).
Result<ModelConfig> infer_config(const Checkpoint & ckpt);

} // namespace avs
