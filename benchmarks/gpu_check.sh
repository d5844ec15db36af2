#!/usr/bin/env bash
# The GPU check: one script, under 8 minutes on a one-GPU machine, one report ($OUT/report.md).
#   1. values: CUDA against CPU extraction of a tiny decoder and encoder (float32, bfloat16):
#      hidden states, anisotropy, eval loss (benchmarks/gpu/check_values.py);
#   2. throughput at Pythia-410m's shape against a bare bf16 forward, the device-to-host copy
#      and the disk-write floors (benchmarks/gpu/check_throughput.py), and the FLOP rate that
#      `python -m repgeom.workflow.footprint CONFIG --gpu-flops F` takes;
#   3. a paper-sized local run: two random Pythia-410m checkpoints, 32 768 tokens per store
#      (benchmarks/gpu/paper_local.yaml) through the real rules;
#   4. the default workflow on CUDA: training, extraction, heads and Birth on the GPU.
# The GPU machine's Python lacks some dependencies: make their wheels here first
# (bash benchmarks/gpu_wheels.sh), then, with the device tool, from the repository root:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=590)
# SMALL=1 runs tiny shapes, to try the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD OUT=${OUT:-/tmp/gpu-check} T0=$SECONDS
mkdir -p "$OUT"
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl > "$OUT/install.log" 2>&1 || tail -5 "$OUT/install.log"
  export PYTHONPATH=/tmp/site:$ROOT/src PATH=/tmp/site/bin:$PATH
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORK=$(mktemp -d)
left() { echo $((${1} - (SECONDS - T0))); }
section() { printf '\n## %s (at %d s)\n\n' "$1" $((SECONDS - T0)) | tee -a "$OUT/report.md"; }
jobs_by_family() {  # job time by family of a run, from its Snakemake benchmark files
  python3 - "$1" <<'PY'
import csv, sys
from collections import defaultdict
from pathlib import Path
runs = Path(sys.argv[1]) / "benchmarks" / "runs"
agg = defaultdict(lambda: [0, 0.0, 0.0])
for f in runs.rglob("*.tsv"):
    rows = list(csv.DictReader(open(f), delimiter="\t"))
    if rows:
        a = agg[f.relative_to(runs).parts[0]]
        a[0] += 1; a[1] += float(rows[0]["s"]); a[2] = max(a[2], float(rows[0]["max_rss"] or 0))
print("| family | jobs | seconds | max RSS (MB) |\n|---|---|---|---|")
for k, (n, s, m) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"| {k} | {n} | {s:.1f} | {m:.0f} |")
PY
}
workflow() {  # name, config, seconds: the workflow in its own directory, timed
  local dir="$WORK/$1" start=$SECONDS
  mkdir -p "$dir"
  timeout "$3" python3 -m snakemake -s "$ROOT/Snakefile" --directory "$dir" --configfile "$2" \
    --cores all > "$OUT/$1.log" 2>&1
  echo "exit $?, wall $((SECONDS - start)) s" | tee -a "$OUT/report.md"
  jobs_by_family "$dir" | tee -a "$OUT/report.md"
  grep -iE "error|exception" "$OUT/$1.log" | head -5 | tee -a "$OUT/report.md"
  for log in $(grep -l -r -iE "Traceback|Error" "$dir/logs" 2> /dev/null | head -3); do
    printf '\n== %s\n' "$log" >> "$OUT/$1.log"
    tail -n 25 "$log" >> "$OUT/$1.log"
  done
}

: > "$OUT/report.md"
section "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  echo "cores $(nproc), memory $(free -g | awk '/Mem/ {print $2}') GiB"
  python3 -c "import sys, torch, transformers, xarray, zarr, snakemake; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'zarr', zarr.__version__, 'snakemake', snakemake.__version__)"
} 2>&1 | tee -a "$OUT/report.md"

section "values: CUDA against CPU"
timeout 90 python3 benchmarks/gpu/check_values.py 2> "$OUT/values.err" | tee -a "$OUT/report.md"
echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/report.md"

section "throughput at Pythia-410m's shape, 32 768 tokens, window 512, batch 8"
P410=$WORK/p410 timeout 180 python3 benchmarks/gpu/check_throughput.py 2> "$OUT/throughput.err" \
  | tee -a "$OUT/report.md"
echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/report.md"

section "paper-sized local run (two random Pythia-410m checkpoints, 32 768 tokens per store)"
sed "s#P410_PATH#$WORK/p410#" benchmarks/gpu/paper_local.yaml > "$WORK/paper_local.yaml"
workflow paper "$WORK/paper_local.yaml" "$(left 330)"

section "default workflow on CUDA (training, extraction, heads, Birth)"
python3 - config/config.yaml "$WORK/default_cuda.yaml" <<'PY'
import sys
from repgeom.workflow.config import load_yaml
import yaml
c = load_yaml(sys.argv[1])
for m in c.get("models", {}).values():
    if m.get("source") == "train":
        m.setdefault("training", {})["device"] = "cuda"
c.setdefault("extraction", {})["device"] = "cuda"
c.setdefault("birth", {})["device"] = "cuda"
c.setdefault("bottleneck", {}).setdefault("heads", {})["device"] = "cuda"
yaml.safe_dump(c, open(sys.argv[2], "w"))
PY
if [ "${SMALL:-0}" = 1 ]; then sed -i 's/cuda/cpu/' "$WORK/default_cuda.yaml"; fi
workflow default "$WORK/default_cuda.yaml" "$(left 470)"
echo "total $((SECONDS - T0)) s" | tee -a "$OUT/report.md"
rm -rf "$WORK"
