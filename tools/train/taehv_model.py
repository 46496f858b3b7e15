"""TAEHV-architecture video autoencoder (madebyollin/taehv's design, written from wan21-model.md section 4)
at narrow widths, for training the default avatar's latent space.

    encoder (keys encoder.N, not exported):
      0 conv 3->e0 (+b), 1 ReLU,
      2 TPool(e0, 2), 3 conv e0->e1 stride 2 (no bias), 4-6 MemBlock(e1)
      7 TPool(e1, 2), 8 conv e1->e2 stride 2 (no bias), 9-11 MemBlock(e2)
      12 TPool(e2, 1), 13 conv e2->e3 stride 2 (no bias), 14-16 MemBlock(e3)
      17 conv e3->16 (+b)
    decoder (keys decoder.N, exactly the taew2_1 layout of tools/reference/taehv_ref.py and
    engine/decode/taehv.h): 0 Clamp, 1 conv 16->c0, 2 ReLU, 3-5 MemBlock(c0), 6 Upsample, 7 TGrow(c0, 1),
      8 conv c0->c1, 9-11 MemBlock(c1), 12 Upsample, 13 TGrow(c1, 2), 14 conv c1->c2, 15-17 MemBlock(c2),
      18 Upsample, 19 TGrow(c2, 2), 20 conv c2->c3, 21 ReLU, 22 conv c3->3 (+b)

Time: the encoder takes P = 1 + 4(T-1) frames, front-padded with 3 copies of frame 0 (4T frames), and
gives T latents: latent 0 <- frame 0, latent L <- frames 4L-3..4L (causal: MemBlocks see the past only).
The decoder gives 4T frames, the first 3 dropped: latent L -> frames 4L-3..4L, the same grouping, which
is what engine/audio/log_mel.h assumes (latent L's audio ends at (4L+1)/16 s). Frames are RGB in [0, 1].

Everything runs in the parallel form over NTCHW tensors (each MemBlock's past = its input shifted by one
frame, zeros first), which equals the streaming decode (checked against taehv_ref.decode_stream).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DEC_WIDTHS = (64, 32, 16, 16)
DEFAULT_ENC_WIDTHS = (64, 64, 64, 64)
LATENT = 16


def conv(cin, cout, stride=1, bias=True):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Sequential(conv(2 * c, c), nn.ReLU(), conv(c, c), nn.ReLU(), conv(c, c))

    def forward(self, x, past):
        return F.relu(self.conv(torch.cat([x, past], 1)) + x)


class TPool(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(c * stride, c, 1, bias=False)

    def forward(self, x):
        c, h, w = x.shape[-3:]
        return self.conv(x.reshape(-1, self.stride * c, h, w))


class TGrow(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(c, c * stride, 1, bias=False)

    def forward(self, x):
        c, h, w = x.shape[-3:]
        return self.conv(x).reshape(-1, c, h, w)


def _apply_parallel(seq, x, n):
    """Run a Sequential over x [n*T, C, H, W] (frames of each of the n clips contiguous, time order)."""
    for layer in seq:
        if isinstance(layer, MemBlock):
            nt, c, h, w = x.shape
            xs = x.reshape(n, nt // n, c, h, w)
            past = torch.cat([torch.zeros_like(xs[:, :1]), xs[:, :-1]], 1).reshape(nt, c, h, w)
            x = layer(x, past)
        else:
            x = layer(x)
    return x


class TAEHV(nn.Module):
    def __init__(self, dec_widths=DEFAULT_DEC_WIDTHS, enc_widths=DEFAULT_ENC_WIDTHS, latent=LATENT):
        super().__init__()
        e, c = tuple(enc_widths), tuple(dec_widths)
        self.dec_widths, self.enc_widths, self.latent = c, e, latent
        self.encoder = nn.Sequential(
            conv(3, e[0]), nn.ReLU(),
            TPool(e[0], 2), conv(e[0], e[1], stride=2, bias=False), MemBlock(e[1]), MemBlock(e[1]), MemBlock(e[1]),
            TPool(e[1], 2), conv(e[1], e[2], stride=2, bias=False), MemBlock(e[2]), MemBlock(e[2]), MemBlock(e[2]),
            TPool(e[2], 1), conv(e[2], e[3], stride=2, bias=False), MemBlock(e[3]), MemBlock(e[3]), MemBlock(e[3]),
            conv(e[3], latent),
        )
        self.decoder = nn.Sequential(
            Clamp(), conv(latent, c[0]), nn.ReLU(),
            MemBlock(c[0]), MemBlock(c[0]), MemBlock(c[0]), nn.Upsample(scale_factor=2), TGrow(c[0], 1),
            conv(c[0], c[1], bias=False),
            MemBlock(c[1]), MemBlock(c[1]), MemBlock(c[1]), nn.Upsample(scale_factor=2), TGrow(c[1], 2),
            conv(c[1], c[2], bias=False),
            MemBlock(c[2]), MemBlock(c[2]), MemBlock(c[2]), nn.Upsample(scale_factor=2), TGrow(c[2], 2),
            conv(c[2], c[3], bias=False),
            nn.ReLU(), conv(c[3], 3),
        )
        nn.init.constant_(self.decoder[-1].bias, 0.4)     # start near the mean pixel value

    def encode(self, frames):
        """frames [N, P, 3, H, W] in [0, 1], P = 1 + 4(T-1) -> latents [N, T, 16, H/8, W/8]."""
        N, P = frames.shape[:2]
        if (P - 1) % 4:
            raise ValueError("encode needs 1 + 4k frames, got %d" % P)
        x = torch.cat([frames[:, :1].expand(N, 3, *frames.shape[2:]), frames], 1)
        T4 = x.shape[1]
        y = _apply_parallel(self.encoder, x.reshape(N * T4, *x.shape[2:]), N)
        return y.reshape(N, T4 // 4, *y.shape[1:])

    def decode(self, lat, clamp=False):
        """latents [N, T, 16, h, w] -> frames [N, 1 + 4(T-1), 3, 8h, 8w] (before the final clamp unless
        clamp=True); equals taehv_ref.decode_batch / decode_stream on the exported weights."""
        N, T = lat.shape[:2]
        y = _apply_parallel(self.decoder, lat.reshape(N * T, *lat.shape[2:]), N)
        y = y.reshape(N, 4 * T, *y.shape[1:])[:, 3:]
        return y.clamp(0, 1) if clamp else y

    def decoder_state_dict(self):
        """decoder.* tensors (float32, CPU) in the taew2_1 layout."""
        return {"decoder." + k: v.detach().float().cpu().contiguous() for k, v in self.decoder.state_dict().items()}


def param_count(module):
    return sum(p.numel() for p in module.parameters())


def decoder_flops_per_latent(widths=DEFAULT_DEC_WIDTHS, h=16, w=16, latent=LATENT):
    """Multiply-adds x 2 of the decoder for one latent frame in steady state (4 output frames) at [h, w]
    latents, counting convolutions only (ReLU, upsample, tanh are negligible)."""
    c = widths

    def c3(cin, cout, hh, ww, frames=1):
        return 2 * 9 * cin * cout * hh * ww * frames

    def c1(cin, cout, hh, ww, frames=1):
        return 2 * cin * cout * hh * ww * frames

    fl = c3(latent, c[0], h, w)
    fl += 3 * (c3(2 * c[0], c[0], h, w) + 2 * c3(c[0], c[0], h, w))
    fl += c1(c[0], c[0], 2 * h, 2 * w) + c3(c[0], c[1], 2 * h, 2 * w)                  # TGrow 1, conv 8
    fl += 3 * (c3(2 * c[1], c[1], 2 * h, 2 * w) + 2 * c3(c[1], c[1], 2 * h, 2 * w))
    fl += c1(c[1], 2 * c[1], 4 * h, 4 * w) + c3(c[1], c[2], 4 * h, 4 * w, 2)           # TGrow 2, conv 14
    fl += 3 * (c3(2 * c[2], c[2], 4 * h, 4 * w, 2) + 2 * c3(c[2], c[2], 4 * h, 4 * w, 2))
    fl += c1(c[2], 2 * c[2], 8 * h, 8 * w, 2) + c3(c[2], c[3], 8 * h, 8 * w, 4)        # TGrow 2, conv 20
    fl += c3(c[3], 3, 8 * h, 8 * w, 4)
    return fl
