// Checkpoint key names. The engine's names are the official Wan2.1 keys ("blocks.3.self_attn.q.weight").
// Accepted as well: diffusers names (WanTransformer3DModel, including its norm2/norm3 swap) and the
// wrapper prefixes of Self-Forcing exports ("model.", "generator.", "generator_ema.") and ComfyUI
// repacks ("model.diffusion_model.", "diffusion_model.").
#pragma once

#include <string>
#include <vector>

namespace avs {

enum class KeyLayout { official, diffusers };

struct NameMap {
    std::string prefix;  // stripped from every key
    KeyLayout   layout = KeyLayout::official;

    // Official name for a checkpoint key (the key itself when nothing applies).
    std::string canonical(const std::string & key) const;
};

// Detect the prefix and the layout from the full key list.
NameMap detect_name_map(const std::vector<std::string> & keys);

// Official → diffusers (inverse of canonical for a diffusers map); used by tests and converters.
std::string official_to_diffusers(const std::string & key);

} // namespace avs
