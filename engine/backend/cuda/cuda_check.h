// AVS_CUDA_CHECK: turns a failing CUDA runtime call into a Status naming the statement and file:line.
// Library code returns it; only main() decides to exit.
#pragma once

#include "engine/core/result.h"

#include <cuda_runtime.h>

#define AVS_CUDA_CHECK(stmt)                                                                                   \
    do {                                                                                                       \
        const cudaError_t avs_cuda_err_ = (stmt);                                                              \
        if (avs_cuda_err_ != cudaSuccess)                                                                      \
            return ::avs::make_error(::avs::ErrorCode::device, "CUDA error %s (%s) in '%s' at %s:%d",         \
                                     cudaGetErrorName(avs_cuda_err_), cudaGetErrorString(avs_cuda_err_), #stmt, \
                                     __FILE__, __LINE__);                                                      \
    } while (0)
