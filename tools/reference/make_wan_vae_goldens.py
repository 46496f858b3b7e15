#!/usr/bin/python3
"""Regenerate the Wan2.1 VAE decoder goldens in tests/data/ (fixed seeds, byte-for-byte reproducible).

    /usr/bin/python3 tools/reference/make_wan_vae_goldens.py [--out-dir tests/data]

Writes (about 0.9 MB in total):
  wan_vae_tiny_weights.safetensors   random decoder weights at base width dim=6 (4*dim = 24), official key
                                     names, stored BF16, plus two stray tensors (`encoder.conv1.weight`,
                                     `conv1.weight`) that a decoder loader must ignore
  wan_vae_tiny_diffusers_names.json  official -> diffusers key map of those weights (tests rename with it)
  wan_vae_golden.safetensors         `latents` F32 [16, 4, 4, 4] (DiT space, N(0,1)), `out_stream` F32
                                     [3, 13, 32, 32] (the official per-latent loop, before the clamp) and
                                     `out_batch` (the layer-by-layer formulation)
Checks and prints: stream vs batch, fp32 vs fp64, frame counts for T = 1, 2, 3, 4.
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
import wan_vae_ref as R  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "data")
DIM, ZDIM = 6, 16
T, HL, WL = 4, 4, 4
SEED_WEIGHTS = 20250301
SEED_LATENTS = 20250302


def rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


def make_weights(seed):
    """conv weights N(0, 1/fan_in), gammas 1 + N(0, 0.1^2), biases U(-0.05, 0.05); rounded to bf16."""
    r = rng(seed)
    shapes = dict(R.expected_shapes(DIM, ZDIM))
    shapes["encoder.conv1.weight"] = (DIM, 3, 3, 3, 3)   # must be ignored by decoder loaders
    shapes["conv1.weight"] = (2 * ZDIM, 2 * ZDIM, 1, 1, 1)
    out = {}
    for name, shape in sorted(shapes.items()):
        if name.endswith("gamma"):
            a = 1.0 + 0.1 * r.standard_normal(size=shape)
        elif name.endswith(".bias"):
            a = r.uniform(-0.05, 0.05, size=shape)
        else:
            a = r.standard_normal(size=shape) / np.sqrt(np.prod(shape[1:]))
        out[name] = st_io.round_bf16(torch.from_numpy(a.astype(np.float32)))
    return out


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def main(argv=None):
    ap = argparse.ArgumentParser(description="regenerate the Wan VAE goldens")
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the fp32 results do not depend on the machine's core count
    os.makedirs(a.out_dir, exist_ok=True)
    P = lambda n: os.path.join(a.out_dir, n)  # noqa: E731
    gen = {"generator": "tools/reference/make_wan_vae_goldens.py"}

    w = make_weights(SEED_WEIGHTS)
    st_io.save(P("wan_vae_tiny_weights.safetensors"), w, dict(gen, format="pt"), dtypes={k: "BF16" for k in w})
    sd, _ = st_io.load(P("wan_vae_tiny_weights.safetensors"))
    W, dim, z = R.load_decoder_weights(sd)
    assert (dim, z) == (DIM, ZDIM) and len(W) == len(R.expected_shapes(DIM, ZDIM))

    names = {k: R.official_to_diffusers(k) for k in sorted(W)}
    assert all(R.diffusers_to_official(v) == k for k, v in names.items())
    with open(P("wan_vae_tiny_diffusers_names.json"), "w") as f:
        f.write(json.dumps(names, indent=1, sort_keys=True) + "\n")
    Wd, _, _ = R.load_decoder_weights({"vae." + v: W[k] for k, v in names.items()})  # prefix + diffusers
    assert all(torch.equal(Wd[k], W[k]) for k in W)

    lat = torch.from_numpy(rng(SEED_LATENTS).standard_normal(size=(ZDIM, T, HL, WL)).astype(np.float32))
    with torch.no_grad():
        stream = R.StreamingWanVaeDecoder(W, dim, z).decode(lat)
        batch = R.decode_batch(W, dim, lat)
        W64 = {k: v.double() for k, v in W.items()}
        stream64 = R.StreamingWanVaeDecoder(W64, dim, z).decode(lat.double())
        counts = [R.StreamingWanVaeDecoder(W, dim, z).decode(lat[:, :t]).shape[1] for t in (1, 2, 3, 4)]
        prefix_ok = all(rel_err(R.StreamingWanVaeDecoder(W, dim, z).decode(lat[:, :t]), stream[:, :1 + 4 * (t - 1)]) == 0
                        for t in (1, 2, 3))
    assert list(stream.shape) == [3, 1 + 4 * (T - 1), 8 * HL, 8 * WL]
    st_io.save(P("wan_vae_golden.safetensors"), {"latents": lat, "out_stream": stream, "out_batch": batch},
               dict(gen, dim=str(DIM), z_dim=str(ZDIM), seed_weights=str(SEED_WEIGHTS), seed_latents=str(SEED_LATENTS)))

    e_sb, e_64 = rel_err(stream, batch), rel_err(stream, stream64)
    print("frames for T = 1, 2, 3, 4: %s" % counts)
    print("stream vs batch rel err %.3g, fp32 vs fp64 %.3g, prefix decodes identical: %s" % (e_sb, e_64, prefix_ok))
    print("out: max|x| %.3f, std %.3f, fraction outside [-1, 1] %.3f" %
          (stream.abs().max().item(), stream.std().item(), (stream.abs() > 1).float().mean().item()))
    ok = counts == [1, 5, 9, 13] and e_sb < 1e-5 and e_64 < 1e-5 and prefix_ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
