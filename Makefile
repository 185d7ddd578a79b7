# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Every target below is idempotent: re-running only does what is missing.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
# The CPU wheel that lies on this machine's disk; users may install any torch in range.
TORCH_VERSION ?= 2.13.0
TORCH_PIN := torch==$(TORCH_VERSION)
STAMP   := $(VENV)/.nectargan-installed

.PHONY: setup demo test lint bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/build-constraints.txt
	command -v npm >/dev/null 2>&1 || scripts/install-system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q "$(TORCH_PIN)"
	PIP_BUILD_CONSTRAINT=$(CURDIR)/scripts/build-constraints.txt \
		$(PIP) install -q -e ".[test,toolbox]"
	$(VENV)/bin/nectargan visdom install-assets
	$(PY) -c "import torch; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/nectargan demo

test: setup
	scripts/install-system-deps.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check nectargan tests bench
	$(VENV)/bin/ruff format --check nectargan tests bench

bench: setup
	$(PY) bench/visualizer.py

clean-venv:
	rm -rf $(VENV)
