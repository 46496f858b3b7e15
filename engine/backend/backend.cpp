#include "engine/backend/backend.h"

#include "engine/backend/cuda/cuda_device.h"

namespace avs {

bool cuda_available() {
#if defined(AVS_HAVE_CUDA)
    return cuda_device_count() > 0;
#else
    return false;
#endif
}

Result<std::unique_ptr<Backend>> make_backend(const std::string & name) {
    if (name == "cpu" || (name == "auto" && !cuda_available())) return make_cpu_backend();
    if (name == "cuda" || name == "auto") {
#if defined(AVS_HAVE_CUDA)
        if (cuda_device_count() <= 0)
            return make_error(ErrorCode::device, "backend 'cuda' requested but no CUDA device is present");
        return make_cuda_backend(0);
#else
        return make_error(ErrorCode::unsupported, "backend 'cuda' requested but this build has no CUDA (AVS_CUDA=OFF)");
#endif
    }
    return make_error(ErrorCode::invalid_argument, "unknown backend '%s' (expected cpu, cuda or auto)", name.c_str());
}

} // namespace avs
