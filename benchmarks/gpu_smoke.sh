#!/usr/bin/env bash
# GPU smoke run: train each arch (configs/ARCH.yaml) for a few hundred steps in bf16 on one GPU, evaluate on
# STS-B dev, predict STS-B test, and write train samples/s, dev and test Spearman and the GPU's name to
# $OUT/gpu_smoke.json (the run folders go to $WORK).
#
#   bash benchmarks/gpu_smoke.sh                                  # all-MiniLM-L6-v2, 300 steps per arch
#   STEPS=500 MODEL=path/to/encoder DATA=path/to/stsbenchmark OUT=docs/results/gpu bash benchmarks/gpu_smoke.sh
#
# It stops with one line when no GPU is visible (REQUIRE_GPU=0 lets it run on the CPU, to test the script).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
STEPS=${STEPS:-300}
MODEL=${MODEL:-sentence-transformers/all-MiniLM-L6-v2}
DATA=${DATA:-$(if [ -f ../shared/data/stsbenchmark/sts-train.csv ]; then echo ../shared/data/stsbenchmark; else echo mteb/stsbenchmark-sts; fi)}
OUT=${OUT:-docs/results/gpu}
WORK=${WORK:-outputs/gpu_smoke}
ARCHS=${ARCHS:-bert siamese cross}
PRECISION=${PRECISION-"--bf16"}  # "--fp16", or PRECISION= for float32
REQUIRE_GPU=${REQUIRE_GPU:-1}
NOTE=${NOTE:-}  # recorded in the JSON, e.g. where the weights came from

if [ "$REQUIRE_GPU" = 1 ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_smoke.sh: error: no CUDA GPU is visible to $PYTHON (REQUIRE_GPU=0 runs it on the CPU)" >&2
  exit 1
fi
mkdir -p "$OUT"
for arch in $ARCHS; do
  rm -rf "${WORK:?}/$arch"
  "$PYTHON" run_sts.py "configs/$arch.yaml" --model_name_or_path "$MODEL" --dataset_name "$DATA" \
    --max_steps "$STEPS" $PRECISION --eval_strategy no --save_strategy no --load_best_model_at_end false \
    --report_to none --disable_tqdm true --output_dir "$WORK/$arch"
done

"$PYTHON" - "$OUT/gpu_smoke.json" "$WORK" "$STEPS" "$PRECISION" "$MODEL" "$NOTE" $ARCHS <<'EOF'
import json, platform, sys
import torch, transformers

path, work, steps, precision, model, note, *archs = sys.argv[1:]
runs = {}
for arch in archs:
    results = json.load(open(f"{work}/{arch}/all_results.json"))
    runs[arch] = {
        key: results[key]
        for key in ("train_samples_per_second", "train_runtime", "eval_spearman", "eval_pearson", "test_spearman")
    }
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else f"none (CPU: {platform.processor() or platform.machine()})"
report = {
    "gpu": gpu,
    "steps": int(steps),
    "precision": {"--bf16": "bf16", "--fp16": "fp16"}.get(precision.strip(), "fp32"),
    "model": model,
    "note": note,
    "runs": runs,
    "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    "command": "bash benchmarks/gpu_smoke.sh",
}
json.dump(report, open(path, "w"), indent=2)
print(f"GPU: {gpu}; {steps} steps per arch, {report['precision']}")
print(f"{'arch':8} {'samples/s':>10} {'dev Spearman':>13} {'test Spearman':>14}")
for arch, run in runs.items():
    print(f"{arch:8} {run['train_samples_per_second']:>10.1f} {run['eval_spearman']:>13.4f} {run['test_spearman']:>14.4f}")
print(f"written to {path}")
EOF
