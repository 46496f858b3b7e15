// AVS_VK_CHECK: turn a failed Vulkan call into an avs::Status naming the VkResult, the statement and
// where it happened, so a driver failure reaches the UI as a message instead of an abort.
#pragma once

#include "engine/core/result.h"

#include <vulkan/vulkan.h>

namespace avs {

inline const char * vk_result_name(VkResult r) {
    switch (r) {
#define AVS_VK_NAME(x) \
    case x: return #x;
        AVS_VK_NAME(VK_SUCCESS)
        AVS_VK_NAME(VK_NOT_READY)
        AVS_VK_NAME(VK_TIMEOUT)
        AVS_VK_NAME(VK_EVENT_SET)
        AVS_VK_NAME(VK_EVENT_RESET)
        AVS_VK_NAME(VK_INCOMPLETE)
        AVS_VK_NAME(VK_ERROR_OUT_OF_HOST_MEMORY)
        AVS_VK_NAME(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        AVS_VK_NAME(VK_ERROR_INITIALIZATION_FAILED)
        AVS_VK_NAME(VK_ERROR_DEVICE_LOST)
        AVS_VK_NAME(VK_ERROR_MEMORY_MAP_FAILED)
        AVS_VK_NAME(VK_ERROR_LAYER_NOT_PRESENT)
        AVS_VK_NAME(VK_ERROR_EXTENSION_NOT_PRESENT)
        AVS_VK_NAME(VK_ERROR_FEATURE_NOT_PRESENT)
        AVS_VK_NAME(VK_ERROR_INCOMPATIBLE_DRIVER)
        AVS_VK_NAME(VK_ERROR_TOO_MANY_OBJECTS)
        AVS_VK_NAME(VK_ERROR_FORMAT_NOT_SUPPORTED)
        AVS_VK_NAME(VK_ERROR_FRAGMENTED_POOL)
        AVS_VK_NAME(VK_ERROR_UNKNOWN)
        AVS_VK_NAME(VK_ERROR_OUT_OF_POOL_MEMORY)
        AVS_VK_NAME(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        AVS_VK_NAME(VK_ERROR_FRAGMENTATION)
        AVS_VK_NAME(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        AVS_VK_NAME(VK_ERROR_SURFACE_LOST_KHR)
        AVS_VK_NAME(VK_ERROR_NATIVE_WINDOW_IN_USE_KHR)
        AVS_VK_NAME(VK_SUBOPTIMAL_KHR)
        AVS_VK_NAME(VK_ERROR_OUT_OF_DATE_KHR)
        AVS_VK_NAME(VK_ERROR_INCOMPATIBLE_DISPLAY_KHR)
        AVS_VK_NAME(VK_ERROR_VALIDATION_FAILED_EXT)
#undef AVS_VK_NAME
    default: return "VK_RESULT_UNKNOWN";
    }
}

// Basename of __FILE__, so messages stay short.
constexpr const char * vk_check_file_name(const char * path) {
    const char * base = path;
    for (const char * p = path; *p; ++p)
        if (*p == '/' || *p == '\\') base = p + 1;
    return base;
}

} // namespace avs

// Returns an ErrorCode::device Status from the enclosing function (works for Status and Result<T>).
#define AVS_VK_CHECK(stmt)                                                                              \
    do {                                                                                                \
        const VkResult avs_vk_r_ = (stmt);                                                              \
        if (avs_vk_r_ != VK_SUCCESS)                                                                    \
            return ::avs::make_error(::avs::ErrorCode::device, "%s returned %s (%s:%d)", #stmt,         \
                                     ::avs::vk_result_name(avs_vk_r_), ::avs::vk_check_file_name(__FILE__), \
                                     __LINE__);                                                         \
    } while (0)
