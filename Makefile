# The two commands of the README, on a fresh clone with nothing installed beyond Python:
#
#   make compare   the main job: python -m skfairbilevel compare (options: make compare ARGS="--quick")
#   make test      the test suite (options: make test ARGS="tests/test_compare.py")
#
# Both create (or reuse) a virtual environment in .venv, install the CPU build of torch
# first (an unpinned torch pulls several GB of CUDA packages), then the package with its
# test extra. TORCH_PIP_ARGS adds pip options for torch, e.g.
# TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".

PYTHON ?= $(shell command -v python3 || command -v python)
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: compare test venv

compare: $(STAMP)
	$(BIN)/python -m skfairbilevel compare $(ARGS)

test: $(STAMP)
	$(BIN)/python -c "import torch, sklearn, fairlearn; print('torch', torch.__version__, '| scikit-learn', sklearn.__version__, '| fairlearn', fairlearn.__version__)"
	$(BIN)/python -m pytest -q -n 2 $(ARGS)

venv: $(STAMP)

$(STAMP): $(wildcard pyproject.toml setup.cfg)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@
