#include "engine/decode/decoder.h"

namespace avs {

Result<std::unique_ptr<VideoDecoder>> load_decoder(Backend & backend, DecoderKind kind, const std::string & path,
                                                   uint64_t random_seed) {
    if (path.empty() && random_seed == 0)
        return make_error(ErrorCode::invalid_argument, "decoder: no weights file given (and no random seed)");
    switch (kind) {
    case DecoderKind::wan: return load_wan_vae_decoder(backend, path, random_seed);
    case DecoderKind::tiny: return load_taehv_decoder(backend, path, random_seed);
    }
    return make_error(ErrorCode::internal, "decoder: unknown kind");
}

} // namespace avs
