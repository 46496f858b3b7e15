// Levelled logging with a settable sink (ggml_log_set style): the CLI prints to stderr,
// the app routes messages into its log panel.
#pragma once

namespace avs {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, none = 4 };

using LogCallback = void (*)(LogLevel level, const char * msg, void * user);

void log_set_callback(LogCallback cb, void * user);  // nullptr restores the stderr sink
void log_set_level(LogLevel min_level);
LogLevel log_get_level();
const char * log_level_name(LogLevel level);
// "debug" | "info" | "warn" | "error" | "none" -> level; false for anything else.
bool log_level_from_name(const char * name, LogLevel & out);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_msg(LogLevel level, const char * fmt, ...);

} // namespace avs

#define AVS_LOG_DEBUG(...) ::avs::log_msg(::avs::LogLevel::debug, __VA_ARGS__)
#define AVS_LOG_INFO(...)  ::avs::log_msg(::avs::LogLevel::info, __VA_ARGS__)
#define AVS_LOG_WARN(...)  ::avs::log_msg(::avs::LogLevel::warn, __VA_ARGS__)
#define AVS_LOG_ERROR(...) ::avs::log_msg(::avs::LogLevel::error, __VA_ARGS__)
