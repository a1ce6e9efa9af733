"""Maintain: compact small files and vacuum unreferenced ones in the lake's tables.

    .venv/bin/spark-submit jobs/maintain.py lake.root=./lake
    .venv/bin/spark-submit jobs/maintain.py lake.root=./lake maintain.tables=[mix,labels] maintain.dry_run=true

Why: every job writes its data files into a run-private directory inside the table and commits
them in one Delta transaction (:mod:`counterweight.lake`). A run killed before its commit leaves
those staged files behind, unreferenced and invisible to readers; overwrites, merges and
compaction leave files that only old versions reference. Nothing ever deletes them except this job.

Per table, holding the same commit lock as the jobs (so no job commits in between):

1. **optimize** (``maintain.optimize``): ``DeltaTable.optimize.compact`` rewrites small files into
   files of about ``maintain.target_file_size`` bytes. The commit changes no data (``dataChange``
   false) and records this run's lineage like every other commit. A job that planned a non-blind
   write before it and commits after it fails with a conflict (exit 4) and can be re-run.
2. **vacuum** (``maintain.vacuum``): a *full* vacuum deletes every file the latest snapshot does not
   reference, including files never mentioned in the log (the staged files of killed runs), once
   the file is older than ``maintain.retention_hours`` (default 168). Time travel to a version
   needs that version's files: versions older than the retention may become unreadable. Below
   24 hours the config is rejected unless ``maintain.force_retention=true``, because a job still
   running may be staging files right now. Empty ``run-*`` staging directories are removed too.

``maintain.dry_run=true`` lists what vacuum would delete and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from dataclasses import asdict, dataclass, field

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from counterweight.errors import BadInputError
from counterweight.lake import LOCK_DIR, STAGING_PREFIX, _fs_and_path, _is_local

log = logging.getLogger(__name__)


@dataclass
class TableSummary:
    table: str
    version_before: int
    version_after: int
    files_before: int  # files referenced by the latest snapshot, before maintenance
    files_after: int
    compacted_removed: int = 0  # small files compaction replaced ...
    compacted_added: int = 0  # ... by these
    vacuumed: int = 0  # unreferenced files deleted (or, in a dry run, that would be)
    vacuumed_never_committed: int = 0  # ... of them never named in the log: staged by runs killed before commit
    staging_dirs_removed: int = 0
    vacuum_candidates: list[str] = field(default_factory=list)  # dry run only

    def line(self, retention_hours: int, dry_run: bool) -> str:
        verb = "would vacuum" if dry_run else "vacuumed"
        return (
            f"maintain {self.table}: version {self.version_before} -> {self.version_after}; "
            f"files {self.files_before} -> {self.files_after} (compacted {self.compacted_removed} into "
            f"{self.compacted_added}); {verb} {self.vacuumed} unreferenced files older than {retention_hours} h "
            f"({self.vacuumed_never_committed} staged by runs that never committed)"
        )


def list_tables(root: str) -> tuple[list[str], list[str]]:
    """(Delta tables, other directories) directly under ``root``; hidden and ``_`` entries skipped."""
    from deltalake import DeltaTable

    if _is_local(root):
        fs, base = pafs.LocalFileSystem(), root
    else:
        fs, base = pafs.FileSystem.from_uri(root)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=False, allow_not_found=True))
    tables, others = [], []
    for info in sorted(infos, key=lambda i: i.base_name):
        if info.type != pafs.FileType.Directory or info.base_name.startswith((".", "_")) or info.base_name == LOCK_DIR:
            continue
        (tables if DeltaTable.is_deltatable(f"{root}/{info.base_name}") else others).append(info.base_name)
    return tables, others


def _snapshot_files(dt) -> int:
    return len(dt.file_uris())


def _paths_in_log(table_path: str) -> set[str]:
    """Storage paths (relative, so URI-decoded once) of every data file an add or remove action in the log names."""
    fs, base = _fs_and_path(f"{table_path}/_delta_log")
    paths: set[str] = set()
    for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = info.base_name
        if name.endswith(".json") and name[:-5].isdigit():
            with fs.open_input_stream(info.path) as handle:
                for line in handle.read().splitlines():
                    action = json.loads(line) if line.strip() else {}
                    for kind in ("add", "remove"):
                        if kind in action:
                            paths.add(urllib.parse.unquote(action[kind]["path"]))
        elif ".checkpoint" in name and name.endswith(".parquet"):
            with fs.open_input_file(info.path) as handle:
                table = pq.read_table(handle, columns=[c for c in ("add", "remove")
                                                       if c in pq.read_schema(handle).names])
            for kind in table.column_names:
                for entry in table.column(kind).to_pylist():
                    if entry and entry.get("path"):
                        paths.add(urllib.parse.unquote(entry["path"]))
    return paths


def _existing(table_path: str, listed: list[str]) -> list[str]:
    """The listed files (storage paths relative to the table) that are still on storage, sorted."""
    prefix = table_path.rstrip("/") + "/"
    rel = sorted({p[len(prefix):] if p.startswith(prefix) else p for p in listed})
    if not rel:
        return []
    fs, base = _fs_and_path(table_path)
    infos = fs.get_file_info([f"{base}/{p}" for p in rel])
    return [p for p, info in zip(rel, infos) if info.type != pafs.FileType.NotFound]


def _remove_empty_staging_dirs(table_path: str) -> int:
    """Delete ``run-*`` directories (bottom-up) that vacuum emptied. Local tables only."""
    if not _is_local(table_path) or not os.path.isdir(table_path):
        return 0
    removed = 0
    for entry in os.scandir(table_path):
        if not (entry.is_dir(follow_symlinks=False) and entry.name.startswith(STAGING_PREFIX)):
            continue
        for dirpath, _dirs, _files in os.walk(entry.path, topdown=False):
            try:
                os.rmdir(dirpath)  # fails (and is skipped) while the directory still holds files
            except OSError:
                continue
        if not os.path.exists(entry.path):
            removed += 1
    return removed


def maintain_table(lake, table: str, mcfg, commit_info: dict) -> TableSummary:
    """Compact then vacuum one table under its commit lock."""
    from deltalake import CommitProperties, DeltaTable

    path = lake.path(table)
    with lake._lock(table):  # the jobs' own commit lock: no job commits while this table is maintained
        dt = DeltaTable(path)
        summary = TableSummary(table, dt.version(), dt.version(), _snapshot_files(dt), _snapshot_files(dt))
        if mcfg.optimize and not mcfg.dry_run:
            metrics = dt.optimize.compact(
                target_size=int(mcfg.target_file_size),
                commit_properties=CommitProperties(custom_metadata=commit_info, max_commit_retries=0),
            )
            summary.compacted_removed = int(metrics.get("numFilesRemoved", 0))
            summary.compacted_added = int(metrics.get("numFilesAdded", 0))
            dt = DeltaTable(path)
        if mcfg.vacuum:
            vacuum = dict(
                retention_hours=int(mcfg.retention_hours),
                enforce_retention_duration=False,  # our own guard (config.MIN_RETENTION_HOURS) applies instead
                full=True,  # also files never referenced by the log: staged files of killed runs
            )
            # delta-rs lists (and "deletes", with two more commits) tombstoned files that an earlier vacuum
            # already removed: only files still on storage count, and no files means no vacuum commits.
            candidates = _existing(path, dt.vacuum(dry_run=True, **vacuum))
            summary.vacuumed = len(candidates)
            if candidates:
                logged = _paths_in_log(path)
                summary.vacuumed_never_committed = sum(1 for p in candidates if p not in logged)
            if mcfg.dry_run:
                summary.vacuum_candidates = candidates
            else:
                if candidates:
                    dt.vacuum(dry_run=False, commit_properties=CommitProperties(
                        custom_metadata=commit_info, max_commit_retries=0), **vacuum)
                summary.staging_dirs_removed = _remove_empty_staging_dirs(path)
            dt = DeltaTable(path)
        summary.version_after = dt.version()
        summary.files_after = _snapshot_files(dt)
    return summary


def run(ctx) -> dict:
    """Maintain ``maintain.tables`` (default: every Delta table under ``lake.root``). Returns counts."""
    mcfg, lake = ctx.cfg.maintain, ctx.lake
    found, others = list_tables(lake.root)
    if mcfg.tables:
        # Check every named table before touching any of them.
        for table in mcfg.tables:
            lake.require(table)
        tables = list(mcfg.tables)
    else:
        tables = found
        if not tables:
            raise BadInputError(f"lake.root {lake.root} holds no Delta tables; check lake.root "
                                f"(directories found: {', '.join(others) or 'none'})")
    for other in others:
        if other not in tables:
            entries = os.listdir(f"{lake.root}/{other}") if _is_local(lake.root) else []
            staged = sum(1 for e in entries if e.startswith(STAGING_PREFIX))
            note = (f"; it holds {staged} staging directories of runs killed before the table's first commit "
                    f"(the next successful run creates the table; then maintain vacuums them)") if staged else ""
            print(f"[counterweight] maintain: {lake.root}/{other} is not a Delta table (no _delta_log): skipped{note}")
    settings = {"retention_hours": int(mcfg.retention_hours), "optimize": bool(mcfg.optimize),
                "vacuum": bool(mcfg.vacuum), "target_file_size": int(mcfg.target_file_size),
                "dry_run": bool(mcfg.dry_run)}
    commit_info = lake.lineage.commit_info({"maintain": settings})
    per_table: dict[str, dict] = {}
    for table in tables:
        summary = maintain_table(lake, table, mcfg, commit_info)
        print(f"[counterweight] {summary.line(int(mcfg.retention_hours), bool(mcfg.dry_run))}", flush=True)
        for candidate in summary.vacuum_candidates:
            print(f"  would delete {table}/{candidate}")
        per_table[table] = {k: v for k, v in asdict(summary).items() if k not in ("table", "vacuum_candidates")}
        if mcfg.dry_run:
            per_table[table]["vacuum_candidates"] = summary.vacuum_candidates
    return {
        "tables": len(per_table),
        "dry_run": bool(mcfg.dry_run),
        "compacted_removed": sum(t["compacted_removed"] for t in per_table.values()),
        "compacted_added": sum(t["compacted_added"] for t in per_table.values()),
        "vacuumed": sum(t["vacuumed"] for t in per_table.values()),
        "vacuumed_never_committed": sum(t["vacuumed_never_committed"] for t in per_table.values()),
        "per_table": per_table,
    }
