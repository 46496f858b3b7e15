#!/usr/bin/env python3
"""bench_torch.py: the fair PyTorch reference of avs-bench's streaming loop (issue 3 part 4).

Same workload as avs-bench: the causal Wan2.1 DiT with random weights, 3-frame chunks, 4 denoising
steps + the commit pass at t = 0 per chunk, a ring KV cache of sinks + window frames, absolute RoPE,
zero text context (512 cross-attention keys). Made fast the way a careful PyTorch user would:
  * bf16 throughout: weights, activations AND the residual stream (the engine keeps its residual
    stream, norms and modulation in fp32, so this reference does less work per element);
  * fused QKV GEMM; torch SDPA with the cuDNN backend (flash if cuDNN cannot take the shapes);
  * preallocated ring cache [layers, sinks + window, tokens, heads, head_dim]; keys are stored AFTER
    RoPE (as Self-Forcing does: with absolute positions that is the same math as rotating on read,
    and cheaper). The visible frames always occupy the slots [0, visible), so attention reads the
    cache in place: no gather, no concat;
  * the chunk's frame index lives on the device, so slots and RoPE angles are computed there: no
    host synchronisation anywhere in the chunk loop (noise is drawn on the device);
  * optionally (default) the whole steady-state chunk (5 passes) is captured in ONE CUDA graph; both
    eager and graph timings are reported and the faster one is the reference figure. torch.compile
    is not used.
Timing: CUDA events around each chunk, one synchronisation after all timed chunks; median.

Also: torch SDPA alone at the chunk shape (default 4680 x 32760, 12 heads x 128) with the cuDNN
backend (and flash for comparison) -> TFLOP/s = 4·Lq·Lk·H·D / time, and a bf16 8192^3 torch.matmul.

Prints one JSON object to stdout (and writes it to --out FILE). --device cpu --quick runs the same
code at tiny sizes (PyTorch 1.13 has no SDPA: a plain softmax attention stands in); --selfcheck
compares the fast loop against wan_causal.py + ar_loop.py (fp32, CPU) on the tiny config.
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ar_loop import sampler_timesteps  # noqa: E402
from wan_causal import Config, expected_shapes, rope_axis_dims, timestep_sinusoid  # noqa: E402

PIXEL_FRAMES_PER_LATENT = 4


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Attention backends


def _sdpa_backends():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel  # torch >= 2.3
        return {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}, sdpa_kernel
    except ImportError:
        return {}, None


def sdpa_context(name):
    """A context that restricts SDPA to one backend ('cudnn', 'flash'), or does nothing ('default')."""
    table, kernel = _sdpa_backends()
    if name == "default" or kernel is None:
        return contextlib.nullcontext()
    return kernel(table[name])


def attention(q, k, v):
    """q [1, H, Lq, D], k/v [1, H, Lk, D] (any strides with the last dim contiguous)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))  # PyTorch 1.13 (CPU smoke)
    return torch.matmul(s.softmax(-1), v)


def pick_sdpa_backend(device, dtype, lq, lk, heads, head_dim):
    """'cudnn' if the cuDNN backend runs the model's layouts, else 'flash', else 'default' (CPU)."""
    table, _ = _sdpa_backends()
    if device.type != "cuda" or not table:
        return "default", "no CUDA SDPA backends here (CPU or old PyTorch): plain softmax attention / default SDPA"
    q = torch.randn(1, lq, heads, head_dim, device=device, dtype=dtype).transpose(1, 2)
    k = torch.randn(1, lk, heads, head_dim, device=device, dtype=dtype).transpose(1, 2)
    errors = []
    for name in ("cudnn", "flash"):
        try:
            with sdpa_context(name):
                attention(q, k, k)
                attention(q, k[:, :, :512].contiguous(), k[:, :, :512].contiguous())  # cross-attention shape
            torch.cuda.synchronize()
            return name, ("cuDNN SDPA" if name == "cudnn" else "cuDNN SDPA failed (%s); flash SDPA" % "; ".join(errors))
        except RuntimeError as e:
            errors.append("%s: %s" % (name, str(e).splitlines()[0][:200]))
    raise RuntimeError("neither cuDNN nor flash SDPA runs here: " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------------
# Weights


def random_state_dict(cfg, device, dtype, seed):
    """Official Wan2.1 names; N(0, 1/fan_in) matrices, unit norm weights, N(0, 0.02^2) vectors (as the engine)."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    sd = {}
    for name, shape in expected_shapes(cfg).items():
        if "norm" in name and name.endswith(".weight"):
            t = torch.ones(shape, device=device, dtype=torch.float32)
        elif len(shape) >= 2 and "modulation" not in name:
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, device=device, dtype=torch.float32, generator=g) / math.sqrt(fan_in)
        else:
            t = torch.randn(shape, device=device, dtype=torch.float32, generator=g) * 0.02
        sd[name] = t.to(dtype)
    return sd


def rms_norm(x, w, eps):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


# ---------------------------------------------------------------------------------------------------
# The fast model and loop


class FastStream:
    """One (window, sinks) streaming run of the causal DiT over a ring cache, graph-capturable."""

    def __init__(self, cfg, sd, device, dtype, height_latent, width_latent, chunk_frames, steps, shift, window, sinks):
        self.cfg, self.device, self.dt = cfg, device, dtype
        self.C, self.steps, self.S, self.W = chunk_frames, steps, sinks, window
        _, ph, pw = cfg.patch_size
        self.hl, self.wl = height_latent, width_latent
        self.hp, self.wp = height_latent // ph, width_latent // pw
        self.T = self.hp * self.wp
        D, H, Dh = cfg.dim, cfg.heads, cfg.head_dim
        W_ = {n: t.to(device=device, dtype=dtype).contiguous() for n, t in sd.items()}
        self.pe_w = W_["patch_embedding.weight"].reshape(D, -1)
        self.w = W_
        self.layers = []
        for i in range(cfg.layers):
            b = "blocks.%d." % i
            g = lambda n: W_[b + n]  # noqa: E731
            self.layers.append({
                "mod": g("modulation").reshape(6, D),
                "qkv_w": torch.cat([g("self_attn.q.weight"), g("self_attn.k.weight"), g("self_attn.v.weight")]),
                "qkv_b": torch.cat([g("self_attn.q.bias"), g("self_attn.k.bias"), g("self_attn.v.bias")]),
                "o_w": g("self_attn.o.weight"), "o_b": g("self_attn.o.bias"),
                "nq": g("self_attn.norm_q.weight"), "nk": g("self_attn.norm_k.weight"),
                "cq_w": g("cross_attn.q.weight"), "cq_b": g("cross_attn.q.bias"), "cnq": g("cross_attn.norm_q.weight"),
                "co_w": g("cross_attn.o.weight"), "co_b": g("cross_attn.o.bias"),
                "n3_w": g("norm3.weight"), "n3_b": g("norm3.bias"),
                "f0_w": g("ffn.0.weight"), "f0_b": g("ffn.0.bias"), "f2_w": g("ffn.2.weight"), "f2_b": g("ffn.2.bias"),
            })
        # zero text context, zero-padded to text_len before the text MLP; cross K/V once per prompt
        ctx = torch.zeros(cfg.text_len, cfg.text_dim, device=device, dtype=dtype)
        temb = F.linear(F.gelu(F.linear(ctx, W_["text_embedding.0.weight"], W_["text_embedding.0.bias"]), approximate="tanh"),
                        W_["text_embedding.2.weight"], W_["text_embedding.2.bias"])
        for i, L in enumerate(self.layers):
            b = "blocks.%d.cross_attn." % i
            k = rms_norm(F.linear(temb, W_[b + "k.weight"], W_[b + "k.bias"]), W_[b + "norm_k.weight"], cfg.eps)
            v = F.linear(temb, W_[b + "v.weight"], W_[b + "v.bias"])
            L["ck"] = k.reshape(1, -1, H, Dh).transpose(1, 2).contiguous()
            L["cv"] = v.reshape(1, -1, H, Dh).transpose(1, 2).contiguous()
        # per-pass timestep sinusoids: static device buffers (a graph cannot create tensors from host data)
        self.ts = sampler_timesteps(steps, shift)
        f64 = torch.float64
        self.sin = [timestep_sinusoid(cfg.freq_dim, torch.full((self.C,), t, dtype=f64)).to(device, dtype)
                    for t in self.ts + [0.0]]
        # RoPE: spatial angles fixed; temporal ones from the device-side frame index
        df, dh, dw = rope_axis_dims(Dh)
        inv = lambda d: torch.pow(torch.tensor(10000.0, dtype=f64), -2.0 * torch.arange(d // 2, dtype=f64) / d)  # noqa: E731
        ah = torch.arange(self.hp, dtype=f64)[:, None] * inv(dh)[None, :]
        aw = torch.arange(self.wp, dtype=f64)[:, None] * inv(dw)[None, :]
        hw = torch.cat([ah[:, None, :].expand(self.hp, self.wp, dh // 2), aw[None, :, :].expand(self.hp, self.wp, dw // 2)], -1)
        self.ang_hw = hw.reshape(1, self.T, (dh + dw) // 2).to(device)
        self.inv_t = inv(df).to(device)
        # ring cache and the device-side frame counter (first chunk: f0 = 0 after the first advance)
        cap = sinks + window
        self.kc = torch.zeros(cfg.layers, cap, self.T, H, Dh, device=device, dtype=dtype)
        self.vc = torch.zeros_like(self.kc)
        self.f0 = torch.full((1,), -chunk_frames, device=device, dtype=torch.long)
        self.ar = torch.arange(chunk_frames, device=device, dtype=torch.long)
        self.x_shape = (cfg.in_channels, chunk_frames, height_latent, width_latent)
        self.out = torch.zeros(self.x_shape, device=device, dtype=torch.float32)
        self.chunks_started = 0

    def visible_frames(self, chunk_index):
        end = (chunk_index + 1) * self.C
        return min(end, self.S + self.W)  # the visible frames are exactly the slots [0, this)

    def advance(self):
        """Move the device-side frame counter to the next chunk (outside any graph)."""
        self.f0.add_(self.C)
        self.chunks_started += 1

    def _rope(self, x, freqs):
        n, T, H, Dh = x.shape
        xc = torch.view_as_complex(x.float().reshape(n, T, H, Dh // 2, 2))
        return torch.view_as_real(xc * freqs).reshape(n, T, H, Dh).to(x.dtype)

    def forward(self, x, sin, slots, freqs, nvis):
        cfg, w, dt = self.cfg, self.w, self.dt
        D, H, Dh, Fr, T, eps = cfg.dim, cfg.heads, cfg.head_dim, self.C, self.T, cfg.eps
        Cin = cfg.in_channels
        p = x.to(dt).reshape(Cin, Fr, self.hp, 2, self.wp, 2).permute(1, 2, 4, 0, 3, 5).reshape(Fr, T, Cin * 4)
        h = F.linear(p, self.pe_w, w["patch_embedding.bias"])
        e = F.linear(F.silu(F.linear(sin, w["time_embedding.0.weight"], w["time_embedding.0.bias"])),
                     w["time_embedding.2.weight"], w["time_embedding.2.bias"])
        e0 = F.linear(F.silu(e), w["time_projection.1.weight"], w["time_projection.1.bias"]).reshape(Fr, 6, D)
        for li, L in enumerate(self.layers):
            sh1, sc1, g1, sh2, sc2, g2 = (L["mod"] + e0).unsqueeze(2).unbind(1)  # each [F, 1, D]
            y = torch.addcmul(sh1, F.layer_norm(h, (D,), eps=eps), 1 + sc1)
            q, k, v = F.linear(y, L["qkv_w"], L["qkv_b"]).split(D, -1)
            q = self._rope(rms_norm(q, L["nq"], eps).reshape(Fr, T, H, Dh), freqs)
            k = self._rope(rms_norm(k, L["nk"], eps).reshape(Fr, T, H, Dh), freqs)
            self.kc[li].index_copy_(0, slots, k)
            self.vc[li].index_copy_(0, slots, v.reshape(Fr, T, H, Dh))
            kk = self.kc[li, :nvis].reshape(1, nvis * T, H, Dh).transpose(1, 2)
            vv = self.vc[li, :nvis].reshape(1, nvis * T, H, Dh).transpose(1, 2)
            o = attention(q.reshape(1, Fr * T, H, Dh).transpose(1, 2), kk, vv).transpose(1, 2).reshape(Fr, T, D)
            h = torch.addcmul(h, F.linear(o, L["o_w"], L["o_b"]), g1)
            y = F.layer_norm(h, (D,), L["n3_w"], L["n3_b"], eps)
            cq = rms_norm(F.linear(y, L["cq_w"], L["cq_b"]), L["cnq"], eps).reshape(1, Fr * T, H, Dh).transpose(1, 2)
            o = attention(cq, L["ck"], L["cv"]).transpose(1, 2).reshape(Fr, T, D)
            h = h + F.linear(o, L["co_w"], L["co_b"])
            y = torch.addcmul(sh2, F.layer_norm(h, (D,), eps=eps), 1 + sc2)
            y = F.linear(F.gelu(F.linear(y, L["f0_w"], L["f0_b"]), approximate="tanh"), L["f2_w"], L["f2_b"])
            h = torch.addcmul(h, y, g2)
        mod = w["head.modulation"].reshape(2, D) + e[:, None, :]  # [F, 2, D]
        y = torch.addcmul(mod[:, 0:1], F.layer_norm(h, (D,), eps=eps), 1 + mod[:, 1:2])
        u = F.linear(y, w["head.head.weight"], w["head.head.bias"])
        Co = cfg.out_channels
        u = u.reshape(Fr, self.hp, self.wp, 2, 2, Co).permute(5, 0, 1, 3, 2, 4)
        return u.reshape(Co, Fr, self.hl, self.wl).float()

    def chunk(self, nvis, noise=None):
        """One chunk: `steps` passes + the commit pass. Reads the frame counter from the device; draws
        its noise on the device unless `noise` [steps, C, F, h, w] is given (self-check)."""
        fr = self.f0 + self.ar
        slots = torch.where(fr < self.S, fr, self.S + torch.remainder(fr - self.S, self.W))
        ang_t = fr.to(torch.float64)[:, None] * self.inv_t[None, :]                        # [F, pt]
        ang = torch.cat([ang_t[:, None, :].expand(self.C, self.T, ang_t.shape[1]),
                         self.ang_hw.expand(self.C, self.T, self.ang_hw.shape[2])], -1)
        freqs = torch.complex(torch.cos(ang).float(), torch.sin(ang).float())[:, :, None, :]  # [F, T, 1, Dh/2]
        x = noise[0].to(self.device) if noise is not None else torch.randn(self.x_shape, device=self.device)
        x0 = x
        for s in range(self.steps):
            v = self.forward(x, self.sin[s], slots, freqs, nvis)
            sigma = self.ts[s] / 1000.0
            x0 = x - sigma * v
            if s + 1 < self.steps:
                sn = self.ts[s + 1] / 1000.0
                eps = noise[s + 1].to(self.device) if noise is not None else torch.randn_like(x0)
                x = (1.0 - sn) * x0 + sn * eps
        self.forward(x0, self.sin[self.steps], slots, freqs, nvis)  # commit pass: clean K/V, output unused
        self.out.copy_(x0)
        return self.out


# ---------------------------------------------------------------------------------------------------
# Timing


class Timer:
    """CUDA events (one synchronisation at the end) on CUDA; perf_counter on CPU."""

    def __init__(self, device, n):
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        self.t = [[0.0, 0.0] for _ in range(n)]

    def start(self, i):
        if self.cuda:
            self.ev[i][0].record()
        else:
            self.t[i][0] = time.perf_counter()

    def stop(self, i):
        if self.cuda:
            self.ev[i][1].record()
        else:
            self.t[i][1] = time.perf_counter()

    def ms(self):
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in self.ev]
        return [(b - a) * 1e3 for a, b in self.t]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_config(a, cfg, sd, device, dtype, window, sinks, sdpa_name):
    st = FastStream(cfg, sd, device, dtype, a.height // 8, a.width // 8, a.chunk_frames, a.steps, a.shift, window, sinks)
    cap = sinks + window
    fill = -(-cap // a.chunk_frames)  # chunks until the window is full: from then on every chunk sees cap frames
    warm = max(a.warmup, fill) if a.warmup >= 0 else fill + 1
    res = {"window": window, "sinks": sinks, "visible_frames": cap, "lq": a.chunk_frames * st.T, "lkv": cap * st.T,
           "warmup_chunks": warm, "steady_state": True}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with sdpa_context(sdpa_name), torch.no_grad():
        for c in range(warm):
            st.advance()
            st.chunk(st.visible_frames(c))
        nvis = st.visible_frames(warm)
        assert nvis == cap, "warm-up must fill the window"

        def timed(step_fn, label):
            tm = Timer(device, a.chunks)
            for i in range(a.chunks):
                st.advance()
                tm.start(i)
                step_fn()
                tm.stop(i)
            ms = tm.ms()
            med = statistics.median(ms)
            log("  w%d s%d %s: median %.1f ms/chunk, %.2f FPS" % (window, sinks, label, med, fps(a, med)))
            return {"chunk_ms": ms, "chunk_ms_median": med, "fps": fps(a, med)}

        modes = {}
        if a.mode in ("eager", "both"):
            modes["eager"] = timed(lambda: st.chunk(nvis), "eager")
        if a.mode in ("graph", "both") and device.type == "cuda":
            try:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):  # warm the graph's code path on a side stream, as the docs ask
                    st.advance()
                    st.chunk(nvis)
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):  # capture only: nothing runs, the frame counter stays put
                    st.chunk(nvis)
                st.advance()
                graph.replay()
                modes["cuda_graph"] = timed(graph.replay, "CUDA graph")
                del graph
            except RuntimeError as e:
                modes["cuda_graph"] = {"error": str(e).splitlines()[0][:300]}
                log("  CUDA graph failed: %s" % modes["cuda_graph"]["error"])
                sync(device)
    res["modes"] = modes
    good = {k: v for k, v in modes.items() if "chunk_ms_median" in v}
    if good:
        best = min(good, key=lambda k: good[k]["chunk_ms_median"])
        res["mode"] = best
        res["chunk_ms_median"] = good[best]["chunk_ms_median"]
        res["fps"] = good[best]["fps"]
    if device.type == "cuda":
        res["peak_bytes"] = torch.cuda.max_memory_allocated()
    res["finite"] = bool(torch.isfinite(st.out).all().item())
    st = None  # free the cache before the next config
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def fps(a, chunk_ms):
    return a.chunk_frames * PIXEL_FRAMES_PER_LATENT / (chunk_ms * 1e-3)


def bench_sdpa(device, dtype, lq, lk, heads, head_dim, backend, iters):
    q = torch.randn(1, heads, lq, head_dim, device=device, dtype=dtype)
    k = torch.randn(1, heads, lk, head_dim, device=device, dtype=dtype)
    v = torch.randn(1, heads, lk, head_dim, device=device, dtype=dtype)
    out = {"backend": backend, "lq": lq, "lk": lk, "heads": heads, "head_dim": head_dim}
    try:
        with sdpa_context(backend), torch.no_grad():
            for _ in range(3):
                attention(q, k, v)
            tm = Timer(device, iters)
            for i in range(iters):
                tm.start(i)
                attention(q, k, v)
                tm.stop(i)
            ms = statistics.median(tm.ms())
    except RuntimeError as e:
        out["error"] = str(e).splitlines()[0][:300]
        return out
    out["ms"] = ms
    out["tflops"] = 4.0 * lq * lk * heads * head_dim / (ms * 1e-3) / 1e12
    return out


def bench_gemm(device, n, iters):
    a = torch.rand(n, n, device=device, dtype=torch.bfloat16) * 2 - 1
    b = torch.rand(n, n, device=device, dtype=torch.bfloat16) * 2 - 1
    for _ in range(3):
        a @ b
    tm = Timer(device, iters)
    for i in range(iters):
        tm.start(i)
        a @ b
        tm.stop(i)
    ms = statistics.median(tm.ms())
    return {"n": n, "ms": ms, "tflops": 2.0 * n ** 3 / (ms * 1e-3) / 1e12}


# ---------------------------------------------------------------------------------------------------
# Self-check against the plain reference (wan_causal.py + ar_loop.py)


def selfcheck():
    import ar_loop
    from wan_causal import CausalWanDiT

    cfg = Config.load("tiny")
    sd = random_state_dict(cfg, torch.device("cpu"), torch.float32, 5)
    worst = 0.0
    for window, sinks, chunks in ((6, 0, 4), (6, 3, 5), (12, 0, 3)):
        hl, wl, C, steps = 8, 8, 3, 4
        noise = torch.randn(chunks, steps, cfg.in_channels, C, hl, wl, generator=torch.Generator().manual_seed(window + sinks))
        ref_model = CausalWanDiT(cfg, sd)
        ref_model.set_context(torch.zeros(0, cfg.text_dim))
        ref = ar_loop.generate(ref_model, noise, C, steps, 5.0, window, sinks, "absolute", "commit")
        st = FastStream(cfg, sd, torch.device("cpu"), torch.float32, hl, wl, C, steps, 5.0, window, sinks)
        outs = []
        with torch.no_grad():
            for c in range(chunks):
                st.advance()
                outs.append(st.chunk(st.visible_frames(c), noise=noise[c]).clone())
        got = torch.cat(outs, dim=1)
        err = ((got - ref).norm() / ref.norm()).item()
        worst = max(worst, err)
        log("selfcheck w%d s%d: rel err %.2e" % (window, sinks, err))
    ok = worst < 1e-4
    print(json.dumps({"selfcheck": "ok" if ok else "FAILED", "max_rel_err": worst}))
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch reference of avs-bench's streaming DiT loop (see the module doc)")
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--config", default=None, help="preset or JSON (default wan2.1-t2v-1.3b; tiny with --quick)")
    ap.add_argument("--height", type=int, default=None, help="pixels (default 480; 128 with --quick)")
    ap.add_argument("--width", type=int, default=None, help="pixels (default 832; 128 with --quick)")
    ap.add_argument("--windows", default="12,21", help="comma-separated rolling windows (latent frames incl. the chunk)")
    ap.add_argument("--sinks", default="0", help="comma-separated sink counts")
    ap.add_argument("--chunks", type=int, default=None, help="timed chunks per config and mode (default 5; 2 with --quick)")
    ap.add_argument("--warmup", type=int, default=-1, help="warm-up chunks (default: window full + 1; at least window full)")
    ap.add_argument("--chunk-frames", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default=None, help="default bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--mode", choices=["eager", "graph", "both"], default="both",
                    help="eager, one CUDA graph per chunk, or both (the faster is the reference figure)")
    ap.add_argument("--attn-window", type=int, default=21, help="frames of keys for SDPA alone (0: skip)")
    ap.add_argument("--attn-iters", type=int, default=20)
    ap.add_argument("--gemm-size", type=int, default=8192, help="bf16 torch.matmul size for context (0: skip; CUDA only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes for smoke tests")
    ap.add_argument("--selfcheck", action="store_true", help="compare the fast loop with wan_causal/ar_loop (CPU, fp32) and exit")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.selfcheck:
        return selfcheck()

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("bench_torch: no CUDA device")
        return 1
    a.config = a.config or ("tiny" if a.quick else "wan2.1-t2v-1.3b")
    a.height = a.height or (128 if a.quick else 480)
    a.width = a.width or (128 if a.quick else 832)
    a.chunks = a.chunks or (2 if a.quick else 5)
    if a.quick:
        a.attn_iters = min(a.attn_iters, 5)
        a.gemm_size = min(a.gemm_size, 2048)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    cfg = Config.load(a.config)
    if a.height % 16 or a.width % 16:
        raise SystemExit("--height/--width must be multiples of 16")
    tpf = (a.height // 16) * (a.width // 16)
    windows = [int(w) for w in a.windows.split(",") if w]
    sinks = [int(s) for s in a.sinks.split(",") if s]
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # only fp32 matmuls are affected; the model runs in bf16

    lq = a.chunk_frames * tpf
    sdpa_name, sdpa_note = pick_sdpa_backend(device, dtype, lq, max(windows) * tpf, cfg.heads, cfg.head_dim)
    log("bench_torch: torch %s on %s, %s, SDPA: %s" % (torch.__version__, device, dtype, sdpa_note))
    doc = {
        "tool": "bench_torch",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "dtype": "bf16" if dtype == torch.bfloat16 else "fp32",
        "sdpa_backend": sdpa_name,
        "sdpa_note": sdpa_note,
        "method": ("%s weights/activations/residual, fused QKV, SDPA (%s), preallocated ring cache read in place, keys stored "
                   "post-RoPE, device-side frame index and noise (no host sync in the chunk loop), modes: %s (the faster "
                   "is reported), no torch.compile; %s timing, median" %
                   ("bf16" if dtype == torch.bfloat16 else "fp32", sdpa_name,
                    a.mode if device.type == "cuda" else "eager (CPU)", "CUDA-event" if device.type == "cuda" else "wall-clock")),
        "model": dict(cfg.to_dict(), name=a.config),
        "run": {"height": a.height, "width": a.width, "tokens_per_frame": tpf, "chunk_frames": a.chunk_frames,
                "steps": a.steps, "shift": a.shift, "commit_pass": True, "passes_per_chunk": a.steps + 1,
                "pixel_frames_per_chunk": a.chunk_frames * PIXEL_FRAMES_PER_LATENT, "chunks_timed": a.chunks,
                "rope_mode": "absolute", "cache_mode": "commit", "quick": a.quick, "seed": a.seed},
    }
    t0 = time.perf_counter()
    sd = random_state_dict(cfg, device, dtype, a.seed)
    log("bench_torch: random weights in %.1f s" % (time.perf_counter() - t0))
    doc["configs"] = []
    for w in windows:
        for s in sinks:
            doc["configs"].append(run_config(a, cfg, sd, device, dtype, w, s, sdpa_name))
    del sd
    if a.attn_window > 0:
        lk = a.attn_window * tpf
        att = bench_sdpa(device, dtype, lq, lk, cfg.heads, cfg.head_dim, "cudnn" if device.type == "cuda" else "default",
                         a.attn_iters)
        if device.type == "cuda":
            att["flash"] = bench_sdpa(device, dtype, lq, lk, cfg.heads, cfg.head_dim, "flash", a.attn_iters)
            if "error" in att:
                att["note"] = "cuDNN SDPA failed at this shape; only the flash figure was measured"
        doc["attention"] = att
        log("bench_torch: SDPA alone %d x %d: %s" % (lq, lk, json.dumps({k: v for k, v in att.items() if k != "flash"})))
    if a.gemm_size > 0 and device.type == "cuda":
        doc["gemm"] = bench_gemm(device, a.gemm_size, 20)
    text = json.dumps(doc, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
