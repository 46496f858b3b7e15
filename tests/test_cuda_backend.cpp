// The CUDA backend against the CPU twin: ring attention (wrap-around, sinks, both RoPE modes, every
// KV format, a bf16 tail), the quantizing kv_write, KV offload, block-causal attention, a whole tiny-config rollout, and a 1.3B real-dims forward.
#include <catch2/catch.hpp>

#include "attention_q8_model.h"
#include "dit_fixture.h"
#include "cuda_test_util.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/cache/kv_format.h"
#include "engine/runtime/generator.h"
#include "engine/model/default_model.h"
#include "kernels/attention_mma.cuh"

#include <chrono>
#include <cstdlib>
#include <tuple>

using namespace avs;
using avs::test::cuda_backend;
using avs::test::to_device;
using avs::test::to_host;

namespace {

using kernels::AttnKernel;
// Every tensor-core attention kernel (on Hopper: automatic = the 8-bit MMA one for fp8 / int8 stores at
// head_dim 128, else warp-specialized; pinned: warp-specialized (dequantizing), the 8-bit one, wgmma,
// mma.sync; elsewhere the pins fall back to mma.sync); the previous choice is restored afterwards.
constexpr AttnKernel kAttnKernels[] = {AttnKernel::automatic, AttnKernel::warp_specialized, AttnKernel::mma8, AttnKernel::wgmma, AttnKernel::mma_sync};
const char * attn_kernel_name(AttnKernel k) {
    return k == AttnKernel::automatic ? "automatic" : k == AttnKernel::wgmma ? "wgmma" : k == AttnKernel::mma_sync ? "mma_sync"
         : k == AttnKernel::mma8      ? "ws8"
                                      : "ws";
}
struct PinAttnKernel {
    AttnKernel prev = kernels::attention_kernel();
    explicit PinAttnKernel(AttnKernel k) { kernels::attention_set_kernel(k); }
    ~PinAttnKernel() { kernels::attention_set_kernel(prev); }
};

} // namespace

TEST_CASE("linear (cuBLAS GEMM with the bias pre-filled) matches the CPU twin in f32 and bf16", "[cuda][linear]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    for (auto [M, N, K] : {std::tuple{1, 7, 5}, std::tuple{37, 130, 64}, std::tuple{300, 1536, 1536}}) {
        Tensor x = test::randn(Shape{M, K}, 51), w = test::randn(Shape{N, K}, 52, 0.05f), b = test::randn(Shape{N}, 53);
        for (DType dt : {DType::f32, DType::bf16}) {
            // the twin sees the same rounded inputs
            Tensor xr = Tensor::host(dt, x.shape()), wr = Tensor::host(dt, w.shape());
            REQUIRE(cpu.upload(xr, x).ok());
            REQUIRE(cpu.upload(wr, w).ok());
            Tensor xf = Tensor::host(DType::f32, x.shape()), wf = Tensor::host(DType::f32, w.shape());
            REQUIRE(cpu.download(xf, xr).ok());
            REQUIRE(cpu.download(wf, wr).ok());
            Tensor want = Tensor::host(DType::f32, Shape{M, N});
            REQUIRE(cpu.linear(want, xf, wf, &b).ok());
            for (DType out : {DType::f32, dt}) {
                Tensor yd = gpu->alloc(out, Shape{M, N}).value();
                Tensor bd = to_device(*gpu, b, DType::f32);
                REQUIRE(gpu->linear(yd, to_device(*gpu, x, dt), to_device(*gpu, w, dt), &bd).ok());
                const double e = test::rel_err(to_host(*gpu, yd), want);
                INFO("M " << M << " N " << N << " K " << K << " in " << dtype_name(dt) << " out " << dtype_name(out) << " rel err " << e);
                REQUIRE(e < (out == DType::bf16 ? 1e-2 : 1e-5));
            }
        }
    }
}

TEST_CASE("ring attention kernel matches the CPU twin for every KV format on wrapped rings with sinks and a bf16 tail",
          "[cuda][attention]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    const int  H = 3, gh = 5, gw = 20, tpf = gh * gw, chunk = 3;  // 100 tokens: one full and one partial 64-key tile
    // bf16 and quantized stores take the tensor-core path, which splits these small grids over the frames (split-KV)
    // AVS_SANITIZE (compute-sanitizer runs in scripts/gpu-check.sh): one geometry, D 64 (racecheck is slow)
    const bool quick = std::getenv("AVS_SANITIZE") != nullptr;
    for (int D : {64, 128})
    for (KvFormat fmt : kv_formats()) {
        if (quick && D != 64 && fmt != KvFormat::int8) continue;  // D 128 int8: the 8-bit MMA kernel on Hopper
        const RopeLayout rope = make_rope_layout(D, gh, gw);
        const KvLayout   L = KvLayout::make(fmt, tpf, H, D);
        for (RopeMode mode : {RopeMode::absolute, RopeMode::window}) {
            for (auto [sinks, window] : {std::pair{0, 3}, std::pair{1, 7}, std::pair{2, 5}}) {
                if (quick && (mode == RopeMode::absolute || sinks != 1)) continue;
                const int64_t end = 6 * chunk + 1000 * chunk * (mode == RopeMode::absolute);  // absolute: positions > 1024
                RingView view{sinks, window, tpf, end, mode};
                const int64_t slots = sinks + window;
                // the store, encoded by the CPU twin (the CUDA kv_write is checked against it separately)
                Tensor store = Tensor::host(DType::u8, Shape{slots, L.slot_bytes});
                for (int32_t l = 0; l < view.visible_frames() - chunk; ++l) {
                    Tensor k = test::randn(Shape{tpf, H, D}, 100 + uint64_t(l)), v = test::randn(Shape{tpf, H, D}, 200 + uint64_t(l));
                    for (int64_t i = 0; i < k.numel(); ++i) k.data<float>()[i] += (i % D == 5 ? 6.0f : 0.3f * float(i % 7));  // channel offsets
                    REQUIRE(cpu.kv_write(store, L, view, view.frame_of_logical(l), k, v).ok());
                }
                Tensor tk = Tensor::host(DType::f32, Shape{chunk * tpf, H, D}), tv = Tensor::host(DType::f32, tk.shape());
                REQUIRE(cpu.upload(tk, to_host(*gpu, to_device(*gpu, test::randn(tk.shape(), 14), DType::bf16))).ok());
                REQUIRE(cpu.upload(tv, to_host(*gpu, to_device(*gpu, test::randn(tv.shape(), 15), DType::bf16))).ok());
                Tensor q    = test::randn(Shape{chunk * tpf, H, D}, 13);
                Tensor want = Tensor::host(DType::f32, q.shape());
                REQUIRE(cpu.attention_ring(want, q, store, L, view, tk, tv, rope, 0.125f).ok());

                Tensor sd = gpu->alloc(DType::u8, store.shape()).value();
                REQUIRE(gpu->copy_from_host_async(sd, store).ok());
                Tensor qd = to_device(*gpu, q, DType::bf16), tkd = to_device(*gpu, tk, DType::bf16), tvd = to_device(*gpu, tv, DType::bf16);
                for (AttnKernel kc : kAttnKernels) {
                    PinAttnKernel pin(kc);
                    Tensor        od = gpu->alloc(DType::bf16, q.shape()).value();
                    REQUIRE(gpu->attention_ring(od, qd, sd, L, view, tkd, tvd, rope, 0.125f).ok());
                    const double e = test::rel_err(to_host(*gpu, od), want);
                    INFO("D " << D << " format " << kv_format_name(fmt) << " mode " << rope_mode_name(mode) << " sinks " << sinks
                              << " window " << window << " kernel " << attn_kernel_name(kc) << " rel err " << e);
                    // bf16 queries and output (the dequantized tiles are exact in bf16 except KIVI's affine); the 8-bit
                    // kernel (fp8 / int8, D 128 on Hopper) also rounds Q (int8 / e4m3 per row), P and the values (f16)
                    const bool mma8 = (kc == AttnKernel::mma8 || kc == AttnKernel::automatic) && D == 128 && (fmt == KvFormat::fp8 || fmt == KvFormat::int8);
                    if (mma8) WARN("8-bit MMA kernel, D 128, " << kv_format_name(fmt) << " " << rope_mode_name(mode) << " sinks " << sinks << " rel err " << e);
                    REQUIRE(e < (mma8 ? 6e-2 : 2e-2));
                }
            }
        }
    }
}

TEST_CASE("kv_write on CUDA encodes every format exactly as the CPU twin, kv_read decodes it", "[cuda][kv]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    struct Case {
        int32_t sinks, window, tpf, heads, head_dim, chunk, chunks;
    };
    // wrapping rings; 390 tokens: a partial 64-token block and a partial 32-token KIVI group
    for (const Case & c : {Case{1, 5, 40, 3, 64, 3, 5}, Case{0, 7, 390, 12, 128, 2, 5}})
        for (KvFormat fmt : kv_formats())
            for (DType kt : {DType::f32, DType::bf16}) {
                const KvLayout L = KvLayout::make(fmt, c.tpf, c.heads, c.head_dim);
                const RingView ring{c.sinks, c.window, c.tpf, 0, RopeMode::absolute};
                Tensor         cs = Tensor::host(DType::u8, Shape{ring.capacity(), L.slot_bytes});
                Tensor         gs = gpu->alloc(DType::u8, cs.shape()).value();
                REQUIRE(gpu->copy_from_host_async(gs, cs).ok());
                for (int32_t ch = 0; ch < c.chunks; ++ch) {
                    const int64_t frame0 = int64_t(ch) * c.chunk;
                    const Shape   kv{int64_t(c.chunk) * c.tpf, c.heads, c.head_dim};
                    Tensor k = to_host(*gpu, to_device(*gpu, test::randn(kv, 300 + uint64_t(ch)), kt));  // the values the GPU sees
                    Tensor v = to_host(*gpu, to_device(*gpu, test::randn(kv, 400 + uint64_t(ch), 0.5f), kt));
                    for (int64_t i = 0; i < k.numel(); ++i) k.data<float>()[i] += (i % c.head_dim == 3 ? 8.0f : 0.0f);
                    k = to_host(*gpu, to_device(*gpu, k, kt));
                    REQUIRE(cpu.kv_write(cs, L, ring, frame0, k, v).ok());
                    REQUIRE(gpu->kv_write(gs, L, ring, frame0, to_device(*gpu, k, kt), to_device(*gpu, v, kt)).ok());
                }
                Tensor back = Tensor::host(DType::u8, cs.shape());
                REQUIRE(gpu->copy_to_host_async(back, gs).ok());
                REQUIRE(gpu->synchronize().ok());
                const Shape fs{c.tpf, c.heads, c.head_dim};
                for (int64_t slot = 0; slot < ring.capacity(); ++slot) {
                    Tensor ck = Tensor::host(DType::f32, fs), cv = Tensor::host(DType::f32, fs);
                    Tensor gk = Tensor::host(DType::f32, fs), gv = Tensor::host(DType::f32, fs);
                    REQUIRE(cpu.kv_read(ck, cv, cs, L, slot).ok());
                    REQUIRE(cpu.kv_read(gk, gv, back, L, slot).ok());
                    INFO(kv_format_name(fmt) << " from " << dtype_name(kt) << " tpf " << c.tpf << " slot " << slot);
                    REQUIRE(test::bit_equal(gk, ck));  // same codes and scales
                    REQUIRE(test::bit_equal(gv, cv));
                    // the CUDA read-back kernel decodes like the CPU twin (up to fused multiply-adds)
                    Tensor rk = gpu->alloc(DType::f32, fs).value(), rv = gpu->alloc(DType::f32, fs).value();
                    REQUIRE(gpu->kv_read(rk, rv, gs, L, slot).ok());
                    REQUIRE(test::rel_err(to_host(*gpu, rk), ck) <= 1e-6);
                    REQUIRE(test::rel_err(to_host(*gpu, rv), cv) <= 1e-6);
                }
            }
}

TEST_CASE("plain and block-causal attention kernels match the CPU twin (f32 CUDA-core and bf16 tensor-core paths)",
          "[cuda][attention]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    for (int64_t D : {int64_t(64), int64_t(128)}) {
        const int64_t L = 157, H = 2;  // odd length: partial query and key tiles
        Tensor q = test::randn(Shape{L, H, D}, 21), k = test::randn(Shape{L, H, D}, 22), v = test::randn(Shape{L, H, D}, 23);
        for (DType dt : {DType::f32, DType::bf16}) {
            // the CPU twin sees the same bf16-rounded inputs
            Tensor qc = Tensor::host(dt, q.shape()), kc = Tensor::host(dt, k.shape()), vc = Tensor::host(dt, v.shape());
            REQUIRE(cpu.upload(qc, q).ok());
            REQUIRE(cpu.upload(kc, k).ok());
            REQUIRE(cpu.upload(vc, v).ok());
            Tensor qf = Tensor::host(DType::f32, q.shape()), kf = Tensor::host(DType::f32, k.shape()), vf = Tensor::host(DType::f32, v.shape());
            REQUIRE(cpu.download(qf, qc).ok());
            REQUIRE(cpu.download(kf, kc).ok());
            REQUIRE(cpu.download(vf, vc).ok());
            for (int64_t blk : {int64_t(0), int64_t(16), int64_t(50)}) {
                Tensor want = Tensor::host(DType::f32, q.shape());
                REQUIRE(cpu.attention(want, qf, kf, vf, 0.09f, blk, blk).ok());
                for (AttnKernel kc : kAttnKernels) {
                    PinAttnKernel pin(kc);
                    Tensor        od = gpu->alloc(dt, q.shape()).value();
                    REQUIRE(gpu->attention(od, to_device(*gpu, q, dt), to_device(*gpu, k, dt), to_device(*gpu, v, dt), 0.09f, blk, blk).ok());
                    const double e = test::rel_err(to_host(*gpu, od), want);
                    INFO("D " << D << " dtype " << dtype_name(dt) << " block " << blk << " kernel " << attn_kernel_name(kc) << " rel err " << e);
                    REQUIRE(e < (dt == DType::f32 ? 1e-5 : 1e-2));
                }
            }
        }
    }
}

TEST_CASE("attention throughput at the 1.3B chunk shape per KV format (informational)", "[cuda][attention]") {
    auto gpu = cuda_backend();
    const int H = 12, D = 128, tpf = 1560;
    RingView view{0, 21, tpf, 21, RopeMode::absolute};
    const RopeLayout rope = make_rope_layout(D, 30, 52);
    Tensor k = to_device(*gpu, test::randn(Shape{21 * tpf, H, D}, 41), DType::bf16), v = to_device(*gpu, test::randn(Shape{21 * tpf, H, D}, 42), DType::bf16);
    Tensor q  = to_device(*gpu, test::randn(Shape{3 * tpf, H, D}, 43), DType::bf16);
    Tensor od = gpu->alloc(DType::bf16, q.shape()).value();
    const Tensor none;
    Tensor first;  // bf16 on the first kernel: the others must agree with it
    bool   have_first = false;
    for (KvFormat fmt : {KvFormat::bf16, KvFormat::fp8, KvFormat::int8, KvFormat::int4, KvFormat::nvfp4}) {
        const KvLayout L = KvLayout::make(fmt, tpf, H, D);
        Tensor store = gpu->alloc(DType::u8, Shape{21, L.slot_bytes}).value();
        REQUIRE(gpu->kv_write(store, L, view, 0, k, v).ok());
        // bf16: every kernel side by side (A/B in one process); the other formats on the default one
        for (AttnKernel kc : kAttnKernels) {
            const bool is8 = fmt == KvFormat::fp8 || fmt == KvFormat::int8;  // both Hopper kernels side by side
            if (fmt != KvFormat::bf16 && kc != AttnKernel::automatic && !(is8 && (kc == AttnKernel::mma8 || kc == AttnKernel::warp_specialized))) continue;
            if (fmt == KvFormat::bf16 && (kc == AttnKernel::mma8 || kc == AttnKernel::warp_specialized)) continue;  // same as automatic there
            PinAttnKernel pin(kc);
            REQUIRE(gpu->attention_ring(od, q, store, L, view, none, none, rope, 0.088f).ok());
            REQUIRE(gpu->synchronize().ok());
            const int  reps = 5;
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < reps; ++i) REQUIRE(gpu->attention_ring(od, q, store, L, view, none, none, rope, 0.088f).ok());
            REQUIRE(gpu->synchronize().ok());
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
            const double flops = 4.0 * 3 * tpf * 21.0 * tpf * H * D;
            WARN("ring attention 4680 x 32760, 12 x 128 heads, " << kv_format_name(fmt) << ", kernel " << attn_kernel_name(kc) << ": " << ms
                                                                 << " ms = " << flops / ms / 1e9 << " TFLOP/s");
            Tensor h = to_host(*gpu, od);
            for (int64_t i = 0; i < h.numel(); i += 997) REQUIRE(std::isfinite(h.data<float>()[i]));
            if (fmt != KvFormat::bf16) {
                // a stored format against the bf16 store, at many tiles per frame (scale blocks past the first)
                const double e = test::rel_err(h, first);
                WARN(kv_format_name(fmt) << " vs bf16 rel diff " << e);
                REQUIRE(e < (fmt == KvFormat::fp8 || fmt == KvFormat::int8 ? 0.1 : 0.3));
                continue;
            }
            {
                int64_t bad = 0, shown = 0;
                for (int64_t i = 0; i < h.numel(); ++i)
                    if (!std::isfinite(h.data<float>()[i])) {
                        if (shown++ < 12) WARN("non-finite at row " << i / (H * D) << " head " << (i / D) % H << " col " << i % D);
                        ++bad;
                    }
                if (bad) WARN(bad << " non-finite outputs");
            }
            if (!have_first) first = h, have_first = true;
            const double e = test::rel_err(h, first);
            INFO("kernel " << attn_kernel_name(kc) << " vs " << attn_kernel_name(kAttnKernels[0]) << " rel diff " << e);
            REQUIRE(e < 1e-2);
        }
    }
}

// A Q8Case (tests/attention_q8_model.h) through the CUDA ring attention with `kernel` pinned.
static Tensor run_q8_case(Backend & gpu, const test::Q8Case & c, AttnKernel kernel) {
    Tensor sd = gpu.alloc(DType::u8, c.store.shape()).value();
    REQUIRE(gpu.copy_from_host_async(sd, c.store).ok());
    Tensor qd = to_device(gpu, c.q, DType::bf16), tkd = to_device(gpu, c.tail_k, DType::bf16), tvd = to_device(gpu, c.tail_v, DType::bf16);
    PinAttnKernel pin(kernel);
    Tensor        od = gpu.alloc(DType::bf16, c.q.shape()).value();
    REQUIRE(gpu.attention_ring(od, qd, sd, c.L, c.view, tkd, tvd, c.rope, 0.088f).ok());
    return to_host(gpu, od);
}

// The 8-bit kernel against the host model of its own roundings (tests/attention_q8_model.h: Q per row
// in int8 / e4m3, P times its block's value-scale ratio in f16, fp8's Q K^T on the modelled e4m3
// accumulator); what is left is the hardware's arithmetic where it differs from the model (ex2.approx,
// bf16 output) and any bug. First a small uneven cache, then the 1.3B chunk over a 21-frame window (28,080 history keys, where
// an e4m3 P V with one accumulator lost 16-20 %) on 128 query rows of two heads.
TEST_CASE("8-bit MMA attention follows the host model of its roundings on an uneven cache", "[cuda][attention]") {
    auto gpu = cuda_backend();
    test::Q8Numerics num;
    num.pv = test::PvSum::f16;
    for (KvFormat fmt : {KvFormat::int8, KvFormat::fp8})
        for (float spread : {0.0f, 1.0f}) {
            const test::Q8Case c = test::make_q8_case(fmt, spread);
            const Tensor       model = test::q8_model_out(c, 0.088f, num);
            const double       e = test::rel_err(run_q8_case(*gpu, c, AttnKernel::mma8), model);
            WARN("ws8, " << kv_format_name(fmt) << ", value-scale spread " << spread << ": vs its host model rel diff " << e);
            CHECK(e < 1e-2);
        }
}

// Scores that grow along the history (keys scaled up frame by frame) keep moving the row maxima by more
// than the lazy rescaling's slack (2^15), so the kernel takes its recompute path at frame changes deep
// into the window, not only on a block's first tile.
TEST_CASE("8-bit MMA attention follows its host model when the scores grow along the history", "[cuda][attention]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    test::Q8Numerics num;
    num.pv = test::PvSum::f16;
    test::Q8Shape sh;
    sh.key_ramp = 0.8f;
    for (KvFormat fmt : {KvFormat::int8, KvFormat::fp8}) {
        const test::Q8Case c = test::make_q8_case(fmt, 1.0f, sh);
        Tensor twin = Tensor::host(DType::f32, c.q.shape());
        REQUIRE(cpu.attention_ring(twin, c.q, c.store, c.L, c.view, c.tail_k, c.tail_v, c.rope, 0.088f).ok());
        const Tensor got = run_q8_case(*gpu, c, AttnKernel::mma8), model = test::q8_model_out(c, 0.088f, num);
        const double e_model = test::rel_err(got, model);
        WARN("ws8, " << kv_format_name(fmt) << ", growing scores: vs its host model rel diff " << e_model << ", vs exact twin " << test::rel_err(got, twin));
        CHECK(e_model < 1e-2);
    }
}

TEST_CASE("8-bit MMA attention follows its host model over a full 1.3B window with a bf16 tail and uneven scales",
          "[cuda][attention]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    test::Q8Numerics num;
    num.pv = test::PvSum::f16;
    test::Q8Shape sh = test::Q8Shape::wan_1_3b(128);
    sh.H = 2, sh.q_scale = 3.0f;
    for (KvFormat fmt : {KvFormat::int8, KvFormat::fp8}) {
        const test::Q8Case c = test::make_q8_case(fmt, 1.0f, sh);
        Tensor twin = Tensor::host(DType::f32, c.q.shape());
        REQUIRE(cpu.attention_ring(twin, c.q, c.store, c.L, c.view, c.tail_k, c.tail_v, c.rope, 0.088f).ok());
        const Tensor model = test::q8_model_out(c, 0.088f, num);
        WARN(kv_format_name(fmt) << ": model vs exact twin " << test::rel_err(model, twin) << ", dequantizing kernel vs twin "
                                 << test::rel_err(run_q8_case(*gpu, c, AttnKernel::warp_specialized), twin));
        const Tensor got     = run_q8_case(*gpu, c, AttnKernel::mma8);
        const double e_model = test::rel_err(got, model);
        WARN("ws8, " << kv_format_name(fmt) << ": vs its host model rel diff " << e_model << ", vs exact twin " << test::rel_err(got, twin));
        CHECK(e_model < 1e-2);
    }
}

TEST_CASE("KV offload on CUDA gives bit-identical output to a resident cache for every format", "[cuda][offload]") {
    auto gpu = cuda_backend();
    const ModelConfig cfg = config_from_file(test::data_path("tiny_config.json")).value();
    auto dit = Dit::load(*gpu, test::data_path("tiny_weights.safetensors"), &cfg).value();
    REQUIRE(dit->set_zero_context().ok());
    const bool quick = std::getenv("AVS_SANITIZE") != nullptr;  // under compute-sanitizer: two formats, 4 chunks
    for (KvFormat fmt : {KvFormat::bf16, KvFormat::fp8, KvFormat::int8, KvFormat::int4, KvFormat::nvfp4}) {
        if (quick && fmt != KvFormat::bf16 && fmt != KvFormat::int4) continue;
        std::vector<std::vector<Tensor>> outs;
        for (bool off : {false, true}) {
            GenConfig g;
            g.height_latent = 8, g.width_latent = 8, g.cache.window = 6, g.cache.sinks = 1, g.cache.rope_mode = RopeMode::window;
            g.cache.format = fmt, g.cache.offload = off;
            auto gen = Generator::create(*dit, g).value();
            SeededNoise n(5);
            outs.emplace_back();
            for (int i = 0; i < (quick ? 4 : 5); ++i) {
                Tensor c = Tensor::host(DType::f32, Shape{16, 3, 8, 8});
                REQUIRE(gen->next_chunk(n, c).ok());
                outs.back().push_back(c);
            }
        }
        for (size_t i = 0; i < outs[0].size(); ++i) {
            INFO(kv_format_name(fmt) << " chunk " << i);
            REQUIRE(test::bit_equal(outs[0][i], outs[1][i]));
        }
    }
}

TEST_CASE("tiny-config rollout on CUDA follows the CPU twin within bf16 error", "[cuda][dit]") {
    auto       gpu = cuda_backend();
    CpuBackend cpu;
    const ModelConfig cfg = config_from_file(test::data_path("tiny_config.json")).value();
    GenConfig g;
    g.height_latent = 8, g.width_latent = 8, g.cache.window = 6, g.cache.sinks = 1, g.cache.rope_mode = RopeMode::window;
    Tensor ctx = Tensor::host(DType::f32, Shape{20, 64});
    {
        auto f = SafetensorsFile::open(test::data_path("tiny_context.safetensors")).value();
        ctx    = read_tensor(*f->find("context"), DType::f32).value();
    }
    auto noise_file = SafetensorsFile::open(test::data_path("golden_commit_w6_s1_window.safetensors")).value();
    Tensor noise = read_tensor(*noise_file->find("noise"), DType::f32).value();
    std::vector<Tensor> outs;
    for (Backend * be : {static_cast<Backend *>(&cpu), gpu.get()}) {
        g.cache.format = be == &cpu ? KvFormat::f32 : KvFormat::bf16;
        auto dit = Dit::load(*be, test::data_path("tiny_weights.safetensors"), &cfg);
        REQUIRE(dit.ok());
        REQUIRE(dit.value()->set_context(ctx).ok());
        auto gen = Generator::create(*dit.value(), g);
        REQUIRE(gen.ok());
        TensorNoise n(noise);
        Tensor all = Tensor::host(DType::f32, Shape{16, 12, 8, 8});
        Tensor c   = Tensor::host(DType::f32, Shape{16, 3, 8, 8});
        for (int i = 0; i < 4; ++i) {
            REQUIRE(gen.value()->next_chunk(n, c).ok());
            test::copy_frames(c, 0, all, int64_t(i) * 3, 3);
        }
        outs.push_back(all);
    }
    const double e = test::rel_err(outs[1], outs[0]);
    WARN("tiny 4-chunk rollout, CUDA (bf16) vs CPU (fp32): rel err " << e);
    REQUIRE(e < 5e-2);
}

TEST_CASE("a 1.3B real-dims chunk forward on CUDA stays finite", "[cuda][dit]") {
    auto gpu = cuda_backend();
    auto dit = Dit::random_init(*gpu, config_preset("wan2.1-t2v-1.3b").value(), 7);
    REQUIRE(dit.ok());
    KvCacheConfig kc;
    kc.window = 21, kc.chunk_frames = 3;
    const ModelConfig & m = dit.value()->config();
    auto cache = KvCache::create(*gpu, kc, m.layers, 30 * 52, m.heads, m.head_dim());
    REQUIRE(cache.ok());
    Tensor x   = to_device(*gpu, test::randn(Shape{16, 3, 60, 104}, 31), DType::f32);
    Tensor out = gpu->alloc(DType::f32, Shape{16, 3, 60, 104}).value();
    for (int chunk = 0; chunk < 2; ++chunk) {
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(dit.value()->forward_chunk(x, {937.5, 937.5, 937.5}, cache.value(), 0, chunk * 3, out).ok());
        REQUIRE(gpu->synchronize().ok());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        Tensor h = to_host(*gpu, out);
        double s2 = 0;
        for (int64_t i = 0; i < h.numel(); ++i) {
            REQUIRE(std::isfinite(h.data<float>()[i]));
            s2 += double(h.data<float>()[i]) * h.data<float>()[i];
        }
        WARN("1.3B chunk forward " << chunk << ": " << ms << " ms, rms " << std::sqrt(s2 / double(h.numel())) << ", peak "
                                   << gpu->peak_bytes() / 1048576 << " MiB");
        REQUIRE(s2 > 0);
    }
}

TEST_CASE("the default avatar's audio-conditioned forward on CUDA matches the PyTorch reference (golden)", "[cuda][dit][audio]") {
    auto gpu = cuda_backend();
    auto dm  = default_model();
    REQUIRE(dm.ok());
    auto dit = Dit::load(*gpu, dm.value().dit, nullptr).value();
    const std::string g = test::data_path("golden_default_model.safetensors");
    const Tensor x = test::read_named(g, "x"), tt = test::read_named(g, "t"), w = test::read_named(g, "windows"), want = test::read_named(g, "v");
    std::vector<double> t;
    for (int64_t i = 0; i < tt.numel(); ++i) t.push_back(double(tt.data<float>()[i]));
    REQUIRE(dit->set_audio(w).ok());
    Tensor v = gpu->alloc(DType::f32, want.shape()).value();
    REQUIRE(dit->forward_full(to_device(*gpu, x, DType::f32), t, 3, v).ok());
    const double e = test::rel_err(to_host(*gpu, v), want);
    WARN("default avatar forward on CUDA (bf16) vs PyTorch reference: rel err " << e);
    REQUIRE(e < 3e-2);
}
