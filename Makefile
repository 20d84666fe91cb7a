# The two README commands: `make run` and `make test`. Everything they need is
# installed here, with plain pip (it finds the torch wheels on local disks).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RECIPE ?= recipes/ijepa_tiny.yaml
export OMP_NUM_THREADS ?= 2

.PHONY: venv run test lint clean

venv: $(BIN)/jepakit

$(BIN)/jepakit: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/jepakit

run: venv
	$(BIN)/jepakit run $(RECIPE)

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check jepakit plugins tests
	$(BIN)/mypy jepakit

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .hypothesis
