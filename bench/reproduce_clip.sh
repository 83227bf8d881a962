#!/usr/bin/env bash
# Seed 003 (FT-ClipAct) reproduction on a stand-in model: profile, clip, tune, sweep, compare.
#
#   [TUNE_SAMPLES=1000 N=6] nice -n 10 bench/reproduce_clip.sh MODEL.onnx DATA.npz OUT_DIR SCALE \
#       [TUNE_TRIALS] [TRIALS] [SAMPLES]
#
# MODEL is evaluated on the first SAMPLES (default 2,000) test images of DATA; ACT_max and the thresholds are
# found on a validation subset that does not overlap them: the last 1,000 *training* images
# (written to OUT_DIR/val.npz), as the paper keeps its threshold data apart from its test set.
# The fault model is the paper's: float32 weights, BSC. SCALE multiplies the paper's rates
# 1e-8 ... 1e-5 so that the expected flips per model (p x 32 x weights) match the paper's
# network (docs/reproductions.md says how SCALE was chosen).
set -euo pipefail
MODEL=$1; DATA=$2; OUT=$3; SCALE=$4; TUNE_TRIALS=${5:-10}; TRIALS=${6:-50}; SAMPLES=${7:-2000}
TUNE_SAMPLES=${TUNE_SAMPLES:-1000}; N=${N:-6}  # evaluation samples of the search; Algorithm 1's N
HOST=${HOST:-.venv/bin/host}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
RATES=$($PY -c "import sys; s=float(sys.argv[1]); print(','.join(f'{p*s:.3g}' for p in (1e-8,5e-8,1e-7,5e-7,1e-6,5e-6,1e-5)))" "$SCALE")
echo "rates: $RATES"
$PY - "$DATA" "$OUT/val.npz" <<'PY'
import sys, numpy as np
d = np.load(sys.argv[1])
np.savez_compressed(sys.argv[2], x_test=d["x_train"][-1000:], y_test=d["y_train"][-1000:])
PY
time $HOST clip "$MODEL" --data "$OUT/val.npz" --profile-samples 1000 -o "$OUT/clipped.onnx"
time $HOST clip "$MODEL" --data "$OUT/val.npz" --profile-samples 1000 --tune --codec float32 \
    --channel bsc --rates "$RATES" --trials "$TUNE_TRIALS" --samples "$TUNE_SAMPLES" --n "$N" -o "$OUT/tuned.onnx" --json \
    > "$OUT/tune.json"
for name in base clipped tuned; do
  model=$MODEL; [ $name = base ] || model=$OUT/$name.onnx
  $HOST sweep "$model" --codecs float32 --channel bsc --rates "$RATES" --trials "$TRIALS" \
      --data "$DATA" --samples "$SAMPLES" --seed 3 --out "$OUT/sweep_$name" --json > /dev/null
done
$HOST report "$OUT/sweep_base" "$OUT/sweep_clipped" "$OUT/sweep_tuned" --out "$OUT/compare"
