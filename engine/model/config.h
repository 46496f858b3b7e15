// Model configuration of a Wan2.1-family DiT: our JSON format, the official Wan `config.json`,
// the diffusers `config.json`, and the built-in presets.
#pragma once

#include "engine/core/result.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace avs {

enum class Conditioning { text, audio };

struct ModelConfig {
    std::string         name = "custom";
    int                 dim          = 1536;
    int                 ffn_dim      = 8960;
    int                 heads        = 12;
    int                 layers       = 30;
    int                 in_channels  = 16;
    int                 out_channels = 16;
    std::array<int, 3>  patch_size   = {1, 2, 2};  // (t, h, w)
    int                 text_dim     = 4096;
    int                 text_len     = 512;
    int                 freq_dim     = 256;
    double              eps          = 1e-6;
    Conditioning        conditioning = Conditioning::text;
    // audio conditioning (docs/MODEL_FORMAT.md): each latent frame's window of `audio_window` log-mel
    // frames of `audio_mels` bands becomes `audio_tokens` tokens (audio_embedding.*), and a frame's
    // queries cross-attend to its own tokens only
    int                 audio_mels   = 80;
    int                 audio_window = 32;
    int                 audio_tokens = 4;

    int  head_dim() const { return dim / heads; }
    int  patch_volume() const { return patch_size[0] * patch_size[1] * patch_size[2]; }
    int  audio_token_features() const { return audio_window / audio_tokens * audio_mels; }  // per audio token
    // RoPE pairs per axis: the frame axis takes d - 4*(d/6) dims, height and width 2*(d/6) each.
    int  rope_pairs_t() const { return (head_dim() - 4 * (head_dim() / 6)) / 2; }
    int  rope_pairs_h() const { return (head_dim() / 6); }
    int  rope_pairs_w() const { return (head_dim() / 6); }
    uint64_t param_count() const;

    Status validate() const;  // every field in range, dims divisible; errors name the field
};

// Presets: "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "tiny".
Result<ModelConfig> config_preset(const std::string & name);
std::vector<std::string> config_preset_names();

// Parse JSON text in any accepted layout (ours, official Wan, diffusers). `origin` names the source
// in error messages.
Result<ModelConfig> config_from_json(const std::string & text, const std::string & origin);
Result<ModelConfig> config_from_file(const std::string & path);
// A preset name or a JSON file path.
Result<ModelConfig> config_resolve(const std::string & name_or_path);
std::string config_to_json(const ModelConfig & c);

const char * conditioning_name(Conditioning c);

} // namespace avs
