#!/usr/bin/env bash
# On the GPU machine: build the engine (no app dependencies there), run every `cuda` test and the
# DiT streaming benchmark (avs-bench + the PyTorch reference), and write logs and results under $OUT
# (default ./out). Header-only build dependencies come from .gpudeps/ (scripts/fetch-gpu-deps.sh,
# run where Debian's apt works).
#   scripts/gpu-check.sh [--arch 90a] [--no-bench | --bench dit|decode|kv|attn|all] [--skip-tests] [--no-sanitize] [--profile-attention]
# --profile-attention: Nsight Compute over the attention throughput test (every kernel and format at
# the 1.3B chunk shape), averaged per kernel -> $OUT/ncu-attention.txt (which pipe bounds each kernel).
# Results record $AVS_COMMIT when set (the device's copy of the tree may carry stale git metadata).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
arch=90a
bench=all
skip_tests=0
profile=0
sanitize=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --no-bench) bench=none; shift ;;
    --bench) bench="$2"; shift 2 ;;
    --skip-tests) skip_tests=1; shift ;;
    --no-sanitize) sanitize=0; shift ;;
    --profile-attention) profile=1; shift ;;
    *) echo "gpu-check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

prefix=/tmp/avs-deps
if [ -d .gpudeps ]; then
  mkdir -p "$prefix"
  for f in .gpudeps/*.deb; do dpkg -x "$f" "$prefix"; done
fi
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/build.log"

build=build-gpu
# OpenBLAS is not on the GPU machine: the CPU twin uses its own GEMM there.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAVS_CUDA=ON -DAVS_CUDA_ARCHS="$arch" \
  -DAVS_BUILD_APP=OFF -DAVS_FUZZ=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenBLAS=ON \
  -DCMAKE_PREFIX_PATH="$prefix/usr" 2>&1 | tee -a "$OUT/build.log"
cmake --build "$build" -j "$(nproc)" 2>&1 | tee -a "$OUT/build.log" | tail -n 5
stage() { echo "[gpu-check] $1 at ${SECONDS}s" | tee -a "$OUT/build.log"; }
stage "built"
set +e
rc=0
if [ "$skip_tests" = 0 ]; then
# -V: the tests' warnings (measured errors, the attention throughput per kernel) go to the log too
ctest --test-dir "$build" -L cuda -V --timeout 180 > "$OUT/ctest-cuda.log" 2>&1
rc=$?
grep -E "tests passed|Test +#|Failed|\*\*\*" "$OUT/ctest-cuda.log"
# compute-sanitizer memcheck and racecheck (issue 4) on the KV offload path (two streams, pinned host
# stores, event-ordered prefetch and write-back) and on the attention kernels' shared-memory pipelines
# (the TMA/mbarrier ones of the warp-specialized kernels, the 8-bit one included: D 128 int8).
if [ "$sanitize" = 0 ]; then
  echo "--no-sanitize: sanitizer runs skipped" | tee -a "$OUT/ctest-cuda.log"
elif command -v compute-sanitizer >/dev/null; then
  export AVS_SANITIZE=1  # the tests below run a reduced set of cases under the sanitizer
  for what in "offload|KV offload on CUDA gives bit-identical output to a resident cache for every format" \
              "attention|ring attention kernel matches the CPU twin for every KV format on wrapped rings with sinks and a bf16 tail"; do
    for tool in memcheck racecheck; do
      timeout 300 compute-sanitizer --tool "$tool" --error-exitcode 9 "$build/tests/avs_tests_cuda" "${what#*|}" 2>&1 | tail -n 4 | tee -a "$OUT/ctest-cuda.log"
      src=${PIPESTATUS[0]}
      echo "compute-sanitizer $tool (${what%%|*}): rc=$src" | tee -a "$OUT/ctest-cuda.log"
      if [ "$src" != 0 ]; then rc=1; fi
    done
  done
  unset AVS_SANITIZE
else
  echo "compute-sanitizer not found: sanitizer runs skipped" | tee -a "$OUT/ctest-cuda.log"
fi
stage "cuda tests and sanitizers done"
fi  # skip_tests
if [ "$profile" = 1 ]; then
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1 || true)
  if [ -n "$ncu" ]; then
    # tensor (gmma) vs SFU (xu) vs FMA/ALU pipes, issue-slot use, stall reasons, local-memory (spill) traffic
    timeout 500 "$ncu" --kernel-name regex:'attention_ws|merge_splits' --print-summary per-kernel \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats --section WarpStateStats \
      --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum,l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum \
      "$build/tests/avs_tests_cuda" "attention throughput at the 1.3B chunk shape per KV format (informational)" > "$OUT/ncu-attention.txt" 2>&1
    echo "ncu (attention): rc=$? -> ncu-attention.txt" | tee -a "$OUT/ctest-cuda.log"
    stage "profile done"
  else
    echo "ncu not found: --profile-attention skipped" | tee -a "$OUT/ctest-cuda.log"
  fi
fi
set -e
if [ "$bench" = all ] || [ "$bench" = kv ]; then
  # KV cache formats (issue 4 parts 4-6): bytes, peak VRAM, fps, drift vs bf16 over 60 s of video,
  # attention error per layer, offload -> $OUT/<date>-<gpu>-kv-formats.json
  set +e
  "$build/bench/avs-kv-bench" --backend cuda --out "$OUT" ${KV_BENCH_ARGS:-} 2>&1 | tee "$OUT/kv-bench.log"
  krc=${PIPESTATUS[0]}
  set -e
  echo "kv bench: rc=$krc"
  stage "kv bench done"
  if [ "$rc" = 0 ] && [ "$krc" != 0 ]; then rc=1; fi
fi
if [ "$bench" = all ] || [ "$bench" = attn ]; then
  # Ring attention per KV format side by side (issue 4: 8-bit at least as fast as bf16), interleaved
  # rounds under sustained load, plain and wrapped ring -> $OUT/<date>-<gpu>-attention-formats.json
  set +e
  "$build/bench/avs-attn-bench" --backend cuda --out "$OUT" ${ATTN_BENCH_ARGS:-} 2>&1 | tee "$OUT/attn-bench.log"
  arc=${PIPESTATUS[0]}
  set -e
  echo "attention bench: rc=$arc"
  stage "attention bench done"
  if [ "$rc" = 0 ] && [ "$arc" != 0 ]; then rc=1; fi
fi
if [ "$bench" = all ] || [ "$bench" = dit ]; then
  # DiT streaming benchmark (issue 3 parts 4-5): ours, the PyTorch reference of the same loop on the
  # same GPU, then both merged into $OUT/<date>-<gpu>-dit-stream.json (copy it to bench/results/).
  # Extra flags for a shorter run: AVS_BENCH_ARGS="--chunks 2 --windows 6,12" BENCH_TORCH_ARGS="--chunks 2".
  set +e
  "$build/bench/avs-bench" --backend cuda --out "$OUT" ${AVS_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
  brc=${PIPESTATUS[0]}
  # its JSON goes to --out; its progress joins bench.log (few files: the device tool returns at most 8)
  PYTHONUNBUFFERED=1 python3 tools/reference/bench_torch.py --device cuda --out "$OUT/bench_torch.json" \
    ${BENCH_TORCH_ARGS:-} 2>&1 >/dev/null | tee -a "$OUT/bench.log"
  trc=${PIPESTATUS[0]}
  torch_json=()
  [ "$trc" = 0 ] && torch_json=(--torch "$OUT/bench_torch.json")
  mrc=1
  if [ -f "$OUT/bench.json" ]; then
    python3 bench/make_results.py --bench "$OUT/bench.json" ${torch_json[@]+"${torch_json[@]}"} --out-dir "$OUT" \
      ${MAKE_RESULTS_ARGS:-} 2>&1 | tee -a "$OUT/bench.log"
    mrc=${PIPESTATUS[0]}
  fi
  set -e
  echo "bench: avs-bench rc=$brc, bench_torch rc=$trc, make_results rc=$mrc"
  if [ "$rc" = 0 ] && { [ "$brc" != 0 ] || [ "$trc" != 0 ] || [ "$mrc" != 0 ]; }; then rc=1; fi
fi
if [ "$bench" = all ] || [ "$bench" = decode ]; then
  # Decoders alone and in a full 1.3B stream (issue 5 part 6) -> $OUT/<date>-<gpu>-decode.json
  set +e
  "$build/bench/avs-decode-bench" --backend cuda --out "$OUT" ${DECODE_BENCH_ARGS:-} 2>&1 | tee "$OUT/decode-bench.log"
  drc=${PIPESTATUS[0]}
  # cuDNN at the same conv shapes (measure, not guess, which conv implementation to use)
  python3 tools/reference/bench_conv_torch.py 2>&1 | tee -a "$OUT/decode-bench.log"
  set -e
  echo "decode bench: rc=$drc"
  if [ "$rc" = 0 ] && [ "$drc" != 0 ]; then rc=1; fi
fi
exit "$rc"
