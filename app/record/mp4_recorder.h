// Mp4Recorder: writes the avatar's video (RGBA frames) and the captured microphone audio (mono
// float) to an MP4 file through libavformat/libavcodec: H.264 via libx264 (MPEG-4 part 2 when
// libx264 is missing) plus AAC.
//
// Sync: both streams are timed from the caller's indexes, never from wall clock. Video frame k is
// shown at k / fps seconds, audio sample n at n / sample_rate seconds, both counted from the start
// of the recording, so the streams stay in sync however audio is chunked.
//
// Crash safety: by default the file is a fragmented MP4 (a moof+mdat fragment per keyframe, one
// keyframe a second). Each finished fragment is flushed to the OS at once, so a killed process, a
// crash or a full disk loses at most the fragment in progress (~1 s); everything before it stays
// playable without finish(). movflags are frag_keyframe+delay_moov+default_base_moof: delay_moov
// writes the moov with the first fragment instead of an empty one up front, which lets it carry
// edit lists. With empty_moov the muxer cannot express the AAC priming delay (1024 samples), so it
// pulls the first video frame 64 ms early and stretches it; with delay_moov every frame keeps its
// time. Either way nothing is playable before the first fragment is complete.
//
// The muxer interleaves by timestamp: while one stream lags, the other's packets wait in memory
// (up to 10 s). Push audio continuously (silence when the microphone fails), or open without audio.
//
// Thread safety: none. One thread owns a recorder and makes every call (the app runs a dedicated
// recorder thread fed by queues, so encoding never blocks the render or audio threads).
#pragma once

#include "engine/core/result.h"

#include <cstdint>
#include <memory>
#include <string>

namespace avs {

enum class VideoCodecChoice {
    automatic,  // H.264 (libx264) when this FFmpeg has it, else MPEG-4 part 2
    h264,       // libx264 only; open() fails with `unsupported` when it is missing
    mpeg4,      // MPEG-4 part 2 (FFmpeg's own encoder, always present)
};

struct RecorderOptions {
    std::string path;                 // output file, created or truncated
    int         width  = 0;           // even, > 0 (YUV 4:2:0 halves chroma both ways)
    int         height = 0;
    int         fps    = 16;
    int         audio_sample_rate = 16000;  // of the mono float input; 0 records no audio track
    VideoCodecChoice force_codec = VideoCodecChoice::automatic;
    int         crf = 20;                    // libx264 constant quality (lower = better, bigger)
    int64_t     video_bitrate = 0;           // bits/s; 0 = quality mode (crf, or qscale for mpeg4)
    int64_t     audio_bitrate = 48000;       // AAC bits/s (plenty for 16 kHz mono speech)
    double      keyframe_interval_s = 1.0;   // also the fragment length: what a crash can lose
    bool        fragmented = true;           // fragmented MP4 (crash safe); false = classic MP4
};

class Mp4Recorder {
public:
    // Opens the file, sets up the encoders and writes the header. Errors name the path.
    static Result<std::unique_ptr<Mp4Recorder>> open(const RecorderOptions & options);

    ~Mp4Recorder();  // calls finish() when the caller did not (its error cannot be reported)
    Mp4Recorder(const Mp4Recorder &) = delete;
    Mp4Recorder & operator=(const Mp4Recorder &) = delete;

    // One RGBA8 frame, [height, width, 4], rows tightly packed. frame_index must increase
    // (skipped indexes just make the previous frame last longer).
    Status push_video(const uint8_t * rgba, int64_t frame_index);

    // `count` mono samples in [-1, 1] whose first one is sample `first_sample_index` of the
    // recording. A gap (first_sample_index beyond what was pushed so far) is filled with silence so
    // later audio keeps its place against the video; samples overlapping what was already pushed
    // are dropped. Gaps longer than an hour are rejected as a broken index.
    Status push_audio(const float * samples, int64_t count, int64_t first_sample_index);

    // Flushes the encoders, writes the last fragment and the trailer, closes the file.
    // Idempotent: later calls return the first call's status. Pushes after finish() fail.
    Status finish();

    // A write failure (disk full, I/O error) is sticky: that push and every later call return the
    // same error; the fragments already on disk stay playable.
    const Status & error() const { return error_; }

    const std::string & path() const { return options_.path; }
    std::string video_codec_name() const;    // "h264" or "mpeg4"
    std::string video_encoder_name() const;  // "libx264" or "mpeg4"
    std::string audio_codec_name() const;    // "aac", or "" without audio
    int64_t     frames_written() const { return frames_written_; }  // video frames encoded
    int64_t     audio_samples_written() const { return audio_samples_in_; }  // incl. gap silence
    int64_t     bytes_written() const;       // bytes handed to the file so far
    double      duration_s() const;          // the longer of the two streams, from the indexes

private:
    struct Impl;  // libav* state, kept out of this header
    explicit Mp4Recorder(RecorderOptions options);

    Status fail(Status s);  // records a sticky write error and returns it
    Status encode_audio_samples(const float * samples, int64_t count);
    Status drain_audio_fifo(bool flush);

    RecorderOptions       options_;
    std::unique_ptr<Impl> impl_;
    Status                error_;
    bool                  finished_ = false;
    Status                finish_status_;
    int64_t               frames_written_   = 0;
    int64_t               last_frame_index_ = -1;
    int64_t               audio_samples_in_ = 0;  // input-rate samples accepted (next index)
};

} // namespace avs
