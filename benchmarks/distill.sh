#!/usr/bin/env bash
# Quality beyond the base, end to end: every arch trained on a stronger base (the teachers), the teacher chosen on
# STS-B dev, MiniLM students of every arch distilled from it (configs/distill/ARCH.yaml), the plain MiniLM configs
# for reference, the ONNX int8 exports of the students, and the STS transfer suite over all of them.
#
#   python benchmarks/bases.py && bash benchmarks/distill.sh       # a GPU makes it minutes; 2 CPU cores, hours
#   STAGES="teachers choose" bash benchmarks/distill.sh              # some stages only
#
# Results: $RESULTS/ARCH-mpnet.json (teachers), teacher_choice.json, ARCH-distilled.json (students),
# ablations/ARCH-distilled-soft.json (soft targets), $BASELINES/ARCH.json (plain configs), sts_transfer.json,
# onnx_distilled.json. Models: $WORK/ARCH-mpnet, $WORK/ARCH-distilled, $WORK/ARCH.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
BASE=${BASE:-$(if [ -d bases/all-mpnet-base-v2 ]; then echo bases/all-mpnet-base-v2; else echo sentence-transformers/all-mpnet-base-v2; fi)}
BASE_NAME=${BASE_NAME:-mpnet}
MINILM=${MINILM:-sentence-transformers/all-MiniLM-L6-v2}
RESULTS=${RESULTS:-docs/results}
BASELINES=${BASELINES:-$RESULTS/baselines}
WORK=${WORK:-outputs}
ARCHS=${ARCHS:-siamese cross bert}
STAGES=${STAGES:-teachers choose students soft baselines onnx transfer}
EXTRA=${EXTRA:-}  # more run_sts.py flags for every run (smoke tests: "--max_steps 2")
QUALITY_FLAGS=${QUALITY_FLAGS:-}  # more sts_quality.py train flags (smoke tests: "--max_train_samples 64")
TRANSFER_FLAGS=${TRANSFER_FLAGS:-}  # more sts_transfer.py flags (smoke tests: "--limit 50")

has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
teachers() { $PYTHON -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['chosen']))" "$RESULTS/teacher_choice.json"; }

if has_stage teachers; then
  for arch in $ARCHS; do
    $PYTHON benchmarks/sts_quality.py train "$arch" --name "$arch-$BASE_NAME" --output_dir "$WORK/$arch-$BASE_NAME" \
      --results "$RESULTS/$arch-$BASE_NAME.json" $QUALITY_FLAGS -- --model_name_or_path "$BASE" $EXTRA
  done
fi
if has_stage choose; then
  $PYTHON benchmarks/choose_teacher.py $(for arch in $ARCHS; do echo "$WORK/$arch-$BASE_NAME"; done) \
    --results "$RESULTS/teacher_choice.json"
fi
if has_stage students; then
  for arch in $ARCHS; do
    $PYTHON benchmarks/sts_quality.py train "$arch" --name "$arch-distilled" --config "configs/distill/$arch.yaml" \
      --output_dir "$WORK/$arch-distilled" --results "$RESULTS/$arch-distilled.json" $QUALITY_FLAGS -- \
      --teacher_name_or_path $(teachers) $EXTRA
  done
fi
if has_stage soft; then
  for arch in $ARCHS; do
    $PYTHON benchmarks/sts_quality.py train "$arch" --name "$arch-distilled-soft" --config "configs/distill/$arch.yaml" \
      --output_dir "$WORK/$arch-distilled-soft" --results "$RESULTS/ablations/$arch-distilled-soft.json" $QUALITY_FLAGS \
      -- --teacher_name_or_path $(teachers) --teacher_score_weight 0.5 $EXTRA
  done
fi
if has_stage baselines; then
  for arch in $ARCHS; do
    $PYTHON benchmarks/sts_quality.py train "$arch" --output_dir "$WORK/$arch" --results "$BASELINES/$arch.json" \
      $QUALITY_FLAGS -- $EXTRA
  done
fi
if has_stage onnx; then
  $PYTHON benchmarks/onnx_serving.py --skip_speed $(for arch in $ARCHS; do echo "--model $WORK/$arch-distilled"; done) \
    --results "$RESULTS/onnx_distilled.json"
fi
if has_stage transfer; then
  models=("untrained=$MINILM" "untrained-$BASE_NAME=$BASE")
  for arch in $ARCHS; do
    for name in "$arch" "$arch-$BASE_NAME" "$arch-distilled"; do
      if [ -f "$WORK/$name/config.json" ]; then models+=("$name=$WORK/$name"); fi
    done
  done
  $PYTHON benchmarks/sts_transfer.py "${models[@]}" --results "$RESULTS/sts_transfer.json" $TRANSFER_FLAGS
fi
