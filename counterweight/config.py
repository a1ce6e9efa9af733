"""Configuration: the schema in code, the values in YAML (``conf/``), validated once before Spark starts.

Jobs compose ``conf/config.yaml`` with Hydra's compose API (so Hydra never changes the working
directory and never writes output folders), then merge the result into the structured schema
below. An unknown key, a wrong type or an invalid choice raises :class:`ConfigError` naming the
key, the value and what would be valid.

Command-line overrides use Hydra's syntax: ``input.path=data/x.jsonl lake.root=/tmp/lake``,
``spark=cluster``, ``+spark.conf.spark.executor.memory=4g``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from counterweight.errors import ConfigError
from counterweight.policy import PolicyConfig, validate_policy

CONF_DIR_ENV = "COUNTERWEIGHT_CONF_DIR"
SCHEMA_NAME = "counterweight_schema"


class InputFormat(enum.Enum):
    jsonl = "jsonl"
    parquet = "parquet"
    text = "text"


class LakeEngine(enum.Enum):
    auto = "auto"  # delta-spark when its jars are on the classpath, else delta-rs
    delta_rs = "delta_rs"
    delta_spark = "delta_spark"


class ModelEngine(enum.Enum):
    auto = "auto"  # native when it implements the model file (softmax/ova/ns losses), else the fastText library
    native = "native"  # udfs.native_fasttext: the same predictions, compiled with numba, several times faster
    fasttext = "fasttext"  # the fastText library's own predict


class OnConflict(enum.Enum):
    quarantine = "quarantine"  # an existing doc_id arriving with different text is quarantined
    update = "update"  # ... or replaces the stored document (labels notice the new text_hash)


@dataclass
class InputConfig:
    """Raw input: ``path`` is a file, a directory or a glob (local path or a URI such as s3://)."""

    path: str = MISSING  # required: conf/input/sample.yaml points at the bundled sample
    format: InputFormat = InputFormat.jsonl
    text_field: str = "text"
    id_field: Optional[str] = None  # the input's own id; doc_id derives from it when present
    source: Optional[str] = None  # fixed source name; else the record's source_field, else the file stem
    source_field: Optional[str] = "source"
    strict: bool = False  # an unreadable file fails the job instead of becoming a quarantine row


@dataclass
class SparkConfig:
    """Spark settings. Values given to spark-submit (``--master``, ``--conf``) win over these."""

    master: str = "local[*]"
    app_name: str = "counterweight"
    log_level: str = "WARN"
    # Spark properties as a nested map, so each is overridable on the command line:
    # spark.conf.spark.sql.shuffle.partitions=64, +spark.conf.spark.executor.memory=4g.
    # Flat dotted keys ("spark.executor.memory": 4g) are accepted too. See spark_properties().
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass
class LakeConfig:
    root: str = "./lake"
    engine: LakeEngine = LakeEngine.auto
    # Serialise commits per table with a lock file next to the lake (local/shared POSIX storage).
    lock: bool = True
    lock_timeout_s: float = 600.0
    # Parquet row groups of about this many bytes as written (compressed; parquet.block.size): the
    # unit a scan can split a file at, so a table of a few large files still gives every core tasks.
    row_group_bytes: int = 33_554_432


@dataclass
class IngestConfig:
    dedup: bool = True  # drop documents whose normalised text exactly repeats another's
    max_chars: int = 2_000_000  # longer texts are quarantined (text_too_large)
    on_conflict: OnConflict = OnConflict.quarantine
    quarantine_raw_max_bytes: int = 65_536  # raw payload kept per quarantine row (longer is truncated)
    split_bytes: int = 134_217_728  # plain (uncompressed) JSONL files are read in splits of this size
    batch_records: int = 4096  # records per Arrow batch on executors


@dataclass
class ClassifierConfig:
    """One fastText model: where it is, which labels it must have, how to decide a label.

    ``thresholds`` maps a label to an absolute probability ("0.6") or a percentile of this run's
    scores ("p95"); a label passes when its probability reaches its threshold (labels without one
    always pass) and the most probable passing label wins; if none passes, ``fallback``.
    """

    path: str = MISSING
    labels: list[str] = field(default_factory=list)
    thresholds: dict[str, str] = field(default_factory=dict)
    fallback: str = MISSING


@dataclass
class ModelConfig:
    topic: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(
        path="models/topic.ftz", labels=["ai_fiction", "ai_nonfiction", "other"], fallback="other"))
    stance: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(
        path="models/stance.ftz", labels=["villain", "aligned", "neutral"], fallback="neutral"))
    ai_topics: list[str] = field(default_factory=lambda: ["ai_fiction", "ai_nonfiction"])
    window_words: int = 400  # long documents are scored in windows of this many words
    max_windows: int = 24  # at most this many windows per document (spread evenly)
    top_k: int = 2  # per label, the document score is the mean of its top-k window scores
    engine: ModelEngine = ModelEngine.auto  # which implementation runs the model files' predict


@dataclass
class LabelConfig:
    batch_rows: int = 512  # documents per Arrow batch sent to a Python worker
    relabel_all: bool = False  # ignore existing labels and score every document again
    # Scan splits of documents per core (spark.sql.files.minPartitionNum = this x cores): scoring tasks
    # are long, so a few tasks per core keep every core busy to the end of the stage.
    tasks_per_core: int = 4
    # ... and scan splits of at most this many bytes (spark.sql.files.maxPartitionBytes, default 128 MiB):
    # about 5,000 web documents, a few seconds of scoring, so the last wave of tasks leaves a core
    # idle for seconds, not for a whole 128 MiB task.
    max_split_bytes: int = 33_554_432


@dataclass
class TrainConfig:
    shared_dir: Optional[str] = "../shared"  # corpus and dev labels (read at build time, never committed)
    build_dir: str = "build/training"
    out_dir: str = "models"
    seed: int = 13
    valid_share: float = 0.15
    quantize: bool = True
    quantize_dsub: int = 8  # product-quantiser sub-vector size (fastText default 2; larger predicts faster)
    quantize_cutoff: int = 50_000  # rows (words and n-grams) kept in the quantised model
    grid: dict[str, list[float]] = field(default_factory=lambda: {
        "epoch": [25.0], "lr": [0.5], "wordNgrams": [2.0], "dim": [50.0], "minCount": [2.0]})


@dataclass
class EvaluateConfig:
    """Labelled JSONL (id, text, topic, stance) to score with the real label path."""

    path: str = "build/training/dev_holdout.jsonl"
    out: str = "reports/eval/metrics.json"


@dataclass
class MixConfig:
    name: str = "default"  # several named mixes live side by side in the mix table
    on_unlabelled: str = "fail"  # fail | skip: documents without labels from the label job


class ExportFormat(enum.Enum):
    jsonl = "jsonl"  # gzip JSON lines
    parquet = "parquet"


@dataclass
class ExportConfig:
    path: Optional[str] = None  # default: exports/<mix.name>
    format: ExportFormat = ExportFormat.jsonl
    shard_records: int = 50_000  # records per shard (on average: shards come from a hash)
    seed: int = 7  # the global shuffle's seed
    mix_version: Optional[int] = None  # mix table version to export (default: latest)


@dataclass
class ReportConfig:
    path: Optional[str] = None  # default: <lake.root>/../reports/<mix.name>
    samples_per_bucket: int = 3


MIN_RETENTION_HOURS = 24  # maintain refuses a shorter vacuum retention unless maintain.force_retention=true


@dataclass
class MaintainConfig:
    """The maintain job: compact small files and vacuum unreferenced ones, table by table.

    Vacuum deletes files that the latest snapshot does not reference (removed by an overwrite,
    merge or compaction, or never committed: the staged files of a killed run) once they are
    older than ``retention_hours``. A short retention breaks time travel to older versions and can
    delete the files a job is staging right now, hence the guard.
    """

    tables: list[str] = field(default_factory=list)  # empty: every Delta table under lake.root
    optimize: bool = True  # compact small files (a data-neutral commit)
    target_file_size: int = 134_217_728  # bytes: approximate size of compacted files
    vacuum: bool = True
    retention_hours: int = 168  # unreferenced files younger than this are kept
    force_retention: bool = False  # allow retention_hours < MIN_RETENTION_HOURS
    dry_run: bool = False  # only list what vacuum would delete; change nothing


@dataclass
class RunConfig:
    id: Optional[str] = None  # defaults to a fresh uuid; schedulers pass their own for traceability


@dataclass
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    lake: LakeConfig = field(default_factory=LakeConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    maintain: MaintainConfig = field(default_factory=MaintainConfig)
    run: RunConfig = field(default_factory=RunConfig)


# Keys whose values are deliberately free-form maps (checked by Spark itself).
_FREE_FORM = {"spark.conf"}


def conf_dir() -> Path:
    """Where the YAML configs live: $COUNTERWEIGHT_CONF_DIR, the repo's conf/, or the packaged copy."""
    env = os.environ.get(CONF_DIR_ENV)
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "conf", here / "_conf"]
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate
    packaged = _extract_packaged_conf()  # inside dist/counterweight.zip (spark-submit --py-files)
    if packaged is not None:
        return packaged
    raise ConfigError(
        f"no config directory found (looked for config.yaml in {', '.join(map(str, candidates))}); "
        f"set {CONF_DIR_ENV} to the project's conf/ directory"
    )


_EXTRACTED: list[Path] = []


def _extract_packaged_conf() -> Optional[Path]:
    """Copy counterweight/_conf out of a zip import (Hydra reads configs from a real directory)."""
    import importlib.resources
    import tempfile

    if _EXTRACTED:
        return _EXTRACTED[0]
    try:
        root = importlib.resources.files("counterweight") / "_conf"
        if not (root / "config.yaml").is_file():
            return None
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return None
    target = Path(tempfile.mkdtemp(prefix="counterweight-conf-"))

    def copy(node, dest: Path) -> None:
        for child in node.iterdir():
            if child.is_dir():
                (dest / child.name).mkdir()
                copy(child, dest / child.name)
            elif child.name.endswith(".yaml"):
                (dest / child.name).write_bytes(child.read_bytes())

    copy(root, target)
    _EXTRACTED.append(target)
    return target


def _schema_node(path: list[str]) -> Any:
    """The type at a path of the schema ("policy", "buckets[0]" or "buckets", "0"), or None outside it."""
    node: Any = Config
    for raw in path:
        name, _, index = raw.partition("[")
        for part in ([name] if name else []) + (["0"] if index else []):
            if part.isdigit() and typing.get_origin(node) is list:
                node = typing.get_args(node)[0]
                continue
            if not dataclasses.is_dataclass(node):
                return None
            hints = typing.get_type_hints(node)
            if part not in hints:
                return None
            node = hints[part]
    return node


def _valid_keys(full_key: str) -> str:
    parent = full_key.split(".")[:-1]
    node = _schema_node(parent)
    if node is not None and dataclasses.is_dataclass(node):
        return ", ".join(f.name for f in dataclasses.fields(node))
    if typing.get_origin(node) is dict:
        return f"any (it is a map: add an entry with +{full_key}=<value>)"
    return "(see conf/ and counterweight/config.py)"


def _explain(exc: OmegaConfBaseException) -> ConfigError:
    full_key = getattr(exc, "full_key", None) or ""
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) or "not in struct" in str(exc):
        scope = full_key.rsplit(".", 1)[0] if "." in full_key else "the top level"
        return ConfigError(
            f"unknown config key '{full_key}'; valid keys in {scope}: {_valid_keys(full_key)}"
        )
    msg = str(exc).split("\n")[0]
    if isinstance(exc, ValidationError):
        node = _schema_node(full_key.split("."))
        if isinstance(node, type) and issubclass(node, enum.Enum):
            choices = ", ".join(m.name for m in node)
            return ConfigError(f"invalid value for '{full_key}': {msg}; valid choices: {choices}")
        return ConfigError(f"invalid value for '{full_key}': {msg}")
    return ConfigError(f"invalid configuration at '{full_key}': {msg}")


def spark_properties(conf) -> dict[str, str]:
    """Flatten the ``spark.conf`` map into Spark property names: {"spark": {"a": 1}} -> {"spark.a": "1"}."""
    out: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) or OmegaConf.is_dict(value):
                walk(value, name)
            elif isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif value is not None:
                out[name] = str(value)

    walk(conf, "")
    return out


def validate(raw: DictConfig | dict, overrides: tuple[str, ...] = ()) -> DictConfig:
    """Merge ``raw`` into the schema; raise ConfigError naming the offending key."""
    schema = OmegaConf.structured(Config)
    try:
        cfg = OmegaConf.merge(schema, raw)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise _explain(_with_full_key(exc, list(overrides))) from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        hints = {"input.path": "give input.path=<file|dir|glob> (or input=sample for the bundled corpus)"}
        raise ConfigError("required config value missing: " + "; ".join(f"'{k}' ({hints.get(k, 'set it')})"
                                                                         for k in missing))
    _check_values(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _require(cond: bool, key: str, value: Any, valid: str) -> None:
    if not cond:
        raise ConfigError(f"invalid value for '{key}': {value!r}; {valid}")


def _check_values(cfg: DictConfig) -> None:
    """Cross-field and range checks that types alone cannot express."""
    _require(bool(cfg.input.path), "input.path", cfg.input.path, "give a file, directory or glob")
    _require(bool(cfg.input.text_field), "input.text_field", cfg.input.text_field, "give a field name")
    _require(bool(cfg.lake.root), "lake.root", cfg.lake.root, "give a directory or URI")
    _require(cfg.ingest.max_chars > 0, "ingest.max_chars", cfg.ingest.max_chars, "must be > 0")
    _require(cfg.ingest.split_bytes >= 1 << 20, "ingest.split_bytes", cfg.ingest.split_bytes, "must be >= 1048576")
    _require(cfg.ingest.batch_records > 0, "ingest.batch_records", cfg.ingest.batch_records, "must be > 0")
    _require(
        cfg.ingest.quarantine_raw_max_bytes >= 0,
        "ingest.quarantine_raw_max_bytes",
        cfg.ingest.quarantine_raw_max_bytes,
        "must be >= 0",
    )
    for name in ("topic", "stance"):
        clf = cfg.model[name]
        key = f"model.{name}"
        _require(len(clf.labels) >= 2, f"{key}.labels", list(clf.labels), "give at least two labels")
        _require(clf.fallback in clf.labels, f"{key}.fallback", clf.fallback, f"valid: {', '.join(clf.labels)}")
        for label, value in clf.thresholds.items():
            _require(label in clf.labels, f"{key}.thresholds.{label}", value, f"labels are {', '.join(clf.labels)}")
            parse_threshold(f"{key}.thresholds.{label}", value)
    for topic in cfg.model.ai_topics:
        _require(topic in cfg.model.topic.labels, "model.ai_topics", topic,
                 f"valid topics: {', '.join(cfg.model.topic.labels)}")
    _require(cfg.model.window_words >= 20, "model.window_words", cfg.model.window_words, "must be >= 20")
    _require(cfg.model.max_windows >= 1, "model.max_windows", cfg.model.max_windows, "must be >= 1")
    _require(cfg.model.top_k >= 1, "model.top_k", cfg.model.top_k, "must be >= 1")
    _require(cfg.label.batch_rows >= 1, "label.batch_rows", cfg.label.batch_rows, "must be >= 1")
    _require(cfg.train.quantize_dsub >= 1, "train.quantize_dsub", cfg.train.quantize_dsub, "must be >= 1")
    _require(cfg.train.quantize_cutoff >= 1, "train.quantize_cutoff", cfg.train.quantize_cutoff, "must be >= 1")
    _require(cfg.label.max_split_bytes >= 1_048_576, "label.max_split_bytes", cfg.label.max_split_bytes,
             "must be >= 1048576 (1 MiB)")
    _require(cfg.label.tasks_per_core >= 1, "label.tasks_per_core", cfg.label.tasks_per_core, "must be >= 1")
    _require(cfg.lake.row_group_bytes >= 1_048_576, "lake.row_group_bytes", cfg.lake.row_group_bytes,
             "must be >= 1048576 (1 MiB)")
    _require(0 < cfg.train.valid_share < 0.5, "train.valid_share", cfg.train.valid_share, "must be in (0, 0.5)")
    _require(bool(cfg.mix.name) and cfg.mix.name.replace("_", "").replace("-", "").isalnum(), "mix.name",
             cfg.mix.name, "use letters, digits, - and _")
    _require(cfg.mix.on_unlabelled in ("fail", "skip"), "mix.on_unlabelled", cfg.mix.on_unlabelled, "valid: fail, skip")
    _require(cfg.export.shard_records >= 1, "export.shard_records", cfg.export.shard_records, "must be >= 1")
    topics, stances = set(cfg.model.topic.labels), set(cfg.model.stance.labels) | {"none"}
    label_columns = {f"p_{l}" for l in [*cfg.model.topic.labels, *cfg.model.stance.labels]}
    label_columns |= {"topic_score", "stance_score", "n_chunks"}
    for warning in validate_policy(cfg.policy, label_columns, topics, stances):
        logging.getLogger("counterweight").warning(warning)
    _check_maintain(cfg.maintain)
    levels = ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
    _require(cfg.spark.log_level in levels, "spark.log_level", cfg.spark.log_level, f"valid: {', '.join(levels)}")


def _check_maintain(m) -> None:
    """The maintain section: sane sizes, table names, and the retention guard."""
    _require(m.target_file_size >= 1 << 20, "maintain.target_file_size", m.target_file_size, "must be >= 1048576")
    _require(m.retention_hours >= 0, "maintain.retention_hours", m.retention_hours, "must be >= 0")
    _require(
        m.retention_hours >= MIN_RETENTION_HOURS or m.force_retention, "maintain.retention_hours", m.retention_hours,
        f"below {MIN_RETENTION_HOURS} hours vacuum can delete files that a running job has staged or that time "
        f"travel to recent versions needs; set maintain.force_retention=true to allow it",
    )
    for name in m.tables:
        _require(bool(name) and "/" not in name and not name.startswith((".", "_")), "maintain.tables", name,
                 "give table names under lake.root (e.g. [documents, mix])")


def parse_threshold(key: str, value) -> tuple[str, float]:
    """("abs", p) for "0.6", ("pct", q) for "p95"; ConfigError for anything else."""
    text = str(value).strip().lower()
    try:
        if text.startswith("p"):
            q = float(text[1:])
            if 0 < q < 100:
                return "pct", q
        else:
            p = float(text)
            if 0 <= p <= 1:
                return "abs", p
    except ValueError:
        pass
    raise ConfigError(f"invalid value for '{key}': {value!r}; give a probability in [0, 1] (e.g. 0.6) "
                      f"or a percentile of this run's scores (e.g. p95)")


def load(overrides: list[str], config_name: str = "config") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra overrides and validate it."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from hydra.core.config_store import ConfigStore

    # The schema is the first entry of conf/config.yaml's defaults list, so every YAML file and
    # override is merged into typed nodes: keys the YAML leaves out (e.g. a bucket's `pair`) still
    # exist and can be overridden without `+`, and type errors surface during composition.
    ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)
    directory = conf_dir()
    try:
        with initialize_config_dir(config_dir=str(directory), version_base="1.3", job_name="counterweight"):
            composed = compose(config_name=config_name, overrides=list(overrides))
    except HydraException as exc:
        cause = exc.__cause__
        if isinstance(cause, OmegaConfBaseException):
            raise _explain(_with_full_key(cause, overrides)) from None
        raise ConfigError(_hydra_message(exc, overrides)) from None
    except OmegaConfBaseException as exc:
        raise _explain(_with_full_key(exc, overrides)) from None
    composed = OmegaConf.to_container(composed, resolve=False)
    composed.pop("hydra", None)
    return validate(composed, tuple(overrides))


def _with_full_key(exc: OmegaConfBaseException, overrides: list[str]) -> OmegaConfBaseException:
    """Hydra reports keys set with `+` relative to their parent node: restore the full key."""
    key = getattr(exc, "full_key", None) or ""
    full = _override_key(overrides, key)
    if full and full != key:
        exc.full_key = full
    return exc


def _override_key(overrides: list[str], key: str) -> Optional[str]:
    """The full dotted key of the override that set ``key`` (which Hydra may report relatively)."""
    if not key:
        return None
    for item in overrides:
        name = item.split("=", 1)[0].lstrip("+~")
        if name == key or name.endswith("." + key):
            return name
    return None


def _hydra_message(exc: Exception, overrides: list[str]) -> str:
    text = " ".join(str(exc).split())
    if "is not in struct" in text or "Could not override" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown config key '{key}'; valid keys: {_valid_keys(key)} (use + to add a free-form key)"
    return f"configuration error: {text}"


def to_plain(cfg: DictConfig) -> dict:
    """The resolved config as plain JSON-able data (enums as their values)."""
    return json.loads(json.dumps(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), default=str))


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config, excluding the run id (which differs every run)."""
    plain = to_plain(cfg)
    plain.pop("run", None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()
