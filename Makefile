# Counterweight: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SPARK_SUBMIT := $(VENV)/bin/spark-submit
LAKE ?= lake
STAMP := $(VENV)/.installed

.PHONY: eval-proxy setup demo test test-fast eval train export package clean airflow bench bench-setup

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

# The proxy evaluation sets (data/eval/proxy: the held-out kinds, never trained on).
eval-proxy: setup
	for f in data/eval/proxy/*.jsonl; do \
	  $(PY) -m jobs.evaluate evaluate.path=$$f evaluate.out=reports/eval/$$(basename $$f .jsonl).json || exit 1; done

package: setup
	$(PY) -m counterweight.package

export: setup
	$(SPARK_SUBMIT) jobs/export.py lake.root=$(LAKE)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# Airflow in its own virtualenv: the Spark provider pulls pyspark-client, which would overwrite the
# project's pyspark. Pins: the two below plus every transitive one in dags/airflow-constraints.txt.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION := 3.3.2
SPARK_PROVIDER_VERSION := 6.3.4
AIRFLOW_CONSTRAINTS := dags/airflow-constraints.txt
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

airflow: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): $(AIRFLOW_CONSTRAINTS)
	rm -rf $(AIRFLOW_VENV)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -c $(AIRFLOW_CONSTRAINTS) \
		apache-airflow==$(AIRFLOW_VERSION) apache-airflow-providers-apache-spark==$(SPARK_PROVIDER_VERSION)
	$(AIRFLOW_VENV)/bin/python -c "import airflow.providers.apache.spark.operators.spark_submit, airflow.sdk"
	touch $(AIRFLOW_STAMP)

clean:
	rm -rf $(VENV) $(LAKE) reports dist build *.egg-info

# Benchmarks (bench/run.py, docs/benchmarks.md). Configure with BENCH_N, BENCH_RUNS, BENCH_PIPELINE_RUNS,
# BENCH_PEER_N, BENCH_ONLY, BENCH_WORK (e.g. `make bench BENCH_N=100000,200000,400000`).
# The DataTrove peer runs in its own virtualenv (pins: bench/requirements-datatrove.txt).
BENCH_DT_VENV := bench/.venv-datatrove
BENCH_DT_STAMP := $(BENCH_DT_VENV)/.installed

BENCH_PYSPY := bench/.venv-tools/bin/py-spy

bench-setup: $(STAMP) $(BENCH_DT_STAMP) $(BENCH_PYSPY)

$(BENCH_DT_STAMP): bench/requirements-datatrove.txt
	rm -rf $(BENCH_DT_VENV)
	$(PYTHON) -m venv $(BENCH_DT_VENV)
	$(BENCH_DT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_DT_VENV)/bin/python -m pip install --quiet -r bench/requirements-datatrove.txt
	$(BENCH_DT_VENV)/bin/python -c "import datatrove.pipeline.filters, fasttext"
	touch $(BENCH_DT_STAMP)

$(BENCH_PYSPY):  # for bench/profile_label.py only
	$(PYTHON) -m venv bench/.venv-tools
	bench/.venv-tools/bin/python -m pip install --quiet py-spy==0.4.3

bench: bench-setup
	$(PY) bench/run.py
