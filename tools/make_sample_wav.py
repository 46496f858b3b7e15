"""Regenerate assets/sample_speech.wav: espeak-ng speech resampled to 16 kHz mono 16-bit.

    espeak-ng -v en-us -s 150 -w /tmp/raw.wav "<text>" && /usr/bin/python3 tools/make_sample_wav.py /tmp/raw.wav assets/sample_speech.wav

Resampling: a Kaiser-windowed sinc low-pass at 0.45 x 16 kHz, evaluated at the output instants (numpy only).
"""
import sys
import wave

import numpy as np


def resample(x, sr_in, sr_out, taps=64, beta=8.0):
    n_out = int(len(x) * sr_out / sr_in)
    t = np.arange(n_out) * (sr_in / sr_out)          # output instants in input samples
    cutoff = 0.45 * sr_out / sr_in                      # cycles per input sample
    out = np.zeros(n_out)
    base = np.floor(t).astype(np.int64)
    for k in range(-taps, taps + 1):
        idx = base + k
        d = t - idx
        w = np.kaiser(2 * taps + 1, beta)[k + taps] * 2 * cutoff * np.sinc(2 * cutoff * d)
        valid = (idx >= 0) & (idx < len(x))
        out[valid] += w[valid] * x[idx[valid]]
    return out


def main(src, dst):
    with wave.open(src) as f:
        sr, ch, n = f.getframerate(), f.getnchannels(), f.getnframes()
        x = np.frombuffer(f.readframes(n), dtype=np.int16).astype(np.float64).reshape(-1, ch).mean(axis=1) / 32768.0
    y = resample(x, sr, 16000)
    y = np.clip(y / max(1e-9, np.abs(y).max()) * 0.7, -1, 1)
    with wave.open(dst, "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(16000)
        f.writeframes((y * 32767).round().astype(np.int16).tobytes())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
