# diffad developer commands. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: venv test demo lint format docs wheel-check bench-metrics clean

# The stamp is rebuilt when pyproject.toml changes. torch goes in first so that pip does not pull a
# multi-GB CUDA build as a dependency of the package.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/pip install --quiet -e ".[dev,parquet,image,fleet,serve]"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/diffad demo --out diffad-out/demo

bench-metrics: venv
	taskset -c 0 $(BIN)/python benchmarks/metrics_speed.py $(if $(REFERENCE_PYTHON),--reference-python $(REFERENCE_PYTHON))

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# The API reference from the docstrings (numpydoc); warnings are errors.
docs: venv
	$(BIN)/pip install --quiet -e ".[docs]"
	rm -rf docs/_build docs/api
	$(BIN)/sphinx-build -q -W --keep-going -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# Build the wheel, install it into a clean virtual environment (torch first) and run the demo from it.
wheel-check: venv
	rm -rf dist build/wheel-venv build/wheel-demo
	$(BIN)/pip install --quiet build
	$(BIN)/python -m build --wheel --outdir dist .
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/pip install --quiet "torch==$(TORCH_VERSION)"
	build/wheel-venv/bin/pip install --quiet dist/diffad-*.whl
	cd build && wheel-venv/bin/diffad --version && wheel-venv/bin/diffad demo --out wheel-demo --quiet

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache docs/_build docs/api
