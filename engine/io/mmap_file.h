// Read-only memory mapping of a whole file (RAII). Checkpoints are read through mappings so that
// a multi-GB file costs no copy until its tensors are converted onto the backend.
#pragma once

#include "engine/core/result.h"

#include <cstdint>
#include <memory>
#include <string>

namespace avs {

class MappedFile {
public:
    static Result<std::shared_ptr<MappedFile>> open(const std::string & path);
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile & operator=(const MappedFile &) = delete;

    const uint8_t *     data() const { return data_; }
    uint64_t            size() const { return size_; }
    const std::string & path() const { return path_; }

private:
    MappedFile() = default;
    const uint8_t * data_ = nullptr;
    uint64_t        size_ = 0;
    std::string     path_;
};

} // namespace avs
