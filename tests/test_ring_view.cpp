#include <catch2/catch.hpp>

#include "engine/cache/ring_view.h"
#include "kernels/swizzle.h"

#include <set>
#include <vector>

using namespace avs;

namespace {

// The visible frames by definition: sinks, then the last `window` frames, in increasing order.
std::vector<int64_t> visible_by_definition(int sinks, int window, int64_t end) {
    std::vector<int64_t> v;
    for (int64_t f = 0; f < end; ++f)
        if (f < sinks || f >= end - window) v.push_back(f);
    return v;
}

} // namespace

TEST_CASE("ring view: logical order equals the definition for every sink/window/end", "[ring]") {
    for (int sinks = 0; sinks <= 4; ++sinks) {
        for (int window = 1; window <= 7; ++window) {
            for (int64_t end = 1; end <= 40; ++end) {
                RingView r{sinks, window, 5, end, RopeMode::absolute};
                auto     want = visible_by_definition(sinks, window, end);
                REQUIRE(r.visible_frames() == int32_t(want.size()));
                REQUIRE(r.visible_tokens() == int64_t(want.size()) * 5);
                std::set<int32_t> slots;
                for (int32_t l = 0; l < r.visible_frames(); ++l) {
                    REQUIRE(r.frame_of_logical(l) == want[size_t(l)]);
                    REQUIRE(r.logical_of_frame(want[size_t(l)]) == l);
                    const int32_t s = r.slot_of_logical(l);
                    REQUIRE(s >= 0);
                    REQUIRE(s < r.capacity());
                    slots.insert(s);
                }
                REQUIRE(slots.size() == want.size());  // visible frames never share a slot
            }
        }
    }
}

TEST_CASE("ring view: fragments cover the visible range in order, wrapping at most once", "[ring]") {
    for (int sinks = 0; sinks <= 3; ++sinks) {
        for (int window = 1; window <= 6; ++window) {
            for (int64_t end = 1; end <= 30; ++end) {
                RingView     r{sinks, window, 1, end, RopeMode::window};
                RingFragment fr[3];
                const int    n = r.fragments(fr);
                REQUIRE(n <= 3);
                int32_t next = 0;
                for (int i = 0; i < n; ++i) {
                    REQUIRE(fr[i].frames > 0);
                    REQUIRE(fr[i].logical_begin == next);
                    for (int32_t k = 0; k < fr[i].frames; ++k) REQUIRE(r.slot_of_logical(next + k) == fr[i].slot_begin + k);
                    next += fr[i].frames;
                }
                REQUIRE(next == r.visible_frames());
            }
        }
    }
}

TEST_CASE("ring view: a new chunk overwrites exactly the evicted frames' slots", "[ring]") {
    const int sinks = 2, window = 6, chunk = 3;
    for (int64_t f0 = 0; f0 < 60; f0 += chunk) {
        RingView now{sinks, window, 1, f0 + chunk, RopeMode::absolute};
        RingView before{sinks, window, 1, f0, RopeMode::absolute};
        std::set<int32_t> written;
        for (int64_t f = f0; f < f0 + chunk; ++f) written.insert(now.slot_of_frame(f));
        // every frame still visible after the write keeps its slot untouched (unless it is the chunk itself)
        for (int32_t l = 0; l < now.visible_frames(); ++l) {
            const int64_t f = now.frame_of_logical(l);
            if (f < f0) REQUIRE(written.count(now.slot_of_frame(f)) == 0);
        }
        // and every slot written held a frame that is no longer visible
        for (int32_t l = 0; l < before.visible_frames(); ++l) {
            const int64_t f = before.frame_of_logical(l);
            if (written.count(before.slot_of_frame(f))) REQUIRE(f < f0 + chunk - window);
        }
    }
}

TEST_CASE("ring view: RoPE positions are absolute or window-relative", "[ring]") {
    RingView a{2, 6, 1, 30, RopeMode::absolute};
    RingView w{2, 6, 1, 30, RopeMode::window};
    // visible: 0, 1, then 24..29
    REQUIRE(a.visible_frames() == 8);
    REQUIRE(a.rope_pos_of_logical(0) == 0);
    REQUIRE(a.rope_pos_of_logical(2) == 24);
    REQUIRE(a.rope_pos_of_frame(29) == 29);
    REQUIRE(w.rope_pos_of_logical(2) == 2);
    REQUIRE(w.rope_pos_of_frame(29) == 7);
    REQUIRE(w.rope_pos_of_frame(1) == 1);
    // Positions in window mode stay bounded however long the stream runs.
    RingView far{2, 6, 1, 1000000007, RopeMode::window};
    REQUIRE(far.rope_pos_of_frame(1000000006) == 7);
}

TEST_CASE("the attention kernel's swizzled tile layout is a bijection with conflict-free 128-byte rows", "[kernels]") {
    for (const int d : {64, 128}) {
        const int rows = 64, chunks = d / 8;
        std::set<int> seen;
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < chunks; ++c) {
                const int off = kernels::wg::swz_off(rows, r, c);
                INFO("d " << d << " row " << r << " chunk " << c << " -> " << off);
                REQUIRE(off % 8 == 0);  // 16-byte aligned chunks
                REQUIRE(off >= 0);
                REQUIRE(off + 8 <= rows * d);
                // a chunk stays in its row's 128-byte line of its 64-column panel
                REQUIRE(off / 64 == (c / 8) * rows + r);
                seen.insert(off);
            }
        REQUIRE(int(seen.size()) == rows * chunks);
        // eight consecutive rows reading the same chunk land in eight different 16-byte bank groups
        for (int r0 = 0; r0 < rows; r0 += 8)
            for (int c = 0; c < chunks; ++c) {
                std::set<int> groups;
                for (int r = r0; r < r0 + 8; ++r) groups.insert((kernels::wg::swz_off(rows, r, c) / 8) % 8);
                REQUIRE(groups.size() == 8);
            }
    }
}
