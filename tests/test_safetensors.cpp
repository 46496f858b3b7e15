#include <catch2/catch.hpp>

#include "engine/io/safetensors.h"
#include "test_util.h"

#include <fstream>

using namespace avs;
namespace fs = std::filesystem;

namespace {

// A raw safetensors image: header JSON text (not padded) + `data_bytes` zero bytes.
std::string raw_image(const std::string & header, size_t data_bytes) {
    std::string s(8, '\0');
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char(uint8_t(n >> (8 * i)));
    return s + header + std::string(data_bytes, '\0');
}

std::string write_file(const fs::path & dir, const std::string & name, const std::string & bytes) {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

std::string open_error(const std::string & path) {
    auto f = SafetensorsFile::open(path);
    REQUIRE(!f.ok());
    return f.status().message();
}

} // namespace

TEST_CASE("safetensors round trip: dtypes, scalar, empty and strided tensors, metadata", "[safetensors]") {
    auto dir = test::temp_dir("st-rt");
    Tensor a = test::randn(Shape{3, 5}, 1);
    Tensor b = Tensor::host(DType::bf16, Shape{7});
    for (int i = 0; i < 7; ++i) b.data<uint16_t>()[i] = f32_to_bf16(float(i) - 2.5f);
    Tensor s = Tensor::host(DType::i64, Shape{});
    s.data<int64_t>()[0] = -42;
    Tensor e = Tensor::host(DType::f16, Shape{0, 4});
    Tensor strided = a.slice(1, 1, 4);  // [3, 3] non-contiguous
    const std::string p = (dir / "rt.safetensors").string();
    REQUIRE(write_safetensors(p, {{"a", a}, {"b", b}, {"s", s}, {"e", e}, {"strided", strided}}, {{"k", "v"}}).ok());
    auto f = SafetensorsFile::open(p);
    REQUIRE(f.ok());
    REQUIRE(f.value()->tensors().size() == 5);
    REQUIRE(f.value()->metadata().at("k") == "v");
    auto ra = read_tensor(*f.value()->find("a"), DType::f32).value();
    REQUIRE(std::memcmp(ra.raw(), a.raw(), a.nbytes()) == 0);
    auto rb = read_tensor(*f.value()->find("b"), DType::f32).value();
    REQUIRE(rb.data<float>()[6] == 3.5f);
    REQUIRE(f.value()->find("s")->shape.ndim == 0);
    REQUIRE(read_tensor(*f.value()->find("s"), DType::i64).value().data<int64_t>()[0] == -42);
    REQUIRE(f.value()->find("e")->shape == Shape{0, 4});
    auto rs = read_tensor(*f.value()->find("strided"), DType::f32).value();
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) REQUIRE(rs.data<float>()[r * 3 + c] == a.data<float>()[r * 5 + 1 + c]);
    REQUIRE(f.value()->find("nope") == nullptr);
    REQUIRE(!fs::exists(p + ".tmp"));
    fs::remove_all(dir);
}

TEST_CASE("read_tensor converts f16 and bf16 exactly to f32 and f32 to bf16", "[safetensors]") {
    auto dir = test::temp_dir("st-conv");
    Tensor h = Tensor::host(DType::f16, Shape{3});
    h.data<uint16_t>()[0] = 0x3c00;  // 1
    h.data<uint16_t>()[1] = 0xc200;  // -3
    h.data<uint16_t>()[2] = 0x0001;  // 2^-24
    const std::string p = (dir / "c.safetensors").string();
    REQUIRE(write_safetensors(p, {{"h", h}, {"f", test::randn(Shape{4}, 2)}}).ok());
    auto f  = SafetensorsFile::open(p).value();
    auto rh = read_tensor(*f->find("h"), DType::f32).value();
    REQUIRE(rh.data<float>()[0] == 1.0f);
    REQUIRE(rh.data<float>()[1] == -3.0f);
    REQUIRE(rh.data<float>()[2] == 5.9604644775390625e-8f);
    auto rb = read_tensor(*f->find("f"), DType::bf16).value();
    auto rf = read_tensor(*f->find("f"), DType::f32).value();
    for (int i = 0; i < 4; ++i) REQUIRE(rb.data<uint16_t>()[i] == f32_to_bf16(rf.data<float>()[i]));
    fs::remove_all(dir);
}

TEST_CASE("safetensors: truncated files are errors naming the file", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-trunc");
    // header length says more than the file holds
    const std::string a = write_file(dir, "short_header.safetensors", raw_image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8).substr(0, 20));
    REQUIRE_THAT(open_error(a), Catch::Contains(a) && Catch::Contains("truncated"));
    // data cut short
    const std::string b = write_file(dir, "short_data.safetensors", raw_image(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 10));
    REQUIRE_THAT(open_error(b), Catch::Contains(b) && Catch::Contains("'x'") && Catch::Contains("truncated"));
    // fewer than 8 bytes, and an empty file
    REQUIRE_THAT(open_error(write_file(dir, "tiny.safetensors", "abc")), Catch::Contains("truncated"));
    REQUIRE_THAT(open_error(write_file(dir, "empty.safetensors", "")), Catch::Contains("empty"));
    fs::remove_all(dir);
}

TEST_CASE("safetensors: bad JSON and a non-object header", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-json");
    const std::string a = write_file(dir, "a.safetensors", raw_image(R"({"x": {"dtype": "F32",)", 0));
    REQUIRE_THAT(open_error(a), Catch::Contains(a) && Catch::Contains("not valid JSON"));
    const std::string b = write_file(dir, "b.safetensors", raw_image("[1, 2, 3]", 0));
    REQUIRE_THAT(open_error(b), Catch::Contains("JSON object"));
    const std::string c = write_file(dir, "c.safetensors", raw_image(R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", 0));
    REQUIRE_THAT(open_error(c), Catch::Contains("'x'") && Catch::Contains("shape"));
    const std::string d = write_file(dir, "d.safetensors", raw_image(R"({"__metadata__": {"n": 5}})", 0));
    REQUIRE_THAT(open_error(d), Catch::Contains("__metadata__"));
    fs::remove_all(dir);
}

TEST_CASE("safetensors: unknown dtype names the dtype and the tensor", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-dtype");
    const std::string a = write_file(dir, "a.safetensors", raw_image(R"({"w": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 2]}})", 2));
    REQUIRE_THAT(open_error(a), Catch::Contains("'w'") && Catch::Contains("Q4_K"));
    fs::remove_all(dir);
}

TEST_CASE("safetensors: shape x dtype size must equal the byte range", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-size");
    const std::string a = write_file(dir, "a.safetensors", raw_image(R"({"w": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 24]}})", 24));
    REQUIRE_THAT(open_error(a), Catch::Contains("'w'") && Catch::Contains("[3, 2]") && Catch::Contains("12 bytes") &&
                                    Catch::Contains("24"));
    fs::remove_all(dir);
}

TEST_CASE("safetensors: overlapping byte ranges are rejected naming both tensors", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-ovl");
    const std::string a = write_file(dir, "a.safetensors", raw_image(
        R"({"p": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "q": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12));
    REQUIRE_THAT(open_error(a), Catch::Contains("'p'") && Catch::Contains("'q'") && Catch::Contains("overlap"));
    fs::remove_all(dir);
}

TEST_CASE("sharded checkpoints: index, missing tensor, tensor in two shards", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-shard");
    REQUIRE(write_safetensors((dir / "s1.safetensors").string(), {{"a", test::randn(Shape{2}, 1)}, {"b", test::randn(Shape{3}, 2)}}).ok());
    REQUIRE(write_safetensors((dir / "s2.safetensors").string(), {{"c", test::randn(Shape{4}, 3)}}).ok());
    const std::string idx = write_file(dir, "m.safetensors.index.json",
                                       R"({"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}})");
    auto ok = Checkpoint::open(idx);
    REQUIRE(ok.ok());
    REQUIRE(ok.value()->tensors().size() == 3);
    REQUIRE(ok.value()->find("c")->shape == Shape{4});
    auto viadir = Checkpoint::open(dir.string());  // a directory with one index
    REQUIRE(viadir.ok());
    REQUIRE(viadir.value()->tensors().size() == 3);

    write_file(dir, "m.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "zz": "s2.safetensors"}})");
    auto miss = Checkpoint::open(idx);
    REQUIRE(!miss.ok());
    REQUIRE_THAT(miss.status().message(), Catch::Contains("'zz'") && Catch::Contains("s2.safetensors"));

    REQUIRE(write_safetensors((dir / "s2.safetensors").string(), {{"a", test::randn(Shape{2}, 4)}}).ok());
    write_file(dir, "m.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
    write_file(dir, "m.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "x": "s2.safetensors"}})");
    REQUIRE(write_safetensors((dir / "s2.safetensors").string(), {{"a", test::randn(Shape{2}, 4)}, {"x", test::randn(Shape{1}, 5)}}).ok());
    auto dup = Checkpoint::open(idx);
    REQUIRE(!dup.ok());
    REQUIRE_THAT(dup.status().message(), Catch::Contains("'a'") && Catch::Contains("two shards"));
    fs::remove_all(dir);
}

TEST_CASE("checkpoint paths: missing path, ambiguous directory, single file directory", "[safetensors][loader]") {
    auto dir = test::temp_dir("st-dir");
    auto none = Checkpoint::open((dir / "nope.safetensors").string());
    REQUIRE_THAT(none.status().message(), Catch::Contains("nope.safetensors") && Catch::Contains("does not exist"));
    REQUIRE(write_safetensors((dir / "one.safetensors").string(), {{"a", test::randn(Shape{2}, 1)}}).ok());
    REQUIRE(Checkpoint::open(dir.string()).ok());
    REQUIRE(Checkpoint::open(dir.string()).value()->dir() == dir.string());
    REQUIRE(write_safetensors((dir / "two.safetensors").string(), {{"a", test::randn(Shape{2}, 1)}}).ok());
    auto amb = Checkpoint::open(dir.string());
    REQUIRE(!amb.ok());
    REQUIRE_THAT(amb.status().message(), Catch::Contains("one.safetensors") && Catch::Contains("two.safetensors"));
    fs::remove_all(dir);
}

TEST_CASE("write_safetensors fails cleanly on an unwritable path and leaves no partial file", "[safetensors]") {
    auto s = write_safetensors("/nonexistent-dir/x.safetensors", {{"a", test::randn(Shape{2}, 1)}});
    REQUIRE(!s.ok());
    REQUIRE_THAT(s.message(), Catch::Contains("/nonexistent-dir/x.safetensors"));
    auto dir = test::temp_dir("st-dup");
    auto d = write_safetensors((dir / "d.safetensors").string(), {{"a", test::randn(Shape{2}, 1)}, {"a", test::randn(Shape{2}, 1)}});
    REQUIRE_THAT(d.message(), Catch::Contains("'a'"));
    REQUIRE(!fs::exists(dir / "d.safetensors"));
    fs::remove_all(dir);
}
