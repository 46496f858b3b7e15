"""Small shared helpers: paths, device/precision setup, PNG and WAV writing, timers."""

import json
import os
import struct
import sys
import time
import wave
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.normpath(os.path.join(HERE, "..", "reference"))
if REF not in sys.path:
    sys.path.insert(0, REF)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def setup_device(name):
    """'cpu', 'cuda', 'cuda:N' or 'auto' -> torch.device (falls back to CPU when CUDA is missing)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device %s: CUDA is not available" % name)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def autocast(dev, enabled=True):
    """bf16 autocast on CUDA; a no-op context on CPU."""
    if dev.type == "cuda" and enabled:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return _Null()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def generator(seed, dev):
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))
    return g


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def s(self):
        return time.time() - self.t0


def log(*a):
    print(*a, flush=True)


def write_png(path, rgb):
    """rgb: uint8 array [H, W, 3] (or float in [0, 1]) -> PNG file (zlib + struct, no PIL)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[i].tobytes() for i in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def frames_to_strip(frames, cols=None):
    """frames [N, 3, H, W] float -> uint8 image [rows*H, cols*W, 3] (a grid, row-major)."""
    f = torch.as_tensor(frames).detach().float().clamp(0, 1).cpu()
    n, _, H, W = f.shape
    cols = cols or n
    rows = (n + cols - 1) // cols
    out = torch.zeros(3, rows * H, cols * W)
    for i in range(n):
        r, c = divmod(i, cols)
        out[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = f[i]
    return (out.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def write_wav(path, samples, sr=16000):
    a = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((a * 32767.0).round().astype("<i2").tobytes())


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")
