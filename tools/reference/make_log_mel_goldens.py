"""Write tests/data/log_mel_golden.safetensors: a deterministic 1.5 s test signal and its log-mel features.

Signal (16 kHz, float32): a 100 Hz -> 6 kHz exponential chirp, tones at 440 Hz and 2.5 kHz, and
N(0, 0.01^2) noise (numpy PCG64 seed 1234), with 0.1 s of digital silence at the start so the floor is
exercised. Tensors: `audio` F32 [24000], `log_mel` F32 [frames, 80], `filterbank` F32 [80, 201].
Deterministic: same bytes every run.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import log_mel_ref as ref  # noqa: E402
import st_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data",
                   "log_mel_golden.safetensors")


def test_signal(sr=16000, seconds=1.5):
    n = int(sr * seconds)
    t = np.arange(n, dtype=np.float64) / sr
    f0, f1 = 100.0, 6000.0
    k = np.log(f1 / f0) / seconds  # instantaneous frequency f0 * exp(k t)
    chirp = 0.3 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1.0) / k)
    tones = 0.2 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 2500.0 * t + 0.3)
    noise = np.random.Generator(np.random.PCG64(1234)).normal(0.0, 0.01, n)
    x = chirp + tones + noise
    x[: int(0.1 * sr)] = 0.0
    return x.astype(np.float32)


def main():
    c = ref.DEFAULT
    x = test_signal(c["sample_rate"])
    feats = ref.log_mel(x, **c)
    feats_t = ref.torch_log_mel(x, **c)
    fb = ref.mel_filterbank(c["sample_rate"], c["n_fft"], c["n_mels"], c["fmin"], c["fmax"])

    # checks that would catch a broken reference
    assert feats.shape == (ref.num_frames(len(x), c["n_fft"], c["hop"]), c["n_mels"]) == (148, 80), feats.shape
    d = np.abs(feats - feats_t).max()
    print("numpy vs torch.stft max abs diff: %.3g" % d)
    assert d < 1e-9
    floor = np.log(float(np.float32(c["log_floor"])))
    silent = ref.num_frames(int(0.1 * c["sample_rate"]), c["n_fft"], c["hop"])  # frames fully in the silence
    assert np.all(feats[:silent] == floor), "silent frames must sit exactly on the floor"
    assert np.all(feats[silent + 1:] > floor + 1), "signal frames must be well above the floor"
    # each triangle has unit area in Hz / 2 (Slaney norm): sum_k w_k * df ~= 1 for wide filters
    area = fb.sum(axis=1) * c["sample_rate"] / c["n_fft"]
    print("filter areas: first %.3f, last %.3f" % (area[0], area[-1]))
    assert abs(area[-1] - 1.0) < 0.05
    # prefix property (causality): features of a truncated signal are a prefix of the full ones
    part = ref.log_mel(x[:10000], **c)
    assert np.array_equal(part, feats[: len(part)])
    for L in (0, 1, 2, 10):
        print("latent %d -> mel window (first, end, pad, end_sample) = %s" % (L, ref.latent_audio_window(L, 32)))

    st_io.save(OUT, {
        "audio": x,
        "log_mel": feats.astype(np.float32),
        "filterbank": fb.astype(np.float32),
    }, metadata={"config": "sr=16000 n_fft=400 hop=160 n_mels=80 fmin=0 fmax=8000 log_floor=1e-10 ln slaney"})
    print("wrote %s (%d bytes), log_mel range [%.3f, %.3f]" % (os.path.normpath(OUT), os.path.getsize(OUT),
                                                              feats.min(), feats.max()))


if __name__ == "__main__":
    main()
