#!/usr/bin/env bash
# The campaigns behind docs/reproductions.md (seed 000 table III, seed 001 table II).
# Resumable: run it again to continue. Then: .venv/bin/python bench/reproduce_tables.py
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository
M=../shared/models/qin_mnist_cnn.onnx
D=../shared/data/mnist.npz
R000=0.001,0.002,0.004,0.006,0.008,0.01,0.012,0.015,0.02,0.025,0.03,0.034,0.04,0.05
for range in model tensor; do
  .venv/bin/host sweep $M --codecs fixed8,parity8 --channel bsc --rates $R000 --trials 20 \
    --range $range --data $D --seed 2018 --workers 2 --out runs/seed000-$range
done
R001=0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008,0.009,0.01,0.011,0.012,0.013,0.014
.venv/bin/host sweep $M --codecs fixed16:mid,hamming16:mid --channel bsc --rates $R001 \
  --trials 20 --data $D --seed 2019 --workers 2 --out runs/seed001
# the issue's hint: do the 288 weights of the first conv layer decide the worst trials?
.venv/bin/host sweep $M --codecs parity8 --override 'conv1.*=secded(parity8)' --channel bsc \
  --rates 0.012,0.015,0.02,0.025,0.03,0.034,0.04,0.05 --trials 20 --data $D --seed 2018 \
  --workers 2 --out runs/seed000-conv1-secded
# which layer's errors alone make the worst trials? (seed 000 Fig. 4, at two rates)
.venv/bin/host sweep $M --codecs parity8 --channel bsc --rates 0.025,0.034 --trials 20 \
  --scope layers --data $D --seed 2018 --workers 2 --out runs/seed000-layers
