#version 450
// Video pass: sample the newest frame (R8G8B8A8_UNORM, linear filter, clamp to edge).

layout(set = 0, binding = 0) uniform sampler2D u_video;

layout(location = 0) in vec2 v_uv;
layout(location = 0) out vec4 o_color;

void main() {
    o_color = vec4(texture(u_video, v_uv).rgb, 1.0);
}
