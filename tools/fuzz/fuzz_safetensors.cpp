// libFuzzer target for the safetensors parser: every input must either fail with a Status or give
// tensors whose bytes are all inside the input (ASan checks the reads).
#include "engine/io/safetensors.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    auto f = avs::SafetensorsFile::parse(data, size, "fuzz");
    if (!f.ok()) return 0;
    volatile uint32_t sum = 0;
    for (const auto & t : f.value()->tensors()) {
        for (uint64_t i = 0; i < t.end - t.begin; ++i) sum = sum + t.data[i];
        (void) f.value()->find(t.name);
    }
    return 0;
}
