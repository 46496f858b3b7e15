#include "engine/io/safetensors.h"

#include "engine/io/mmap_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <unistd.h>

namespace avs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // real headers are < 1 MB; anything huge is corrupt

using ull = unsigned long long;

// a*b without wrapping; false on overflow
bool mul_ok(uint64_t a, uint64_t b, uint64_t & out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    out = a * b;
    return true;
}

bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): nlohmann's dump() throws on
// anything else, and library code must not throw.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const uint8_t c = uint8_t(s[i]);
        int      len;
        uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1fu; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0fu; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07u; }
        else return false;
        if (i + size_t(len) > s.size()) return false;
        for (int k = 1; k < len; ++k) {
            const uint8_t cc = uint8_t(s[i + size_t(k)]);
            if ((cc & 0xc0u) != 0x80u) return false;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += size_t(len);
    }
    return true;
}

Status parse_entry(const std::string & file, const std::string & name, const json & e, TensorInfo & t) {
    auto bad = [&](const std::string & what) {
        return make_error(ErrorCode::format, "%s: tensor '%s': %s", file.c_str(), name.c_str(), what.c_str());
    };
    if (!e.is_object()) return bad(std::string("expected an object {dtype, shape, data_offsets}, found a JSON ") + e.type_name());
    for (auto it = e.begin(); it != e.end(); ++it)
        if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
            return bad("unexpected field '" + it.key() + "' (expected only dtype, shape, data_offsets)");

    auto dt = e.find("dtype");
    if (dt == e.end()) return bad("field 'dtype' is missing");
    if (!dt->is_string()) return bad(std::string("field 'dtype' must be a string, found a JSON ") + dt->type_name());
    const std::string & dts   = dt->get_ref<const std::string &>();
    auto                dtype = dtype_from_safetensors(dts);
    if (!dtype) return bad("unsupported dtype '" + dts + "' (expected F32, F16, BF16, F64, F8_E4M3, I8, U8, I32 or I64)");
    t.dtype = *dtype;

    auto sh = e.find("shape");
    if (sh == e.end()) return bad("field 'shape' is missing");
    if (!sh->is_array()) return bad(std::string("field 'shape' must be an array, found a JSON ") + sh->type_name());
    if (sh->size() > size_t(kMaxDims))
        return bad("shape has " + std::to_string(sh->size()) + " dims, at most " + std::to_string(kMaxDims) + " are supported");
    // numel, and the product with zero dims counted as 1: keeping the latter within int64 means
    // strides stay representable even for zero-size tensors.
    uint64_t numel = 1, span = 1;
    t.shape        = Shape{};
    for (auto & d : *sh) {
        if (!d.is_number_unsigned())
            return bad("shape entries must be non-negative integers, found " +
                       (d.is_number_integer() ? std::to_string(d.get<int64_t>()) : std::string("a JSON ") + d.type_name()));
        const uint64_t v = d.get<uint64_t>();
        if (!mul_ok(span, std::max<uint64_t>(v, 1), span) || span > uint64_t(INT64_MAX))
            return bad("shape dims multiply past 2^63 (overflow)");
        numel = numel * v;  // <= span, so no wrap
        t.shape.dims[size_t(t.shape.ndim++)] = int64_t(v);
    }

    auto off = e.find("data_offsets");
    if (off == e.end()) return bad("field 'data_offsets' is missing");
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
        return bad("field 'data_offsets' must be [begin, end] of two non-negative integers");
    t.begin = (*off)[0].get<uint64_t>();
    t.end   = (*off)[1].get<uint64_t>();
    if (t.begin > t.end)
        return make_error(ErrorCode::format, "%s: tensor '%s': data_offsets [%llu, %llu] have begin > end", file.c_str(),
                          name.c_str(), ull(t.begin), ull(t.end));
    uint64_t bits;
    if (!mul_ok(numel, uint64_t(dtype_bits(t.dtype)), bits)) return bad("shape x dtype size overflows 64 bits");
    const uint64_t bytes = (bits + 7) / 8;
    if (bytes != t.end - t.begin)
        return make_error(ErrorCode::format,
                          "%s: tensor '%s': shape %s x %s needs %llu bytes, but data_offsets [%llu, %llu] span %llu bytes",
                          file.c_str(), name.c_str(), t.shape.str().c_str(), dts.c_str(), ull(bytes), ull(t.begin), ull(t.end),
                          ull(t.end - t.begin));
    return {};
}

} // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(const uint8_t * data, uint64_t size, const std::string & name) {
    if (size < 8)
        return make_error(ErrorCode::format, "%s: truncated: expected at least the 8-byte header length, found %llu bytes",
                          name.c_str(), ull(size));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little endian
    if (n == 0) return make_error(ErrorCode::format, "%s: header length is 0 (expected a JSON header)", name.c_str());
    if (n > kMaxHeader)
        return make_error(ErrorCode::format, "%s: header length %llu is implausible (> %llu bytes): not a safetensors file?",
                          name.c_str(), ull(n), ull(kMaxHeader));
    if (n > size - 8)
        return make_error(ErrorCode::format, "%s: truncated: header length is %llu but only %llu bytes follow it", name.c_str(),
                          ull(n), ull(size - 8));
    const char * hb = reinterpret_cast<const char *>(data + 8);
    json         j  = json::parse(hb, hb + n, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(ErrorCode::format, "%s: header is not valid JSON", name.c_str());
    if (!j.is_object())
        return make_error(ErrorCode::format, "%s: header must be a JSON object, found a JSON %s", name.c_str(), j.type_name());

    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_                = name;
    const uint64_t  data_len = size - 8 - n;
    const uint8_t * base     = data + 8 + n;
    f->tensors_.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (!it->is_object())
                return make_error(ErrorCode::format, "%s: '__metadata__' must be an object, found a JSON %s", name.c_str(),
                                  it->type_name());
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string())
                    return make_error(ErrorCode::format, "%s: '__metadata__' values must be strings, but '%s' is a JSON %s",
                                      name.c_str(), m.key().c_str(), m->type_name());
                f->metadata_[m.key()] = m->get<std::string>();
            }
            continue;
        }
        TensorInfo t;
        t.name = it.key();
        t.file = name;
        AVS_TRY(parse_entry(name, t.name, *it, t));
        if (t.end > data_len)
            return make_error(ErrorCode::format,
                              "%s: truncated: tensor '%s' data_offsets [%llu, %llu] end past the data section (%llu bytes)",
                              name.c_str(), t.name.c_str(), ull(t.begin), ull(t.end), ull(data_len));
        t.data = base + t.begin;
        f->tensors_.push_back(std::move(t));
    }
    // Overlap check: after sorting by begin, disjoint adjacent pairs imply all pairs are disjoint.
    // Zero-length tensors occupy nothing and may sit anywhere.
    std::vector<const TensorInfo *> by_off;
    for (auto & t : f->tensors_)
        if (t.end > t.begin) by_off.push_back(&t);
    std::sort(by_off.begin(), by_off.end(), [](auto a, auto b) { return a->begin < b->begin; });
    for (size_t i = 1; i < by_off.size(); ++i)
        if (by_off[i]->begin < by_off[i - 1]->end)
            return make_error(ErrorCode::format, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", name.c_str(),
                              by_off[i - 1]->name.c_str(), ull(by_off[i - 1]->begin), ull(by_off[i - 1]->end),
                              by_off[i]->name.c_str(), ull(by_off[i]->begin), ull(by_off[i]->end));
    // json objects iterate in key order already; sort anyway so find() does not depend on that
    std::sort(f->tensors_.begin(), f->tensors_.end(), [](auto & a, auto & b) { return a.name < b.name; });
    return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string & path) {
    AVS_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
    AVS_ASSIGN_OR_RETURN(auto f, parse(map->data(), map->size(), path));
    f->map_ = std::move(map);
    return f;
}

namespace {

const TensorInfo * find_sorted(const std::vector<TensorInfo> & v, const std::string & name) {
    auto it = std::lower_bound(v.begin(), v.end(), name, [](const TensorInfo & t, const std::string & n) { return t.name < n; });
    return it != v.end() && it->name == name ? &*it : nullptr;
}

Result<std::string> read_text(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(ErrorCode::io, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    if (f.bad()) return make_error(ErrorCode::io, "cannot read '%s'", path.c_str());
    return ss.str();
}

// A shard named by an index must stay inside the index's directory.
bool safe_relative(const std::string & s) {
    if (s.empty()) return false;
    const fs::path p(s);
    if (p.is_absolute() || p.has_root_name()) return false;
    for (auto & part : p)
        if (part == "..") return false;
    return true;
}

} // namespace

const TensorInfo * SafetensorsFile::find(const std::string & name) const { return find_sorted(tensors_, name); }
const TensorInfo * Checkpoint::find(const std::string & name) const { return find_sorted(tensors_, name); }

const std::map<std::string, std::string> & Checkpoint::metadata() const {
    static const std::map<std::string, std::string> empty;
    return files_.empty() ? empty : files_.front()->metadata();
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string & path_in) {
    if (path_in.empty()) return make_error(ErrorCode::invalid_argument, "checkpoint path is empty");
    std::error_code ec;
    const auto      st = fs::status(path_in, ec);
    if (st.type() == fs::file_type::not_found)
        return make_error(ErrorCode::missing, "checkpoint '%s' does not exist", path_in.c_str());
    if (ec || st.type() == fs::file_type::none)
        return make_error(ErrorCode::io, "checkpoint '%s': %s", path_in.c_str(), ec.message().c_str());
    std::string path = path_in;
    const bool  is_dir = fs::is_directory(st);
    if (is_dir) {
        std::vector<std::string> idx, files;
        for (fs::directory_iterator it(path_in, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string n = it->path().filename().string();
            std::error_code   ec2;
            if (!it->is_regular_file(ec2)) continue;  // follows symlinks (HF caches link blobs)
            if (ends_with(n, ".safetensors.index.json")) idx.push_back(n);
            else if (ends_with(n, ".safetensors")) files.push_back(n);
        }
        if (ec) return make_error(ErrorCode::io, "cannot list checkpoint directory '%s': %s", path_in.c_str(), ec.message().c_str());
        std::sort(idx.begin(), idx.end());
        std::sort(files.begin(), files.end());
        if (idx.size() == 1) path = (fs::path(path_in) / idx[0]).string();
        else if (idx.empty() && files.size() == 1) path = (fs::path(path_in) / files[0]).string();
        else if (idx.empty() && files.empty())
            return make_error(ErrorCode::missing, "checkpoint directory '%s' holds no *.safetensors.index.json or *.safetensors file",
                              path_in.c_str());
        else {
            std::string found;
            for (auto & s : idx.empty() ? files : idx) found += " '" + s + "'";
            return make_error(ErrorCode::format,
                              "checkpoint directory '%s' is ambiguous: expected one *.safetensors.index.json or else one "
                              "*.safetensors file, found%s",
                              path_in.c_str(), found.c_str());
        }
    }
    std::unique_ptr<Checkpoint> c(new Checkpoint());
    c->path_ = path;
    c->dir_  = is_dir ? path_in : fs::path(path).parent_path().string();
    if (c->dir_.empty()) c->dir_ = ".";

    if (ends_with(path, ".json")) {
        AVS_ASSIGN_OR_RETURN(std::string text, read_text(path));
        json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) return make_error(ErrorCode::format, "%s: not valid JSON", path.c_str());
        if (!j.is_object()) return make_error(ErrorCode::format, "%s: expected a JSON object, found a JSON %s", path.c_str(), j.type_name());
        auto wm = j.find("weight_map");
        if (wm == j.end() || !wm->is_object())
            return make_error(ErrorCode::format, "%s: expected an object 'weight_map' {tensor: shard file}", path.c_str());
        if (wm->empty()) return make_error(ErrorCode::format, "%s: 'weight_map' is empty", path.c_str());
        std::map<std::string, std::vector<std::string>> by_shard;  // shard -> tensors it must hold
        for (auto it = wm->begin(); it != wm->end(); ++it) {
            if (!it->is_string())
                return make_error(ErrorCode::format, "%s: weight_map entry '%s' must be a file name, found a JSON %s", path.c_str(),
                                  it.key().c_str(), it->type_name());
            const std::string & shard = it->get_ref<const std::string &>();
            if (!safe_relative(shard))
                return make_error(ErrorCode::format, "%s: tensor '%s': shard '%s' must be a relative path inside the index's directory",
                                  path.c_str(), it.key().c_str(), shard.c_str());
            by_shard[shard].push_back(it.key());
        }
        std::map<std::string, std::string> owner;  // tensor -> shard
        for (auto & [shard, names] : by_shard) {
            auto f = SafetensorsFile::open((fs::path(c->dir_) / shard).string());
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

Result<Tensor> read_tensor(const TensorInfo & info, DType dtype) {
    auto fail = [&](ErrorCode code, const std::string & what) {
        return make_error(code, "%s: tensor '%s': %s", info.file.c_str(), info.name.c_str(), what.c_str());
    };
    // TensorInfo is a plain struct: recheck what parse() guaranteed before trusting the pointer.
    const uint64_t n     = uint64_t(info.shape.numel());
    const uint64_t bytes = info.end - info.begin;
    if (info.end < info.begin || dtype_bytes(info.dtype, n) != bytes || (bytes && !info.data))
        return fail(ErrorCode::shape, "shape " + info.shape.str() + " x " + dtype_name(info.dtype) + " does not match its " +
                                          std::to_string(bytes) + "-byte range");
    const bool float_target = dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16 || dtype == DType::fp8_e4m3;
    if (dtype != info.dtype && (!float_target || info.dtype == DType::int4))
        return fail(ErrorCode::unsupported, std::string("cannot read a ") + dtype_name(info.dtype) + " tensor as " + dtype_name(dtype));
    auto r = Tensor::zeros(dtype, info.shape);
    if (!r) return r.status().with_context(info.file + ": tensor '" + info.name + "'");
    Tensor t = std::move(r).value();
    if (dtype == info.dtype) {
        if (bytes) std::memcpy(t.raw(), info.data, bytes);
        return t;
    }
    // Data offsets need not be aligned (header and earlier tensors can have any length), and the
    // converters read typed pointers: misaligned sources are staged through an aligned buffer.
    // Non-f32 targets also go through f32 in chunks, so a large tensor needs no full f32 copy.
    constexpr uint64_t    kChunk = 1 << 16;
    const uint64_t        in_sz = uint64_t(dtype_bits(info.dtype) / 8), out_sz = uint64_t(dtype_bits(dtype) / 8);
    const bool            aligned = reinterpret_cast<uintptr_t>(info.data) % in_sz == 0;
    std::vector<uint64_t> stage(aligned ? 0 : size_t(std::min(n, kChunk) * in_sz + 7) / 8);
    std::vector<float>    tmp(dtype == DType::f32 ? 0 : size_t(std::min(n, kChunk)));
    for (uint64_t i = 0; i < n; i += kChunk) {
        const uint64_t m   = std::min(kChunk, n - i);
        const void *   src = info.data + i * in_sz;
        if (!aligned) src = std::memcpy(stage.data(), src, size_t(m * in_sz));
        float * f = dtype == DType::f32 ? t.data<float>() + i : tmp.data();
        Status  s = convert_to_f32(src, info.dtype, f, m);
        if (s.ok() && dtype != DType::f32) s = convert_from_f32(f, static_cast<uint8_t *>(t.raw()) + i * out_sz, dtype, m);
        if (!s.ok()) return s.with_context(info.file + ": tensor '" + info.name + "'");
    }
    return t;
}

namespace {

// POSIX file writer that remembers the first error (errno) so the caller reports the real cause.
struct Writer {
    int fd  = -1;
    int err = 0;

    void write(const void * p, size_t n) {
        const char * c = static_cast<const char *>(p);
        while (n > 0 && err == 0) {
            const ssize_t w = ::write(fd, c, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                err = errno;
            } else if (w == 0) {
                err = EIO;
            } else {
                c += w;
                n -= size_t(w);
            }
        }
    }
};

// Write a tensor's bytes in row-major order; strided tensors are gathered element by element.
void write_tensor_bytes(Writer & w, const Tensor & t) {
    const uint64_t nb = t.nbytes();
    if (nb == 0) return;
    if (t.is_contiguous()) {
        w.write(t.raw(), size_t(nb));
        return;
    }
    const size_t         esz = size_t(dtype_bits(t.dtype()) / 8);
    std::vector<uint8_t> buf;
    buf.reserve(1 << 20);
    std::vector<int64_t> idx(size_t(t.ndim()), 0);
    const uint8_t *      base = static_cast<const uint8_t *>(t.raw());
    for (int64_t i = 0; i < t.numel() && w.err == 0; ++i) {
        int64_t off = 0;
        for (int d = 0; d < t.ndim(); ++d) off += idx[size_t(d)] * t.stride(d);
        buf.insert(buf.end(), base + off * int64_t(esz), base + (off + 1) * int64_t(esz));
        if (buf.size() + esz > buf.capacity()) {
            w.write(buf.data(), buf.size());
            buf.clear();
        }
        for (int d = t.ndim() - 1; d >= 0; --d) {
            if (++idx[size_t(d)] < t.dim(d)) break;
            idx[size_t(d)] = 0;
        }
    }
    if (!buf.empty()) w.write(buf.data(), buf.size());
}

} // namespace

Status write_safetensors(const std::string & path, const std::vector<std::pair<std::string, Tensor>> & tensors,
                         const std::map<std::string, std::string> & metadata) {
    // Validate everything and build the header before touching the file system.
    json                  header = json::object();
    std::set<std::string> names;
    for (auto & [name, t] : tensors) {
        if (name == "__metadata__" || !names.insert(name).second)
            return make_error(ErrorCode::invalid_argument, "%s: tensor name '%s' is reserved or repeated", path.c_str(), name.c_str());
        if (!valid_utf8(name))
            return make_error(ErrorCode::invalid_argument, "%s: tensor name '%s' is not valid UTF-8", path.c_str(), name.c_str());
        if (!t.defined() || t.device() != Device::cpu)
            return make_error(ErrorCode::invalid_argument, "%s: tensor '%s' is not a defined host tensor", path.c_str(), name.c_str());
        const char * st = dtype_to_safetensors(t.dtype());
        if (!st || dtype_bits(t.dtype()) % 8)
            return make_error(ErrorCode::unsupported, "%s: tensor '%s' has dtype %s, which safetensors cannot hold", path.c_str(),
                              name.c_str(), dtype_name(t.dtype()));
    }
    // Data goes out largest element size first (stable otherwise), as the Python safetensors writer
    // does: with the data section 8-byte aligned, every tensor is then aligned to its element size.
    // The format wants the data contiguous (no padding between tensors), so ordering is the only lever.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return dtype_bits(tensors[a].second.dtype()) > dtype_bits(tensors[b].second.dtype());
    });
    uint64_t off = 0;
    for (size_t i : order) {
        const Tensor & t  = tensors[i].second;
        const uint64_t nb = t.nbytes();
        header[tensors[i].first] = {
            {"dtype", dtype_to_safetensors(t.dtype())}, {"shape", t.shape().to_vector()}, {"data_offsets", {off, off + nb}}};
        off += nb;
    }
    for (auto & [k, v] : metadata)
        if (!valid_utf8(k) || !valid_utf8(v))
            return make_error(ErrorCode::invalid_argument, "%s: metadata entry '%s' is not valid UTF-8", path.c_str(), k.c_str());
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned

    // Write a sibling temp file and rename it over `path`, so a failure never leaves a half file.
    const std::string tmp = path + ".tmp";
    Writer            w;
    w.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) return make_error(ErrorCode::io, "cannot write '%s': cannot create '%s': %s", path.c_str(), tmp.c_str(), std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
    w.write(len, 8);
    w.write(h.data(), h.size());
    for (size_t i : order) write_tensor_bytes(w, tensors[i].second);
    if (w.err == 0 && ::fsync(w.fd) != 0 && errno != EINVAL) w.err = errno;  // EINVAL: fs without fsync
    if (::close(w.fd) != 0 && w.err == 0) w.err = errno;
    if (w.err != 0) {
        ::unlink(tmp.c_str());
        return make_error(ErrorCode::io, "writing '%s' failed: %s", path.c_str(), std::strerror(w.err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return make_error(ErrorCode::io, "cannot rename '%s' to '%s': %s", tmp.c_str(), path.c_str(), std::strerror(e));
    }
    return {};
}

} // namespace avs
