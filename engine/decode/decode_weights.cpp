#include "engine/decode/decode_weights.h"
#include "engine/runtime/rng.h"

#include <cmath>
#include <functional>

namespace avs {

namespace {

uint64_t name_hash(const std::string & s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a: a tensor's random values depend on its name only
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string dims_str(const std::vector<int64_t> & d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

} // namespace

Result<Tensor> DecodeWeightSource::host_f32(const std::string & name, const std::vector<int64_t> & shape, bool is_gamma) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (!ckpt_) {
        AVS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(DType::f32, Shape(shape)));
        float * p = t.data<float>();
        fill_normal(p, n, rng_stream(seed_, name_hash(name)), 1.0f);
        // uniform-ish bounded values from the normal stream: keeps activations O(1) through deep stacks
        const float bound = shape.size() >= 2 ? float(1.0 / std::sqrt(double(n / shape[0]))) : 0.1f;
        for (int64_t i = 0; i < n; ++i) p[i] = (is_gamma ? 1.0f : 0.0f) + bound * std::tanh(p[i]);
        return t;
    }
    const TensorInfo * info = ckpt_->find(name);
    if (!info) return make_error(ErrorCode::missing, "%s: missing tensor '%s' (expected %s)", ckpt_->path().c_str(),
                                 name.c_str(), dims_str(shape).c_str());
    if (info->shape.numel() != n)
        return make_error(ErrorCode::shape, "%s: tensor '%s' has shape %s, expected %s", ckpt_->path().c_str(), name.c_str(),
                          info->shape.str().c_str(), dims_str(shape).c_str());
    // float weights only: integer or fp8 data (with scales elsewhere) would load as numbers and decode garbage
    if (info->dtype != DType::f32 && info->dtype != DType::f16 && info->dtype != DType::bf16)
        return make_error(ErrorCode::format, "%s: tensor '%s' is %s, expected F32, F16 or BF16", ckpt_->path().c_str(), name.c_str(),
                          dtype_name(info->dtype));
    AVS_ASSIGN_OR_RETURN(Tensor t, read_tensor(*info, DType::f32));
    return t.reshape(Shape(shape));
}

Result<Tensor> DecodeWeightSource::upload_weight(const Tensor & host) {
    AVS_ASSIGN_OR_RETURN(Tensor d, backend_.alloc(backend_.weight_dtype(), host.shape()));
    AVS_TRY(backend_.upload(d, host));
    bytes_ += d.nbytes();
    return d;
}

Result<Tensor> DecodeWeightSource::upload_vec(const Tensor & host) {
    AVS_ASSIGN_OR_RETURN(Tensor d, backend_.alloc(DType::f32, Shape{host.numel()}));
    AVS_TRY(backend_.upload(d, host.reshape(Shape{host.numel()})));
    bytes_ += d.nbytes();
    return d;
}

Result<Tensor> DecodeWeightSource::conv_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw,
                                              int64_t c0, int64_t c1, int64_t o0, int64_t o1) {
    if (c0 < 0 || c1 > cin || c0 >= c1 || o0 < 0 || o1 > cout || o0 >= o1)
        return make_error(ErrorCode::internal, "conv weight '%s': bad channel slice", name.c_str());
    // Stored layout [cout, cin, kt, kh, kw] (a 4-D weight is the same bytes with kt = 1).
    AVS_ASSIGN_OR_RETURN(Tensor src, host_f32(name, {cout, cin, int64_t(kt), int64_t(kh), int64_t(kw)}));
    const int64_t taps = int64_t(kt) * kh * kw, ci_n = c1 - c0, co_n = o1 - o0;
    AVS_ASSIGN_OR_RETURN(Tensor dst, Tensor::zeros(DType::f32, Shape{co_n, taps * ci_n}));
    const float * S = src.data<float>();
    float *       D = dst.data<float>();
    for (int64_t co = 0; co < co_n; ++co)
        for (int64_t ci = 0; ci < ci_n; ++ci)
            for (int64_t tap = 0; tap < taps; ++tap)
                D[co * taps * ci_n + tap * ci_n + ci] = S[((o0 + co) * cin + (c0 + ci)) * taps + tap];
    return upload_weight(dst);
}

Result<Tensor> DecodeWeightSource::conv(const std::string & name, int64_t cout, int64_t cin, int kt, int kh, int kw) {
    return conv_slice(name, cout, cin, kt, kh, kw, 0, cin, 0, cout);
}

Result<Tensor> DecodeWeightSource::conv_in_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh,
                                                 int kw, int64_t c0, int64_t c1) {
    return conv_slice(name, cout, cin, kt, kh, kw, c0, c1, 0, cout);
}

Result<Tensor> DecodeWeightSource::conv_out_slice(const std::string & name, int64_t cout, int64_t cin, int kt, int kh,
                                                  int kw, int64_t o0, int64_t o1) {
    return conv_slice(name, cout, cin, kt, kh, kw, 0, cin, o0, o1);
}

Result<Tensor> DecodeWeightSource::vec(const std::string & name, int64_t n, bool is_gamma) {
    AVS_ASSIGN_OR_RETURN(Tensor h, host_f32(name, {n}, is_gamma));
    return upload_vec(h);
}

} // namespace avs
