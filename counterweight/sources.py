"""Find the input files named by ``input.path`` and plan the splits executors read.

``input.path`` may be a file, a directory (read recursively, hidden and ``_``-prefixed entries
skipped) or a glob (``data/*.jsonl.gz``), local or a URI that pyarrow understands (s3://, gs://,
hdfs://). A path that matches nothing is a :class:`BadInputError` naming it.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass

import pyarrow.fs as pafs

from counterweight.errors import BadInputError
from udfs.raw_input import not_a_regular_file

SUFFIXES = {
    "jsonl": (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz"),
    "parquet": (".parquet",),
    "text": (".txt",),
}


@dataclass(frozen=True)
class InputFile:
    path: str
    size: int


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def resolve_path(path: str) -> str:
    if "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


def list_input_files(path: str, fmt: str) -> tuple[str, list[InputFile]]:
    """Return (base directory, files) for ``input.path``; files are sorted for determinism."""
    resolved = resolve_path(path)
    if "://" in resolved:
        fs, fs_path = pafs.FileSystem.from_uri(resolved)
        prefix = resolved[: len(resolved) - len(fs_path)] if resolved.endswith(fs_path) else ""
    else:
        fs, fs_path, prefix = pafs.LocalFileSystem(), resolved, ""
    has_glob = any(ch in fs_path for ch in "*?[")
    if has_glob:
        parts = fs_path.split("/")
        literal = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
        base = "/".join(parts[:literal]) or "/"
        if prefix:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            infos = [i for i in infos if fnmatch.fnmatch(i.path, fs_path)]
        else:
            infos = fs.get_file_info(sorted(glob.glob(fs_path, recursive=True)))
    else:
        info = fs.get_file_info(fs_path)
        if info.type == pafs.FileType.NotFound:
            raise BadInputError(
                f"input.path '{path}' does not exist (resolved to {resolved}); give a file, directory or glob"
            )
        if info.type == pafs.FileType.File:
            return os.path.dirname(fs_path), [InputFile(prefix + fs_path, info.size or 0)]
        base = fs_path
        infos = fs.get_file_info(pafs.FileSelector(fs_path, recursive=True))
    candidates = [(i.path, i.size or 0) for i in infos if i.type == pafs.FileType.File]
    if not prefix:
        # A symlink whose target is gone (an unmounted volume, a deleted file), a FIFO or a socket is
        # input that cannot be read: it is listed so ingest quarantines it as unreadable_file (or
        # input.strict fails), never skipped in silence. pyarrow does not list broken links.
        if has_glob:
            candidates += [(i.path, 0) for i in infos if i.type != pafs.FileType.File and _unreadable_entry(i.path)]
        else:
            candidates += [(p, 0) for p in _unreadable_entries(base)]
    files = []
    for file_path, size in candidates:
        rel_parts = file_path[len(base):].strip("/").split("/")
        if any(_is_hidden(part) for part in rel_parts):
            continue
        if not has_glob and not file_path.endswith(SUFFIXES[fmt]):
            continue
        files.append(InputFile(prefix + file_path, size))
    files.sort(key=lambda f: f.path)
    if not files:
        raise BadInputError(
            f"input.path '{path}' matched no {fmt} files (looked for {', '.join(SUFFIXES[fmt])}); "
            f"check input.path and input.format"
        )
    return prefix + base, files


def _unreadable_entry(path: str) -> bool:
    """A local directory entry that is there but is neither a directory nor a readable regular file
    (a broken link, a FIFO, a socket); ingest says which with raw_input.not_a_regular_file."""
    return os.path.lexists(path) and not os.path.isdir(path) and not_a_regular_file(path) is not None


def _unreadable_entries(base: str) -> list[str]:
    """Broken symlinks, FIFOs, sockets and devices under the local directory ``base``."""
    found = []
    for root, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if not _is_hidden(d)]
        found += [os.path.join(root, n) for n in names if _unreadable_entry(os.path.join(root, n))]
    return found


def plan_splits(files: list[InputFile], fmt: str, base: str, split_bytes: int) -> list[dict]:
    """Byte-range splits for plain JSONL files; one split per file otherwise."""
    splits = []
    for f in files:
        if fmt == "jsonl" and not f.path.endswith(".gz") and f.size > split_bytes:
            for start in range(0, f.size, split_bytes):
                splits.append({"path": f.path, "format": fmt, "start": start,
                               "length": min(split_bytes, f.size - start), "base": base})
        else:
            splits.append({"path": f.path, "format": fmt, "start": 0, "length": -1, "base": base})
    return splits
