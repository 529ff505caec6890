# Everything a fresh machine needs: `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# transformers 4.x, tested beside the main (5.x) environment
TF4 := .venv-transformers4
TF4_STAMP := $(TF4)/.installed-stamp

.PHONY: test lint oracle-deep test-transformers4 demo dashboard screenshot bench bench-media bench-system bench-module-api bench-finish docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU build first: a plain `torch` requirement would pull several GB of CUDA wheels
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[all,test,docs]"
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# the suite includes the strict docs build (tests/test_docs.py) and every docs program
test: lint
	$(BIN)/python -m pytest -q
	$(MAKE) test-transformers4

# The oracle (what each framework logged against what the server holds) over many more settings
# than `make test` runs, with fresh random examples each time (not under CI=true).
oracle-deep: $(STAMP)
	ORACLE_EXAMPLES=$${ORACLE_EXAMPLES:-60} $(BIN)/python -m pytest -q -p no:cacheprovider \
		--timeout=3600 tests/test_oracle_transformers.py tests/test_oracle_lightning.py \
		tests/test_oracle_accelerate.py

$(TF4_STAMP): pyproject.toml
	@test -x $(TF4)/bin/python || $(PYTHON) -m venv $(TF4)
	$(TF4)/bin/python -m pip install -q --upgrade pip
	$(TF4)/bin/python -m pip install -q torch==2.13.0
	$(TF4)/bin/python -m pip install -q -e . "transformers==4.57.6" accelerate peft numpy pytest pytest-timeout
	@touch $(TF4_STAMP)

# The callback's tests on transformers 4.57. The server under test comes from .venv: trackio 0.43
# needs huggingface_hub>=1.10 and transformers 4.x needs <1.0, so they cannot share one
# environment; for the same reason the two report_to="trackio" tests (which need trackio importable
# beside transformers) run on 5.x only.
test-transformers4: $(TF4_STAMP) $(STAMP)
	TRACKIO_SHOW_BIN=$(CURDIR)/$(BIN)/trackio $(TF4)/bin/python -m pytest -q -p no:cacheprovider \
		tests/test_transformers.py -k "not report_to"

demo: $(STAMP)
	$(BIN)/python -m examples.demo

dashboard: $(STAMP)
	TRACKIO_DIR=$${TRACKIO_DIR:-$(CURDIR)/.demo/trackio} $(BIN)/trackio show

# Saves the run in bench/results.json and renders docs/performance.md's results from it.
bench: $(STAMP)
	$(BIN)/python bench/bench.py --json bench/results.json
	$(BIN)/python bench/report.py --readme docs/performance.md

# log() of an image, a table and a histogram against trackio's own (about a minute)
bench-media: $(STAMP)
	$(BIN)/python bench/media.py

# the documentation site, from docs/ and the docstrings, into site/
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build

# What system metrics cost: log() with the sampler on and off, CPU per sample against trackio's
bench-system: $(STAMP)
	$(BIN)/python bench/system.py

bench-module-api: $(STAMP)
	$(BIN)/python bench/module_api.py

# What provenance costs at the end of a run: the cold start beside trackio's, a Trainer's finish()
bench-finish: $(STAMP)
	$(BIN)/python bench/finish.py

clean:
	rm -rf $(VENV) $(TF4) .demo site .pytest_cache .mypy_cache .ruff_cache

screenshot: $(STAMP)
	$(BIN)/python scripts/screenshot.py
