#!/usr/bin/python3
"""Train the audio-conditioned causal DiT (dit_model.AudioWanDiT) on procedural clips encoded by the
trained VAE, with clean-context teacher forcing that matches the engine's AR inference.

Data: `build_dataset` renders `clips` procedural clips of `n_latents` latents (audio + frames), encodes the
frames with the VAE encoder and keeps, per latent frame, the latent [16, h, w] and the audio window
[32, 80] (engine/audio/log_mel.h latent_audio_window, log-mel as tools/reference/log_mel_ref.py).

One training sample (n = sinks + window frames, chunks of C frames):
    frames idx = [0 .. sinks-1] + [o .. o+window-1]   (o = sinks with prob. p_start, else random)
    sequence   = [clean x0 of idx | noisy x_sigma of idx]   2n frames, RoPE positions 0..n-1 twice
    timesteps  = 0 for the clean half; 1000 sigma_b for noisy chunk b (one sigma per chunk)
    mask       = clean chunk b sees clean chunks <= b (the commit pass at t = 0); noisy chunk b sees
                 clean chunks < b and itself (a denoising step against the cache)
    loss       = MSE(v, eps - x0) on the noisy half        (x_sigma = (1 - sigma) x0 + sigma eps)
This is exactly what the engine computes with a cache of `sinks` + `window` frames in rope 'window'
mode once the cache is full (the last chunk) or while it fills (o = sinks); test in selftest.py.
sigma: with prob. p_infer one of the sampler's sigmas (sampler_timesteps(steps, shift) / 1000), else
shift'(u), u ~ U(0, 1). The clean context gets small noise (std U(0, ctx_noise), prob. 1/2) so that the
model tolerates its own imperfect outputs in long rollouts. EMA weights (0.999) are exported.

Standalone (needs a VAE from train_vae.py):
    /usr/bin/python3 tools/train/train_dit.py --vae /tmp/vae/vae.pt --out /tmp/dit --minutes 1
"""

import argparse
import copy
import math
import os

import torch

import common  # noqa: F401  (sets sys.path)
from common import Timer, autocast, generator, log, setup_device, sync
import dit_model as DM
import procedural as P
from ar_loop import sampler_timesteps

DEFAULTS = {"steps": 4, "shift": 2.0, "chunk_frames": 3, "sinks": 3, "window": 9, "rope_mode": "window",
            "cache_mode": "commit"}


def build_dataset(vae, clips, n_latents, dev, seed, size=128, batch=32, window=32, silence_p=0.05, enc_batch=4):
    """-> dict lat [clips, n_latents, 16, h, w] (float32), mel [clips, n_latents, window, 80] (float16),
    open [clips, P] (the true mouth opening, for diagnostics)."""
    g = generator(seed, dev)
    lats, mels, opens = [], [], []
    vae.eval()
    tm = Timer()
    with torch.no_grad():
        for i in range(0, clips, batch):
            b = min(batch, clips - i)
            c = P.make_clips(b, n_latents, g, dev, size, silence_p=silence_p)
            for j in range(0, b, enc_batch):
                with autocast(dev):
                    z = vae.encode(c["frames"][j:j + enc_batch])
                lats.append(z.float())
            lm = P.log_mel_torch(c["audio"])
            mels.append(P.latent_mel_windows_torch(lm, n_latents, window).half())
            opens.append(c["open"])
    vae.train()
    d = {"lat": torch.cat(lats), "mel": torch.cat(mels), "open": torch.cat(opens)}
    log("dit data: %d clips x %d latents (%.1f s each) in %.1fs; latent std %.3f, mel mean %.2f" % (
        clips, n_latents, P.pixel_frames(n_latents) / P.FPS, tm.s(), d["lat"].std().item(), d["mel"].float().mean().item()))
    return d


def shift_sigma(s, shift):
    return shift * s / (1.0 + (shift - 1.0) * s)


def sample_batch(data, B, sinks, window, chunk, g, dev, steps, shift, p_start=0.25, p_infer=0.5,
                 ctx_noise=0.05):
    lat, mel = data["lat"], data["mel"]
    Nc, T = lat.shape[:2]
    n = sinks + window
    clip = torch.randint(0, Nc, (B,), generator=g, device=dev)
    hi = T - window                                      # offsets o in [sinks, T - window]
    off = torch.randint(sinks, hi + 1, (B,), generator=g, device=dev)
    off = torch.where(torch.rand(B, generator=g, device=dev) < p_start, torch.full_like(off, sinks), off)
    idx = torch.cat([torch.arange(sinks, device=dev)[None].expand(B, sinks),
                     off[:, None] + torch.arange(window, device=dev)[None]], 1)          # [B, n]
    x0 = lat[clip[:, None], idx]                                                      # [B, n, C, h, w]
    a = mel[clip[:, None], idx].float()                                               # [B, n, 32, 80]
    nb = n // chunk
    sig_inf = torch.tensor([t / 1000.0 for t in sampler_timesteps(steps, shift)], device=dev)
    pick = sig_inf[torch.randint(0, steps, (B, nb), generator=g, device=dev)]
    cont = shift_sigma(torch.rand(B, nb, generator=g, device=dev), shift)
    sig = torch.where(torch.rand(B, nb, generator=g, device=dev) < p_infer, pick, cont)
    sig_f = sig.repeat_interleave(chunk, 1)                                           # [B, n]
    eps = torch.randn(x0.shape, generator=g, device=dev)
    s5 = sig_f[:, :, None, None, None]
    xt = (1 - s5) * x0 + s5 * eps
    ctx = x0
    if ctx_noise > 0:
        amp = torch.rand(B, 1, 1, 1, 1, generator=g, device=dev) * ctx_noise
        amp = amp * (torch.rand(B, 1, 1, 1, 1, generator=g, device=dev) < 0.5).float()
        ctx = x0 + amp * torch.randn(x0.shape, generator=g, device=dev)
    x = torch.cat([ctx, xt], 1).permute(0, 2, 1, 3, 4).contiguous()                   # [B, C, 2n, h, w]
    t = torch.cat([torch.zeros(B, n, device=dev), 1000.0 * sig_f], 1)
    target = (eps - x0).permute(0, 2, 1, 3, 4)                                        # [B, C, n, h, w]
    return x, t, torch.cat([a, a], 1), target


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for pe, pm in zip(self.model.parameters(), model.parameters()):
            pe.mul_(d).add_(pm.detach(), alpha=1.0 - d)


def latent_weights(h, w, device, mouth_w=6.0):
    """Loss weight per latent pixel [1, 1, 1, h, w]: 1, and `mouth_w` on the mouth region (pixel rows
    64-96, cols 40-88 at 128 px, i.e. latent rows h/2..3h/4, cols 5w/16..11w/16): the mouth covers ~3 % of
    the latent but carries the whole audio signal."""
    m = torch.ones(h, w, device=device)
    m[h // 2: (3 * h) // 4, (5 * w) // 16: (11 * w + 15) // 16] = mouth_w
    return (m / m.mean())[None, None, None]


def train_dit(data, cfg, minutes, dev, seed=2, batch=64, lr=5e-4, defaults=None, max_steps=None,
              log_every_s=20.0, ema_decay=0.999, ctx_noise=0.05, compile_model=False, mouth_w=6.0):
    """Returns (EMA model fp32, report)."""
    dfl = dict(DEFAULTS, **(defaults or {}))
    S, W, C = dfl["sinks"], dfl["window"], dfl["chunk_frames"]
    if S % C or W % C:
        raise ValueError("sinks and window must be multiples of chunk_frames")
    if data["lat"].shape[1] < S + W:
        raise ValueError("clips have %d latents, need >= sinks + window = %d" % (data["lat"].shape[1], S + W))
    torch.manual_seed(seed)
    g = generator(seed, dev)
    model = DM.AudioWanDiT(cfg).to(dev)
    ema = EMA(model, ema_decay)
    fwd = model
    if compile_model and hasattr(torch, "compile"):
        fwd = torch.compile(model)
    n = S + W
    mask = DM.teacher_forcing_mask(n, C, dev)
    fpos = torch.cat([torch.arange(n), torch.arange(n)]).to(dev)
    lw = latent_weights(data["lat"].shape[3], data["lat"].shape[4], dev, mouth_w)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "modulation" in name or name.endswith(".pos") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99))
    log("dit: %s, %d params; sequence %d frames x %d tokens, batch %d" % (
        {k: cfg[k] for k in ("dim", "ffn_dim", "heads", "layers")}, DM.param_count(model), 2 * n,
        (data["lat"].shape[3] // 2) * (data["lat"].shape[4] // 2), batch))
    budget = minutes * 60.0
    tm = Timer()
    step, last_log, run_loss = 0, 0.0, None
    hist = []
    while True:
        el = tm.s()
        if (max_steps is not None and step >= max_steps) or (max_steps is None and el >= budget):
            break
        prog = min(1.0, el / budget) if max_steps is None else step / max(1, max_steps)
        warm = min(1.0, max((step + 1) / 300.0, prog / 0.05))
        for pg in opt.param_groups:
            pg["lr"] = lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
        x, t, a, target = sample_batch(data, batch, S, W, C, g, dev, dfl["steps"], dfl["shift"], ctx_noise=ctx_noise)
        with autocast(dev):
            out = fwd(x, t, a, fpos, mask)
        loss = (lw * (out[:, :, n:].float() - target).pow(2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, step)
        step += 1
        lv = loss.item() if (step % 10 == 0 or step < 3) else None
        if lv is not None:
            run_loss = lv if run_loss is None else 0.9 * run_loss + 0.1 * lv
        if tm.s() - last_log >= log_every_s or step == 1:
            last_log = tm.s()
            cur = loss.item()
            run_loss = cur if run_loss is None else run_loss
            hist.append((round(tm.s(), 1), step, cur, run_loss))
            log("dit step %6d  %6.1fs  loss %.4f (avg %.4f)  grad %.2f  lr %.2e" % (
                step, tm.s(), cur, run_loss, float(gn), opt.param_groups[0]["lr"]))
    sync(dev)
    log("dit done: %d steps in %.1fs (%.1f steps/s)" % (step, tm.s(), step / max(tm.s(), 1e-9)))
    out_model = ema.model.float() if step > 0 else model.float()
    return out_model, {"steps": step, "seconds": round(tm.s(), 1), "final_loss_avg": run_loss, "history": hist,
                       "defaults": dfl}


@torch.no_grad()
def eval_loss(model, data, dev, defaults, batches=4, batch=32, seed=99):
    """Mean (unweighted) teacher-forcing loss per inference sigma on `data` (held-out clips): {sigma: loss}."""
    dfl = dict(DEFAULTS, **(defaults or {}))
    S, W, C = dfl["sinks"], dfl["window"], dfl["chunk_frames"]
    n = S + W
    g = generator(seed, dev)
    mask = DM.teacher_forcing_mask(n, C, dev)
    fpos = torch.cat([torch.arange(n), torch.arange(n)]).to(dev)
    out = {}
    for ts in sampler_timesteps(dfl["steps"], dfl["shift"]):
        tot = 0.0
        for _ in range(batches):
            x, t, a, target = sample_batch(data, batch, S, W, C, g, dev, dfl["steps"], dfl["shift"], p_infer=1.0,
                                           ctx_noise=0.0)
            sig = ts / 1000.0
            # force every chunk to this sigma
            x0 = x[:, :, :n]                      # ctx_noise = 0: the clean half is x0
            eps = target + x0
            x = torch.cat([x0, (1 - sig) * x0 + sig * eps], 2)
            t = torch.cat([torch.zeros(batch, n, device=dev), torch.full((batch, n), ts, device=dev)], 1)
            with autocast(dev):
                o = model(x, t, a, fpos, mask)
            tot += (o[:, :, n:].float() - target).pow(2).mean().item()
        out["%.4f" % (ts / 1000.0)] = tot / batches
    return out


def main(argv=None):
    import taehv_model as TM

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vae", required=True, help="vae.pt from train_vae.py")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=7.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--clips", type=int, default=1536)
    ap.add_argument("--latents", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2)
    a = ap.parse_args(argv)
    dev = setup_device(a.device)
    vae = TM.TAEHV()
    vae.load_state_dict(torch.load(a.vae, map_location="cpu"))
    vae.to(dev)
    data = build_dataset(vae, a.clips, a.latents, dev, a.seed)
    model, rep = train_dit(data, DM.default_config(), a.minutes, dev, a.seed, a.batch)
    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, "dit.pt"))
    common.write_json(os.path.join(a.out, "dit_report.json"), rep)


if __name__ == "__main__":
    main()
