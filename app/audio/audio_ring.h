// AudioRing: a lock-free single-producer / single-consumer ring of float samples.
//
// The producer may be a real-time audio callback, so push() never locks, allocates or waits: what
// does not fit is dropped and counted as an overrun (dropping the newest samples keeps the ring
// strictly SPSC: the producer never touches the read index). Positions are absolute 64-bit sample
// counters, so a consumer knows the stream index of every sample it reads. Samples dropped on
// overrun get no index: the index counts samples that entered the ring, and overruns() says how
// many did not.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace avs {

class AudioRing {
public:
    // Capacity is rounded up to a power of two (at least 2) so positions wrap with a mask.
    explicit AudioRing(size_t min_capacity) {
        size_t cap = 2;
        while (cap < min_capacity) cap <<= 1;
        mask_ = cap - 1;
        buf_  = std::make_unique<float[]>(cap);
    }
    AudioRing(const AudioRing &) = delete;
    AudioRing & operator=(const AudioRing &) = delete;

    size_t capacity() const { return mask_ + 1; }

    // ---- producer side ----------------------------------------------------------------------
    // Free space as the producer sees it (the consumer may free more meanwhile, never less).
    size_t write_available() const {
        const uint64_t w = write_.load(std::memory_order_relaxed);
        const uint64_t r = read_.load(std::memory_order_acquire);
        return capacity() - size_t(w - r);
    }

    // Stores as many of n samples as fit, in whole multiples of `granule` (the channel count for
    // interleaved frames, so a frame is never split); the rest is dropped and counted as overrun.
    // Returns the number stored. Wait-free: two atomic loads, a memcpy, one release store.
    size_t push(const float * src, size_t n, size_t granule = 1) {
        const uint64_t w    = write_.load(std::memory_order_relaxed);
        const uint64_t r    = read_.load(std::memory_order_acquire);
        const size_t   room = capacity() - size_t(w - r);
        size_t k = std::min(n, room);
        if (granule > 1) k -= k % granule;
        if (k > 0) {
            const size_t at    = size_t(w) & mask_;
            const size_t first = std::min(k, capacity() - at);
            std::memcpy(buf_.get() + at, src, first * sizeof(float));
            if (k > first) std::memcpy(buf_.get(), src + first, (k - first) * sizeof(float));
            write_.store(w + k, std::memory_order_release);
        }
        if (k < n) {
            // Only the producer writes this counter; a relaxed load+store avoids a locked RMW.
            overruns_.store(overruns_.load(std::memory_order_relaxed) + (n - k), std::memory_order_relaxed);
        }
        return k;
    }

    // ---- consumer side ----------------------------------------------------------------------
    size_t available() const {
        const uint64_t r = read_.load(std::memory_order_relaxed);
        const uint64_t w = write_.load(std::memory_order_acquire);
        return size_t(w - r);
    }

    // Copies up to max samples into dst; returns the count.
    size_t read(float * dst, size_t max) {
        uint64_t first = 0;
        return read(dst, max, first);
    }

    // As read(), and sets first_index to the absolute stream index of dst[0].
    size_t read(float * dst, size_t max, uint64_t & first_index) {
        const uint64_t r = read_.load(std::memory_order_relaxed);
        const uint64_t w = write_.load(std::memory_order_acquire);
        const size_t   k = std::min(max, size_t(w - r));
        first_index = r;
        if (k > 0) {
            const size_t at    = size_t(r) & mask_;
            const size_t first = std::min(k, capacity() - at);
            std::memcpy(dst, buf_.get() + at, first * sizeof(float));
            if (k > first) std::memcpy(dst + first, buf_.get(), (k - first) * sizeof(float));
            read_.store(r + k, std::memory_order_release);
        }
        return k;
    }

    // Discards up to n samples (a consumer catching up to live); returns the count.
    size_t skip(size_t n) {
        const uint64_t r = read_.load(std::memory_order_relaxed);
        const uint64_t w = write_.load(std::memory_order_acquire);
        const size_t   k = std::min(n, size_t(w - r));
        read_.store(r + k, std::memory_order_release);
        return k;
    }

    // ---- any thread (approximate while the other side runs) ---------------------------------
    uint64_t read_index() const { return read_.load(std::memory_order_acquire); }   // next sample to read
    uint64_t write_index() const { return write_.load(std::memory_order_acquire); } // samples stored so far
    uint64_t overruns() const { return overruns_.load(std::memory_order_relaxed); } // samples dropped

private:
    // Separate cache lines: the producer writes write_/overruns_, the consumer writes read_.
    alignas(64) std::atomic<uint64_t> write_{0};
    alignas(64) std::atomic<uint64_t> overruns_{0};
    alignas(64) std::atomic<uint64_t> read_{0};
    alignas(64) size_t mask_ = 0;
    std::unique_ptr<float[]> buf_;
};

} // namespace avs
