#include <catch2/catch.hpp>

#include "engine/backend/backend.h"
#include "engine/backend/cuda/cuda_device.h"

TEST_CASE("a CUDA device is visible and described", "[cuda]") {
    REQUIRE(avs::cuda_device_count() > 0);
    const std::string d = avs::cuda_device_description(0);
    INFO(d);
    REQUIRE(d.find("sm_") != std::string::npos);
    REQUIRE(avs::cuda_available());
}
