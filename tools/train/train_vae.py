#!/usr/bin/python3
"""Train the TAEHV-style autoencoder (taehv_model.TAEHV) on procedural face clips, for a fixed time.

Loss per batch (frames in [0, 1]):
    weighted L1 + MSE between decode(encode(x) + noise) and x (the face region weighs 3x, the mouth 6x)
  + 0.1 * latent statistics penalty (per channel: mean^2 + (std - 1)^2), so the DiT sees ~unit latents
    and the decoder's 3 tanh(x/3) clamp rarely saturates;
the latent noise (std U(0, 0.15) per clip) makes the decoder tolerant of the DiT's small errors.

Clips are generated on the fly on the training device (a pool of `pool` clips refreshed every `refresh`
steps), each a stream start (latent 0 = frame 0), as the engine decodes them.

Standalone: /usr/bin/python3 tools/train/train_vae.py --out /tmp/vae --minutes 0.5 [--device cuda]
"""

import argparse
import math
import os

import torch

import common  # noqa: F401  (sets sys.path)
from common import Timer, autocast, generator, log, setup_device, sync
import procedural as P
import taehv_model as TM


def region_weights(size, device):
    """[1, 1, 1, size, size]: 1 everywhere, 3 on the face, 6 around the mouth."""
    k = size / 128.0
    w = torch.ones(size, size, device=device)
    w[int(28 * k):int(116 * k), int(28 * k):int(100 * k)] = 3.0
    w[int(70 * k):int(100 * k), int(40 * k):int(88 * k)] = 6.0
    return w[None, None, None]


def latent_stats_penalty(z):
    """z [N, T, C, h, w] -> mean over channels of mean^2 + (std - 1)^2."""
    zc = z.float().transpose(0, 2).reshape(z.shape[2], -1)
    return (zc.mean(1).pow(2) + (zc.std(1) - 1.0).pow(2)).mean()


def vae_loss(model, frames, g, wmap, noise_max=0.15, lat_w=0.1):
    z = model.encode(frames)
    sig = torch.rand(z.shape[0], 1, 1, 1, 1, generator=g, device=z.device) * noise_max
    zn = z + sig * torch.randn(z.shape, generator=g, device=z.device).to(z.dtype)
    y = model.decode(zn).float()
    d = y - frames
    rec = (wmap * (d.abs() + 2.0 * d.pow(2))).mean() / wmap.mean()
    reg = latent_stats_penalty(z)
    return rec + lat_w * reg, rec, reg, z


def evaluate(model, clips, dev, chunk=8):
    """PSNR (dB) of decode(encode(x)) on held-out clips, mouth r (decoded vs true opening), latent std."""
    model.eval()
    fr = clips["frames"]
    outs, zs = [], []
    with torch.no_grad(), autocast(dev):
        for i in range(0, fr.shape[0], chunk):
            z = model.encode(fr[i:i + chunk])
            zs.append(z.float())
            outs.append(model.decode(z, clamp=True).float())
    model.train()
    y = torch.cat(outs)
    z = torch.cat(zs)
    mse = (y - fr).pow(2).mean().item()
    m_dec = P.measure_mouth_opening(y.reshape(-1, *y.shape[2:]))
    return {"psnr": 10 * math.log10(1.0 / max(mse, 1e-12)),
            "mouth_r": P.pearson(m_dec, clips["open"].reshape(-1)),
            "latent_mean": z.mean().item(), "latent_std": z.std().item(),
            "latent_absmax": z.abs().max().item()}


def train_vae(minutes, dev, seed=1, batch=16, n_latents=5, size=128, pool=256, refresh=8, lr=8e-4,
              dec_widths=TM.DEFAULT_DEC_WIDTHS, enc_widths=TM.DEFAULT_ENC_WIDTHS, max_steps=None,
              log_every_s=15.0, eval_clips=16):
    """Train for `minutes` of wall time (or max_steps). Returns (model in fp32, report dict)."""
    torch.manual_seed(seed)
    g = generator(seed, dev)
    model = TM.TAEHV(dec_widths, enc_widths).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    wmap = region_weights(size, dev)
    held = P.make_clips(eval_clips, n_latents + 4, generator(seed + 1000, dev), dev, size)
    budget = minutes * 60.0
    tm = Timer()
    step, last_log = 0, 0.0
    data = None
    hist = []
    log("vae: decoder widths %s (%d params, %.3f GFLOP/latent at %dx%d), encoder widths %s (%d params)" % (
        list(dec_widths), TM.param_count(model.decoder), TM.decoder_flops_per_latent(dec_widths, size // 8, size // 8) / 1e9,
        size, size, list(enc_widths), TM.param_count(model.encoder)))
    while True:
        el = tm.s()
        if (max_steps is not None and step >= max_steps) or (max_steps is None and el >= budget):
            break
        if data is None or step % refresh == 0:
            with torch.no_grad():
                data = P.make_clips(pool, n_latents, g, dev, size)["frames"]
        idx = torch.randint(0, data.shape[0], (batch,), generator=g, device=dev)
        fr = data[idx]
        prog = min(1.0, el / budget) if max_steps is None else step / max(1, max_steps)
        warm = min(1.0, max((step + 1) / 200.0, prog / 0.05))
        for pg in opt.param_groups:
            pg["lr"] = lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
        with autocast(dev):
            loss, rec, reg, z = vae_loss(model, fr, g, wmap)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if tm.s() - last_log >= log_every_s or step == 1:
            last_log = tm.s()
            rec_v, reg_v = rec.item(), reg.item()
            hist.append((round(tm.s(), 1), step, rec_v, reg_v))
            log("vae step %6d  %6.1fs  rec %.5f  lat_reg %.4f  z std %.3f  lr %.2e" % (
                step, tm.s(), rec_v, reg_v, z.float().std().item(), opt.param_groups[0]["lr"]))
    sync(dev)
    model = model.to(memory_format=torch.contiguous_format).float()
    ev = evaluate(model, held, dev)
    log("vae done: %d steps in %.1fs; held-out PSNR %.2f dB, mouth r %.4f, latent mean %.3f std %.3f absmax %.2f" % (
        step, tm.s(), ev["psnr"], ev["mouth_r"], ev["latent_mean"], ev["latent_std"], ev["latent_absmax"]))
    return model, {"steps": step, "seconds": round(tm.s(), 1), "history": hist, **ev}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=None)
    a = ap.parse_args(argv)
    dev = setup_device(a.device)
    os.makedirs(a.out, exist_ok=True)
    model, rep = train_vae(a.minutes, dev, a.seed, a.batch, size=a.size, max_steps=a.max_steps)
    torch.save(model.state_dict(), os.path.join(a.out, "vae.pt"))
    common.write_json(os.path.join(a.out, "vae_report.json"), rep)


if __name__ == "__main__":
    main()
