// TAEHV decoder: key layout and width detection, weight loading, buffers and the streaming forward
// pass. Activations are channels-last frames [H, W, C] in the backend's act dtype; convs write
// [1, H, W, C] views of the same buffers. Residual adds never use Backend::add (f32-only on CUDA): the
// skip is copied into the destination and the branch's last conv accumulates into it.
#include "engine/decode/taehv.h"

#include "engine/core/log.h"
#include "engine/io/safetensors.h"

#include <set>

namespace avs {

namespace {

using Spec = Backend::ConvSpec;

constexpr Spec k_conv3x3{1, 3, 3, 1, false};
constexpr Spec k_conv3x3_acc{1, 3, 3, 1, true};
constexpr Spec k_mem_conv0{2, 3, 3, 1, false};  // temporal kernel 2 over {past, x_t}
constexpr Spec k_pointwise{1, 1, 1, 1, false};
constexpr Spec k_up_conv3x3{1, 3, 3, 2, false};  // nearest x2 fused into the 3x3 conv's read

constexpr int k_trim = 3;  // startup frames dropped: t_upscale - 1 = 2 * 2 - 1
constexpr int k_strides[3] = {1, 2, 2};

// decoder.N indices of stage s: MemBlocks 3+6s..5+6s, TGrow 7+6s, projection conv 8+6s.
std::string key(int n, const char * rest) { return "decoder." + std::to_string(n) + "." + rest; }

bool ends_with(const std::string & s, const std::string & suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string dims_str(const std::vector<int64_t> & d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

// A frame [H, W, C] buffer as the [1, H, W, C] output of a conv.
Tensor as_out(const Tensor & frame) { return frame.reshape(Shape{1, frame.dim(0), frame.dim(1), frame.dim(2)}); }

// The stored shape must equal `want` exactly (a transposed or mis-sized weight is an error, not a misread).
Status check_shape(const Checkpoint * ck, const std::string & name, const std::vector<int64_t> & want) {
    if (!ck) return {};
    const TensorInfo * info = ck->find(name);
    if (!info) return make_error(ErrorCode::missing, "%s: missing tensor '%s' (expected %s)", ck->path().c_str(), name.c_str(),
                                 dims_str(want).c_str());
    if (info->shape.to_vector() != want)
        return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected %s", ck->path().c_str(), name.c_str(),
                          info->shape.str().c_str(), dims_str(want).c_str());
    return {};
}

// Key prefix (anything in front of `decoder.1.weight`, "" for the public files) and widths from the shapes.
Status detect_layout(const Checkpoint & ck, std::string & prefix, TaehvConfig & cfg) {
    int found = 0;
    for (const TensorInfo & t : ck.tensors()) {
        if (!ends_with(t.name, "decoder.1.weight")) continue;
        const std::string p = t.name.substr(0, t.name.size() - std::string("decoder.1.weight").size());
        if (!p.empty() && p.back() != '.') continue;
        prefix = p;
        ++found;
    }
    if (found != 1) {
        for (const TensorInfo & t : ck.tensors())
            if (ends_with(t.name, "decoder.0.weight"))  // TAEHV "super" decoders start with a 1x1 conv
                return make_error(ErrorCode::unsupported, "%s: tensor '%s': this TAEHV variant (\"super\") is not supported",
                                  ck.path().c_str(), t.name.c_str());
        return make_error(ErrorCode::missing, "%s: not a TAEHV checkpoint: %s tensor 'decoder.1.weight'", ck.path().c_str(),
                          found ? "more than one" : "no");
    }
    // decoder.1 [c0, latent, 3, 3]; decoder.8 / 14 / 20 [c_{s+1}, c_s, 3, 3]; decoder.22 [3, c3, 3, 3]
    const int          anchors[4] = {1, 8, 14, 20};
    const TensorInfo * info[4] = {};
    for (int i = 0; i < 4; ++i) {
        const std::string n = prefix + key(anchors[i], "weight");
        info[i] = ck.find(n);
        if (!info[i])
            return make_error(ErrorCode::missing, "%s: missing tensor '%s' (expected [Cout, Cin, 3, 3])", ck.path().c_str(),
                              n.c_str());
        if (info[i]->shape.ndim != 4)
            return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected [Cout, Cin, 3, 3]", ck.path().c_str(),
                              n.c_str(), info[i]->shape.str().c_str());
        cfg.widths[size_t(i)] = info[i]->shape[0];
    }
    cfg.latent = info[0]->shape[1];
    const TensorInfo * out = ck.find(prefix + "decoder.22.weight");
    if (out && out->shape.ndim == 4 && out->shape[0] != 3)  // taew2_2 / taehv1_5 pixel-shuffle their output
        return make_error(ErrorCode::unsupported, "%s: tensor '%sdecoder.22.weight' has %lld output channels: patch size > 1 "
                          "(taew2_2, taehv1_5) is not supported, only taew2_1-style decoders with 3", ck.path().c_str(),
                          prefix.c_str(), (long long) out->shape[0]);
    return {};
}

} // namespace

Status TaehvDecoder::load_weights(DecodeWeightSource & src, const std::string & prefix, const Checkpoint * ck) {
    auto K = [&](const std::string & n) { return prefix + n; };
    // A 3x3 conv (PyTorch [cout, cin, 3, 3]), with or without bias.
    auto conv3 = [&](TaehvConv & c, const std::string & p, int64_t cout, int64_t cin, bool bias) -> Status {
        AVS_TRY(check_shape(ck, K(p + "weight"), {cout, cin, 3, 3}));
        AVS_ASSIGN_OR_RETURN(c.w, src.conv(K(p + "weight"), cout, cin, 1, 3, 3));
        if (bias) {
            AVS_TRY(check_shape(ck, K(p + "bias"), {cout}));
            AVS_ASSIGN_OR_RETURN(c.b, src.vec(K(p + "bias"), cout));
        }
        return {};
    };
    const int64_t L = cfg_.latent;
    const auto &  c = cfg_.widths;
    AVS_TRY(conv3(conv1_, "decoder.1.", c[0], L, true));
    for (int s = 0; s < 3; ++s) {
        TaehvStage & st = stages_[size_t(s)];
        const int64_t C = c[size_t(s)];
        st.c = C, st.stride = k_strides[s];
        for (int i = 0; i < 3; ++i) {
            TaehvMemBlock &   m = st.blocks[size_t(i)];
            const std::string p = key(3 + 6 * s + i, "conv.");
            // conv.0 [C, 2C, 3, 3] over cat[x_t, past] -> GEMM [C, 2 * 9 * C] over the frames {past, x_t}:
            // temporal tap 0 takes input channels [C, 2C) (past), tap 1 channels [0, C) (x_t).
            AVS_TRY(check_shape(ck, K(p + "0.weight"), {C, 2 * C, 3, 3}));
            AVS_ASSIGN_OR_RETURN(Tensor w0, src.host_f32(K(p + "0.weight"), {C, 2 * C, 3, 3}));
            AVS_ASSIGN_OR_RETURN(Tensor g0, Tensor::zeros(DType::f32, Shape{C, 2 * 9 * C}));
            const float * S = w0.data<float>();
            float *       D = g0.data<float>();
            for (int64_t co = 0; co < C; ++co)
                for (int64_t dt = 0; dt < 2; ++dt)
                    for (int64_t tap = 0; tap < 9; ++tap)
                        for (int64_t ci = 0; ci < C; ++ci)
                            D[co * 18 * C + (dt * 9 + tap) * C + ci] = S[(co * 2 * C + (dt == 0 ? C + ci : ci)) * 9 + tap];
            AVS_ASSIGN_OR_RETURN(m.conv0.w, src.upload_weight(g0));
            AVS_TRY(check_shape(ck, K(p + "0.bias"), {C}));
            AVS_ASSIGN_OR_RETURN(m.conv0.b, src.vec(K(p + "0.bias"), C));
            AVS_TRY(conv3(m.conv2, p + "2.", C, C, true));
            AVS_TRY(conv3(m.conv4, p + "4.", C, C, true));
        }
        // TGrow 1x1 [stride*C, C, 1, 1]; a stored weight with more rows (trained with a larger stride)
        // keeps its last stride*C rows, the last time step (the reference's patch_tgrow_layers).
        const std::string tg = K(key(7 + 6 * s, "conv.weight"));
        const int64_t     rows = st.stride * C;
        int64_t           stored = rows;
        if (ck) {
            const TensorInfo * info = ck->find(tg);
            if (info && info->shape.ndim == 4 && info->shape[0] > rows && info->shape[0] % C == 0) stored = info->shape[0];
        }
        AVS_TRY(check_shape(ck, tg, {stored, C, 1, 1}));
        AVS_ASSIGN_OR_RETURN(st.tgrow.w, src.conv_out_slice(tg, stored, C, 1, 1, 1, stored - rows, stored));
        AVS_TRY(conv3(st.proj, key(8 + 6 * s, ""), c[size_t(s) + 1], C, false));
    }
    AVS_TRY(conv3(conv22_, "decoder.22.", 3, c[3], true));
    return {};
}

Result<std::unique_ptr<TaehvDecoder>> TaehvDecoder::load(Backend & backend, const std::string & path, uint64_t random_seed,
                                                         const TaehvConfig & config) {
    std::unique_ptr<Checkpoint> ck;
    TaehvConfig                 cfg = config;
    std::string                 prefix;
    if (!path.empty()) {
        AVS_ASSIGN_OR_RETURN(ck, Checkpoint::open(path));
        AVS_TRY(detect_layout(*ck, prefix, cfg));
        AVS_LOG_INFO("%s: TAEHV decoder%s%s, latent %lld, widths %lld/%lld/%lld/%lld", path.c_str(),
                     prefix.empty() ? "" : " under prefix ", prefix.c_str(), (long long) cfg.latent,
                     (long long) cfg.widths[0], (long long) cfg.widths[1], (long long) cfg.widths[2], (long long) cfg.widths[3]);
    } else if (random_seed == 0) {
        return make_error(ErrorCode::invalid_argument, "taehv: no weights file given (and no random seed)");
    }
    if (cfg.latent < 1 || cfg.widths[0] < 1 || cfg.widths[1] < 1 || cfg.widths[2] < 1 || cfg.widths[3] < 1)
        return make_error(ErrorCode::invalid_argument, "taehv: bad widths");
    std::unique_ptr<TaehvDecoder> d(new TaehvDecoder(backend, cfg));
    DecodeWeightSource            src(backend, ck.get(), random_seed);
    AVS_TRY(d->load_weights(src, prefix, ck.get()));
    d->weight_bytes_ = src.bytes();
    return d;
}

Result<std::unique_ptr<VideoDecoder>> load_taehv_decoder(Backend & backend, const std::string & path, uint64_t random_seed) {
    AVS_ASSIGN_OR_RETURN(auto d, TaehvDecoder::load(backend, path, random_seed));
    return std::unique_ptr<VideoDecoder>(std::move(d));
}

void TaehvDecoder::reset() {
    for (TaehvStage & st : stages_)
        for (TaehvMemBlock & m : st.blocks) m.cur = 0, m.has_past = false;
    pushed_ = raw_frames_ = n_out_ = 0;
}

uint64_t TaehvDecoder::state_bytes() const {
    std::set<const Buffer *> seen;
    uint64_t                 bytes = 0;
    auto add = [&](const Tensor & t) {
        if (t.defined() && seen.insert(t.buffer().get()).second) bytes += t.buffer()->bytes();
    };
    add(zt_), add(head_);
    for (const Tensor & t : out_) add(t);
    for (const TaehvStage & st : stages_) {
        add(st.a), add(st.b), add(st.grown);
        for (const TaehvMemBlock & m : st.blocks) add(m.buf[0]), add(m.buf[1]);
    }
    return bytes;
}

Status TaehvDecoder::ensure_buffers(int64_t h, int64_t w) {
    if (zt_.defined() && h == h_ && w == w_) return {};
    const DType act = be_.act_dtype();
    auto alloc = [&](Tensor & t, int64_t H, int64_t W, int64_t C) -> Status {
        t = Tensor();  // release the old size first
        AVS_ASSIGN_OR_RETURN(t, be_.alloc(act, Shape{H, W, C}));
        return {};
    };
    AVS_TRY(alloc(zt_, h, w, cfg_.latent));
    for (int s = 0; s < 3; ++s) {
        TaehvStage &  st = stages_[size_t(s)];
        const int64_t H = h << s, W = w << s;  // stage s runs at [2^s h, 2^s w]
        AVS_TRY(alloc(st.a, H, W, st.c));
        AVS_TRY(alloc(st.b, H, W, st.c));
        AVS_TRY(alloc(st.grown, H, W, st.stride * st.c));
        for (TaehvMemBlock & m : st.blocks) {
            AVS_TRY(alloc(m.buf[0], H, W, st.c));
            AVS_TRY(alloc(m.buf[1], H, W, st.c));
        }
    }
    AVS_TRY(alloc(head_, 8 * h, 8 * w, cfg_.widths[3]));
    for (Tensor & t : out_) AVS_TRY(alloc(t, 8 * h, 8 * w, 3));
    h_ = h, w_ = w;
    return {};
}

// One MemBlock on its input m.next_input() [H, W, C]; the result [H, W, C] goes to dst (the next
// block's input buffer, or the stage's scratch `a` for the last block).
Status TaehvDecoder::mem_block(TaehvMemBlock & m, TaehvStage & st, const Tensor & dst) {
    const Tensor & x = m.next_input();
    const Tensor   past = m.has_past ? m.buf[size_t(m.cur ^ 1)] : Tensor();  // undefined = zero frame (t = 0)
    AVS_TRY(be_.conv3d(as_out(st.a), {past, x}, m.conv0.w, &m.conv0.b, k_mem_conv0));  // a = conv.0(cat[x, past])
    AVS_TRY(be_.relu(st.a, st.a));
    AVS_TRY(be_.conv3d(as_out(st.b), {st.a}, m.conv2.w, &m.conv2.b, k_conv3x3));      // b = conv.2(relu(a))
    AVS_TRY(be_.relu(st.b, st.b));
    AVS_TRY(be_.copy(dst, x));                                                          // dst = x_t (skip)
    AVS_TRY(be_.conv3d(as_out(dst), {st.b}, m.conv4.w, &m.conv4.b, k_conv3x3_acc));    // dst += conv.4(relu(b))
    AVS_TRY(be_.relu(dst, dst));
    // x_t becomes the past of the next step; the old past's buffer receives the next input.
    m.cur ^= 1;
    m.has_past = true;
    return {};
}

// Stage s on the frame waiting in its first block's input buffer; recurses into stage s + 1 once per
// TGrow sub-frame (depth first: each block still sees its inputs in time order, which is all the
// memories need), and at the last stage writes output frames.
Status TaehvDecoder::run_stage(int s, std::vector<Tensor> & out) {
    TaehvStage & st = stages_[size_t(s)];
    const int64_t C = st.c;
    for (int i = 0; i < 3; ++i)  // [H, W, C] -> [H, W, C]; the last block's output lands in st.a
        AVS_TRY(mem_block(st.blocks[size_t(i)], st, i < 2 ? st.blocks[size_t(i) + 1].next_input() : st.a));
    if (s == 2 && raw_frames_ + st.stride <= k_trim) {  // every frame this gives is a trimmed startup frame
        raw_frames_ += st.stride;
        return {};
    }
    // TGrow before the upsample: a 1x1 conv commutes with nearest upsampling, so run it on the small
    // frame: grown [H, W, stride*C]; sub-frame k = channels [k*C, (k+1)*C), a view with pixel stride stride*C.
    AVS_TRY(be_.conv3d(as_out(st.grown), {st.a}, st.tgrow.w, nullptr, k_pointwise));
    for (int64_t k = 0; k < st.stride; ++k) {
        const Tensor sub = st.grown.slice(2, k * C, (k + 1) * C);
        if (s < 2) {
            // Upsample x2 + decoder.{8,14}: [H, W, C] -> next stage's input [2H, 2W, c_{s+1}]
            AVS_TRY(be_.conv3d(as_out(stages_[size_t(s) + 1].blocks[0].next_input()), {sub}, st.proj.w, nullptr, k_up_conv3x3));
            AVS_TRY(run_stage(s + 1, out));
            continue;
        }
        if (raw_frames_++ < k_trim) continue;  // startup frame: no memory depends on it, skip it
        // Upsample x2 + decoder.20: [4h, 4w, c2] -> [8h, 8w, c3]; 21 ReLU; 22: -> [8h, 8w, 3]
        AVS_TRY(be_.conv3d(as_out(head_), {sub}, st.proj.w, nullptr, k_up_conv3x3));
        AVS_TRY(be_.relu(head_, head_));
        const Tensor & y = out_[size_t(n_out_++)];
        AVS_TRY(be_.conv3d(as_out(y), {head_}, conv22_.w, &conv22_.b, k_conv3x3));
        out.push_back(y);
    }
    return {};
}

Status TaehvDecoder::push(const Tensor & latents, int64_t f, std::vector<Tensor> & out) {
    const int64_t L = cfg_.latent;
    if (latents.ndim() != 4 || latents.dim(0) != L || latents.dtype() != DType::f32 || !latents.is_contiguous())
        return make_error(ErrorCode::shape, "taehv: latents %s, expected contiguous f32 [%lld, F, h, w]", latents.str().c_str(),
                          (long long) L);
    if (f < 0 || f >= latents.dim(1))
        return make_error(ErrorCode::invalid_argument, "taehv: frame %lld of latents %s", (long long) f, latents.str().c_str());
    const int64_t h = latents.dim(2), w = latents.dim(3);
    if (pushed_ > 0 && (h != h_ || w != w_))
        return make_error(ErrorCode::shape, "taehv: latent size %lldx%lld changed mid-stream (was %lldx%lld); reset() first",
                          (long long) h, (long long) w, (long long) h_, (long long) w_);
    AVS_TRY(ensure_buffers(h, w));

    // decoder.0: frame f of [L, F, h, w] is the row-strided [L, h*w] view -> channels-last [h*w, L], 3 tanh(x/3)
    AVS_TRY(be_.transpose(zt_.reshape(Shape{h * w, L}), latents.select(1, f).reshape(Shape{L, h * w})));
    AVS_TRY(be_.tanh_clamp(zt_, zt_, 3.0f));
    // decoder.1-2: [h, w, L] -> [h, w, c0] straight into the first MemBlock's input buffer
    const Tensor & x0 = stages_[0].blocks[0].next_input();
    AVS_TRY(be_.conv3d(as_out(x0), {zt_}, conv1_.w, &conv1_.b, k_conv3x3));
    AVS_TRY(be_.relu(x0, x0));
    n_out_ = 0;
    AVS_TRY(run_stage(0, out));
    ++pushed_;
    return {};
}

} // namespace avs
