#!/usr/bin/env python3
"""make_results.py: merge avs-bench's bench.json and tools/reference/bench_torch.py's JSON into one
result file, bench/results/<date>-<gpu>-dit-stream.json (issue 3 part 5):

  {"bench": "dit-stream", "gpu": <name>, "commit": <sha>, "date": <iso>, "config": {...},
   "metrics": {"fps_w21", "fps_w12", "fps_w6", "fps_ref_pytorch_w21", "fps_ref_pytorch_w12",
               "floor_fps_w21", "floor_fps_w12", "chunk_ms_w21", "peak_vram_gb_w21", "attn_tflops",
               "attn_tflops_cudnn"}}

Only measured values are written: a metric whose measurement is missing, failed, or was taken at
other settings than the metric's definition is left out (and said so on stderr), never filled in.
The metrics are defined at the standard setting: the 1.3B model, 480x832, 3-frame chunks, 4 steps +
commit, sinks 0; the attention figures at 4680 queries x 32760 keys, 12 heads x 128.

  python3 bench/make_results.py --bench OUT/bench.json --torch OUT/bench_torch.json [--out-dir bench/results]
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

METRICS = ("fps_w21", "fps_w12", "fps_w6", "fps_ref_pytorch_w21", "fps_ref_pytorch_w12", "floor_fps_w21",
           "floor_fps_w12", "chunk_ms_w21", "peak_vram_gb_w21", "attn_tflops", "attn_tflops_cudnn")
STANDARD_MODEL = {"dim": 1536, "ffn_dim": 8960, "heads": 12, "layers": 30, "text_len": 512}
STANDARD_RUN = {"height": 480, "width": 832, "chunk_frames": 3, "steps": 4}
ATTN_SHAPE = {"lq": 4680, "lk": 32760, "heads": 12, "head_dim": 128}


def warn(msg):
    print("make_results: " + msg, file=sys.stderr)


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "bench.json")
    with open(path) as f:
        return json.load(f)


def is_standard(doc):
    m, r = doc.get("model", {}), doc.get("run", {})
    return all(m.get(k) == v for k, v in STANDARD_MODEL.items()) and all(r.get(k) == v for k, v in STANDARD_RUN.items())


def config_at(doc, window, sinks=0):
    for c in doc.get("configs", []):
        if c.get("window") == window and c.get("sinks") == sinks and "error" not in c and c.get("steady_state", True):
            return c
    return None


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


def git_commit():
    """$AVS_COMMIT when set; else HEAD's sha, with "-dirty" when tracked files differ from it; None outside
    a git checkout."""
    if os.environ.get("AVS_COMMIT"):
        return os.environ["AVS_COMMIT"]
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True, check=True,  # noqa: E731
                                           cwd=here).stdout.strip()
        sha = git("rev-parse", "HEAD")
        return (sha + "-dirty" if git("status", "--porcelain", "--untracked-files=no") else sha) or None
    except (OSError, subprocess.CalledProcessError):
        return None


def gpu_slug(name):
    s = re.sub(r"\bnvidia\b", "", name.lower())
    s = re.sub(r"\(.*?\)", "", s)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s or "unknown-gpu"


def merge(bench, torch_doc, allow_nonstandard):
    metrics, notes = {}, []

    def put(key, value, why_missing):
        if number(value):
            metrics[key] = round(float(value), 4)
        else:
            notes.append("%s omitted: %s" % (key, why_missing))

    standard = is_standard(bench)
    if not standard and not allow_nonstandard:
        raise SystemExit("make_results: bench.json is not at the standard setting (1.3B, 480x832, 3-frame chunks, "
                         "4 steps); pass --allow-nonstandard to write it anyway (its config says what was run)")
    for w in (21, 12, 6):
        c = config_at(bench, w)
        why = "no successful steady-state avs-bench run at window %d, sinks 0" % w
        put("fps_w%d" % w, c and c.get("fps"), why)
        if w in (21, 12):
            put("floor_fps_w%d" % w, c and c.get("floor_fps"), why if c is None else "no GPU GEMM peak, so no floor")
        if w == 21:
            put("chunk_ms_w21", c and c.get("chunk_ms_median"), why)
            pb = c and c.get("peak_bytes")
            put("peak_vram_gb_w21", pb / 1e9 if number(pb) else None, why)

    if torch_doc is not None:
        same = all(torch_doc.get("model", {}).get(k) == bench.get("model", {}).get(k) for k in STANDARD_MODEL) and \
            all(torch_doc.get("run", {}).get(k) == bench.get("run", {}).get(k) for k in STANDARD_RUN)
        for w in (21, 12):
            c = config_at(torch_doc, w)
            ok = same and c is not None
            put("fps_ref_pytorch_w%d" % w, c.get("fps") if ok else None,
                "the PyTorch run differs from avs-bench's settings" if not same else "no PyTorch run at window %d" % w)
    else:
        notes.append("fps_ref_pytorch_*, attn_tflops_cudnn omitted: no bench_torch JSON given")

    att = bench.get("attention") or {}
    shape_ok = all(att.get(k) == v for k, v in ATTN_SHAPE.items())
    put("attn_tflops", att.get("tflops") if shape_ok else None,
        "avs-bench attention-alone missing or not at 4680 x 32760, 12 x 128")
    if torch_doc is not None:
        ta = torch_doc.get("attention") or {}
        t_ok = all(ta.get(k) == v for k, v in ATTN_SHAPE.items()) and ta.get("backend") == "cudnn" and "error" not in ta
        put("attn_tflops_cudnn", ta.get("tflops") if t_ok else None,
            "torch SDPA with the cuDNN backend missing, failed or not at 4680 x 32760, 12 x 128" +
            (" (flash: %.1f TFLOP/s)" % ta["flash"]["tflops"] if number((ta.get("flash") or {}).get("tflops")) else ""))

    run, model = bench.get("run", {}), bench.get("model", {})
    config = {
        "model": model.get("name"), "params": model.get("params"),
        "dim": model.get("dim"), "layers": model.get("layers"), "heads": model.get("heads"),
        "height": run.get("height"), "width": run.get("width"), "tokens_per_frame": run.get("tokens_per_frame"),
        "chunk_frames": run.get("chunk_frames"), "steps": run.get("steps"), "commit_pass": run.get("commit_pass"),
        "pixel_frames_per_chunk": run.get("pixel_frames_per_chunk"), "sinks": 0,
        "windows": sorted({c["window"] for c in bench.get("configs", []) if config_at(bench, c["window"]) is c}),
        "chunks_timed": run.get("chunks_timed"), "rope_mode": run.get("rope_mode"), "kv_dtype": run.get("kv_dtype"),
        "weights": "random", "backend": bench.get("backend"), "device": bench.get("device"),
        "standard_setting": standard,
        "fps": "pixel frames per chunk / median steady-state chunk time (warm-up until the window is full, +1 chunk)",
        "floor": "chunk GEMM + attention FLOPs (2mnk each, 5 passes) / bf16 rate of a cuBLAS GEMM in the same run",
        "peak_vram": "GB = 1e9 bytes; the backend pool's peak bytes in use",
    }
    gp = bench.get("gemm_peak") or {}
    if gp.get("measured"):
        config["gemm_peak"] = {k: gp.get(k) for k in ("m", "n", "k", "ms", "tflops")}
    if att:
        config["attention"] = {k: att.get(k) for k in ("lq", "lk", "heads", "head_dim", "ring_frames", "fragments")}
    if torch_doc is not None:
        config["reference"] = {
            "tool": "tools/reference/bench_torch.py", "torch": torch_doc.get("torch"), "cuda": torch_doc.get("cuda"),
            "cudnn": torch_doc.get("cudnn"), "dtype": torch_doc.get("dtype"), "sdpa_backend": torch_doc.get("sdpa_backend"),
            "method": torch_doc.get("method"),
            "modes": {str(c.get("window")): c.get("mode") for c in torch_doc.get("configs", []) if c.get("sinks") == 0},
        }
    config = {k: v for k, v in config.items() if v is not None}
    return {"metrics": {k: metrics[k] for k in METRICS if k in metrics}, "config": config, "notes": notes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="avs-bench's bench.json (or the --out DIR that holds it)")
    ap.add_argument("--torch", default=None, help="bench_torch.py's JSON")
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--commit", default=None, help="default: $AVS_COMMIT, else git rev-parse HEAD (+ -dirty)")
    ap.add_argument("--gpu", default=None, help="GPU name (default: from the JSON files)")
    ap.add_argument("--allow-nonstandard", action="store_true", help="write a result for a non-standard run (e.g. --quick)")
    a = ap.parse_args(argv)

    bench = load(a.bench)
    torch_doc = load(a.torch) if a.torch else None
    merged = merge(bench, torch_doc, a.allow_nonstandard)
    for n in merged["notes"]:
        warn(n)
    gpu = a.gpu
    if not gpu and torch_doc and torch_doc.get("device") not in (None, "cpu"):
        gpu = torch_doc["device"]
    if not gpu:  # avs-bench says "NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)"
        gpu = re.sub(r"\s*\(.*\)$", "", bench.get("device", "")) or "unknown"
    commit = a.commit or os.environ.get("AVS_COMMIT") or git_commit() or "unknown"
    # the measurement's date (avs-bench records it), else now
    date = bench.get("date") or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")
    doc = {"bench": "dit-stream", "gpu": gpu, "commit": commit, "date": date,
           "config": merged["config"], "metrics": merged["metrics"]}
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, "%s-%s-dit-stream.json" % (date[:10], gpu_slug(gpu)))
    with open(path, "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
    print(path)
    print(json.dumps(doc["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
