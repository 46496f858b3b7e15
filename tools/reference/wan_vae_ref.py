"""PyTorch reference for the Wan2.1 VAE decoder (`wan21-model.md` section 3), written from the spec.

Two formulations of the same decoder:
  * `StreamingWanVaeDecoder` follows the official decode loop: `conv2` on the whole latent, then the
    decoder once per latent frame with a feature cache per causal conv (CACHE_T = 2, the upsample3d
    'Rep' state on the first call, zero history on the second).
  * `decode_batch` runs every layer over the whole sequence at once: causal convs zero-padded in time,
    and each upsample3d passes its first frame through untouched and runs `time_conv` on the rest (that
    is exactly what the 'Rep' state amounts to).  Equal to the streaming loop up to float rounding.

Weights are a dict with the official key names (`decoder.*`, `conv2.*`); `load_decoder_weights`
also accepts diffusers names (`post_quant_conv`, `decoder.up_blocks...`) and a prefix (`vae.`).
The configuration is inferred from the shapes: `decoder.conv1.weight` [4*dim, z_dim, 3, 3, 3].
Both formulations return the decoder output before the final clamp; `decode(..., clamp=True)` clamps
to [-1, 1] like the official `WanVAE.decode`.
"""

import re

import torch
import torch.nn.functional as F

MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
       3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]
CACHE_T = 2


# ---------------------------------------------------------------------------------------------------
# Layout: (key of decoder.upsamples.N, kind, in channels, out channels) for base width `dim`.
def upsample_layout(dim):
    c4, c2, c1 = 4 * dim, 2 * dim, dim
    lay = []
    lay += [("res", c4, c4)] * 3 + [("up3d", c4, c2)]
    lay += [("res", c2, c4)] + [("res", c4, c4)] * 2 + [("up3d", c4, c2)]
    lay += [("res", c2, c2)] * 3 + [("up2d", c2, c1)]
    lay += [("res", c1, c1)] * 3
    return lay


def _res_shapes(p, cin, cout):
    s = {
        p + "residual.0.gamma": (cin, 1, 1, 1),
        p + "residual.2.weight": (cout, cin, 3, 3, 3), p + "residual.2.bias": (cout,),
        p + "residual.3.gamma": (cout, 1, 1, 1),
        p + "residual.6.weight": (cout, cout, 3, 3, 3), p + "residual.6.bias": (cout,),
    }
    if cin != cout:
        s[p + "shortcut.weight"] = (cout, cin, 1, 1, 1)
        s[p + "shortcut.bias"] = (cout,)
    return s


def expected_shapes(dim=96, z_dim=16):
    """Official key -> shape for `conv2` and the decoder."""
    c4 = 4 * dim
    s = {"conv2.weight": (z_dim, z_dim, 1, 1, 1), "conv2.bias": (z_dim,),
         "decoder.conv1.weight": (c4, z_dim, 3, 3, 3), "decoder.conv1.bias": (c4,)}
    s.update(_res_shapes("decoder.middle.0.", c4, c4))
    s.update({"decoder.middle.1.norm.gamma": (c4, 1, 1), "decoder.middle.1.to_qkv.weight": (3 * c4, c4, 1, 1),
              "decoder.middle.1.to_qkv.bias": (3 * c4,), "decoder.middle.1.proj.weight": (c4, c4, 1, 1),
              "decoder.middle.1.proj.bias": (c4,)})
    s.update(_res_shapes("decoder.middle.2.", c4, c4))
    for n, (kind, cin, cout) in enumerate(upsample_layout(dim)):
        p = "decoder.upsamples.%d." % n
        if kind == "res":
            s.update(_res_shapes(p, cin, cout))
        else:
            s[p + "resample.1.weight"] = (cout, cin, 3, 3)
            s[p + "resample.1.bias"] = (cout,)
            if kind == "up3d":
                s[p + "time_conv.weight"] = (2 * cin, cin, 3, 1, 1)
                s[p + "time_conv.bias"] = (2 * cin,)
    s.update({"decoder.head.0.gamma": (dim, 1, 1, 1), "decoder.head.2.weight": (3, dim, 3, 3, 3),
              "decoder.head.2.bias": (3,)})
    return s


# ---------------------------------------------------------------------------------------------------
# Checkpoint names
_RES_SUB = [("norm1.gamma", "residual.0.gamma"), ("conv1.", "residual.2."), ("norm2.gamma", "residual.3.gamma"),
            ("conv2.", "residual.6."), ("conv_shortcut.", "shortcut.")]


def diffusers_to_official(name):
    """One diffusers `AutoencoderKLWan` key -> the official key (None for encoder / quant_conv keys)."""
    if name.startswith("post_quant_conv."):
        return "conv2." + name[len("post_quant_conv."):]
    if not name.startswith("decoder."):
        return None
    n = name[len("decoder."):]
    for a, b in [("conv_in.", "conv1."), ("norm_out.gamma", "head.0.gamma"), ("conv_out.", "head.2.")]:
        if n.startswith(a):
            return "decoder." + b + n[len(a):]
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)$", n)
    if m:
        idx = {"resnets": {"0": "0", "1": "2"}, "attentions": {"0": "1"}}[m.group(1)][m.group(2)]
        rest = m.group(3)
    else:
        m = re.match(r"up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*)$", n)
        if not m:
            raise ValueError("unknown diffusers decoder key %s" % name)
        b = int(m.group(1))
        j = int(m.group(3)) if m.group(3) is not None else 3
        idx = "upsamples.%d" % (4 * b + j)
        rest = m.group(4)
        return "decoder." + idx + "." + _rename_res(rest)
    return "decoder.middle." + idx + "." + _rename_res(rest)


def _rename_res(rest):
    for a, b in _RES_SUB:
        if rest.startswith(a):
            return b + rest[len(a):]
    return rest


def official_to_diffusers(name):
    """Inverse of `diffusers_to_official` (for making test checkpoints)."""
    if name.startswith("conv2."):
        return "post_quant_conv." + name[len("conv2."):]
    n = name[len("decoder."):]
    for a, b in [("conv1.", "conv_in."), ("head.0.gamma", "norm_out.gamma"), ("head.2.", "conv_out.")]:
        if n.startswith(a):
            return "decoder." + b + n[len(a):]
    m = re.match(r"(middle|upsamples)\.(\d+)\.(.*)$", n)
    kind, i, rest = m.group(1), int(m.group(2)), m.group(3)
    for b, a in _RES_SUB:
        if rest.startswith(a):
            rest = b + rest[len(a):]
            break
    if kind == "middle":
        blk = {0: "resnets.0", 1: "attentions.0", 2: "resnets.1"}[i]
        return "decoder.mid_block.%s.%s" % (blk, rest)
    b, j = divmod(i, 4)
    blk = "upsamplers.0" if j == 3 else "resnets.%d" % j
    return "decoder.up_blocks.%d.%s.%s" % (b, blk, rest)


def load_decoder_weights(sd):
    """Any supported state dict -> (official-named decoder + conv2 weights as float32, dim, z_dim)."""
    anchor = [k for k in sd if k.endswith("decoder.conv1.weight") or k.endswith("decoder.conv_in.weight")]
    if len(anchor) != 1:
        raise ValueError("not a Wan2.1 VAE state dict: no unique decoder.conv1/conv_in weight")
    diffusers = anchor[0].endswith("conv_in.weight")
    prefix = anchor[0][: -len("decoder.conv_in.weight" if diffusers else "decoder.conv1.weight")]
    out = {}
    for k, v in sd.items():
        if not k.startswith(prefix):
            continue
        k = k[len(prefix):]
        if diffusers:
            k = diffusers_to_official(k)
        elif not (k.startswith("decoder.") or k.startswith("conv2.")):
            k = None
        if k is not None:
            out[k] = v.float()
    c4, z = out["decoder.conv1.weight"].shape[:2]
    dim = c4 // 4
    for k, shp in expected_shapes(dim, z).items():
        if k not in out:
            raise KeyError("missing tensor %s (expected %s)" % (k, list(shp)))
        if tuple(out[k].shape) != tuple(shp):
            raise ValueError("tensor %s has shape %s, expected %s" % (k, list(out[k].shape), list(shp)))
    return out, dim, z


# ---------------------------------------------------------------------------------------------------
# Building blocks on [C, T, H, W] (batch dim dropped)
def rms(x, gamma):
    """Wan RMS_norm over channels: F.normalize(x, dim=C) * sqrt(C) * gamma."""
    return F.normalize(x, dim=0) * (x.shape[0] ** 0.5) * gamma.reshape(-1, *([1] * (x.dim() - 1)))


def conv_t(x, w, b, hist=None):
    """Causal conv over time on [C, T, H, W]; `hist` [C, n<=2, H, W] are the frames before x (missing
    ones are zeros). Spatial zero padding k//2."""
    kt, kh, kw = w.shape[2:]
    pad_front = kt - 1
    if hist is not None:
        x = torch.cat([hist, x], 1)
        pad_front -= hist.shape[1]
    x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2, pad_front, 0))
    return F.conv3d(x[None], w, b)[0]


def up2x_conv(x, w, b):
    """Per frame: nearest x2 then a 3x3 conv.  x [C, T, H, W] -> [Cout, T, 2H, 2W]."""
    f = x.permute(1, 0, 2, 3)
    f = F.interpolate(f, scale_factor=2.0, mode="nearest")  # = nearest-exact at x2
    return F.conv2d(f, w, b, padding=1).permute(1, 0, 2, 3)


def attention(x, W, p):
    """Single-head attention over each frame's H*W tokens; returns x + proj(attn)."""
    C, T, H, Wd = x.shape
    n = rms(x, W[p + "norm.gamma"]).permute(1, 0, 2, 3)                       # [T, C, H, W]
    qkv = F.conv2d(n, W[p + "to_qkv.weight"], W[p + "to_qkv.bias"])            # [T, 3C, H, W]
    qkv = qkv.reshape(T, 3 * C, H * Wd).transpose(1, 2)                        # [T, HW, 3C]
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    a = torch.softmax(q @ k.transpose(1, 2) / (C ** 0.5), dim=-1) @ v          # [T, HW, C]
    a = a.transpose(1, 2).reshape(T, C, H, Wd)
    o = F.conv2d(a, W[p + "proj.weight"], W[p + "proj.bias"])
    return x + o.permute(1, 0, 2, 3)


def interleave(tc, C):
    """time_conv output [2C, T, H, W] -> [C, 2T, H, W]: frame 2t = channels [0:C], 2t+1 = [C:2C]."""
    T = tc.shape[1]
    return torch.stack([tc[:C], tc[C:]], 2).reshape(C, 2 * T, *tc.shape[2:])


def denorm(z):
    """DiT-space latents [16, T, h, w] -> VAE space, as the official code: z / (1/std) + mean."""
    mean = torch.tensor(MEAN, dtype=z.dtype).view(-1, 1, 1, 1)
    inv = 1.0 / torch.tensor(STD, dtype=z.dtype).view(-1, 1, 1, 1)
    return z / inv + mean


# ---------------------------------------------------------------------------------------------------
class StreamingWanVaeDecoder:
    """The official per-latent decode loop with one feature cache entry per causal conv."""

    def __init__(self, W, dim, z_dim=16):
        self.W, self.dim, self.z = W, dim, z_dim
        self.reset()

    def reset(self):
        self.cache = {}

    def _cconv(self, key, x):
        """Cached causal k3 conv: the cache keeps the last 2 input frames (1 + the previous one when
        this call has a single frame), like the official feat_cache."""
        prev = self.cache.get(key)
        keep = x[:, -CACHE_T:]
        if keep.shape[1] < 2 and prev is not None:
            keep = torch.cat([prev[:, -1:], keep], 1)
        y = conv_t(x, self.W[key + ".weight"], self.W[key + ".bias"], prev)
        self.cache[key] = keep.clone()
        return y

    def _res(self, p, x):
        W = self.W
        h = conv_t(x, W[p + "shortcut.weight"], W[p + "shortcut.bias"]) if p + "shortcut.weight" in W else x
        y = F.silu(rms(x, W[p + "residual.0.gamma"]))
        y = self._cconv(p + "residual.2", y)
        y = F.silu(rms(y, W[p + "residual.3.gamma"]))
        y = self._cconv(p + "residual.6", y)
        return y + h

    def _up3d(self, p, x):
        key = p + "time_conv"
        st = self.cache.get(key)
        if st is None:                       # first call: 'Rep', time_conv skipped
            self.cache[key] = "Rep"
        else:
            keep = x[:, -CACHE_T:]
            if keep.shape[1] < 2:
                first = torch.zeros_like(keep) if isinstance(st, str) else st[:, -1:]
                keep = torch.cat([first, keep], 1)
            hist = None if isinstance(st, str) else st   # second call: zero history
            tc = conv_t(x, self.W[key + ".weight"], self.W[key + ".bias"], hist)
            self.cache[key] = keep.clone()
            x = interleave(tc, x.shape[0])
        return up2x_conv(x, self.W[p + "resample.1.weight"], self.W[p + "resample.1.bias"])

    def decode_frame(self, x):
        """x: one VAE-space latent after conv2, [z, 1, h, w] -> [3, 1 or 4, 8h, 8w] (no clamp)."""
        W = self.W
        x = self._cconv("decoder.conv1", x)
        x = self._res("decoder.middle.0.", x)
        x = attention(x, W, "decoder.middle.1.")
        x = self._res("decoder.middle.2.", x)
        for n, (kind, _, _) in enumerate(upsample_layout(self.dim)):
            p = "decoder.upsamples.%d." % n
            if kind == "res":
                x = self._res(p, x)
            elif kind == "up3d":
                x = self._up3d(p, x)
            else:
                x = up2x_conv(x, W[p + "resample.1.weight"], W[p + "resample.1.bias"])
        x = F.silu(rms(x, W["decoder.head.0.gamma"]))
        return self._cconv("decoder.head.2", x)

    def decode(self, z, clamp=False):
        """z: DiT-space latents [16, T, h, w] -> [3, 1 + 4(T-1), 8h, 8w]."""
        self.reset()
        x = conv_t(denorm(z), self.W["conv2.weight"], self.W["conv2.bias"])
        out = torch.cat([self.decode_frame(x[:, i:i + 1]) for i in range(z.shape[1])], 1)
        self.reset()
        return out.clamp(-1, 1) if clamp else out


def decode_batch(W, dim, z, clamp=False):
    """Layer by layer over the whole sequence (no caches); same result as the streaming loop."""
    def res(p, x):
        h = conv_t(x, W[p + "shortcut.weight"], W[p + "shortcut.bias"]) if p + "shortcut.weight" in W else x
        y = conv_t(F.silu(rms(x, W[p + "residual.0.gamma"])), W[p + "residual.2.weight"], W[p + "residual.2.bias"])
        y = conv_t(F.silu(rms(y, W[p + "residual.3.gamma"])), W[p + "residual.6.weight"], W[p + "residual.6.bias"])
        return y + h

    x = conv_t(denorm(z), W["conv2.weight"], W["conv2.bias"])
    x = conv_t(x, W["decoder.conv1.weight"], W["decoder.conv1.bias"])
    x = res("decoder.middle.0.", x)
    x = attention(x, W, "decoder.middle.1.")
    x = res("decoder.middle.2.", x)
    for n, (kind, _, _) in enumerate(upsample_layout(dim)):
        p = "decoder.upsamples.%d." % n
        if kind == "res":
            x = res(p, x)
            continue
        if kind == "up3d" and x.shape[1] > 1:
            # frame 0 skips time_conv ('Rep'); the rest run it from zero history
            tc = conv_t(x[:, 1:], W[p + "time_conv.weight"], W[p + "time_conv.bias"])
            x = torch.cat([x[:, :1], interleave(tc, x.shape[0])], 1)
        x = up2x_conv(x, W[p + "resample.1.weight"], W[p + "resample.1.bias"])
    x = F.silu(rms(x, W["decoder.head.0.gamma"]))
    x = conv_t(x, W["decoder.head.2.weight"], W["decoder.head.2.bias"])
    return x.clamp(-1, 1) if clamp else x
