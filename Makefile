# Task runner: `make demo` and `make test` work on a fresh machine (they create the venv).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export LLMREC_TEST_CACHE ?= $(CURDIR)/.cache/test

.PHONY: demo test lint typecheck unit integration encoder soak quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned so pip takes the local CPU build (an unpinned torch pulls a CUDA one)
	$(BIN)/pip install -q -e '.[cpu,export,train,eval,bench,serve,sentiment,dev,test]' torch==2.13.0
	touch $(STAMP)

encoder: $(STAMP)
	$(BIN)/llmrec-stream export-encoder --int8

demo: encoder
	$(BIN)/llmrec-stream demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test: lint typecheck
	$(BIN)/pytest -q --durations=10

# the long fault run: 10 kill -9 over 100,000 events, verified against the input
soak: $(STAMP)
	LLMREC_SOAK_KILLS=10 LLMREC_SOAK_EVENTS=100000 $(BIN)/pytest -q -s tests/fault/test_kill_worker.py

# the offline quality table of docs/eval.md (both data sets, every model, 3 seeds; days of CPU,
# resumable: finished parts are kept), merged into results/quality/table
quality: $(STAMP)
	scripts/quality_table.sh

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
