// Host side of the TMA loads (kernels/tma.cuh): encoding the tensor maps of the warp-specialized
// attention kernels through the runtime's driver entry point (no libcuda link dependency).
// .cu files only.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace avs::kernels::tma {

// cuTensorMapEncodeTiled, or null when the driver does not provide it.
inline PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void *                          p = nullptr;
        cudaDriverEntryPointQueryResult r{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &r) != cudaSuccess ||
            r != cudaDriverEntryPointSuccess)
            p = nullptr;
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

// A 4-D map over [count][rows][H][row_bytes] with the `count` blocks `block_bytes` apart, boxes of
// bk rows x box_bytes of one head (box_bytes <= 128 in the 128-byte swizzle). bf16: elements are bf16
// (row_bytes = 2 D), else bytes.
inline bool encode(CUtensorMap & m, const void * base, bool bf16, int row_bytes, int H, int64_t rows, int64_t count, int64_t block_bytes,
                   int bk, int box_bytes, bool swizzle128) {
    const auto fn = encode_fn();
    if (!fn || !base || rows <= 0 || count <= 0) return false;
    const int        esz = bf16 ? 2 : 1;
    const cuuint64_t dims[4] = {cuuint64_t(row_bytes / esz), cuuint64_t(H), cuuint64_t(rows), cuuint64_t(count)};
    const cuuint64_t strides[3] = {cuuint64_t(row_bytes), cuuint64_t(H) * row_bytes, cuuint64_t(block_bytes)};
    const cuuint32_t box[4] = {cuuint32_t(box_bytes / esz), 1, cuuint32_t(bk), 1}, elem[4] = {1, 1, 1, 1};
    return fn(&m, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, const_cast<void *>(base), dims, strides, box,
              elem, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// Whether the current device is a 9.0 Hopper, this build has sm_90a code and the driver encodes maps
// (cached per device: a process may see several GPUs).
inline bool hopper_ready() {
#if defined(AVS_CUDA_SM90A)
    static std::atomic<int8_t> by_dev[64] = {};  // 0 unknown, 1 yes, -1 no
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
    if (by_dev[dev].load() == 0) {
        int major = 0, minor = 0;
        const bool yes = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 && minor == 0 &&
                         encode_fn() != nullptr;
        by_dev[dev].store(yes ? 1 : -1);
    }
    return by_dev[dev].load() > 0;
#else
    return false;
#endif
}

} // namespace avs::kernels::tma
