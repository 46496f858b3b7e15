#!/usr/bin/python3
"""Convert a Wan2.1 VAE checkpoint to the engine's safetensors (official key names).

    /usr/bin/python3 tools/convert_wan_vae.py Wan2.1_VAE.pth wan21_vae_decoder.safetensors [--dtype bf16]

Input: the official `Wan2.1_VAE.pth` (a torch pickle state dict, 194 tensors), or a safetensors repack
(Comfy-Org's `wan_2.1_vae.safetensors` and similar keep the official names; a prefix such as `vae.` or
`first_stage_model.` is stripped), or diffusers `AutoencoderKLWan` weights (`decoder.conv_in`,
`post_quant_conv`, ...; a diffusers directory's `diffusion_pytorch_model.safetensors`).
Output: `conv2.*` and `decoder.*` under the official names (108 tensors, 73,295,603 parameters at
dim 96), F32 by default or BF16; `--keep-encoder` also copies `encoder.*` and `conv1.*` (official-named
inputs only). The shapes are checked against the Wan2.1 decoder layout before anything is written.
Needs torch (any version with torch.load) and numpy; not the `safetensors` package.
"""

import argparse
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))

import st_io  # noqa: E402
from ckpt_io import read_state_dict  # noqa: E402
import wan_vae_ref as R  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="Wan2.1_VAE.pth, or a .safetensors repack / diffusers file")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--keep-encoder", action="store_true", help="also copy encoder.* and conv1.* (official names only)")
    a = ap.parse_args(argv)

    sd = read_state_dict(a.src)
    W, dim, z = R.load_decoder_weights(sd)  # renames + validates every decoder shape
    out = dict(W)
    if a.keep_encoder:
        anchor = [k for k in sd if k.endswith("decoder.conv1.weight")]
        if not anchor:
            sys.exit("--keep-encoder: %s does not use the official key names" % a.src)
        prefix = anchor[0][: -len("decoder.conv1.weight")]
        for k, v in sd.items():
            n = k[len(prefix):] if k.startswith(prefix) else None
            if n is not None and (n.startswith("encoder.") or n.startswith("conv1.")):
                out[n] = v.float()
    dt = "BF16" if a.dtype == "bf16" else "F32"
    meta = {"format": "pt", "avs.model": "wan2.1-vae", "dim": str(dim), "z_dim": str(z),
            "source": os.path.basename(a.src), "generator": "tools/convert_wan_vae.py"}
    st_io.save(a.dst, out, meta, dtypes={k: dt for k in out})
    n = sum(v.numel() for v in out.values())
    print("%s: %d tensors, %d parameters (dim %d, z_dim %d), %s -> %s" % (a.src, len(out), n, dim, z, a.dtype.upper(), a.dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
