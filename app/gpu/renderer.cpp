#include "app/gpu/renderer.h"

#include "app/gpu/vk_check.h"
#include "engine/core/log.h"

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_vulkan.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>

namespace avs {

namespace {

// SPIR-V words from glslc -mfmt=num (generated at build time from shaders/video.*).
const uint32_t k_video_vert[] = {
#include "video.vert.spv.inc"
};
const uint32_t k_video_frag[] = {
#include "video.frag.spv.inc"
};

struct FitPush {
    float scale[2];
    float offset[2];
};

// imgui_impl_vulkan reports failures through a plain function pointer: remember the first one and turn
// it into a Status after the ImGui call returns.
std::atomic<int> g_imgui_vk_error{VK_SUCCESS};
void on_imgui_vk_result(VkResult r) {
    if (r < 0) {
        int expected = VK_SUCCESS;
        g_imgui_vk_error.compare_exchange_strong(expected, int(r));
    }
}
Status take_imgui_error(const char * what) {
    const int r = g_imgui_vk_error.exchange(VK_SUCCESS);
    if (r == VK_SUCCESS) return {};
    return make_error(ErrorCode::device, "ImGui Vulkan backend (%s): %s", what, vk_result_name(VkResult(r)));
}

Status create_shader(VkDevice d, const uint32_t * words, size_t bytes, VkShaderModule * out) {
    VkShaderModuleCreateInfo ci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    ci.codeSize = bytes;
    ci.pCode = words;
    AVS_VK_CHECK(vkCreateShaderModule(d, &ci, nullptr, out));
    return {};
}

} // namespace

LetterboxRect fit_letterbox(int frame_w, int frame_h, int target_w, int target_h) {
    LetterboxRect r;
    if (frame_w <= 0 || frame_h <= 0 || target_w <= 0 || target_h <= 0) return r;
    // Compare aspect ratios in integers: the target is wider than the frame -> bars left and right.
    if (int64_t(target_w) * frame_h > int64_t(target_h) * frame_w) {
        r.h = target_h;
        r.w = int(std::lround(double(target_h) * frame_w / frame_h));
    } else {
        r.w = target_w;
        r.h = int(std::lround(double(target_w) * frame_h / frame_w));
    }
    r.w = std::clamp(r.w, 1, target_w);
    r.h = std::clamp(r.h, 1, target_h);
    r.x = (target_w - r.w) / 2;
    r.y = (target_h - r.h) / 2;
    return r;
}

Result<std::unique_ptr<Renderer>> Renderer::create(Window & window, const RendererOptions & opt) {
    std::unique_ptr<Renderer> r(new Renderer(window, opt));
    AVS_TRY(r->init());
    return r;
}

Status Renderer::init() {
    // The ImGui backends keep global state: one Renderer at a time (checked before touching Vulkan).
    if (ImGui::GetCurrentContext())
        return make_error(ErrorCode::invalid_argument, "Renderer: another Renderer (ImGui context) is alive; only one at a time");
    VkContextOptions co;
    co.validation = opt_.validation;
    co.prefer_device = opt_.prefer_device;
    AVS_ASSIGN_OR_RETURN(ctx_, VkContext::create(window_.handle(), co));
    VkDevice d = ctx_->device();

    swapchain_ = std::make_unique<Swapchain>(*ctx_);
    SwapchainOptions so;
    so.vsync = opt_.vsync;
    so.transfer_src = opt_.enable_readback;
    AVS_TRY(swapchain_->init(so));
    AVS_TRY(create_render_pass());

    video_ = std::make_unique<VideoTexture>(*ctx_, k_frames_in_flight);
    AVS_TRY(video_->init());

    for (Frame & f : frames_) {
        VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
        pci.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
        pci.queueFamilyIndex = ctx_->queue_family();
        AVS_VK_CHECK(vkCreateCommandPool(d, &pci, nullptr, &f.pool));
        VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
        ai.commandPool = f.pool;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = 1;
        AVS_VK_CHECK(vkAllocateCommandBuffers(d, &ai, &f.cmd));
        VkSemaphoreCreateInfo si{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
        AVS_VK_CHECK(vkCreateSemaphore(d, &si, nullptr, &f.image_available));
        VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        fi.flags = VK_FENCE_CREATE_SIGNALED_BIT;
        AVS_VK_CHECK(vkCreateFence(d, &fi, nullptr, &f.in_flight));
    }

    // One pool for the video descriptor set and ImGui's (its font texture, plus room for user textures).
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, 32};
    VkDescriptorPoolCreateInfo dpi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpi.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
    dpi.maxSets = 32;
    dpi.poolSizeCount = 1;
    dpi.pPoolSizes = &ps;
    AVS_VK_CHECK(vkCreateDescriptorPool(d, &dpi, nullptr, &desc_pool_));

    AVS_TRY(create_video_pipeline());
    AVS_TRY(init_imgui());
    return {};
}

Status Renderer::create_render_pass() {
    VkAttachmentDescription color{};
    color.format = swapchain_->format();
    color.samples = VK_SAMPLE_COUNT_1_BIT;
    color.loadOp = VK_ATTACHMENT_LOAD_OP_CLEAR;  // the clear colour is the letterbox
    color.storeOp = VK_ATTACHMENT_STORE_OP_STORE;
    color.stencilLoadOp = VK_ATTACHMENT_LOAD_OP_DONT_CARE;
    color.stencilStoreOp = VK_ATTACHMENT_STORE_OP_DONT_CARE;
    color.initialLayout = VK_IMAGE_LAYOUT_UNDEFINED;
    color.finalLayout = VK_IMAGE_LAYOUT_PRESENT_SRC_KHR;
    VkAttachmentReference ref{0, VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL};
    VkSubpassDescription sub{};
    sub.pipelineBindPoint = VK_PIPELINE_BIND_POINT_GRAPHICS;
    sub.colorAttachmentCount = 1;
    sub.pColorAttachments = &ref;
    // The acquire semaphore is waited at COLOR_ATTACHMENT_OUTPUT: the layout transition and the clear
    // must come after it.
    VkSubpassDependency dep{};
    dep.srcSubpass = VK_SUBPASS_EXTERNAL;
    dep.dstSubpass = 0;
    dep.srcStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    dep.dstStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    dep.srcAccessMask = 0;
    dep.dstAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_COLOR_ATTACHMENT_READ_BIT;
    VkRenderPassCreateInfo rpi{VK_STRUCTURE_TYPE_RENDER_PASS_CREATE_INFO};
    rpi.attachmentCount = 1;
    rpi.pAttachments = &color;
    rpi.subpassCount = 1;
    rpi.pSubpasses = &sub;
    rpi.dependencyCount = 1;
    rpi.pDependencies = &dep;
    AVS_VK_CHECK(vkCreateRenderPass(ctx_->device(), &rpi, nullptr, &render_pass_));
    return {};
}

Status Renderer::create_video_pipeline() {
    VkDevice d = ctx_->device();
    VkDescriptorSetLayoutBinding b{};
    b.binding = 0;
    b.descriptorType = VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER;
    b.descriptorCount = 1;
    b.stageFlags = VK_SHADER_STAGE_FRAGMENT_BIT;
    VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    li.bindingCount = 1;
    li.pBindings = &b;
    AVS_VK_CHECK(vkCreateDescriptorSetLayout(d, &li, nullptr, &video_set_layout_));
    VkDescriptorSetAllocateInfo dai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dai.descriptorPool = desc_pool_;
    dai.descriptorSetCount = 1;
    dai.pSetLayouts = &video_set_layout_;
    AVS_VK_CHECK(vkAllocateDescriptorSets(d, &dai, &video_set_));

    VkPushConstantRange pcr{VK_SHADER_STAGE_VERTEX_BIT, 0, sizeof(FitPush)};
    VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pli.setLayoutCount = 1;
    pli.pSetLayouts = &video_set_layout_;
    pli.pushConstantRangeCount = 1;
    pli.pPushConstantRanges = &pcr;
    AVS_VK_CHECK(vkCreatePipelineLayout(d, &pli, nullptr, &video_layout_));

    VkShaderModule vs = VK_NULL_HANDLE, fs = VK_NULL_HANDLE;
    AVS_TRY(create_shader(d, k_video_vert, sizeof k_video_vert, &vs));
    Status st = create_shader(d, k_video_frag, sizeof k_video_frag, &fs);
    if (!st) {
        vkDestroyShaderModule(d, vs, nullptr);
        return st;
    }
    VkPipelineShaderStageCreateInfo stages[2]{};
    stages[0] = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_VERTEX_BIT, vs, "main", nullptr};
    stages[1] = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_FRAGMENT_BIT, fs, "main", nullptr};
    VkPipelineVertexInputStateCreateInfo vin{VK_STRUCTURE_TYPE_PIPELINE_VERTEX_INPUT_STATE_CREATE_INFO};
    VkPipelineInputAssemblyStateCreateInfo ia{VK_STRUCTURE_TYPE_PIPELINE_INPUT_ASSEMBLY_STATE_CREATE_INFO};
    ia.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_STRIP;
    VkPipelineViewportStateCreateInfo vp{VK_STRUCTURE_TYPE_PIPELINE_VIEWPORT_STATE_CREATE_INFO};
    vp.viewportCount = 1;
    vp.scissorCount = 1;
    VkPipelineRasterizationStateCreateInfo rs{VK_STRUCTURE_TYPE_PIPELINE_RASTERIZATION_STATE_CREATE_INFO};
    rs.polygonMode = VK_POLYGON_MODE_FILL;
    rs.cullMode = VK_CULL_MODE_NONE;
    rs.frontFace = VK_FRONT_FACE_COUNTER_CLOCKWISE;
    rs.lineWidth = 1.0f;
    VkPipelineMultisampleStateCreateInfo ms{VK_STRUCTURE_TYPE_PIPELINE_MULTISAMPLE_STATE_CREATE_INFO};
    ms.rasterizationSamples = VK_SAMPLE_COUNT_1_BIT;
    VkPipelineColorBlendAttachmentState cba{};
    cba.colorWriteMask = VK_COLOR_COMPONENT_R_BIT | VK_COLOR_COMPONENT_G_BIT | VK_COLOR_COMPONENT_B_BIT | VK_COLOR_COMPONENT_A_BIT;
    VkPipelineColorBlendStateCreateInfo cb{VK_STRUCTURE_TYPE_PIPELINE_COLOR_BLEND_STATE_CREATE_INFO};
    cb.attachmentCount = 1;
    cb.pAttachments = &cba;
    // Viewport and scissor are dynamic so a resize never rebuilds the pipeline.
    const VkDynamicState dyn[] = {VK_DYNAMIC_STATE_VIEWPORT, VK_DYNAMIC_STATE_SCISSOR};
    VkPipelineDynamicStateCreateInfo ds{VK_STRUCTURE_TYPE_PIPELINE_DYNAMIC_STATE_CREATE_INFO};
    ds.dynamicStateCount = 2;
    ds.pDynamicStates = dyn;
    VkGraphicsPipelineCreateInfo gpi{VK_STRUCTURE_TYPE_GRAPHICS_PIPELINE_CREATE_INFO};
    gpi.stageCount = 2;
    gpi.pStages = stages;
    gpi.pVertexInputState = &vin;
    gpi.pInputAssemblyState = &ia;
    gpi.pViewportState = &vp;
    gpi.pRasterizationState = &rs;
    gpi.pMultisampleState = &ms;
    gpi.pColorBlendState = &cb;
    gpi.pDynamicState = &ds;
    gpi.layout = video_layout_;
    gpi.renderPass = render_pass_;
    gpi.subpass = 0;
    const VkResult r = vkCreateGraphicsPipelines(d, VK_NULL_HANDLE, 1, &gpi, nullptr, &video_pipeline_);
    vkDestroyShaderModule(d, vs, nullptr);
    vkDestroyShaderModule(d, fs, nullptr);
    AVS_VK_CHECK(r);
    return {};
}

Status Renderer::init_imgui() {
    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    imgui_ctx_ = true;
    ImGuiIO & io = ImGui::GetIO();
    ini_path_ = opt_.imgui_ini_path;
    io.IniFilename = ini_path_.empty() ? nullptr : ini_path_.c_str();
    ImGui::StyleColorsDark();
    if (!ImGui_ImplGlfw_InitForVulkan(window_.handle(), true))
        return make_error(ErrorCode::internal, "ImGui GLFW backend failed to initialise");
    imgui_glfw_ = true;

    ImGui_ImplVulkan_InitInfo ii{};
    ii.Instance = ctx_->instance();
    ii.PhysicalDevice = ctx_->physical_device();
    ii.Device = ctx_->device();
    ii.QueueFamily = ctx_->queue_family();
    ii.Queue = ctx_->queue();
    ii.DescriptorPool = desc_pool_;
    ii.Subpass = 0;
    // The backend cycles its vertex/index buffers per RenderDrawData call: one per frame in flight is
    // enough because our fence for that frame is waited before the buffers come round again. It does not
    // depend on the swapchain's image count, so swapchain recreation never touches ImGui.
    ii.MinImageCount = k_frames_in_flight;
    ii.ImageCount = k_frames_in_flight;
    ii.MSAASamples = VK_SAMPLE_COUNT_1_BIT;
    ii.CheckVkResultFn = on_imgui_vk_result;
    g_imgui_vk_error = VK_SUCCESS;
    if (!ImGui_ImplVulkan_Init(&ii, render_pass_))
        return make_error(ErrorCode::device, "ImGui Vulkan backend failed to initialise");
    imgui_vulkan_ = true;
    AVS_TRY(take_imgui_error("init"));
    bool fonts_ok = true;
    AVS_TRY(ctx_->run_once([&](VkCommandBuffer cmd) { fonts_ok = ImGui_ImplVulkan_CreateFontsTexture(cmd); }));
    ImGui_ImplVulkan_DestroyFontUploadObjects();
    if (!fonts_ok) return make_error(ErrorCode::device, "ImGui: uploading the font atlas failed");
    return take_imgui_error("font upload");
}

Renderer::~Renderer() {
    VkDevice d = ctx_ ? ctx_->device() : VK_NULL_HANDLE;
    if (d) vkDeviceWaitIdle(d);
    if (imgui_vulkan_) ImGui_ImplVulkan_Shutdown();
    if (imgui_glfw_) ImGui_ImplGlfw_Shutdown();
    if (imgui_ctx_) ImGui::DestroyContext();
    if (!d) return;
    video_.reset();
    swapchain_.reset();
    for (Frame & f : frames_) {
        ctx_->destroy_mapped_buffer(f.rb);
        if (f.in_flight) vkDestroyFence(d, f.in_flight, nullptr);
        if (f.image_available) vkDestroySemaphore(d, f.image_available, nullptr);
        if (f.pool) vkDestroyCommandPool(d, f.pool, nullptr);
    }
    if (video_pipeline_) vkDestroyPipeline(d, video_pipeline_, nullptr);
    if (video_layout_) vkDestroyPipelineLayout(d, video_layout_, nullptr);
    if (video_set_layout_) vkDestroyDescriptorSetLayout(d, video_set_layout_, nullptr);
    if (desc_pool_) vkDestroyDescriptorPool(d, desc_pool_, nullptr);
    if (render_pass_) vkDestroyRenderPass(d, render_pass_, nullptr);
    ctx_.reset();
}

void Renderer::set_vsync(bool on) {
    SwapchainOptions so = swapchain_->options();
    if (so.vsync == on) return;
    so.vsync = on;
    swapchain_->set_options(so);
    swapchain_dirty_ = true;
}

RendererStats Renderer::stats() const {
    RendererStats s = stats_;
    s.uploads = video_ ? video_->uploads() : 0;
    s.swapchain_generation = swapchain_ ? swapchain_->generation() : 0;
    return s;
}

// Recreate the swapchain when the window says so, when a present reported it out of date, or when
// the framebuffer no longer matches. false: nothing to draw into right now.
Result<bool> Renderer::ensure_swapchain() {
    if (window_.consume_resized()) swapchain_dirty_ = true;
    int fb_w = 0, fb_h = 0;
    window_.framebuffer_size(fb_w, fb_h);
    if (window_.minimized()) return false;
    const VkExtent2D e = swapchain_->extent();
    if (!swapchain_->valid() || e.width != uint32_t(fb_w) || e.height != uint32_t(fb_h)) swapchain_dirty_ = true;
    if (!swapchain_dirty_) return true;
    AVS_ASSIGN_OR_RETURN(const bool ok, swapchain_->recreate(fb_w, fb_h, render_pass_));
    if (!ok) return false;
    swapchain_dirty_ = false;
    image_fences_.assign(swapchain_->image_count(), VK_NULL_HANDLE);
    for (Frame & f : frames_) f.rb_valid = false;
    last_drawn_slot_ = -1;
    return true;
}

Result<RenderOutcome> Renderer::render(const VideoFrameView * newest, const std::function<void()> & build_ui) {
    const auto t0 = std::chrono::steady_clock::now();
    // Reject bad frames before acquiring an image: an acquired image that is never presented would
    // leave its semaphore pending and, after a few such calls, block the next acquire forever.
    if (newest) {
        const uint32_t max_dim = ctx_->properties().limits.maxImageDimension2D;
        if (!newest->rgba || newest->width <= 0 || newest->height <= 0 || uint32_t(newest->width) > max_dim ||
            uint32_t(newest->height) > max_dim)
            return make_error(ErrorCode::invalid_argument, "video frame %dx%d (data %p) is empty or larger than %u",
                              newest->width, newest->height, (const void *) newest->rgba, max_dim);
    }
    AVS_ASSIGN_OR_RETURN(bool can_draw, ensure_swapchain());
    if (!can_draw) {
        ++stats_.frames_skipped;
        return RenderOutcome::minimized;
    }
    VkDevice d = ctx_->device();
    Frame &  f = frames_[slot_];
    AVS_VK_CHECK(vkWaitForFences(d, 1, &f.in_flight, VK_TRUE, UINT64_MAX));

    uint32_t image_index = 0;
    for (int attempt = 0;; ++attempt) {
        const VkResult r = vkAcquireNextImageKHR(d, swapchain_->handle(), UINT64_MAX, f.image_available, VK_NULL_HANDLE,
                                                 &image_index);
        if (r == VK_SUCCESS) break;
        if (r == VK_SUBOPTIMAL_KHR) {  // still presentable: draw it, recreate next frame
            swapchain_dirty_ = true;
            break;
        }
        if (r != VK_ERROR_OUT_OF_DATE_KHR) AVS_VK_CHECK(r);
        // Out of date: nothing was signalled, so the frame's semaphore and fence are untouched.
        swapchain_dirty_ = true;
        if (attempt == 1) {
            ++stats_.frames_skipped;
            return RenderOutcome::retry;
        }
        AVS_ASSIGN_OR_RETURN(can_draw, ensure_swapchain());
        if (!can_draw) {
            ++stats_.frames_skipped;
            return RenderOutcome::minimized;
        }
    }
    // With more images than frames in flight an image can come back while another frame still renders
    // into it.
    if (image_fences_[image_index] != VK_NULL_HANDLE && image_fences_[image_index] != f.in_flight)
        AVS_VK_CHECK(vkWaitForFences(d, 1, &image_fences_[image_index], VK_TRUE, UINT64_MAX));
    image_fences_[image_index] = f.in_flight;

    // ImGui frame (built after the fence wait: the backend reuses this frame's vertex buffers).
    ImGui_ImplVulkan_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    if (build_ui) build_ui();
    ImGui::Render();

    AVS_TRY(record_and_submit(f, image_index, newest));

    VkPresentInfoKHR pi{VK_STRUCTURE_TYPE_PRESENT_INFO_KHR};
    VkSemaphore      done = swapchain_->render_finished(image_index);
    VkSwapchainKHR   sc = swapchain_->handle();
    pi.waitSemaphoreCount = 1;
    pi.pWaitSemaphores = &done;
    pi.swapchainCount = 1;
    pi.pSwapchains = &sc;
    pi.pImageIndices = &image_index;
    const VkResult pr = vkQueuePresentKHR(ctx_->queue(), &pi);
    if (pr == VK_ERROR_OUT_OF_DATE_KHR || pr == VK_SUBOPTIMAL_KHR)
        swapchain_dirty_ = true;
    else
        AVS_VK_CHECK(pr);

    last_drawn_slot_ = int(slot_);
    slot_ = (slot_ + 1) % k_frames_in_flight;
    ++stats_.frames_drawn;
    stats_.last_cpu_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return RenderOutcome::drawn;
}

Status Renderer::record_and_submit(Frame & f, uint32_t image_index, const VideoFrameView * newest) {
    VkDevice d = ctx_->device();
    AVS_VK_CHECK(vkResetCommandPool(d, f.pool, 0));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    AVS_VK_CHECK(vkBeginCommandBuffer(f.cmd, &bi));

    if (newest) {
        AVS_TRY(video_->upload(f.cmd, slot_, newest->rgba, newest->width, newest->height));
        if (video_->consume_recreated()) {
            VkDescriptorImageInfo ii{video_->sampler(), video_->view(), VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL};
            VkWriteDescriptorSet  w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
            w.dstSet = video_set_;
            w.dstBinding = 0;
            w.descriptorCount = 1;
            w.descriptorType = VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER;
            w.pImageInfo = &ii;
            vkUpdateDescriptorSets(d, 1, &w, 0, nullptr);
        }
    }

    const VkExtent2D ext = swapchain_->extent();
    VkClearValue     clear{};
    std::memcpy(clear.color.float32, opt_.clear_color.data(), sizeof(float) * 4);
    VkRenderPassBeginInfo rbi{VK_STRUCTURE_TYPE_RENDER_PASS_BEGIN_INFO};
    rbi.renderPass = render_pass_;
    rbi.framebuffer = swapchain_->framebuffer(image_index);
    rbi.renderArea = {{0, 0}, ext};
    rbi.clearValueCount = 1;
    rbi.pClearValues = &clear;
    vkCmdBeginRenderPass(f.cmd, &rbi, VK_SUBPASS_CONTENTS_INLINE);

    if (video_->valid()) {
        const LetterboxRect lb = fit_letterbox(video_->width(), video_->height(), int(ext.width), int(ext.height));
        FitPush pc;
        pc.scale[0] = float(lb.w) / float(ext.width);
        pc.scale[1] = float(lb.h) / float(ext.height);
        pc.offset[0] = (float(lb.x) + 0.5f * float(lb.w)) / float(ext.width) * 2.0f - 1.0f;
        pc.offset[1] = (float(lb.y) + 0.5f * float(lb.h)) / float(ext.height) * 2.0f - 1.0f;
        VkViewport vp{0.0f, 0.0f, float(ext.width), float(ext.height), 0.0f, 1.0f};
        VkRect2D   sc{{0, 0}, ext};
        vkCmdBindPipeline(f.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, video_pipeline_);
        vkCmdSetViewport(f.cmd, 0, 1, &vp);
        vkCmdSetScissor(f.cmd, 0, 1, &sc);
        vkCmdBindDescriptorSets(f.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, video_layout_, 0, 1, &video_set_, 0, nullptr);
        vkCmdPushConstants(f.cmd, video_layout_, VK_SHADER_STAGE_VERTEX_BIT, 0, sizeof pc, &pc);
        vkCmdDraw(f.cmd, 4, 1, 0, 0);
    }
    ImGui_ImplVulkan_RenderDrawData(ImGui::GetDrawData(), f.cmd);
    AVS_TRY(take_imgui_error("render"));
    vkCmdEndRenderPass(f.cmd);

    f.rb_valid = false;
    if (opt_.enable_readback && swapchain_->transfer_src()) {
        AVS_TRY(ctx_->ensure_mapped_buffer(f.rb, VkDeviceSize(ext.width) * ext.height * 4, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                           "read-back buffer"));
        record_readback(f, swapchain_->image(image_index));
    }
    AVS_VK_CHECK(vkEndCommandBuffer(f.cmd));

    AVS_VK_CHECK(vkResetFences(d, 1, &f.in_flight));
    const VkPipelineStageFlags wait_stage = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    VkSemaphore  done = swapchain_->render_finished(image_index);
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.waitSemaphoreCount = 1;
    si.pWaitSemaphores = &f.image_available;
    si.pWaitDstStageMask = &wait_stage;
    si.commandBufferCount = 1;
    si.pCommandBuffers = &f.cmd;
    si.signalSemaphoreCount = 1;
    si.pSignalSemaphores = &done;
    AVS_VK_CHECK(vkQueueSubmit(ctx_->queue(), 1, &si, f.in_flight));
    return {};
}

// Copy the rendered swapchain image to the frame's host buffer before it is presented.
void Renderer::record_readback(Frame & f, VkImage image) {
    const VkExtent2D ext = swapchain_->extent();
    VkImageMemoryBarrier to_src{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER};
    to_src.srcAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT;
    to_src.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
    to_src.oldLayout = VK_IMAGE_LAYOUT_PRESENT_SRC_KHR;
    to_src.newLayout = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL;
    to_src.srcQueueFamilyIndex = to_src.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    to_src.image = image;
    to_src.subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
    vkCmdPipelineBarrier(f.cmd, VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, nullptr,
                         0, nullptr, 1, &to_src);
    VkBufferImageCopy region{};
    region.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
    region.imageExtent = {ext.width, ext.height, 1};
    vkCmdCopyImageToBuffer(f.cmd, image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, f.rb.buffer, 1, &region);
    VkImageMemoryBarrier to_present = to_src;
    to_present.srcAccessMask = 0;
    to_present.dstAccessMask = 0;
    to_present.oldLayout = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL;
    to_present.newLayout = VK_IMAGE_LAYOUT_PRESENT_SRC_KHR;
    VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    to_host.srcQueueFamilyIndex = to_host.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    to_host.buffer = f.rb.buffer;
    to_host.size = VK_WHOLE_SIZE;
    vkCmdPipelineBarrier(f.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT,
                         0, 0, nullptr, 1, &to_host, 1, &to_present);
    f.rb_extent = ext;
    f.rb_valid = true;
}

Result<RgbaImage> Renderer::read_back_rgba() {
    if (!opt_.enable_readback)
        return make_error(ErrorCode::invalid_argument, "read_back_rgba: the renderer was created without enable_readback");
    if (!swapchain_->valid() || !swapchain_->transfer_src())
        return make_error(ErrorCode::unsupported, "read_back_rgba: this driver's swapchain images do not allow TRANSFER_SRC");
    if (last_drawn_slot_ < 0 || !frames_[size_t(last_drawn_slot_)].rb_valid)
        return make_error(ErrorCode::invalid_argument, "read_back_rgba: no frame drawn since the swapchain was (re)created");
    Frame & f = frames_[size_t(last_drawn_slot_)];
    AVS_VK_CHECK(vkWaitForFences(ctx_->device(), 1, &f.in_flight, VK_TRUE, UINT64_MAX));
    if (!f.rb.coherent) {
        VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
        r.memory = f.rb.memory;
        r.size = VK_WHOLE_SIZE;
        AVS_VK_CHECK(vkInvalidateMappedMemoryRanges(ctx_->device(), 1, &r));
    }
    RgbaImage img;
    img.width = int(f.rb_extent.width), img.height = int(f.rb_extent.height);
    img.pixels.resize(size_t(img.width) * size_t(img.height) * 4);
    std::memcpy(img.pixels.data(), f.rb.mapped, img.pixels.size());
    const VkFormat fmt = swapchain_->format();
    const bool bgra = fmt == VK_FORMAT_B8G8R8A8_UNORM || fmt == VK_FORMAT_B8G8R8A8_SRGB;
    if (!bgra && fmt != VK_FORMAT_R8G8B8A8_UNORM && fmt != VK_FORMAT_R8G8B8A8_SRGB)
        return make_error(ErrorCode::unsupported, "read_back_rgba: swapchain format %d is not 8-bit RGBA/BGRA", int(fmt));
    if (bgra)
        for (size_t i = 0; i < img.pixels.size(); i += 4) std::swap(img.pixels[i], img.pixels[i + 2]);
    return img;
}

} // namespace avs
