// FFmpeg error codes as text, for the audio and recording modules' error messages.
#pragma once

extern "C" {
#include <libavutil/error.h>
}

#include <string>

namespace avs {

inline std::string av_err_text(int err) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(err, buf, sizeof(buf));
    return buf;
}

} // namespace avs
