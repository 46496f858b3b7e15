// Swapchain: the window's presentable images with their views, framebuffers (for one render pass) and
// per-image "rendering finished" semaphores. Recreated on resize, VK_ERROR_OUT_OF_DATE_KHR or
// VK_SUBOPTIMAL_KHR; a zero extent (minimised window) leaves it untouched and reports "nothing to draw".
#pragma once

#include "app/gpu/vk_context.h"

#include <vector>

namespace avs {

struct SwapchainOptions {
    bool vsync = true;          // FIFO; off: MAILBOX, else IMMEDIATE, else FIFO
    bool transfer_src = false;  // ask for TRANSFER_SRC usage (read-back); granted only if supported
};

// Pure choices, separated so they can be tested without a surface.
// UNORM 8-bit BGRA/RGBA first (frames and ImGui colours are already sRGB-encoded bytes), else the first.
VkSurfaceFormatKHR choose_surface_format(const std::vector<VkSurfaceFormatKHR> & formats);
VkPresentModeKHR   choose_present_mode(const std::vector<VkPresentModeKHR> & modes, bool vsync);
// The surface's current extent when it dictates one, else the framebuffer size clamped to the limits;
// {0,0} when the window is minimised.
VkExtent2D choose_extent(const VkSurfaceCapabilitiesKHR & caps, int fb_w, int fb_h);

class Swapchain {
public:
    explicit Swapchain(VkContext & ctx) : ctx_(ctx) {}
    ~Swapchain();
    Swapchain(const Swapchain &) = delete;
    Swapchain & operator=(const Swapchain &) = delete;

    // Query the surface and pick the format (call once, before creating the render pass).
    Status init(const SwapchainOptions & opt);
    // (Re)create for the framebuffer size. Returns false, leaving the old swapchain as it is, when the
    // extent is zero (minimised): the caller skips drawing until the window comes back.
    Result<bool> recreate(int fb_w, int fb_h, VkRenderPass render_pass);
    void set_options(const SwapchainOptions & opt) { opt_ = opt; }
    const SwapchainOptions & options() const { return opt_; }

    bool               valid() const { return swapchain_ != VK_NULL_HANDLE; }
    VkSwapchainKHR     handle() const { return swapchain_; }
    VkFormat           format() const { return format_.format; }
    VkExtent2D         extent() const { return extent_; }
    VkPresentModeKHR   present_mode() const { return present_mode_; }
    bool               transfer_src() const { return transfer_src_; }
    uint32_t           image_count() const { return uint32_t(images_.size()); }
    VkImage            image(uint32_t i) const { return images_[i]; }
    VkFramebuffer      framebuffer(uint32_t i) const { return framebuffers_[i]; }
    VkSemaphore        render_finished(uint32_t i) const { return render_finished_[i]; }
    int                generation() const { return generation_; }  // bumps on every recreate

private:
    void destroy_views();

    VkContext &                ctx_;
    SwapchainOptions           opt_;
    VkSurfaceFormatKHR         format_{};
    VkSwapchainKHR             swapchain_ = VK_NULL_HANDLE;
    VkExtent2D                 extent_{0, 0};
    VkPresentModeKHR           present_mode_ = VK_PRESENT_MODE_FIFO_KHR;
    bool                       transfer_src_ = false;
    std::vector<VkImage>       images_;
    std::vector<VkImageView>   views_;
    std::vector<VkFramebuffer> framebuffers_;
    std::vector<VkSemaphore>   render_finished_;
    int                        generation_ = 0;
};

} // namespace avs
