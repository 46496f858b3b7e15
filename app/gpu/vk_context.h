// VkContext: the Vulkan instance (with the Khronos validation layer when requested and installed), the
// window surface, the chosen physical device (a discrete GPU first; lavapipe works), one queue family
// that does both graphics and present, and the logical device.
#pragma once

#include "engine/core/result.h"

#include <vulkan/vulkan.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

struct GLFWwindow;

namespace avs {

// A persistently mapped host-visible buffer (coherent memory when the device offers it; otherwise the
// user flushes / invalidates ranges), e.g. staging for uploads and read-back targets.
struct MappedBuffer {
    VkBuffer       buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    void *         mapped = nullptr;
    VkDeviceSize   size = 0;
    bool           coherent = true;
};

struct VkContextOptions {
    bool validation = false;  // enable VK_LAYER_KHRONOS_validation when it is installed
    // Substring of the device name to prefer (e.g. "llvmpipe"); empty: rank by device type.
    std::string prefer_device;
};

class VkContext {
public:
    static Result<std::unique_ptr<VkContext>> create(GLFWwindow * window, const VkContextOptions & opt);
    ~VkContext();
    VkContext(const VkContext &) = delete;
    VkContext & operator=(const VkContext &) = delete;

    VkInstance       instance() const { return instance_; }
    VkSurfaceKHR     surface() const { return surface_; }
    VkPhysicalDevice physical_device() const { return phys_; }
    VkDevice         device() const { return device_; }
    VkQueue          queue() const { return queue_; }
    uint32_t         queue_family() const { return queue_family_; }
    const VkPhysicalDeviceProperties & properties() const { return props_; }
    const std::string & device_name() const { return device_name_; }
    bool validation_enabled() const { return messenger_ != VK_NULL_HANDLE; }
    // Validation messages of severity error seen so far (0 when validation is off).
    int validation_errors() const { return validation_errors_.load(); }

    // A memory type with `type_bits` allowed and all of `props`; UINT32_MAX when none.
    uint32_t find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags props) const;
    // (Re)create `b` with at least `bytes` for `usage` when it is smaller; `what` names it in errors.
    Status ensure_mapped_buffer(MappedBuffer & b, VkDeviceSize bytes, VkBufferUsageFlags usage, const char * what);
    void   destroy_mapped_buffer(MappedBuffer & b);
    // Record `fn` into a one-shot command buffer, submit it and wait (setup work only, never per frame).
    Status run_once(const std::function<void(VkCommandBuffer)> & fn);

private:
    VkContext() = default;
    static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                   VkDebugUtilsMessageTypeFlagsEXT type,
                                                   const VkDebugUtilsMessengerCallbackDataEXT * data, void * user);
    Status init(GLFWwindow * window, const VkContextOptions & opt);

    VkInstance               instance_ = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
    VkSurfaceKHR             surface_ = VK_NULL_HANDLE;
    VkPhysicalDevice         phys_ = VK_NULL_HANDLE;
    VkDevice                 device_ = VK_NULL_HANDLE;
    VkQueue                  queue_ = VK_NULL_HANDLE;
    uint32_t                 queue_family_ = 0;
    VkCommandPool            once_pool_ = VK_NULL_HANDLE;
    VkPhysicalDeviceProperties       props_{};
    VkPhysicalDeviceMemoryProperties mem_props_{};
    std::string              device_name_;
    std::atomic<int>         validation_errors_{0};
};

} // namespace avs
