#!/usr/bin/env bash
# The benchmarks' own environment (.venv-bench): torch 2.13.0 (the CPU wheel on disk; any other
# torch pulls gigabytes), the peers MRFI 2.1 and PyTorchFI 0.6, and FlipLab itself. The peers
# are installed with --no-deps because their requirements (torchvision, torch>=...) would pull
# another torch; what they import at run time is installed by hand below. torch never enters
# the project's own .venv through this script.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-bench}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q --no-deps mrfi==2.1.0 pytorchfi==0.6.0
"$VENV/bin/pip" install -q pyyaml scipy numpy
"$VENV/bin/pip" install -q -e .
"$VENV/bin/python" -c "import torch, mrfi, pytorchfi; print('bench env:', torch.__version__, 'mrfi + pytorchfi ok')"
