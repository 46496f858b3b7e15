"""ckpt_io.py: read a PyTorch checkpoint (torch pickle .pth/.pt, possibly nesting the weights under
"state_dict" or "model") or a safetensors file into a {name: tensor} dict, for the converters."""

import torch

import st_io


def read_state_dict(path):
    if path.endswith(".safetensors"):
        sd, _ = st_io.load(path)
        return sd
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        sd = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model"):  # training checkpoints nest the weights
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    return {k: v for k, v in sd.items() if torch.is_tensor(v)}
