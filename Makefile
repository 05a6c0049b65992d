# Fresh-machine entry points: `make demo` and `make test` create .venv, install, and run.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
JOBS ?= 2

.PHONY: all venv demo test test-slow lint type check bench clean

all: test

$(STAMP): setup.cfg constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,zoo]'
	touch $(STAMP)

venv: $(STAMP)

# The main job on the bundled example: PyTorch -> ONNX (parity vs PyTorch in onnxruntime) ->
# Core ML (parity vs onnxruntime on our executor) -> an independent check vs PyTorch.
demo: $(STAMP)
	$(PY) -m pipeline.export models.small_cnn:build --out demo-out/small_cnn.onnx \
		--keep-intermediates demo-out/intermediates --report demo-out/export-report.json
	$(PY) -m pipeline.lower demo-out/small_cnn.onnx --out demo-out/small_cnn.mlpackage \
		--report demo-out/lower-report.json
	$(PY) -m pipeline.verify demo-out/small_cnn.mlpackage --reference models.small_cnn:build

# pytest exits 5 when it collects nothing; any non-zero exit fails the target loudly.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] && echo "error: no tests were collected"; exit $$rc; }

test-slow: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check --line-length 100 pipeline symbolics rewrites models tests bench
	@big=$$(find pipeline symbolics rewrites models tests bench -name '*.py' | xargs wc -l | awk '$$2 != "total" && $$1 > 600 {print}'); \
		if [ -n "$$big" ]; then echo "modules over 600 lines:"; echo "$$big"; exit 1; fi

type: $(STAMP)
	$(PY) -m mypy pipeline symbolics rewrites

check: lint type test

clean:
	rm -rf $(VENV) demo-out .pytest_cache
