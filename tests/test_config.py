"""Config tier: compose every config group, and check that bad configuration fails before Spark starts.

No Spark in-process. One subprocess test runs ``python -m counterweight`` with a bad key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from counterweight import config
from counterweight.config import InputFormat, LakeEngine
from counterweight.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
INPUT_KEYS = ["path", "format", "text_field", "id_field", "source", "source_field", "strict"]


# --- the default config ------------------------------------------------------------------------
def test_default_config_loads() -> None:
    cfg = config.load([])
    assert cfg.lake.root == "./lake"
    assert cfg.input.path == "data/sample/sample.jsonl.gz"
    assert cfg.input.path.startswith("data/sample/")
    assert (REPO / cfg.input.path).is_file()
    assert cfg.input.format == InputFormat.jsonl
    assert cfg.input.id_field == "id"
    assert cfg.lake.engine == LakeEngine.auto
    assert cfg.ingest.dedup is True
    assert cfg.ingest.max_chars == 2_000_000
    assert cfg.run.id is None


def test_config_is_read_only() -> None:
    cfg = config.load([])
    with pytest.raises(Exception):
        cfg.lake.root = "/elsewhere"
    assert cfg.lake.root == "./lake"


def test_overrides_apply() -> None:
    cfg = config.load([
        "input=jsonl", "input.path=/data/in.jsonl", "input.id_field=doc", "lake.root=/tmp/lk",
        "ingest.max_chars=1000", "ingest.dedup=false", "ingest.on_conflict=update", "spark=cluster",
        "lake.engine=delta_rs", "run.id=abc", "spark.master='local[3]'",
    ])
    assert cfg.input.path == "/data/in.jsonl"
    assert cfg.input.id_field == "doc"
    assert cfg.lake.root == "/tmp/lk"
    assert cfg.ingest.max_chars == 1000
    assert cfg.ingest.dedup is False
    assert cfg.ingest.on_conflict == config.OnConflict.update
    assert cfg.lake.engine == LakeEngine.delta_rs
    assert cfg.run.id == "abc"
    assert config.spark_properties(cfg.spark.conf)["spark.sql.shuffle.partitions"] == "200"  # from conf/spark/cluster.yaml
    assert cfg.spark.master == "local[3]"


def test_documented_spark_conf_override_sets_the_spark_key() -> None:
    cfg = config.load(["+spark.conf.spark.executor.memory=4g"])
    assert config.spark_properties(cfg.spark.conf).get("spark.executor.memory") == "4g"
    assert all(isinstance(v, str) for v in config.spark_properties(cfg.spark.conf).values())


def test_existing_spark_conf_key_can_be_overridden() -> None:
    cfg = config.load(["spark.conf.spark.sql.shuffle.partitions=4"])
    assert config.spark_properties(cfg.spark.conf)["spark.sql.shuffle.partitions"] == "4"


def test_group_option_selects_yaml_values() -> None:
    cfg = config.load(["input=text", "input.path=/data/txt"])
    assert cfg.input.format == InputFormat.text
    assert cfg.input.source_field is None
    assert cfg.input.id_field is None
    cfg = config.load(["input=parquet", "input.path=/data/pq"])
    assert cfg.input.format == InputFormat.parquet


# --- unknown keys ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "key"), [("input.foo=1", "input.foo"), ("+input.foo=1", "input.foo")])
def test_unknown_key_in_group_names_key_and_valid_keys(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([override])
    msg = str(err.value)
    assert f"'{key}'" in msg
    for valid in INPUT_KEYS:
        assert valid in msg, (valid, msg)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("override", ["foo=1", "+foo=1"])
def test_unknown_top_level_key_names_key_and_valid_keys(override: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([override])
    msg = str(err.value)
    assert "'foo'" in msg
    for valid in ("input", "spark", "lake", "ingest", "run"):
        assert valid in msg, (valid, msg)


def test_unknown_nested_key_in_yaml_values_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        config.validate({"ingest": {"max_char": 5}})
    assert "'ingest.max_char'" in str(err.value)
    assert "max_chars" in str(err.value)


# --- wrong types and enums ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "key"),
    [("ingest.max_chars=abc", "ingest.max_chars"), ("ingest.dedup=maybe", "ingest.dedup"),
     ("lake.lock_timeout_s=soon", "lake.lock_timeout_s"), ("input.strict=perhaps", "input.strict")],
)
def test_wrong_type_names_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([override])
    msg = str(err.value)
    assert f"'{key}'" in msg
    assert override.split("=", 1)[1] in msg  # names the value too


def test_invalid_enum_lists_choices() -> None:
    with pytest.raises(ConfigError) as err:
        config.load(["input.format=csv"])
    msg = str(err.value)
    assert "'input.format'" in msg and "csv" in msg
    choices = msg.split("valid choices:")[1]
    assert [c.strip() for c in choices.split(",")] == ["jsonl", "parquet", "text"]


@pytest.mark.parametrize(
    ("override", "key", "choices"),
    [("lake.engine=hive", "lake.engine", ["auto", "delta_rs", "delta_spark"]),
     ("ingest.on_conflict=merge", "ingest.on_conflict", ["quarantine", "update"])],
)
def test_other_enums_list_choices(override: str, key: str, choices: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([override])
    msg = str(err.value)
    assert f"'{key}'" in msg
    for choice in choices:
        assert choice in msg.split("valid choices:")[1]


def test_unknown_group_option_names_the_options() -> None:
    with pytest.raises(ConfigError) as err:
        config.load(["spark=nope"])
    msg = str(err.value)
    assert "nope" in msg
    assert "cluster" in msg and "local" in msg


def test_unknown_input_option_names_the_options() -> None:
    with pytest.raises(ConfigError) as err:
        config.load(["input=csv"])
    msg = str(err.value)
    assert "csv" in msg
    for option in ("jsonl", "parquet", "sample", "text"):
        assert option in msg


# --- range and value checks -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("ingest.max_chars=0", "ingest.max_chars"),
        ("ingest.max_chars=-5", "ingest.max_chars"),
        ("ingest.split_bytes=1000", "ingest.split_bytes"),
        ("ingest.batch_records=0", "ingest.batch_records"),
        ("ingest.quarantine_raw_max_bytes=-1", "ingest.quarantine_raw_max_bytes"),
        ("spark.log_level=LOUD", "spark.log_level"),
        ("input.path=", "input.path"),
        ("input.text_field=", "input.text_field"),
        ("lake.root=", "lake.root"),
    ],
)
def test_range_checks_name_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([override])
    assert f"'{key}'" in str(err.value)


def test_range_check_boundaries_accepted() -> None:
    cfg = config.load(["ingest.max_chars=1", "ingest.split_bytes=1048576", "ingest.batch_records=1",
                       "ingest.quarantine_raw_max_bytes=0", "spark.log_level=ERROR"])
    assert cfg.ingest.max_chars == 1
    assert cfg.ingest.split_bytes == 1 << 20
    assert cfg.ingest.quarantine_raw_max_bytes == 0


def test_log_level_error_lists_levels() -> None:
    with pytest.raises(ConfigError) as err:
        config.load(["spark.log_level=LOUD"])
    for level in ("DEBUG", "INFO", "WARN", "ERROR"):
        assert level in str(err.value)


@pytest.mark.parametrize("option", ["jsonl", "parquet", "text"])
def test_required_input_path_must_be_given(option: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load([f"input={option}"])
    assert "input.path" in str(err.value)


# --- config_hash ---------------------------------------------------------------------------------
def test_config_hash_stable_and_independent_of_run_id() -> None:
    a = config.config_hash(config.load(["lake.root=/tmp/a"]))
    b = config.config_hash(config.load(["lake.root=/tmp/a"]))
    c = config.config_hash(config.load(["lake.root=/tmp/a", "run.id=some-run"]))
    d = config.config_hash(config.load(["lake.root=/tmp/a", "run.id=other-run"]))
    assert len(a) == 64 and int(a, 16) >= 0
    assert a == b == c == d


def test_config_hash_changes_with_lake_root_and_values() -> None:
    base = config.config_hash(config.load(["lake.root=/tmp/a"]))
    assert config.config_hash(config.load(["lake.root=/tmp/b"])) != base
    assert config.config_hash(config.load(["lake.root=/tmp/a", "ingest.max_chars=5"])) != base
    assert config.config_hash(config.load(["lake.root=/tmp/a", "ingest.dedup=false"])) != base


def test_config_hash_independent_of_override_order() -> None:
    one = config.config_hash(config.load(["lake.root=/x", "ingest.max_chars=7"]))
    two = config.config_hash(config.load(["ingest.max_chars=7", "lake.root=/x"]))
    assert one == two


# --- every YAML under conf/ composes -------------------------------------------------------------
def _missing_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys whose value is ??? in a YAML file."""
    out = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            dotted = f"{prefix}{key}"
            if OmegaConf.is_missing(node, key):
                out.append(dotted)
            else:
                out += _missing_keys(node[key], dotted + ".")
    elif isinstance(node, ListConfig):
        pass
    return out


GROUP_FILES = sorted(p for p in CONF.glob("*/*.yaml"))


def test_conf_has_the_expected_groups() -> None:
    names = {(p.parent.name, p.stem) for p in GROUP_FILES}
    for expected in [("input", "jsonl"), ("input", "parquet"), ("input", "sample"), ("input", "text"),
                     ("lake", "local"), ("spark", "local"), ("spark", "cluster")]:
        assert expected in names


def _assert_holds(loaded, expected, where: str) -> None:
    """Every value the YAML sets is in the loaded config (the schema may add defaulted keys)."""
    if isinstance(expected, dict):
        assert isinstance(loaded, dict), where
        for key, value in expected.items():
            assert key in loaded, f"{where}.{key} missing"
            _assert_holds(loaded[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(loaded, list) and len(loaded) == len(expected), where
        for i, (got, want) in enumerate(zip(loaded, expected)):
            _assert_holds(got, want, f"{where}[{i}]")
    else:
        assert loaded == expected or str(loaded) == str(expected), (where, loaded, expected)


@pytest.mark.parametrize("yaml_path", GROUP_FILES, ids=[f"{p.parent.name}={p.stem}" for p in GROUP_FILES])
def test_every_group_option_composes(yaml_path: Path) -> None:
    group, name = yaml_path.parent.name, yaml_path.stem
    raw = OmegaConf.load(yaml_path)
    overrides = [f"{group}={name}"]
    missing = _missing_keys(raw)
    for key in missing:
        overrides.append(f"{group}.{key}=/tmp/required-{key}")
    cfg = config.load(overrides)
    section = OmegaConf.to_container(cfg[group], enum_to_str=True)
    expected = OmegaConf.to_container(raw, resolve=False, throw_on_missing=False)
    for key in missing:  # ??? replaced by our override
        node = expected
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = f"/tmp/required-{key}"
    _assert_holds(section, expected, group)


# --- the CLI fails fast on bad config ----------------------------------------------------------------
def test_cli_unknown_key_exits_2_without_starting_spark(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "counterweight", "ingest", "input.foo=1",
         f"lake.root={tmp_path / 'lake'}"],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "input.foo" in proc.stderr
    assert "ConfigError" in proc.stderr
    output = proc.stdout + proc.stderr
    assert "SparkContext" not in output
    assert "Using Spark" not in output
    assert "Setting default log level" not in output
    assert not (tmp_path / "lake").exists()  # nothing was written
    assert elapsed < 15, f"took {elapsed:.1f}s: Spark must not start for a config error"
