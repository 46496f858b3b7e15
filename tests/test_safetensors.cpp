// safetensors reader/writer: round trips, conversions, and one test per class of malformed input.
// Malformed files are built by hand (header text + zero data bytes) so each breaks exactly one rule.
#include <catch2/catch.hpp>

#include "engine/io/safetensors.h"
#include "test_util.h"

#include <fstream>
#include <iterator>

using namespace avs;
namespace fs = std::filesystem;

namespace {

// Removes its directory even when a REQUIRE throws out of the test.
struct TmpDir {
    fs::path path;
    explicit TmpDir(const std::string & tag) : path(test::temp_dir("st-" + tag)) {}
    ~TmpDir() { std::error_code ec; fs::remove_all(path, ec); }
    std::string operator/(const std::string & name) const { return (path / name).string(); }
};

// A raw safetensors image: u64 LE header length + header text (unpadded) + `data_bytes` zero bytes.
std::string raw_image(const std::string & header, size_t data_bytes) {
    std::string s(8, '\0');
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char(uint8_t(n >> (8 * i)));
    return s + header + std::string(data_bytes, '\0');
}

std::string write_file(const TmpDir & dir, const std::string & name, const std::string & bytes) {
    const std::string p = dir / name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << bytes;
    REQUIRE(f.good());
    return p;
}

std::string read_file(const std::string & p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string open_error(const std::string & path) {
    auto f = SafetensorsFile::open(path);
    REQUIRE(!f.ok());
    REQUIRE(f.status().code() != ErrorCode::ok);
    return f.status().message();
}

// Host tensor of `dtype` whose bytes are a deterministic pattern (any bit pattern is fine for a byte round trip).
Tensor patterned(DType dtype, const Shape & shape, uint8_t seed) {
    Tensor t = Tensor::host(dtype, shape);
    REQUIRE(t.defined());
    auto * p = static_cast<uint8_t *>(t.raw());
    for (uint64_t i = 0; i < t.nbytes(); ++i) p[i] = uint8_t(seed + i * 37u);
    return t;
}

Tensor f32_tensor(const Shape & shape, std::initializer_list<float> v) {
    Tensor t = Tensor::host(DType::f32, shape);
    REQUIRE(uint64_t(t.numel()) == v.size());
    std::copy(v.begin(), v.end(), t.data<float>());
    return t;
}

const char * kF32x2 = R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";

} // namespace

TEST_CASE("safetensors round trip: every dtype with 0-d scalar and zero-size tensors", "[safetensors]") {
    TmpDir dir("rt");
    const std::vector<std::pair<std::string, Tensor>> in = {
        {"f32", patterned(DType::f32, Shape{3, 5}, 1)},     {"f16", patterned(DType::f16, Shape{2, 3, 4}, 2)},
        {"bf16", patterned(DType::bf16, Shape{7}, 3)},      {"f64", patterned(DType::f64, Shape{2, 2}, 4)},
        {"fp8", patterned(DType::fp8_e4m3, Shape{9}, 5)},   {"i8", patterned(DType::i8, Shape{1, 1, 3}, 6)},
        {"u8", patterned(DType::u8, Shape{5}, 7)},          {"i32", patterned(DType::i32, Shape{4}, 8)},
        {"i64", patterned(DType::i64, Shape{}, 9)},         {"empty", patterned(DType::f16, Shape{0, 4}, 10)},
        {"empty1d", patterned(DType::bf16, Shape{0}, 11)},  {"odd", patterned(DType::u8, Shape{3}, 12)},
        {"after_odd", patterned(DType::f32, Shape{2}, 13)},
    };
    const std::string p = dir / "rt.safetensors";
    REQUIRE(write_safetensors(p, in).ok());
    REQUIRE(!fs::exists(p + ".tmp"));

    const std::string raw = read_file(p);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(raw[size_t(i)]);
    REQUIRE((8 + n) % 8 == 0);  // data section 8-byte aligned

    auto f = SafetensorsFile::open(p);
    REQUIRE(f.ok());
    REQUIRE(f.value()->tensors().size() == in.size());
    REQUIRE(f.value()->metadata().empty());
    for (auto & [name, t] : in) {
        INFO(name);
        const TensorInfo * info = f.value()->find(name);
        REQUIRE(info != nullptr);
        REQUIRE(info->dtype == t.dtype());
        REQUIRE(info->shape == t.shape());
        REQUIRE(info->end - info->begin == t.nbytes());
        REQUIRE(info->begin % uint64_t(dtype_bits(t.dtype()) / 8) == 0);  // each tensor aligned to its element
        REQUIRE(info->file == p);
        auto r = read_tensor(*info, t.dtype());
        REQUIRE(r.ok());
        REQUIRE(r.value().shape() == t.shape());
        REQUIRE(r.value().is_contiguous());
        REQUIRE(std::memcmp(r.value().raw(), t.raw(), t.nbytes()) == 0);
    }
    // the data section is packed: no gaps, nothing after the last tensor
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto & t : f.value()->tensors()) ranges.emplace_back(t.begin, t.end);
    std::sort(ranges.begin(), ranges.end());
    uint64_t end = 0;
    for (auto & [b, e] : ranges) {
        REQUIRE(b == end);
        end = e;
    }
    REQUIRE(8 + n + end == raw.size());
    REQUIRE(f.value()->find("i64")->shape.ndim == 0);
    REQUIRE(f.value()->find("empty")->shape == Shape{0, 4});
    REQUIRE(f.value()->find("nope") == nullptr);
}

TEST_CASE("safetensors: strided tensors are gathered on write", "[safetensors]") {
    TmpDir dir("strided");
    Tensor a = patterned(DType::f32, Shape{3, 5}, 1);
    Tensor w = patterned(DType::bf16, Shape{2, 3, 4}, 2);
    const std::string p = dir / "s.safetensors";
    REQUIRE(write_safetensors(p, {{"cols", a.slice(1, 1, 4)}, {"mid", w.select(1, 1)}, {"full", a}}).ok());
    auto f = SafetensorsFile::open(p);
    REQUIRE(f.ok());
    auto cols = read_tensor(*f.value()->find("cols"), DType::f32).value();
    REQUIRE(cols.shape() == Shape{3, 3});
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) REQUIRE(cols.data<float>()[r * 3 + c] == a.data<float>()[r * 5 + 1 + c]);
    auto mid = read_tensor(*f.value()->find("mid"), DType::bf16).value();
    REQUIRE(mid.shape() == Shape{2, 4});
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) REQUIRE(mid.data<uint16_t>()[i * 4 + k] == w.data<uint16_t>()[i * 12 + 4 + k]);
    REQUIRE(std::memcmp(read_tensor(*f.value()->find("full"), DType::f32).value().raw(), a.raw(), a.nbytes()) == 0);
}

TEST_CASE("safetensors: metadata round trip through the file and a checkpoint", "[safetensors]") {
    TmpDir dir("meta");
    const std::map<std::string, std::string> meta = {
        {"avs.config", R"({"dim": 128, "layers": 2})"}, {"empty", ""}, {"unicode", "caf\xc3\xa9 \xe2\x9c\x93"}, {"format", "pt"}};
    const std::string p = dir / "m.safetensors";
    REQUIRE(write_safetensors(p, {{"x", f32_tensor(Shape{2}, {1, 2})}}, meta).ok());
    auto f = SafetensorsFile::open(p);
    REQUIRE(f.ok());
    REQUIRE(f.value()->metadata() == meta);
    REQUIRE(f.value()->tensors().size() == 1);  // __metadata__ is not a tensor
    auto c = Checkpoint::open(p);
    REQUIRE(c.ok());
    REQUIRE(c.value()->metadata() == meta);
    REQUIRE(c.value()->dir() == dir.path.string());
    REQUIRE(c.value()->path() == p);

    // invalid UTF-8 is refused by the writer (nlohmann would throw on it), not written
    auto bad = write_safetensors(dir / "b.safetensors", {{"x", f32_tensor(Shape{1}, {1})}}, {{"k", "\xff\xfe"}});
    REQUIRE(!bad.ok());
    REQUIRE_THAT(bad.message(), Catch::Contains("'k'") && Catch::Contains("UTF-8"));
    REQUIRE(!fs::exists(dir / "b.safetensors"));
}

TEST_CASE("read_tensor converts bf16 and f16 exactly to f32 and f32 to bf16/f16 with RNE", "[safetensors]") {
    TmpDir dir("conv");
    Tensor b = Tensor::host(DType::bf16, Shape{5});
    const uint16_t bbits[5] = {0x3f80, 0xc040, 0x4049, 0x0001, 0xff80};  // 1, -3, 3.140625, 2^-133, -inf
    std::copy(bbits, bbits + 5, b.data<uint16_t>());
    Tensor h = Tensor::host(DType::f16, Shape{5});
    const uint16_t hbits[5] = {0x3c00, 0xc200, 0x0001, 0x7bff, 0x3555};  // 1, -3, 2^-24, 65504, 0.333251953125
    std::copy(hbits, hbits + 5, h.data<uint16_t>());
    Tensor i = Tensor::host(DType::i32, Shape{2});
    i.data<int32_t>()[0] = -7;
    i.data<int32_t>()[1] = 1 << 20;
    // 1 + 2^-8 is halfway between two bf16 values: RNE gives 1.0; 1 + 3*2^-8 rounds up to 1 + 2^-6
    Tensor f = f32_tensor(Shape{3}, {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 0.1f});
    const std::string p = dir / "c.safetensors";
    REQUIRE(write_safetensors(p, {{"b", b}, {"h", h}, {"i", i}, {"f", f}}).ok());
    auto file = SafetensorsFile::open(p);
    REQUIRE(file.ok());

    auto rb = read_tensor(*file.value()->find("b"), DType::f32);
    REQUIRE(rb.ok());
    REQUIRE(rb.value().dtype() == DType::f32);
    const float * fb = rb.value().data<float>();
    REQUIRE(fb[0] == 1.0f);
    REQUIRE(fb[1] == -3.0f);
    REQUIRE(fb[2] == 3.140625f);
    REQUIRE(fb[3] == 0x1p-133f);
    REQUIRE((std::isinf(fb[4]) && fb[4] < 0));

    const Tensor  th32 = read_tensor(*file.value()->find("h"), DType::f32).value();  // keep the buffer alive
    const float * fh   = th32.data<float>();
    REQUIRE(fh[0] == 1.0f);
    REQUIRE(fh[1] == -3.0f);
    REQUIRE(fh[2] == 0x1p-24f);
    REQUIRE(fh[3] == 65504.0f);
    REQUIRE(fh[4] == 0.333251953125f);

    const Tensor  ti32 = read_tensor(*file.value()->find("i"), DType::f32).value();
    const float * fi   = ti32.data<float>();
    REQUIRE(fi[0] == -7.0f);
    REQUIRE(fi[1] == 1048576.0f);

    auto tb = read_tensor(*file.value()->find("f"), DType::bf16);
    REQUIRE(tb.ok());
    REQUIRE(tb.value().data<uint16_t>()[0] == 0x3f80);
    REQUIRE(tb.value().data<uint16_t>()[1] == 0x3f82);
    REQUIRE(tb.value().data<uint16_t>()[2] == f32_to_bf16(0.1f));
    auto th = read_tensor(*file.value()->find("f"), DType::f16);
    REQUIRE(th.ok());
    REQUIRE(th.value().data<uint16_t>()[0] == 0x3c04);  // 1 + 2^-8 is exact in f16
    REQUIRE(th.value().data<uint16_t>()[2] == f32_to_f16(0.1f));
    // bf16 -> f16 goes through f32
    auto bh = read_tensor(*file.value()->find("b"), DType::f16);
    REQUIRE(bh.ok());
    REQUIRE(bh.value().data<uint16_t>()[1] == 0xc200);

    // integer targets are not conversions we offer: the error names the tensor and both dtypes
    auto bad = read_tensor(*file.value()->find("f"), DType::i32);
    REQUIRE(!bad.ok());
    REQUIRE_THAT(bad.status().message(), Catch::Contains("'f'") && Catch::Contains("f32") && Catch::Contains("i32"));
}

TEST_CASE("read_tensor converts tensors at unaligned offsets", "[safetensors]") {
    // Hand-made file: 1-byte tensor first, so the F32/I64/BF16 data sit at odd offsets (other writers
    // do not align), and an odd header length for good measure.
    std::string hdr = R"({"b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                         "f": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]},
                         "i": {"dtype": "I64", "shape": [1], "data_offsets": [9, 17]},
                         "h": {"dtype": "BF16", "shape": [1], "data_offsets": [17, 19]}})";
    if (hdr.size() % 2 == 0) hdr += ' ';
    std::string img = raw_image(hdr, 19);
    const size_t d = 8 + hdr.size();
    const float  fv[2] = {1.5f, -2.25f};
    const int64_t iv = -123456789;
    const uint16_t hv = 0x4049;  // 3.140625
    std::memcpy(&img[d + 1], fv, 8);
    std::memcpy(&img[d + 9], &iv, 8);
    std::memcpy(&img[d + 17], &hv, 2);
    auto f = SafetensorsFile::parse(reinterpret_cast<const uint8_t *>(img.data()), img.size(), "mem");
    REQUIRE(f.ok());
    const Tensor rf = read_tensor(*f.value()->find("f"), DType::f32).value();
    REQUIRE(rf.data<float>()[0] == 1.5f);
    REQUIRE(rf.data<float>()[1] == -2.25f);
    REQUIRE(read_tensor(*f.value()->find("f"), DType::bf16).value().data<uint16_t>()[1] == f32_to_bf16(-2.25f));
    REQUIRE(read_tensor(*f.value()->find("i"), DType::f32).value().data<float>()[0] == float(iv));
    REQUIRE(read_tensor(*f.value()->find("i"), DType::i64).value().data<int64_t>()[0] == iv);
    REQUIRE(read_tensor(*f.value()->find("h"), DType::f32).value().data<float>()[0] == 3.140625f);
}

TEST_CASE("safetensors: header length past the end of the file is a truncation error", "[safetensors]") {
    TmpDir dir("trunc-header");
    const std::string img = raw_image(kF32x2, 8);
    const std::string p = write_file(dir, "short_header.safetensors", img.substr(0, 20));
    const std::string msg = open_error(p);
    REQUIRE_THAT(msg, Catch::Contains(p) && Catch::Contains("truncated") && Catch::Contains("header length is " + std::to_string(std::string(kF32x2).size())) &&
                          Catch::Contains("only 12 bytes"));
}

TEST_CASE("safetensors: data section cut short names the tensor", "[safetensors]") {
    TmpDir dir("trunc-data");
    const std::string p = write_file(dir, "short_data.safetensors",
                                     raw_image(R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 10));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("truncated") && Catch::Contains("'x'") &&
                                    Catch::Contains("[0, 16]") && Catch::Contains("(10 bytes)"));
}

TEST_CASE("safetensors: files too small for a header and zero or absurd header lengths", "[safetensors]") {
    TmpDir dir("tiny");
    const std::string tiny = write_file(dir, "tiny.safetensors", "abc");
    REQUIRE_THAT(open_error(tiny), Catch::Contains(tiny) && Catch::Contains("truncated") && Catch::Contains("found 3 bytes"));
    const std::string empty = write_file(dir, "empty.safetensors", "");
    REQUIRE_THAT(open_error(empty), Catch::Contains(empty) && Catch::Contains("empty"));
    const std::string zero = write_file(dir, "zero.safetensors", std::string(16, '\0'));
    REQUIRE_THAT(open_error(zero), Catch::Contains(zero) && Catch::Contains("header length is 0"));
    std::string huge = std::string(8, '\0') + "{}";
    huge[4] = 1;  // 2^32 bytes of header
    const std::string hp = write_file(dir, "huge.safetensors", huge);
    REQUIRE_THAT(open_error(hp), Catch::Contains(hp) && Catch::Contains("4294967296") && Catch::Contains("implausible"));
}

TEST_CASE("safetensors: a header that is not valid JSON", "[safetensors]") {
    TmpDir dir("badjson");
    const std::string p = write_file(dir, "bad.safetensors", raw_image(R"({"x": {"dtype": "F32",)", 0));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("not valid JSON"));
    const std::string q = write_file(dir, "trailing.safetensors", raw_image(R"({} {})", 0));
    REQUIRE_THAT(open_error(q), Catch::Contains(q) && Catch::Contains("not valid JSON"));
}

TEST_CASE("safetensors: header and entries must be JSON objects with the expected fields", "[safetensors]") {
    TmpDir dir("notobj");
    const std::string a = write_file(dir, "array.safetensors", raw_image("[1, 2, 3]", 0));
    REQUIRE_THAT(open_error(a), Catch::Contains(a) && Catch::Contains("must be a JSON object") && Catch::Contains("array"));
    const std::string b = write_file(dir, "entry.safetensors", raw_image(R"({"w": 5})", 0));
    REQUIRE_THAT(open_error(b), Catch::Contains(b) && Catch::Contains("'w'") && Catch::Contains("expected an object"));
    const std::string c = write_file(dir, "extra.safetensors",
                                     raw_image(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "crc": 1}})", 1));
    REQUIRE_THAT(open_error(c), Catch::Contains("'w'") && Catch::Contains("unexpected field 'crc'"));
    const std::string d = write_file(dir, "noshape.safetensors", raw_image(R"({"w": {"dtype": "U8", "data_offsets": [0, 1]}})", 1));
    REQUIRE_THAT(open_error(d), Catch::Contains("'w'") && Catch::Contains("'shape' is missing"));
    const std::string e = write_file(dir, "meta.safetensors", raw_image(R"({"__metadata__": {"n": 5}})", 0));
    REQUIRE_THAT(open_error(e), Catch::Contains(e) && Catch::Contains("__metadata__") && Catch::Contains("'n'"));
    const std::string g = write_file(dir, "offs.safetensors", raw_image(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [1]}})", 1));
    REQUIRE_THAT(open_error(g), Catch::Contains("'w'") && Catch::Contains("data_offsets"));
}

TEST_CASE("safetensors: an unknown dtype string names the dtype and the tensor", "[safetensors]") {
    TmpDir dir("dtype");
    const std::string p = write_file(dir, "q.safetensors", raw_image(R"({"w": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 2]}})", 2));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("'w'") && Catch::Contains("unsupported dtype 'Q4_K'"));
    const std::string q = write_file(dir, "n.safetensors", raw_image(R"({"w": {"dtype": 7, "shape": [2], "data_offsets": [0, 2]}})", 2));
    REQUIRE_THAT(open_error(q), Catch::Contains("'w'") && Catch::Contains("'dtype' must be a string"));
}

TEST_CASE("safetensors: shape x dtype size must equal the byte range", "[safetensors]") {
    TmpDir dir("size");
    const std::string p = write_file(dir, "a.safetensors",
                                     raw_image(R"({"w": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 24]}})", 24));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("'w'") && Catch::Contains("[3, 2] x BF16 needs 12 bytes") &&
                                    Catch::Contains("span 24 bytes"));
    const std::string neg = write_file(dir, "neg.safetensors", raw_image(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", 0));
    REQUIRE_THAT(open_error(neg), Catch::Contains("'w'") && Catch::Contains("non-negative") && Catch::Contains("-1"));
    const std::string rev = write_file(dir, "rev.safetensors", raw_image(R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}})", 4));
    REQUIRE_THAT(open_error(rev), Catch::Contains("'w'") && Catch::Contains("begin > end"));
    // 2^32 * 2^32 elements: must be rejected, not wrapped to 0
    const std::string ovf = write_file(dir, "ovf.safetensors",
                                       raw_image(R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0));
    REQUIRE_THAT(open_error(ovf), Catch::Contains("'w'") && Catch::Contains("overflow"));
    // zero-size tensor with huge other dims: strides would overflow int64
    const std::string zovf = write_file(dir, "zovf.safetensors",
                                        raw_image(R"({"w": {"dtype": "U8", "shape": [0, 4294967296, 4294967296], "data_offsets": [0, 0]}})", 0));
    REQUIRE_THAT(open_error(zovf), Catch::Contains("'w'") && Catch::Contains("overflow"));
}

TEST_CASE("safetensors: a byte range outside the data section", "[safetensors]") {
    TmpDir dir("range");
    const std::string p = write_file(dir, "far.safetensors",
                                     raw_image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [100, 108]}})", 16));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("'b'") && Catch::Contains("[100, 108]") &&
                                    Catch::Contains("past the data section (16 bytes)"));
}

TEST_CASE("safetensors: overlapping byte ranges name both tensors", "[safetensors]") {
    TmpDir dir("overlap");
    const std::string p = write_file(dir, "o.safetensors",
        raw_image(R"({"p": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                      "q": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("'p' [0, 8)") && Catch::Contains("'q' [4, 12)") &&
                                    Catch::Contains("overlap"));
    // a zero-length tensor inside another's range is not an overlap
    const std::string ok = write_file(dir, "ok.safetensors",
        raw_image(R"({"p": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})", 8));
    REQUIRE(SafetensorsFile::open(ok).ok());
}

TEST_CASE("sharded checkpoint: index merges shards sorted by name and a directory prefers its index", "[safetensors]") {
    TmpDir dir("shard-ok");
    REQUIRE(write_safetensors(dir / "s2.safetensors", {{"c", f32_tensor(Shape{4}, {1, 2, 3, 4})}, {"extra", f32_tensor(Shape{1}, {9})}},
                              {{"shard", "2"}}).ok());
    REQUIRE(write_safetensors(dir / "s1.safetensors", {{"b", f32_tensor(Shape{3}, {5, 6, 7})}, {"a", f32_tensor(Shape{2}, {8, 9})}},
                              {{"shard", "1"}}).ok());
    const std::string idx = write_file(dir, "model.safetensors.index.json",
        R"({"metadata": {"total_size": 40}, "weight_map": {"c": "s2.safetensors", "a": "s1.safetensors", "b": "s1.safetensors"}})");
    for (const std::string & path : {idx, dir.path.string()}) {
        INFO(path);
        auto c = Checkpoint::open(path);
        REQUIRE(c.ok());
        REQUIRE(c.value()->path() == idx);
        REQUIRE(c.value()->dir() == dir.path.string());
        std::vector<std::string> names;
        for (auto & t : c.value()->tensors()) names.push_back(t.name);
        REQUIRE(names == std::vector<std::string>{"a", "b", "c", "extra"});  // "extra" is unmapped: fine
        REQUIRE(c.value()->find("c")->file == dir / "s2.safetensors");
        REQUIRE(read_tensor(*c.value()->find("c"), DType::f32).value().data<float>()[3] == 4.0f);
        REQUIRE(read_tensor(*c.value()->find("a"), DType::f32).value().data<float>()[1] == 9.0f);
        REQUIRE(c.value()->metadata().at("shard") == "1");
    }
}

TEST_CASE("sharded checkpoint: a mapped tensor missing from its shard names tensor and shard", "[safetensors]") {
    TmpDir dir("shard-miss");
    REQUIRE(write_safetensors(dir / "s1.safetensors", {{"a", f32_tensor(Shape{1}, {1})}}).ok());
    REQUIRE(write_safetensors(dir / "s2.safetensors", {{"b", f32_tensor(Shape{1}, {2})}}).ok());
    const std::string idx = write_file(dir, "m.safetensors.index.json",
                                       R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "zz": "s2.safetensors"}})");
    auto c = Checkpoint::open(idx);
    REQUIRE(!c.ok());
    REQUIRE(c.status().code() == ErrorCode::missing);
    REQUIRE_THAT(c.status().message(), Catch::Contains(idx) && Catch::Contains("'zz'") && Catch::Contains("'s2.safetensors'") &&
                                           Catch::Contains("does not contain it"));
    // a shard file that does not exist is an error naming the index and the shard
    write_file(dir, "m.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "gone.safetensors"}})");
    auto g = Checkpoint::open(idx);
    REQUIRE(!g.ok());
    REQUIRE_THAT(g.status().message(), Catch::Contains(idx) && Catch::Contains("gone.safetensors"));
}

TEST_CASE("sharded checkpoint: the same tensor in two shards is an error", "[safetensors]") {
    TmpDir dir("shard-dup");
    REQUIRE(write_safetensors(dir / "s1.safetensors", {{"a", f32_tensor(Shape{1}, {1})}, {"b", f32_tensor(Shape{1}, {2})}}).ok());
    REQUIRE(write_safetensors(dir / "s2.safetensors", {{"a", f32_tensor(Shape{1}, {3})}, {"x", f32_tensor(Shape{1}, {4})}}).ok());
    const std::string idx = write_file(dir, "m.safetensors.index.json",
                                       R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "x": "s2.safetensors"}})");
    auto c = Checkpoint::open(idx);
    REQUIRE(!c.ok());
    REQUIRE_THAT(c.status().message(), Catch::Contains(idx) && Catch::Contains("'a'") && Catch::Contains("two shards") &&
                                           Catch::Contains("'s1.safetensors'") && Catch::Contains("'s2.safetensors'"));
}

TEST_CASE("checkpoint directory: one file opens and two candidate files are an error listing both", "[safetensors]") {
    TmpDir dir("dir");
    auto empty = Checkpoint::open(dir.path.string());
    REQUIRE(!empty.ok());
    REQUIRE_THAT(empty.status().message(), Catch::Contains(dir.path.string()) && Catch::Contains("no *.safetensors"));
    REQUIRE(write_safetensors(dir / "one.safetensors", {{"a", f32_tensor(Shape{2}, {1, 2})}}).ok());
    write_file(dir, "config.json", "{}");  // other files are ignored
    auto one = Checkpoint::open(dir.path.string());
    REQUIRE(one.ok());
    REQUIRE(one.value()->dir() == dir.path.string());
    REQUIRE(one.value()->path() == dir / "one.safetensors");
    REQUIRE(write_safetensors(dir / "two.safetensors", {{"a", f32_tensor(Shape{2}, {1, 2})}}).ok());
    auto amb = Checkpoint::open(dir.path.string());
    REQUIRE(!amb.ok());
    REQUIRE_THAT(amb.status().message(), Catch::Contains(dir.path.string()) && Catch::Contains("ambiguous") &&
                                             Catch::Contains("'one.safetensors'") && Catch::Contains("'two.safetensors'"));
}

TEST_CASE("checkpoint and safetensors: a non-existent path names the path", "[safetensors]") {
    TmpDir dir("nopath");
    const std::string p = dir / "nope.safetensors";
    auto c = Checkpoint::open(p);
    REQUIRE(!c.ok());
    REQUIRE(c.status().code() == ErrorCode::missing);
    REQUIRE_THAT(c.status().message(), Catch::Contains(p) && Catch::Contains("does not exist"));
    REQUIRE_THAT(open_error(p), Catch::Contains(p) && Catch::Contains("No such file"));
    auto i = Checkpoint::open(dir / "nope.safetensors.index.json");
    REQUIRE_THAT(i.status().message(), Catch::Contains("nope.safetensors.index.json") && Catch::Contains("does not exist"));
}

TEST_CASE("write_safetensors: failures name the path and leave no file behind", "[safetensors]") {
    auto s = write_safetensors("/nonexistent-avs-dir/x.safetensors", {{"a", f32_tensor(Shape{2}, {1, 2})}});
    REQUIRE(!s.ok());
    REQUIRE(s.code() == ErrorCode::io);
    REQUIRE_THAT(s.message(), Catch::Contains("/nonexistent-avs-dir/x.safetensors") && Catch::Contains("No such file"));

    TmpDir dir("wfail");
    auto d = write_safetensors(dir / "d.safetensors", {{"a", f32_tensor(Shape{1}, {1})}, {"a", f32_tensor(Shape{1}, {2})}});
    REQUIRE(!d.ok());
    REQUIRE_THAT(d.message(), Catch::Contains("'a'") && Catch::Contains("repeated"));
    REQUIRE(!fs::exists(dir / "d.safetensors"));
    auto q = write_safetensors(dir / "q.safetensors", {{"q", Tensor::host(DType::int4, Shape{4})}});
    REQUIRE(!q.ok());
    REQUIRE_THAT(q.message(), Catch::Contains("'q'") && Catch::Contains("int4"));
    auto u = write_safetensors(dir / "u.safetensors", {{"w", Tensor()}});
    REQUIRE_THAT(u.message(), Catch::Contains("'w'"));
    REQUIRE(fs::is_empty(dir.path));  // no file, no .tmp

    // a write that fails midway (ENOSPC: the temp name links to /dev/full) reports the path and
    // leaves neither the target nor the temp file
    if (fs::exists("/dev/full")) {
        const std::string full = dir / "full.safetensors";
        fs::create_symlink("/dev/full", full + ".tmp");
        auto e = write_safetensors(full, {{"a", f32_tensor(Shape{2}, {1, 2})}});
        REQUIRE(!e.ok());
        REQUIRE(e.code() == ErrorCode::io);
        REQUIRE_THAT(e.message(), Catch::Contains(full) && Catch::Contains("No space left"));
        REQUIRE(!fs::exists(full));
        REQUIRE(!fs::exists(fs::symlink_status(full + ".tmp")));
    }

    // overwriting an existing file replaces it whole
    const std::string p = dir / "r.safetensors";
    REQUIRE(write_safetensors(p, {{"old", f32_tensor(Shape{3}, {1, 2, 3})}}).ok());
    REQUIRE(write_safetensors(p, {{"new", f32_tensor(Shape{1}, {4})}}).ok());
    auto f = SafetensorsFile::open(p);
    REQUIRE(f.ok());
    REQUIRE(f.value()->find("old") == nullptr);
    REQUIRE(f.value()->find("new") != nullptr);
}
