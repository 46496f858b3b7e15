#!/usr/bin/python3
"""Regenerate the TAEHV decoder goldens in tests/data/ (fixed seeds, byte-for-byte reproducible).

    /usr/bin/python3 tools/reference/make_taehv_goldens.py [--out-dir tests/data]

Writes (about 0.6 MB in total):
  taehv_tiny_weights.safetensors  random decoder weights at widths (32, 16, 8, 8) instead of (256, 128, 64, 64),
                                  taew2_1 key names, stored F16; decoder.7.conv.weight is stored with 2*c0 rows
                                  (a loader keeps the last c0, as patch_tgrow_layers does); plus stray
                                  `encoder.0.*` tensors that a decoder loader must ignore
  taehv_golden.safetensors        `latents` F32 [16, 4, 4, 6] (DiT layout and space, N(0, 1.5^2)) and `out_raw`
                                  F32 [13, 32, 48, 3] (batch decode, trimmed, before the clamp to [0, 1];
                                  channels-last frames, the engine's output layout)
Checks and prints: stream vs batch, fp32 vs fp64, frame counts for T = 1..4, shorter streams are prefixes.
"""

import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
import taehv_ref as R  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "data")
WIDTHS, LATENT = (32, 16, 8, 8), 16
T, HL, WL = 4, 4, 6
SEED_WEIGHTS = 20250401
SEED_LATENTS = 20250402


def rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


def make_weights(seed):
    """He-scaled conv weights N(0, 2/fan_in) (MemBlock conv.4: N(0, 0.25/fan_in), so the residual
    stream stays O(1); the output conv: N(0, 0.05/fan_in), for outputs mostly in [0, 1]), biases U(-0.05, 0.05), the output bias 0.5 + U(-0.05, 0.05); rounded to f16."""
    r = rng(seed)
    shapes = dict(R.expected_shapes(WIDTHS, LATENT))
    c0 = WIDTHS[0]
    shapes["decoder.7.conv.weight"] = (2 * c0, c0, 1, 1)  # patch_tgrow_layers case: keep the last c0 rows
    shapes["encoder.0.weight"] = (8, 3, 3, 3)             # must be ignored by decoder loaders
    shapes["encoder.0.bias"] = (8,)
    out = {}
    for name, shape in sorted(shapes.items()):
        if name.endswith(".bias"):
            a = r.uniform(-0.05, 0.05, size=shape) + (0.5 if name == "decoder.22.bias" else 0.0)
        else:
            gain = 0.25 if name.endswith("conv.4.weight") else 0.05 if name == "decoder.22.weight" else 2.0
            a = r.standard_normal(size=shape) * np.sqrt(gain / np.prod(shape[1:]))
        out[name] = torch.from_numpy(a.astype(np.float16))
    return out


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def main(argv=None):
    ap = argparse.ArgumentParser(description="regenerate the TAEHV decoder goldens")
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the fp32 results do not depend on the machine's core count
    os.makedirs(a.out_dir, exist_ok=True)
    P = lambda n: os.path.join(a.out_dir, n)  # noqa: E731
    gen = {"generator": "tools/reference/make_taehv_goldens.py"}

    w = make_weights(SEED_WEIGHTS)
    st_io.save(P("taehv_tiny_weights.safetensors"), w, dict(gen, format="pt"))
    sd, _ = st_io.load(P("taehv_tiny_weights.safetensors"))
    W, widths, latent = R.load_decoder_weights(sd)
    assert tuple(widths) == WIDTHS and latent == LATENT and len(W) == len(R.expected_shapes(WIDTHS, LATENT))
    assert torch.equal(W["decoder.7.conv.weight"], sd["decoder.7.conv.weight"][WIDTHS[0]:].float())
    Wp, _, _ = R.load_decoder_weights({"model." + k: v for k, v in sd.items()})  # prefixed names load the same
    assert all(torch.equal(Wp[k], W[k]) for k in W)

    lat = torch.from_numpy((1.5 * rng(SEED_LATENTS).standard_normal(size=(LATENT, T, HL, WL))).astype(np.float32))
    z = R.dit_to_ntchw(lat)
    with torch.no_grad():
        batch = R.decode_batch(W, z)
        stream = R.decode_stream(W, z)
        batch64 = R.decode_batch({k: v.double() for k, v in W.items()}, z.double())
        counts = [R.decode_stream(W, z[:, :t]).shape[1] for t in (1, 2, 3, 4)]
        prefix_ok = all(torch.equal(R.decode_stream(W, z[:, :t]), stream[:, :1 + 4 * (t - 1)]) for t in (1, 2, 3))
    assert list(batch.shape) == [1, 1 + 4 * (T - 1), 3, 8 * HL, 8 * WL]
    out_raw = batch[0].permute(0, 2, 3, 1).contiguous()  # [N, H, W, 3]
    st_io.save(P("taehv_golden.safetensors"), {"latents": lat, "out_raw": out_raw},
               dict(gen, widths=",".join(map(str, WIDTHS)), latent=str(LATENT), seed_weights=str(SEED_WEIGHTS),
                    seed_latents=str(SEED_LATENTS)))

    e_sb, e_64 = rel_err(stream, batch), rel_err(batch, batch64)
    lo, hi = (batch < 0).float().mean().item(), (batch > 1).float().mean().item()
    print("frames for T = 1, 2, 3, 4: %s" % counts)
    print("stream vs batch rel err %.3g, fp32 vs fp64 %.3g, prefix decodes identical: %s" % (e_sb, e_64, prefix_ok))
    print("out: mean %.3f, std %.3f, fraction < 0: %.3f, > 1: %.3f" % (batch.mean().item(), batch.std().item(), lo, hi))
    # the golden must exercise the clamp on both sides and carry signal in between
    ok = counts == [1, 5, 9, 13] and e_sb < 1e-5 and e_64 < 1e-5 and prefix_ok and 0.01 < lo < 0.5 and 0.01 < hi < 0.5
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
