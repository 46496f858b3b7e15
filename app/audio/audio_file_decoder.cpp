#include "app/audio/audio_file_decoder.h"

#include "app/av_error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
}

namespace avs {

Result<std::unique_ptr<AudioFileDecoder>> AudioFileDecoder::open(const std::string & path) {
    if (path.empty()) return make_error(ErrorCode::invalid_argument, "audio file: no path given");
    std::unique_ptr<AudioFileDecoder> d(new AudioFileDecoder(path));
    AVS_TRY(d->open_streams());
    return d;
}

AudioFileDecoder::~AudioFileDecoder() { close_streams(); }

void AudioFileDecoder::close_streams() {
    av_frame_free(&frame_);
    av_packet_free(&pkt_);
    avcodec_free_context(&codec_);
    avformat_close_input(&fmt_);
    stream_   = -1;
    draining_ = false;
    resampler_.reset();
}

Status AudioFileDecoder::open_streams() {
    const char * p = path_.c_str();
    int err = avformat_open_input(&fmt_, p, nullptr, nullptr);
    if (err < 0) return make_error(ErrorCode::io, "audio file '%s': cannot open: %s", p, av_err_text(err).c_str());
    err = avformat_find_stream_info(fmt_, nullptr);
    if (err < 0) {
        return make_error(ErrorCode::format, "audio file '%s': cannot read stream info: %s", p, av_err_text(err).c_str());
    }
    const AVCodec * dec = nullptr;
    stream_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_AUDIO, -1, -1, &dec, 0);
    if (stream_ < 0 || !dec) {
        return make_error(ErrorCode::format, "audio file '%s': no decodable audio stream (%s)", p,
                          stream_ < 0 ? av_err_text(stream_).c_str() : "no decoder for its codec");
    }
    const AVStream * st = fmt_->streams[stream_];
    codec_ = avcodec_alloc_context3(dec);
    pkt_   = av_packet_alloc();
    frame_ = av_frame_alloc();
    if (!codec_ || !pkt_ || !frame_) return make_error(ErrorCode::internal, "audio file '%s': out of memory", p);
    err = avcodec_parameters_to_context(codec_, st->codecpar);
    if (err >= 0) err = avcodec_open2(codec_, dec, nullptr);
    if (err < 0) {
        return make_error(ErrorCode::format, "audio file '%s': cannot open the %s decoder: %s", p, dec->name,
                          av_err_text(err).c_str());
    }
    source_rate_     = codec_->sample_rate;
    source_channels_ = codec_->ch_layout.nb_channels;
    codec_name_      = dec->name;
    // what the resampler takes (Resampler::create), checked here so that opening fails, not playback
    if (source_rate_ < 1000 || source_rate_ > 768000 || source_channels_ < 1 || source_channels_ > 64) {
        return make_error(ErrorCode::format, "audio file '%s': audio stream reports %d Hz, %d channels (expected 1000..768000 Hz, 1..64 channels)",
                          p, source_rate_, source_channels_);
    }
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
        duration_s_ = double(st->duration) * av_q2d(st->time_base);
    } else if (fmt_->duration != AV_NOPTS_VALUE && fmt_->duration > 0) {
        duration_s_ = double(fmt_->duration) / AV_TIME_BASE;
    }
    return Status::success();
}

Status AudioFileDecoder::rewind() {
    // Reopening (rather than seeking) works for unseekable inputs too and resets every state exactly.
    close_streams();
    return open_streams().with_context("rewinding");
}

Status AudioFileDecoder::convert_frame(std::vector<float> & out) {
    const int rate = frame_->sample_rate;
    const int ch   = frame_->ch_layout.nb_channels;
    const int fmt  = frame_->format;
    if (rate <= 0 || ch <= 0) {
        return make_error(ErrorCode::format, "audio file '%s': decoded frame reports %d Hz, %d channels", path_.c_str(),
                          rate, ch);
    }
    if (resampler_ && (resampler_->in_rate() != rate || resampler_->in_channels() != ch ||
                       resampler_->in_sample_format() != fmt)) {
        AVS_TRY(resampler_->flush(out));  // the format changed mid-stream: finish the old one
        resampler_.reset();
    }
    if (!resampler_) {
        Result<Resampler> r = Resampler::create(rate, ch, fmt);
        if (!r) return r.status().with_context("audio file '" + path_ + "'");
        resampler_.emplace(std::move(r).value());
    }
    return resampler_->process_raw(frame_->extended_data, frame_->nb_samples, out)
        .with_context("audio file '" + path_ + "'");
}

Status AudioFileDecoder::read_more(std::vector<float> & out, bool & eof) {
    eof = false;
    if (!fmt_) return make_error(ErrorCode::internal, "audio file '%s': not open", path_.c_str());
    for (;;) {
        int err = avcodec_receive_frame(codec_, frame_);
        if (err == 0) {
            Status st = convert_frame(out);
            av_frame_unref(frame_);
            return st;
        }
        if (err == AVERROR_EOF) {
            if (resampler_) AVS_TRY(resampler_->flush(out));
            eof = true;
            return Status::success();
        }
        if (err != AVERROR(EAGAIN)) {
            return make_error(ErrorCode::format, "audio file '%s': decoding failed: %s", path_.c_str(),
                              av_err_text(err).c_str());
        }
        // The decoder wants input.
        err = av_read_frame(fmt_, pkt_);
        if (err == AVERROR_EOF) {
            draining_ = true;
            err = avcodec_send_packet(codec_, nullptr);  // enter draining mode
            if (err < 0 && err != AVERROR_EOF) {
                return make_error(ErrorCode::format, "audio file '%s': flushing the decoder failed: %s", path_.c_str(),
                                  av_err_text(err).c_str());
            }
            continue;
        }
        if (err < 0) {
            return make_error(ErrorCode::io, "audio file '%s': reading failed: %s", path_.c_str(), av_err_text(err).c_str());
        }
        if (pkt_->stream_index == stream_) err = avcodec_send_packet(codec_, pkt_);
        av_packet_unref(pkt_);
        if (err < 0 && err != AVERROR(EAGAIN)) {
            // A corrupt packet: skip it, as players do, rather than end the stream.
            continue;
        }
    }
}

} // namespace avs
