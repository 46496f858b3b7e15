#include "engine/io/safetensors.h"

#include "engine/io/mmap_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace avs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // real headers are < 1 MB; anything huge is corrupt

// a*b without wrapping; false on overflow
bool mul_ok(uint64_t a, uint64_t b, uint64_t & out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    out = a * b;
    return true;
}

Status parse_entry(const std::string & file, const std::string & name, const json & e, TensorInfo & t) {
    auto bad = [&](const char * what) {
        return make_error(ErrorCode::format, "%s: tensor '%s': %s", file.c_str(), name.c_str(), what);
    };
    if (!e.is_object()) return bad("entry is not a JSON object");
    for (auto it = e.begin(); it != e.end(); ++it)
        if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
            return make_error(ErrorCode::format, "%s: tensor '%s': unexpected field '%s'", file.c_str(), name.c_str(), it.key().c_str());
    auto dt = e.find("dtype");
    if (dt == e.end() || !dt->is_string()) return bad("field 'dtype' missing or not a string");
    auto dtype = dtype_from_safetensors(dt->get<std::string>());
    if (!dtype)
        return make_error(ErrorCode::format, "%s: tensor '%s': unsupported dtype '%s' (expected F32, F16, BF16, F64, F8_E4M3, I8, U8, I32 or I64)",
                          file.c_str(), name.c_str(), dt->get<std::string>().c_str());
    t.dtype = *dtype;
    auto sh = e.find("shape");
    if (sh == e.end() || !sh->is_array()) return bad("field 'shape' missing or not an array");
    if (sh->size() > size_t(kMaxDims))
        return make_error(ErrorCode::format, "%s: tensor '%s': %zu dims, at most %d supported", file.c_str(), name.c_str(),
                          sh->size(), kMaxDims);
    uint64_t numel = 1;
    t.shape        = Shape{};
    for (auto & d : *sh) {
        if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
        const uint64_t v = d.get<uint64_t>();
        if (v > uint64_t(INT64_MAX) || !mul_ok(numel, v, numel)) return bad("shape overflows");
        t.shape.dims[size_t(t.shape.ndim++)] = int64_t(v);
    }
    auto off = e.find("data_offsets");
    if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
        return bad("field 'data_offsets' must be [begin, end] of non-negative integers");
    t.begin = (*off)[0].get<uint64_t>();
    t.end   = (*off)[1].get<uint64_t>();
    if (t.begin > t.end) return bad("data_offsets begin > end");
    uint64_t bits;
    if (!mul_ok(numel, uint64_t(dtype_bits(t.dtype)), bits)) return bad("shape overflows");
    const uint64_t bytes = (bits + 7) / 8;
    if (bytes != t.end - t.begin)
        return make_error(ErrorCode::format, "%s: tensor '%s': shape %s x %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                          file.c_str(), name.c_str(), t.shape.str().c_str(), dt->get<std::string>().c_str(),
                          (unsigned long long) bytes, (unsigned long long) t.begin, (unsigned long long) t.end,
                          (unsigned long long) (t.end - t.begin));
    return {};
}

} // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(const uint8_t * data, uint64_t size, const std::string & name) {
    if (size < 8)
        return make_error(ErrorCode::format, "%s: truncated: %llu bytes, a safetensors file has at least an 8-byte header length",
                          name.c_str(), (unsigned long long) size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little endian
    if (n == 0) return make_error(ErrorCode::format, "%s: header length is 0", name.c_str());
    if (n > kMaxHeader)
        return make_error(ErrorCode::format, "%s: header length %llu is implausible (> %llu): not a safetensors file?", name.c_str(),
                          (unsigned long long) n, (unsigned long long) kMaxHeader);
    if (n > size - 8)
        return make_error(ErrorCode::format, "%s: truncated: header length %llu but only %llu bytes follow", name.c_str(),
                          (unsigned long long) n, (unsigned long long) (size - 8));
    const char * hb = reinterpret_cast<const char *>(data + 8);
    json         j  = json::parse(hb, hb + n, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(ErrorCode::format, "%s: header is not valid JSON", name.c_str());
    if (!j.is_object()) return make_error(ErrorCode::format, "%s: header must be a JSON object", name.c_str());

    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_                = name;
    const uint64_t data_len = size - 8 - n;
    const uint8_t * base    = data + 8 + n;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (!it->is_object()) return make_error(ErrorCode::format, "%s: '__metadata__' must be an object", name.c_str());
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string())
                    return make_error(ErrorCode::format, "%s: '__metadata__' value of '%s' must be a string", name.c_str(), m.key().c_str());
                f->metadata_[m.key()] = m->get<std::string>();
            }
            continue;
        }
        TensorInfo t;
        t.name = it.key();
        t.file = name;
        AVS_TRY(parse_entry(name, t.name, *it, t));
        if (t.end > data_len)
            return make_error(ErrorCode::format, "%s: truncated: tensor '%s' data_offsets [%llu, %llu] end past the data section (%llu bytes)",
                              name.c_str(), t.name.c_str(), (unsigned long long) t.begin, (unsigned long long) t.end,
                              (unsigned long long) data_len);
        t.data = base + t.begin;
        f->tensors_.push_back(std::move(t));
    }
    // Overlap check on the byte ranges (empty tensors occupy nothing).
    std::vector<const TensorInfo *> by_off;
    for (auto & t : f->tensors_)
        if (t.end > t.begin) by_off.push_back(&t);
    std::sort(by_off.begin(), by_off.end(), [](auto a, auto b) { return a->begin < b->begin; });
    for (size_t i = 1; i < by_off.size(); ++i)
        if (by_off[i]->begin < by_off[i - 1]->end)
            return make_error(ErrorCode::format, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", name.c_str(),
                              by_off[i - 1]->name.c_str(), (unsigned long long) by_off[i - 1]->begin,
                              (unsigned long long) by_off[i - 1]->end, by_off[i]->name.c_str(),
                              (unsigned long long) by_off[i]->begin, (unsigned long long) by_off[i]->end);
    std::sort(f->tensors_.begin(), f->tensors_.end(), [](auto & a, auto & b) { return a.name < b.name; });
    return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string & path) {
    AVS_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
    AVS_ASSIGN_OR_RETURN(auto f, parse(map->data(), map->size(), path));
    f->map_ = std::move(map);
    return f;
}

const TensorInfo * SafetensorsFile::find(const std::string & name) const {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name, [](auto & t, auto & n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

const TensorInfo * Checkpoint::find(const std::string & name) const {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name, [](auto & t, auto & n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

namespace {

bool ends_with(const std::string & s, const std::string & suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

Result<std::string> read_text(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(ErrorCode::io, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string & path_in) {
    std::error_code ec;
    std::string     path = path_in;
    if (!fs::exists(path, ec)) return make_error(ErrorCode::io, "checkpoint '%s' does not exist", path.c_str());
    if (fs::is_directory(path, ec)) {
        std::vector<std::string> idx, files;
        for (auto & e : fs::directory_iterator(path, ec)) {
            const std::string n = e.path().filename().string();
            if (ends_with(n, ".safetensors.index.json")) idx.push_back(e.path().string());
            else if (ends_with(n, ".safetensors")) files.push_back(e.path().string());
        }
        std::sort(idx.begin(), idx.end());
        std::sort(files.begin(), files.end());
        if (idx.size() == 1) path = idx[0];
        else if (idx.empty() && files.size() == 1) path = files[0];
        else {
            std::string found;
            for (auto & s : idx) found += " " + fs::path(s).filename().string();
            for (auto & s : files) found += " " + fs::path(s).filename().string();
            return make_error(ErrorCode::format,
                              "checkpoint directory '%s': expected one *.safetensors.index.json or one *.safetensors file, found:%s",
                              path_in.c_str(), found.empty() ? " nothing" : found.c_str());
        }
    }
    std::unique_ptr<Checkpoint> c(new Checkpoint());
    c->path_ = path;
    c->dir_  = fs::is_directory(path_in, ec) ? path_in : fs::path(path).parent_path().string();
    if (c->dir_.empty()) c->dir_ = ".";

    if (ends_with(path, ".json")) {
        AVS_ASSIGN_OR_RETURN(std::string text, read_text(path));
        json j = json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::format, "%s: not a valid JSON object", path.c_str());
        auto wm = j.find("weight_map");
        if (wm == j.end() || !wm->is_object())
            return make_error(ErrorCode::format, "%s: expected an object 'weight_map' {tensor: shard file}", path.c_str());
        std::map<std::string, std::vector<std::string>> by_shard;  // shard -> tensors it must hold
        for (auto it = wm->begin(); it != wm->end(); ++it) {
            if (!it->is_string())
                return make_error(ErrorCode::format, "%s: weight_map entry '%s' must be a file name", path.c_str(), it.key().c_str());
            const std::string shard = it->get<std::string>();
            if (shard.find('/') != std::string::npos || shard == "..")
                return make_error(ErrorCode::format, "%s: shard '%s' must be a file name in the index's directory", path.c_str(), shard.c_str());
            by_shard[shard].push_back(it.key());
        }
        std::map<std::string, std::string> owner;  // tensor -> shard
        for (auto & [shard, names] : by_shard) {
            const std::string sp = (fs::path(c->dir_) / shard).string();
            auto f = SafetensorsFile::open(sp);
            if (!f) return f.status().with_context(path);
            for (auto & n : names)
                if (!f.value()->find(n))
                    return make_error(ErrorCode::missing, "%s: tensor '%s' is mapped to shard '%s', which does not contain it",
                                      path.c_str(), n.c_str(), shard.c_str());
            for (auto & t : f.value()->tensors()) {
                auto [it, fresh] = owner.emplace(t.name, shard);
                if (!fresh)
                    return make_error(ErrorCode::format, "%s: tensor '%s' appears in two shards: '%s' and '%s'", path.c_str(),
                                      t.name.c_str(), it->second.c_str(), shard.c_str());
                c->tensors_.push_back(t);
            }
            c->files_.push_back(std::move(f).value());
        }
    } else {
        AVS_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(path));
        c->tensors_ = f->tensors();
        c->files_.push_back(std::move(f));
    }
    std::sort(c->tensors_.begin(), c->tensors_.end(), [](auto & a, auto & b) { return a.name < b.name; });
    return c;
}

const std::map<std::string, std::string> & Checkpoint::metadata() const {
    static const std::map<std::string, std::string> empty;
    return files_.empty() ? empty : files_.front()->metadata();
}

Result<Tensor> read_tensor(const TensorInfo & info, DType dtype) {
    AVS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(dtype, info.shape));
    const uint64_t n = uint64_t(info.shape.numel());
    if (dtype == info.dtype) {
        std::memcpy(t.raw(), info.data, info.end - info.begin);
        return t;
    }
    Status s;
    if (dtype == DType::f32) {
        s = convert_to_f32(info.data, info.dtype, t.data<float>(), n);
    } else {
        std::vector<float> tmp(n);
        s = convert_to_f32(info.data, info.dtype, tmp.data(), n);
        if (s.ok()) s = convert_from_f32(tmp.data(), t.raw(), dtype, n);
    }
    if (!s.ok()) return s.with_context(info.file + ": tensor '" + info.name + "'");
    return t;
}

namespace {

// Gather a possibly strided tensor into contiguous bytes.
Status contiguous_bytes(const Tensor & t, std::vector<uint8_t> & out) {
    const int bits = dtype_bits(t.dtype());
    if (bits % 8) return make_error(ErrorCode::unsupported, "cannot write %s tensors to safetensors", dtype_name(t.dtype()));
    const size_t esz = size_t(bits / 8);
    out.resize(size_t(t.numel()) * esz);
    if (t.is_contiguous()) {
        if (!out.empty()) std::memcpy(out.data(), t.raw(), out.size());
        return {};
    }
    std::vector<int64_t> idx(size_t(t.ndim()), 0);
    const uint8_t * base = static_cast<const uint8_t *>(t.raw());
    for (int64_t i = 0; i < t.numel(); ++i) {
        int64_t off = 0;
        for (int d = 0; d < t.ndim(); ++d) off += idx[size_t(d)] * t.stride(d);
        std::memcpy(out.data() + size_t(i) * esz, base + off * int64_t(esz), esz);
        for (int d = t.ndim() - 1; d >= 0; --d) {
            if (++idx[size_t(d)] < t.dim(d)) break;
            idx[size_t(d)] = 0;
        }
    }
    return {};
}

} // namespace

Status write_safetensors(const std::string & path, const std::vector<std::pair<std::string, Tensor>> & tensors,
                         const std::map<std::string, std::string> & metadata) {
    json                              header = json::object();
    std::vector<std::vector<uint8_t>> blobs;
    std::set<std::string>             names;
    uint64_t                          off = 0;
    for (auto & [name, t] : tensors) {
        if (name == "__metadata__" || !names.insert(name).second)
            return make_error(ErrorCode::invalid_argument, "%s: tensor name '%s' is reserved or repeated", path.c_str(), name.c_str());
        if (!t.defined() || t.device() != Device::cpu)
            return make_error(ErrorCode::invalid_argument, "%s: tensor '%s' is not a host tensor", path.c_str(), name.c_str());
        const char * st = dtype_to_safetensors(t.dtype());
        if (!st) return make_error(ErrorCode::unsupported, "%s: tensor '%s' has dtype %s, which safetensors cannot hold", path.c_str(),
                                   name.c_str(), dtype_name(t.dtype()));
        blobs.emplace_back();
        AVS_TRY(contiguous_bytes(t, blobs.back()).with_context(path + ": tensor '" + name + "'"));
        header[name] = {{"dtype", st}, {"shape", t.shape().to_vector()}, {"data_offsets", {off, off + blobs.back().size()}}};
        off += blobs.back().size();
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned

    const std::string tmp = path + ".tmp";
    FILE * f = std::fopen(tmp.c_str(), "wb");
    if (!f) return make_error(ErrorCode::io, "cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    for (auto & b : blobs) ok = ok && (b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size());
    ok = (std::fflush(f) == 0) && ok;
    const int e = errno;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        return make_error(ErrorCode::io, "writing '%s' failed: %s", path.c_str(), std::strerror(e));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e2 = errno;
        std::remove(tmp.c_str());
        return make_error(ErrorCode::io, "cannot rename '%s' to '%s': %s", tmp.c_str(), path.c_str(), std::strerror(e2));
    }
    return {};
}

} // namespace avs
