// VideoDecoder: latent frames in, pixel frames out, one latent at a time with streaming state, so
// a chunk's frames can be decoded as soon as the DiT commits it. Decoders are written against the
// Backend ops (conv3d, rms_norm, ...) and run on the CPU twin or on CUDA unchanged.
#pragma once

#include "engine/backend/backend.h"
#include "engine/core/result.h"
#include "engine/core/tensor.h"

#include <memory>
#include <string>
#include <vector>

namespace avs {

enum class DecoderKind { wan, tiny };

class VideoDecoder {
public:
    virtual ~VideoDecoder() = default;
    virtual const char * name() const = 0;

    // Decode latent frame `f` of `latents` [16, F, h, w] (the DiT's layout and normalised space,
    // f32 on the backend's device). Appends the pixel frames this call completes to `out`, each a
    // [H, W, 3] tensor (backend act dtype, H = 8h, W = 8w) valid until the next push or reset.
    // Over a stream, T latents give 1 + 4 (T - 1) frames.
    virtual Status push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) = 0;
    // Forget the streaming state: the next push starts a new video.
    virtual void reset() = 0;

    // Output range: display value in [0, 1] = out_scale * x + out_offset.
    virtual float out_scale() const = 0;
    virtual float out_offset() const = 0;
    // Device bytes held: weights, and the streaming state + scratch at the current resolution.
    virtual uint64_t weight_bytes() const = 0;
    virtual uint64_t state_bytes() const = 0;
};

// Load a decoder from a safetensors checkpoint in our key layout (tools/convert_*.py), or, with an
// empty path and random_seed != 0, random weights (benchmarks, tests).
Result<std::unique_ptr<VideoDecoder>> load_decoder(Backend & backend, DecoderKind kind, const std::string & path,
                                                   uint64_t random_seed = 0);

// The two implementations (engine/decode/wan_vae.cpp, engine/decode/taehv.cpp).
Result<std::unique_ptr<VideoDecoder>> load_wan_vae_decoder(Backend & backend, const std::string & path, uint64_t random_seed);
Result<std::unique_ptr<VideoDecoder>> load_taehv_decoder(Backend & backend, const std::string & path, uint64_t random_seed);

} // namespace avs
