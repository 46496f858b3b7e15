// Where a recording goes: the record button never overwrites an earlier take.
#pragma once

#include <string>

namespace avs {

// `wanted` (a file name or path; relative ones go under `dir` when it is set; empty: avatarstream.mp4),
// or, when that file exists, the first free "<stem>-2<ext>", "<stem>-3<ext>", ...
std::string unique_record_path(const std::string & dir, const std::string & wanted);

} // namespace avs
