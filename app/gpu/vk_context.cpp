#include "app/gpu/vk_context.h"

#include "app/gpu/vk_check.h"
#include "engine/core/log.h"

#define GLFW_INCLUDE_VULKAN
#include <GLFW/glfw3.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace avs {

namespace {

constexpr const char * k_validation_layer = "VK_LAYER_KHRONOS_validation";

bool has_layer(const char * name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, nullptr) != VK_SUCCESS) return false;
    std::vector<VkLayerProperties> layers(n);
    if (vkEnumerateInstanceLayerProperties(&n, layers.data()) != VK_SUCCESS) return false;
    for (const auto & l : layers)
        if (std::strcmp(l.layerName, name) == 0) return true;
    return false;
}

bool has_instance_extension(const char * name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(nullptr, &n, nullptr) != VK_SUCCESS) return false;
    std::vector<VkExtensionProperties> exts(n);
    if (vkEnumerateInstanceExtensionProperties(nullptr, &n, exts.data()) != VK_SUCCESS) return false;
    for (const auto & e : exts)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

bool has_device_extension(VkPhysicalDevice pd, const char * name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr) != VK_SUCCESS) return false;
    std::vector<VkExtensionProperties> exts(n);
    if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data()) != VK_SUCCESS) return false;
    for (const auto & e : exts)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

} // namespace

VKAPI_ATTR VkBool32 VKAPI_CALL VkContext::on_debug(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                    VkDebugUtilsMessageTypeFlagsEXT,
                                                    const VkDebugUtilsMessengerCallbackDataEXT * data, void * user) {
    auto * self = static_cast<VkContext *>(user);
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        self->validation_errors_.fetch_add(1);
        AVS_LOG_ERROR("vulkan validation: %s", data && data->pMessage ? data->pMessage : "?");
    } else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        AVS_LOG_WARN("vulkan validation: %s", data && data->pMessage ? data->pMessage : "?");
    }
    return VK_FALSE;
}

Result<std::unique_ptr<VkContext>> VkContext::create(GLFWwindow * window, const VkContextOptions & opt) {
    if (!window) return make_error(ErrorCode::invalid_argument, "VkContext: no window");
    std::unique_ptr<VkContext> ctx(new VkContext());
    AVS_TRY(ctx->init(window, opt));
    return ctx;
}

Status VkContext::init(GLFWwindow * window, const VkContextOptions & opt) {
    // ---- instance: the surface extensions GLFW needs, plus debug utils with validation
    uint32_t     n_glfw = 0;
    const char ** glfw_exts = glfwGetRequiredInstanceExtensions(&n_glfw);
    if (!glfw_exts)
        return make_error(ErrorCode::device, "Vulkan: no driver offers window surfaces (no Vulkan driver/ICD found -- "
                                             "install mesa-vulkan-drivers for lavapipe -- or no window-system extension); "
                                             "VK_ICD_FILENAMES=%s", std::getenv("VK_ICD_FILENAMES") ? std::getenv("VK_ICD_FILENAMES") : "(unset)");
    std::vector<const char *> exts(glfw_exts, glfw_exts + n_glfw);
    std::vector<const char *> layers;
    bool validation = false;
    if (opt.validation) {
        if (has_layer(k_validation_layer) && has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            layers.push_back(k_validation_layer);
            exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
            validation = true;
        } else {
            AVS_LOG_WARN("Vulkan: validation requested but %s is not installed; continuing without it", k_validation_layer);
        }
    }

    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "AvatarStream";
    app.pEngineName = "avs";
    app.apiVersion = VK_API_VERSION_1_1;  // classic render pass; nothing newer is needed
    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &app;
    ici.enabledExtensionCount = uint32_t(exts.size());
    ici.ppEnabledExtensionNames = exts.data();
    ici.enabledLayerCount = uint32_t(layers.size());
    ici.ppEnabledLayerNames = layers.data();
    VkDebugUtilsMessengerCreateInfoEXT dci{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    dci.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    dci.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    dci.pfnUserCallback = &VkContext::on_debug;
    dci.pUserData = this;
    AVS_VK_CHECK(vkCreateInstance(&ici, nullptr, &instance_));
    if (validation) {
        auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
        if (create_messenger) AVS_VK_CHECK(create_messenger(instance_, &dci, nullptr, &messenger_));
    }

    AVS_VK_CHECK(glfwCreateWindowSurface(instance_, window, nullptr, &surface_));

    // ---- physical device: needs swapchain support and a queue family with graphics + present
    uint32_t n_dev = 0;
    AVS_VK_CHECK(vkEnumeratePhysicalDevices(instance_, &n_dev, nullptr));
    std::vector<VkPhysicalDevice> devs(n_dev);
    if (n_dev) AVS_VK_CHECK(vkEnumeratePhysicalDevices(instance_, &n_dev, devs.data()));
    if (devs.empty()) {
        const char * icd = std::getenv("VK_ICD_FILENAMES");
        return make_error(ErrorCode::device, "Vulkan: no physical device found (install a driver, e.g. mesa-vulkan-drivers "
                                             "for lavapipe; VK_ICD_FILENAMES=%s)", icd ? icd : "(unset)");
    }
    std::string rejected;
    int best_score = -1;
    for (VkPhysicalDevice pd : devs) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pd, &p);
        if (!has_device_extension(pd, VK_KHR_SWAPCHAIN_EXTENSION_NAME)) {
            rejected += std::string(" ") + p.deviceName + " (no swapchain);";
            continue;
        }
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, nullptr);
        std::vector<VkQueueFamilyProperties> qf(nq);
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf.data());
        int family = -1;
        for (uint32_t i = 0; i < nq && family < 0; ++i) {
            VkBool32 present = VK_FALSE;
            if (vkGetPhysicalDeviceSurfaceSupportKHR(pd, i, surface_, &present) != VK_SUCCESS) continue;
            if ((qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) && present) family = int(i);
        }
        if (family < 0) {
            rejected += std::string(" ") + p.deviceName + " (no graphics+present queue for this window);";
            continue;
        }
        int score = type_rank(p.deviceType);
        if (!opt.prefer_device.empty() && std::strstr(p.deviceName, opt.prefer_device.c_str())) score += 100;
        if (score > best_score) {
            best_score = score, phys_ = pd, queue_family_ = uint32_t(family), props_ = p;
        }
    }
    if (!phys_)
        return make_error(ErrorCode::device, "Vulkan: none of %u device(s) can present to this window:%s", n_dev,
                          rejected.c_str());
    device_name_ = props_.deviceName;
    vkGetPhysicalDeviceMemoryProperties(phys_, &mem_props_);

    // ---- logical device with one queue
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &prio;
    const char * dev_exts[] = {VK_KHR_SWAPCHAIN_EXTENSION_NAME};
    VkDeviceCreateInfo dci2{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci2.queueCreateInfoCount = 1;
    dci2.pQueueCreateInfos = &qci;
    dci2.enabledExtensionCount = 1;
    dci2.ppEnabledExtensionNames = dev_exts;
    AVS_VK_CHECK(vkCreateDevice(phys_, &dci2, nullptr, &device_));
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
    pci.queueFamilyIndex = queue_family_;
    AVS_VK_CHECK(vkCreateCommandPool(device_, &pci, nullptr, &once_pool_));
    AVS_LOG_INFO("Vulkan: %s (API %u.%u, queue family %u%s)", device_name_.c_str(), VK_API_VERSION_MAJOR(props_.apiVersion),
                 VK_API_VERSION_MINOR(props_.apiVersion), queue_family_, validation ? ", validation on" : "");
    return {};
}

VkContext::~VkContext() {
    if (device_) {
        vkDeviceWaitIdle(device_);
        if (once_pool_) vkDestroyCommandPool(device_, once_pool_, nullptr);
        vkDestroyDevice(device_, nullptr);
    }
    if (surface_) vkDestroySurfaceKHR(instance_, surface_, nullptr);
    if (messenger_) {
        auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
        if (destroy) destroy(instance_, messenger_, nullptr);
    }
    if (instance_) vkDestroyInstance(instance_, nullptr);
}

uint32_t VkContext::find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags props) const {
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i)
        if ((type_bits & (1u << i)) && (mem_props_.memoryTypes[i].propertyFlags & props) == props) return i;
    return UINT32_MAX;
}

void VkContext::destroy_mapped_buffer(MappedBuffer & b) {
    if (b.mapped) vkUnmapMemory(device_, b.memory);
    if (b.buffer) vkDestroyBuffer(device_, b.buffer, nullptr);
    if (b.memory) vkFreeMemory(device_, b.memory, nullptr);
    b = MappedBuffer{};
}

Status VkContext::ensure_mapped_buffer(MappedBuffer & b, VkDeviceSize bytes, VkBufferUsageFlags usage, const char * what) {
    if (b.buffer && b.size >= bytes) return {};
    destroy_mapped_buffer(b);
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = bytes;
    bi.usage = usage;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    AVS_VK_CHECK(vkCreateBuffer(device_, &bi, nullptr, &b.buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_, b.buffer, &req);
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = find_memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    b.coherent = ai.memoryTypeIndex != UINT32_MAX;
    if (!b.coherent) ai.memoryTypeIndex = find_memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    if (ai.memoryTypeIndex == UINT32_MAX) {
        destroy_mapped_buffer(b);
        return make_error(ErrorCode::device, "Vulkan: no host-visible memory for the %s", what);
    }
    AVS_VK_CHECK(vkAllocateMemory(device_, &ai, nullptr, &b.memory));
    AVS_VK_CHECK(vkBindBufferMemory(device_, b.buffer, b.memory, 0));
    AVS_VK_CHECK(vkMapMemory(device_, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped));
    b.size = bytes;
    return {};
}

Status VkContext::run_once(const std::function<void(VkCommandBuffer)> & fn) {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = once_pool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    AVS_VK_CHECK(vkAllocateCommandBuffers(device_, &ai, &cmd));
    struct Free {
        VkDevice d; VkCommandPool p; VkCommandBuffer c;
        ~Free() { vkFreeCommandBuffers(d, p, 1, &c); }
    } free_cmd{device_, once_pool_, cmd};
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    AVS_VK_CHECK(vkBeginCommandBuffer(cmd, &bi));
    fn(cmd);
    AVS_VK_CHECK(vkEndCommandBuffer(cmd));
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    AVS_VK_CHECK(vkQueueSubmit(queue_, 1, &si, VK_NULL_HANDLE));
    AVS_VK_CHECK(vkQueueWaitIdle(queue_));
    return {};
}

} // namespace avs
