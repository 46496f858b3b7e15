// Chrome trace (chrome://tracing, Perfetto) output of stream spans, and how much of the decode
// stream's time hides behind DiT work.
#pragma once

#include "engine/core/result.h"
#include "engine/runtime/decode_pipeline.h"

#include <string>
#include <vector>

namespace avs {

// One "complete" event per span, one thread row per track ("dit", "decode").
Status write_chrome_trace(const std::string & path, const std::vector<StreamSpan> & spans);

// Share of the decode spans' total time that overlaps some DiT span (1 = fully hidden); 0 when
// there is no decode time.
double decode_hidden_fraction(const std::vector<StreamSpan> & spans);

} // namespace avs
