#!/usr/bin/python3
"""Convert a TAEHV checkpoint (taew2_1) to the engine's safetensors (taew2_1 key names, decoder only).

    /usr/bin/python3 tools/convert_taehv.py taew2_1.pth taew2_1_decoder.safetensors [--dtype f16]

Input: `taew2_1.pth` from madebyollin/taehv (a torch pickle state dict with `encoder.N.*` and
`decoder.N.*` keys), or its `safetensors/taew2_1.safetensors`; a prefix in front of the keys (`model.`,
`taehv.`, `vae.`, ...) or a nesting under `state_dict` / `model` is handled. A TGrow weight with more
rows than the decoder layer needs keeps its last rows (the public loader's patch_tgrow_layers).
Output: the 64 `decoder.*` tensors (9,844,611 parameters for taew2_1), every shape checked, F32 by
default, or F16 / BF16; `--keep-encoder` also copies `encoder.*` unchanged in layout.
Other TAEHV variants (patch size 2 such as taew2_2 / taehv1_5, the "super" decoders) are rejected.
Needs torch (any version with torch.load) and numpy; not the `safetensors` package.
"""

import argparse
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))

import st_io  # noqa: E402
from ckpt_io import read_state_dict  # noqa: E402
import taehv_ref as R  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="taew2_1.pth or taew2_1.safetensors")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--keep-encoder", action="store_true", help="also copy encoder.*")
    a = ap.parse_args(argv)

    sd = read_state_dict(a.src)
    if any(k.endswith("decoder.0.weight") for k in sd):
        sys.exit("%s: a TAEHV 'super' decoder (decoder.0.weight present); only the taew2_1 architecture is supported" % a.src)
    try:
        W, widths, latent = R.load_decoder_weights(sd)  # strips the prefix, patches TGrow rows, checks every shape
    except (ValueError, KeyError) as e:
        sys.exit("%s: %s" % (a.src, e))
    out = dict(W)
    if a.keep_encoder:
        prefix = R.find_prefix(sd)
        for k, v in sd.items():
            if k.startswith(prefix + "encoder."):
                out[k[len(prefix):]] = v.float()
    dt = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[a.dtype]
    meta = {"format": "pt", "avs.model": "taehv", "latent": str(latent), "widths": ",".join(map(str, widths)),
            "source": os.path.basename(a.src), "generator": "tools/convert_taehv.py"}
    st_io.save(a.dst, out, meta, dtypes={k: dt for k in out})
    n = sum(v.numel() for k, v in out.items() if k.startswith("decoder."))
    print("%s: %d tensors, %d decoder parameters (latent %d, widths %s), %s -> %s" %
          (a.src, len(out), n, latent, "/".join(map(str, widths)), dt, a.dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
