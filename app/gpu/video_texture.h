// VideoTexture: the newest video frame as a sampled R8G8B8A8_UNORM image. Each frame in flight has its
// own persistently mapped staging buffer, so the CPU copy for frame N never touches memory the GPU may
// still be reading for frame N-1; the copy into the image is recorded into that frame's command buffer.
#pragma once

#include "app/gpu/vk_context.h"

#include <cstdint>
#include <vector>

namespace avs {

class VideoTexture {
public:
    VideoTexture(VkContext & ctx, uint32_t frames_in_flight) : ctx_(ctx), staging_(frames_in_flight) {}
    ~VideoTexture();
    VideoTexture(const VideoTexture &) = delete;
    VideoTexture & operator=(const VideoTexture &) = delete;

    Status init();  // the sampler (linear, clamp to edge)

    // Copy `rgba` (w*h*4 bytes, rows top to bottom, tightly packed) into frame slot `slot`'s staging
    // buffer and record the transfer into `cmd`. A new size recreates the image (waiting for the device
    // once); `recreated()` then reports true until the caller rebinds the view.
    Status upload(VkCommandBuffer cmd, uint32_t slot, const uint8_t * rgba, int w, int h);

    bool        valid() const { return image_ != VK_NULL_HANDLE && has_content_; }
    int         width() const { return w_; }
    int         height() const { return h_; }
    VkImageView view() const { return view_; }
    VkSampler   sampler() const { return sampler_; }
    bool        consume_recreated() {
        const bool r = recreated_;
        recreated_ = false;
        return r;
    }
    uint64_t uploads() const { return uploads_; }

private:
    using Staging = MappedBuffer;
    Status create_image(int w, int h);
    void   destroy_image();

    VkContext &          ctx_;
    std::vector<Staging> staging_;
    VkSampler            sampler_ = VK_NULL_HANDLE;
    VkImage              image_ = VK_NULL_HANDLE;
    VkDeviceMemory       image_mem_ = VK_NULL_HANDLE;
    VkImageView          view_ = VK_NULL_HANDLE;
    int                  w_ = 0, h_ = 0;
    bool                 has_content_ = false;
    bool                 recreated_ = false;
    uint64_t             uploads_ = 0;
};

} // namespace avs
