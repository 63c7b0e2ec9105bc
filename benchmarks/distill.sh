#!/usr/bin/env bash
# Quality beyond the base, end to end: every arch trained on a stronger base (the teachers), the teachers ranked on
# STS-B dev, MiniLM students of every arch distilled from the teachers their configs name
# (configs/distill/ARCH.yaml), the plain MiniLM configs for reference, the ONNX int8 exports of the students, and the
# STS transfer suite over all of them.
#
#   python benchmarks/bases.py && bash benchmarks/distill.sh       # a GPU makes it minutes; 2 CPU cores, hours
#   STAGES="teachers choose" bash benchmarks/distill.sh              # some stages only
#   PARALLEL=1 bash benchmarks/distill.sh     # one GPU: the archs of a stage at once (small batches leave it idle)
#
# Results: $RESULTS/ARCH-mpnet.json (teachers), teacher_choice.json, ARCH-distilled.json (students),
# ablations/ARCH-distilled-teacher-weight-W.json (stage soft: the other choice of soft targets, W = 0.5 where the
# config keeps the gold scores, else 0.0), $BASELINES/ARCH.json (the plain configs run again beside the students, for
# their train-time ratio; the committed plain rows are $RESULTS/ARCH.json), sts_transfer.json,
# onnx_distilled_dev.json and onnx_distilled.json. Models: $WORK/ARCH-mpnet, $WORK/ARCH-distilled, $WORK/ARCH.
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
PARALLEL=${PARALLEL:-0}  # 1: the per-arch runs of a stage at once, each logging to $WORK/STAGE-ARCH.log

has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
# each_arch STAGE FUNCTION: FUNCTION ARCH for every arch, one after the other or (PARALLEL=1) at once
each_arch() {
  local stage=$1 run=$2 arch pids=() failed=0
  for arch in $ARCHS; do
    if [ "$PARALLEL" = 1 ]; then
      mkdir -p "$WORK"; "$run" "$arch" > "$WORK/$stage-$arch.log" 2>&1 & pids+=($!)
    else
      "$run" "$arch"
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if [ "$failed" = 1 ]; then echo "stage $stage failed: see $WORK/$stage-*.log" >&2; return 1; fi
}
# the teachers configs/distill/ARCH.yaml names (chosen on dev: benchmarks/choose_teacher.py ranks them, and the
# students' dev runs in docs/results.md chose between the best average and one teacher), as this script's
# $WORK/KIND-$BASE_NAME folders
config_teachers() {
  $PYTHON -c "import sys, yaml; print(' '.join(sys.argv[2] + '/' + t.rstrip('/').split('/')[-1].split('-')[0] + '-' + sys.argv[3] for t in yaml.safe_load(open(sys.argv[1]))['teacher_name_or_path']))" \
    "configs/distill/$1.yaml" "$WORK" "$BASE_NAME"
}

teacher() {
  $PYTHON benchmarks/sts_quality.py train "$1" --name "$1-$BASE_NAME" --output_dir "$WORK/$1-$BASE_NAME" \
    --results "$RESULTS/$1-$BASE_NAME.json" $QUALITY_FLAGS -- --model_name_or_path "$BASE" $EXTRA
}
student() {
  $PYTHON benchmarks/sts_quality.py train "$1" --name "$1-distilled" --config "configs/distill/$1.yaml" \
    --output_dir "$WORK/$1-distilled" --results "$RESULTS/$1-distilled.json" $QUALITY_FLAGS -- \
    --teacher_name_or_path $(config_teachers "$1") $EXTRA
}
soft_student() {  # the other choice of soft targets than configs/distill/ARCH.yaml's: 0.5 if it has none, else 0.0
  local weight
  weight=$($PYTHON -c "import sys, yaml; print(0.0 if yaml.safe_load(open(sys.argv[1])).get('teacher_score_weight') else 0.5)" \
    "configs/distill/$1.yaml")
  $PYTHON benchmarks/sts_quality.py train "$1" --name "$1-distilled-teacher-weight-$weight" \
    --config "configs/distill/$1.yaml" --output_dir "$WORK/$1-distilled-teacher-weight-$weight" \
    --results "$RESULTS/ablations/$1-distilled-teacher-weight-$weight.json" $QUALITY_FLAGS \
    -- --teacher_name_or_path $(config_teachers "$1") --teacher_score_weight "$weight" $EXTRA
}
baseline() {
  $PYTHON benchmarks/sts_quality.py train "$1" --output_dir "$WORK/$1" --results "$BASELINES/$1.json" \
    $QUALITY_FLAGS -- $EXTRA
}

if has_stage teachers; then
  each_arch teachers teacher
fi
if has_stage choose; then
  $PYTHON benchmarks/choose_teacher.py $(for arch in $ARCHS; do echo "$WORK/$arch-$BASE_NAME"; done) \
    --results "$RESULTS/teacher_choice.json"
fi
if has_stage students; then
  each_arch students student
fi
if has_stage soft; then
  each_arch soft soft_student
fi
if has_stage baselines; then
  each_arch baselines baseline
fi
if has_stage onnx; then  # int8 settings are chosen on dev (onnx_distilled_dev.json), reported on test
  for split in validation test; do
    $PYTHON benchmarks/onnx_serving.py --skip_speed --split "$split" \
      $(for arch in $ARCHS; do echo "--model $WORK/$arch-distilled"; done) \
      --results "$RESULTS/onnx_distilled$([ "$split" = validation ] && echo _dev).json"
  done
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
