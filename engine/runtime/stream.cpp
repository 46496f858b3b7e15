#include "engine/runtime/stream.h"

#include "engine/core/log.h"
#include "engine/model/default_model.h"
#if defined(AVS_HAVE_FFTW3F)
#include "engine/audio/live_audio.h"
#endif
#include "engine/io/safetensors.h"
#include "engine/model/dit.h"
#include "engine/runtime/generator.h"

#include <algorithm>
#include <chrono>

namespace avs {

namespace {

constexpr double kFps = 16.0;                // the Wan family's frame rate
constexpr int    kPixelFramesPerLatent = 4;  // after the first latent of a stream
constexpr size_t kMaxQueued = 256;           // frames held for a consumer that stopped popping
constexpr size_t kHistory = 256;

Result<Tensor> load_context(const std::string & path) {
    AVS_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(path));
    const TensorInfo * info = f->find("context");
    if (!info) return make_error(ErrorCode::missing, "%s: no tensor named 'context' (expected [L, text_dim])", path.c_str());
    return read_tensor(*info, DType::f32);
}

Result<KvCacheConfig> cache_config(const StreamSettings & s, const Backend & be) {
    KvCacheConfig c;
    c.window = s.window, c.sinks = s.sinks, c.chunk_frames = s.chunk_frames, c.steps = s.steps;
    c.rope_mode = s.rope_mode == "absolute" ? RopeMode::absolute : RopeMode::window;
    if (s.kv_format == "auto") {
        c.format = be.act_dtype() == DType::bf16 ? KvFormat::bf16 : KvFormat::f32;
    } else {
        AVS_ASSIGN_OR_RETURN(c.format, kv_format_parse(s.kv_format));
    }
    c.offload = s.offload;
    return c;
}

} // namespace

Status StreamSettings::validate() const {
    auto one_of = [](const char * field, const std::string & v, std::initializer_list<const char *> ok) -> Status {
        std::string list;
        for (const char * o : ok) {
            if (v == o) return {};
            if (!list.empty()) list += ", ";
            list += o;
        }
        return make_error(ErrorCode::invalid_argument, "%s is '%s' (expected %s)", field, v.c_str(), list.c_str());
    };
    AVS_TRY(one_of("backend", backend, {"auto", "cpu", "cuda"}));
    AVS_TRY(one_of("decoder", decoder, {"tiny", "wan"}));
    AVS_TRY(one_of("rope_mode", rope_mode, {"window", "absolute"}));
    if (kv_format != "auto") AVS_TRY(kv_format_parse(kv_format).status().with_context("kv_format"));
    if (window < 1) return make_error(ErrorCode::invalid_argument, "window is %d (expected >= 1 latent frame)", window);
    if (sinks < 0) return make_error(ErrorCode::invalid_argument, "sinks is %d (expected >= 0)", sinks);
    if (steps < 1 || steps > 50) return make_error(ErrorCode::invalid_argument, "steps is %d (expected 1..50)", steps);
    if (chunk_frames < 1) return make_error(ErrorCode::invalid_argument, "chunk_frames is %d (expected >= 1)", chunk_frames);
    if (height < 0 || width < 0 || height % 16 || width % 16)
        return make_error(ErrorCode::invalid_argument, "frame size %dx%d (expected multiples of 16, or 0 for the model's)", width, height);
    if (shift < 0) return make_error(ErrorCode::invalid_argument, "shift is %g (expected > 0, or 0 for the model's)", shift);
    if (!(max_ahead_s > 0)) return make_error(ErrorCode::invalid_argument, "max_ahead_s is %g (expected > 0)", max_ahead_s);
    return {};
}

void Stream::set_cache_stats(const KvCache & c) {
    const KvMemory m = c.memory();
    stats_.kv_format = kv_format_name(c.config().format), stats_.kv_bytes = m.store_bytes, stats_.kv_device_bytes = m.device_bytes;
    stats_.offload = c.config().offload;
    stats_.kv_window = c.config().window, stats_.kv_sinks = c.config().sinks;
}

struct Stream::Model {
    StreamSettings           settings;  // what it was built from (same_model)
    std::unique_ptr<Backend> be;
    std::unique_ptr<Dit>     dit;
    std::string              context;   // the prompt embedding file applied
};

std::unique_ptr<Stream> Stream::start(const StreamSettings & s) {
    std::unique_ptr<Stream> st(new Stream());
    st->wanted_ = s;
#if defined(AVS_HAVE_FFTW3F)
    if (auto a = LiveAudio::create(32); a) st->audio_ = std::move(a).value();
#endif
    st->thread_ = std::thread([p = st.get()] { p->run(); });
    return st;
}

Stream::~Stream() { stop(); }

void Stream::stop() {
    {
        // under the lock: the engine thread may be between its wait's check and its sleep
        std::lock_guard<std::mutex> lock(m_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Stream::push_audio(const float * samples, int64_t n) {
#if defined(AVS_HAVE_FFTW3F)
    if (audio_ && !text_model_ && !drop_audio_) audio_->push(samples, n);
#else
    (void) samples, (void) n;
#endif
}

void Stream::apply(const StreamSettings & s) {
    {
        std::lock_guard<std::mutex> lock(m_);
        wanted_ = s;
        ++wanted_gen_;
    }
    cv_.notify_all();
}

StreamSettings Stream::settings() const {
    std::lock_guard<std::mutex> lock(m_);
    return wanted_;
}

bool Stream::pop_frame(DecodedFrame & out) {
    std::lock_guard<std::mutex> lock(m_);
    if (frames_.empty()) return false;
    out = std::move(frames_.front());
    frames_.pop_front();
    ++popped_;
    cv_.notify_all();  // the engine may be waiting for room
    return true;
}

StreamStats Stream::stats() const {
    std::lock_guard<std::mutex> lock(m_);
    return stats_;
}

void Stream::set_state(const std::string & state, const std::string & msg, double progress) {
    std::lock_guard<std::mutex> lock(m_);
    stats_.state = state, stats_.message = msg, stats_.load_progress = progress;
}

void Stream::run() {
    std::unique_ptr<Model> model;
    while (!stop_) {
        StreamSettings s;
        uint64_t       gen;
        {
            std::lock_guard<std::mutex> lock(m_);
            s = wanted_, gen = wanted_gen_;
        }
        const Status st = run_segment(s, model);
        if (stop_) break;
        if (!st.ok()) {
            AVS_LOG_ERROR("stream: %s", st.message().c_str());
            set_state("error", st.message(), 0);
#if defined(AVS_HAVE_FFTW3F)
            // nothing hears audio until new settings work: drop it rather than start the next video
            // with minutes of stale speech (and a buffer that grew all along)
            drop_audio_ = true;
            if (audio_) audio_->reset();
#endif
            // wait for new settings (or stop) before trying again
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return stop_ || wanted_gen_ != gen; });
        }
    }
}

// One segment: build everything for `s`, then generate until stopped or until new settings arrive.
// A segment starts a new video (fresh cache and decoder state); frame indices continue across segments.
Status Stream::run_segment(const StreamSettings & s, std::unique_ptr<Model> & model) {
    AVS_TRY(s.validate().with_context("stream settings"));
    if (!model || !model->settings.same_model(s)) {
        model.reset();  // free the old weights first: two 14B models do not fit
        auto m = std::make_unique<Model>();
        m->settings = s;
        set_state("loading", "creating the " + s.backend + " backend", 0.05);
        AVS_ASSIGN_OR_RETURN(m->be, make_backend(s.backend));
        if (s.model.empty() && s.config == "default") {
            AVS_ASSIGN_OR_RETURN(DefaultModel dm, default_model());
            set_state("loading", "loading the default avatar", 0.1);
            AVS_ASSIGN_OR_RETURN(m->dit, Dit::load(*m->be, dm.dit, nullptr));
        } else if (s.model.empty()) {
            set_state("loading", "random weights for " + s.config, 0.1);
            AVS_ASSIGN_OR_RETURN(ModelConfig mc, config_resolve(s.config));
            AVS_ASSIGN_OR_RETURN(m->dit, Dit::random_init(*m->be, mc, s.seed));
        } else {
            set_state("loading", "loading " + s.model, 0.1);
            AVS_ASSIGN_OR_RETURN(m->dit, Dit::load(*m->be, s.model, nullptr));
        }
        model = std::move(m);
        std::lock_guard<std::mutex> lock(m_);
        ++stats_.model_loads;
    }
    if (stop_) return {};
    Backend * be  = model->be.get();
    Dit *     dit = model->dit.get();
    if (dit->config().conditioning == Conditioning::text && model->context != s.context) {
        if (!s.context.empty()) {
            AVS_ASSIGN_OR_RETURN(Tensor ctx, load_context(s.context));
            AVS_TRY(dit->set_context(ctx));
        } else {
            // the zero context (all padding rows are zeros anyway)
            AVS_TRY(dit->set_context(Tensor::host(DType::f32, Shape{1, dit->config().text_dim})));
        }
        model->context = s.context;
    }
    const ModelConfig & mc = dit->config();
    // the default avatar's recommended settings (assets/config.json) fill in what is left at 0
    InferenceDefaults rec;
    std::string       vae = s.vae;
    const bool        default_avatar = s.model.empty() && s.config == "default";
    if (default_avatar) {
        AVS_ASSIGN_OR_RETURN(DefaultModel dm, default_model());
        AVS_ASSIGN_OR_RETURN(rec, inference_defaults(dm.config));
        if (vae.empty() && s.decoder == "tiny") vae = dm.decoder;
    }
    const bool small = mc.dim <= 256;
    const int  H = s.height ? s.height : rec.height.value_or(small ? 64 : 480), W = s.width ? s.width : rec.width.value_or(small ? 64 : 832);
    if (H % 16 || W % 16) return make_error(ErrorCode::invalid_argument, "frame size %dx%d: multiples of 16 expected", W, H);
    GenConfig g;
    g.chunk_frames = s.chunk_frames, g.steps = s.steps, g.shift = s.shift > 0 ? s.shift : rec.shift.value_or(5.0);
    g.height_latent = H / 8, g.width_latent = W / 8;
    AVS_ASSIGN_OR_RETURN(g.cache, cache_config(s, *be));
    AVS_ASSIGN_OR_RETURN(auto gen, Generator::create(*dit, g));

    set_state("loading", "loading the " + s.decoder + " decoder", 0.6);
    AVS_ASSIGN_OR_RETURN(auto dbe, make_backend(be->name()));
    const DecoderKind kind = s.decoder == "wan" ? DecoderKind::wan : DecoderKind::tiny;
    AVS_ASSIGN_OR_RETURN(auto dec, load_decoder(*dbe, kind, vae, vae.empty() ? s.seed + 1 : 0));
    const std::string dec_name = dec->name();
    DecodePipeline::Options po;
    po.max_ready = kMaxQueued;
    AVS_ASSIGN_OR_RETURN(auto pipe, DecodePipeline::create(*be, std::move(dbe), std::move(dec),
                                                           Shape{mc.out_channels, s.chunk_frames, g.height_latent, g.width_latent}, po));
    gen->set_latents_hook([&](const Tensor & lat) { return pipe->submit(lat); });
    {
        std::lock_guard<std::mutex> lock(m_);
        stats_.backend = be->name(), stats_.decoder = dec_name, stats_.model_name = mc.name;
        stats_.width = W, stats_.height = H;
        set_cache_stats(gen->cache());
    }
    set_state("loading", "warming up", 0.8);

    SeededNoise noise(s.seed);
    const Tensor none;
    const size_t max_ahead = size_t(std::max(1.0, s.max_ahead_s * kFps));
    uint64_t     gen_at_start;
    {
        std::lock_guard<std::mutex> lock(m_);
        gen_at_start = wanted_gen_;
        // frames a failed segment promised but never delivered (its pipeline was not flushed) must not
        // hold this one back: what is not yet popped is what is queued
        promised_ = popped_ + int64_t(frames_.size());
        stats_.cache_note.clear();
    }
    auto drain = [&] {
        DecodedFrame f;
        std::lock_guard<std::mutex> lock(m_);
        while (pipe->pop(f)) {
            f.index = next_index_++;
            f.pts   = double(f.index) / kFps;
            frames_.push_back(std::move(f));
            ++stats_.frames;
            if (frames_.size() > kMaxQueued) frames_.pop_front(), ++stats_.dropped, ++popped_;
        }
    };
    using clock = std::chrono::steady_clock;
    auto           last_end = clock::now();
    StreamSettings cur = s;
    double         traffic = 0;
    const bool restart = segments_++ > 0;
    text_model_ = mc.conditioning != Conditioning::audio;  // its audio is not kept
    // Settings that end this segment (not a live cache change) stop a wait for audio.
    auto leaving = [&] {
        std::lock_guard<std::mutex> lock(m_);
        return stop_ || (wanted_gen_ != gen_at_start && !wanted_.same_except_cache(cur));
    };
    drop_audio_ = false;
    if (mc.conditioning == Conditioning::audio) {
#if defined(AVS_HAVE_FFTW3F)
        if (!audio_) return make_error(ErrorCode::internal, "no audio front end for an audio-conditioned model");
        LogMelConfig lm;  // the model's own window and bands (the default avatar: 32 x 80)
        lm.n_mels = mc.audio_mels;
        AVS_TRY(audio_->configure(mc.audio_window, lm).with_context("audio front end"));
        // a restarted video's time 0 is now; the first one's is the stream's first sample
        if (restart) audio_->reset();
        // while it waits, finished frames keep flowing to the consumer
        gen->set_audio_source([&](int64_t f0, int n, const Tensor & w) {
            return audio_->fill(f0, n, w, [&] {
                drain();
                return leaving();
            });
        });
#else
        return make_error(ErrorCode::unsupported, "model '%s' is audio-conditioned: this build has no log-mel front end (FFTW)",
                          mc.name.c_str());
#endif
    }
    while (!stop_) {
        // Pace: at most max_ahead frames generated (decoded or still in the decode pipeline) and not
        // yet popped; wake for new settings or stop.
        {
            std::unique_lock<std::mutex> lock(m_);
            const auto room = [&] { return promised_ - popped_ < int64_t(max_ahead); };
            cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return stop_ || wanted_gen_ != gen_at_start || room(); });
            if (stop_) break;
            if (wanted_gen_ != gen_at_start) {
                if (!wanted_.same_except_cache(cur)) break;  // a new segment
                // a live cache change at this chunk boundary
                const StreamSettings w = wanted_;
                gen_at_start = wanted_gen_;
                lock.unlock();
                AVS_ASSIGN_OR_RETURN(KvCacheConfig kc, cache_config(w, *be));
                AVS_TRY(gen->reconfigure_cache(kc));
                cur = w;
                lock.lock();
                ++stats_.cache_switches;
                set_cache_stats(gen->cache());
                const int kept = gen->cache().config().sinks;
                stats_.cache_note = kept < kc.sinks ? "sinks: " + std::to_string(kc.sinks) + " asked, " + std::to_string(kept) +
                                                          " kept (sinks are the first frames; frame " + std::to_string(kept) +
                                                          " was evicted before the change)"
                                                    : std::string();
                const KvMemory km = gen->cache().memory();
                traffic = km.h2d_bytes + km.d2h_bytes;
            }
            if (!room()) {
                lock.unlock();
                drain();
                continue;
            }
        }
        // a stream's first latent gives 1 frame, every later one 4; promised once generated (a chunk
        // that fails or is interrupted gives nothing)
        const int64_t promise = int64_t(cur.chunk_frames) * kPixelFramesPerLatent - (gen->chunks_done() == 0 ? kPixelFramesPerLatent - 1 : 0);
        ChunkStats    cs;
        if (const Status cst = gen->next_chunk(noise, none, &cs, true); !cst.ok()) {
            if (leaving()) break;  // interrupted while waiting for audio: new settings or stop
            return cst;
        }
        {
            std::lock_guard<std::mutex> lock(m_);
            promised_ += promise;
        }
        drain();
        const auto   now  = clock::now();
        const double wall = std::chrono::duration<double>(now - last_end).count();
        last_end          = now;
        const DecodeStats ds = pipe->stats();
        std::lock_guard<std::mutex> lock(m_);
        ++stats_.chunks;
        stats_.state = "running", stats_.message = "", stats_.load_progress = 1.0;
        stats_.chunk_ms = cs.total_ms;
        stats_.decode_ms = ds.chunk_ms.empty() ? 0.0 : ds.chunk_ms.back();
        stats_.chunk_ms_history.push_back(cs.total_ms);
        if (stats_.chunk_ms_history.size() > kHistory) stats_.chunk_ms_history.erase(stats_.chunk_ms_history.begin());
        const double frames_per_chunk = double(s.chunk_frames * kPixelFramesPerLatent);
        const double inst = wall > 0 ? frames_per_chunk / wall : 0.0;
        stats_.fps = stats_.chunks == 1 ? inst : 0.8 * stats_.fps + 0.2 * inst;
        stats_.realtime_factor = stats_.fps / kFps;
        // audio for a chunk must exist before it is generated: its duration, then generation and decode
        stats_.latency_s = frames_per_chunk / kFps + (cs.total_ms + stats_.decode_ms) * 1e-3;
        stats_.vram_bytes = be->bytes_in_use();
        const KvMemory km = gen->cache().memory();
        const double   moved = km.h2d_bytes + km.d2h_bytes;
        stats_.offload_gbps = wall > 0 ? (moved - traffic) / wall * 1e-9 : 0.0;
        traffic = moved;
    }
    if (!stop_) AVS_TRY(pipe->flush());  // finish the segment's frames before rebuilding
    drain();
    return {};
}

} // namespace avs
