#!/usr/bin/python3
"""Self-checks of the reference (run after make_goldens.py; it calls this at the end):

 1. AR vs full forward: commit-mode AR with a window that holds every frame (S = 0, absolute RoPE) equals,
    for every chunk n and step s, the block-causal full forward on [x0 of chunks 0..n-1 at t = 0, the
    step's input x at t_s] (last chunk's output), and the commit pass equals it on [x0 of chunks 0..n at
    t = 0]. Also: step mode (each chunk's step-s inputs at t_s), and windowed / sink configurations with
    absolute RoPE against the full forward with the matching visibility mask. rel err <= 1e-5.
 2. Ring cache vs naive dict cache on extra configurations (ring wrap-around, sinks, both RoPE modes).
 3. Golden files reproduce from their metadata (rel err <= 1e-6).
 4. Pieces against independent formulations: RoPE (complex multiply), patch embedding (conv3d),
    unpatchify (einsum from wan21-model.md §1.3.10), RoPE axis split, timesteps.
 5. Checkpoint names: diffusers names (norm2/norm3 swap) and `model.`/`generator.` prefixes load to the
    same model.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
from ar_loop import generate, sampler_timesteps  # noqa: E402
from wan_causal import Config, CausalWanDiT, official_to_diffusers, rope_apply, rope_axis_dims  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))

FAILS = []


def rel_err(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def check(name, err, tol):
    ok = err <= tol
    if not ok:
        FAILS.append(name)
    print("  [%s] %-66s %.3e (tol %.0e)" % ("ok" if ok else "FAIL", name, err, tol))


def ar_vs_full(model, noise, C, steps, shift, cache_mode, window, sinks, label, tol=1e-5):
    """Record every DiT pass of the AR loop and replay it with forward_full. window=None: the AR cache
    holds every frame and the full forward uses the plain block-causal mask."""
    calls = []
    ar_window = noise.shape[0] * C if window is None else window
    generate(model, noise, C, steps, shift, ar_window, sinks, "absolute", cache_mode,
             on_call=lambda n, s, x, t, out: calls.append((n, s, x.clone(), list(t), out.clone())))
    x0s = {}  # chunk -> committed x0
    stepx = {}  # (chunk, step) -> input
    worst = 0.0
    for n, s, x, t, out in calls:
        if s == "commit":
            x0s[n] = x
        else:
            stepx[(n, s)] = x
    for n, s, x, t, out in calls:
        if cache_mode == "commit":
            hist = [x0s[m] for m in range(n)]
            ts = [0.0] * (n * C)
        else:
            hist = [stepx[(m, s)] for m in range(n)]
            ts = list(t) * n
        full_x = torch.cat(hist + [x], dim=1)
        full_t = ts + list(t)
        full = model.forward_full(full_x, full_t, C, sinks=sinks, window=window)
        worst = max(worst, rel_err(out, full[:, n * C:]))
    check("%s: AR == full forward (%d passes, worst)" % (label, len(calls)), worst, tol)


def rope_complex(x, fpos, hp, wp):
    """RoPE through complex multiplication (the official formulation) - independent of rope_apply."""
    n, T, H, d = x.shape
    df, dh, dw = rope_axis_dims(d)

    def freqs(npos, da):
        inv = 1.0 / (10000.0 ** (np.arange(0, da, 2, dtype=np.float64) / da))
        return np.outer(np.asarray(npos, dtype=np.float64), inv)

    ang = np.zeros((n, hp, wp, d // 2))
    ang[..., : df // 2] = freqs(fpos, df)[:, None, None, :]
    ang[..., df // 2: df // 2 + dh // 2] = freqs(range(hp), dh)[None, :, None, :]
    ang[..., df // 2 + dh // 2:] = freqs(range(wp), dw)[None, None, :, :]
    rot = torch.polar(torch.ones(n * T, d // 2, dtype=torch.float64), torch.from_numpy(ang.reshape(n * T, d // 2)))
    xc = torch.view_as_complex(x.double().reshape(n * T, H, d // 2, 2).contiguous())
    return torch.view_as_real(xc * rot[:, None, :]).reshape(n, T, H, d)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.join(REPO, "tests", "data"))
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    P = lambda n: os.path.join(a.data_dir, n)  # noqa: E731
    cfg = Config.load(P("tiny_config.json"))
    sd, _ = st_io.load(P("tiny_weights.safetensors"))
    ctx = st_io.load(P("tiny_context.safetensors"))[0]["context"]
    model = CausalWanDiT(cfg, sd, device=a.device)
    model.set_context(ctx)
    C = 3

    print("1. AR loop vs block-causal full forward")
    noise = st_io.load(P("golden_commit_full.safetensors"))[0]["noise"]
    ar_vs_full(model, noise, C, 4, 5.0, "commit", None, 0, "commit, W=12 S=0 (all frames)")
    ar_vs_full(model, noise, C, 4, 5.0, "commit", 6, 0, "commit, W=6 S=0 (masked full)")
    ar_vs_full(model, noise, C, 4, 5.0, "commit", 3, 3, "commit, W=3 S=3 (masked full)")
    ar_vs_full(model, noise, C, 4, 5.0, "commit", 5, 2, "commit, W=5 S=2 (masked full)")
    ar_vs_full(model, noise, C, 4, 5.0, "step", None, 0, "step, W=12 S=0 (all frames)")
    ar_vs_full(model, noise, C, 4, 5.0, "step", 6, 1, "step, W=6 S=1 (masked full)")

    print("2. ring cache vs naive dict cache")
    for mode, W, S, rope in [("commit", 4, 2, "window"), ("commit", 5, 1, "absolute"), ("commit", 3, 0, "window"),
                             ("step", 4, 1, "absolute"), ("step", 7, 2, "window"), ("commit", 6, 4, "window")]:
        ring = generate(model, noise, C, 4, 5.0, W, S, rope, mode, cache_impl="ring")
        naive = generate(model, noise, C, 4, 5.0, W, S, rope, mode, cache_impl="naive")
        check("%s W=%d S=%d %s" % (mode, W, S, rope), rel_err(ring, naive), 1e-6)
    for mode in ("commit", "step"):
        absl = generate(model, noise, C, 4, 5.0, 12, 0, "absolute", mode)
        win = generate(model, noise, C, 4, 5.0, 12, 0, "window", mode)
        check("%s W=12 S=0: window RoPE == absolute RoPE (visible list = 0..f)" % mode, rel_err(win, absl), 0)

    print("3. golden files reproduce")
    for fn in sorted(os.listdir(a.data_dir)):
        if not fn.startswith("golden_") or fn == "golden_layer_tiny.safetensors" or not fn.endswith(".safetensors"):
            continue
        g, m = st_io.load(P(fn))
        lat = generate(model, g["noise"], int(m["chunk_frames"]), int(m["steps"]), float(m["shift"]), int(m["window"]),
                       int(m["sinks"]), m["rope_mode"], m["cache_mode"])
        check(fn, rel_err(lat, g["latents"]), 1e-6)
    g, _ = st_io.load(P("golden_layer_tiny.safetensors"))
    out = model.forward_full(g["x"], g["t"].tolist(), 3)
    check("golden_layer_tiny: out (via forward_full)", rel_err(out, g["out"]), 1e-6)
    check("golden_layer_tiny: text_emb", rel_err(model.text_emb, g["text_emb"]), 1e-6)

    print("4. pieces vs independent formulations")
    gen = torch.Generator().manual_seed(0)
    for d, hp, wp, fpos in [(64, 4, 4, [0, 1, 2]), (64, 3, 5, [7, 2, 1000]), (128, 2, 3, [5, 6]), (96, 3, 2, [1, 9])]:
        x = torch.randn(len(fpos), hp * wp, 2, d, generator=gen, dtype=torch.float64)
        check("RoPE d=%d grid %dx%d frames %s" % (d, hp, wp, fpos), rel_err(rope_apply(x, fpos, hp, wp),
                                                                           rope_complex(x, fpos, hp, wp)), 1e-12)
    dims = (rope_axis_dims(64), rope_axis_dims(128))
    check("RoPE axis dims d=64 -> %s, d=128 -> %s" % dims, float(dims != ([24, 20, 20], [44, 42, 42])), 0)
    ts = sampler_timesteps(4, 5.0)
    check("timesteps steps=4 shift=5 -> %s" % ["%.4f" % v for v in ts],
          max(abs(u - v) for u, v in zip(ts, [1000.0, 937.5, 2500.0 / 3.0, 625.0])), 1e-9)
    x = torch.randn(16, 3, 8, 8, generator=gen).to(model.device)
    conv = F.conv3d(x[None], model.W["patch_embedding.weight"], model.W["patch_embedding.bias"], stride=(1, 2, 2))
    check("patch embedding == conv3d + flatten(f,i,j)",
          rel_err(model.patch_embed(x).reshape(-1, cfg.dim), conv[0].flatten(1).t()), 1e-6)
    u = torch.randn(3, 16, 64, generator=gen)
    ref = torch.einsum("fhwpqrc->cfphqwr", u.reshape(3, 4, 4, 1, 2, 2, 16)).reshape(16, 3, 8, 8)
    check("unpatchify == einsum('fhwpqrc->cfphqwr')", rel_err(model.unpatchify(u, 3, 4, 4), ref), 0)

    print("5. checkpoint names")
    xin, tin = g["x"], g["t"].tolist()
    ref = model.forward_full(xin, tin, 3)
    for label, conv_name in [("diffusers names (norm2 <-> norm3)", official_to_diffusers),
                             ("model. prefix", lambda n: "model." + n),
                             ("generator.model. prefix", lambda n: "generator.model." + n)]:
        sd2 = {conv_name(k): v for k, v in sd.items()}
        if label.startswith("diffusers"):
            assert "blocks.0.norm2.weight" in sd2 and "scale_shift_table" in sd2 and "blocks.0.ffn.net.0.proj.weight" in sd2
        m2 = CausalWanDiT(cfg, sd2, device=a.device)
        m2.set_context(ctx)
        check(label, rel_err(m2.forward_full(xin, tin, 3), ref), 0)

    print("6. st_io")
    x = torch.randn(1000, generator=gen) * 10.0 ** torch.randint(-30, 30, (1000,), generator=gen).double()
    x = torch.cat([x.float(), torch.tensor([0.0, -0.0, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.0e38, -1e-40])])
    check("bf16 rounding == torch .to(bfloat16)", rel_err(st_io.round_bf16(x), x.to(torch.bfloat16).float()), 0)
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        ts_in = {"a": torch.randn(3, 4, generator=gen).half(), "b": torch.arange(5), "c": x.double(),
                 "d": torch.tensor([True, False]), "e": torch.zeros(0, 3)}
        st_io.save(os.path.join(td, "t.safetensors"), ts_in, {"k": "v"})
        back, meta = st_io.load(os.path.join(td, "t.safetensors"))
        same = all(torch.equal(ts_in[k], back[k]) and ts_in[k].dtype == back[k].dtype for k in ts_in) and meta == {"k": "v"}
        check("safetensors write/read round trip (F16, I64, F64, BOOL, empty)", float(not same), 0)

    print("self-check: %s" % ("all passed" if not FAILS else "FAILED: %s" % FAILS))
    return 0 if not FAILS else 1


if __name__ == "__main__":
    sys.exit(main())
