#!/usr/bin/env bash
# The default avatar end to end on the CPU (issue 7): audio in (assets/sample_speech.wav -> log-mel ->
# audio windows) to RGB frames out (DiT on the CPU backend, TAEHV decode on its own thread), measured
# by avs-gen over --chunks chunks, OMP limited to the cores given. Writes
# bench/results/<date>-cpu-default-model.json (or $OUT/...).
#   bench/default_model_cpu.sh [build dir (build-cpu)] [cores (2)] [chunks (60)]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-cpu}"; cores="${2:-2}"; chunks="${3:-60}"
out="${OUT:-bench/results}"
log=$(mktemp)
OMP_NUM_THREADS="$cores" OPENBLAS_NUM_THREADS="$cores" taskset -c "0-$((cores - 1))" \
  "$build/tools/avs_gen/avs-gen" --backend cpu --audio assets/sample_speech.wav --chunks "$chunks" | tee "$log" | grep -E "^(model|run|decode|summary)"
fps=$(sed -n 's/.* \([0-9.]*\) frames\/s end to end.*/\1/p' "$log")
chunk_ms=$(sed -n 's/^summary: median chunk \([0-9.]*\) ms.*/\1/p' "$log")
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1), ${cores} cores"
commit="${AVS_COMMIT:-$(git rev-parse HEAD)}"
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$out"
file="$out/${date:0:10}-cpu-default-model.json"
python3 - "$file" "$cpu" "$commit" "$date" "$fps" "$chunk_ms" "$chunks" <<'PY'
import json, sys
path, cpu, commit, date, fps, chunk_ms, chunks = sys.argv[1:]
json.dump({"bench": "default-model-cpu", "cpu": cpu, "commit": commit, "date": date,
           "config": {"model": "assets (default avatar)", "audio": "assets/sample_speech.wav", "chunks": int(chunks),
                      "video": "128x128 @ 16 fps", "steps": 4, "commit_pass": True, "decoder": "taehv 64/32/16/16",
                      "median_dit_chunk_ms": float(chunk_ms),
                      "fps_cpu": "decoded frames / wall s from the first chunk to the last frame, DiT and decode threads"},
           "metrics": {"fps_cpu": float(fps)}}, open(path, "w"), indent=2)
print("wrote", path)
PY
rm -f "$log"
