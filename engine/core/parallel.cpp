#include "engine/core/parallel.h"

#include <algorithm>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace avs {

int cpu_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> & fn, int64_t min_grain) {
    if (n <= 0) return;
    const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(cpu_threads(), n / std::max<int64_t>(1, min_grain)));
    if (threads == 1) {
        fn(0, n);
        return;
    }
    // One contiguous range per thread: ops here are uniform, so static partitioning is enough.
#if defined(_OPENMP)
#pragma omp parallel for num_threads(int(threads)) schedule(static, 1)
#endif
    for (int64_t tid = 0; tid < threads; ++tid) {
        const int64_t b = n * tid / threads, e = n * (tid + 1) / threads;
        if (b < e) fn(b, e);
    }
}

} // namespace avs
