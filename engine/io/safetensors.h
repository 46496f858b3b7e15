// safetensors reading (single file, or sharded through `*.safetensors.index.json`) and writing.
//
// File layout: u64 little-endian N | N bytes of UTF-8 JSON header | data section.
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
// to the data section) plus an optional "__metadata__" object of string values.
// Everything is validated: header length vs file size, JSON syntax and field types, dtype names,
// shape x dtype size == byte range, ranges inside the data section and not overlapping.
#pragma once

#include "engine/core/result.h"
#include "engine/core/tensor.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace avs {

class MappedFile;

struct TensorInfo {
    std::string     name;
    DType           dtype = DType::f32;
    Shape           shape;
    uint64_t        begin = 0;      // byte offsets relative to the data section
    uint64_t        end   = 0;
    const uint8_t * data  = nullptr;  // points into the mapping (or the caller's buffer for parse())
    std::string     file;           // the file this tensor lives in
};

class SafetensorsFile {
public:
    static Result<std::unique_ptr<SafetensorsFile>> open(const std::string & path);
    // Parse an in-memory image (used by open() and by the fuzzer). `name` labels error messages.
    // The returned object points into `data`, which must outlive it.
    static Result<std::unique_ptr<SafetensorsFile>> parse(const uint8_t * data, uint64_t size, const std::string & name);

    const std::vector<TensorInfo> &             tensors() const { return tensors_; }
    const TensorInfo *                          find(const std::string & name) const;
    const std::map<std::string, std::string> &  metadata() const { return metadata_; }
    const std::string &                         path() const { return path_; }

private:
    std::shared_ptr<MappedFile>        map_;
    std::string                        path_;
    std::vector<TensorInfo>            tensors_;
    std::map<std::string, std::string> metadata_;
};

// A checkpoint: one safetensors file, a sharded set described by an index JSON, or a directory
// holding either (index preferred; else exactly one *.safetensors).
class Checkpoint {
public:
    static Result<std::unique_ptr<Checkpoint>> open(const std::string & path);

    const std::vector<TensorInfo> & tensors() const { return tensors_; }  // all shards, sorted by name
    const TensorInfo *              find(const std::string & name) const;
    const std::string &             path() const { return path_; }
    // Directory holding the checkpoint (for a sibling config.json).
    const std::string &             dir() const { return dir_; }
    // `__metadata__` of the (first) file: our own exports carry their model config here.
    const std::map<std::string, std::string> & metadata() const;

private:
    std::string                                   path_;
    std::string                                   dir_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<TensorInfo>                       tensors_;
};

// Read a tensor from a checkpoint into a new host tensor of `dtype` (converting; f32 targets accept
// every stored float/int dtype).
Result<Tensor> read_tensor(const TensorInfo & info, DType dtype);

// Write host tensors (contiguous or not) to a safetensors file. Names must be unique.
Status write_safetensors(const std::string & path, const std::vector<std::pair<std::string, Tensor>> & tensors,
                         const std::map<std::string, std::string> & metadata = {});

} // namespace avs
