# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv demo test test-all clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/lenet5 demo

test: venv
	$(PY) -m pytest -n 2 -m "not slow"

test-all: venv
	$(PY) -m pytest -n 2

clean:
	rm -rf build out sim_build .pytest_cache
