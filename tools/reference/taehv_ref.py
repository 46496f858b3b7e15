"""PyTorch reference for the TAEHV tiny video decoder (taew2_1-compatible), wan21-model.md section 4.

Written from the spec; the widths are configurable so that the goldens can use a tiny model:

    decoder.0   Clamp: 3 tanh(x / 3)
    decoder.1   conv 3x3 latent -> c0 (+ bias), decoder.2 ReLU
    decoder.3-5   MemBlock(c0)      decoder.6 Upsample x2, decoder.7 TGrow(c0, 1),  decoder.8 conv c0 -> c1
    decoder.9-11  MemBlock(c1)      decoder.12 Upsample x2, decoder.13 TGrow(c1, 2), decoder.14 conv c1 -> c2
    decoder.15-17 MemBlock(c2)      decoder.18 Upsample x2, decoder.19 TGrow(c2, 2), decoder.20 conv c2 -> c3
    decoder.21  ReLU, decoder.22 conv 3x3 c3 -> 3 (+ bias)
    then clamp to [0, 1] and drop the first 3 frames (t_upscale - 1).

MemBlock(C)(x_t, past) = ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(cat[x_t, past]))))) + x_t), past = the block's
input at the previous time step (zeros at t = 0). TGrow(C, s): 1x1 conv C -> s*C (no bias); channels
[k*C, (k+1)*C) become sub-frame k. Convs 8/14/20 and TGrow have no bias; every 2-D conv is 3x3, pad 1.

Two formulations that must agree:
  decode_batch   every layer over the whole sequence at once (the parallel form, NTCHW)
  decode_stream  one latent at a time, a memory frame per MemBlock (what the engine does)
Both return the frames before the final clamp unless clamp=True.
"""

import torch
import torch.nn.functional as F

MEMBLOCKS = ((3, 4, 5), (9, 10, 11), (15, 16, 17))
TGROWS = (7, 13, 19)          # TGrow layers, strides (1, 2, 2) for taew2_1
STRIDES = (1, 2, 2)
PROJ = (8, 14, 20)            # the bias-free 3x3 convs after each TGrow
TRIM = 3                      # frames_to_trim = 2 * 2 - 1
REAL_WIDTHS = (256, 128, 64, 64)


def expected_shapes(widths=REAL_WIDTHS, latent=16):
    """decoder.* name -> shape for the given widths (c0, c1, c2, c3)."""
    c = widths
    s = {"decoder.1.weight": (c[0], latent, 3, 3), "decoder.1.bias": (c[0],)}
    for stage in range(3):
        C = c[stage]
        for i in MEMBLOCKS[stage]:
            s["decoder.%d.conv.0.weight" % i] = (C, 2 * C, 3, 3)
            s["decoder.%d.conv.0.bias" % i] = (C,)
            for j in (2, 4):
                s["decoder.%d.conv.%d.weight" % (i, j)] = (C, C, 3, 3)
                s["decoder.%d.conv.%d.bias" % (i, j)] = (C,)
        s["decoder.%d.conv.weight" % TGROWS[stage]] = (STRIDES[stage] * C, C, 1, 1)
        s["decoder.%d.weight" % PROJ[stage]] = (c[stage + 1], C, 3, 3)
    s["decoder.22.weight"] = (3, c[3], 3, 3)
    s["decoder.22.bias"] = (3,)
    return s


def find_prefix(sd):
    """The prefix in front of `decoder.1.weight` ('' for the public checkpoints)."""
    hits = [k[: -len("decoder.1.weight")] for k in sd if k.endswith("decoder.1.weight")]
    hits = [p for p in hits if p == "" or p.endswith(".")]
    if len(hits) != 1:
        raise ValueError("not a TAEHV checkpoint: %s tensor 'decoder.1.weight'" % ("more than one" if hits else "no"))
    return hits[0]


def load_decoder_weights(sd):
    """state dict (any prefix, encoder keys ignored) -> (dict decoder.* -> f32 tensor, widths, latent).

    Widths come from the shapes. A TGrow weight with more rows than the layer needs keeps its last
    rows (the last time step), as the public loader's patch_tgrow_layers does."""
    p = find_prefix(sd)
    dec = {k[len(p):]: v.float() for k, v in sd.items() if k.startswith(p + "decoder.")}
    w1 = dec["decoder.1.weight"]
    if "decoder.22.weight" not in dec:
        raise ValueError("missing tensor 'decoder.22.weight' (the super variant and patch sizes > 1 are not supported)")
    widths = (w1.shape[0], dec["decoder.8.weight"].shape[0], dec["decoder.14.weight"].shape[0],
              dec["decoder.20.weight"].shape[0])
    latent = w1.shape[1]
    want = expected_shapes(widths, latent)
    for stage, i in enumerate(TGROWS):
        k = "decoder.%d.conv.weight" % i
        rows = want[k][0]
        if k in dec and dec[k].shape[0] > rows:
            dec[k] = dec[k][-rows:]
    for k, shape in want.items():
        if k not in dec:
            raise ValueError("missing tensor %r (expected %s)" % (k, list(shape)))
        if tuple(dec[k].shape) != tuple(shape):
            raise ValueError("tensor %r has shape %s, expected %s" % (k, list(dec[k].shape), list(shape)))
    extra = sorted(set(dec) - set(want))
    if extra:
        raise ValueError("unexpected decoder tensors %s" % extra)
    return {k: dec[k].contiguous() for k in want}, widths, latent


def _conv(x, W, name, bias=True):
    w = W[name + ".weight"]
    return F.conv2d(x, w, W[name + ".bias"] if bias else None, padding=w.shape[-1] // 2)


def _memblock(W, i, x, past):
    p = "decoder.%d.conv" % i
    h = F.relu(_conv(torch.cat([x, past], 1), W, p + ".0"))
    h = F.relu(_conv(h, W, p + ".2"))
    return F.relu(_conv(h, W, p + ".4") + x)


def _tgrow(W, stage, x):
    """[n, C, H, W] -> [n * s, C, H, W], sub-frame k of frame t at index t * s + k."""
    n, C, H, Wd = x.shape
    return F.conv2d(x, W["decoder.%d.conv.weight" % TGROWS[stage]]).reshape(n * STRIDES[stage], C, H, Wd)


def _up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def decode_batch(W, lat, clamp=False):
    """lat NTCHW [N, T, latent, h, w] -> frames NTCHW [N, 4T - 3, 3, 8h, 8w]."""
    N, T = lat.shape[:2]
    x = lat.reshape(N * T, *lat.shape[2:])
    x = torch.tanh(x / 3) * 3
    x = F.relu(_conv(x, W, "decoder.1"))
    for stage in range(3):
        for i in MEMBLOCKS[stage]:
            t = x.shape[0] // N
            xs = x.reshape(N, t, *x.shape[1:])
            past = torch.cat([torch.zeros_like(xs[:, :1]), xs[:, :-1]], 1).reshape(x.shape)
            x = _memblock(W, i, x, past)
        x = _tgrow(W, stage, _up(x))
        x = _conv(x, W, "decoder.%d" % PROJ[stage], bias=False)
    x = _conv(F.relu(x), W, "decoder.22")
    x = x.reshape(N, -1, *x.shape[1:])[:, TRIM:]
    return x.clamp(0, 1) if clamp else x


class StreamingDecoder:
    """One latent per push; each MemBlock remembers its previous input frame. Sub-frames are
    processed depth first (the order does not matter: every block still sees its inputs in time order)."""

    def __init__(self, W):
        self.W = W
        self.reset()

    def reset(self):
        self.mem = {}
        self.raw = 0  # raw output frames produced, including the trimmed ones

    def _stage(self, stage, x, out):
        for i in MEMBLOCKS[stage]:
            past = self.mem.get(i)
            past = torch.zeros_like(x) if past is None else past
            self.mem[i] = x
            x = _memblock(self.W, i, x, past)
        for sub in _tgrow(self.W, stage, _up(x)).split(1, 0):
            y = _conv(sub, self.W, "decoder.%d" % PROJ[stage], bias=False)
            if stage < 2:
                self._stage(stage + 1, y, out)
            else:
                y = _conv(F.relu(y), self.W, "decoder.22")
                if self.raw >= TRIM:
                    out.append(y)
                self.raw += 1

    def push(self, z):
        """z [N, latent, h, w] -> list of frames [N, 3, 8h, 8w] (1 for the stream's first latent, then 4)."""
        out = []
        x = F.relu(_conv(torch.tanh(z / 3) * 3, self.W, "decoder.1"))
        self._stage(0, x, out)
        return out


def decode_stream(W, lat, clamp=False):
    d = StreamingDecoder(W)
    frames = []
    for t in range(lat.shape[1]):
        frames += d.push(lat[:, t])
    x = torch.stack(frames, 1)
    return x.clamp(0, 1) if clamp else x


def dit_to_ntchw(lat):
    """The engine's latent layout [16, F, h, w] -> NTCHW [1, F, 16, h, w]."""
    return lat.permute(1, 0, 2, 3).unsqueeze(0).contiguous()
