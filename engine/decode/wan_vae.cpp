// Wan2.1 VAE decoder: checkpoint key layouts, weight loading (with the latent de-normalisation folded
// into conv2 and to_qkv split into q/k/v), the factory and the state accounting. The forward pass is
// in wan_vae_blocks.cpp.
#include "engine/decode/wan_vae.h"

#include "engine/core/log.h"
#include "engine/io/safetensors.h"

#include <cmath>
#include <set>

namespace avs {

const float kWanVaeLatentMean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,  -0.1517f, 1.5508f,
                                     0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
const float kWanVaeLatentStd[16]  = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                     3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

// Official key names -> the checkpoint's: the official layout (Wan2.1_VAE.pth, our converter, and the
// community safetensors repacks such as Comfy-Org's wan_2.1_vae.safetensors, which keep the official
// names), optionally under a prefix ("vae.", "first_stage_model."), or diffusers' AutoencoderKLWan.
class WanKeyMap {
public:
    std::string prefix;
    bool        diffusers = false;

    std::string operator()(const std::string & official) const { return prefix + (diffusers ? to_diffusers(official) : official); }

    static std::string to_diffusers(const std::string & k) {
        auto starts = [&](const char * p) { return k.rfind(p, 0) == 0; };
        if (starts("conv2.")) return "post_quant_conv." + k.substr(6);
        std::string n = k.substr(8);  // drop "decoder."
        if (n.rfind("conv1.", 0) == 0) return "decoder.conv_in." + n.substr(6);
        if (n == "head.0.gamma") return "decoder.norm_out.gamma";
        if (n.rfind("head.2.", 0) == 0) return "decoder.conv_out." + n.substr(7);
        // middle.N.rest / upsamples.N.rest
        const bool   mid = n.rfind("middle.", 0) == 0;
        const size_t a = n.find('.') + 1, b = n.find('.', a);
        const int    idx = std::stoi(n.substr(a, b - a));
        std::string  rest = n.substr(b + 1);
        static const std::pair<const char *, const char *> sub[] = {{"residual.0.gamma", "norm1.gamma"},
                                                                     {"residual.2.", "conv1."},
                                                                     {"residual.3.gamma", "norm2.gamma"},
                                                                     {"residual.6.", "conv2."},
                                                                     {"shortcut.", "conv_shortcut."}};
        for (const auto & [o, d] : sub)
            if (rest.rfind(o, 0) == 0) {
                rest = d + rest.substr(std::string(o).size());
                break;
            }
        if (mid) {
            static const char * blk[] = {"resnets.0", "attentions.0", "resnets.1"};
            return "decoder.mid_block." + std::string(blk[idx]) + "." + rest;
        }
        // decoder.upsamples.N = up_blocks.(N / 4): resnets.(N % 4) for N % 4 < 3, upsamplers.0 for N % 4 == 3
        const std::string blk = idx % 4 == 3 ? "upsamplers.0" : "resnets." + std::to_string(idx % 4);
        return "decoder.up_blocks." + std::to_string(idx / 4) + "." + blk + "." + rest;
    }
};

namespace {

bool ends_with(const std::string & s, const std::string & suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string dims_str(const std::vector<int64_t> & d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

// Detect the key layout from the anchor tensor decoder.conv1 / decoder.conv_in, and the widths from its shape.
Status detect_layout(const Checkpoint & ck, WanKeyMap & keys, WanVaeConfig & cfg) {
    const TensorInfo * anchor = nullptr;
    int                found = 0;
    for (const TensorInfo & t : ck.tensors()) {
        if (ends_with(t.name, "decoder.upsamples.0.upsamples.0.residual.2.weight"))
            return make_error(ErrorCode::unsupported, "%s: this is a Wan2.2 VAE (tensor '%s'); only the Wan2.1 VAE is supported",
                              ck.path().c_str(), t.name.c_str());
        const bool off = ends_with(t.name, "decoder.conv1.weight"), dif = ends_with(t.name, "decoder.conv_in.weight");
        if (!off && !dif) continue;
        ++found;
        anchor = &t;
        keys.diffusers = dif;
        keys.prefix = t.name.substr(0, t.name.size() - std::string(dif ? "decoder.conv_in.weight" : "decoder.conv1.weight").size());
    }
    if (found != 1)
        return make_error(ErrorCode::missing, "%s: not a Wan2.1 VAE: %s tensor 'decoder.conv1.weight' (or diffusers 'decoder.conv_in.weight')",
                          ck.path().c_str(), found ? "more than one" : "no");
    const Shape & s = anchor->shape;
    if (s.ndim != 5 || s[0] % 4 != 0 || s[2] != 3 || s[3] != 3 || s[4] != 3)
        return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected [4*dim, z_dim, 3, 3, 3]", ck.path().c_str(),
                          anchor->name.c_str(), s.str().c_str());
    cfg.dim = s[0] / 4;
    cfg.z_dim = s[1];
    return {};
}

// The weight loader checks element counts; also require the stored shape to equal the official one
// up to size-1 dims (gamma [C,1,1,1] vs [C], conv2d [o,i,3,3] vs [o,i,1,3,3]), so a transposed
// weight is an error, not a silent misread.
Status check_shape(const Checkpoint * ck, const std::string & name, std::vector<int64_t> want) {
    if (!ck) return {};
    const TensorInfo * info = ck->find(name);
    if (!info) return make_error(ErrorCode::missing, "%s: missing tensor '%s' (expected %s)", ck->path().c_str(), name.c_str(),
                                 dims_str(want).c_str());
    std::vector<int64_t> a, b;
    for (int i = 0; i < info->shape.ndim; ++i)
        if (info->shape[i] != 1) a.push_back(info->shape[i]);
    for (int64_t d : want)
        if (d != 1) b.push_back(d);
    if (a != b)
        return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected %s", ck->path().c_str(), name.c_str(),
                          info->shape.str().c_str(), dims_str(want).c_str());
    return {};
}

} // namespace

Status WanVaeDecoder::load_weights(DecodeWeightSource & src, const WanKeyMap & K, const Checkpoint * ck) {
    const int64_t z = cfg_.z_dim, c4 = 4 * cfg_.dim, c2 = 2 * cfg_.dim, c1 = cfg_.dim;

    auto conv = [&](WanConv & c, const std::string & p, int64_t cout, int64_t cin, int kt, int kh, int kw, bool conv2d = false) -> Status {
        std::vector<int64_t> want = {cout, cin};
        if (!conv2d) want.push_back(kt);
        want.push_back(kh), want.push_back(kw);
        AVS_TRY(check_shape(ck, K(p + ".weight"), want));
        AVS_TRY(check_shape(ck, K(p + ".bias"), {cout}));
        AVS_ASSIGN_OR_RETURN(c.w, src.conv(K(p + ".weight"), cout, cin, kt, kh, kw));
        AVS_ASSIGN_OR_RETURN(c.b, src.vec(K(p + ".bias"), cout));
        return {};
    };
    auto gamma = [&](Tensor & g, const std::string & name, int64_t c) -> Status {
        AVS_TRY(check_shape(ck, K(name), {c, 1, 1, 1}));
        AVS_ASSIGN_OR_RETURN(g, src.vec(K(name), c, /*is_gamma=*/true));
        return {};
    };
    auto res = [&](WanResBlock & b, const std::string & p, int64_t cin, int64_t cout) -> Status {
        b.cin = cin, b.cout = cout;
        AVS_TRY(gamma(b.gamma0, p + "residual.0.gamma", cin));
        AVS_TRY(conv(b.conv2, p + "residual.2", cout, cin, 3, 3, 3));
        AVS_TRY(gamma(b.gamma3, p + "residual.3.gamma", cout));
        AVS_TRY(conv(b.conv6, p + "residual.6", cout, cout, 3, 3, 3));
        if (cin != cout) AVS_TRY(conv(b.shortcut, p + "shortcut", cout, cin, 1, 1, 1));
        return {};
    };

    // conv2 with the de-normalisation folded in: conv2(z*std + mean) = (W diag(std)) z + (W mean + b).
    {
        const std::string wn = K("conv2.weight"), bn = K("conv2.bias");
        AVS_TRY(check_shape(ck, wn, {z, z, 1, 1, 1}));
        AVS_TRY(check_shape(ck, bn, {z}));
        AVS_ASSIGN_OR_RETURN(Tensor w, src.host_f32(wn, {z, z}));
        AVS_ASSIGN_OR_RETURN(Tensor b, src.host_f32(bn, {z}));
        AVS_ASSIGN_OR_RETURN(Tensor wf, Tensor::zeros(DType::f32, Shape{z, z}));
        AVS_ASSIGN_OR_RETURN(Tensor bf, Tensor::zeros(DType::f32, Shape{z}));
        const float * W = w.data<float>();
        for (int64_t o = 0; o < z; ++o) {
            double acc = b.data<float>()[o];
            for (int64_t i = 0; i < z; ++i) {
                wf.data<float>()[o * z + i] = W[o * z + i] * kWanVaeLatentStd[i];
                acc += double(W[o * z + i]) * kWanVaeLatentMean[i];
            }
            bf.data<float>()[o] = float(acc);
        }
        AVS_ASSIGN_OR_RETURN(conv2_.w, src.upload_weight(wf));  // [z, z] is already the 1x1 GEMM layout
        AVS_ASSIGN_OR_RETURN(conv2_.b, src.upload_vec(bf));
    }
    AVS_TRY(conv(conv1_, "decoder.conv1", c4, z, 3, 3, 3));
    AVS_TRY(res(mid0_, "decoder.middle.0.", c4, c4));
    {
        // to_qkv [3C, C, 1, 1] -> q = rows [0, C), k = [C, 2C), v = [2C, 3C)
        const std::string p = "decoder.middle.1.";
        AVS_TRY(check_shape(ck, K(p + "norm.gamma"), {c4, 1, 1}));
        AVS_ASSIGN_OR_RETURN(mid1_.gamma, src.vec(K(p + "norm.gamma"), c4, true));
        AVS_TRY(check_shape(ck, K(p + "to_qkv.weight"), {3 * c4, c4, 1, 1}));
        AVS_TRY(check_shape(ck, K(p + "to_qkv.bias"), {3 * c4}));
        AVS_ASSIGN_OR_RETURN(Tensor qkv_b, src.host_f32(K(p + "to_qkv.bias"), {3 * c4}));
        WanConv * parts[3] = {&mid1_.q, &mid1_.k, &mid1_.v};
        for (int i = 0; i < 3; ++i) {
            AVS_ASSIGN_OR_RETURN(parts[i]->w, src.conv_out_slice(K(p + "to_qkv.weight"), 3 * c4, c4, 1, 1, 1, i * c4, (i + 1) * c4));
            AVS_ASSIGN_OR_RETURN(parts[i]->b, src.upload_vec(qkv_b.slice(0, i * c4, (i + 1) * c4)));
        }
        AVS_TRY(conv(mid1_.proj, p + "proj", c4, c4, 1, 1, 1, /*conv2d=*/true));
    }
    AVS_TRY(res(mid2_, "decoder.middle.2.", c4, c4));

    // decoder.upsamples: 3 x Res(4d,4d), up3d(4d); Res(2d,4d), 2 x Res(4d,4d), up3d(4d);
    //                    3 x Res(2d,2d), up2d(2d); 3 x Res(d,d)
    struct Step { char kind; int64_t cin, cout; };  // 'r' residual, 't' upsample3d, 's' upsample2d
    const Step steps[15] = {{'r', c4, c4}, {'r', c4, c4}, {'r', c4, c4}, {'t', c4, c2}, {'r', c2, c4},
                            {'r', c4, c4}, {'r', c4, c4}, {'t', c4, c2}, {'r', c2, c2}, {'r', c2, c2},
                            {'r', c2, c2}, {'s', c2, c1}, {'r', c1, c1}, {'r', c1, c1}, {'r', c1, c1}};
    res_.clear(), resamples_.clear(), order_.clear();
    res_.reserve(12), resamples_.reserve(3);
    for (int n = 0; n < 15; ++n) {
        const std::string p = "decoder.upsamples." + std::to_string(n) + ".";
        const Step &      s = steps[n];
        if (s.kind == 'r') {
            res_.emplace_back();
            AVS_TRY(res(res_.back(), p, s.cin, s.cout));
            order_.push_back(int(res_.size()) - 1);
            continue;
        }
        resamples_.emplace_back();
        WanResample & r = resamples_.back();
        r.temporal = s.kind == 't', r.c = s.cin;
        if (r.temporal) AVS_TRY(conv(r.time_conv, p + "time_conv", 2 * s.cin, s.cin, 3, 1, 1));
        AVS_TRY(conv(r.conv, p + "resample.1", s.cout, s.cin, 1, 3, 3, /*conv2d=*/true));
        order_.push_back(-int(resamples_.size()));
    }
    AVS_TRY(gamma(head_gamma_, "decoder.head.0.gamma", c1));
    AVS_TRY(conv(head_, "decoder.head.2", 3, c1, 3, 3, 3));
    return {};
}

Result<std::unique_ptr<WanVaeDecoder>> WanVaeDecoder::load(Backend & backend, const std::string & path, uint64_t random_seed,
                                                           const WanVaeConfig & config) {
    std::unique_ptr<Checkpoint> ck;
    WanVaeConfig                cfg = config;
    WanKeyMap                   keys;
    if (!path.empty()) {
        AVS_ASSIGN_OR_RETURN(ck, Checkpoint::open(path));
        AVS_TRY(detect_layout(*ck, keys, cfg));
        AVS_LOG_INFO("%s: Wan2.1 VAE decoder, %s key names%s%s, dim %lld, z_dim %lld", path.c_str(),
                     keys.diffusers ? "diffusers" : "official", keys.prefix.empty() ? "" : " under prefix ", keys.prefix.c_str(),
                     (long long) cfg.dim, (long long) cfg.z_dim);
    } else if (random_seed == 0) {
        return make_error(ErrorCode::invalid_argument, "wan vae: no weights file given (and no random seed)");
    }
    if (cfg.z_dim != 16)  // the latent mean/std table is for 16 channels
        return make_error(ErrorCode::unsupported, "%s: z_dim %lld (the Wan2.1 VAE has 16 latent channels)",
                          path.empty() ? "wan vae" : path.c_str(), (long long) cfg.z_dim);
    if (cfg.dim < 1) return make_error(ErrorCode::invalid_argument, "wan vae: dim %lld", (long long) cfg.dim);
    std::unique_ptr<WanVaeDecoder> d(new WanVaeDecoder(backend, cfg));
    DecodeWeightSource             src(backend, ck.get(), random_seed);
    AVS_TRY(d->load_weights(src, keys, ck.get()));
    d->weight_bytes_ = src.bytes();
    return d;
}

Result<std::unique_ptr<VideoDecoder>> load_wan_vae_decoder(Backend & backend, const std::string & path, uint64_t random_seed) {
    AVS_ASSIGN_OR_RETURN(auto d, WanVaeDecoder::load(backend, path, random_seed));
    return std::unique_ptr<VideoDecoder>(std::move(d));
}

void WanVaeDecoder::reset() {
    conv1_hist_.clear();
    head_hist_.clear();
    for (WanResBlock * b : {&mid0_, &mid2_}) b->hist2.clear(), b->hist6.clear();
    for (WanResBlock & b : res_) b.hist2.clear(), b.hist6.clear();
    for (WanResample & r : resamples_) r.hist.clear(), r.started = false;
    last_out_.clear();
    pushed_ = h_ = w_ = 0;
}

uint64_t WanVaeDecoder::state_bytes() const {
    std::set<const Buffer *> seen;
    uint64_t                 bytes = 0;
    auto add = [&](const Tensor & t) {
        if (t.defined() && seen.insert(t.buffer().get()).second) bytes += t.buffer()->bytes();
    };
    auto hist = [&](const CausalHistory & h) {
        for (const Tensor & t : h.prev) add(t);
    };
    hist(conv1_hist_), hist(head_hist_);
    for (const WanResBlock * b : {&mid0_, &mid2_}) hist(b->hist2), hist(b->hist6);
    for (const WanResBlock & b : res_) hist(b.hist2), hist(b.hist6);
    for (const WanResample & r : resamples_) hist(r.hist);
    for (const Tensor & t : last_out_) add(t);
    return bytes;
}

} // namespace avs
