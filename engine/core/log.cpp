#include "engine/core/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace avs {
namespace {

void stderr_sink(LogLevel level, const char * msg, void *) {
    std::fprintf(stderr, "[%s] %s\n", log_level_name(level), msg);
}

std::mutex            g_mutex;  // guards the sink pair, so a callback is never torn
LogCallback           g_cb   = stderr_sink;
void *                g_user = nullptr;
std::atomic<LogLevel> g_level{LogLevel::info};

} // namespace

void log_set_callback(LogCallback cb, void * user) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_cb   = cb ? cb : stderr_sink;
    g_user = cb ? user : nullptr;
}

void log_set_level(LogLevel min_level) { g_level = min_level; }
LogLevel log_get_level() { return g_level; }

const char * log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info:  return "info";
        case LogLevel::warn:  return "warn";
        case LogLevel::error: return "error";
        case LogLevel::none:  return "none";
    }
    return "?";
}

bool log_level_from_name(const char * name, LogLevel & out) {
    for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::none}) {
        if (std::strcmp(name, log_level_name(l)) == 0) {
            out = l;
            return true;
        }
    }
    return false;
}

void log_msg(LogLevel level, const char * fmt, ...) {
    if (level < g_level.load()) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_cb(level, buf, g_user);
}

} // namespace avs
