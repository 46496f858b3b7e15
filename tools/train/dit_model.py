"""Trainable audio-conditioned causal Wan2.1 DiT (nn.Module), parameter names = the official Wan keys
(plus `audio_embedding.*`), so `state_dict()` is the exported checkpoint and
tools/reference/wan_causal.py (CausalWanDiT, conditioning 'audio') runs it unchanged.

Math per block is Wan2.1's (wan21-model.md 1.3) with per-frame timesteps; cross-attention takes K/V
from the frame's own audio tokens (see tools/train/README.md, "Audio conditioning"). Self-attention runs
over a whole training sequence with a frame-level boolean mask (True = attend) and per-frame temporal
RoPE positions, so the same module serves teacher forcing ([clean | noisy] sequences) and tests.

Precision: under CUDA bf16 autocast the GEMMs run in bf16; norms, RoPE, softmax inputs of the
cross-attention, modulation and the residual stream stay fp32.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def up(x):
    """bf16/fp16 -> fp32; fp32/fp64 unchanged (the fp32 parts of the model run in fp64 in tests)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def default_config(**over):
    c = {
        "name": "avatarstream-default",
        "dim": 256, "ffn_dim": 1024, "heads": 4, "layers": 4,
        "in_channels": 16, "out_channels": 16, "patch_size": [1, 2, 2],
        "freq_dim": 256, "eps": 1e-6,
        "conditioning": "audio", "audio_mels": 80, "audio_window": 32, "audio_tokens": 4,
    }
    c.update(over)
    return c


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = up(x)
        return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * up(self.weight)


class AudioEmbedding(nn.Sequential):
    """audio_embedding.0 Linear(features -> dim), GELU(tanh), audio_embedding.2 Linear(dim -> dim),
    + audio_embedding.pos [tokens, dim]."""

    def __init__(self, features, dim, tokens):
        super().__init__(nn.Linear(features, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
        self.pos = nn.Parameter(torch.zeros(tokens, dim))

    def forward(self, x):
        return super().forward(x) + self.pos


class Attn(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)


def rope_tables(head_dim, fpos, hp, wp, device):
    """cos, sin [L, head_dim/2] (float64) for tokens (frame position fpos[f], row i, col j), order
    (f, i, j) row-major; axis split d - 4(d//6), 2(d//6), 2(d//6) as wan_causal.rope_angles."""
    s = head_dim // 6
    dims = [head_dim - 4 * s, 2 * s, 2 * s]

    def inv(da):
        return torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=device),
                         -2.0 * torch.arange(da // 2, dtype=torch.float64, device=device) / da)

    fpos = torch.as_tensor(fpos, dtype=torch.float64, device=device)
    n = fpos.shape[0]
    af = (fpos[:, None] * inv(dims[0])[None])[:, None, None, :].expand(n, hp, wp, dims[0] // 2)
    ah = (torch.arange(hp, dtype=torch.float64, device=device)[:, None] * inv(dims[1])[None])[None, :, None, :]
    aw = (torch.arange(wp, dtype=torch.float64, device=device)[:, None] * inv(dims[2])[None])[None, None, :, :]
    ang = torch.cat([af, ah.expand(n, hp, wp, dims[1] // 2), aw.expand(n, hp, wp, dims[2] // 2)], -1)
    ang = ang.reshape(n * hp * wp, head_dim // 2)
    return torch.cos(ang), torch.sin(ang)


def rope(x, cos, sin):
    """x [B, L, H, d] (interleaved pairs) rotated; fp32 math."""
    B, L, H, d = x.shape
    xf = up(x).reshape(B, L, H, d // 2, 2)
    a, b = xf[..., 0], xf[..., 1]
    c, s = cos[None, :, None, :].to(xf.dtype), sin[None, :, None, :].to(xf.dtype)
    return torch.stack([a * c - b * s, a * s + b * c], -1).reshape(B, L, H, d)


def attention(q, k, v, mask):
    """q, k, v [B, L, H, d]; mask [L, L] bool (True = attend) -> [B, L, H, d]."""
    if HAS_SDPA:
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
        return o.transpose(1, 2)
    d = q.shape[-1]
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * (1.0 / math.sqrt(d))
    s = s.masked_fill(~mask[None, None], float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", torch.softmax(s, -1), v)


class Block(nn.Module):
    def __init__(self, dim, ffn_dim, heads, eps):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)
        self.self_attn = Attn(dim, eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps, elementwise_affine=True)
        self.cross_attn = Attn(dim, eps)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim))

    def forward(self, x, e0, cos, sin, mask, audio):
        """x [B, F, T, D] fp32 residual, e0 [B, F, 6, D], audio [B, F, A, D]."""
        B, Fn, T, D = x.shape
        L = Fn * T
        H = self.heads
        d = D // H
        mod = (up(self.modulation)[None] + up(e0))[:, :, :, None, :]     # [B, F, 6, 1, D]
        sh1, sc1, g1, sh2, sc2, g2 = (mod[:, :, i] for i in range(6))            # [B, F, 1, D]
        y = F.layer_norm(x, (D,), eps=self.eps) * (1 + sc1) + sh1
        a = self.self_attn
        q = a.norm_q(a.q(y)).reshape(B, L, H, d)
        k = a.norm_k(a.k(y)).reshape(B, L, H, d)
        v = a.v(y).reshape(B, L, H, d)
        dt = v.dtype
        o = attention(rope(q, cos, sin).to(dt), rope(k, cos, sin).to(dt), v, mask).reshape(B, Fn, T, D)
        x = x + up(a.o(o)) * g1

        c = self.cross_attn
        y = self.norm3(x)
        q = c.norm_q(c.q(y)).reshape(B, Fn, T, H, d)
        A = audio.shape[2]
        ak = c.norm_k(c.k(audio)).reshape(B, Fn, A, H, d)
        av = up(c.v(audio)).reshape(B, Fn, A, H, d)
        s = up(torch.einsum("bfthd,bfahd->bfhta", q, ak)) * (1.0 / math.sqrt(d))
        o = torch.einsum("bfhta,bfahd->bfthd", torch.softmax(s, -1), av).reshape(B, Fn, T, D)
        x = x + up(c.o(o))

        y = F.layer_norm(x, (D,), eps=self.eps) * (1 + sc2) + sh2
        return x + up(self.ffn(y)) * g2


class Head(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
        self.head = nn.Linear(dim, out)


class AudioWanDiT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        D, C = cfg["dim"], cfg["in_channels"]
        pt, ph, pw = cfg["patch_size"]
        self.D, self.heads, self.eps = D, cfg["heads"], cfg["eps"]
        self.ph, self.pw = ph, pw
        self.freq_dim = cfg["freq_dim"]
        self.A = cfg["audio_tokens"]
        self.audio_window, self.audio_mels = cfg["audio_window"], cfg["audio_mels"]
        feats = cfg["audio_window"] // cfg["audio_tokens"] * cfg["audio_mels"]
        self.patch_embedding = nn.Conv3d(C, D, (pt, ph, pw), stride=(pt, ph, pw))
        self.audio_embedding = AudioEmbedding(feats, D, self.A)
        self.time_embedding = nn.Sequential(nn.Linear(self.freq_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.blocks = nn.ModuleList(Block(D, cfg["ffn_dim"], cfg["heads"], cfg["eps"]) for _ in range(cfg["layers"]))
        self.head = Head(D, cfg["out_channels"] * pt * ph * pw)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for m in self.time_embedding:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.head.head.weight)
        nn.init.zeros_(self.head.head.bias)
        nn.init.normal_(self.audio_embedding.pos, std=0.02)

    # --- pieces

    def sinusoid(self, t):
        """t [B, F] (on the 1000 scale) -> [B, F, freq_dim] = cat[cos, sin](t * 10000^(-k/half)) (fp32)."""
        half = self.freq_dim // 2
        freq = torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=t.device),
                         -torch.arange(half, dtype=torch.float64, device=t.device) / half)
        a = t.double()[..., None] * freq
        return torch.cat([torch.cos(a), torch.sin(a)], -1).to(self.time_embedding[0].weight.dtype)

    def audio_tokens(self, mel):
        """mel [B, F, window, mels] raw log-mel -> [B, F, A, D]: x = (logmel + 5) / 5, A groups of
        window/A consecutive frames flattened (frame, mel)."""
        B, Fn = mel.shape[:2]
        x = ((mel.to(self.audio_embedding.pos.dtype) + 5.0) / 5.0).reshape(B, Fn, self.A, -1)
        return self.audio_embedding(x)

    def forward(self, x, t, mel, fpos, mask):
        """x [B, C, F, h, w] latents, t [B, F] timesteps (1000 scale), mel [B, F, window, mels],
        fpos [F] temporal RoPE positions, mask [F, F] bool frame mask (query frame, key frame)
        -> velocity [B, C_out, F, h, w] (fp32)."""
        B, C, Fn, h, w = x.shape
        hp, wp = h // self.ph, w // self.pw
        T = hp * wp
        x = x.to(self.patch_embedding.weight.dtype)
        tok = up(self.patch_embedding(x).flatten(3).permute(0, 2, 3, 1))        # [B, F, T, D]
        e = up(self.time_embedding(self.sinusoid(t)))                           # [B, F, D]
        e0 = up(self.time_projection(e)).reshape(B, Fn, 6, self.D)
        audio = self.audio_tokens(mel)
        cos, sin = rope_tables(self.D // self.heads, fpos, hp, wp, x.device)
        tmask = mask.repeat_interleave(T, 0).repeat_interleave(T, 1)
        h_ = tok
        for blk in self.blocks:
            h_ = blk(h_, e0, cos, sin, tmask, audio)
        mod = (up(self.head.modulation)[None] + e[:, :, None])[:, :, :, None, :]   # [B, F, 2, 1, D]
        y = F.layer_norm(h_, (self.D,), eps=self.eps) * (1 + mod[:, :, 1]) + mod[:, :, 0]
        u = up(self.head.head(y))                                                # [B, F, T, ph*pw*C]
        Co = u.shape[-1] // (self.ph * self.pw)
        u = u.reshape(B, Fn, hp, wp, self.ph, self.pw, Co).permute(0, 6, 1, 2, 4, 3, 5)
        return u.reshape(B, Co, Fn, h, w)

    def export_state_dict(self):
        """Official-name tensors (float32, CPU) for dit.safetensors."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}


def teacher_forcing_mask(n, chunk, device):
    """Frame mask [2n, 2n] for the sequence [clean frames 0..n-1 | noisy frames 0..n-1]: clean frame of
    chunk b sees clean chunks <= b (the commit pass); noisy chunk b sees clean chunks < b and itself."""
    b = torch.arange(n, device=device) // chunk
    cc = b[None, :] <= b[:, None]
    nc = b[None, :] < b[:, None]
    nn_ = b[None, :] == b[:, None]
    z = torch.zeros(n, n, dtype=torch.bool, device=device)
    return torch.cat([torch.cat([cc, z], 1), torch.cat([nc, nn_], 1)], 0)


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def dit_flops_per_chunk(cfg, chunk_frames=3, tokens_per_frame=64, kv_frames=12, passes=5):
    """FLOPs (2 x multiply-adds) of the DiT for one chunk at inference: `passes` forward passes (denoising
    steps + the commit pass) of chunk_frames x tokens_per_frame tokens attending to kv_frames frames.
    GEMMs and attention only (norms, RoPE, softmax are small)."""
    D, Fd, L = cfg["dim"], cfg["ffn_dim"], cfg["layers"]
    A = cfg["audio_tokens"]
    feats = cfg["audio_window"] // A * cfg["audio_mels"]
    pt, ph, pw = cfg["patch_size"]
    n = chunk_frames * tokens_per_frame
    per_tok = L * (4 * D * D + 2 * D * D + 2 * D * Fd)                    # self qkvo, cross q/o, ffn
    per_tok += cfg["in_channels"] * ph * pw * D + D * cfg["out_channels"] * ph * pw
    attn = L * 2 * n * kv_frames * tokens_per_frame * D                   # QK^T and PV, all heads
    cross = L * 2 * n * A * D + L * chunk_frames * A * 2 * D * D           # per-frame audio attention + audio K/V
    audio = chunk_frames * A * (feats * D + D * D)                         # audio tokens (once per chunk)
    time_mlp = chunk_frames * (cfg["freq_dim"] * D + D * D + 6 * D * D)
    return 2 * (passes * (n * per_tok + attn + cross + time_mlp) + audio)
