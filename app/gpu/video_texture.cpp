#include "app/gpu/video_texture.h"

#include "app/gpu/vk_check.h"

#include <cstring>

namespace avs {

Status VideoTexture::init() {
    VkSamplerCreateInfo si{VK_STRUCTURE_TYPE_SAMPLER_CREATE_INFO};
    si.magFilter = VK_FILTER_LINEAR;
    si.minFilter = VK_FILTER_LINEAR;
    si.mipmapMode = VK_SAMPLER_MIPMAP_MODE_NEAREST;
    si.addressModeU = si.addressModeV = si.addressModeW = VK_SAMPLER_ADDRESS_MODE_CLAMP_TO_EDGE;
    si.maxLod = 0.0f;
    AVS_VK_CHECK(vkCreateSampler(ctx_.device(), &si, nullptr, &sampler_));
    return {};
}

VideoTexture::~VideoTexture() {
    VkDevice d = ctx_.device();
    if (!d) return;
    vkDeviceWaitIdle(d);
    destroy_image();
    for (auto & s : staging_) ctx_.destroy_mapped_buffer(s);
    if (sampler_) vkDestroySampler(d, sampler_, nullptr);
}

void VideoTexture::destroy_image() {
    VkDevice d = ctx_.device();
    if (view_) vkDestroyImageView(d, view_, nullptr);
    if (image_) vkDestroyImage(d, image_, nullptr);
    if (image_mem_) vkFreeMemory(d, image_mem_, nullptr);
    view_ = VK_NULL_HANDLE, image_ = VK_NULL_HANDLE, image_mem_ = VK_NULL_HANDLE;
    w_ = h_ = 0;
    has_content_ = false;
}

Status VideoTexture::create_image(int w, int h) {
    VkDevice d = ctx_.device();
    VkImageCreateInfo ii{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO};
    ii.imageType = VK_IMAGE_TYPE_2D;
    ii.format = VK_FORMAT_R8G8B8A8_UNORM;
    ii.extent = {uint32_t(w), uint32_t(h), 1};
    ii.mipLevels = 1;
    ii.arrayLayers = 1;
    ii.samples = VK_SAMPLE_COUNT_1_BIT;
    ii.tiling = VK_IMAGE_TILING_OPTIMAL;
    ii.usage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_SAMPLED_BIT;
    ii.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    ii.initialLayout = VK_IMAGE_LAYOUT_UNDEFINED;
    AVS_VK_CHECK(vkCreateImage(d, &ii, nullptr, &image_));
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(d, image_, &req);
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = ctx_.find_memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (ai.memoryTypeIndex == UINT32_MAX) ai.memoryTypeIndex = ctx_.find_memory_type(req.memoryTypeBits, 0);
    if (ai.memoryTypeIndex == UINT32_MAX)
        return make_error(ErrorCode::device, "Vulkan: no memory type for a %dx%d video image", w, h);
    AVS_VK_CHECK(vkAllocateMemory(d, &ai, nullptr, &image_mem_));
    AVS_VK_CHECK(vkBindImageMemory(d, image_, image_mem_, 0));
    VkImageViewCreateInfo vi{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO};
    vi.image = image_;
    vi.viewType = VK_IMAGE_VIEW_TYPE_2D;
    vi.format = VK_FORMAT_R8G8B8A8_UNORM;
    vi.subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
    AVS_VK_CHECK(vkCreateImageView(d, &vi, nullptr, &view_));
    w_ = w, h_ = h;
    return {};
}

Status VideoTexture::upload(VkCommandBuffer cmd, uint32_t slot, const uint8_t * rgba, int w, int h) {
    if (!rgba || w <= 0 || h <= 0)
        return make_error(ErrorCode::invalid_argument, "video frame %dx%d (data %p) is empty", w, h, (const void *) rgba);
    if (slot >= staging_.size())
        return make_error(ErrorCode::invalid_argument, "video upload: frame slot %u of %zu", slot, staging_.size());
    if (w != w_ || h != h_) {
        // The old image may be sampled by a frame still in flight; size changes are rare, so just wait.
        AVS_VK_CHECK(vkDeviceWaitIdle(ctx_.device()));
        destroy_image();
        AVS_TRY(create_image(w, h));
        recreated_ = true;
    }
    const VkDeviceSize bytes = VkDeviceSize(w) * VkDeviceSize(h) * 4;
    Staging & s = staging_[slot];
    AVS_TRY(ctx_.ensure_mapped_buffer(s, bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, "video staging buffer"));
    std::memcpy(s.mapped, rgba, size_t(bytes));
    if (!s.coherent) {
        VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
        r.memory = s.memory;
        r.size = VK_WHOLE_SIZE;
        AVS_VK_CHECK(vkFlushMappedMemoryRanges(ctx_.device(), 1, &r));
    }

    // The whole image is overwritten, so its old contents can be discarded (UNDEFINED). The barrier's
    // first scope covers earlier submissions on this queue: the previous frame's fragment-shader reads
    // finish before the copy writes (write-after-read needs only the execution dependency).
    VkImageMemoryBarrier to_dst{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER};
    to_dst.srcAccessMask = 0;
    to_dst.dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    to_dst.oldLayout = VK_IMAGE_LAYOUT_UNDEFINED;
    to_dst.newLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL;
    to_dst.srcQueueFamilyIndex = to_dst.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    to_dst.image = image_;
    to_dst.subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_FRAGMENT_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, nullptr, 0,
                         nullptr, 1, &to_dst);
    VkBufferImageCopy region{};
    region.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
    region.imageExtent = {uint32_t(w), uint32_t(h), 1};
    vkCmdCopyBufferToImage(cmd, s.buffer, image_, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region);
    VkImageMemoryBarrier to_read = to_dst;
    to_read.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    to_read.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
    to_read.oldLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL;
    to_read.newLayout = VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_FRAGMENT_SHADER_BIT, 0, 0, nullptr, 0,
                         nullptr, 1, &to_read);
    has_content_ = true;
    ++uploads_;
    return {};
}

} // namespace avs
