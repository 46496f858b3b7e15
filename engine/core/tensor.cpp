#include "engine/core/tensor.h"

#include <cstdlib>
#include <sstream>

namespace avs {

Shape::Shape(std::initializer_list<int64_t> d) {
    for (int64_t v : d) dims[size_t(ndim++)] = v;
}

Shape::Shape(const std::vector<int64_t> & d) {
    for (int64_t v : d) dims[size_t(ndim++)] = v;
}

int64_t Shape::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[size_t(i)];
    return n;
}

bool Shape::operator==(const Shape & o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; ++i)
        if (dims[size_t(i)] != o.dims[size_t(i)]) return false;
    return true;
}

std::string Shape::str() const {
    std::ostringstream s;
    s << '[';
    for (int i = 0; i < ndim; ++i) s << (i ? ", " : "") << dims[size_t(i)];
    s << ']';
    return s.str();
}

Result<std::shared_ptr<Buffer>> Buffer::alloc_host(uint64_t bytes) {
    const uint64_t size = ((bytes ? bytes : 1) + 63) / 64 * 64;
    void * p = std::aligned_alloc(64, size);
    if (!p) return make_error(ErrorCode::internal, "out of host memory allocating %llu bytes", (unsigned long long) bytes);
    std::memset(p, 0, size);
    return std::make_shared<Buffer>(p, bytes, Device::cpu, [](void * q) { std::free(q); });
}

Tensor::Tensor(std::shared_ptr<Buffer> buf, uint64_t offset_bytes, DType dtype, const Shape & shape)
    : buf_(std::move(buf)), offset_(offset_bytes), dtype_(dtype), shape_(shape) {
    int64_t s = 1;
    for (int i = shape_.ndim - 1; i >= 0; --i) {
        strides_[size_t(i)] = s;
        s *= shape_.dims[size_t(i)];
    }
}

Result<Tensor> Tensor::zeros(DType dtype, const Shape & shape) {
    auto buf = Buffer::alloc_host(dtype_bytes(dtype, uint64_t(shape.numel())));
    if (!buf) return buf.status();
    return Tensor(std::move(buf).value(), 0, dtype, shape);
}

Tensor Tensor::host(DType dtype, const Shape & shape) {
    auto t = zeros(dtype, shape);
    return t ? std::move(t).value() : Tensor();
}

bool Tensor::is_contiguous() const {
    int64_t s = 1;
    for (int i = shape_.ndim - 1; i >= 0; --i) {
        if (shape_.dims[size_t(i)] != 1 && strides_[size_t(i)] != s) return false;
        s *= shape_.dims[size_t(i)];
    }
    return true;
}

Tensor Tensor::reshape(const Shape & shape) const {
    if (shape.numel() != numel()) return Tensor();
    if (is_contiguous()) return Tensor(buf_, offset_, dtype_, shape);
    // Walk the old dims from the innermost, in runs that are contiguous with each other; each run
    // must be covered exactly by a run of new dims, which then get strides inside that run.
    Tensor t = *this;
    t.shape_ = shape;
    int     nd        = shape.ndim - 1;
    int64_t base      = strides_[size_t(shape_.ndim - 1)];
    int64_t old_count = 1, new_count = 1;
    for (int od = shape_.ndim - 1; od >= 0; --od) {
        old_count *= shape_.dims[size_t(od)];
        const bool run_ends = od == 0 || (shape_.dims[size_t(od - 1)] != 1 && strides_[size_t(od - 1)] != old_count * base);
        if (!run_ends) continue;
        while (nd >= 0 && (new_count < old_count || shape.dims[size_t(nd)] == 1)) {
            t.strides_[size_t(nd)] = new_count * base;
            new_count *= shape.dims[size_t(nd)];
            --nd;
        }
        if (new_count != old_count) return Tensor();
        if (od > 0) {
            base      = strides_[size_t(od - 1)];
            old_count = new_count = 1;
        }
    }
    return nd == -1 ? t : Tensor();
}

Tensor Tensor::slice(int dim, int64_t begin, int64_t end) const {
    if (dim < 0) dim += shape_.ndim;
    Tensor t = *this;
    if (dim < 0 || dim >= shape_.ndim || begin < 0 || end > shape_[dim] || begin > end) return Tensor();
    t.shape_[dim] = end - begin;
    t.offset_ += dtype_bytes(dtype_, uint64_t(begin * strides_[size_t(dim)]));
    return t;
}

Tensor Tensor::select(int dim, int64_t index) const {
    if (dim < 0) dim += shape_.ndim;
    Tensor t = slice(dim, index, index + 1);
    if (!t.defined()) return t;
    for (int i = dim; i < shape_.ndim - 1; ++i) {
        t.shape_.dims[size_t(i)] = t.shape_.dims[size_t(i + 1)];
        t.strides_[size_t(i)]    = t.strides_[size_t(i + 1)];
    }
    t.shape_.ndim--;
    return t;
}

std::string Tensor::str() const { return std::string(dtype_name(dtype_)) + shape_.str(); }

Status convert_to_f32(const void * src, DType t, float * dst, uint64_t n) {
    switch (t) {
        case DType::f32: std::memcpy(dst, src, n * 4); return {};
        case DType::f16: {
            auto s = static_cast<const uint16_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
            return {};
        }
        case DType::bf16: {
            auto s = static_cast<const uint16_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
            return {};
        }
        case DType::f64: {
            auto s = static_cast<const double *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return {};
        }
        case DType::fp8_e4m3: {
            auto s = static_cast<const uint8_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = fp8e4m3_to_f32(s[i]);
            return {};
        }
        case DType::i8: {
            auto s = static_cast<const int8_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return {};
        }
        case DType::u8: {
            auto s = static_cast<const uint8_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return {};
        }
        case DType::i32: {
            auto s = static_cast<const int32_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return {};
        }
        case DType::i64: {
            auto s = static_cast<const int64_t *>(src);
            for (uint64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return {};
        }
        case DType::int4: break;
    }
    return make_error(ErrorCode::unsupported, "cannot convert %s to f32", dtype_name(t));
}

Status convert_from_f32(const float * src, void * dst, DType t, uint64_t n) {
    switch (t) {
        case DType::f32: std::memcpy(dst, src, n * 4); return {};
        case DType::f16: {
            auto d = static_cast<uint16_t *>(dst);
            for (uint64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
            return {};
        }
        case DType::bf16: {
            auto d = static_cast<uint16_t *>(dst);
            for (uint64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
            return {};
        }
        case DType::fp8_e4m3: {
            auto d = static_cast<uint8_t *>(dst);
            for (uint64_t i = 0; i < n; ++i) d[i] = f32_to_fp8e4m3(src[i]);
            return {};
        }
        default: break;
    }
    return make_error(ErrorCode::unsupported, "cannot convert f32 to %s", dtype_name(t));
}

} // namespace avs
