// libFuzzer target for the safetensors parser: every input must either fail with a Status or give
// tensors whose bytes all lie inside the input (ASan checks the reads; UBSan the arithmetic).
#include "engine/io/safetensors.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    auto f = avs::SafetensorsFile::parse(data, size, "fuzz");
    if (!f.ok()) return 0;
    volatile uint32_t sum = 0;
    for (const auto & t : f.value()->tensors()) {
        for (uint64_t i = 0; i < t.end - t.begin; ++i) sum = sum + t.data[i];
        if (f.value()->find(t.name) != &t) __builtin_trap();  // find() must see every parsed tensor
        // Conversions read through the same pointers; inputs are small, so copies are cheap.
        auto same = avs::read_tensor(t, t.dtype);
        auto f32  = avs::read_tensor(t, avs::DType::f32);
        if (!same.ok() || !f32.ok()) __builtin_trap();  // every dtype parse() accepts converts to f32
        if (same.value().nbytes() != t.end - t.begin) __builtin_trap();
    }
    return 0;
}
