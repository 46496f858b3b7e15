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
    // "auto" means the fastest backend that can run the model here. The CUDA backend's ops are not
    // built yet, so that is the CPU backend even on a GPU machine.
    if (name == "cpu" || name == "auto") return make_cpu_backend();
    if (name == "cuda") {
#if defined(AVS_HAVE_CUDA)
        if (cuda_device_count() <= 0)
            return make_error(ErrorCode::device, "backend 'cuda' requested but no CUDA device is present");
        return make_error(ErrorCode::unsupported, "the CUDA backend's DiT ops are not built yet; use --backend cpu");
#else
        return make_error(ErrorCode::unsupported, "backend 'cuda' requested but this build has no CUDA (AVS_CUDA=OFF)");
#endif
    }
    return make_error(ErrorCode::invalid_argument, "unknown backend '%s' (expected cpu, cuda or auto)", name.c_str());
}

} // namespace avs
