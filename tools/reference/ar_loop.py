#!/usr/bin/python3
"""Autoregressive few-step loop of the causal Wan2.1 DiT over a KV cache with sinks + rolling window.

Cache semantics (the C++ engine implements exactly these):
  * Latent frames have absolute indices f = 0, 1, 2, ...; chunk n covers [n*C, (n+1)*C).
  * sinks S >= 0, window W >= C (rolling part, including the chunk being generated); capacity S + W.
  * While generating chunk n (frames [f0, f0+C)) the visible key frames are
        {f : f < min(S, f0+C)}  U  {f : max(S, f0+C-W) <= f < f0+C}     (increasing f)
  * Keys are stored before RoPE (after the k RMSNorm) and rotated when read. Temporal RoPE position:
    rope_mode "absolute" -> f; "window" -> index of f in the visible list. Queries use the same scheme.
  * cache_mode "commit" (Self-Forcing): every denoising step writes the chunk's K/V (from that step's
    input) into the cache; after the last step a commit pass on x0 at t = 0 writes clean K/V.
  * cache_mode "step" (Seko AR): one cache per denoising step; step s reads and writes cache s only;
    no commit pass.

Two cache implementations: RingKVCache (fixed-capacity ring of S + W frame slots, like the engine) and
NaiveKVCache (a dict keyed by (cache, layer, frame), visible set recomputed from scratch). They must
agree; make_goldens.py checks this for every golden.

Audio-conditioned models (config conditioning "audio"): call model.set_audio(latent_mel_windows(...))
before generate(); forward_chunk takes each chunk's audio tokens by absolute frame index (the view's
frame0). The CLI does this with --audio (a 16 kHz mono WAV, or a safetensors file holding `audio`
samples or `mel_windows`).

CLI: see --help. Writes a safetensors file with `latents` [C_out, chunks*C, h, w].
"""

import argparse
import os
import sys
import wave

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import st_io  # noqa: E402
from wan_causal import Config, CausalWanDiT  # noqa: E402


def sampler_timesteps(steps, shift):
    """Fed timesteps t_s (float64 Python floats): raw r_s = 1000(1 - s/steps), sigma = r_s/1000,
    t_s = 1000 * shift*sigma / (1 + (shift-1)*sigma). sigma_s = t_s / 1000."""
    out = []
    for s in range(steps):
        sigma = 1.0 - s / steps
        out.append(1000.0 * shift * sigma / (1.0 + (shift - 1.0) * sigma))
    return out


def latent_mel_windows(logmel, n_latents, window=32, log_floor=1e-10):
    """Audio windows of latent frames 0..n_latents-1 (engine/audio/log_mel.h latent_audio_window):
    logmel [frames, mels] from log_mel_ref.log_mel of the stream from its first sample ->
    [n_latents, window, mels] float32. Latent L takes the `window` mel frames ending at audio_end(L) =
    (4L+1)/16 s; frames before the stream start are ln(log_floor) (what digital silence gives)."""
    import log_mel_ref

    logmel = np.asarray(logmel)
    pad = np.log(float(np.float32(log_floor)))
    out = np.full((n_latents, window, logmel.shape[1]), pad, dtype=np.float64)
    for L in range(n_latents):
        first, end, pad_front, _ = log_mel_ref.latent_audio_window(L, window)
        if end > logmel.shape[0]:
            raise ValueError("latent %d needs mel frames up to %d, only %d computed" % (L, end, logmel.shape[0]))
        out[L, pad_front:] = logmel[first:end]
    return torch.from_numpy(out.astype(np.float32))


def samples_for_latents(n_latents, sample_rate=16000, fps=16):
    """Audio samples needed to condition latents 0..n_latents-1: audio_end(n_latents - 1)."""
    return (4 * (n_latents - 1) + 1) * sample_rate // fps


def read_wav(path):
    """16-bit PCM WAV -> float32 mono samples in [-1, 1] and the sample rate (stdlib only)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("%s: only 16-bit PCM WAV is supported" % path)
        ch, sr, n = w.getnchannels(), w.getframerate(), w.getnframes()
        a = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    return a.reshape(-1, ch).mean(axis=1), sr


def load_audio_windows(path, n_latents, window=32):
    """--audio: a 16 kHz WAV, or safetensors with `mel_windows` [F, window, mels] or `audio` [N] samples.
    Audio shorter than needed is padded with digital silence."""
    import log_mel_ref

    if path.endswith(".safetensors"):
        t, _ = st_io.load(path)
        if "mel_windows" in t:
            return t["mel_windows"].float()[:n_latents]
        a = t["audio"].double().numpy().reshape(-1)
    else:
        a, sr = read_wav(path)
        if sr != 16000:
            raise ValueError("%s: sample rate %d, expected 16000" % (path, sr))
    need = samples_for_latents(n_latents)
    if len(a) < need:
        a = np.concatenate([a, np.zeros(need - len(a), dtype=a.dtype)])
    return latent_mel_windows(log_mel_ref.log_mel(a[:need]), n_latents, window)


def visible_frames(f_end, sinks, window):
    """Visible key frames when the chunk being generated ends at frame f_end (exclusive)."""
    sink_part = list(range(0, min(sinks, f_end)))
    roll_part = list(range(max(sinks, f_end - window), f_end))
    return sink_part + roll_part


class _View:
    def __init__(self, cache, index, frame0):
        self.cache, self.index, self.frame0 = cache, index, frame0

    def update_and_gather(self, layer, k, v):
        return self.cache.update_and_gather(self.index, self.frame0, layer, k, v)


class RingKVCache:
    """Fixed capacity: S sink slots + a ring of W slots, per (cache index, layer). Frame f < S lives in
    slot f; frame f >= S in slot S + (f - S) mod W. Stored K is pre-RoPE."""

    def __init__(self, n_caches, layers, sinks, window, chunk_frames, rope_mode, tokens_per_frame, heads,
                 head_dim, device, dtype):
        if window < chunk_frames:
            raise ValueError("window (%d) must be >= chunk_frames (%d)" % (window, chunk_frames))
        if sinks < 0:
            raise ValueError("sinks must be >= 0")
        if rope_mode not in ("absolute", "window"):
            raise ValueError("rope_mode must be absolute or window")
        self.S, self.W, self.C, self.rope_mode = sinks, window, chunk_frames, rope_mode
        cap = sinks + window
        shape = (n_caches, layers, cap, tokens_per_frame, heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.owner = [[[-1] * cap for _ in range(layers)] for _ in range(n_caches)]  # frame held per slot

    def slot(self, f):
        return f if f < self.S else self.S + (f - self.S) % self.W

    def view(self, index, frame0):
        return _View(self, index, frame0)

    def update_and_gather(self, ci, frame0, layer, k, v):
        n = k.shape[0]
        for j in range(n):
            f = frame0 + j
            s = self.slot(f)
            self.k[ci, layer, s] = k[j]
            self.v[ci, layer, s] = v[j]
            self.owner[ci][layer][s] = f
        vis = visible_frames(frame0 + n, self.S, self.W)
        slots = []
        for f in vis:
            s = self.slot(f)
            if self.owner[ci][layer][s] != f:
                raise RuntimeError("ring slot %d holds frame %d, wanted %d" % (s, self.owner[ci][layer][s], f))
            slots.append(s)
        idx = torch.tensor(slots, device=self.k.device, dtype=torch.long)
        kv_k = self.k[ci, layer].index_select(0, idx)
        kv_v = self.v[ci, layer].index_select(0, idx)
        if self.rope_mode == "absolute":
            kpos = list(vis)
            qpos = [frame0 + j for j in range(n)]
        else:
            kpos = list(range(len(vis)))
            qpos = [vis.index(frame0 + j) for j in range(n)]
        return kv_k, kv_v, kpos, qpos


class NaiveKVCache:
    """Reference for the cache semantics: a dict (cache, layer, frame) -> (pre-RoPE K, V); the visible set
    is rebuilt from the list of all frames so far: the first S ("sinks") plus the last W that are not
    sinks."""

    def __init__(self, sinks, window, rope_mode):
        self.S, self.W, self.rope_mode = sinks, window, rope_mode
        self.store = {}

    def view(self, index, frame0):
        return _View(self, index, frame0)

    def update_and_gather(self, ci, frame0, layer, k, v):
        n = k.shape[0]
        for j in range(n):
            self.store[(ci, layer, frame0 + j)] = (k[j].clone(), v[j].clone())
        history = list(range(frame0 + n))          # every frame generated so far, incl. this chunk
        sinks = history[: self.S]
        recent = [f for f in history[len(history) - min(self.W, len(history)):] if f not in sinks]
        vis = sinks + recent
        ks = torch.stack([self.store[(ci, layer, f)][0] for f in vis])
        vs = torch.stack([self.store[(ci, layer, f)][1] for f in vis])
        pos = {f: (f if self.rope_mode == "absolute" else i) for i, f in enumerate(vis)}
        return ks, vs, [pos[f] for f in vis], [pos[frame0 + j] for j in range(n)]


def generate(model, noise, chunk_frames, steps, shift, window, sinks, rope_mode, cache_mode, cache_impl="ring",
             on_call=None, chunks=None):
    """Run the AR loop. noise: [chunks, steps, C_in, C, h, w]; noise[n, 0] is chunk n's initial latent and
    noise[n, s+1] the fresh noise for re-noising to step s+1. Returns latents [C_out, chunks*C, h, w].

    on_call(chunk, step, x_in, t_list, out) is called after every DiT pass; step == "commit" for the
    commit pass."""
    cfg = model.cfg
    noise = torch.as_tensor(noise).to(model.device, model.dtype)
    n_chunks = noise.shape[0] if chunks is None else chunks
    if noise.dim() != 6 or noise.shape[1] != steps or noise.shape[3] != chunk_frames:
        raise ValueError("noise must be [chunks, steps=%d, C, F=%d, h, w], got %s" % (steps, chunk_frames,
                                                                                     list(noise.shape)))
    if cache_mode not in ("commit", "step"):
        raise ValueError("cache_mode must be commit or step")
    h, w = noise.shape[4], noise.shape[5]
    _, ph, pw = cfg.patch_size
    T = (h // ph) * (w // pw)
    n_caches = steps if cache_mode == "step" else 1
    if cache_impl == "ring":
        cache = RingKVCache(n_caches, cfg.layers, sinks, window, chunk_frames, rope_mode, T, cfg.heads, cfg.head_dim,
                            model.device, model.dtype)
    elif cache_impl == "naive":
        if window < chunk_frames:
            raise ValueError("window must be >= chunk_frames")
        cache = NaiveKVCache(sinks, window, rope_mode)
    else:
        raise ValueError("cache_impl must be ring or naive")
    ts = sampler_timesteps(steps, shift)
    outs = []
    for n in range(n_chunks):
        f0 = n * chunk_frames
        x = noise[n, 0]
        x0 = None
        for s in range(steps):
            t = [ts[s]] * chunk_frames
            v = model.forward_chunk(x, t, cache.view(s if cache_mode == "step" else 0, f0))
            if on_call:
                on_call(n, s, x, t, v)
            sigma = ts[s] / 1000.0
            x0 = x - sigma * v
            if s < steps - 1:
                sn = ts[s + 1] / 1000.0
                x = (1.0 - sn) * x0 + sn * noise[n, s + 1]
        if cache_mode == "commit":
            t = [0.0] * chunk_frames
            out = model.forward_chunk(x0, t, cache.view(0, f0))
            if on_call:
                on_call(n, "commit", x0, t, out)
        outs.append(x0)
    return torch.cat(outs, dim=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="safetensors checkpoint (official, diffusers or model./generator. names)")
    ap.add_argument("--config", required=True, help="config JSON file or preset name (tiny, wan2.1-t2v-1.3b)")
    ap.add_argument("--context", help="safetensors file with `context` [L, text_dim] (text models)")
    ap.add_argument("--audio", help="audio models: 16 kHz mono WAV, or safetensors with `audio` [N] or "
                                    "`mel_windows` [F, window, mels]")
    ap.add_argument("--noise", required=True, help="safetensors file with `noise` [chunks, steps, C, F, h, w]")
    ap.add_argument("--chunk-frames", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--window", type=int, required=True, help="rolling window in frames, incl. the current chunk")
    ap.add_argument("--sinks", type=int, default=0)
    ap.add_argument("--rope-mode", choices=["absolute", "window"], default="absolute")
    ap.add_argument("--cache-mode", choices=["commit", "step"], default="commit")
    ap.add_argument("--cache-impl", choices=["ring", "naive"], default="ring")
    ap.add_argument("--chunks", type=int, default=None, help="default: all chunks in the noise file")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", choices=["fp32", "fp64"], default="fp32")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float32 if a.dtype == "fp32" else torch.float64
    cfg = Config.load(a.config)
    sd, _ = st_io.load(a.weights)
    model = CausalWanDiT(cfg, sd, device=a.device, dtype=dtype)
    nz, _ = st_io.load(a.noise)
    noise = nz["noise"]
    if cfg.conditioning == "audio":
        if not a.audio:
            ap.error("an audio-conditioned config needs --audio")
        n_lat = (noise.shape[0] if a.chunks is None else a.chunks) * a.chunk_frames
        model.set_audio(load_audio_windows(a.audio, n_lat, cfg.audio_window))
    else:
        if not a.context:
            ap.error("a text-conditioned config needs --context")
        ctx, _ = st_io.load(a.context)
        model.set_context(ctx["context"])
    lat = generate(model, noise, a.chunk_frames, a.steps, a.shift, a.window, a.sinks, a.rope_mode, a.cache_mode,
                   a.cache_impl, chunks=a.chunks)
    n_chunks = noise.shape[0] if a.chunks is None else a.chunks
    meta = {
        "chunk_frames": str(a.chunk_frames), "steps": str(a.steps), "shift": repr(float(a.shift)),
        "window": str(a.window), "sinks": str(a.sinks), "rope_mode": a.rope_mode, "cache_mode": a.cache_mode,
        "chunks": str(n_chunks), "height_latent": str(noise.shape[4]), "width_latent": str(noise.shape[5]),
    }
    st_io.save(a.out, {"latents": lat.float().cpu()}, meta)
    print("wrote %s: latents %s, max|latents| = %.4f" % (a.out, list(lat.shape), lat.abs().max().item()))


if __name__ == "__main__":
    main()
