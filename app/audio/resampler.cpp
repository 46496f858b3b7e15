#include "app/audio/resampler.h"

#include "app/av_error.h"

#include <utility>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

namespace avs {

Result<Resampler> Resampler::create(int in_rate, int in_channels, int in_sample_format) {
    if (in_rate < 1000 || in_rate > 768000) {
        return make_error(ErrorCode::invalid_argument, "resampler: input sample rate %d Hz is outside 1000..768000",
                          in_rate);
    }
    if (in_channels < 1 || in_channels > 64) {
        return make_error(ErrorCode::invalid_argument, "resampler: input channel count %d is outside 1..64",
                          in_channels);
    }
    const int fmt = in_sample_format < 0 ? int(AV_SAMPLE_FMT_FLT) : in_sample_format;
    if (fmt >= int(AV_SAMPLE_FMT_NB) || av_get_bytes_per_sample(AVSampleFormat(fmt)) <= 0) {
        return make_error(ErrorCode::invalid_argument, "resampler: input sample format %d is not a valid AVSampleFormat",
                          in_sample_format);
    }
    Resampler r;
    r.in_rate_     = in_rate;
    r.in_channels_ = in_channels;
    r.in_format_   = fmt;
    AVS_TRY(r.init());
    return r;
}

Resampler::Resampler(Resampler && o) noexcept
    : swr_(std::exchange(o.swr_, nullptr)), in_rate_(o.in_rate_), in_channels_(o.in_channels_),
      in_format_(o.in_format_) {}

Resampler & Resampler::operator=(Resampler && o) noexcept {
    if (this != &o) {
        swr_free(&swr_);
        swr_         = std::exchange(o.swr_, nullptr);
        in_rate_     = o.in_rate_;
        in_channels_ = o.in_channels_;
        in_format_   = o.in_format_;
    }
    return *this;
}

Resampler::~Resampler() { swr_free(&swr_); }

Status Resampler::init() {
    swr_free(&swr_);
    AVChannelLayout in_layout;
    av_channel_layout_default(&in_layout, in_channels_);
    AVChannelLayout out_layout = AV_CHANNEL_LAYOUT_MONO;
    int err = swr_alloc_set_opts2(&swr_, &out_layout, AV_SAMPLE_FMT_FLT, k_out_rate, &in_layout,
                                  AVSampleFormat(in_format_), in_rate_, 0, nullptr);
    av_channel_layout_uninit(&in_layout);
    if (err < 0 || !swr_) {
        return make_error(ErrorCode::internal, "resampler: swr_alloc_set_opts2(%d Hz, %d ch) failed: %s", in_rate_,
                          in_channels_, av_err_text(err).c_str());
    }
    if (in_channels_ > 1) {
        std::vector<double> matrix(size_t(in_channels_), 1.0 / in_channels_);  // one output row: the mean
        err = swr_set_matrix(swr_, matrix.data(), in_channels_);
        if (err < 0) {
            return make_error(ErrorCode::internal, "resampler: swr_set_matrix(%d ch -> mono) failed: %s", in_channels_,
                              av_err_text(err).c_str());
        }
    }
    err = swr_init(swr_);
    if (err < 0) {
        return make_error(ErrorCode::internal, "resampler: swr_init(%d Hz, %d ch, %s -> 16000 Hz mono) failed: %s",
                          in_rate_, in_channels_, av_get_sample_fmt_name(AVSampleFormat(in_format_)),
                          av_err_text(err).c_str());
    }
    return Status::success();
}

Status Resampler::convert(const uint8_t * const * data, int frames, std::vector<float> & out) {
    if (!swr_) return make_error(ErrorCode::internal, "resampler: used after being moved from");
    if (frames < 0) return make_error(ErrorCode::invalid_argument, "resampler: negative frame count %d", frames);
    const int cap = swr_get_out_samples(swr_, frames);
    if (cap < 0) {
        return make_error(ErrorCode::internal, "resampler: swr_get_out_samples failed: %s", av_err_text(cap).c_str());
    }
    const size_t old = out.size();
    out.resize(old + size_t(cap));
    uint8_t * dst = reinterpret_cast<uint8_t *>(out.data() + old);
    const int got = swr_convert(swr_, &dst, cap, const_cast<const uint8_t **>(data), frames);
    if (got < 0) {
        out.resize(old);
        return make_error(ErrorCode::internal, "resampler: swr_convert(%d frames) failed: %s", frames,
                          av_err_text(got).c_str());
    }
    out.resize(old + size_t(got));
    return Status::success();
}

Status Resampler::process(const float * interleaved, int frames, std::vector<float> & out) {
    if (in_format_ != int(AV_SAMPLE_FMT_FLT)) {
        return make_error(ErrorCode::invalid_argument, "resampler: process(float*) on a resampler created for %s input",
                          av_get_sample_fmt_name(AVSampleFormat(in_format_)));
    }
    if (frames == 0) return Status::success();
    if (!interleaved) return make_error(ErrorCode::invalid_argument, "resampler: null input with %d frames", frames);
    const uint8_t * planes[1] = {reinterpret_cast<const uint8_t *>(interleaved)};
    return convert(planes, frames, out);
}

Status Resampler::process_raw(const uint8_t * const * data, int frames, std::vector<float> & out) {
    if (frames == 0) return Status::success();
    if (!data || !data[0]) return make_error(ErrorCode::invalid_argument, "resampler: null input with %d frames", frames);
    return convert(data, frames, out);
}

Status Resampler::flush(std::vector<float> & out) {
    // swr_get_out_samples bounds the tail, but loop until swr returns nothing to be sure it is drained.
    for (int i = 0; i < 16; ++i) {
        const size_t before = out.size();
        AVS_TRY(convert(nullptr, 0, out));
        if (out.size() == before) break;
    }
    return Status::success();
}

Status Resampler::reset() { return init(); }

} // namespace avs
