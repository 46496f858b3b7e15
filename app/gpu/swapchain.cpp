#include "app/gpu/swapchain.h"

#include "app/gpu/vk_check.h"

#include <algorithm>

namespace avs {

VkSurfaceFormatKHR choose_surface_format(const std::vector<VkSurfaceFormatKHR> & formats) {
    if (formats.empty()) return {VK_FORMAT_UNDEFINED, VK_COLOR_SPACE_SRGB_NONLINEAR_KHR};
    // A single UNDEFINED entry means "anything goes" (old drivers).
    if (formats.size() == 1 && formats[0].format == VK_FORMAT_UNDEFINED)
        return {VK_FORMAT_B8G8R8A8_UNORM, formats[0].colorSpace};
    for (VkFormat want : {VK_FORMAT_B8G8R8A8_UNORM, VK_FORMAT_R8G8B8A8_UNORM})
        for (const auto & f : formats)
            if (f.format == want && f.colorSpace == VK_COLOR_SPACE_SRGB_NONLINEAR_KHR) return f;
    return formats[0];
}

VkPresentModeKHR choose_present_mode(const std::vector<VkPresentModeKHR> & modes, bool vsync) {
    if (!vsync) {
        for (VkPresentModeKHR want : {VK_PRESENT_MODE_MAILBOX_KHR, VK_PRESENT_MODE_IMMEDIATE_KHR})
            if (std::find(modes.begin(), modes.end(), want) != modes.end()) return want;
    }
    return VK_PRESENT_MODE_FIFO_KHR;  // always supported
}

VkExtent2D choose_extent(const VkSurfaceCapabilitiesKHR & caps, int fb_w, int fb_h) {
    VkExtent2D e;
    if (caps.currentExtent.width != UINT32_MAX) {
        e = caps.currentExtent;
    } else {
        e.width = uint32_t(std::max(fb_w, 0));
        e.height = uint32_t(std::max(fb_h, 0));
        if (e.width && e.height) {
            e.width = std::clamp(e.width, caps.minImageExtent.width, caps.maxImageExtent.width);
            e.height = std::clamp(e.height, caps.minImageExtent.height, caps.maxImageExtent.height);
        }
    }
    // Some platforms keep reporting the old extent while the framebuffer is 0x0: trust the window.
    if (fb_w <= 0 || fb_h <= 0 || caps.maxImageExtent.width == 0 || caps.maxImageExtent.height == 0) e = {0, 0};
    return e;
}

Status Swapchain::init(const SwapchainOptions & opt) {
    opt_ = opt;
    uint32_t n = 0;
    AVS_VK_CHECK(vkGetPhysicalDeviceSurfaceFormatsKHR(ctx_.physical_device(), ctx_.surface(), &n, nullptr));
    std::vector<VkSurfaceFormatKHR> formats(n);
    if (n) AVS_VK_CHECK(vkGetPhysicalDeviceSurfaceFormatsKHR(ctx_.physical_device(), ctx_.surface(), &n, formats.data()));
    format_ = choose_surface_format(formats);
    if (format_.format == VK_FORMAT_UNDEFINED)
        return make_error(ErrorCode::device, "Vulkan: the window surface offers no formats");
    return {};
}

void Swapchain::destroy_views() {
    VkDevice d = ctx_.device();
    for (auto fb : framebuffers_) vkDestroyFramebuffer(d, fb, nullptr);
    for (auto v : views_) vkDestroyImageView(d, v, nullptr);
    for (auto s : render_finished_) vkDestroySemaphore(d, s, nullptr);
    framebuffers_.clear(), views_.clear(), render_finished_.clear(), images_.clear();
}

Swapchain::~Swapchain() {
    if (ctx_.device()) vkDeviceWaitIdle(ctx_.device());
    destroy_views();
    if (swapchain_) vkDestroySwapchainKHR(ctx_.device(), swapchain_, nullptr);
}

Result<bool> Swapchain::recreate(int fb_w, int fb_h, VkRenderPass render_pass) {
    VkPhysicalDevice pd = ctx_.physical_device();
    VkDevice         d = ctx_.device();
    VkSurfaceCapabilitiesKHR caps;
    AVS_VK_CHECK(vkGetPhysicalDeviceSurfaceCapabilitiesKHR(pd, ctx_.surface(), &caps));
    const VkExtent2D extent = choose_extent(caps, fb_w, fb_h);
    if (extent.width == 0 || extent.height == 0) return false;

    uint32_t n_modes = 0;
    AVS_VK_CHECK(vkGetPhysicalDeviceSurfacePresentModesKHR(pd, ctx_.surface(), &n_modes, nullptr));
    std::vector<VkPresentModeKHR> modes(n_modes);
    if (n_modes) AVS_VK_CHECK(vkGetPhysicalDeviceSurfacePresentModesKHR(pd, ctx_.surface(), &n_modes, modes.data()));

    // The old swapchain's images may still be in flight: wait before they are retired.
    AVS_VK_CHECK(vkDeviceWaitIdle(d));

    uint32_t count = caps.minImageCount + 1;
    if (caps.maxImageCount > 0) count = std::min(count, caps.maxImageCount);
    VkImageUsageFlags usage = VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT;
    transfer_src_ = opt_.transfer_src && (caps.supportedUsageFlags & VK_IMAGE_USAGE_TRANSFER_SRC_BIT);
    if (transfer_src_) usage |= VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    VkCompositeAlphaFlagBitsKHR alpha = VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR;
    if (!(caps.supportedCompositeAlpha & alpha)) {
        for (VkCompositeAlphaFlagBitsKHR a : {VK_COMPOSITE_ALPHA_INHERIT_BIT_KHR, VK_COMPOSITE_ALPHA_PRE_MULTIPLIED_BIT_KHR,
                                              VK_COMPOSITE_ALPHA_POST_MULTIPLIED_BIT_KHR})
            if (caps.supportedCompositeAlpha & a) {
                alpha = a;
                break;
            }
    }

    VkSwapchainCreateInfoKHR ci{VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR};
    ci.surface = ctx_.surface();
    ci.minImageCount = count;
    ci.imageFormat = format_.format;
    ci.imageColorSpace = format_.colorSpace;
    ci.imageExtent = extent;
    ci.imageArrayLayers = 1;
    ci.imageUsage = usage;
    ci.imageSharingMode = VK_SHARING_MODE_EXCLUSIVE;
    ci.preTransform = (caps.supportedTransforms & VK_SURFACE_TRANSFORM_IDENTITY_BIT_KHR)
                          ? VK_SURFACE_TRANSFORM_IDENTITY_BIT_KHR
                          : caps.currentTransform;
    ci.compositeAlpha = alpha;
    ci.presentMode = choose_present_mode(modes, opt_.vsync);
    ci.clipped = VK_TRUE;
    ci.oldSwapchain = swapchain_;
    VkSwapchainKHR fresh = VK_NULL_HANDLE;
    AVS_VK_CHECK(vkCreateSwapchainKHR(d, &ci, nullptr, &fresh));
    destroy_views();
    if (swapchain_) vkDestroySwapchainKHR(d, swapchain_, nullptr);
    swapchain_ = fresh;
    extent_ = extent;
    present_mode_ = ci.presentMode;
    ++generation_;

    uint32_t n_img = 0;
    AVS_VK_CHECK(vkGetSwapchainImagesKHR(d, swapchain_, &n_img, nullptr));
    images_.resize(n_img);
    AVS_VK_CHECK(vkGetSwapchainImagesKHR(d, swapchain_, &n_img, images_.data()));
    for (VkImage img : images_) {
        VkImageViewCreateInfo vi{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO};
        vi.image = img;
        vi.viewType = VK_IMAGE_VIEW_TYPE_2D;
        vi.format = format_.format;
        vi.subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
        VkImageView view = VK_NULL_HANDLE;
        AVS_VK_CHECK(vkCreateImageView(d, &vi, nullptr, &view));
        views_.push_back(view);
        VkFramebufferCreateInfo fi{VK_STRUCTURE_TYPE_FRAMEBUFFER_CREATE_INFO};
        fi.renderPass = render_pass;
        fi.attachmentCount = 1;
        fi.pAttachments = &view;
        fi.width = extent.width;
        fi.height = extent.height;
        fi.layers = 1;
        VkFramebuffer fb = VK_NULL_HANDLE;
        AVS_VK_CHECK(vkCreateFramebuffer(d, &fi, nullptr, &fb));
        framebuffers_.push_back(fb);
        // One per image, not per frame in flight: a present may still wait on it when the frame's fence
        // has already signalled.
        VkSemaphoreCreateInfo si{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
        VkSemaphore sem = VK_NULL_HANDLE;
        AVS_VK_CHECK(vkCreateSemaphore(d, &si, nullptr, &sem));
        render_finished_.push_back(sem);
    }
    return true;
}

} // namespace avs
