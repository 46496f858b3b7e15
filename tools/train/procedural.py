"""Procedural training data for the embedded default avatar: speech-like audio and a talking face.

Everything is batched torch and runs on CPU or CUDA (one random torch.Generator drives everything, so a
seed fixes a data set on a given device). Nothing here is learned.

Audio (16 kHz, float32 in [-1, 1]), `synth_speech`:
  * segments: syllables of 0.13-0.32 s (about 3-7 per second, per-clip speaking rate) and pauses of
    0.2-1.2 s (about 25-30 % silence in all, plus an optional leading silence);
  * voiced source: a Rosenberg glottal pulse train (time derivative = lip radiation) with per-clip pitch
    90-250 Hz, per-syllable accents, slow drift and cycle jitter, plus a little aspiration noise;
  * vowels a/e/i/o/u/schwa as 3 formant resonances (per-clip vocal-tract scale), applied as a
    time-varying spectral envelope in the STFT domain (512-point frames, hop 128) and smoothed across
    syllables (coarticulation); nasals (m/n) as a low murmur;
  * consonants: fricatives s/sh/f (shaped noise), plosives (closure then a short broadband burst),
    an optional coda 's';
  * every part (vowel, nasal, fricative, burst, coda) at a random relative level per syllable, and some
    syllables voiced through their edges (connected speech);
  * loudness: per-syllable level, slow phrase-level drift, clip normalised to a peak frame RMS of
    -12 dBFS, a random 0.3-6 Hz level wobble (up to +-8 dB) and abrupt 40-250 ms silence gaps (so that
    loudness is not predictable from the phoneme class: the mouth must follow the level), then a random
    gain of -20..0 dB and background noise (none, or -75..-48 dBFS).

Video (RGB float in [0, 1], 16 fps), `render_faces`: one fixed character drawn with signed distances and
smoothstep anti-aliasing: background gradient, shoulders, neck, ears, head with shading, hair, brows,
eyes with blinks, nose, lips and a dark-red mouth interior whose height follows `mouth_open` and whose
width follows `mouth_width` (a formant cue: wide for i/e, round for o/u); small smooth head motion.

Mouth drive (`mouth_signals`, causal): video frame p shows audio [p/16, (p+1)/16) s; its opening comes
from the RMS of the 50 ms of audio ending at (p+1)/16 s, mapped from dB to [0, 1]
(MOUTH_DB_LO..MOUTH_DB_HI) and smoothed by a one-pole filter over frames; the width from the current
vowel's F2 target, weighted by voicing.

Measurement (`measure_mouth_opening`) looks only at pixels: the vertical extent (in pixels at 128 px
scale) of mouth-interior-coloured pixels (dark and red) in the lower face region.
"""

import math

import torch
import torch.nn.functional as F

SR = 16000
FPS = 16
SPF = SR // FPS          # audio samples per video frame
LOG_FLOOR = 1e-10

# mouth opening from loudness (dBFS of the 50 ms RMS)
MOUTH_DB_LO = -50.0
MOUTH_DB_HI = -18.0
MOUTH_ALPHA = 0.65       # one-pole smoothing per video frame (1 = none)
WIDTH_ALPHA = 0.5

# vowel targets (F1, F2, F3) Hz, before the per-clip vocal-tract scale
VOWELS = torch.tensor([
    [750.0, 1250.0, 2600.0],   # a
    [500.0, 1900.0, 2600.0],   # e
    [300.0, 2250.0, 3000.0],   # i
    [480.0, 900.0, 2500.0],    # o
    [330.0, 850.0, 2300.0],    # u
    [520.0, 1500.0, 2500.0],   # schwa
])
VOWEL_P = torch.tensor([0.26, 0.2, 0.17, 0.14, 0.11, 0.12])
F2_LO, F2_HI = 850.0, 2250.0
NASAL_FORMANTS = torch.tensor([260.0, 1100.0, 2400.0])
# onset consonant: 0 none, 1 s, 2 sh, 3 f, 4 plosive, 5 nasal
CONS_P = torch.tensor([0.25, 0.14, 0.07, 0.1, 0.27, 0.17])


def _sstep(x):
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _u(shape, g, device, lo=0.0, hi=1.0):
    return torch.rand(shape, generator=g, device=device) * (hi - lo) + lo


def _n(shape, g, device):
    return torch.randn(shape, generator=g, device=device)


def _smooth_time(x, width):
    """Centred moving average over the last dim (replicate padding), width in samples (odd)."""
    if width <= 1:
        return x
    w = int(width) | 1
    shp = x.shape
    y = F.pad(x.reshape(-1, 1, shp[-1]), (w // 2, w // 2), mode="replicate")
    k = torch.full((1, 1, w), 1.0 / w, device=x.device, dtype=x.dtype)
    return F.conv1d(y, k).reshape(shp)


def _interp(x, n):
    """[B, M] control track -> [B, n] samples (linear)."""
    return F.interpolate(x[:, None, :], size=n, mode="linear", align_corners=True)[:, 0]


def _level_modulation(B, N, g, dev):
    """Per-sample gain [B, N] that decouples loudness from phonetic content: with prob. 0.7 a random
    0.3-6 Hz level wobble of up to +-8 dB, and with prob. 0.5 a few abrupt silence gaps of 40-250 ms
    (10 ms ramps) like the word gaps of synthetic TTS."""
    t = torch.arange(N, device=dev, dtype=torch.float32)[None, None] / SR
    fr = _u((B, 3, 1), g, dev, 0.3, 6.0)
    ph = _u((B, 3, 1), g, dev, 0.0, 2 * math.pi)
    a = _u((B, 3, 1), g, dev)
    a = a / a.sum(1, keepdim=True) * _u((B, 1, 1), g, dev, 0.0, 8.0) * (_u((B, 1, 1), g, dev) < 0.7).float()
    db = (a * torch.sin(2 * math.pi * fr * t + ph)).sum(1)
    gain = 10.0 ** (db / 20.0)
    n_gap = 12
    start = _u((B, n_gap, 1), g, dev, 0.0, N / SR)
    length = _u((B, n_gap, 1), g, dev, 0.04, 0.25)
    on = ((_u((B, n_gap, 1), g, dev) < 0.35) & (_u((B, 1, 1), g, dev) < 0.5)).float()
    ramp = 0.01
    inside = _sstep((t - start) / ramp) * _sstep((start + length - t) / ramp) * on      # [B, gaps, N]
    return gain * (1.0 - inside.amax(1))


def synth_speech(n_clips, n_samples, g, device="cpu", lead_silence=True, pause_p=0.13, gain_db=(-20.0, 0.0),
                 noise_db=(-75.0, -48.0), noise_off_p=0.35, modulate=True):
    """Speech-like audio. Returns dict: audio [B, N] float32, and control tracks at hop 128
    (`ctrl_hop`): f2cue [B, M] in [0, 1] (current vowel's F2 target, smoothed), voicing [B, M] in [0, 1].
    modulate: random level wobble and silence gaps on top (training data; see _level_modulation)."""
    dev = torch.device(device)
    B, N = int(n_clips), int(n_samples)
    hop, nfft = 128, 512
    M = N // hop + 1
    dur_s = N / SR
    t = torch.arange(M, device=dev, dtype=torch.float32) * (hop / SR)        # control frame times

    # ---- segments (syllables and pauses)
    K = int(dur_s / 0.12) + 8
    rate = _u((B, 1), g, dev, 0.8, 1.25)
    pause = _u((B, K), g, dev) < pause_p
    dur = torch.where(pause, _u((B, K), g, dev, 0.2, 1.2), _u((B, K), g, dev, 0.13, 0.32) / rate)
    lead = torch.zeros(B, 1, device=dev)
    if lead_silence:
        lead = _u((B, 1), g, dev, 0.0, 1.5) * (_u((B, 1), g, dev) < 0.5).float()
    ends = lead + torch.cumsum(dur, 1)
    starts = ends - dur
    seg = torch.searchsorted(ends.contiguous(), t[None].expand(B, M).contiguous(), right=True).clamp(max=K - 1)
    u = ((t[None] - starts.gather(1, seg)) / dur.gather(1, seg)).clamp(0.0, 1.0)   # phase in the segment
    active = (~pause.gather(1, seg)) & (t[None] >= lead)

    # ---- per-segment attributes
    vowel = torch.multinomial(VOWEL_P.to(dev), B * K, replacement=True, generator=g).reshape(B, K)
    cons = torch.multinomial(CONS_P.to(dev), B * K, replacement=True, generator=g).reshape(B, K)
    coda = _u((B, K), g, dev) < 0.15
    amp_db = _u((B, K), g, dev, -7.0, 0.0)
    accent = _u((B, K), g, dev, -2.0, 3.5)
    c_len = torch.where(cons == 0, torch.zeros_like(amp_db), _u((B, K), g, dev, 0.18, 0.35))
    burst_fc = _u((B, K), g, dev, 1000.0, 4000.0)
    # per-segment relative levels of the parts (dB), so that loudness is not predictable from the
    # spectral shape of a sound class (a loud nasal or fricative must still open the mouth)
    lv_nasal = 10.0 ** (_u((B, K), g, dev, -14.0, 0.0) / 20.0)
    lv_fric = 10.0 ** (_u((B, K), g, dev, -20.0, -2.0) / 20.0)
    lv_burst = 10.0 ** (_u((B, K), g, dev, -12.0, 0.0) / 20.0)
    lv_coda = 10.0 ** (_u((B, K), g, dev, -16.0, -4.0) / 20.0)
    # connected speech: some syllables keep voicing through their edges (no full dip to silence)
    floor = torch.where((_u((B, K), g, dev) < 0.35) & ((cons == 0) | (cons == 5)), _u((B, K), g, dev, 0.15, 0.5),
                        torch.zeros_like(amp_db))

    vw, cs, cl = vowel.gather(1, seg), cons.gather(1, seg), c_len.gather(1, seg)
    cd = coda.gather(1, seg).float()
    act = active.float()

    env_v = _sstep((u - cl) / 0.12) * _sstep((1.0 - u) / 0.22) * (1.0 - cd * (1.0 - _sstep((0.82 - u) / 0.1)))
    env_v = torch.maximum(env_v, floor.gather(1, seg) * (1.0 - cd))
    env_c = _sstep(u / 0.06) * _sstep((cl - u) / 0.04)                      # onset consonant span
    is_fric = ((cs >= 1) & (cs <= 3)).float()
    is_plos = (cs == 4).float()
    is_nasal = (cs == 5).float()
    env_burst = _sstep((u - (cl - 0.07)) / 0.015) * _sstep((cl - u) / 0.04) * is_plos
    env_coda = _sstep((u - 0.8) / 0.05) * _sstep((1.0 - u) / 0.03) * cd
    # slow phrase-level loudness drift (+-3 dB)
    ph = _u((B, 3), g, dev, 0.0, 2 * math.pi)
    fr = _u((B, 3), g, dev, 0.05, 0.35)
    drift_db = (torch.sin(2 * math.pi * fr[:, :, None] * t[None, None] + ph[:, :, None])).sum(1) * 1.2
    amp = 10.0 ** ((amp_db.gather(1, seg) + drift_db) / 20.0) * act

    v_amp = amp * (env_v + lv_nasal.gather(1, seg) * env_c * is_nasal)
    fric_amp = amp * env_c * is_fric * lv_fric.gather(1, seg)
    burst_amp = amp * env_burst * lv_burst.gather(1, seg)
    coda_amp = amp * env_coda * lv_coda.gather(1, seg)
    voicing = (env_v * act).clamp(0, 1)

    # ---- formant tracks (smoothed -> coarticulation); nasal portions use nasal formants
    scale = _u((B, 1), g, dev, 0.88, 1.2)
    tgt = VOWELS.to(dev)[vw]                                                # [B, M, 3]
    nas = (is_nasal * env_c)[..., None]
    tgt = tgt * (1 - nas) + NASAL_FORMANTS.to(dev) * nas
    f2cue = ((VOWELS.to(dev)[vw][..., 1] - F2_LO) / (F2_HI - F2_LO)).clamp(0, 1)
    sm = max(1, int(0.04 * SR / hop))                                       # ~40 ms
    fmt = torch.stack([_smooth_time(tgt[..., k], sm) for k in range(3)], -1) * scale[..., None]
    f2cue = _smooth_time(f2cue, sm)
    bw = torch.stack([_u((B, 1), g, dev, 60, 110), _u((B, 1), g, dev, 80, 150), _u((B, 1), g, dev, 120, 250)], -1)

    # ---- glottal source (per sample)
    f0_base = torch.exp(_u((B, 1), g, dev, math.log(90.0), math.log(250.0)))
    ph2 = _u((B, 2), g, dev, 0.0, 2 * math.pi)
    fr2 = _u((B, 2), g, dev, 0.1, 0.6)
    st = _smooth_time(accent.gather(1, seg), max(1, int(0.06 * SR / hop)))
    st = st + (torch.sin(2 * math.pi * fr2[:, :, None] * t[None, None] + ph2[:, :, None])).sum(1) * 0.8
    st = st - 1.5 * (u * act)                                               # slight fall within syllables
    f0 = f0_base * 2.0 ** (st / 12.0) * (1.0 + 0.01 * _n((B, M), g, dev))   # jitter
    f0s = _interp(f0, M * hop)[:, :N].double()
    phase = torch.cumsum(f0s / SR, 1)
    theta = (phase - torch.floor(phase)).float()
    oq = _u((B, 1), g, dev, 0.5, 0.7)
    tp, tn = 0.65 * oq, 0.35 * oq
    glot = torch.where(theta < tp, 0.5 * (1 - torch.cos(math.pi * theta / tp)),
                       torch.where(theta < tp + tn, torch.cos(math.pi * (theta - tp) / (2 * tn)),
                                   torch.zeros_like(theta)))
    src = torch.diff(glot, dim=1, prepend=glot[:, :1]) * (SR / 200.0)
    src = src / (src.pow(2).mean(1, keepdim=True).sqrt() + 1e-6)
    src = src + _u((B, 1), g, dev, 0.02, 0.12) * _n((B, N), g, dev)       # aspiration

    # ---- spectral shaping in the STFT domain
    win = torch.hann_window(nfft, periodic=True, device=dev)
    X = torch.stft(src, nfft, hop_length=hop, window=win, center=True, return_complex=True)      # [B, 257, M]
    Z = torch.stft(_n((B, N), g, dev), nfft, hop_length=hop, window=win, center=True, return_complex=True)
    f = torch.arange(nfft // 2 + 1, device=dev, dtype=torch.float32)[None, :, None] * (SR / nfft)
    Hv = torch.zeros(B, f.shape[1], M, device=dev)
    for k, a_k in enumerate((1.0, 0.7, 0.35)):
        Fk = fmt[..., k][:, None, :]
        Bk = bw[..., k][:, :, None]
        ak = a_k * (1.0 - 0.7 * nas[..., 0])[:, None, :] if k > 0 else a_k
        Hv = Hv + ak / (1.0 + ((f - Fk) / (0.5 * Bk)) ** 2)
    Hv = Hv / (1.0 + (f / 5000.0) ** 4)
    shape_s = 1.0 / (1.0 + ((f - 5500.0) / 1500.0) ** 2)
    shape_sh = 1.0 / (1.0 + ((f - 3000.0) / 900.0) ** 2)
    shape_f = 0.45 / (1.0 + (f / 7000.0) ** 2)
    fric_shape = torch.where((cs == 1)[:, None, :], shape_s, torch.where((cs == 2)[:, None, :], shape_sh, shape_f))
    shape_b = 1.0 / (1.0 + ((f - burst_fc.gather(1, seg)[:, None, :]) / 2000.0) ** 2)
    Hn = fric_shape * fric_amp[:, None] + shape_b * burst_amp[:, None] + shape_s * coda_amp[:, None]
    Y = X * (Hv * v_amp[:, None]) + Z * Hn
    y = torch.istft(Y, nfft, hop_length=hop, window=win, center=True, length=N)

    # ---- level: peak 62.5 ms RMS -> -12 dBFS, random gain, background noise
    nf = N // SPF
    fr_rms = y[:, : nf * SPF].reshape(B, nf, SPF).pow(2).mean(-1).sqrt().amax(1, keepdim=True)
    y = y * (10 ** (-12.0 / 20.0) / (fr_rms + 1e-8))
    if modulate:
        y = y * _level_modulation(B, N, g, dev)
    y = y * 10.0 ** (_u((B, 1), g, dev, gain_db[0], gain_db[1]) / 20.0)
    nz = _n((B, N), g, dev)
    # colour the noise: mix white with a 1/f-ish version (FFT domain)
    Nf = torch.fft.rfft(nz, dim=1)
    fq = torch.arange(Nf.shape[1], device=dev, dtype=torch.float32).clamp(min=1.0)
    pink = torch.fft.irfft(Nf / fq.sqrt() * math.sqrt(Nf.shape[1] / 8.0), n=N, dim=1)
    mix = _u((B, 1), g, dev)
    nz = mix * nz + (1 - mix) * pink
    nz = nz / (nz.pow(2).mean(1, keepdim=True).sqrt() + 1e-8)
    nlev = 10.0 ** (_u((B, 1), g, dev, noise_db[0], noise_db[1]) / 20.0) * (_u((B, 1), g, dev) >= noise_off_p).float()
    y = (y + nz * nlev).clamp(-1.0, 1.0)
    return {"audio": y.float(), "f2cue": f2cue, "voicing": voicing, "ctrl_hop": hop}


def frame_loudness(audio, n_frames=None):
    """RMS level in dBFS of each video frame's audio: frame p = samples [p*1000, (p+1)*1000) at 16 kHz
    (floored at -100 dB). audio [N] or [B, N] (torch or numpy) -> [n_frames] / [B, n_frames] torch."""
    a = torch.as_tensor(audio).float()
    squeeze = a.dim() == 1
    if squeeze:
        a = a[None]
    if n_frames is None:
        n_frames = a.shape[1] // SPF
    need = n_frames * SPF
    if a.shape[1] < need:
        a = F.pad(a, (0, need - a.shape[1]))
    p = a[:, :need].reshape(a.shape[0], n_frames, SPF).pow(2).mean(-1)
    db = 10.0 * torch.log10(p + 1e-10)
    return db[0] if squeeze else db


def mouth_open_raw(audio, n_frames):
    """Unsmoothed opening per video frame [B, P]: RMS dB of the 50 ms of audio ending at (p+1)/16 s,
    mapped linearly from [MOUTH_DB_LO, MOUTH_DB_HI] to [0, 1] and clamped."""
    a = torch.as_tensor(audio).float()
    B, N = a.shape
    need = n_frames * SPF
    if N < need:
        a = F.pad(a, (0, need - N))
    last = a[:, :need].reshape(B, n_frames, SPF)[:, :, SPF - 800:]
    db = 10.0 * torch.log10(last.pow(2).mean(-1) + 1e-10)
    return ((db - MOUTH_DB_LO) / (MOUTH_DB_HI - MOUTH_DB_LO)).clamp(0.0, 1.0)


def _one_pole(raw, alpha, init):
    out = torch.empty_like(raw)
    o = torch.full_like(raw[:, 0], init)
    for p in range(raw.shape[1]):
        o = o + alpha * (raw[:, p] - o)
        out[:, p] = o
    return out


def mouth_open_from_audio(audio, n_frames):
    """The causal mouth opening [B, P] in [0, 1] that the renderer draws for this audio."""
    return _one_pole(mouth_open_raw(audio, n_frames), MOUTH_ALPHA, 0.0)


def mouth_signals(speech, n_frames):
    """Causal mouth drive per video frame p (frame end (p+1)/16 s): opening [B, P] in [0, 1] from the RMS
    of the last 50 ms of audio, width cue [B, P] in [0, 1] (0.5 neutral) from the current vowel's F2
    target weighted by voicing."""
    a = speech["audio"]
    op = mouth_open_from_audio(a, n_frames)
    hop = speech["ctrl_hop"]
    idx = ((torch.arange(n_frames, device=a.device) + 1) * SPF // hop).clamp(max=speech["f2cue"].shape[1] - 1)
    cue = speech["f2cue"][:, idx]
    vo = (speech["voicing"][:, idx] * 1.5).clamp(0, 1)
    wd = _one_pole(0.5 + (cue - 0.5) * vo, WIDTH_ALPHA, 0.5)
    return op, wd


def head_motion(n_clips, n_frames, g, device="cpu", amp=1.0, speech_open=None):
    """Small smooth head motion per frame: dx, dy (pixels at 128 px scale), tilt (radians) [B, P] each.
    A sum of 3 random sinusoids per axis (0.05-0.5 Hz): stationary and bounded (|dx| <= 3.5 px,
    |dy| <= 2.2 px, |tilt| <= 4.5 deg); with `speech_open` [B, P] (the mouth opening) a causal, slowly
    smoothed speech activity adds a small nod (up to 1.5 px up, 1.5 deg tilt) that the model can infer
    from the audio."""
    dev = torch.device(device)
    t = torch.arange(n_frames, device=dev, dtype=torch.float32)[None, None] / FPS

    def track(limit):
        fr = _u((n_clips, 3, 1), g, dev, 0.05, 0.5)
        ph = _u((n_clips, 3, 1), g, dev, 0.0, 2 * math.pi)
        a = _u((n_clips, 3, 1), g, dev, 0.2, 1.0)
        a = a / a.sum(1, keepdim=True)
        return (a * torch.sin(2 * math.pi * fr * t + ph)).sum(1) * limit * amp

    dx, dy, tl = track(3.5), track(2.2), track(math.radians(4.5))
    if speech_open is not None:
        act = _one_pole(speech_open, 0.12, 0.0)
        dy = dy - 1.5 * act
        tl = tl + math.radians(1.5) * act
    return dx, dy, tl


def blinks(n_clips, n_frames, g, device="cpu", rate_hz=0.3):
    """Blink closure per frame [B, P] in [0, 1]: random starts (Poisson, ~rate_hz) with a 5-frame profile."""
    dev = torch.device(device)
    start = (_u((n_clips, n_frames), g, dev) < rate_hz / FPS).float()
    prof = torch.tensor([0.55, 1.0, 0.9, 0.5, 0.15], device=dev)
    y = F.conv1d(F.pad(start[:, None], (len(prof) - 1, 0)), prof.flip(0)[None, None])[:, 0]
    return y.clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------------------
# Face rendering

BG_TOP = (0.30, 0.36, 0.46)
BG_BOTTOM = (0.16, 0.19, 0.27)
SHIRT = (0.20, 0.40, 0.58)
SKIN = (0.93, 0.74, 0.60)
SKIN_DARK = (0.80, 0.58, 0.46)
HAIR = (0.17, 0.12, 0.10)
LIPS = (0.78, 0.36, 0.38)
MOUTH = (0.42, 0.04, 0.07)         # the mouth interior: dark red, measured by measure_mouth_opening
EYE_WHITE = (0.96, 0.96, 0.94)
IRIS = (0.22, 0.30, 0.42)
PUPIL = (0.05, 0.05, 0.07)
BROW = (0.22, 0.15, 0.12)


def _cov(sdf, aa=0.75):
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return _sstep((aa - sdf) / (2 * aa))


def _sd_ellipse(x, y, a, b):
    """Approximate signed distance to the ellipse (x/a)^2 + (y/b)^2 = 1: first order (exact on the curve),
    bounded below by the distance to the bounding box so that very thin ellipses (a closed mouth or
    eye) stay thin far from their centre."""
    fx, fy = x / a, y / b
    f = fx * fx + fy * fy - 1.0
    gx, gy = 2 * fx / a, 2 * fy / b
    d = f / torch.sqrt(gx * gx + gy * gy + 1e-6)
    return torch.maximum(d, torch.maximum(x.abs() - a, y.abs() - b))


def _sd_capsule(x, y, ax, ay, bx, by, r):
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    h = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0)
    return torch.sqrt((px - dx * h) ** 2 + (py - dy * h) ** 2 + 1e-9) - r


def _paint(img, cov, color):
    c = torch.tensor(color, device=img.device, dtype=img.dtype)[None, :, None, None]
    a = cov[:, None]
    return img * (1 - a) + c * a


def render_faces(mouth_open, mouth_width, blink, dx, dy, tilt, size=128, chunk=512):
    """Render frames [N, 3, size, size] in [0, 1] from per-frame parameters (1-D tensors of length N,
    one device). Geometry is defined at 128 px and scaled."""
    outs = []
    for s in range(0, mouth_open.shape[0], chunk):
        sl = slice(s, s + chunk)
        outs.append(_render(mouth_open[sl], mouth_width[sl], blink[sl], dx[sl], dy[sl], tilt[sl], size))
    return torch.cat(outs, 0)


def _render(mouth_open, mouth_width, blink, dx, dy, tilt, size):
    dev = mouth_open.device
    n = mouth_open.shape[0]
    k = size / 128.0
    pix = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / k     # pixel centres in 128 units
    Y = pix[None, :, None].expand(n, size, size)
    X = pix[None, None, :].expand(n, size, size)
    col = lambda v: v[:, None, None]  # noqa: E731
    aa = 0.75 / k                                                               # AA width in 128 units

    def cov(sdf):
        return _cov(sdf, aa)

    # background: vertical gradient + soft vignette
    tt = (Y / 128.0)[:, None]
    top = torch.tensor(BG_TOP, device=dev)[None, :, None, None]
    bot = torch.tensor(BG_BOTTOM, device=dev)[None, :, None, None]
    img = top * (1 - tt) + bot * tt
    vig = 1.0 - 0.18 * (((X - 64) / 64) ** 2 + ((Y - 64) / 64) ** 2)[:, None]
    img = img * vig

    # head frame: rotate about the neck pivot, translate
    px, py = 64.0 + col(dx), 98.0 + col(dy)
    c, s = torch.cos(col(tilt)), torch.sin(col(tilt))
    rx, ry = X - px, Y - py
    lx = c * rx + s * ry                     # head-local, origin at the pivot
    ly = -s * rx + c * ry
    hx, hy = lx, ly + 40.0                   # origin at the head centre (64, 58) at rest

    # shoulders and neck (follow the translation a little, no tilt)
    sx = X - 64.0 - 0.3 * col(dx)
    img = _paint(img, cov(_sd_ellipse(sx, Y - 150.0, 62.0, 40.0)), SHIRT)
    neck = _sd_capsule(X - 0.6 * col(dx), Y - 0.6 * col(dy), 64.0, 92.0, 64.0, 118.0, 13.0)
    img = _paint(img, cov(neck), SKIN_DARK)

    # hair behind the head, ears, head
    img = _paint(img, cov(_sd_ellipse(hx, hy + 8.0, 37.5, 40.0)), HAIR)
    for sgn in (-1.0, 1.0):
        img = _paint(img, cov(_sd_ellipse(hx - sgn * 33.0, hy - 2.0, 5.0, 8.0)), SKIN_DARK)
    head = _sd_ellipse(hx, hy, 33.0, 41.0)
    rr = ((hx / 33.0) ** 2 + (hy / 41.0) ** 2).clamp(0, 1)
    shade = (1.0 - 0.16 * rr ** 1.5 - 0.05 * (hx / 33.0))[:, None]
    skin = torch.tensor(SKIN, device=dev)[None, :, None, None] * shade
    a = cov(head)[:, None]
    img = img * (1 - a) + skin * a

    # hair on top: a cap minus the face opening
    cap = torch.maximum(_sd_ellipse(hx, hy + 15.0, 36.0, 30.0), -_sd_ellipse(hx, hy - 7.0, 31.0, 35.0))
    img = _paint(img, cov(cap) * cov(head - 1.0), HAIR)

    # brows, eyes
    bl = blink.clamp(0, 1)
    for sgn in (-1.0, 1.0):
        ex, ey = hx - sgn * 12.5, hy + 2.0
        brow = _sd_capsule(hx, hy, sgn * 7.0, -11.0, sgn * 18.5, -10.0, 1.3)
        img = _paint(img, cov(brow), BROW)
        eh = 4.6 * (1.0 - 0.97 * col(bl))
        eye = _sd_ellipse(ex, ey, 6.8, eh)
        img = _paint(img, cov(eye), EYE_WHITE)
        iris = torch.maximum(_sd_ellipse(ex, ey, 3.4, 3.4), eye)
        img = _paint(img, cov(iris), IRIS)
        pupil = torch.maximum(_sd_ellipse(ex, ey, 1.6, 1.6), eye)
        img = _paint(img, cov(pupil), PUPIL)
        lash = torch.maximum(_sd_ellipse(ex, ey, 7.2, eh + 0.9), -_sd_ellipse(ex, ey + 0.6, 7.2, eh + 0.2))
        img = _paint(img, cov(lash) * (ey < 0.5).float(), BROW)

    # nose
    img = _paint(img, cov(_sd_ellipse(hx, hy - 11.0, 3.8, 2.6)), SKIN_DARK)

    # mouth: lips, then the dark-red interior
    op = mouth_open.clamp(0, 1)
    wc = mouth_width.clamp(0, 1)
    half_w = 9.5 * (0.82 + 0.36 * col(wc)) * (1.0 - 0.1 * col(op))
    half_h = 0.12 + 6.6 * col(op)
    mx, my = hx, hy - 22.0
    img = _paint(img, cov(_sd_ellipse(mx, my, half_w + 1.6, half_h + 2.1)), LIPS)
    img = _paint(img, cov(_sd_ellipse(mx, my, half_w, half_h)), MOUTH)
    return img.clamp(0.0, 1.0)


def mouth_score(frames):
    """Per-pixel soft 'mouth interior' score in [0, 1] (dark and red). frames [N, 3, H, W] float [0, 1]."""
    r, g, b = frames[:, 0], frames[:, 1], frames[:, 2]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (torch.sigmoid((0.27 - lum) / 0.035) * torch.sigmoid((r - g - 0.17) / 0.035)
            * torch.sigmoid((r - 0.2) / 0.04))


def measure_mouth_opening(frames):
    """Mouth opening from pixels alone -> [N] (pixels at 128 px scale; ~0 when closed, ~13 wide open).

    frames: [N, H, W, 3] (uint8 or float in [0, 1]) or [N, 3, H, W] float. In the lower face region
    (rows 0.5H..0.95H, cols 0.2W..0.8W) each pixel gets a soft dark-red score; each column's score sum
    is its interior height; the opening is the mean of the 5 tallest columns (robust to width changes,
    head motion and blur)."""
    x = torch.as_tensor(frames)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float()
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    N, _, H, W = x.shape
    reg = x[:, :, int(0.5 * H):int(0.95 * H), int(0.2 * W):int(0.8 * W)]
    cols = mouth_score(reg).sum(1)                                           # [N, cols]
    top = cols.topk(min(5, cols.shape[1]), dim=1).values.mean(1)
    return top * (128.0 / H)


def pearson(a, b):
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    a, b = a - a.mean(), b - b.mean()
    den = (a.pow(2).sum() * b.pow(2).sum()).sqrt()
    return float((a * b).sum() / den) if den > 0 else 0.0


# ------------------------------------------------------------------------------------------------------
# Log-mel (the engine's definition, tools/reference/log_mel_ref.py) in torch, batched, float32

_FB_CACHE = {}


def mel_filterbank_torch(device):
    key = str(device)
    if key not in _FB_CACHE:
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
        import log_mel_ref

        fb = log_mel_ref.mel_filterbank(SR, 400, 80, 0.0, 8000.0)
        _FB_CACHE[key] = torch.from_numpy(fb).float().to(device)
    return _FB_CACHE[key]


def log_mel_torch(audio):
    """audio [B, N] -> log-mel [B, frames, 80] (frame i = samples [160 i, 160 i + 400), periodic Hann,
    |rfft|^2, Slaney mel, ln(max(., 1e-10))). float32 twin of log_mel_ref.log_mel."""
    a = audio.float()
    B, N = a.shape
    n = 0 if N < 400 else (N - 400) // 160 + 1
    win = torch.hann_window(400, periodic=True, device=a.device)
    spec = torch.stft(a, 400, hop_length=160, win_length=400, window=win, center=False,
                      return_complex=True)[:, :, :n]
    pw = spec.real ** 2 + spec.imag ** 2                                     # [B, 201, n]
    mel = torch.einsum("mk,bkn->bnm", mel_filterbank_torch(a.device), pw)
    return torch.log(torch.clamp(mel, min=float(torch.tensor(LOG_FLOOR, dtype=torch.float32))))


def latent_window_index(n_latents, window=32):
    """(idx [n_latents, window] long mel-frame indices, valid [n_latents, window] bool) per
    engine/audio/log_mel.h latent_audio_window: the window of latent L ends at mel frame
    end(L) = frames fully inside the first (4L+1)*1000 samples; frames before 0 are padding."""
    L = torch.arange(n_latents)
    end_sample = (4 * L + 1) * SR // FPS
    end = torch.where(end_sample < 400, torch.zeros_like(end_sample), (end_sample - 400) // 160 + 1)
    idx = end[:, None] - window + torch.arange(window)[None]
    return idx.clamp(min=0), idx >= 0


def latent_mel_windows_torch(logmel, n_latents, window=32):
    """logmel [B, frames, 80] -> [B, n_latents, window, 80], front padding = ln(1e-10)."""
    idx, valid = latent_window_index(n_latents, window)
    if int(idx.max()) >= logmel.shape[1]:
        raise ValueError("need %d mel frames, have %d" % (int(idx.max()) + 1, logmel.shape[1]))
    idx, valid = idx.to(logmel.device), valid.to(logmel.device)
    w = logmel[:, idx.reshape(-1)].reshape(logmel.shape[0], n_latents, window, logmel.shape[2])
    pad = math.log(float(torch.tensor(LOG_FLOOR, dtype=torch.float32)))
    return torch.where(valid[None, :, :, None], w, torch.full_like(w, pad))


# ------------------------------------------------------------------------------------------------------
# Whole clips


def pixel_frames(n_latents):
    """Video frames covered by n_latents latents: 1 + 4 (n_latents - 1)."""
    return 1 + 4 * (n_latents - 1)


def make_clips(n_clips, n_latents, g, device="cpu", size=128, with_audio=True, silence_p=0.0, render=True):
    """Procedural clips of P = 1 + 4 (n_latents - 1) frames and P * 1000 audio samples
    (= audio_end(n_latents - 1)). Returns dict: audio [B, N], frames [B, P, 3, size, size] float,
    open/width/blink/dx/dy/tilt [B, P]. silence_p: probability that a clip is all silence (+noise)."""
    dev = torch.device(device)
    P = pixel_frames(n_latents)
    N = P * SPF
    sp = synth_speech(n_clips, N, g, dev)
    if silence_p > 0:
        sil = (_u((n_clips, 1), g, dev) < silence_p).float()
        nz = _n((n_clips, N), g, dev) * 10.0 ** (_u((n_clips, 1), g, dev, -80.0, -55.0) / 20.0)
        sp["audio"] = sp["audio"] * (1 - sil) + nz * sil
        sp["voicing"] = sp["voicing"] * (1 - sil)
    op, wd = mouth_signals(sp, P)
    dx, dy, tl = head_motion(n_clips, P, g, dev, speech_open=op)
    bk = blinks(n_clips, P, g, dev)
    out = {"audio": sp["audio"], "open": op, "width": wd, "blink": bk, "dx": dx, "dy": dy, "tilt": tl}
    if render:
        fr = render_faces(op.reshape(-1), wd.reshape(-1), bk.reshape(-1), dx.reshape(-1), dy.reshape(-1),
                          tl.reshape(-1), size)
        out["frames"] = fr.reshape(n_clips, P, 3, size, size)
    return out
