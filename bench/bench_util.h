// Small helpers shared by the benchmarks: medians, the UTC timestamp of a result, and the result
// file name bench/results/<date>-<gpu>-<bench>.json.
#pragma once

#include <algorithm>
#include <cctype>
#include <ctime>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace avs::bench {

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "a,b,,c" -> {a, b, c}: the comma-separated lists of the benchmarks' flags
inline std::vector<std::string> split(const std::string & s) {
    std::vector<std::string> out;
    std::stringstream        ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

inline std::string iso_now_utc() {
    const std::time_t t = std::time(nullptr);
    std::tm           tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// "<dir>/<YYYY-MM-DD>-<device slug>-<bench>.json", e.g. 2026-11-23-h100-80gb-hbm3-kv-formats.json
inline std::string result_path(const std::string & dir, const std::string & iso_date, const std::string & device,
                               const std::string & bench) {
    std::string slug = std::regex_replace(device, std::regex("nvidia", std::regex::icase), "");
    std::transform(slug.begin(), slug.end(), slug.begin(), [](unsigned char c) { return std::isalnum(c) ? char(std::tolower(c)) : '-'; });
    slug = std::regex_replace(std::regex_replace(slug, std::regex("-+"), "-"), std::regex("^-|-$"), "");
    return dir + "/" + iso_date.substr(0, 10) + "-" + slug + "-" + bench + ".json";
}

} // namespace avs::bench
