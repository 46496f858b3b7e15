// RingView: the index math of the ring KV cache, shared verbatim by host code, the CPU twin and
// CUDA kernels (plain struct, passed by value).
//
// Storage holds `sinks + window` frame slots. Frame f (absolute latent-frame index) lives in slot
//     f                              if f < sinks         (sinks: the first frames ever generated)
//     sinks + (f - sinks) % window   otherwise            (the rolling window)
// so writing a new chunk overwrites exactly the frames that fell out of the window; no data moves.
//
// While the chunk ending at frame `end_frame` (exclusive) is generated, attention sees, in this
// logical order: the sink frames [0, min(sinks, end)), then the window frames [ring_begin, end)
// with ring_begin = max(sinks, end - window). The window includes the chunk being generated.
// Keys are stored before their temporal RoPE (the spatial part, fixed per token, is applied at
// write time); their temporal RoPE position is the absolute frame index
// (RopeMode::absolute, as Self-Forcing) or the logical index above (RopeMode::window: positions
// stay bounded, so a stream can run forever).
#pragma once

#include "engine/core/hd.h"

#include <cstdint>

namespace avs {

enum class RopeMode : int32_t { absolute = 0, window = 1 };

// A contiguous run of logical frames stored in consecutive slots.
struct RingFragment {
    int32_t logical_begin;  // first logical frame index of the run
    int32_t slot_begin;     // its slot
    int32_t frames;         // length (0 = unused)
};

struct RingView {
    int32_t  sinks;             // sink capacity (frames)
    int32_t  window;            // rolling-window capacity (frames), >= chunk frames
    int32_t  tokens_per_frame;  // tokens stored per frame slot
    int64_t  end_frame;         // exclusive end of the visible range (end of the current chunk)
    RopeMode rope_mode;
    // After a live change of the window only part of it may hold data: window frames >= history_begin
    // (the default: everything). Sinks always do (KvCache::migrate).
    int64_t  history_begin = 0;

    AVS_HD int32_t capacity() const { return sinks + window; }

    AVS_HD int32_t slot_of_frame(int64_t f) const {
        return f < sinks ? int32_t(f) : int32_t(sinks + (f - sinks) % window);
    }
    AVS_HD int32_t visible_sinks() const { return end_frame < sinks ? int32_t(end_frame) : sinks; }
    AVS_HD int64_t ring_begin() const {
        int64_t b = end_frame - window;
        if (b < sinks) b = sinks;
        return b > history_begin ? b : history_begin;
    }
    AVS_HD int32_t visible_ring() const {
        const int64_t n = end_frame - ring_begin();
        return n > 0 ? int32_t(n) : 0;
    }
    AVS_HD int32_t visible_frames() const { return visible_sinks() + visible_ring(); }
    AVS_HD int64_t visible_tokens() const { return int64_t(visible_frames()) * tokens_per_frame; }

    // Logical frame index (0 .. visible_frames-1) -> absolute frame index.
    AVS_HD int64_t frame_of_logical(int32_t l) const {
        const int32_t s = visible_sinks();
        return l < s ? int64_t(l) : ring_begin() + (l - s);
    }
    AVS_HD int32_t slot_of_logical(int32_t l) const { return slot_of_frame(frame_of_logical(l)); }

    // Temporal RoPE position of a logical frame (keys) — queries of the current chunk use the
    // position of their own frame, which is visible and so has a logical index.
    AVS_HD int64_t rope_pos_of_logical(int32_t l) const {
        return rope_mode == RopeMode::absolute ? frame_of_logical(l) : int64_t(l);
    }
    // Logical index of a visible absolute frame f (caller guarantees visibility).
    AVS_HD int32_t logical_of_frame(int64_t f) const {
        const int32_t s = visible_sinks();
        return f < s ? int32_t(f) : int32_t(s + (f - ring_begin()));
    }
    AVS_HD int64_t rope_pos_of_frame(int64_t f) const {
        return rope_mode == RopeMode::absolute ? f : int64_t(logical_of_frame(f));
    }

    // The visible range as at most 3 slot runs: the sinks, then up to two ring fragments (the
    // window wraps around the end of the ring at most once). Returns the number of fragments.
    AVS_HD int32_t fragments(RingFragment out[3]) const {
        int32_t n = 0;
        const int32_t s = visible_sinks();
        if (s > 0) out[n++] = RingFragment{0, 0, s};
        const int32_t r = visible_ring();
        if (r > 0) {
            const int32_t first = slot_of_frame(ring_begin()) - sinks;  // ring-relative slot
            const int32_t run1  = (window - first) < r ? (window - first) : r;
            out[n++] = RingFragment{s, sinks + first, run1};
            if (run1 < r) out[n++] = RingFragment{s + run1, sinks, r - run1};
        }
        return n;
    }
};

} // namespace avs
