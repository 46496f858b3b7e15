#!/usr/bin/env python3
"""bench_conv_torch.py: cuDNN (through torch.nn.functional.conv3d, bf16, channels-last) at the
decoders' main convolution shapes, the ones `avs-decode-bench` times for our implicit-GEMM conv3d
(bench/decode_bench.cpp, kConvShapes). Causal in time (the input carries kt - 1 history frames), "same"
zero padding in space. Prints one JSON line per shape and writes --out.

  python3 tools/reference/bench_conv_torch.py --out OUT/conv_torch.json
"""

import argparse
import json
import sys

import torch
import torch.nn.functional as F

SHAPES = [  # what, cin, cout, h, w, t (output frames), (kt, kh, kw)
    ("wan 384ch 60x104", 384, 384, 60, 104, 1, (3, 3, 3)),
    ("wan 384ch 120x208", 384, 384, 120, 208, 2, (3, 3, 3)),
    ("wan 192ch 240x416", 192, 192, 240, 416, 4, (3, 3, 3)),
    ("wan 96ch 480x832", 96, 96, 480, 832, 4, (3, 3, 3)),
    ("tiny 64ch 480x832", 64, 64, 480, 832, 1, (1, 3, 3)),
    ("tiny memblock 512->256 60x104", 512, 256, 60, 104, 1, (1, 3, 3)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out")
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_conv_torch: no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithm, as a tuned pipeline would
    rows = []
    for what, cin, cout, h, w, t, (kt, kh, kw) in SHAPES:
        x = torch.randn(1, cin, t + kt - 1, h, w, device="cuda", dtype=torch.bfloat16).to(memory_format=torch.channels_last_3d)
        wt = torch.randn(cout, cin, kt, kh, kw, device="cuda", dtype=torch.bfloat16).to(memory_format=torch.channels_last_3d)
        pad = (0, kh // 2, kw // 2)
        for _ in range(3):
            F.conv3d(x, wt, padding=pad)
        ms = []
        for _ in range(a.iters):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            F.conv3d(x, wt, padding=pad)
            e1.record()
            torch.cuda.synchronize()
            ms.append(e0.elapsed_time(e1))
        ms.sort()
        m = ms[len(ms) // 2]
        flops = 2.0 * t * h * w * cout * cin * kt * kh * kw
        row = {"shape": what, "ms": m, "tflops": flops / (m * 1e-3) / 1e12, "backend": "cudnn" if torch.backends.cudnn.is_available() else "torch"}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"tool": "bench_conv_torch", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                       "device": torch.cuda.get_device_name(0), "shapes": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
