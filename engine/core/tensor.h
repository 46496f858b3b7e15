// Tensor: a typed, shaped, strided view into a reference-counted buffer on a device.
// Shapes are written outermost-first (PyTorch order); strides are in elements.
// A Tensor is cheap to copy (it shares the buffer); views share storage with their parent.
#pragma once

#include "engine/core/dtype.h"
#include "engine/core/result.h"

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace avs {

constexpr int kMaxDims = 8;

struct Shape {
    int                             ndim = 0;
    std::array<int64_t, kMaxDims>   dims{};

    Shape() = default;
    Shape(std::initializer_list<int64_t> d);
    explicit Shape(const std::vector<int64_t> & d);

    int64_t   operator[](int i) const { return dims[size_t(i < 0 ? i + ndim : i)]; }
    int64_t & operator[](int i) { return dims[size_t(i < 0 ? i + ndim : i)]; }
    int64_t   numel() const;
    bool      operator==(const Shape & o) const;
    bool      operator!=(const Shape & o) const { return !(*this == o); }
    std::vector<int64_t> to_vector() const { return {dims.begin(), dims.begin() + ndim}; }
    std::string str() const;  // "[16, 3, 8, 8]"
};

// Owning storage. CPU buffers come from aligned heap memory or a file mapping; the CUDA backend
// hands out buffers from its pool through the same type (the deleter returns them).
class Buffer {
public:
    Buffer(void * data, uint64_t bytes, Device device, std::function<void(void *)> deleter)
        : data_(data), bytes_(bytes), device_(device), deleter_(std::move(deleter)) {}
    ~Buffer() { if (deleter_) deleter_(data_); }
    Buffer(const Buffer &) = delete;
    Buffer & operator=(const Buffer &) = delete;

    void *   data() const { return data_; }
    uint64_t bytes() const { return bytes_; }
    Device   device() const { return device_; }

    // 64-byte aligned, zero-initialised host memory.
    static Result<std::shared_ptr<Buffer>> alloc_host(uint64_t bytes);

private:
    void *                      data_;
    uint64_t                    bytes_;
    Device                      device_;
    std::function<void(void *)> deleter_;
};

class Tensor {
public:
    Tensor() = default;
    Tensor(std::shared_ptr<Buffer> buf, uint64_t offset_bytes, DType dtype, const Shape & shape);

    // Contiguous, zero-filled host tensor. Fails only on allocation failure.
    static Result<Tensor> zeros(DType dtype, const Shape & shape);
    // Same, for tests and small scratch: returns an empty tensor on allocation failure (callers
    // check defined()) instead of a Result.
    static Tensor host(DType dtype, const Shape & shape);

    bool          defined() const { return buf_ != nullptr; }
    DType         dtype() const { return dtype_; }
    Device        device() const { return buf_ ? buf_->device() : Device::cpu; }
    const Shape & shape() const { return shape_; }
    int           ndim() const { return shape_.ndim; }
    int64_t       dim(int i) const { return shape_[i]; }
    int64_t       stride(int i) const { return strides_[size_t(i < 0 ? i + shape_.ndim : i)]; }
    int64_t       numel() const { return shape_.numel(); }
    uint64_t      nbytes() const { return dtype_bytes(dtype_, uint64_t(numel())); }
    bool          is_contiguous() const;

    void * raw() const { return static_cast<char *>(buf_->data()) + offset_; }
    template <typename T> T * data() const { return static_cast<T *>(raw()); }
    const std::shared_ptr<Buffer> & buffer() const { return buf_; }

    // Views (share storage). reshape works whenever the new shape can be expressed with strides over
    // the same elements (as PyTorch's view: e.g. merging the contiguous inner dims of a strided
    // slice); otherwise it returns an undefined tensor.
    Tensor reshape(const Shape & shape) const;
    Tensor slice(int dim, int64_t begin, int64_t end) const;  // [begin, end) along dim
    Tensor select(int dim, int64_t index) const;              // drops dim

    std::string str() const;  // "bf16[16, 3, 8, 8]"

private:
    std::shared_ptr<Buffer>             buf_;
    uint64_t                            offset_ = 0;
    DType                               dtype_  = DType::f32;
    Shape                               shape_;
    std::array<int64_t, kMaxDims>       strides_{};
};

// Convert `n` contiguous elements of type `src_t` to f32 (host). Supported sources:
// f32, f16, bf16, f64, fp8_e4m3, i8, u8, i32, i64.
Status convert_to_f32(const void * src, DType src_t, float * dst, uint64_t n);
// Convert n f32 values into `dst_t` (f32, f16, bf16, fp8_e4m3).
Status convert_from_f32(const float * src, void * dst, DType dst_t, uint64_t n);

} // namespace avs
