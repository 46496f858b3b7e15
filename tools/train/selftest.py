#!/usr/bin/python3
"""CPU smoke test of the default-avatar training stack (< 2 minutes on 2 cores, torch 1.13 or 2.x).

    /usr/bin/python3 tools/train/selftest.py [--keep DIR]

Checks: procedural data shapes, log-mel and audio windows against the numpy references, mouth measurement
on ground-truth renders (r >= 0.95, closed mouth ~0), VAE and DiT training steps reduce the loss, the
training DiT equals tools/reference/wan_causal.py (full forward and teacher forcing vs the AR ring cache),
wan_causal audio mode forward_full == chunked forward_chunk with a KV cache, text mode reproduces a
committed golden bit for bit, export/reload round trip, taehv_ref decoder equivalence, and run_all.py
end to end at tiny sizes (time-based loops, export, eval, PNG).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

import common
from common import generator
import dit_model as DM
import procedural as P
import taehv_model as TM
import train_dit as TD
import train_vae as TV

FAILS = []


def check(label, ok, detail=""):
    print("  [%s] %-64s %s" % ("ok" if ok else "FAIL", label, detail), flush=True)
    if not ok:
        FAILS.append(label)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def test_procedural(cpu):
    print("1. procedural data")
    g = generator(11, cpu)
    c = P.make_clips(2, 4, g, cpu, 64)
    Pf = P.pixel_frames(4)
    check("make_clips shapes", c["frames"].shape == (2, Pf, 3, 64, 64) and c["audio"].shape == (2, Pf * 1000) and
          c["open"].shape == (2, Pf), "frames %s audio %s" % (list(c["frames"].shape), list(c["audio"].shape)))
    check("audio finite, in [-1, 1]", bool(torch.isfinite(c["audio"]).all()) and float(c["audio"].abs().max()) <= 1.0)
    # mouth measurement on GT renders at 128 px over a sweep + real drive signals
    g = generator(12, cpu)
    sp = P.synth_speech(2, 61 * 1000, g, cpu)
    op, wd = P.mouth_signals(sp, 61)
    dx, dy, tl = P.head_motion(2, 61, g, cpu)
    bk = P.blinks(2, 61, g, cpu)
    fr = P.render_faces(op.reshape(-1), wd.reshape(-1), bk.reshape(-1), dx.reshape(-1), dy.reshape(-1), tl.reshape(-1))
    m = P.measure_mouth_opening(fr)
    r = P.pearson(m, op.reshape(-1))
    check("mouth measurement r >= 0.95 on GT renders", r >= 0.95, "r = %.4f" % r)
    u8 = (fr.permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
    r8 = P.pearson(P.measure_mouth_opening(u8), op.reshape(-1))
    check("... on uint8 [N, H, W, 3] frames", r8 >= 0.95, "r = %.4f" % r8)
    z = torch.zeros(8)
    closed = P.measure_mouth_opening(P.render_faces(z, z + 0.5, z, z, z, z))
    opened = P.measure_mouth_opening(P.render_faces(z + 1, z + 0.5, z, z, z, z))
    check("closed mouth measures ~0, open ~13 px", float(closed.max()) < 0.5 and float(opened.min()) > 10,
          "closed %.3f open %.2f" % (float(closed.max()), float(opened.min())))
    blur = torch.nn.functional.avg_pool2d(fr, 3, 1, 1)
    rb = P.pearson(P.measure_mouth_opening(blur), op.reshape(-1))
    check("... robust to a 3x3 blur", rb >= 0.9, "r = %.4f" % rb)
    lo = P.frame_loudness(sp["audio"], 61)
    check("frame_loudness shape / silence floor", lo.shape == (2, 61) and float(P.frame_loudness(torch.zeros(3000))[0]) <= -99)
    # log-mel and windows against the numpy references
    import log_mel_ref
    from ar_loop import latent_mel_windows

    a = sp["audio"][0]
    lm = P.log_mel_torch(a[None])[0]
    ref = torch.from_numpy(log_mel_ref.log_mel(a.double().numpy())).float()
    big = ref > -15
    d = float((lm - ref)[big].abs().max())
    check("log_mel_torch == log_mel_ref (bins > -15)", d < 1e-3 and lm.shape == ref.shape, "max diff %.2e" % d)
    T = 16
    w_t = P.latent_mel_windows_torch(ref[None], T, 32)[0]
    w_r = latent_mel_windows(ref.numpy(), T, 32)
    check("latent_mel_windows_torch == ar_loop.latent_mel_windows", torch.equal(w_t, w_r))
    first, end, pad, es = log_mel_ref.latent_audio_window(2, 32)
    check("latent_audio_window(2) = mel [22, 54), pad 0 (log_mel.h table)", (first, end, pad, es) == (22, 54, 0, 9000))
    check("latent 0 window: 28 padding rows of ln(1e-10)", bool((w_t[0, :28] == w_t[0, 0, 0]).all()) and
          abs(float(w_t[0, 0, 0]) - np.log(np.float32(1e-10))) < 1e-5)


def test_vae(cpu, tmp):
    print("2. VAE")
    torch.manual_seed(0)
    g = generator(21, cpu)
    m = TM.TAEHV((16, 8, 8, 8), (8, 8, 8, 8))
    fr = P.make_clips(2, 3, g, cpu, 64)["frames"]
    wmap = TV.region_weights(64, cpu)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    losses = []
    for i in range(40):
        loss, rec, reg, z = TV.vae_loss(m, fr, g, wmap, noise_max=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    check("VAE loss decreases (40 steps, one batch)", losses[-1] < 0.75 * losses[0], "%.4f -> %.4f" % (losses[0], losses[-1]))
    check("encode: 9 frames -> 3 latents [16, 8, 8]", tuple(z.shape) == (2, 3, 16, 8, 8))
    import taehv_ref

    with torch.no_grad():
        W, widths, lat = taehv_ref.load_decoder_weights(m.decoder_state_dict())
        zz = torch.randn(1, 4, 16, 8, 8)
        y = m.decode(zz)
        ys = taehv_ref.decode_stream(W, zz)
        yb = taehv_ref.decode_batch(W, zz)
    check("taehv_ref.decode_stream == trained decoder (fp32)", float((y - ys).abs().max()) < 1e-5,
          "max diff %.2e (batch %.2e)" % (float((y - ys).abs().max()), float((y - yb).abs().max())))
    check("decoder key layout = taehv_ref.expected_shapes", set(W) == set(taehv_ref.expected_shapes(widths)) and
          len(m.decoder_state_dict()) == 64)
    real = TM.decoder_flops_per_latent() / 1e9
    check("default decoder: <= 1.5 GFLOP per latent at 128x128", real <= 1.5, "%.3f GFLOP, %d params" % (
        real, TM.param_count(TM.TAEHV().decoder)))
    return m


def tiny_cfg():
    return DM.default_config(dim=64, ffn_dim=128, heads=2, layers=2, freq_dim=32)


def test_dit_equivalence(cpu):
    print("3. training DiT == wan_causal reference")
    from wan_causal import CausalWanDiT, Config
    import ar_loop

    torch.manual_seed(1)
    cfg = DM.default_config(dim=128, ffn_dim=256, heads=2, layers=2, freq_dim=64)
    m = DM.AudioWanDiT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = m.export_state_dict()
    ref = CausalWanDiT(Config(cfg), sd)
    n, C, S, Wn = 9, 3, 3, 6
    g = torch.Generator().manual_seed(5)
    mel = torch.randn(n, 32, 80, generator=g) * 3 - 10
    ref.set_audio(mel)
    x = torch.randn(16, n, 8, 8, generator=g)
    t = (torch.rand(n, generator=g) * 1000).tolist()
    with torch.no_grad():
        full = ref.forward_full(x, t, C)
        mod = m(x[None], torch.tensor(t)[None], mel[None], torch.arange(n), DM.teacher_forcing_mask(n, C, cpu)[:n, :n])[0]
    check("module forward == wan_causal forward_full (audio)", rel(mod, full) < 1e-5, "rel %.2e" % rel(mod, full))
    # forward_full vs chunked forward_chunk with a KV cache (commit semantics: every frame at its t)
    cache = ar_loop.RingKVCache(1, cfg["layers"], 0, n, C, "absolute", 16, 2, 64, "cpu", torch.float32)
    outs = []
    with torch.no_grad():
        for b in range(n // C):
            outs.append(ref.forward_chunk(x[:, b * C:(b + 1) * C], t[b * C:(b + 1) * C], cache.view(0, b * C)))
    ch = torch.cat(outs, 1)
    check("wan_causal audio: forward_full == chunked forward_chunk", rel(ch, full) < 1e-5, "rel %.2e" % rel(ch, full))
    # teacher forcing [clean | noisy] == AR: commit passes + a denoising step per chunk, sinks 3 window 6
    clean = torch.randn(16, n, 8, 8, generator=g)
    noisy = torch.randn(16, n, 8, 8, generator=g)
    tn = torch.tensor([900.0, 500.0, 300.0]).repeat_interleave(C)
    xs = torch.cat([clean, noisy], 1)[None]
    ts = torch.cat([torch.zeros(n), tn])[None]
    with torch.no_grad():
        tf = m(xs, ts, torch.cat([mel, mel])[None], torch.cat([torch.arange(n)] * 2), DM.teacher_forcing_mask(n, C, cpu))[0][:, n:]
        cache = ar_loop.RingKVCache(1, cfg["layers"], S, Wn, C, "window", 16, 2, 64, "cpu", torch.float32)
        errs = []
        for b in range(n // C):
            f0 = b * C
            v = ref.forward_chunk(noisy[:, f0:f0 + C], tn[f0:f0 + C].tolist(), cache.view(0, f0))
            errs.append(rel(v, tf[:, f0:f0 + C]))
            ref.forward_chunk(clean[:, f0:f0 + C], [0.0] * C, cache.view(0, f0))
    check("teacher forcing == AR ring cache (sinks 3, window 6, rope window)", max(errs) < 1e-5,
          "rel %s" % ", ".join("%.1e" % e for e in errs))
    # audio frames are taken by absolute index: frame0 offset
    with torch.no_grad():
        ref.set_audio(mel[3:], frame0=3)
        o2 = ref.forward_full(x[:, 3:6], t[3:6], C, frame0=3)
        ref.set_audio(mel)
        o1 = ref.forward_full(x[:, 3:6], t[3:6], C, frame0=3)
    check("set_audio(frame0) indexes audio by absolute frame", rel(o2, o1) < 1e-6)


def test_text_mode():
    print("4. text mode unchanged")
    import st_io
    from wan_causal import CausalWanDiT, Config
    from ar_loop import generate

    data = os.path.join(common.HERE, "..", "..", "tests", "data")
    if not os.path.exists(os.path.join(data, "golden_commit_w6_s1_window.safetensors")):
        check("tests/data goldens present", False)
        return
    cfg = Config.load(os.path.join(data, "tiny_config.json"))
    sd, _ = st_io.load(os.path.join(data, "tiny_weights.safetensors"))
    ctx, _ = st_io.load(os.path.join(data, "tiny_context.safetensors"))
    gold, meta = st_io.load(os.path.join(data, "golden_commit_w6_s1_window.safetensors"))
    model = CausalWanDiT(cfg, sd)
    model.set_context(ctx["context"])
    lat = generate(model, gold["noise"], 3, 4, 5.0, 6, 1, "window", "commit")
    ok = torch.equal(lat, gold["latents"])
    check("golden_commit_w6_s1_window reproduces bit for bit", ok or rel(lat, gold["latents"]) < 1e-6,
          "bit-identical" if ok else "rel %.2e (other torch build)" % rel(lat, gold["latents"]))
    check("text config to_dict has no audio fields", "conditioning" not in cfg.to_dict())


def test_dit_training(cpu):
    print("5. DiT training steps")
    g = generator(31, cpu)
    cfg = tiny_cfg()
    data = {"lat": torch.randn(4, 14, 16, 8, 8, generator=g) * 0.8,
            "mel": (torch.randn(4, 14, 32, 80, generator=g) * 3 - 10).half()}
    # a learnable structure: latents are smooth in time
    data["lat"] = torch.cumsum(data["lat"], 1) / torch.arange(1, 15).float()[None, :, None, None, None].sqrt()
    torch.manual_seed(3)
    m = DM.AudioWanDiT(cfg)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    S, W, C = 3, 6, 3
    n = S + W
    mask = DM.teacher_forcing_mask(n, C, cpu)
    fpos = torch.cat([torch.arange(n)] * 2)
    gb = generator(32, cpu)
    x, t, a, target = TD.sample_batch(data, 4, S, W, C, gb, cpu, 4, 2.0)
    check("sample_batch shapes", tuple(x.shape) == (4, 16, 2 * n, 8, 8) and tuple(t.shape) == (4, 2 * n) and
          tuple(a.shape) == (4, 2 * n, 32, 80) and tuple(target.shape) == (4, 16, n, 8, 8))
    check("clean half at t = 0, noisy chunks share one sigma", bool((t[:, :n] == 0).all()) and
          bool((t[:, n:].reshape(4, -1, C) == t[:, n:].reshape(4, -1, C)[:, :, :1]).all()))
    losses = []
    for i in range(30):
        out = m(x, t, a, fpos, mask)
        loss = (out[:, :, n:] - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    check("DiT loss decreases (30 steps, one batch)", losses[-1] < 0.8 * losses[0], "%.4f -> %.4f" % (losses[0], losses[-1]))
    return m


def test_export(m_dit, vae, tmp):
    print("6. export / reload")
    import export as X
    import st_io

    cfg = tiny_cfg()
    dfl = dict(TD.DEFAULTS)
    sizes = X.export(tmp, m_dit, vae, cfg, dfl, extra={"video": {"width": 64, "height": 64, "fps": 16,
                                                                  "latent_height": 8, "latent_width": 8}})
    check("export writes 3 files", all(v > 0 for v in sizes.values()), str(sizes))
    ref, conf, W = X.load_exported(tmp)
    check("config.json: audio fields + defaults", conf["conditioning"] == "audio" and conf["audio_tokens"] == 4 and
          conf["defaults"]["rope_mode"] == "window" and "text_dim" not in conf)
    sd, meta = st_io.load(os.path.join(tmp, "dit.safetensors"))
    check("dit.safetensors: F16, no text_embedding, audio_embedding.pos", sd["blocks.0.ffn.0.weight"].dtype == torch.float16
          and not any(k.startswith("text_embedding") for k in sd) and "audio_embedding.pos" in sd)
    # the reloaded reference equals the module with the same (F16-rounded) weights
    m2 = DM.AudioWanDiT(cfg)
    m2.load_state_dict({k: v.float() for k, v in sd.items()})
    g = torch.Generator().manual_seed(9)
    mel = torch.randn(6, 32, 80, generator=g) * 3 - 10
    x = torch.randn(16, 6, 8, 8, generator=g)
    t = [500.0] * 6
    ref.set_audio(mel)
    with torch.no_grad():
        a = ref.forward_full(x, t, 3)
        b = m2(x[None], torch.tensor(t)[None], mel[None], torch.arange(6), DM.teacher_forcing_mask(6, 3, "cpu")[:6, :6])[0]
    check("reloaded reference == module on exported weights", rel(b, a) < 1e-5, "rel %.2e" % rel(b, a))
    with torch.no_grad():
        zz = torch.randn(1, 3, 16, 8, 8)
        import taehv_ref
        dd = float((taehv_ref.decode_stream(W, zz) - vae.decode(zz)).abs().max())
    check("reloaded decoder.safetensors == trained decoder", dd < 1e-5, "max diff %.2e" % dd)


def test_run_all(tmp):
    print("7. run_all.py --tiny (time-based loops, export, eval)")
    import run_all

    t0 = time.time()
    rep = run_all.main(["--out", tmp, "--tiny", "--device", "cpu", "--minutes-vae", "0.05", "--minutes-dit", "0.05"])
    files = ["dit.safetensors", "decoder.safetensors", "config.json", "eval.json", "preview.png", "train_report.json"]
    check("run_all writes %s" % ", ".join(files), all(os.path.exists(os.path.join(tmp, f)) for f in files))
    check("run_all: time budgets respected", rep["timings_s"]["vae"] < 10 and rep["timings_s"]["dit"] < 10,
          "%.1fs total" % (time.time() - t0))
    check("eval.json has the metrics", all(k in rep["eval"] for k in ("mouth_r_loudness", "silence_open_px", "stable")))
    with open(os.path.join(tmp, "preview.png"), "rb") as f:
        check("preview.png is a PNG", f.read(8) == b"\x89PNG\r\n\x1a\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", default=None, help="keep the outputs in this folder")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    cpu = torch.device("cpu")
    tmp = a.keep or tempfile.mkdtemp(prefix="avs_train_selftest_")
    os.makedirs(tmp, exist_ok=True)
    try:
        test_procedural(cpu)
        vae = test_vae(cpu, tmp)
        test_dit_equivalence(cpu)
        test_text_mode()
        m = test_dit_training(cpu)
        test_export(m, vae, os.path.join(tmp, "export"))
        test_run_all(os.path.join(tmp, "run_all"))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("selftest: %s in %.1fs" % ("all passed" if not FAILS else "%d FAILED: %s" % (len(FAILS), FAILS), time.time() - t0))
    return 0 if not FAILS else 1


if __name__ == "__main__":
    sys.exit(main())
