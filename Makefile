# Two commands: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# the CPU build of PyTorch first: a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev,bench]"
	# microsoft/mup, the reference tests/test_width.py checks µP's width rule against: its
	# metadata pins torchvision (a CUDA torch with it); it imports only torch and PyYAML
	$(BIN)/python -m pip install --no-deps mup==1.0.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/transfer-tune demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
