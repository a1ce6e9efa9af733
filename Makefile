# Counterweight: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SPARK_SUBMIT := $(VENV)/bin/spark-submit
LAKE ?= lake
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast eval train export package clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m counterweight.setup_env
	touch $(STAMP)

demo: setup
	$(SPARK_SUBMIT) jobs/pipeline.py lake.root=$(LAKE)

train: setup
	$(PY) -m jobs.train
	$(PY) -m jobs.evaluate evaluate.path=build/training/dev_holdout.jsonl evaluate.out=reports/eval/dev_holdout.json

eval: setup
	$(SPARK_SUBMIT) jobs/evaluate.py evaluate.path=$${EVAL:-build/training/dev_holdout.jsonl} evaluate.out=reports/eval/metrics.json

package: setup
	$(PY) -m counterweight.package

export: setup
	$(SPARK_SUBMIT) jobs/export.py lake.root=$(LAKE)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(LAKE) reports dist build *.egg-info
