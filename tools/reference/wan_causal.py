"""Reference PyTorch implementation of the causal Wan2.1 DiT (text-to-video), written from the public
math in docs (wan21-model.md §1): per-frame timesteps, self-attention over an externally managed KV
cache (keys stored before RoPE, rotated when read), and a block-causal "full" forward.

Everything runs in one float dtype (float32 for goldens; float64 for accuracy studies); RoPE angles and
the timestep sinusoid are computed in float64. Only stable PyTorch APIs are used (1.13 and 2.x).

Weights are a dict of tensors with official Wan2.1 names (`blocks.0.self_attn.q.weight`, ...).
`normalize_state_dict` also accepts diffusers names (`blocks.0.attn1.to_q.weight`, ...) and strips
`model.` / `generator.` prefixes (Self-Forcing checkpoints).
"""

import json
import math
import re

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------
# Config

TINY = {
    "dim": 128,
    "ffn_dim": 256,
    "heads": 2,
    "layers": 2,
    "in_channels": 16,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "text_dim": 64,
    "text_len": 32,
    "freq_dim": 64,
    "eps": 1e-6,
}

WAN21_T2V_1_3B = {
    "dim": 1536,
    "ffn_dim": 8960,
    "heads": 12,
    "layers": 30,
    "in_channels": 16,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "text_dim": 4096,
    "text_len": 512,
    "freq_dim": 256,
    "eps": 1e-6,
}

PRESETS = {"tiny": TINY, "wan2.1-t2v-1.3b": WAN21_T2V_1_3B}


class Config:
    FIELDS = ("dim", "ffn_dim", "heads", "layers", "in_channels", "out_channels", "patch_size", "text_dim",
              "text_len", "freq_dim", "eps")
    # conditioning "audio" (the embedded default avatar model, issue 7): cross-attention K/V come from
    # per-latent-frame audio tokens instead of the text context; see tools/train/README.md.
    AUDIO_FIELDS = ("conditioning", "audio_mels", "audio_window", "audio_tokens")
    AUDIO_DEFAULTS = {"audio_mels": 80, "audio_window": 32, "audio_tokens": 4}

    def __init__(self, d):
        d = dict(d)
        # official config.json names
        for a, b in (("num_heads", "heads"), ("num_layers", "layers"), ("in_dim", "in_channels"),
                     ("out_dim", "out_channels")):
            if a in d and b not in d:
                d[b] = d[a]
        # diffusers config names
        if "num_attention_heads" in d:
            d.setdefault("heads", d["num_attention_heads"])
            if "attention_head_dim" in d:
                d.setdefault("dim", d["num_attention_heads"] * d["attention_head_dim"])
        if d.get("model_type", "t2v") != "t2v":
            raise ValueError("only model_type t2v is supported (got %r)" % d.get("model_type"))
        defaults = {"patch_size": [1, 2, 2], "text_dim": 4096, "text_len": 512, "freq_dim": 256, "eps": 1e-6}
        for k, v in defaults.items():
            d.setdefault(k, v)
        missing = [k for k in self.FIELDS if k not in d]
        if missing:
            raise ValueError("config is missing %s" % missing)
        self.dim = int(d["dim"])
        self.ffn_dim = int(d["ffn_dim"])
        self.heads = int(d["heads"])
        self.layers = int(d["layers"])
        self.in_channels = int(d["in_channels"])
        self.out_channels = int(d["out_channels"])
        self.patch_size = [int(p) for p in d["patch_size"]]
        self.text_dim = int(d["text_dim"])
        self.text_len = int(d["text_len"])
        self.freq_dim = int(d["freq_dim"])
        self.eps = float(d["eps"])
        if self.dim % self.heads:
            raise ValueError("dim must be divisible by heads")
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError("head_dim must be even and >= 6")
        if self.patch_size[0] != 1:
            raise ValueError("temporal patch size must be 1")
        if self.freq_dim % 2:
            raise ValueError("freq_dim must be even")
        self.conditioning = str(d.get("conditioning", "text"))
        if self.conditioning not in ("text", "audio"):
            raise ValueError("conditioning must be 'text' or 'audio' (got %r)" % self.conditioning)
        for k, v in self.AUDIO_DEFAULTS.items():
            setattr(self, k, int(d.get(k, v)))
        if self.conditioning == "audio":
            if min(self.audio_mels, self.audio_window, self.audio_tokens) <= 0:
                raise ValueError("audio_mels, audio_window and audio_tokens must be > 0")
            if self.audio_window % self.audio_tokens:
                raise ValueError("audio_window (%d) must be divisible by audio_tokens (%d)" %
                                 (self.audio_window, self.audio_tokens))

    @property
    def head_dim(self):
        return self.dim // self.heads

    @property
    def audio_features(self):
        """Features per audio token: (audio_window / audio_tokens) mel frames x audio_mels."""
        return (self.audio_window // self.audio_tokens) * self.audio_mels

    def to_dict(self):
        d = {k: getattr(self, k) for k in self.FIELDS}
        if self.conditioning == "audio":
            d.update({k: getattr(self, k) for k in self.AUDIO_FIELDS})
        return d

    @staticmethod
    def load(spec):
        """`spec`: a preset name ('tiny', 'wan2.1-t2v-1.3b') or a JSON file path."""
        if spec in PRESETS:
            return Config(PRESETS[spec])
        with open(spec) as f:
            return Config(json.load(f))


# ---------------------------------------------------------------------------------------------------
# Checkpoint key names

_DIFFUSERS_TOP = [
    ("condition_embedder.time_embedder.linear_1.", "time_embedding.0."),
    ("condition_embedder.time_embedder.linear_2.", "time_embedding.2."),
    ("condition_embedder.time_proj.", "time_projection.1."),
    ("condition_embedder.text_embedder.linear_1.", "text_embedding.0."),
    ("condition_embedder.text_embedder.linear_2.", "text_embedding.2."),
    ("proj_out.", "head.head."),
]

_DIFFUSERS_BLOCK = [
    ("attn1.to_q.", "self_attn.q."),
    ("attn1.to_k.", "self_attn.k."),
    ("attn1.to_v.", "self_attn.v."),
    ("attn1.to_out.0.", "self_attn.o."),
    ("attn1.norm_q.", "self_attn.norm_q."),
    ("attn1.norm_k.", "self_attn.norm_k."),
    ("attn2.to_q.", "cross_attn.q."),
    ("attn2.to_k.", "cross_attn.k."),
    ("attn2.to_v.", "cross_attn.v."),
    ("attn2.to_out.0.", "cross_attn.o."),
    ("attn2.norm_q.", "cross_attn.norm_q."),
    ("attn2.norm_k.", "cross_attn.norm_k."),
    ("attn2.add_k_proj.", "cross_attn.k_img."),
    ("attn2.add_v_proj.", "cross_attn.v_img."),
    ("attn2.norm_added_k.", "cross_attn.norm_k_img."),
    ("norm2.", "norm3."),  # diffusers norm2 is the affine cross-attention norm (official norm3)
    ("ffn.net.0.proj.", "ffn.0."),
    ("ffn.net.2.", "ffn.2."),
]


def diffusers_to_official(name):
    """Map one diffusers WanTransformer3DModel parameter name to the official WanModel name
    (unchanged if it is not a diffusers-specific name)."""
    if name == "scale_shift_table":
        return "head.modulation"
    for a, b in _DIFFUSERS_TOP:
        if name.startswith(a):
            return b + name[len(a):]
    m = re.match(r"^blocks\.(\d+)\.(.*)$", name)
    if m:
        idx, rest = m.group(1), m.group(2)
        if rest == "scale_shift_table":
            return "blocks.%s.modulation" % idx
        for a, b in _DIFFUSERS_BLOCK:
            if rest.startswith(a):
                return "blocks.%s.%s%s" % (idx, b, rest[len(a):])
    return name


def official_to_diffusers(name):
    """Inverse of diffusers_to_official (used by the self-check)."""
    if name == "head.modulation":
        return "scale_shift_table"
    for a, b in _DIFFUSERS_TOP:
        if name.startswith(b):
            return a + name[len(b):]
    m = re.match(r"^blocks\.(\d+)\.(.*)$", name)
    if m:
        idx, rest = m.group(1), m.group(2)
        if rest == "modulation":
            return "blocks.%s.scale_shift_table" % idx
        for a, b in _DIFFUSERS_BLOCK:
            if rest.startswith(b):
                return "blocks.%s.%s%s" % (idx, a, rest[len(b):])
    return name


def _looks_diffusers(names):
    return any(n.startswith("condition_embedder.") or ".attn1." in n or n == "scale_shift_table" or
               n.startswith("proj_out.") for n in names)


def normalize_state_dict(sd):
    """Strip `model.`/`generator.` (and `module.`) prefixes and map diffusers names to official ones."""
    out = {}
    for name, t in sd.items():
        n = name
        changed = True
        while changed:
            changed = False
            for p in ("model.", "generator.", "generator_ema.", "module."):
                if n.startswith(p):
                    n = n[len(p):]
                    changed = True
        out[n] = t
    if _looks_diffusers(out):
        out = {diffusers_to_official(n): t for n, t in out.items()}
    return out


def expected_shapes(cfg):
    """Official Wan2.1 T2V key -> shape for `cfg` (audio mode: `audio_embedding.*` instead of
    `text_embedding.*`, everything else unchanged)."""
    d, fd, td = cfg.dim, cfg.ffn_dim, cfg.text_dim
    pt, ph, pw = cfg.patch_size
    s = {
        "patch_embedding.weight": [d, cfg.in_channels, pt, ph, pw],
        "patch_embedding.bias": [d],
    }
    if getattr(cfg, "conditioning", "text") == "audio":
        s.update({
            "audio_embedding.0.weight": [d, cfg.audio_features],
            "audio_embedding.0.bias": [d],
            "audio_embedding.2.weight": [d, d],
            "audio_embedding.2.bias": [d],
            "audio_embedding.pos": [cfg.audio_tokens, d],
        })
    else:
        s.update({
            "text_embedding.0.weight": [d, td],
            "text_embedding.0.bias": [d],
            "text_embedding.2.weight": [d, d],
            "text_embedding.2.bias": [d],
        })
    s.update({
        "time_embedding.0.weight": [d, cfg.freq_dim],
        "time_embedding.0.bias": [d],
        "time_embedding.2.weight": [d, d],
        "time_embedding.2.bias": [d],
        "time_projection.1.weight": [6 * d, d],
        "time_projection.1.bias": [6 * d],
        "head.modulation": [1, 2, d],
        "head.head.weight": [pt * ph * pw * cfg.out_channels, d],
        "head.head.bias": [pt * ph * pw * cfg.out_channels],
    })
    for i in range(cfg.layers):
        b = "blocks.%d." % i
        s[b + "modulation"] = [1, 6, d]
        for a in ("self_attn", "cross_attn"):
            for p in ("q", "k", "v", "o"):
                s[b + a + "." + p + ".weight"] = [d, d]
                s[b + a + "." + p + ".bias"] = [d]
            s[b + a + ".norm_q.weight"] = [d]
            s[b + a + ".norm_k.weight"] = [d]
        s[b + "norm3.weight"] = [d]
        s[b + "norm3.bias"] = [d]
        s[b + "ffn.0.weight"] = [fd, d]
        s[b + "ffn.0.bias"] = [fd]
        s[b + "ffn.2.weight"] = [d, fd]
        s[b + "ffn.2.bias"] = [d]
    return s


# ---------------------------------------------------------------------------------------------------
# Math helpers


def timestep_sinusoid(freq_dim, t):
    """t: float64 tensor [F] -> float64 [F, freq_dim] = cat[cos(t·f_k), sin(t·f_k)], f_k = 10000^(-k/half)."""
    half = freq_dim // 2
    t = t.to(torch.float64)
    freq = torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=t.device),
                     -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    a = t[:, None] * freq[None, :]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


def rope_axis_dims(head_dim):
    """Dims per axis (frame, height, width) of the 3D RoPE: d - 4(d//6), 2(d//6), 2(d//6)."""
    s = head_dim // 6
    return [head_dim - 4 * s, 2 * s, 2 * s]


def rope_angles(head_dim, fpos, hp, wp, device="cpu"):
    """Angles (float64) [len(fpos), hp*wp, head_dim/2] for tokens (f, i, j), frame positions `fpos`
    (a list/1-D tensor of temporal positions), grid rows i < hp, cols j < wp."""
    dev = torch.device(device)
    fpos = torch.as_tensor(fpos, dtype=torch.float64).to(dev)
    df, dh, dw = rope_axis_dims(head_dim)

    def inv_freq(da):
        m = torch.arange(da // 2, dtype=torch.float64, device=dev)
        return torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=dev), -2.0 * m / da)

    af = fpos[:, None] * inv_freq(df)[None, :]                                        # [F, df/2]
    ah = torch.arange(hp, dtype=torch.float64, device=dev)[:, None] * inv_freq(dh)[None, :]  # [hp, dh/2]
    aw = torch.arange(wp, dtype=torch.float64, device=dev)[:, None] * inv_freq(dw)[None, :]  # [wp, dw/2]
    n = fpos.shape[0]
    af = af[:, None, None, :].expand(n, hp, wp, df // 2)
    ah = ah[None, :, None, :].expand(n, hp, wp, dh // 2)
    aw = aw[None, None, :, :].expand(n, hp, wp, dw // 2)
    return torch.cat([af, ah, aw], dim=-1).reshape(n, hp * wp, head_dim // 2)


def rope_apply(x, fpos, hp, wp):
    """Rotate x [F, T, H, d] (T = hp*wp tokens per frame) by the 3D RoPE at frame positions fpos [F].
    Interleaved pairs (2p, 2p+1); computed in float64, returned in x.dtype."""
    n, T, H, d = x.shape
    ang = rope_angles(d, fpos, hp, wp, x.device)[:, :, None, :]   # [F, T, 1, d/2]
    c, s = torch.cos(ang), torch.sin(ang)
    xd = x.to(torch.float64).reshape(n, T, H, d // 2, 2)
    a, b = xd[..., 0], xd[..., 1]
    out = torch.stack([a * c - b * s, a * s + b * c], dim=-1)
    return out.reshape(n, T, H, d).to(x.dtype)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w


def layer_norm(x, eps, w=None, b=None):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def linear(x, W, prefix):
    return F.linear(x, W[prefix + ".weight"], W[prefix + ".bias"])


def attention(q, k, v, mask=None):
    """q [Lq, H, d], k/v [Lk, H, d] -> [Lq, H, d]. Softmax scale 1/sqrt(d); mask [Lq, Lk] bool (True =
    attend) or None."""
    d = q.shape[-1]
    s = torch.einsum("qhd,khd->hqk", q, k) * (1.0 / math.sqrt(d))
    if mask is not None:
        s = s.masked_fill(~mask[None, :, :], float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.einsum("hqk,khd->qhd", p, v)


# ---------------------------------------------------------------------------------------------------
# Model


class CausalWanDiT:
    """Causal Wan2.1 T2V DiT over plain tensors (no nn.Module)."""

    def __init__(self, cfg, state_dict, device="cpu", dtype=torch.float32):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        sd = normalize_state_dict(state_dict)
        want = expected_shapes(cfg)
        missing = sorted(set(want) - set(sd))
        extra = sorted(set(sd) - set(want))
        if missing:
            raise ValueError("checkpoint is missing %d tensors, e.g. %s" % (len(missing), missing[:5]))
        if extra:
            raise ValueError("checkpoint has %d unexpected tensors (I2V or another model?), e.g. %s" %
                             (len(extra), extra[:5]))
        W = {}
        for name, shape in want.items():
            t = sd[name]
            if list(t.shape) != shape:
                raise ValueError("%s: shape %s, expected %s" % (name, list(t.shape), shape))
            W[name] = t.detach().to(device=self.device, dtype=dtype).contiguous()
        self.W = W
        self.ctx_kv = None
        self.text_emb = None
        self.audio_kv = None     # audio mode: per layer (k, v) [F_total, audio_tokens, H, d]
        self.audio_emb = None    # audio mode: [F_total, audio_tokens, dim]
        self.audio_frame0 = 0    # absolute latent frame index of row 0 of audio_kv

    # --- conditioning ---

    def set_context(self, context):
        """context [L, text_dim], L <= text_len: zero-pad to text_len rows, text MLP, then the per-layer
        cross-attention K/V (computed once per prompt)."""
        cfg, W = self.cfg, self.W
        context = torch.as_tensor(context).to(self.device, self.dtype)
        if context.dim() != 2 or context.shape[1] != cfg.text_dim or context.shape[0] > cfg.text_len:
            raise ValueError("context must be [L <= %d, %d], got %s" % (cfg.text_len, cfg.text_dim, list(context.shape)))
        pad = torch.zeros(cfg.text_len, cfg.text_dim, device=self.device, dtype=self.dtype)
        pad[: context.shape[0]] = context
        h = linear(gelu_tanh(linear(pad, W, "text_embedding.0")), W, "text_embedding.2")
        self.text_emb = h
        H, d = cfg.heads, cfg.head_dim
        self.ctx_kv = []
        for i in range(cfg.layers):
            b = "blocks.%d.cross_attn." % i
            k = rms_norm(linear(h, W, b + "k"), W[b + "norm_k.weight"], cfg.eps).reshape(-1, H, d)
            v = linear(h, W, b + "v").reshape(-1, H, d)
            self.ctx_kv.append((k, v))
        return h

    def audio_tokens(self, mel_windows):
        """mel_windows [F, audio_window, audio_mels] natural-log mel (log_mel_ref.py) -> audio tokens
        [F, audio_tokens, dim]:  x = (logmel + 5) / 5;  group g = frames [g*w/A, (g+1)*w/A) flattened in
        (frame, mel) order;  audio_embedding.2(GELU_tanh(audio_embedding.0(group))) + audio_embedding.pos[g]."""
        cfg, W = self.cfg, self.W
        if cfg.conditioning != "audio":
            raise RuntimeError("audio_tokens() needs a model with conditioning 'audio'")
        m = torch.as_tensor(mel_windows).to(self.device, self.dtype)
        if m.dim() != 3 or m.shape[1] != cfg.audio_window or m.shape[2] != cfg.audio_mels:
            raise ValueError("mel windows must be [F, %d, %d], got %s" % (cfg.audio_window, cfg.audio_mels,
                                                                          list(m.shape)))
        x = ((m + 5.0) / 5.0).reshape(m.shape[0], cfg.audio_tokens, cfg.audio_features)
        h = linear(gelu_tanh(linear(x, W, "audio_embedding.0")), W, "audio_embedding.2")
        return h + W["audio_embedding.pos"][None]

    def set_audio(self, mel_windows, frame0=0):
        """Audio conditioning for latent frames frame0 .. frame0 + F - 1: mel_windows [F, audio_window,
        audio_mels] (row i = the window of latent frame frame0 + i, see ar_loop.latent_mel_windows).
        Computes the audio tokens and every layer's cross-attention K/V once; the queries of latent frame
        f attend only to the audio_tokens tokens of frame f."""
        cfg, W = self.cfg, self.W
        h = self.audio_tokens(mel_windows)
        n, A = h.shape[0], h.shape[1]
        H, d = cfg.heads, cfg.head_dim
        self.audio_emb = h
        self.audio_frame0 = int(frame0)
        self.audio_kv = []
        for i in range(cfg.layers):
            b = "blocks.%d.cross_attn." % i
            k = rms_norm(linear(h, W, b + "k"), W[b + "norm_k.weight"], cfg.eps).reshape(n, A, H, d)
            v = linear(h, W, b + "v").reshape(n, A, H, d)
            self.audio_kv.append((k, v))
        return h

    def time_embedding(self, t):
        """t [F] (float64 values) -> e [F, dim], e0 [F, 6, dim]."""
        W = self.W
        t = torch.as_tensor(t, dtype=torch.float64).to(self.device)
        emb = timestep_sinusoid(self.cfg.freq_dim, t).to(self.dtype)
        e = linear(F.silu(linear(emb, W, "time_embedding.0")), W, "time_embedding.2")
        e0 = linear(F.silu(e), W, "time_projection.1").reshape(-1, 6, self.cfg.dim)
        return e, e0

    def patch_embed(self, x):
        """x [C_in, F, h, w] -> tokens [F, T, dim], T = (h/ph)(w/pw), token order (i, j) row-major."""
        cfg = self.cfg
        _, ph, pw = cfg.patch_size
        C, n, h, w = x.shape
        if C != cfg.in_channels or h % ph or w % pw:
            raise ValueError("latent shape %s does not fit the model" % list(x.shape))
        hp, wp = h // ph, w // pw
        p = x.reshape(C, n, hp, ph, wp, pw).permute(1, 2, 4, 0, 3, 5).reshape(n, hp * wp, C * ph * pw)
        Wp = self.W["patch_embedding.weight"].reshape(cfg.dim, C * ph * pw)
        return F.linear(p, Wp, self.W["patch_embedding.bias"])

    def unpatchify(self, u, n, hp, wp):
        """u [F, T, ph*pw*C_out] -> [C_out, F, h, w]; within a token the channel is fastest."""
        cfg = self.cfg
        _, ph, pw = cfg.patch_size
        C = cfg.out_channels
        u = u.reshape(n, hp, wp, ph, pw, C).permute(5, 0, 1, 3, 2, 4)
        return u.reshape(C, n, hp * ph, wp * pw)

    # --- transformer ---

    def _block(self, i, x, e0, self_attn_fn, frames=None):
        """x [F, T, dim] residual stream, e0 [F, 6, dim]; self_attn_fn(layer, q, k, v) -> [F, T, H, d]
        where q, k are after RMSNorm and before RoPE. frames: absolute latent frame indices of the F
        frames (audio mode: which frame's audio tokens each frame's queries see)."""
        cfg, W = self.cfg, self.W
        b = "blocks.%d." % i
        n, T, D = x.shape
        H, d = cfg.heads, cfg.head_dim
        mod = W[b + "modulation"] + e0                                    # [F, 6, dim]
        shift_msa, scale_msa, gate_msa, c_shift, c_scale, c_gate = (mod[:, k][:, None, :] for k in range(6))

        y = layer_norm(x, cfg.eps) * (1 + scale_msa) + shift_msa
        a = b + "self_attn."
        q = rms_norm(linear(y, W, a + "q"), W[a + "norm_q.weight"], cfg.eps).reshape(n, T, H, d)
        k = rms_norm(linear(y, W, a + "k"), W[a + "norm_k.weight"], cfg.eps).reshape(n, T, H, d)
        v = linear(y, W, a + "v").reshape(n, T, H, d)
        o = self_attn_fn(i, q, k, v).reshape(n, T, D)
        x = x + linear(o, W, a + "o") * gate_msa

        a = b + "cross_attn."
        y = layer_norm(x, cfg.eps, W[b + "norm3.weight"], W[b + "norm3.bias"])
        if cfg.conditioning == "audio":
            q = rms_norm(linear(y, W, a + "q"), W[a + "norm_q.weight"], cfg.eps).reshape(n, T, H, d)
            ak, av = self.audio_kv[i]
            rows = torch.as_tensor([f - self.audio_frame0 for f in frames], dtype=torch.long, device=self.device)
            ck, cv = ak.index_select(0, rows), av.index_select(0, rows)        # [F, A, H, d]
            s = torch.einsum("fthd,fahd->fhta", q, ck) * (1.0 / math.sqrt(d))
            o = torch.einsum("fhta,fahd->fthd", torch.softmax(s, dim=-1), cv).reshape(n, T, D)
        else:
            q = rms_norm(linear(y, W, a + "q"), W[a + "norm_q.weight"], cfg.eps).reshape(n * T, H, d)
            ck, cv = self.ctx_kv[i]
            o = attention(q, ck, cv).reshape(n, T, D)
        x = x + linear(o, W, a + "o")

        y = layer_norm(x, cfg.eps) * (1 + c_scale) + c_shift
        y = linear(gelu_tanh(linear(y, W, b + "ffn.0")), W, b + "ffn.2")
        return x + y * c_gate

    def _run(self, x, t, self_attn_fn, taps=None, frame0=None):
        cfg, W = self.cfg, self.W
        x = torch.as_tensor(x).to(self.device, self.dtype)
        n = x.shape[1]
        frames = None
        if cfg.conditioning == "audio":
            if self.audio_kv is None:
                raise RuntimeError("set_audio() first")
            if frame0 is None:
                raise ValueError("audio mode needs the chunk's absolute frame index (frame0)")
            frames = list(range(int(frame0), int(frame0) + n))
            have = self.audio_kv[0][0].shape[0]
            if frames[0] < self.audio_frame0 or frames[-1] >= self.audio_frame0 + have:
                raise ValueError("frames %d..%d have no audio (set_audio covers %d..%d)" %
                                 (frames[0], frames[-1], self.audio_frame0, self.audio_frame0 + have - 1))
        elif self.ctx_kv is None:
            raise RuntimeError("set_context() first")
        t = [float(v) for v in t]
        if len(t) != n:
            raise ValueError("%d timesteps for %d frames" % (len(t), n))
        _, ph, pw = cfg.patch_size
        hp, wp = x.shape[2] // ph, x.shape[3] // pw
        e, e0 = self.time_embedding(t)
        h = self.patch_embed(x)
        if taps is not None:
            taps["e"], taps["e0"], taps["tokens_in"] = e, e0, h.reshape(-1, cfg.dim)
            taps["text_emb"] = self.text_emb if cfg.conditioning == "text" else self.audio_emb
        for i in range(cfg.layers):
            h = self._block(i, h, e0, lambda li, q, k, v: self_attn_fn(li, q, k, v, hp, wp), frames)
            if taps is not None:
                taps["block%d_out" % i] = h.reshape(-1, cfg.dim)
        mod = W["head.modulation"] + e[:, None, :]                         # [F, 2, dim]
        shift, scale = mod[:, 0][:, None, :], mod[:, 1][:, None, :]
        u = linear(layer_norm(h, cfg.eps) * (1 + scale) + shift, W, "head.head")
        return self.unpatchify(u, n, hp, wp)

    def forward_chunk(self, x, t, kv, taps=None, frame0=None):
        """One chunk x [C_in, F, h, w] with per-frame timesteps t[F] against a KV cache view `kv`
        (see ar_loop.py). kv.update_and_gather(layer, k, v) stores this chunk's pre-RoPE K/V and returns
        (k_vis [N, T, H, d], v_vis, key_frame_pos [N], query_frame_pos [F]). Returns the velocity
        [C_out, F, h, w]. Audio mode: the chunk's first absolute frame index is `frame0`, or the view's
        `frame0` attribute (ar_loop's views have one)."""
        if frame0 is None:
            frame0 = getattr(kv, "frame0", None)

        def sa(li, q, k, v, hp, wp):
            kvis, vvis, kpos, qpos = kv.update_and_gather(li, k, v)
            qr = rope_apply(q, qpos, hp, wp)
            kr = rope_apply(kvis, kpos, hp, wp)
            H, d = q.shape[2], q.shape[3]
            o = attention(qr.reshape(-1, H, d), kr.reshape(-1, H, d), vvis.reshape(-1, H, d))
            return o.reshape(q.shape)

        return self._run(x, t, sa, taps, frame0)

    def forward_full(self, x, t, chunk_frames, sinks=0, window=None, taps=None, frame0=0):
        """All frames at once, x [C_in, F_total, h, w], t[F_total], absolute temporal RoPE positions
        0..F_total-1. Block-causal mask: a query frame in chunk b sees the key frames of chunks <= b.
        With `window` (and `sinks`) given, it sees only the frames visible while chunk b was generated:
        f < min(sinks, e) or max(sinks, e - window) <= f < e, where e = (b+1)*chunk_frames.
        Audio mode: frame i takes the audio tokens of absolute frame frame0 + i."""
        n = x.shape[1]
        fr = torch.arange(n, device=self.device)
        end = (fr // chunk_frames + 1) * chunk_frames                    # per query frame
        kf = fr[None, :]
        e = end[:, None]
        if window is None:
            fmask = kf < e
        else:
            fmask = (kf < torch.clamp(e, max=sinks)) | ((kf >= torch.clamp(e - window, min=sinks)) & (kf < e))

        def sa(li, q, k, v, hp, wp):
            T = hp * wp
            qr = rope_apply(q, fr, hp, wp)
            kr = rope_apply(k, fr, hp, wp)
            mask = fmask.repeat_interleave(T, dim=0).repeat_interleave(T, dim=1)
            H, d = q.shape[2], q.shape[3]
            o = attention(qr.reshape(-1, H, d), kr.reshape(-1, H, d), v.reshape(-1, H, d), mask)
            return o.reshape(q.shape)

        return self._run(x, t, sa, taps, frame0)


def load_model(weights_path, config, device="cpu", dtype=torch.float32):
    """Load a .safetensors checkpoint (any float dtype; upcast) into a CausalWanDiT."""
    from st_io import load

    sd, _ = load(weights_path)
    cfg = config if isinstance(config, Config) else Config.load(config)
    return CausalWanDiT(cfg, sd, device=device, dtype=dtype)
