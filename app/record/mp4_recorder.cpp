#include "app/record/mp4_recorder.h"

#include "app/av_error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace avs {

namespace {

// The sample rate the AAC encoder will run at: the input's when supported (no resampling), else
// the nearest one it lists.
int pick_sample_rate(const AVCodec * codec, int wanted) {
    if (!codec->supported_samplerates) return wanted;
    int best = 0;
    for (const int * r = codec->supported_samplerates; *r; ++r) {
        if (*r == wanted) return wanted;
        if (best == 0 || std::abs(*r - wanted) < std::abs(best - wanted)) best = *r;
    }
    return best;
}

constexpr int64_t kAudioChunk = 4096;  // input samples converted per swr_convert call
const float       kSilence[kAudioChunk] = {};

} // namespace

struct Mp4Recorder::Impl {
    AVFormatContext * fmt  = nullptr;
    AVCodecContext *  venc = nullptr;
    AVCodecContext *  aenc = nullptr;
    AVStream *        vst  = nullptr;
    AVStream *        ast  = nullptr;
    SwsContext *      sws  = nullptr;
    SwrContext *      swr  = nullptr;
    AVAudioFifo *     fifo = nullptr;
    AVFrame *         vframe = nullptr;
    AVFrame *         aframe = nullptr;
    AVPacket *        pkt    = nullptr;
    uint8_t **        conv   = nullptr;  // swr output planes
    int               conv_capacity   = 0;
    int               audio_frame_size = 1024;
    int64_t           audio_pts       = 0;  // encoder-rate samples sent to the encoder
    int64_t           final_bytes     = 0;
    bool              header_written  = false;  // false: open() failed part way, nothing to finish

    ~Impl() {
        if (fmt && fmt->pb) {
            final_bytes = fmt->pb->bytes_written;
            avio_closep(&fmt->pb);
        }
        avformat_free_context(fmt);
        avcodec_free_context(&venc);
        avcodec_free_context(&aenc);
        sws_freeContext(sws);
        swr_free(&swr);
        if (fifo) av_audio_fifo_free(fifo);
        av_frame_free(&vframe);
        av_frame_free(&aframe);
        av_packet_free(&pkt);
        if (conv) av_freep(&conv[0]);
        av_freep(&conv);
    }
};

Mp4Recorder::Mp4Recorder(RecorderOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

Mp4Recorder::~Mp4Recorder() {
    // A destructor cannot report failure; a caller that cares calls finish() itself.
    (void)finish();
}

Status Mp4Recorder::fail(Status s) {
    if (error_.ok()) error_ = s;
    return error_;
}

namespace {

// Receives every packet the encoder has ready and hands it to the muxer, then pushes the muxer's
// output to the OS: a fragment must reach the file when it is complete, not when a 32 KiB AVIO
// buffer happens to fill, or a crash would lose it.
Status write_ready_packets(AVFormatContext * fmt, AVCodecContext * enc, AVStream * st, AVPacket * pkt,
                           const std::string & path) {
    for (;;) {
        int ret = avcodec_receive_packet(enc, pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) break;
        if (ret < 0)
            return make_error(ErrorCode::internal, "%s: %s encoder failed: %s", path.c_str(), enc->codec->name,
                              av_err_text(ret).c_str());
        // Encoders without delay leave duration 0; the muxer needs it for a fragment's last sample.
        if (pkt->duration == 0 && enc->codec_type == AVMEDIA_TYPE_VIDEO) pkt->duration = 1;
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        ret = av_interleaved_write_frame(fmt, pkt);  // takes the packet's reference
        if (ret < 0 || fmt->pb->error < 0) {
            int err = fmt->pb->error < 0 ? fmt->pb->error : ret;
            return make_error(ErrorCode::io, "%s: writing the recording failed (%s); what was written before "
                              "the last fragment stays playable", path.c_str(), av_err_text(err).c_str());
        }
    }
    avio_flush(fmt->pb);
    if (fmt->pb->error < 0)
        return make_error(ErrorCode::io, "%s: writing the recording failed (%s); what was written before the "
                          "last fragment stays playable", path.c_str(), av_err_text(fmt->pb->error).c_str());
    return Status::success();
}

} // namespace

Result<std::unique_ptr<Mp4Recorder>> Mp4Recorder::open(const RecorderOptions & o) {
    const char * path = o.path.c_str();
    if (o.path.empty()) return make_error(ErrorCode::invalid_argument, "recorder: the output path is empty");
    if (o.width <= 0 || o.height <= 0 || o.width % 2 || o.height % 2)
        return make_error(ErrorCode::invalid_argument, "%s: video size %dx%d must be positive and even (YUV 4:2:0)",
                          path, o.width, o.height);
    if (o.fps <= 0 || o.fps > 240)
        return make_error(ErrorCode::invalid_argument, "%s: fps %d must be in 1..240", path, o.fps);
    if (o.audio_sample_rate < 0 || o.audio_sample_rate > 192000)
        return make_error(ErrorCode::invalid_argument, "%s: audio sample rate %d must be in 0..192000", path,
                          o.audio_sample_rate);
    if (!(o.keyframe_interval_s > 0.0) || o.keyframe_interval_s > 60.0)
        return make_error(ErrorCode::invalid_argument, "%s: keyframe interval %g s must be in (0, 60]", path,
                          o.keyframe_interval_s);

    std::unique_ptr<Mp4Recorder> rec(new Mp4Recorder(o));
    Impl & m = *rec->impl_;

    int ret = avformat_alloc_output_context2(&m.fmt, nullptr, "mp4", path);
    if (ret < 0 || !m.fmt)
        return make_error(ErrorCode::unsupported, "%s: this FFmpeg has no MP4 muxer (%s)", path,
                          av_err_text(ret).c_str());
    const bool global_header = (m.fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0;

    // ---- video encoder
    const AVCodec * vcodec = nullptr;
    if (o.force_codec != VideoCodecChoice::mpeg4) vcodec = avcodec_find_encoder_by_name("libx264");
    if (!vcodec && o.force_codec == VideoCodecChoice::h264)
        return make_error(ErrorCode::unsupported, "%s: H.264 was requested but this FFmpeg has no libx264 encoder",
                          path);
    if (!vcodec) vcodec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!vcodec) return make_error(ErrorCode::unsupported, "%s: this FFmpeg has neither libx264 nor mpeg4", path);
    const bool x264 = vcodec->id == AV_CODEC_ID_H264;

    m.venc = avcodec_alloc_context3(vcodec);
    if (!m.venc) return make_error(ErrorCode::internal, "%s: out of memory", path);
    m.venc->width     = o.width;
    m.venc->height    = o.height;
    m.venc->time_base = AVRational{1, o.fps};
    m.venc->framerate = AVRational{o.fps, 1};
    m.venc->pix_fmt   = AV_PIX_FMT_YUV420P;
    m.venc->gop_size  = std::max(1, static_cast<int>(std::lround(o.keyframe_interval_s * o.fps)));
    m.venc->max_b_frames = 0;  // pts == dts, and no frames held back: lower latency, less at risk
    // swscale's default RGB->YUV is BT.601 limited range; say so, or players guess.
    m.venc->color_range     = AVCOL_RANGE_MPEG;
    m.venc->colorspace      = AVCOL_SPC_SMPTE170M;
    m.venc->color_primaries = AVCOL_PRI_SMPTE170M;
    m.venc->color_trc       = AVCOL_TRC_SMPTE170M;
    if (global_header) m.venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary * vopts = nullptr;
    if (x264) {
        av_dict_set(&vopts, "preset", "veryfast", 0);
        av_dict_set(&vopts, "tune", "zerolatency", 0);
        if (o.video_bitrate <= 0) av_dict_set_int(&vopts, "crf", o.crf, 0);
    } else if (o.video_bitrate <= 0) {
        // MPEG-4 part 2 has no crf: a fixed quantiser, crf 20 -> q 4 (q 2 is best, 31 worst).
        m.venc->flags |= AV_CODEC_FLAG_QSCALE;
        m.venc->global_quality = FF_QP2LAMBDA * std::clamp(o.crf / 5, 2, 31);
    }
    if (o.video_bitrate > 0) m.venc->bit_rate = o.video_bitrate;
    ret = avcodec_open2(m.venc, vcodec, &vopts);
    av_dict_free(&vopts);
    if (ret < 0)
        return make_error(ErrorCode::unsupported, "%s: cannot open the %s video encoder for %dx%d@%d: %s", path,
                          vcodec->name, o.width, o.height, o.fps, av_err_text(ret).c_str());

    m.vst = avformat_new_stream(m.fmt, nullptr);
    if (!m.vst) return make_error(ErrorCode::internal, "%s: out of memory", path);
    m.vst->time_base = m.venc->time_base;
    if (avcodec_parameters_from_context(m.vst->codecpar, m.venc) < 0)
        return make_error(ErrorCode::internal, "%s: cannot copy video codec parameters", path);

    m.vframe = av_frame_alloc();
    m.pkt    = av_packet_alloc();
    if (!m.vframe || !m.pkt) return make_error(ErrorCode::internal, "%s: out of memory", path);
    m.vframe->format = AV_PIX_FMT_YUV420P;
    m.vframe->width  = o.width;
    m.vframe->height = o.height;
    if (av_frame_get_buffer(m.vframe, 0) < 0) return make_error(ErrorCode::internal, "%s: out of memory", path);
    m.sws = sws_getContext(o.width, o.height, AV_PIX_FMT_RGBA, o.width, o.height, AV_PIX_FMT_YUV420P,
                           SWS_BILINEAR, nullptr, nullptr, nullptr);
    if (!m.sws) return make_error(ErrorCode::internal, "%s: cannot set up RGBA -> YUV420P conversion", path);

    // ---- audio encoder
    if (o.audio_sample_rate > 0) {
        const AVCodec * acodec = avcodec_find_encoder(AV_CODEC_ID_AAC);
        if (!acodec) return make_error(ErrorCode::unsupported, "%s: this FFmpeg has no AAC encoder", path);
        m.aenc = avcodec_alloc_context3(acodec);
        if (!m.aenc) return make_error(ErrorCode::internal, "%s: out of memory", path);
        m.aenc->sample_fmt  = acodec->sample_fmts ? acodec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
        m.aenc->sample_rate = pick_sample_rate(acodec, o.audio_sample_rate);
        av_channel_layout_default(&m.aenc->ch_layout, 1);
        m.aenc->bit_rate  = o.audio_bitrate;
        m.aenc->time_base = AVRational{1, m.aenc->sample_rate};
        if (global_header) m.aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        ret = avcodec_open2(m.aenc, acodec, nullptr);
        if (ret < 0)
            return make_error(ErrorCode::unsupported, "%s: cannot open the %s audio encoder at %d Hz mono: %s", path,
                              acodec->name, m.aenc->sample_rate, av_err_text(ret).c_str());
        m.audio_frame_size = m.aenc->frame_size > 0 ? m.aenc->frame_size : 1024;

        m.ast = avformat_new_stream(m.fmt, nullptr);
        if (!m.ast) return make_error(ErrorCode::internal, "%s: out of memory", path);
        m.ast->time_base = m.aenc->time_base;
        if (avcodec_parameters_from_context(m.ast->codecpar, m.aenc) < 0)
            return make_error(ErrorCode::internal, "%s: cannot copy audio codec parameters", path);

        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        ret = swr_alloc_set_opts2(&m.swr, &m.aenc->ch_layout, m.aenc->sample_fmt, m.aenc->sample_rate, &mono,
                                  AV_SAMPLE_FMT_FLT, o.audio_sample_rate, 0, nullptr);
        if (ret < 0 || swr_init(m.swr) < 0)
            return make_error(ErrorCode::internal, "%s: cannot set up audio conversion %d Hz -> %d Hz", path,
                              o.audio_sample_rate, m.aenc->sample_rate);
        m.fifo = av_audio_fifo_alloc(m.aenc->sample_fmt, 1, m.audio_frame_size * 4);
        m.aframe = av_frame_alloc();
        if (!m.fifo || !m.aframe) return make_error(ErrorCode::internal, "%s: out of memory", path);
        m.aframe->format      = m.aenc->sample_fmt;
        m.aframe->sample_rate = m.aenc->sample_rate;
        m.aframe->nb_samples  = m.audio_frame_size;
        if (av_channel_layout_copy(&m.aframe->ch_layout, &m.aenc->ch_layout) < 0 ||
            av_frame_get_buffer(m.aframe, 0) < 0)
            return make_error(ErrorCode::internal, "%s: out of memory", path);
    }

    // ---- file and header
    ret = avio_open(&m.fmt->pb, path, AVIO_FLAG_WRITE);
    if (ret < 0)
        return make_error(ErrorCode::io, "%s: cannot create the recording file: %s", path, av_err_text(ret).c_str());
    AVDictionary * mopts = nullptr;
    // delay_moov rather than empty_moov: see the header (edit lists keep the first frame's time).
    if (o.fragmented) av_dict_set(&mopts, "movflags", "frag_keyframe+delay_moov+default_base_moof", 0);
    ret = avformat_write_header(m.fmt, &mopts);
    av_dict_free(&mopts);
    if (ret >= 0) avio_flush(m.fmt->pb);
    if (ret < 0 || m.fmt->pb->error < 0) {
        int err = ret < 0 ? ret : m.fmt->pb->error;
        return make_error(ErrorCode::io, "%s: cannot write the MP4 header: %s", path, av_err_text(err).c_str());
    }
    m.header_written = true;
    return rec;
}

Status Mp4Recorder::push_video(const uint8_t * rgba, int64_t frame_index) {
    if (!error_.ok()) return error_;
    if (finished_) return make_error(ErrorCode::invalid_argument, "%s: push_video after finish()", path().c_str());
    if (!rgba) return make_error(ErrorCode::invalid_argument, "%s: push_video got a null frame", path().c_str());
    if (frame_index <= last_frame_index_)
        return make_error(ErrorCode::invalid_argument, "%s: video frame index %lld must be > the previous %lld",
                          path().c_str(), static_cast<long long>(frame_index),
                          static_cast<long long>(last_frame_index_));
    Impl & m = *impl_;
    // The encoder may still hold a reference to the last frame's buffers.
    if (av_frame_make_writable(m.vframe) < 0)
        return fail(make_error(ErrorCode::internal, "%s: out of memory", path().c_str()));
    const uint8_t * src[1]    = {rgba};
    const int       stride[1] = {options_.width * 4};
    sws_scale(m.sws, src, stride, 0, options_.height, m.vframe->data, m.vframe->linesize);
    m.vframe->pts = frame_index;
    int ret = avcodec_send_frame(m.venc, m.vframe);
    if (ret < 0)
        return fail(make_error(ErrorCode::internal, "%s: %s rejected frame %lld: %s", path().c_str(),
                               m.venc->codec->name, static_cast<long long>(frame_index), av_err_text(ret).c_str()));
    last_frame_index_ = frame_index;
    ++frames_written_;
    Status s = write_ready_packets(m.fmt, m.venc, m.vst, m.pkt, path());
    return s.ok() ? s : fail(s);
}

Status Mp4Recorder::push_audio(const float * samples, int64_t count, int64_t first_sample_index) {
    if (!error_.ok()) return error_;
    if (finished_) return make_error(ErrorCode::invalid_argument, "%s: push_audio after finish()", path().c_str());
    if (!impl_->aenc)
        return make_error(ErrorCode::invalid_argument, "%s: push_audio but the recorder has no audio track",
                          path().c_str());
    if (count < 0 || first_sample_index < 0 || (count > 0 && !samples))
        return make_error(ErrorCode::invalid_argument, "%s: push_audio got count %lld at index %lld (%s)",
                          path().c_str(), static_cast<long long>(count), static_cast<long long>(first_sample_index),
                          samples ? "need count >= 0 and index >= 0" : "null samples");
    const int64_t max_gap = int64_t{3600} * options_.audio_sample_rate;
    if (first_sample_index - audio_samples_in_ > max_gap)
        return make_error(ErrorCode::invalid_argument, "%s: audio jumps from sample %lld to %lld (over an hour)",
                          path().c_str(), static_cast<long long>(audio_samples_in_),
                          static_cast<long long>(first_sample_index));
    // Overlap with audio already taken: drop it, the recording keeps the first copy.
    int64_t skip = std::clamp<int64_t>(audio_samples_in_ - first_sample_index, 0, count);
    // Gap: silence, so later samples keep their place against the video.
    if (first_sample_index > audio_samples_in_)
        AVS_TRY(encode_audio_samples(nullptr, first_sample_index - audio_samples_in_));
    return encode_audio_samples(samples + skip, count - skip);
}

// Converts input samples (nullptr = silence) to the encoder's format and encodes every full frame.
Status Mp4Recorder::encode_audio_samples(const float * samples, int64_t count) {
    Impl & m = *impl_;
    for (int64_t done = 0; done < count;) {
        const int     n   = static_cast<int>(std::min(kAudioChunk, count - done));
        const float * src = samples ? samples + done : kSilence;
        const int     cap = swr_get_out_samples(m.swr, n);
        if (cap > m.conv_capacity) {
            if (m.conv) av_freep(&m.conv[0]);
            av_freep(&m.conv);
            if (av_samples_alloc_array_and_samples(&m.conv, nullptr, 1, cap, m.aenc->sample_fmt, 0) < 0)
                return fail(make_error(ErrorCode::internal, "%s: out of memory", path().c_str()));
            m.conv_capacity = cap;
        }
        const uint8_t * in[1] = {reinterpret_cast<const uint8_t *>(src)};
        int got = swr_convert(m.swr, m.conv, cap, in, n);
        if (got < 0 || (got > 0 && av_audio_fifo_write(m.fifo, reinterpret_cast<void **>(m.conv), got) < got))
            return fail(make_error(ErrorCode::internal, "%s: audio conversion failed", path().c_str()));
        done += n;
        audio_samples_in_ += n;
        AVS_TRY(drain_audio_fifo(false));
    }
    return Status::success();
}

// Encodes the FIFO in encoder-sized frames; `flush` also encodes the last partial frame (as a short
// frame when the encoder allows it, else padded with silence).
Status Mp4Recorder::drain_audio_fifo(bool flush) {
    Impl & m = *impl_;
    for (;;) {
        const int avail = av_audio_fifo_size(m.fifo);
        if (avail == 0 || (avail < m.audio_frame_size && !flush)) break;
        const int n = std::min(avail, m.audio_frame_size);
        if (av_frame_make_writable(m.aframe) < 0)
            return fail(make_error(ErrorCode::internal, "%s: out of memory", path().c_str()));
        const bool short_ok = m.aenc->codec->capabilities &
                              (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE);
        m.aframe->nb_samples = (n < m.audio_frame_size && short_ok) ? n : m.audio_frame_size;
        if (av_audio_fifo_read(m.fifo, reinterpret_cast<void **>(m.aframe->data), n) < n)
            return fail(make_error(ErrorCode::internal, "%s: audio FIFO read failed", path().c_str()));
        if (n < m.aframe->nb_samples)
            av_samples_set_silence(m.aframe->data, n, m.aframe->nb_samples - n, 1, m.aenc->sample_fmt);
        m.aframe->pts = m.audio_pts;
        m.audio_pts += m.aframe->nb_samples;
        int ret = avcodec_send_frame(m.aenc, m.aframe);
        if (ret < 0)
            return fail(make_error(ErrorCode::internal, "%s: the AAC encoder rejected a frame: %s", path().c_str(),
                                   av_err_text(ret).c_str()));
        Status s = write_ready_packets(m.fmt, m.aenc, m.ast, m.pkt, path());
        if (!s.ok()) return fail(s);
    }
    return Status::success();
}

Status Mp4Recorder::finish() {
    if (finished_) return finish_status_;
    finished_ = true;
    Impl & m  = *impl_;
    if (!m.header_written) return finish_status_;
    Status s  = error_;
    if (s.ok() && m.aenc) {
        // Samples still inside the resampler (only when it resamples), then the partial frame.
        for (;;) {
            const int cap = std::max(m.conv_capacity, 0);
            int got = cap > 0 ? swr_convert(m.swr, m.conv, cap, nullptr, 0) : 0;
            if (got <= 0) break;
            av_audio_fifo_write(m.fifo, reinterpret_cast<void **>(m.conv), got);
        }
        s = drain_audio_fifo(true);
        if (s.ok()) {
            avcodec_send_frame(m.aenc, nullptr);
            s = write_ready_packets(m.fmt, m.aenc, m.ast, m.pkt, path());
        }
    }
    if (s.ok()) {
        avcodec_send_frame(m.venc, nullptr);
        s = write_ready_packets(m.fmt, m.venc, m.vst, m.pkt, path());
    }
    if (s.ok()) {
        int ret = av_write_trailer(m.fmt);
        if (ret >= 0) avio_flush(m.fmt->pb);
        if (ret < 0 || m.fmt->pb->error < 0)
            s = make_error(ErrorCode::io, "%s: writing the end of the recording failed (%s); the fragments "
                           "before it stay playable", path().c_str(),
                           av_err_text(ret < 0 ? ret : m.fmt->pb->error).c_str());
    }
    // After a write error the trailer is skipped: the muxer state is unreliable, and the fragments
    // already on disk are playable without it.
    if (m.fmt && m.fmt->pb) {
        m.final_bytes = m.fmt->pb->bytes_written;
        int ret = avio_closep(&m.fmt->pb);
        if (ret < 0 && s.ok())
            s = make_error(ErrorCode::io, "%s: closing the recording failed: %s", path().c_str(),
                           av_err_text(ret).c_str());
    }
    if (!s.ok()) s = fail(s);
    finish_status_ = s;
    return s;
}

std::string Mp4Recorder::video_codec_name() const { return avcodec_get_name(impl_->venc->codec_id); }
std::string Mp4Recorder::video_encoder_name() const { return impl_->venc->codec->name; }
std::string Mp4Recorder::audio_codec_name() const {
    return impl_->aenc ? avcodec_get_name(impl_->aenc->codec_id) : "";
}

int64_t Mp4Recorder::bytes_written() const {
    const Impl & m = *impl_;
    return (m.fmt && m.fmt->pb) ? m.fmt->pb->bytes_written : m.final_bytes;
}

double Mp4Recorder::duration_s() const {
    double video = static_cast<double>(last_frame_index_ + 1) / options_.fps;
    double audio = options_.audio_sample_rate > 0
                       ? static_cast<double>(audio_samples_in_) / options_.audio_sample_rate : 0.0;
    return std::max(video, audio);
}

} // namespace avs
