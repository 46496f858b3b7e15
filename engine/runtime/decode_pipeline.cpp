#include "engine/runtime/decode_pipeline.h"

#include "engine/core/log.h"

#include <algorithm>

namespace avs {

// Host frame buffers from the decode backend's alloc_host (pinned on CUDA), handed out as tensors
// whose release returns the buffer here instead of freeing it: cudaFreeHost would stall the
// consumer thread, cudaMallocHost the worker.
struct DecodePipeline::PinnedPool : std::enable_shared_from_this<PinnedPool> {
    std::mutex          m;
    std::vector<Tensor> owned;  // every buffer ever made (all the same size)
    std::vector<size_t> free_list;

    Result<Tensor> get(Backend & be, const Shape & shape) {
        size_t idx;
        {
            std::lock_guard<std::mutex> lock(m);
            if (!owned.empty() && owned[0].shape() != shape) {  // the resolution changed: start over
                owned.clear();
                free_list.clear();
            }
            if (!free_list.empty()) {
                idx = free_list.back();
                free_list.pop_back();
                return wrap(idx);
            }
        }
        AVS_ASSIGN_OR_RETURN(Tensor t, be.alloc_host(DType::u8, shape));
        std::lock_guard<std::mutex> lock(m);
        owned.push_back(t);
        idx = owned.size() - 1;
        return wrap(idx);
    }

private:
    Result<Tensor> wrap(size_t idx);
};

Result<Tensor> DecodePipeline::PinnedPool::wrap(size_t idx) {
    const Tensor & t = owned[idx];
    // The handle keeps the storage alive (the pool may be reset) and gives the slot back on release.
    std::shared_ptr<Buffer>     storage = t.buffer();
    std::shared_ptr<PinnedPool> self    = shared_from_this();  // frames may outlive the pipeline
    auto buf = std::make_shared<Buffer>(t.raw(), t.nbytes(), Device::cpu, [storage, self, idx](void *) {
        std::lock_guard<std::mutex> lock(self->m);
        if (idx < self->owned.size() && self->owned[idx].buffer() == storage) self->free_list.push_back(idx);
    });
    return Tensor(std::move(buf), 0, DType::u8, t.shape());
}

Result<std::unique_ptr<DecodePipeline>> DecodePipeline::create(Backend & dit, std::unique_ptr<Backend> dec_backend,
                                                               std::unique_ptr<VideoDecoder> decoder, const Shape & latent_shape,
                                                               const Options & opt) {
    if (!dec_backend || !decoder) return make_error(ErrorCode::invalid_argument, "decode pipeline: no backend or decoder");
    if (opt.max_in_flight < 1 || opt.max_ready < 1 || !(opt.fps > 0))
        return make_error(ErrorCode::invalid_argument, "decode pipeline: max_in_flight %d, max_ready %zu, fps %g must be positive",
                          opt.max_in_flight, opt.max_ready, opt.fps);
    if (latent_shape.ndim != 4)
        return make_error(ErrorCode::shape, "decode pipeline: latents %s, expected [C, F, h, w]", latent_shape.str().c_str());
    std::unique_ptr<DecodePipeline> p(new DecodePipeline(dit, std::move(dec_backend), std::move(decoder), opt));
    for (int i = 0; i < opt.max_in_flight; ++i) {
        AVS_ASSIGN_OR_RETURN(Tensor slot, p->be_->alloc(DType::f32, latent_shape));
        p->slots_.push_back(slot);
    }
    p->slot_busy_.assign(size_t(opt.max_in_flight), false);
    p->pinned_ = std::make_shared<PinnedPool>();
    AVS_ASSIGN_OR_RETURN(p->origin_, dit.record_event());
    p->thread_ = std::thread([raw = p.get()] { raw->worker(); });
    return p;
}

DecodePipeline::~DecodePipeline() {
    {
        std::lock_guard<std::mutex> lock(m_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

Status DecodePipeline::submit(const Tensor & latents) {
    int slot = -1;
    {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return !error_.ok() || std::find(slot_busy_.begin(), slot_busy_.end(), false) != slot_busy_.end(); });
        if (!error_.ok()) return error_;
        slot = int(std::find(slot_busy_.begin(), slot_busy_.end(), false) - slot_busy_.begin());
        slot_busy_[size_t(slot)] = true;
    }
    // On the DiT's stream, in order after the latents were written; the decode stream waits for it.
    Job job;
    job.slot = slot;
    Status st = dit_.copy(slots_[size_t(slot)], latents);
    if (st.ok()) {
        if (auto ev = dit_.record_event(); ev) job.ready = std::move(ev).value();
        else st = ev.status();
    }
    if (!st.ok()) {  // the slot goes back, or max_in_flight such failures would block submit for good
        std::lock_guard<std::mutex> lock(m_);
        slot_busy_[size_t(slot)] = false;
        return st;
    }
    {
        std::lock_guard<std::mutex> lock(m_);
        job.chunk = submitted_++;
        jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
    return {};
}

bool DecodePipeline::pop(DecodedFrame & out) {
    std::lock_guard<std::mutex> lock(m_);
    if (ready_.empty()) return false;
    out = std::move(ready_.front());
    ready_.pop_front();
    return true;
}

Status DecodePipeline::flush() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return !error_.ok() || finished_ == submitted_; });
    return error_;
}

Status DecodePipeline::add_dit_span(const std::string & name, const BackendEvent & begin, const BackendEvent & end) {
    AVS_TRY(dit_.sync_event(end));
    AVS_ASSIGN_OR_RETURN(double t0, dit_.elapsed_ms(*origin_, begin));
    AVS_ASSIGN_OR_RETURN(double t1, dit_.elapsed_ms(*origin_, end));
    std::lock_guard<std::mutex> lock(m_);
    spans_.push_back({"dit", name, t0, t1 - t0});
    return {};
}

std::vector<StreamSpan> DecodePipeline::spans() {
    std::lock_guard<std::mutex> lock(m_);
    return spans_;
}

DecodeStats DecodePipeline::stats() {
    std::lock_guard<std::mutex> lock(m_);
    return stats_;
}

void DecodePipeline::worker() {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stop_ with nothing left
            job = jobs_.front();
            jobs_.pop_front();
        }
        Status s = error_.ok() ? decode_job(job) : Status{};
        {
            std::lock_guard<std::mutex> lock(m_);
            if (!s.ok() && error_.ok()) {
                error_ = s.with_context("decode of chunk " + std::to_string(job.chunk));
                AVS_LOG_ERROR("%s", error_.message().c_str());
            }
            slot_busy_[size_t(job.slot)] = false;
            ++finished_;
        }
        cv_.notify_all();
    }
}

Status DecodePipeline::decode_job(const Job & job) {
    Backend & be = *be_;
    AVS_TRY(be.wait_event(*job.ready));
    AVS_ASSIGN_OR_RETURN(auto begin, be.record_event());
    const Tensor & lat = slots_[size_t(job.slot)];
    std::vector<DecodedFrame> done;
    std::vector<Tensor>       frames;
    Tensor                    rgba_dev;
    for (int64_t f = 0; f < lat.dim(1); ++f) {
        frames.clear();
        AVS_TRY(decoder_->push(lat, f, frames));
        // Convert each frame before the next push (the decoder reuses its output buffers); the
        // device RGBA buffer is reused in stream order, the host buffers come from the pool.
        for (const Tensor & fr : frames) {
            const Shape shape{fr.dim(0), fr.dim(1), 4};
            if (!rgba_dev.defined() || rgba_dev.shape() != shape) {
                AVS_ASSIGN_OR_RETURN(rgba_dev, be.alloc(DType::u8, shape));
            }
            AVS_TRY(be.to_rgba8(rgba_dev, fr, decoder_->out_scale(), decoder_->out_offset()));
            DecodedFrame d;
            AVS_ASSIGN_OR_RETURN(d.rgba, pinned_->get(be, shape));
            AVS_TRY(be.copy_to_host_async(d.rgba, rgba_dev));
            done.push_back(std::move(d));
        }
    }
    AVS_ASSIGN_OR_RETURN(auto end, be.record_event());
    AVS_TRY(be.sync_event(*end));
    AVS_ASSIGN_OR_RETURN(double t0, be.elapsed_ms(*origin_, *begin));
    AVS_ASSIGN_OR_RETURN(double t1, be.elapsed_ms(*origin_, *end));
    std::lock_guard<std::mutex> lock(m_);
    for (DecodedFrame & d : done) {
        d.index = next_frame_++;
        d.pts   = double(d.index) / opt_.fps;
        ready_.push_back(std::move(d));
        if (ready_.size() > opt_.max_ready) {  // a live consumer wants the newest frames
            ready_.pop_front();
            ++stats_.dropped;
        }
    }
    ++stats_.chunks;
    stats_.frames += int64_t(done.size());
    stats_.chunk_ms.push_back(t1 - t0);
    spans_.push_back({"decode", "decode chunk " + std::to_string(job.chunk), t0, t1 - t0});
    return {};
}

} // namespace avs
