#include "engine/runtime/trace.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

namespace avs {

Status write_chrome_trace(const std::string & path, const std::vector<StreamSpan> & spans) {
    nlohmann::json events = nlohmann::json::array();
    std::map<std::string, int> tids;
    for (const StreamSpan & s : spans) {
        auto [it, added] = tids.emplace(s.track, int(tids.size()) + 1);
        if (added)  // name the row after its stream
            events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 1}, {"tid", it->second},
                              {"args", {{"name", s.track + " stream"}}}});
        // trace timestamps are microseconds
        events.push_back({{"ph", "X"}, {"name", s.name}, {"cat", s.track}, {"pid", 1}, {"tid", it->second},
                          {"ts", s.start_ms * 1000.0}, {"dur", s.dur_ms * 1000.0}});
    }
    nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
    std::ofstream f(path);
    if (!f) return make_error(ErrorCode::io, "%s: cannot open for writing", path.c_str());
    f << doc.dump(1) << "\n";
    if (!f.good()) return make_error(ErrorCode::io, "%s: write failed", path.c_str());
    return {};
}

double decode_hidden_fraction(const std::vector<StreamSpan> & spans) {
    // Union of the DiT intervals, then each decode interval's covered length.
    std::vector<std::pair<double, double>> dit;
    for (const StreamSpan & s : spans)
        if (s.track == "dit") dit.emplace_back(s.start_ms, s.start_ms + s.dur_ms);
    std::sort(dit.begin(), dit.end());
    std::vector<std::pair<double, double>> merged;
    for (auto iv : dit) {
        if (!merged.empty() && iv.first <= merged.back().second) merged.back().second = std::max(merged.back().second, iv.second);
        else merged.push_back(iv);
    }
    double total = 0, hidden = 0;
    for (const StreamSpan & s : spans) {
        if (s.track != "decode") continue;
        const double a = s.start_ms, b = s.start_ms + s.dur_ms;
        total += b - a;
        for (auto [c, d] : merged) hidden += std::max(0.0, std::min(b, d) - std::max(a, c));
    }
    return total > 0 ? hidden / total : 0.0;
}

} // namespace avs
