#include "app/record/record_path.h"

#include <filesystem>
#include <system_error>

namespace avs {

std::string unique_record_path(const std::string & dir, const std::string & wanted) {
    namespace fs = std::filesystem;
    fs::path p = wanted.empty() ? fs::path("avatarstream.mp4") : fs::path(wanted);
    if (p.is_relative() && !dir.empty()) p = fs::path(dir) / p;
    std::error_code ec;
    if (!fs::exists(p, ec)) return p.string();
    const std::string base = (p.parent_path() / p.stem()).string(), ext = p.extension().string();
    for (int i = 2;; ++i) {
        std::string c = base;
        c += '-';
        c += std::to_string(i);
        c += ext;
        if (!fs::exists(c, ec)) return c;
    }
}

} // namespace avs
