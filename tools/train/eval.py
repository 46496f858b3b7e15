#!/usr/bin/python3
"""Evaluate an exported default avatar model with the PyTorch references (what the engine computes):
AR rollout through tools/reference/ar_loop.generate (CausalWanDiT in audio mode, ring KV cache, the
config's default steps/shift/sinks/window/rope mode, commit pass), decode with taehv_ref.decode_batch,
then measure the mouth from pixels.

Held-out audio (a seed never used in training): `seconds` s = 3 s of near-silence, speech, then 7 s of
near-silence. Reported (eval.json):
  mouth_r_loudness      Pearson r of measured mouth opening vs frame loudness (RMS dB), all frames
  mouth_r_loudness_speech   the same over the speech part only
  mouth_r_truth         r vs the opening the renderer would draw for this audio
  silence_open_px / speech_open_px   mean measured opening in silence / in loud speech frames
  windows               per 5 s window: pixel mean, std, mean |frame difference| (flicker), mouth r
  stable                pixel mean/std of every window within bounds of the first speech window
  wav:*                 the same r for each --wav file (e.g. espeak-ng speech)
  shift_sweep           (optional) mouth r and sharpness on a short clip for other sampler shifts

    /usr/bin/python3 tools/train/eval.py --model DIR [--device cuda] [--seconds 60] [--wav a.wav ...]
"""

import argparse
import os
import time

import torch

import common  # noqa: F401  (sets sys.path)
from common import frames_to_strip, log, setup_device, write_json, write_png
import procedural as P
import taehv_ref
from ar_loop import generate, read_wav
from export import load_exported


def n_latents_for_seconds(sec):
    return max(2, int(round(sec * P.FPS / 4.0)) + 1)


def rollout(model, mel_windows, dfl, seed, device, n_latents=None):
    """AR rollout -> latents [16, T, h, w] (T = n_latents rounded up to whole chunks)."""
    C, steps = dfl["chunk_frames"], dfl["steps"]
    T = mel_windows.shape[0] if n_latents is None else n_latents
    chunks = (T + C - 1) // C
    mw = mel_windows
    if chunks * C > mw.shape[0]:        # pad with the last window (only the trailing frames use it)
        mw = torch.cat([mw, mw[-1:].expand(chunks * C - mw.shape[0], *mw.shape[1:])])
    model.set_audio(mw[: chunks * C])
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    lat_hw = dfl.get("latent_hw", 16)
    noise = torch.randn(chunks, steps, model.cfg.in_channels, C, lat_hw, lat_hw, generator=g)
    with torch.no_grad():
        lat = generate(model, noise, C, steps, float(dfl["shift"]), dfl["window"], dfl["sinks"], dfl["rope_mode"],
                       dfl.get("cache_mode", "commit"))
    return lat[:, :T]


def decode(W, lat):
    """latents [16, T, h, w] -> frames [1 + 4(T-1), 3, 8h, 8w] in [0, 1], one latent at a time with the
    streaming decoder (what the engine does; memory independent of the length)."""
    d = taehv_ref.StreamingDecoder(W)
    out = []
    with torch.no_grad():
        for f in range(lat.shape[1]):
            out += [y.clamp(0, 1) for y in d.push(lat[:, f][None])]
    return torch.cat(out, 0)


def mel_windows_for_audio(audio, n_latents, window, device):
    """audio [N] (>= (4(T-1)+1)*1000 samples, zero-padded otherwise) -> [T, window, 80] float32."""
    a = torch.as_tensor(audio, dtype=torch.float32).reshape(1, -1).to(device)
    need = P.pixel_frames(n_latents) * P.SPF
    if a.shape[1] < need:
        a = torch.nn.functional.pad(a, (0, need - a.shape[1]))
    lm = P.log_mel_torch(a[:, :need])
    return P.latent_mel_windows_torch(lm, n_latents, window)[0].float()


def heldout_audio(seconds, seed, device, lead=3.0, tail=7.0):
    """[N] float32: `lead` s near-silence, speech, `tail` s near-silence; N = P * 1000 for the frames P.
    Short clips (tests) scale the silences down to 15 % / 20 % of the length."""
    lead, tail = min(lead, 0.15 * seconds), min(tail, 0.2 * seconds)
    T = n_latents_for_seconds(seconds)
    Pf = P.pixel_frames(T)
    N = Pf * P.SPF
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    n_lead, n_tail = int(lead * P.SR), int(tail * P.SR)
    sp = P.synth_speech(1, N - n_lead - n_tail, g, device, lead_silence=False, gain_db=(-8.0, -2.0),
                        noise_off_p=0.0, noise_db=(-70.0, -65.0))["audio"][0]
    bg = torch.randn(N, generator=g, device=device) * 10 ** (-68 / 20.0)
    a = bg.clone()
    a[n_lead:n_lead + sp.shape[0]] = sp
    return a.clamp(-1, 1), T, (n_lead // P.SPF, (n_lead + sp.shape[0]) // P.SPF)


def sharpness(frames):
    """Mean |horizontal + vertical gradient| of the frames (a blur indicator)."""
    f = torch.as_tensor(frames).float()
    return float((f[..., 1:, :] - f[..., :-1, :]).abs().mean() + (f[..., :, 1:] - f[..., :, :-1]).abs().mean())


def select_shift(model_dir, device, candidates, seconds=16.0, seed=4242):
    """Short held-out rollouts (a seed of its own) for each sampler shift; the best mouth-vs-loudness r
    wins. Returns (best shift, {shift: r})."""
    dev = torch.device(device)
    model, conf, W = load_exported(model_dir, dev)
    dfl = dict(conf["defaults"])
    dfl["latent_hw"] = conf.get("video", {}).get("latent_height", 16)
    audio, T, _ = heldout_audio(seconds, seed, dev, lead=1.0, tail=2.0)
    mw = mel_windows_for_audio(audio, T, conf["audio_window"], dev)
    scores = {}
    for sh in candidates:
        fr = decode(W, rollout(model, mw, dict(dfl, shift=float(sh)), seed, dev))
        scores[float(sh)] = P.pearson(P.measure_mouth_opening(fr).cpu(), P.frame_loudness(audio.cpu(), fr.shape[0]))
    best = float(dfl["shift"])      # keep the trained default unless another shift is clearly better
    top = max(scores, key=lambda k: scores[k])
    if best not in scores or scores[top] > scores[best] + 0.01:
        best = top
    log("eval: shift selection %s -> %s" % ({k: round(v, 3) for k, v in scores.items()}, best))
    return best, scores


def evaluate(model_dir, device, seconds=60.0, seed=777, wavs=(), shifts=(), out_json=None, preview=None,
             max_wav_seconds=30.0):
    dev = torch.device(device)
    tm = time.time()
    model, conf, W = load_exported(model_dir, dev)
    dfl = dict(conf["defaults"])
    dfl["latent_hw"] = conf.get("video", {}).get("latent_height", 16)
    rep = {"defaults": {k: v for k, v in dfl.items() if k != "latent_hw"}}

    audio, T, (s0, s1) = heldout_audio(seconds, seed, dev)
    mw = mel_windows_for_audio(audio, T, conf["audio_window"], dev)
    t0 = time.time()
    lat = rollout(model, mw, dfl, seed, dev)
    t_roll = time.time() - t0
    fr = decode(W, lat)
    Pf = fr.shape[0]
    meas = P.measure_mouth_opening(fr).cpu()
    loud = P.frame_loudness(audio.cpu(), Pf)
    truth = P.mouth_open_from_audio(audio.cpu()[None], Pf)[0]
    sp = slice(s0, s1)
    rep["seconds"] = round(Pf / P.FPS, 2)
    rep["latents"] = int(lat.shape[1])
    rep["rollout_s"] = round(t_roll, 1)
    rep["mouth_r_loudness"] = P.pearson(meas, loud)
    rep["mouth_r_loudness_speech"] = P.pearson(meas[sp], loud[sp])
    rep["mouth_r_truth"] = P.pearson(meas, truth)
    lead_sil = meas[4:s0]                                   # skip the very first frames
    tail_sil = meas[s1 + 8:]                                # 0.5 s after the speech ends
    rep["silence_open_px"] = float(torch.cat([lead_sil, tail_sil]).mean())
    rep["silence_open_px_max"] = float(torch.cat([lead_sil, tail_sil]).max())
    loudf = truth[sp] > 0.5
    rep["speech_open_px"] = float(meas[sp][loudf].mean()) if loudf.any() else 0.0
    rep["silence_closed"] = rep["silence_open_px"] < 0.25 * max(rep["speech_open_px"], 1e-6)
    # stability over time (5 s windows)
    win = 5 * P.FPS
    ws = []
    for i in range(0, Pf - win + 1, win):
        f = fr[i:i + win]
        ws.append({"t": round(i / P.FPS, 1), "mean": float(f.mean()), "std": float(f.std()),
                   "flicker": float((f[1:] - f[:-1]).abs().mean()), "sharp": sharpness(f),
                   "mouth_r": P.pearson(meas[i:i + win], loud[i:i + win])})
    rep["windows"] = ws
    ref = ws[min(1, len(ws) - 1)]
    ok = all(abs(w["mean"] - ref["mean"]) < 0.06 and 0.6 < w["std"] / max(ref["std"], 1e-6) < 1.6 and
             w["flicker"] < 0.05 for w in ws) and bool(torch.isfinite(lat).all())
    rep["stable"] = bool(ok)
    rep["latent_absmax"] = float(lat.abs().max())
    rep["latent_std_first_last"] = [float(lat[:, :12].std()), float(lat[:, -12:].std())]
    log("eval: %d frames (%.1f s) rollout %.1fs; mouth r vs loudness %.3f (speech only %.3f, vs truth %.3f); "
        "open px silence %.2f speech %.2f; stable %s" % (Pf, Pf / P.FPS, t_roll, rep["mouth_r_loudness"],
                                                        rep["mouth_r_loudness_speech"], rep["mouth_r_truth"],
                                                        rep["silence_open_px"], rep["speech_open_px"], rep["stable"]))
    # real speech files
    for path in wavs:
        a, sr = read_wav(path)
        if sr != P.SR:
            log("eval: skip %s (sample rate %d)" % (path, sr))
            continue
        a = a[: int(max_wav_seconds * P.SR)]
        Tw = max(2, (len(a) // P.SPF - 1) // 4 + 1)
        mww = mel_windows_for_audio(a, Tw, conf["audio_window"], dev)
        lw = rollout(model, mww, dfl, seed + 1, dev)
        fw = decode(W, lw)
        mw_ = P.measure_mouth_opening(fw).cpu()
        lo = P.frame_loudness(torch.as_tensor(a), fw.shape[0])
        r = P.pearson(mw_, lo)
        rep["wav:" + os.path.basename(path)] = {"mouth_r_loudness": r, "frames": int(fw.shape[0]),
                                                "open_px_mean": float(mw_.mean())}
        log("eval: %s: mouth r vs loudness %.3f over %d frames" % (path, r, fw.shape[0]))
    # optional sampler shift sweep on the first 12 s of speech
    if shifts:
        sw = {}
        Ts = min(T, n_latents_for_seconds(12.0) + (s0 // 4))
        for sh in shifts:
            d2 = dict(dfl, shift=float(sh))
            l2 = rollout(model, mw[:Ts], d2, seed, dev)
            f2 = decode(W, l2)
            m2 = P.measure_mouth_opening(f2).cpu()
            sw[str(sh)] = {"mouth_r_loudness": P.pearson(m2, loud[:f2.shape[0]]), "sharp": sharpness(f2),
                           "flicker": float((f2[1:] - f2[:-1]).abs().mean())}
        rep["shift_sweep"] = sw
        log("eval: shift sweep %s" % {k: round(v["mouth_r_loudness"], 3) for k, v in sw.items()})
    if preview:
        i0 = s0 + 2 * P.FPS
        idx = list(range(i0, min(Pf, i0 + 48), 3))[:16]
        gt = P.render_faces(truth[idx].to(dev), torch.full((len(idx),), 0.5, device=dev),
                            torch.zeros(len(idx), device=dev), torch.zeros(len(idx), device=dev),
                            torch.zeros(len(idx), device=dev), torch.zeros(len(idx), device=dev),
                            fr.shape[-1]).cpu()
        last = list(range(max(0, s1 - 48), s1, 3))[:16]
        rows = torch.cat([fr[idx].cpu(), gt, fr[last].cpu()])
        write_png(preview, frames_to_strip(rows, len(idx)))
        rep["preview"] = os.path.basename(preview)
        rep["preview_rows"] = ["generated, speech from t=%.1fs every 3rd frame" % (i0 / P.FPS),
                               "reference render of the same mouth opening (no head motion)",
                               "generated, the last 3 s of speech (t=%.1fs)" % (last[0] / P.FPS if last else 0)]
    rep["eval_s"] = round(time.time() - tm, 1)
    rep["pass"] = {"mouth_r>=0.6": rep["mouth_r_loudness"] >= 0.6, "silence_closed": rep["silence_closed"],
                   "stable": rep["stable"]}
    if out_json:
        write_json(out_json, rep)
    return rep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="folder with dit.safetensors, decoder.safetensors, config.json")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--wav", nargs="*", default=[], help="16 kHz mono 16-bit WAV files (real speech)")
    ap.add_argument("--shifts", nargs="*", type=float, default=[], help="also try these sampler shifts")
    ap.add_argument("--out", default=None, help="eval JSON (default MODEL/eval.json)")
    ap.add_argument("--preview", default=None, help="preview PNG (default MODEL/preview.png)")
    a = ap.parse_args(argv)
    dev = setup_device(a.device)
    if dev.type == "cuda":      # the reference runs fp32: keep it exact
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    evaluate(a.model, dev, a.seconds, a.seed, a.wav, a.shifts, a.out or os.path.join(a.model, "eval.json"),
             a.preview or os.path.join(a.model, "preview.png"))


if __name__ == "__main__":
    main()
