// The embedded default avatar (assets/: dit.safetensors, decoder.safetensors, config.json,
// sample_speech.wav), used by avs-gen and the app when no model is given, and the inference
// settings a checkpoint's config.json recommends ("defaults": steps, shift, window, sinks, ...).
#pragma once

#include "engine/core/result.h"

#include <optional>
#include <string>

namespace avs {

struct DefaultModel {
    std::string dir, dit, decoder, config, sample_wav;
};
// $AVS_ASSETS if set, else the source tree's assets/ (compiled in); an error names the missing file.
Result<DefaultModel> default_model();

struct InferenceDefaults {
    std::optional<int>         steps, chunk_frames, window, sinks;
    std::optional<double>      shift;
    std::optional<std::string> rope_mode, cache_mode;
    std::optional<int>         width, height;  // pixels ("video" object)
};
// From a config JSON's "defaults" and "video" objects; absent fields stay empty. Errors name the field.
Result<InferenceDefaults> inference_defaults(const std::string & config_json_path);

} // namespace avs
