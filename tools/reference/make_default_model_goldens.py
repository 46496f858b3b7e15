"""Write tests/data/golden_default_model.safetensors: one block-causal forward of the embedded default
avatar (assets/dit.safetensors, audio-conditioned) computed by the PyTorch reference (wan_causal.py),
for the C++ engine's audio path to match.

Inputs: x ~ N(0, 1) [16, 6, 16, 16] (numpy PCG64 seed 7); per-frame timesteps: chunk 0 clean (t = 0, as
the commit pass), chunk 1 at t = 666.67; the log-mel windows of latent frames 0..5 of
assets/sample_speech.wav (ar_loop.latent_mel_windows). Output `v` [16, 6, 16, 16], float64 math.
Tensors: x, t (F64), windows [6, 32, 80], v. Deterministic.
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import ar_loop  # noqa: E402
import log_mel_ref  # noqa: E402
import st_io  # noqa: E402
import wan_causal  # noqa: E402


def main():
    assets = os.path.join(ROOT, "assets")
    model = wan_causal.load_model(os.path.join(assets, "dit.safetensors"), os.path.join(assets, "config.json"),
                                  dtype=torch.float64)
    samples, sr = ar_loop.read_wav(os.path.join(assets, "sample_speech.wav"))
    assert sr == 16000
    mel = log_mel_ref.log_mel(samples, **log_mel_ref.DEFAULT)
    windows = ar_loop.latent_mel_windows(mel, 6, 32)
    x = np.random.Generator(np.random.PCG64(7)).standard_normal((16, 6, 16, 16)).astype(np.float32)
    t = np.array([0.0] * 3 + [666.6666666666666] * 3)
    model.set_audio(torch.from_numpy(np.asarray(windows, dtype=np.float64)))
    with torch.no_grad():
        v = model.forward_full(torch.from_numpy(x).double(), torch.from_numpy(t), 3)
    st_io.save(os.path.join(ROOT, "tests", "data", "golden_default_model.safetensors"),
               {"x": x, "t": t, "windows": np.asarray(windows, dtype=np.float32), "v": v.float().numpy()})
    print("v rms", float(v.pow(2).mean().sqrt()))


if __name__ == "__main__":
    main()
