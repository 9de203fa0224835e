# Quick start: `make demo` (install, fetch data, run the spiking-vs-rate comparison) and
# `make test` (install, fetch data, lint, run the test suite). Both work on a fresh clone.
# GPU users choose their torch build, e.g. `make demo TORCH_SPEC="torch==2.13.0 --index-url ..."`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install install-peers data demo test lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $@

install: $(BIN)/.installed

# The peers benchmarks/conversion.py and benchmarks/diehl_cook_speed.py compare against (BindsNET:
# its model modules only). Their own pins would pull a CUDA
# torch build (and torchvision/torchaudio, samna), so they come without dependencies, plus the
# packages they import; nothing of the project needs them.
PEERS := spikingjelly==2.0.0 sinabs==3.1.3 bindsnet==0.3.4
PEER_NEEDS := loguru pbr requests
install-peers: install
	$(BIN)/python -m pip install --quiet --no-deps $(PEERS)
	$(BIN)/python -m pip install --quiet $(PEER_NEEDS)

data: install
	$(BIN)/spikebridge data fetch all

demo: data
	$(BIN)/spikebridge compare

lint: install
	$(BIN)/ruff check .

test: data lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
