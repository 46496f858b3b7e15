#version 450
// Video pass: one quad from gl_VertexIndex (triangle strip, no vertex buffer), placed by the host's
// aspect-fit rectangle so the frame keeps its aspect ratio and the rest is letterbox (clear colour).

layout(push_constant) uniform Fit {
    vec2 scale;   // half-size of the fitted rectangle in NDC
    vec2 offset;  // centre of the fitted rectangle in NDC
} fit;

layout(location = 0) out vec2 v_uv;

void main() {
    // 0:(0,0) 1:(1,0) 2:(0,1) 3:(1,1)
    vec2 corner = vec2(float(gl_VertexIndex & 1), float((gl_VertexIndex >> 1) & 1));
    v_uv = corner;  // Vulkan NDC has +y down, so uv (0,0) = first row of the frame = top
    gl_Position = vec4(fit.offset + (corner * 2.0 - 1.0) * fit.scale, 0.0, 1.0);
}
