#include <catch2/catch.hpp>

#include "engine/model/config.h"
#include "test_util.h"

#include <fstream>

using namespace avs;

TEST_CASE("presets have the published Wan2.1 parameter counts", "[config]") {
    REQUIRE(config_preset("wan2.1-t2v-1.3b").value().param_count() == 1418996800ull);
    REQUIRE(config_preset("wan2.1-t2v-14b").value().param_count() == 14288491584ull);
    auto tiny = config_preset("tiny").value();
    REQUIRE(tiny.validate().ok());
    REQUIRE(tiny.head_dim() == 64);
    REQUIRE(tiny.rope_pairs_t() + tiny.rope_pairs_h() + tiny.rope_pairs_w() == 32);
    auto big = config_preset("wan2.1-t2v-1.3b").value();
    REQUIRE(big.rope_pairs_t() == 22);
    REQUIRE(big.rope_pairs_h() == 21);
    auto bad = config_preset("wan2.2");
    REQUIRE(!bad.ok());
    REQUIRE_THAT(bad.status().message(), Catch::Contains("wan2.1-t2v-1.3b"));
}

TEST_CASE("the official Wan config.json and the diffusers config are accepted", "[config]") {
    auto off = config_from_json(R"({"_class_name": "WanModel", "dim": 5120, "eps": 1e-06, "ffn_dim": 13824, "freq_dim": 256,
                                     "in_dim": 16, "model_type": "t2v", "num_heads": 40, "num_layers": 40, "out_dim": 16,
                                     "text_len": 512})", "config.json");
    REQUIRE(off.ok());
    REQUIRE(off.value().param_count() == 14288491584ull);
    auto dif = config_from_json(R"({"num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16, "out_channels": 16,
                                     "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30, "eps": 1e-06,
                                     "patch_size": [1, 2, 2]})", "diffusers.json");
    REQUIRE(dif.ok());
    REQUIRE(dif.value().param_count() == 1418996800ull);
    // Our own format round-trips.
    auto tiny  = config_preset("tiny").value();
    auto again = config_from_json(config_to_json(tiny), "roundtrip");
    REQUIRE(again.ok());
    REQUIRE(again.value().param_count() == tiny.param_count());
}

TEST_CASE("bad config fields are errors naming the field", "[config]") {
    auto a = config_from_json(R"({"dim": 100, "heads": 3})", "a.json");
    REQUIRE(!a.ok());
    REQUIRE_THAT(a.status().message(), Catch::Contains("a.json") && Catch::Contains("'dim'"));
    auto b = config_from_json(R"({"dim": "big"})", "b.json");
    REQUIRE_THAT(b.status().message(), Catch::Contains("'dim' must be an integer"));
    auto c = config_from_json(R"({"model_type": "i2v"})", "c.json");
    REQUIRE_THAT(c.status().message(), Catch::Contains("i2v"));
    auto d = config_from_json("{not json", "d.json");
    REQUIRE_THAT(d.status().message(), Catch::Contains("d.json") && Catch::Contains("JSON"));
    auto e = config_from_file("/nonexistent/cfg.json");
    REQUIRE_THAT(e.status().message(), Catch::Contains("/nonexistent/cfg.json"));
    auto f = config_from_json(R"({"patch_size": [2, 2, 2]})", "f.json");
    REQUIRE_THAT(f.status().message(), Catch::Contains("patch_size"));
    // numbers past int were read wrapped (4294968832 became 1536) or overflowed a product
    auto g = config_from_json(R"({"dim": 4294968832, "heads": 12})", "g.json");
    REQUIRE_FALSE(g.ok());
    REQUIRE_THAT(g.status().message(), Catch::Contains("g.json") && Catch::Contains("'dim'"));
    auto h = config_from_json(R"({"num_attention_heads": 65536, "attention_head_dim": 65536})", "h.json");
    REQUIRE_FALSE(h.ok());
    REQUIRE_THAT(h.status().message(), Catch::Contains("h.json") && Catch::Contains("num_attention_heads"));
    auto i = config_from_json(R"({"patch_size": [1, 65536, 65536]})", "i.json");
    REQUIRE_FALSE(i.ok());
    REQUIRE_THAT(i.status().message(), Catch::Contains("patch_size"));
}

TEST_CASE("config_resolve takes a preset name or a file", "[config]") {
    auto dir = test::temp_dir("cfg");
    const std::string p = (dir / "m.json").string();
    std::ofstream(p) << config_to_json(config_preset("tiny").value());
    REQUIRE(config_resolve(p).ok());
    REQUIRE(config_resolve("tiny").value().dim == 128);
    std::filesystem::remove_all(dir);
}
