# Every target creates .venv and installs the project into it when missing, so on a fresh
# machine `make demo` and `make test` are the only commands a newcomer types.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test bench bench-detect bench-real-suites bench-serve bench-lint lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) fixtures/demo.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: bench-detect bench-real-suites bench-serve bench-lint

bench-detect: $(STAMP)
	$(PY) tests/benchmarks/bench_detect.py

# Runs anyio's and httpx's own test suites offline under the plugin (needs `unshare`).
bench-real-suites: $(STAMP)
	$(PY) tests/benchmarks/real_suites.py

bench-serve: $(STAMP)
	$(PY) tests/benchmarks/bench_serve.py

bench-lint: $(STAMP)
	$(PY) tests/benchmarks/bench_lint.py

# mypy finds the linter under its import name through a link (the package lives in lint/).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/concurrency-lint pytest_concurrency lint
	mkdir -p $(VENV)/mypy-path && ln -sfn $(CURDIR)/lint $(VENV)/mypy-path/concurrency_lint
	MYPYPATH=$(VENV)/mypy-path $(VENV)/bin/mypy -p pytest_concurrency -p concurrency_lint

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .concurrency-lint-cache
