#!/usr/bin/env bash
# ActionVLAD on one HMDB51 split: k-means init -> stage 1 -> stage 2 -> eval
# for the RGB and flow streams, then their 1:2 late fusion.
#
#   experiments/actionvlad_hmdb51.sh SPLIT RECORDS RUNS RGB_WEIGHTS FLOW_WEIGHTS
#
#   SPLIT         1, 2 or 3 (names the runs; RECORDS must hold that split)
#   RECORDS       frames TFRecords of the split, from
#                   python -m tfaction.data.convert --format=hmdb51_frames \
#                     --input=LISTS/train_splitN.txt,LISTS/test_splitN.txt \
#                     --frames_root=FRAMES --modalities=rgb,flow \
#                     --class_list=actions.txt --output_dir=RECORDS
#   RUNS          output folder (one sub-folder per stream and stage)
#   RGB_WEIGHTS   local ImageNet VGG16 weights (Keras .h5 or TF-slim ckpt)
#   FLOW_WEIGHTS  local flow VGG16 weights (the release's two-stream flow
#                 checkpoint of this split; RGB weights also work: their
#                 first conv is averaged and repeated over the 20 channels)
#                 ("-": no pre-trained weights)
#
# Extra arguments after these five are passed to every experiments.train
# call (e.g. --strategy=mirrored). Each step resumes if re-run.
# CONFIGS=experiments/configs/actionvlad_synthetic runs the same steps with
# the synthetic recipes (configs ${CONFIGS}_rgb.py and ${CONFIGS}_flow.py).
set -euo pipefail
if [[ $# -lt 5 ]]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
SPLIT=$1 RECORDS=$2 RUNS=$3 RGB_WEIGHTS=$4 FLOW_WEIGHTS=$5
shift 5
PY=${PYTHON:-python}
CONFIGS=${CONFIGS:-experiments/configs/actionvlad_hmdb51}

for STREAM in rgb flow; do
  CONFIG=${CONFIGS}_${STREAM}.py
  WEIGHTS=$RGB_WEIGHTS
  [[ $STREAM == flow ]] && WEIGHTS=$FLOW_WEIGHTS
  OUT=$RUNS/split${SPLIT}/${STREAM}
  COMMON=(--config.task.data_dir="$RECORDS")
  [[ $WEIGHTS == - ]] || COMMON+=(--config.task.trunk_weights="$WEIGHTS")
  echo "== ${STREAM}: k-means centres"
  [[ -f $OUT/init/centers.npz ]] || $PY -m experiments.actionvlad_init_centers \
      --config="$CONFIG" --workdir="$OUT/init" "${COMMON[@]}"
  echo "== ${STREAM}: stage 1 (classifier)"
  $PY -m experiments.train --config="$CONFIG:stage1" --workdir="$OUT/stage1" \
      --mode=train "${COMMON[@]}" \
      --config.task.centers_file="$OUT/init/centers.npz" "$@"
  echo "== ${STREAM}: stage 2 (classifier + NetVLAD + conv5) and evaluation"
  $PY -m experiments.train --config="$CONFIG:stage2" --workdir="$OUT/stage2" \
      --mode=train_and_eval --config.task.data_dir="$RECORDS" \
      --config.task.init_checkpoint="$OUT/stage1" "$@"
done

echo "== late fusion RGB:flow = 1:2"
$PY -m experiments.actionvlad_fuse \
    --rgb="$RUNS/split${SPLIT}/rgb/stage2/predictions.npz" \
    --flow="$RUNS/split${SPLIT}/flow/stage2/predictions.npz" \
    --output="$RUNS/split${SPLIT}/fused_predictions.npz"
