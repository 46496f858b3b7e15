"""Reference causal log-mel features (the definition engine/audio/log_mel.h implements), numpy float64.

    frame i  = samples [i*hop, i*hop + n_fft)       (no centre padding, no look-ahead)
    spec     = |rfft(frame * periodic_hann)|^2       (n_fft // 2 + 1 bins)
    mel      = filterbank @ spec                     (Slaney mel scale, Slaney area norm = librosa default)
    out      = ln(max(mel, log_floor))               (natural log, no per-clip normalisation)

Written from the formulas (Slaney's Auditory Toolbox mel scale: 200/3 Hz per mel below 1 kHz, log step
ln(6.4)/27 above; each triangle scaled by 2 / (f_hi - f_lo)), not copied from librosa.
"""

import math

import numpy as np

F_SP = 200.0 / 3.0
MIN_LOG_HZ = 1000.0
MIN_LOG_MEL = MIN_LOG_HZ / F_SP
LOGSTEP = math.log(6.4) / 27.0

DEFAULT = dict(sample_rate=16000, n_fft=400, hop=160, n_mels=80, fmin=0.0, fmax=8000.0, log_floor=1e-10)


def hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    lin = hz / F_SP
    log = MIN_LOG_MEL + np.log(np.maximum(hz, 1e-300) / MIN_LOG_HZ) / LOGSTEP
    return np.where(hz < MIN_LOG_HZ, lin, log)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    lin = mel * F_SP
    log = MIN_LOG_HZ * np.exp(LOGSTEP * (mel - MIN_LOG_MEL))
    return np.where(mel < MIN_LOG_MEL, lin, log)


def hann_periodic(n):
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax):
    """[n_mels, n_fft // 2 + 1] float64."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))


def num_frames(n_samples, n_fft, hop):
    return 0 if n_samples < n_fft else (n_samples - n_fft) // hop + 1


def log_mel(samples, sample_rate=16000, n_fft=400, hop=160, n_mels=80, fmin=0.0, fmax=8000.0, log_floor=1e-10):
    """samples: 1-D float array -> [frames, n_mels] float64 log-mel."""
    x = np.asarray(samples, dtype=np.float64)
    n = num_frames(len(x), n_fft, hop)
    idx = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = x[idx] * hann_periodic(n_fft)[None, :]
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = spec @ mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).T
    # the engine's floor is a float32 config value; use the same number
    return np.log(np.maximum(mel, float(np.float32(log_floor))))


def latent_audio_window(latent, window_frames, sample_rate=16000, n_fft=400, hop=160, fps=16, per_latent=4):
    """(first, end, pad_front, audio_end_sample) for latent frame `latent` (see engine/audio/log_mel.h)."""
    end_sample = (per_latent * latent + 1) * sample_rate // fps
    end = num_frames(end_sample, n_fft, hop)
    first = max(0, end - window_frames)
    return first, end, window_frames - (end - first), end_sample


def torch_log_mel(samples, **cfg):
    """Same features through torch.stft (center=False), as an independent check of the numpy path."""
    import torch

    c = dict(DEFAULT, **cfg)
    x = torch.as_tensor(np.asarray(samples, dtype=np.float64))
    win = torch.hann_window(c["n_fft"], periodic=True, dtype=torch.float64)
    spec = torch.stft(x, c["n_fft"], hop_length=c["hop"], win_length=c["n_fft"], window=win, center=False,
                      return_complex=True).abs() ** 2  # [bins, frames]
    fb = torch.as_tensor(mel_filterbank(c["sample_rate"], c["n_fft"], c["n_mels"], c["fmin"], c["fmax"]))
    mel = fb @ spec
    return torch.log(torch.clamp(mel, min=float(np.float32(c["log_floor"])))).T.numpy()
