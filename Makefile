# `make test`: create .venv, install tfaction with its test and serving extras,
# run the whole suite. The install is redone whenever setup.py changes.
# `make demo`: ActionFormer end to end on synthetic data (see README).
# `make test-slow`: the long end-to-end tests `make test` leaves out.
# `make test-large`: the fault and scale loops (kill-and-restart per family,
# two local workers per family) `make test` leaves out.
# `make test-demo`: every demo, checked against README's figures (slow).
# `make demo-action-transformer`: the Video Action Transformer end to end on
# synthetic AVA-layout data (see README).
# `make demo-carl`: CARL end to end on synthetic phase videos (see README).
# `make demo-adafocus`: AdaFocus V2 end to end on synthetic glyph videos,
# with the V2+ early-exit sweep (see README).
# `make bench`: every benchmark, one after the other, and the table of
# benchmarks/README.md regenerated from their results (benchmarks/results/).
# BENCH_REFS adds the authors' code to compare with (benchmarks/README.md
# says how to set it up), BENCH_ONLY runs some benchmarks only:
#   make bench BENCH_ONLY=evaluation \
#       BENCH_REFS="--reference activitynet=/src/ActivityNet:/venv/bin/python"
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Hide TensorFlow's C++ start-up log in the demos (override: =0 shows all).
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: test test-slow test-large test-demo install demo demo-actionvlad \
	demo-action-transformer demo-carl demo-adafocus bench clean

install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,serving]"
	touch $(STAMP)

# Two pytest processes (pytest-xdist), whole files per process so module
# fixtures are built once. The report ends with the 30 slowest tests: what to
# move behind a marker when the run nears its 15 minutes.
XDIST ?= -n 2 --dist loadfile

test: $(STAMP)
	$(PY) -m pytest $(XDIST) --durations=30 $(PYTEST_ARGS)

# The `slow` tests (deselected by `make test` to keep it under 15 minutes
# on 2 cores): the learning runs of every family, fine-tuning an imported
# checkpoint, the S3 end-to-end commands.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# The `large` tests (deselected by `make test`): per family, training killed
# with SIGKILL / SIGTERM at random steps and restarted until it ends with the
# uninterrupted run's weights, and two local MultiWorkerMirroredStrategy
# workers against one process. Two pytest processes, as `make test`.
test-large: $(STAMP)
	$(PY) -m pytest -m large $(XDIST) $(PYTEST_ARGS)

# The `demo` tests (deselected by `make test`) run `make demo`,
# `make demo-actionvlad`, `make demo-action-transformer`,
# `make demo-carl` and `make demo-adafocus` in temporary folders and
# assert README's figures.
test-demo: $(STAMP)
	$(PY) -m pytest -m demo tests/learning $(PYTEST_ARGS)

BENCH_REFS ?=
BENCH_ONLY ?=

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(if $(BENCH_ONLY),--only=$(BENCH_ONLY)) \
	    $(BENCH_REFS)

DEMO := runs/demo
DEMO_CONFIG := experiments/configs/actionformer_synthetic.py
TIOUS := 0.3,0.4,0.5,0.6,0.7

demo: $(STAMP)
	rm -rf $(DEMO)
	@echo "== 1/6 synthetic temporal-localisation data (ActivityNet layout)"
	$(PY) -m tfaction.data.synthetic --kind=temporal_localization \
	    --out_dir=$(DEMO)/raw
	@echo "== 2/6 convert to TFRecords"
	$(PY) -m tfaction.data.convert --format=activitynet_features \
	    --input=$(DEMO)/raw/annotations.json \
	    --features_dir=$(DEMO)/raw/features --feature_stride=4 \
	    --feature_window=16 --output_dir=$(DEMO)/records
	@echo "== 3/6 train ActionFormer (MirroredStrategy, 2 replicas)"
	$(PY) -m experiments.train --config=$(DEMO_CONFIG) \
	    --workdir=$(DEMO)/train --mode=train_and_eval \
	    --config.task.data_dir=$(DEMO)/records
	@echo "== 4/6 mAP of the held-out videos (official ActivityNet metric)"
	$(PY) -m experiments.evaluate --metric=activitynet_detection \
	    --ground_truth=$(DEMO)/records/ground_truth.json \
	    --predictions=$(DEMO)/train/predictions.json --subset=validation \
	    --tiou_thresholds=$(TIOUS) --skip_unknown_labels
	@echo "== 5/6 export the SavedModel for TensorFlow Serving"
	$(PY) -m export.export_saved_model --workdir=$(DEMO)/train \
	    --export_dir=$(DEMO)/models/actionformer  # the run's config.json
	@echo "== 6/6 one request through serving_default"
	$(PY) -m export.actionformer_request \
	    --saved_model=$(DEMO)/models/actionformer/1 \
	    --data_dir=$(DEMO)/records --subset=validation \
	    --rest_body=$(DEMO)/request.json

AV_DEMO := runs/actionvlad_demo
AV_CONFIG := experiments/configs/actionvlad_synthetic

# `make demo-actionvlad`: two-stream ActionVLAD on synthetic colour x motion
# classes.
demo-actionvlad: $(STAMP)
	rm -rf $(AV_DEMO)
	@echo "== 1/7 synthetic colour x motion videos (HMDB51 layout)"
	$(PY) -m tfaction.data.synthetic --kind=video_classification \
	    --num_videos=240 --out_dir=$(AV_DEMO)/raw
	@echo "== 2/7 convert frames and optical flow to TFRecords"
	$(PY) -m tfaction.data.convert --format=hmdb51_frames \
	    --input=$(AV_DEMO)/raw/train_test_lists/train_split1.txt,$(AV_DEMO)/raw/train_test_lists/test_split1.txt \
	    --frames_root=$(AV_DEMO)/raw/frames --modalities=rgb,flow \
	    --class_list=$(AV_DEMO)/raw/actions.txt --output_dir=$(AV_DEMO)/records
	@for stream in rgb flow; do \
	  echo "== 3-4/7 $$stream: k-means centres, train (MirroredStrategy), evaluate" && \
	  $(PY) -m experiments.actionvlad_init_centers \
	      --config=$(AV_CONFIG)_$$stream.py --workdir=$(AV_DEMO)/$$stream/init \
	      --config.task.data_dir=$(AV_DEMO)/records && \
	  $(PY) -m experiments.train --config=$(AV_CONFIG)_$$stream.py \
	      --workdir=$(AV_DEMO)/$$stream/train --mode=train_and_eval \
	      --config.task.data_dir=$(AV_DEMO)/records \
	      --config.task.centers_file=$(AV_DEMO)/$$stream/init/centers.npz \
	  || exit 1; \
	done
	@echo "== 5/7 video accuracy of each stream and of the RGB:flow = 1:2 fusion"
	$(PY) -m experiments.actionvlad_fuse \
	    --rgb=$(AV_DEMO)/rgb/train/predictions.npz \
	    --flow=$(AV_DEMO)/flow/train/predictions.npz \
	    --output=$(AV_DEMO)/fused_predictions.npz \
	    --split_list=$(AV_DEMO)/raw/train_test_lists/test_split1.txt
	@echo "== 6/7 export the two-stream SavedModel for TensorFlow Serving"
	$(PY) -m export.actionvlad_two_stream \
	    --rgb_workdir=$(AV_DEMO)/rgb/train --flow_workdir=$(AV_DEMO)/flow/train \
	    --export_dir=$(AV_DEMO)/models/actionvlad  # the runs' config.json
	@echo "== 7/7 one request through serving_default"
	$(PY) -m export.actionvlad_request \
	    --saved_model=$(AV_DEMO)/models/actionvlad/1 \
	    --frames_root=$(AV_DEMO)/raw/frames \
	    --split_list=$(AV_DEMO)/raw/train_test_lists/test_split1.txt \
	    --rest_body=$(AV_DEMO)/request.json

AT_DEMO := runs/action_transformer_demo
AT_CONFIG := experiments/configs/action_transformer_synthetic.py
AT_VIDEOS := 240

# `make demo-action-transformer`: person boxes and their actions (motion in
# the box, and context: who addresses whom, the blinking lamp) with the Tx
# head; frame-AP@0.5 of the detected people (official AVA metric).
demo-action-transformer: $(STAMP)
	rm -rf $(AT_DEMO)
	@echo "== 1/6 synthetic people, motions and context actions (AVA layout)"
	$(PY) -m tfaction.data.synthetic --kind=ava --num_videos=$(AT_VIDEOS) \
	    --out_dir=$(AT_DEMO)/raw
	@echo "== 2/6 convert keyframes, boxes and clips to TFRecords"
	$(PY) -m tfaction.data.convert --format=ava \
	    --input=$(AT_DEMO)/raw/ava_train_v2.1.csv,$(AT_DEMO)/raw/ava_val_v2.1.csv \
	    --videos_root=$(AT_DEMO)/raw/videos \
	    --label_map=$(AT_DEMO)/raw/ava_action_list_synthetic.pbtxt \
	    --excluded_timestamps=$(AT_DEMO)/raw/ava_train_excluded_timestamps_v2.1.csv,$(AT_DEMO)/raw/ava_val_excluded_timestamps_v2.1.csv \
	    --output_dir=$(AT_DEMO)/records
	@echo "== 3/6 train the Action Transformer, Tx head (MirroredStrategy, 2 replicas)"
	$(PY) -m experiments.train --config=$(AT_CONFIG):tx \
	    --workdir=$(AT_DEMO)/train --mode=train_and_eval \
	    --config.task.data_dir=$(AT_DEMO)/records
	@echo "== 4/6 frame-AP@0.5 of the validation keyframes (official AVA metric)"
	$(PY) -m experiments.evaluate --metric=ava_frame_ap \
	    --ground_truth=$(AT_DEMO)/records/ground_truth_val.csv \
	    --predictions=$(AT_DEMO)/train/detections_val.csv \
	    --label_map=$(AT_DEMO)/records/label_map.pbtxt
	@echo "== 5/6 export the SavedModel for TensorFlow Serving"
	$(PY) -m export.export_saved_model --workdir=$(AT_DEMO)/train \
	    --export_dir=$(AT_DEMO)/models/action_transformer  # the run's config.json
	@echo "== 6/6 one request through serving_default"
	$(PY) -m export.action_transformer_request \
	    --saved_model=$(AT_DEMO)/models/action_transformer/1 \
	    --data_dir=$(AT_DEMO)/records --subset=val \
	    --rest_body=$(AT_DEMO)/request.json

CARL_DEMO := runs/carl_demo
CARL_CONFIG := experiments/configs/carl_synthetic.py

# `make demo-carl`: frame-wise representations of synthetic phase videos
# learnt by sequence contrastive learning (two views of every video,
# MirroredStrategy over 2 replicas), then CARL's frame-wise protocols on the
# embeddings of every frame (Kendall's tau, phase classification, phase
# progression, retrieval), export and one request.
demo-carl: $(STAMP)
	rm -rf $(CARL_DEMO)
	@echo "== 1/6 synthetic phase-structured videos (TCC TFRecord layout)"
	$(PY) -m tfaction.data.synthetic --kind=tcc --out_dir=$(CARL_DEMO)/raw
	@echo "== 2/6 convert to frame-labelled TFRecords"
	$(PY) -m tfaction.data.convert --format=tcc \
	    --input='$(CARL_DEMO)/raw/*.tfrecord' --output_dir=$(CARL_DEMO)/records
	@echo "== 3/6 train CARL (MirroredStrategy, 2 replicas), embed every frame"
	$(PY) -m experiments.train --config=$(CARL_CONFIG) \
	    --workdir=$(CARL_DEMO)/train --mode=train_and_eval \
	    --config.task.data_dir=$(CARL_DEMO)/records
	@echo "== 4/6 frame-wise protocols on the written embeddings (val, per action), alignment of two val videos"
	$(PY) -m experiments.evaluate --metric=framewise --variant=carl \
	    --ground_truth=$(CARL_DEMO)/train/embeddings.npz \
	    --predictions=$(CARL_DEMO)/train/embeddings.npz \
	    --alignment_dir=$(CARL_DEMO)/alignment \
	    --records='$(CARL_DEMO)/records/*.tfrecord'
	@echo "== 5/6 export the SavedModel for TensorFlow Serving"
	$(PY) -m export.export_saved_model --workdir=$(CARL_DEMO)/train \
	    --export_dir=$(CARL_DEMO)/models/carl  # the run's config.json
	@echo "== 6/6 one request through serving_default"
	$(PY) -m export.carl_request --saved_model=$(CARL_DEMO)/models/carl/1 \
	    --data_dir=$(CARL_DEMO)/records --subset=val \
	    --rest_body=$(CARL_DEMO)/request.json

AF_DEMO := runs/adafocus_demo
AF_CONFIG := experiments/configs/adafocus_v2_synthetic.py
AF_VIDEOS := 1200
# V2+ early-exit budgets q (exit fractions ~ q^k) evaluated, and the one
# whose thresholds the export bakes in.
AF_BUDGETS := (0.5,0.7,1.0,1.5,2.0,3.0,3.9)
AF_EXPORT_BUDGET := 0.5

# `make demo-adafocus`: glance at every frame, focus on the patch the
# policy picks (AdaFocus V2, MirroredStrategy over 2 replicas), then V2+
# early exit: thresholds calibrated on the training videos for each
# budget, top-1 / mAP and expected GFLOPs of the held-out videos at each
# (train/early_exit.json, the figure train/early_exit.png), export with
# the thresholds of one budget and one request.
demo-adafocus: $(STAMP)
	rm -rf $(AF_DEMO)
	@echo "== 1/6 synthetic glyph videos (ActivityNet split-list layout)"
	$(PY) -m tfaction.data.synthetic --kind=adafocus \
	    --num_videos=$(AF_VIDEOS) --out_dir=$(AF_DEMO)/raw
	@echo "== 2/6 convert the frames to TFRecords"
	$(PY) -m tfaction.data.convert --format=actnet_frames \
	    --input=$(AF_DEMO)/raw/actnet_train_split.txt,$(AF_DEMO)/raw/actnet_val_split.txt \
	    --frames_root=$(AF_DEMO)/raw/frames \
	    --class_list=$(AF_DEMO)/raw/classInd.txt --num_workers=2 \
	    --output_dir=$(AF_DEMO)/records
	@echo "== 3/6 train AdaFocus V2 (MirroredStrategy, 2 replicas); evaluate, with the early-exit sweep"
	$(PY) -m experiments.train --config=$(AF_CONFIG) \
	    --workdir=$(AF_DEMO)/train --mode=train_and_eval \
	    --config.task.data_dir=$(AF_DEMO)/records \
	    '--config.task.early_exit_budgets=$(AF_BUDGETS)'
	@echo "== 4/6 mAP and top-1 of the held-out videos, all frames (the authors' cal_map)"
	$(PY) -m experiments.evaluate --metric=adafocus_map \
	    --ground_truth=$(AF_DEMO)/raw/actnet_val_split.txt \
	    --predictions=$(AF_DEMO)/train/predictions.npz --top_k=1
	@echo "== 5/6 export the SavedModel with the early-exit thresholds of q = $(AF_EXPORT_BUDGET)"
	$(PY) -m export.export_saved_model --workdir=$(AF_DEMO)/train \
	    --export_dir=$(AF_DEMO)/models/adafocus \
	    --config.task.export_early_exit_file=$(AF_DEMO)/train/early_exit.json \
	    --config.task.export_early_exit_budget=$(AF_EXPORT_BUDGET)
	@echo "== 6/6 one request through serving_default"
	$(PY) -m export.adafocus_request \
	    --saved_model=$(AF_DEMO)/models/adafocus/1 \
	    --data_dir=$(AF_DEMO)/records --subset=val --num_steps=8 \
	    --rest_body=$(AF_DEMO)/request.json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
