# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Every target below is idempotent: re-running only does what is missing.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
# The CPU wheel that lies on this machine's disk; users may install any torch in range.
TORCH_PIN ?= torch==2.13.0
STAMP   := $(VENV)/.nectargan-installed

.PHONY: setup demo test lint bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/build-constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q "$(TORCH_PIN)"
	PIP_BUILD_CONSTRAINT=$(CURDIR)/scripts/build-constraints.txt \
		$(PIP) install -q -e ".[test]"
	$(VENV)/bin/nectargan visdom install-assets
	touch $(STAMP)

demo: setup
	$(VENV)/bin/nectargan demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check nectargan tests bench
	$(VENV)/bin/ruff format --check nectargan tests bench

bench: setup
	$(PY) bench/visualizer.py

clean-venv:
	rm -rf $(VENV)
