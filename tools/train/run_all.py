#!/usr/bin/python3
"""Train the embedded default avatar model end to end, with fixed seeds and wall-clock budgets:

  1. VAE (train_vae.py): TAEHV-style encoder + narrow decoder on procedural face clips   (--minutes-vae)
  2. check: taehv_ref.decode_stream on the exported decoder == the trained decoder
  3. DiT data (train_dit.build_dataset): procedural speech clips -> latents + audio windows
  4. DiT (train_dit.py): clean-context teacher forcing, EMA                               (--minutes-dit)
  5. export (export.py): DIR/dit.safetensors, DIR/decoder.safetensors, DIR/config.json
  6. eval (eval.py): AR rollout with the PyTorch reference, mouth vs loudness, silence, stability
     -> DIR/eval.json, DIR/preview.png;  DIR/train_report.json has every number and timing

On the GPU machine (defaults are sized for one H100, about 12 minutes in all):
    python3 tools/train/run_all.py --out /tmp/avatar --device cuda
Smoke test on a CPU (tiny sizes): see selftest.py, or
    /usr/bin/python3 tools/train/run_all.py --out /tmp/avs_tiny --tiny --device cpu
"""

import argparse
import os
import platform
import sys

import torch

import common
from common import Timer, log, setup_device, write_json
import dit_model as DM
import eval as E
import export as X
import procedural as P
import taehv_model as TM
import taehv_ref
import train_dit as TD
import train_vae as TV

TINY = {
    "size": 64, "dec_widths": (16, 8, 8, 8), "enc_widths": (8, 8, 8, 8),
    "dit": {"dim": 64, "ffn_dim": 128, "heads": 2, "layers": 2, "freq_dim": 32},
    "vae_batch": 2, "vae_latents": 3, "vae_pool": 4, "dit_clips": 6, "dit_latents": 16, "dit_batch": 4,
    "eval_seconds": 12.0,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto")
    ap.add_argument("--minutes-vae", type=float, default=2.0)
    ap.add_argument("--minutes-dit", type=float, default=5.5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--dit-batch", type=int, default=64)
    ap.add_argument("--dit-clips", type=int, default=1536)
    ap.add_argument("--dit-latents", type=int, default=50, help="latents per training clip (~4 per 0.25 s)")
    ap.add_argument("--dit-lr", type=float, default=5e-4)
    ap.add_argument("--mouth-weight", type=float, default=6.0, help="DiT loss weight of the mouth region")
    ap.add_argument("--steps", type=int, default=TD.DEFAULTS["steps"])
    ap.add_argument("--shift", type=float, default=TD.DEFAULTS["shift"])
    ap.add_argument("--sinks", type=int, default=TD.DEFAULTS["sinks"])
    ap.add_argument("--window", type=int, default=TD.DEFAULTS["window"])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--ffn-dim", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ctx-noise", type=float, default=0.05)
    ap.add_argument("--eval-seconds", type=float, default=300.0, help="length of the held-out rollout")
    ap.add_argument("--wav", nargs="*", default=[], help="extra real-speech WAVs (16 kHz) to evaluate")
    ap.add_argument("--shifts", nargs="*", type=float, default=[], help="eval: also try these sampler shifts")
    ap.add_argument("--select-shift", nargs="*", type=float, default=[1.5, 2.0, 3.0, 5.0],
                    help="pick the default sampler shift among these on a held-out validation rollout "
                         "(none: keep --shift)")
    ap.add_argument("--dit-dtype", default="F16", choices=["F16", "BF16", "F32"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the DiT (off by default)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes for a CPU smoke test")
    ap.add_argument("--max-steps-vae", type=int, default=None, help="stop after N steps (tests)")
    ap.add_argument("--max-steps-dit", type=int, default=None, help="stop after N steps (tests)")
    ap.add_argument("--skip-eval", action="store_true")
    a = ap.parse_args(argv)

    total = Timer()
    dev = setup_device(a.device)
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    tiny = TINY if a.tiny else None
    size = tiny["size"] if tiny else 128
    dec_w = tiny["dec_widths"] if tiny else TM.DEFAULT_DEC_WIDTHS
    enc_w = tiny["enc_widths"] if tiny else TM.DEFAULT_ENC_WIDTHS
    cfg = DM.default_config(dim=a.dim, ffn_dim=a.ffn_dim, heads=a.heads, layers=a.layers)
    if tiny:
        cfg.update(tiny["dit"])
    dfl = dict(TD.DEFAULTS, steps=a.steps, shift=a.shift, sinks=a.sinks, window=a.window)
    rep = {"argv": sys.argv[1:], "torch": torch.__version__, "python": platform.python_version(),
           "device": str(dev) + (" " + torch.cuda.get_device_name(dev) if dev.type == "cuda" else ""),
           "seed": a.seed, "config": cfg, "defaults": dfl, "timings_s": {}}
    log("run_all: torch %s on %s, out %s" % (torch.__version__, rep["device"], a.out))

    # 1. VAE
    t = Timer()
    vae, vrep = TV.train_vae(a.minutes_vae, dev, seed=a.seed + 1,
                             batch=tiny["vae_batch"] if tiny else a.vae_batch,
                             n_latents=tiny["vae_latents"] if tiny else 5, size=size,
                             pool=tiny["vae_pool"] if tiny else 256, dec_widths=dec_w, enc_widths=enc_w,
                             max_steps=a.max_steps_vae, log_every_s=5 if tiny else 15)
    rep["vae"] = vrep
    rep["timings_s"]["vae"] = round(t.s(), 1)
    torch.save(vae.state_dict(), os.path.join(a.out, "vae.pt"))

    # 2. decoder equivalence: reference streaming decoder on the exported layout vs the trained module
    t = Timer()
    with torch.no_grad():
        vc = vae.to("cpu").float()
        g = common.generator(a.seed + 2, torch.device("cpu"))
        clip = P.make_clips(1, 4, g, "cpu", size)
        z = vc.encode(clip["frames"])
        W, widths, _ = taehv_ref.load_decoder_weights(vc.decoder_state_dict())
        y_mod = vc.decode(z)
        y_ref = taehv_ref.decode_stream(W, z)
        dec_diff = float((y_mod - y_ref).abs().max())
        vae.to(dev)
    rep["decoder_stream_vs_module_maxdiff"] = dec_diff
    rep["decoder"] = {"widths": list(widths), "params": TM.param_count(vae.decoder),
                      "gflop_per_latent": TM.decoder_flops_per_latent(widths, size // 8, size // 8) / 1e9}
    log("decoder: widths %s, %d params, %.3f GFLOP per latent frame at %dx%d; stream vs module max diff %.2e" % (
        list(widths), rep["decoder"]["params"], rep["decoder"]["gflop_per_latent"], size, size, dec_diff))
    if dec_diff > 1e-4:
        raise SystemExit("decoder equivalence failed: %.3e" % dec_diff)
    rep["timings_s"]["decoder_check"] = round(t.s(), 1)

    # 3. DiT data
    t = Timer()
    n_lat = tiny["dit_latents"] if tiny else a.dit_latents
    data = TD.build_dataset(vae, tiny["dit_clips"] if tiny else a.dit_clips, n_lat, dev, a.seed + 3, size=size,
                            window=cfg["audio_window"])
    held = TD.build_dataset(vae, 2 if tiny else 64, n_lat, dev, a.seed + 4, size=size, window=cfg["audio_window"])
    rep["data"] = {"clips": int(data["lat"].shape[0]), "latents_per_clip": n_lat,
                   "hours": round(data["lat"].shape[0] * P.pixel_frames(n_lat) / P.FPS / 3600.0, 2),
                   "latent_std": float(data["lat"].std()), "latent_mean": float(data["lat"].mean())}
    rep["timings_s"]["dit_data"] = round(t.s(), 1)

    # 4. DiT
    t = Timer()
    dit, drep = TD.train_dit(data, cfg, a.minutes_dit, dev, seed=a.seed + 5,
                             batch=tiny["dit_batch"] if tiny else a.dit_batch, lr=a.dit_lr, defaults=dfl,
                             max_steps=a.max_steps_dit, log_every_s=5 if tiny else 20, ctx_noise=a.ctx_noise,
                             compile_model=a.compile, mouth_w=a.mouth_weight)
    drep["heldout_loss_per_sigma"] = TD.eval_loss(dit, held, dev, dfl, batches=1 if tiny else 4,
                                                  batch=2 if tiny else 32)
    log("dit held-out loss per sigma: %s" % {k: round(v, 4) for k, v in drep["heldout_loss_per_sigma"].items()})
    rep["dit"] = drep
    rep["dit_params"] = DM.param_count(dit)
    lh = size // 8
    rep["dit_gflop_per_chunk"] = DM.dit_flops_per_chunk(cfg, dfl["chunk_frames"], (lh // 2) ** 2,
                                                        dfl["sinks"] + dfl["window"], dfl["steps"] + 1) / 1e9
    rep["chunk_gflop_total"] = rep["dit_gflop_per_chunk"] + dfl["chunk_frames"] * rep["decoder"]["gflop_per_latent"]
    log("dit: %d params, %.2f GFLOP per chunk of %d latents (%d passes); with the decoder %.2f GFLOP per %d video "
        "frames" % (rep["dit_params"], rep["dit_gflop_per_chunk"], dfl["chunk_frames"], dfl["steps"] + 1,
                    rep["chunk_gflop_total"], 4 * dfl["chunk_frames"]))
    rep["timings_s"]["dit"] = round(t.s(), 1)
    del data, held

    # 5. export
    t = Timer()
    extra = {"video": {"width": size, "height": size, "fps": P.FPS, "latent_height": size // 8,
                       "latent_width": size // 8},
             "training": {"generator": "tools/train/run_all.py", "seed": a.seed, "vae_steps": vrep["steps"],
                          "dit_steps": drep["steps"], "torch": torch.__version__}}
    vae = vae.float().cpu()
    sizes = X.export(a.out, dit, vae, cfg, dfl, dit_dtype=a.dit_dtype, extra=extra)
    rep["files"] = sizes
    rep["total_weight_bytes"] = sizes["dit.safetensors"] + sizes["decoder.safetensors"]
    log("export: %s (weights %.2f MB)" % (sizes, rep["total_weight_bytes"] / 1e6))
    if a.select_shift and not a.skip_eval:
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        best, scores = E.select_shift(a.out, dev, a.select_shift, seconds=8.0 if tiny else 16.0)
        rep["shift_selection"] = {str(k): v for k, v in scores.items()}
        if best != dfl["shift"]:
            dfl["shift"] = best
            rep["defaults"] = dfl
            X.export(a.out, dit, vae, cfg, dfl, dit_dtype=a.dit_dtype, extra=extra)
    rep["timings_s"]["export"] = round(t.s(), 1)

    # 6. eval
    if not a.skip_eval:
        t = Timer()
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        secs = tiny["eval_seconds"] if tiny else a.eval_seconds
        ev = E.evaluate(a.out, dev, secs, wavs=a.wav, shifts=a.shifts, out_json=os.path.join(a.out, "eval.json"),
                        preview=os.path.join(a.out, "preview.png"))
        rep["eval"] = {k: v for k, v in ev.items() if k != "windows"}
        rep["timings_s"]["eval"] = round(t.s(), 1)
    rep["timings_s"]["total"] = round(total.s(), 1)
    write_json(os.path.join(a.out, "train_report.json"), rep)
    log("run_all: done in %.1fs; timings %s" % (total.s(), rep["timings_s"]))
    return rep


if __name__ == "__main__":
    main()
