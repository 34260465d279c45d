# Curso «Datos de calidad y fine-tuning de LLMs» — comandos del proyecto.
#   make course   instala (idempotente) y ejecuta los 5 cuadernos en modo mini → build/
#   make test     instala (idempotente) y ejecuta toda la batería de tests
#   make lab      abre JupyterLab en notebooks/
SHELL := /bin/bash
# Python 3.11, 3.12 or 3.13; empty: scripts/setup picks the first one it finds and says which.
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: help setup course test test-unit lab sync clean

help:
	@sed -n '2,4p' Makefile

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml scripts/setup
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup
	@touch $(STAMP)

course: setup
	COURSE_PROFILE=mini scripts/with_services $(PY) scripts/run_course.py

test: setup
	COURSE_PROFILE=mini scripts/with_services $(PY) -m pytest tests notebooks \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900 $(PYTEST_ARGS)

test-unit: setup
	COURSE_PROFILE=mini $(PY) -m pytest tests $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

sync: setup
	$(PY) scripts/sync_notebooks.py

clean:
	rm -rf build .pytest_cache
