// Renderer: draws the newest video frame (aspect-fit, letterboxed in the clear colour) and the Dear
// ImGui UI into the window through our own Vulkan objects: 2 frames in flight, a classic render pass,
// the video pipeline (shaders/video.*, embedded SPIR-V) and imgui_impl_vulkan on our render pass and
// descriptor pool. The UI thread never waits on the engine: pass the newest frame when there is one
// (it is uploaded), nullptr otherwise (the last one is redrawn). One Renderer at a time (ImGui's
// backends are global); everything runs on the thread that owns the window.
#pragma once

#include "app/gpu/swapchain.h"
#include "app/gpu/video_texture.h"
#include "app/gpu/vk_context.h"
#include "app/gpu/window.h"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace avs {

struct RendererOptions {
    bool  vsync = true;
    bool  validation = false;        // Khronos validation layer when installed
    bool  enable_readback = false;   // keep a host copy of every rendered frame (tests, screenshots)
    std::string prefer_device;       // substring of a device name to prefer
    std::array<float, 4> clear_color{0.05f, 0.05f, 0.06f, 1.0f};  // also the letterbox colour
    std::string imgui_ini_path;      // "" : ImGui keeps no ini file
};

// A frame in host memory: w*h RGBA8, rows top to bottom, tightly packed. Not owned.
struct VideoFrameView {
    const uint8_t * rgba = nullptr;
    int             width = 0, height = 0;
};

// Where a frame of frame_w x frame_h lands in a target of target_w x target_h pixels: the largest
// rectangle with the frame's aspect ratio, centred, in whole pixels (the rest is letterbox).
struct LetterboxRect {
    int x = 0, y = 0, w = 0, h = 0;
};
LetterboxRect fit_letterbox(int frame_w, int frame_h, int target_w, int target_h);

enum class RenderOutcome {
    drawn,       // a frame was submitted and presented
    minimized,   // nothing to draw into (iconified or 0x0); call Window::poll_events, which blocks
    retry,       // the swapchain went out of date twice in a row; it will be recreated next call
};

struct RgbaImage {
    int                  width = 0, height = 0;
    std::vector<uint8_t> pixels;  // RGBA8, rows top to bottom
    const uint8_t * at(int x, int y) const { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * 4; }
};

struct RendererStats {
    uint64_t frames_drawn = 0;
    uint64_t frames_skipped = 0;     // minimised or out of date
    uint64_t uploads = 0;
    int      swapchain_generation = 0;
    double   last_cpu_ms = 0;        // time spent in render() for the last drawn frame
};

class Renderer {
public:
    static constexpr uint32_t k_frames_in_flight = 2;

    static Result<std::unique_ptr<Renderer>> create(Window & window, const RendererOptions & opt);
    ~Renderer();
    Renderer(const Renderer &) = delete;
    Renderer & operator=(const Renderer &) = delete;

    // One UI-thread frame: upload `newest` when non-null, build the UI with `build_ui` (ImGui calls;
    // called only when a frame is drawn), record, submit and present. Never waits on the engine.
    // A bad frame (empty, larger than the device allows) is an error that changes nothing; other errors
    // are device failures after which the Renderer should be recreated.
    Result<RenderOutcome> render(const VideoFrameView * newest, const std::function<void()> & build_ui);

    void set_vsync(bool on);  // takes effect at the next render (the swapchain is recreated)

    // The last drawn frame as RGBA8 (needs enable_readback). Waits for the GPU. Reads the swapchain image
    // itself (copied before present), so the swapchain must allow TRANSFER_SRC usage; drivers that do not
    // allow it get ErrorCode::unsupported (lavapipe, Mesa and NVIDIA all allow it).
    Result<RgbaImage> read_back_rgba();

    VkExtent2D          extent() const { return swapchain_->extent(); }
    VkPresentModeKHR    present_mode() const { return swapchain_->present_mode(); }
    const VkContext &   context() const { return *ctx_; }
    const VideoTexture & video() const { return *video_; }
    RendererStats       stats() const;
    void                set_clear_color(const std::array<float, 4> & c) { opt_.clear_color = c; }

private:
    struct Frame {
        VkCommandPool   pool = VK_NULL_HANDLE;
        VkCommandBuffer cmd = VK_NULL_HANDLE;
        VkSemaphore     image_available = VK_NULL_HANDLE;
        VkFence         in_flight = VK_NULL_HANDLE;
        // read-back copy of this frame's image
        MappedBuffer    rb;
        VkExtent2D      rb_extent{0, 0};
        bool            rb_valid = false;
    };

    Renderer(Window & window, const RendererOptions & opt) : window_(window), opt_(opt) {}
    Status init();
    Status create_render_pass();
    Status create_video_pipeline();
    Status init_imgui();
    Result<bool> ensure_swapchain();
    void   record_readback(Frame & f, VkImage image);
    Status record_and_submit(Frame & f, uint32_t image_index, const VideoFrameView * newest);

    Window &                      window_;
    RendererOptions               opt_;
    std::unique_ptr<VkContext>    ctx_;
    std::unique_ptr<Swapchain>    swapchain_;
    std::unique_ptr<VideoTexture> video_;
    VkRenderPass                  render_pass_ = VK_NULL_HANDLE;
    VkDescriptorPool              desc_pool_ = VK_NULL_HANDLE;
    VkDescriptorSetLayout         video_set_layout_ = VK_NULL_HANDLE;
    VkDescriptorSet               video_set_ = VK_NULL_HANDLE;
    VkPipelineLayout              video_layout_ = VK_NULL_HANDLE;
    VkPipeline                    video_pipeline_ = VK_NULL_HANDLE;
    std::array<Frame, k_frames_in_flight> frames_{};
    std::vector<VkFence>          image_fences_;  // per swapchain image: the fence of the frame using it
    uint32_t                      slot_ = 0;
    int                           last_drawn_slot_ = -1;
    bool                          swapchain_dirty_ = true;
    bool                          imgui_vulkan_ = false, imgui_glfw_ = false, imgui_ctx_ = false;
    std::string                   ini_path_;
    RendererStats                 stats_;
};

} // namespace avs
