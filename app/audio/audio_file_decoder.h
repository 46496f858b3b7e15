// AudioFileDecoder: pulls any audio file FFmpeg can demux and decode (WAV, FLAC, MP3, the audio of
// an MP4, ...) as 16 kHz mono float, chunk by chunk, so a long file never sits in memory whole.
// One thread at a time; not real-time safe (FFmpeg allocates).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/audio/resampler.h"
#include "engine/core/result.h"

struct AVFormatContext;
struct AVCodecContext;
struct AVPacket;
struct AVFrame;

namespace avs {

class AudioFileDecoder {
public:
    static Result<std::unique_ptr<AudioFileDecoder>> open(const std::string & path);
    ~AudioFileDecoder();
    AudioFileDecoder(const AudioFileDecoder &) = delete;
    AudioFileDecoder & operator=(const AudioFileDecoder &) = delete;

    // Appends the next decoded chunk (some samples, possibly none). Sets eof once everything,
    // including the resampler's tail, has been delivered.
    Status read_more(std::vector<float> & out, bool & eof);
    // Back to the start: the next samples are the same as after open().
    Status rewind();

    const std::string & path() const { return path_; }
    int    source_rate() const { return source_rate_; }
    int    source_channels() const { return source_channels_; }
    const std::string & codec_name() const { return codec_name_; }
    double duration_s() const { return duration_s_; }  // 0 when the container does not say

private:
    explicit AudioFileDecoder(std::string path) : path_(std::move(path)) {}
    Status open_streams();
    void   close_streams();
    Status convert_frame(std::vector<float> & out);

    std::string       path_;
    AVFormatContext * fmt_   = nullptr;
    AVCodecContext *  codec_ = nullptr;
    AVPacket *        pkt_   = nullptr;
    AVFrame *         frame_ = nullptr;
    int               stream_ = -1;
    bool              draining_ = false;  // the demuxer hit EOF; the decoder is being flushed
    std::optional<Resampler> resampler_;   // made from the first frame (formats can change mid-file)
    int               source_rate_ = 0;
    int               source_channels_ = 0;
    std::string       codec_name_;
    double            duration_s_ = 0.0;
};

} // namespace avs
