// parallel_for over [0, n): OpenMP when available (the CPU backend's threading), serial otherwise.
#pragma once

#include <cstdint>
#include <functional>

namespace avs {

int  cpu_threads();
void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)> & fn, int64_t min_grain = 1);

} // namespace avs
