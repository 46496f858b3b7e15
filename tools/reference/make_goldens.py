#!/usr/bin/python3
"""Regenerate the golden fixtures in tests/data/ (fixed seeds, byte-for-byte reproducible).

    /usr/bin/python3 tools/reference/make_goldens.py            # writes tests/data/*, then runs the self-check

Writes: tiny_config.json, tiny_weights.safetensors (BF16, official key names), tiny_context.safetensors,
golden_<case>.safetensors for every case in CASES, golden_layer_tiny.safetensors. For every case the ring
cache and the naive dict cache must agree (rel err <= 1e-6); the fp32 result is also compared with a
float64 run to show the precision floor a port can expect.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
from ar_loop import generate, sampler_timesteps  # noqa: E402
from wan_causal import TINY, Config, CausalWanDiT, expected_shapes  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "data")

SEED_WEIGHTS = 20250101
SEED_CONTEXT = 20250102
SEED_LAYER_X = 20250103
CONTEXT_ROWS = 20
CHUNKS, CHUNK_FRAMES, HL, WL = 4, 3, 8, 8

CASES = [
    dict(name="commit_full", cache_mode="commit", window=12, sinks=0, rope_mode="absolute", steps=4, shift=5.0, seed=101),
    dict(name="commit_w6_s1_window", cache_mode="commit", window=6, sinks=1, rope_mode="window", steps=4, shift=5.0, seed=102),
    dict(name="commit_w3_s3_absolute", cache_mode="commit", window=3, sinks=3, rope_mode="absolute", steps=4, shift=5.0, seed=103),
    dict(name="step_w6_s0_window", cache_mode="step", window=6, sinks=0, rope_mode="window", steps=4, shift=5.0, seed=104),
    dict(name="commit_steps2_shift3", cache_mode="commit", window=12, sinks=0, rope_mode="absolute", steps=2, shift=3.0, seed=105),
]


def rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


def normal(r, shape, std=1.0):
    return torch.from_numpy((r.standard_normal(size=shape) * std).astype(np.float32))


def uniform(r, shape, lo, hi):
    return torch.from_numpy(r.uniform(lo, hi, size=shape).astype(np.float32))


def make_weights(cfg, seed):
    """Random weights with official key names, rounded to bf16 (returned as float32).

    Linear/conv weights ~ N(0, gain^2/fan_in) so activations stay O(1); norm weights 1 +- 0.1; biases
    U(-0.05, 0.05); modulation tables N(0, 0.1^2) with the gate rows offset so that the residual
    branches contribute visibly. Every parameter is non-trivial."""
    r = rng(seed)
    out = {}
    for name, shape in sorted(expected_shapes(cfg).items()):
        if name.endswith("modulation"):
            t = normal(r, shape, 0.1)
            if name.startswith("blocks."):
                t[0, 2] += 0.5   # gate_msa
                t[0, 5] += 0.5   # c_gate (FFN)
        elif name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or name.endswith("norm3.weight"):
            t = 1.0 + normal(r, shape, 0.1)
        elif name.endswith(".bias"):
            t = uniform(r, shape, -0.05, 0.05)
        else:
            fan_in = int(np.prod(shape[1:]))
            gain = 0.5 if name.startswith("time_projection") else 1.0
            t = normal(r, shape, gain / np.sqrt(fan_in))
        out[name] = st_io.round_bf16(t)
    return out


def rel_err(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def case_meta(c):
    return {
        "chunk_frames": str(CHUNK_FRAMES), "steps": str(c["steps"]), "shift": repr(float(c["shift"])),
        "window": str(c["window"]), "sinks": str(c["sinks"]), "rope_mode": c["rope_mode"],
        "cache_mode": c["cache_mode"], "chunks": str(CHUNKS), "height_latent": str(HL), "width_latent": str(WL),
        "generator": "tools/reference/make_goldens.py", "seed": str(c["seed"]),
    }


def run_case(model, c, noise, impl):
    return generate(model, noise, CHUNK_FRAMES, c["steps"], c["shift"], c["window"], c["sinks"], c["rope_mode"],
                    c["cache_mode"], cache_impl=impl)


def main(argv=None):
    ap = argparse.ArgumentParser(description="regenerate tests/data goldens")
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    ap.add_argument("--device", default="cpu", help="cpu (goldens are made on cpu) or cuda")
    ap.add_argument("--no-selfcheck", action="store_true")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, torch.get_num_threads()))
    os.makedirs(a.out_dir, exist_ok=True)
    P = lambda n: os.path.join(a.out_dir, n)  # noqa: E731

    # config
    with open(P("tiny_config.json"), "w") as f:
        f.write(json.dumps(TINY, indent=2) + "\n")
    cfg = Config.load(P("tiny_config.json"))

    # weights (stored BF16; read back so every run uses exactly the stored values)
    w = make_weights(cfg, SEED_WEIGHTS)
    st_io.save(P("tiny_weights.safetensors"), w, {"format": "pt", "generator": "tools/reference/make_goldens.py"},
               dtypes={k: "BF16" for k in w})
    sd, _ = st_io.load(P("tiny_weights.safetensors"))
    assert all(torch.equal(sd[k], w[k]) for k in w), "bf16 round trip"

    # context
    ctx = normal(rng(SEED_CONTEXT), (CONTEXT_ROWS, cfg.text_dim))
    st_io.save(P("tiny_context.safetensors"), {"context": ctx}, {"generator": "tools/reference/make_goldens.py"})

    model = CausalWanDiT(cfg, sd, device=a.device, dtype=torch.float32)
    model.set_context(ctx)
    model64 = CausalWanDiT(cfg, sd, device=a.device, dtype=torch.float64)
    model64.set_context(ctx)

    ok = True
    print("%-24s %10s %10s %12s %12s %12s" % ("case", "max|lat|", "std(lat)", "ring~naive", "fp32~fp64", "max|noise|"))
    for c in CASES:
        noise = normal(rng(c["seed"]), (CHUNKS, c["steps"], cfg.in_channels, CHUNK_FRAMES, HL, WL))
        lat = run_case(model, c, noise, "ring").float().cpu()
        lat_naive = run_case(model, c, noise, "naive").float().cpu()
        lat64 = run_case(model64, c, noise, "ring").cpu()
        e_naive, e64 = rel_err(lat, lat_naive), rel_err(lat, lat64)
        bad = e_naive > 1e-6 or not torch.isfinite(lat).all()
        ok &= not bad
        print("%-24s %10.4f %10.4f %12.3e %12.3e %12.4f%s" % (c["name"], lat.abs().max().item(), lat.std().item(),
                                                             e_naive, e64, noise.abs().max().item(),
                                                             "  <-- FAIL" if bad else ""))
        st_io.save(P("golden_%s.safetensors" % c["name"]), {"noise": noise, "latents": lat}, case_meta(c))

    # single-forward fixture with intermediates
    from ar_loop import RingKVCache

    x = normal(rng(SEED_LAYER_X), (cfg.in_channels, CHUNK_FRAMES, HL, WL))
    t_val = sampler_timesteps(4, 5.0)[1]  # 937.5
    t = torch.full((CHUNK_FRAMES,), t_val, dtype=torch.float32)
    T = (HL // 2) * (WL // 2)
    cache = RingKVCache(1, cfg.layers, 0, 12, CHUNK_FRAMES, "absolute", T, cfg.heads, cfg.head_dim, model.device,
                        model.dtype)
    taps = {}
    out = model.forward_chunk(x, t.tolist(), cache.view(0, 0), taps=taps)
    layer = {
        "x": x, "t": t, "out": out.float().cpu(), "e": taps["e"].cpu(), "e0": taps["e0"].cpu(),
        "text_emb": taps["text_emb"].cpu(), "tokens_in": taps["tokens_in"].cpu(), "block0_out": taps["block0_out"].cpu(),
    }
    st_io.save(P("golden_layer_tiny.safetensors"), layer,
               {"generator": "tools/reference/make_goldens.py", "sinks": "0", "window": "12", "rope_mode": "absolute",
                "frame0": "0", "seed": str(SEED_LAYER_X)})
    print("layer golden: max|out| %.4f, max|block0_out| %.4f, max|e0| %.4f, max|text_emb| %.4f" %
          (out.abs().max().item(), taps["block0_out"].abs().max().item(), taps["e0"].abs().max().item(),
           taps["text_emb"].abs().max().item()))

    for n in sorted(os.listdir(a.out_dir)):
        if n.startswith(("tiny_", "golden_")):
            print("  %-40s %9d bytes" % (n, os.path.getsize(P(n))))

    if not ok:
        print("FAILED: ring and naive caches disagree (or non-finite latents)")
        return 1
    if not a.no_selfcheck:
        import selfcheck

        return selfcheck.main(["--data-dir", a.out_dir, "--device", a.device])
    return 0


if __name__ == "__main__":
    sys.exit(main())
