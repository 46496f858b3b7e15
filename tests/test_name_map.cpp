#include <catch2/catch.hpp>

#include "engine/model/config.h"
#include "engine/model/name_map.h"
#include "engine/model/weights.h"

using namespace avs;

TEST_CASE("every official key maps to diffusers and back", "[name_map]") {
    DitWeights w;
    auto       slots = weight_slots(w, config_preset("wan2.1-t2v-1.3b").value());
    REQUIRE(slots.size() == 825);  // the official T2V state dict has 825 tensors
    std::vector<std::string> dif;
    for (auto & s : slots) dif.push_back(official_to_diffusers(s.name));
    NameMap m = detect_name_map(dif);
    REQUIRE(m.layout == KeyLayout::diffusers);
    REQUIRE(m.prefix.empty());
    for (size_t i = 0; i < slots.size(); ++i) REQUIRE(m.canonical(dif[i]) == slots[i].name);
}

TEST_CASE("diffusers names: norm2 is the cross-attention norm (official norm3)", "[name_map]") {
    NameMap m;
    m.layout = KeyLayout::diffusers;
    REQUIRE(m.canonical("blocks.7.norm2.weight") == "blocks.7.norm3.weight");
    REQUIRE(m.canonical("blocks.7.norm2.bias") == "blocks.7.norm3.bias");
    REQUIRE(m.canonical("blocks.0.attn1.to_out.0.weight") == "blocks.0.self_attn.o.weight");
    REQUIRE(m.canonical("blocks.0.ffn.net.0.proj.bias") == "blocks.0.ffn.0.bias");
    REQUIRE(m.canonical("scale_shift_table") == "head.modulation");
    REQUIRE(m.canonical("blocks.3.scale_shift_table") == "blocks.3.modulation");
    REQUIRE(m.canonical("condition_embedder.time_proj.weight") == "time_projection.1.weight");
}

TEST_CASE("wrapper prefixes of Self-Forcing and ComfyUI exports are stripped", "[name_map]") {
    // nested as trainers save them: Self-Forcing's wrapper (generator.model.), DDP (module.), torch.compile (_orig_mod.)
    for (std::string p : {"model.", "generator.", "generator_ema.", "model.diffusion_model.", "generator.model.", "module.generator.model.",
                          "_orig_mod.", "module._orig_mod.model."}) {
        NameMap m = detect_name_map({p + "patch_embedding.weight", p + "blocks.0.self_attn.q.weight"});
        REQUIRE(m.prefix == p);
        REQUIRE(m.layout == KeyLayout::official);
        REQUIRE(m.canonical(p + "blocks.0.self_attn.q.weight") == "blocks.0.self_attn.q.weight");
    }
    // A prefix on only some keys is not a wrapper prefix.
    REQUIRE(detect_name_map({"model.x", "blocks.0.modulation"}).prefix.empty());
}
