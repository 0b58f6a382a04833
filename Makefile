# The two README commands:
#   make demo   install, build, and execute every tutorial in notebooks/ (outputs in artifacts/)
#   make test   install, build, lint, type-check, JS unit tests, Python + browser + notebook tests
# Developer targets: make dev (esbuild watch + anywidget hot reload), make lint, make bench, make lab

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo notebooks test test-newest install js chromium lint typecheck jstest pytest lab dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml package.json constraints.txt | $(BIN)/python
	npm install --no-audit --no-fund
	npm run build
	$(BIN)/pip install --quiet -e ".[test]" -c constraints.txt
	# test oracles whose requirements would replace ours (opencv-python for our headless build;
	# Quantus' keras<3): installed without their dependencies, used on torch models only
	$(BIN)/pip install --quiet --no-deps -c constraints.txt grad-cam ttach quantus cachetools
	# triton (GPU kernels, pulled in by the CUDA build of torch) segfaults when imported after
	# TensorFlow, and torch._dynamo imports it; on the CPU it is never used
	$(BIN)/pip uninstall --quiet --yes triton
	touch $(STAMP)

install: $(STAMP)

js: install
	npm run build

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

lint: install
	$(BIN)/ruff check xaiwidgets tests bench
	$(BIN)/ruff format --check xaiwidgets tests bench

typecheck: install
	npx tsc --noEmit -p tsconfig.json

jstest: install
	npx vitest run

pytest: install chromium
	$(BIN)/python -m pytest -p no:cacheprovider --durations=15

test: lint typecheck jstest pytest test-newest

# The backend contract suite on the newest release of each framework (no constraints file;
# on machines that cap torch at the releases on their disk, the newest of those).
NEWEST := .venv-newest
test-newest: install
	test -x $(NEWEST)/bin/python || $(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/pip install --quiet --upgrade pip
	$(NEWEST)/bin/pip install --quiet --upgrade -e ".[all]" pytest
	$(NEWEST)/bin/pip uninstall --quiet --yes triton
	$(NEWEST)/bin/python -c "import torch, tensorflow, keras, jax, flax; print('newest:', 'torch', torch.__version__, 'tensorflow', tensorflow.__version__, 'keras', keras.__version__, 'jax', jax.__version__, 'flax', flax.__version__)"
	$(NEWEST)/bin/python -m pytest -p no:cacheprovider -q tests/backends

demo: install
	mkdir -p artifacts/notebooks
	$(BIN)/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=900 \
		--output-dir artifacts/notebooks notebooks/*.ipynb
	$(BIN)/python scripts/inline_widget_manager.py artifacts/notebooks/*.html
	@echo "Executed tutorials: artifacts/notebooks/*.html (self-contained: their widgets draw offline; or run: make lab)"

notebooks: install
	$(BIN)/python scripts/make_notebook.py notebooks/src/*.py notebooks

lab: install
	$(BIN)/jupyter lab notebooks

dev: install
	ANYWIDGET_HMR=1 npm run dev

bench: install
	for f in bench/*.py; do $(BIN)/python $$f --quick || exit 1; done

clean:
	rm -rf $(VENV) $(NEWEST) node_modules xaiwidgets/static artifacts
