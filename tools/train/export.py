"""Export the trained default avatar model in the engine's formats, and load it back.

    dit.safetensors      official Wan2.1 key names + audio_embedding.* (no text_embedding.*), F16 by default
    decoder.safetensors  TAEHV decoder in the taew2_1 layout (decoder.1 .. decoder.22), F32 by default
    config.json          our model JSON (engine/model/config.cpp fields) + audio fields + "defaults"
                         (inference settings) + "decoder" / "video" / "training" notes
"""

import json
import os

import torch

import common  # noqa: F401  (sets sys.path)
import st_io
import taehv_ref
from wan_causal import CausalWanDiT, Config, expected_shapes

MODEL_KEYS = ("name", "dim", "ffn_dim", "heads", "layers", "in_channels", "out_channels", "patch_size", "freq_dim",
              "eps", "conditioning", "audio_mels", "audio_window", "audio_tokens")


def export(out_dir, dit, vae, cfg, defaults, dit_dtype="F16", dec_dtype="F32", extra=None):
    """Write the three files; returns {file: bytes}. `dit` is an AudioWanDiT, `vae` a TAEHV."""
    os.makedirs(out_dir, exist_ok=True)
    sd = dit.export_state_dict()
    want = expected_shapes(Config(cfg))
    if set(sd) != set(want):
        raise RuntimeError("DiT keys differ from expected_shapes: missing %s, extra %s" % (
            sorted(set(want) - set(sd))[:5], sorted(set(sd) - set(want))[:5]))
    for k, shp in want.items():
        if list(sd[k].shape) != list(shp):
            raise RuntimeError("%s: shape %s, expected %s" % (k, list(sd[k].shape), shp))
    meta = {"format": "pt", "generator": "tools/train", "model": cfg.get("name", "avatarstream-default"),
            "conditioning": "audio"}
    meta.update({"default_" + k: str(v) for k, v in defaults.items()})
    st_io.save(os.path.join(out_dir, "dit.safetensors"), sd, meta, dtypes={k: dit_dtype for k in sd})
    dec = vae.decoder_state_dict()
    st_io.save(os.path.join(out_dir, "decoder.safetensors"), dec,
               {"format": "pt", "generator": "tools/train", "layout": "taew2_1 decoder",
                "widths": ",".join(str(w) for w in vae.dec_widths)}, dtypes={k: dec_dtype for k in dec})
    conf = {k: cfg[k] for k in MODEL_KEYS if k in cfg}
    conf["defaults"] = dict(defaults)
    conf["decoder"] = {"type": "taehv", "file": "decoder.safetensors", "widths": list(vae.dec_widths),
                       "latent_channels": vae.latent}
    conf["video"] = {"width": 128, "height": 128, "fps": 16, "latent_height": 16, "latent_width": 16}
    if extra:
        conf.update(extra)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(json.dumps(conf, indent=2) + "\n")
    return {n: os.path.getsize(os.path.join(out_dir, n)) for n in ("dit.safetensors", "decoder.safetensors", "config.json")}


def load_exported(out_dir, device="cpu", dtype=torch.float32):
    """-> (CausalWanDiT reference model, config dict, decoder weights dict for taehv_ref)."""
    with open(os.path.join(out_dir, "config.json")) as f:
        conf = json.load(f)
    sd, _ = st_io.load(os.path.join(out_dir, "dit.safetensors"), as_float32=True)
    model = CausalWanDiT(Config(conf), sd, device=device, dtype=dtype)
    dsd, _ = st_io.load(os.path.join(out_dir, "decoder.safetensors"), as_float32=True)
    W, widths, latent = taehv_ref.load_decoder_weights(dsd)
    W = {k: v.to(device) for k, v in W.items()}
    return model, conf, W
