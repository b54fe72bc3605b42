# The README's two commands: `make demo` (the whole pipeline on embedded synthetic data, CPU scale) and
# `make test` (the test suite). Each sets itself up: .venv is created from requirements.lock if missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CORES ?= all
export DVC_NO_ANALYTICS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export KERAS_HOME := $(CURDIR)/.keras
export MPLBACKEND := Agg

.PHONY: setup demo paper test test-cluster lint dryrun bench report regenerate publish-demo clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml --resources gpu=4

paper: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=4

test: setup
	$(BIN)/pytest -q

# As root: installs and starts a throw-away single-node SLURM (tools/slurm/up.sh), runs config/tiny.yaml through
# profiles/slurm and compares with a local run; docs/cluster.md.
test-cluster: setup
	$(BIN)/pytest -q -m cluster tests/test_cluster.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint --cores 1

dryrun: setup
	$(BIN)/snakemake -n --cores all --quiet rules --resources gpu=4

# Copy the demo's tables and figures into docs/demo/, which the README shows (run after `make demo`).
publish-demo:
	mkdir -p docs/demo
	cp results/tables/table1_segmentation.md results/tables/table2_regression.md results/summary.md docs/demo/
	cp results/figures/fig3_triplets.png results/figures/fig5_vertices.png results/figures/fig6_segmentation.png \
		results/figures/fig7_agreement.png results/figures/synthetic_examples.png docs/demo/
	cp results/metrics.json docs/demo/

bench: setup
	$(BIN)/vcmeasure bench

report: setup
	$(BIN)/snakemake --cores 1 --configfile config/quick.yaml --report results/report.html

# After `dvc pull`: rebuild missing or outdated figures and tables from the pulled artifacts, no retraining.
# Pulled files get fresh, arbitrary modification times; dvc.lock vouches that they belong together, so
# `snakemake --touch` first re-establishes their order, then Snakemake builds only what is missing.
CONFIG ?= config/quick.yaml
regenerate:
	test -x $(BIN)/snakemake || $(MAKE) setup
	$(BIN)/dvc pull -q
	$(BIN)/snakemake --touch --cores 1 --configfile $(CONFIG) --quiet all
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --resources gpu=4

clean:
	rm -rf results .snakemake/log
