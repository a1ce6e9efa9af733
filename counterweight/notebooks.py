"""Convert notebooks between the Databricks source format (``notebooks/*.py``) and Jupyter ``.ipynb``.

    python -m counterweight.notebooks to-ipynb notebooks/*.py       # writes notebooks/<name>.ipynb, no outputs
    python -m counterweight.notebooks to-source notebooks/x.ipynb   # writes notebooks/x.py (outputs dropped)
    python -m counterweight.notebooks check                         # every notebooks/*.py has an identical twin

The ``.py`` files are the source of truth: Databricks imports them as notebooks, reviews diff them,
and they run as plain Python too. The ``.ipynb`` twins are generated from them, committed without
outputs, for Jupyter users; ``check`` (run by the test suite) fails when a twin is missing, stale
or carries outputs. Exit codes: 0 in sync / written, 1 ``check`` found differences, 3 a file is not
a notebook this module can read (:class:`~counterweight.errors.BadInputError`).

The source format, as Databricks exports it::

    # Databricks notebook source
    print("a code cell")

    # COMMAND ----------

    # MAGIC %md
    # MAGIC # A markdown cell
    # MAGIC
    # MAGIC Every line prefixed with "# MAGIC ".

A markdown cell (``%md``) becomes a Jupyter markdown cell. Any other magic cell (``%sql``,
``%sh``, ``%pip``, ``%run``...) becomes a code cell whose source starts with ``%``, and a code
cell starting with ``%`` goes back as a magic cell. A ``# DBTITLE 1,<title>`` first line becomes
the cell's ``title`` metadata. Blank lines around cell separators are not part of any cell, so the
conversion is exact for files in this canonical layout: source -> ipynb -> source is the identity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from counterweight.errors import BadInputError

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
MARKDOWN_MAGIC = "%md"
_TITLE = re.compile(r"^# DBTITLE \d+,(.*)$")
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

IPYNB_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


@dataclass(frozen=True)
class Cell:
    kind: str  # "code" or "markdown"
    source: str  # without surrounding blank lines; magic code cells start with "%"
    title: Optional[str] = None


def _trim_blank_lines(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


# --- Databricks source --------------------------------------------------------------------------
def parse_source(text: str, name: str = "<source>") -> list[Cell]:
    """Cells of a Databricks source notebook; BadInputError (naming ``name`` and the line) if it is not one."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].rstrip() != HEADER:
        raise BadInputError(f"{name}: not a Databricks source notebook (the first line must be '{HEADER}')")
    chunks: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(lines[1:], start=2):
        if line.rstrip() == SEPARATOR:
            chunks.append([])
        else:
            chunks[-1].append((number, line))
    cells = []
    for chunk in chunks:
        body = _trim_blank_lines([line for _, line in chunk])
        first_number = next((n for n, line in chunk if line.strip()), 0)  # for error messages
        cells.append(_parse_cell(body, name, first_number))
    return cells


def _parse_cell(lines: list[str], name: str, first_number: int) -> Cell:
    title = None
    if lines and _TITLE.match(lines[0]):
        title = _TITLE.match(lines[0]).group(1)
        lines = lines[1:]
    if not lines or not lines[0].startswith(MAGIC):
        return Cell("code", "\n".join(lines), title)
    unprefixed = []
    for offset, line in enumerate(lines):
        if line == MAGIC or line.startswith(MAGIC + " "):
            unprefixed.append(line[len(MAGIC) + 1:])
        else:
            raise BadInputError(f"{name}:{first_number + offset}: a magic cell must prefix every line with "
                                f"'{MAGIC} ', found {line!r}")
    if unprefixed[0].strip() == MARKDOWN_MAGIC:
        return Cell("markdown", "\n".join(_trim_blank_lines(unprefixed[1:])), title)
    return Cell("code", "\n".join(unprefixed), title)


def write_source(cells: list[Cell], name: str = "<notebook>") -> str:
    """The canonical Databricks source text of ``cells``."""
    blocks = []
    for index, cell in enumerate(cells):
        lines = []
        if cell.title is not None:
            lines.append(f"# DBTITLE 1,{cell.title}")
        body = cell.source.split("\n") if cell.source else []
        if any(line.rstrip() == SEPARATOR for line in body):
            raise BadInputError(f"{name}: cell {index + 1} contains the cell separator line '{SEPARATOR}'")
        if cell.kind == "markdown":
            body = [MARKDOWN_MAGIC, *body]
        elif cell.kind != "code":
            raise BadInputError(f"{name}: cell {index + 1} is a {cell.kind!r} cell; only code and markdown "
                                f"cells have a Databricks source form")
        if cell.kind == "markdown" or (body and body[0].startswith("%")):
            lines += [f"{MAGIC} {line}" if line else MAGIC for line in body]
        else:
            if body and (body[0].startswith(MAGIC) or _TITLE.match(body[0])):
                raise BadInputError(f"{name}: code cell {index + 1} starts with {body[0]!r}, which Databricks "
                                    f"would read as a magic line or a title")
            lines += body
        blocks.append("\n".join(lines))
    return HEADER + "\n" + f"\n\n{SEPARATOR}\n\n".join(blocks) + "\n"


# --- Jupyter ------------------------------------------------------------------------------------
def _split_source(text: str) -> list[str]:
    """Jupyter's on-disk layout: one string per line, each but the last ending in a newline."""
    if not text:
        return []
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def write_ipynb(cells: list[Cell]) -> str:
    """nbformat 4.5 JSON without outputs, laid out as nbformat writes it (deterministic cell ids)."""
    seen: set[str] = set()
    out = []
    for cell in cells:
        cell_id = hashlib.sha256(f"{cell.kind}\n{cell.source}".encode()).hexdigest()[:8]
        while cell_id in seen:
            cell_id = hashlib.sha256(cell_id.encode()).hexdigest()[:8]
        seen.add(cell_id)
        metadata = {"title": cell.title} if cell.title is not None else {}
        entry = {"cell_type": cell.kind, "id": cell_id, "metadata": metadata, "source": _split_source(cell.source)}
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    notebook = {"cells": out, "metadata": IPYNB_METADATA, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def parse_ipynb(text: str, name: str = "<ipynb>") -> list[Cell]:
    """Cells of a Jupyter notebook (outputs are ignored); BadInputError for raw cells or a malformed file."""
    try:
        notebook = json.loads(text)
        raw_cells = notebook["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{name}: not a Jupyter notebook ({exc})") from None
    cells = []
    for index, raw in enumerate(raw_cells):
        kind = raw.get("cell_type")
        if kind not in ("code", "markdown"):
            raise BadInputError(f"{name}: cell {index + 1} is a {kind!r} cell; only code and markdown cells "
                                f"have a Databricks source form")
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        body = "\n".join(_trim_blank_lines(source.replace("\r\n", "\n").split("\n")))
        cells.append(Cell(kind, body, (raw.get("metadata") or {}).get("title")))
    return cells


def source_to_ipynb(text: str, name: str = "<source>") -> str:
    return write_ipynb(parse_source(text, name))


def ipynb_to_source(text: str, name: str = "<ipynb>") -> str:
    return write_source(parse_ipynb(text, name), name)


# --- files ----------------------------------------------------------------------------------------
def twin_of(path: Path) -> Path:
    return path.with_suffix(".ipynb" if path.suffix == ".py" else ".py")


def convert_file(path: Path) -> Path:
    """Write ``path``'s twin (x.py -> x.ipynb, x.ipynb -> x.py) and return the twin's path."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        result = source_to_ipynb(text, str(path))
    elif path.suffix == ".ipynb":
        result = ipynb_to_source(text, str(path))
    else:
        raise BadInputError(f"{path}: expected a .py (Databricks source) or .ipynb file")
    target = twin_of(path)
    target.write_text(result, encoding="utf-8")
    return target


def check(paths: list[Path]) -> list[str]:
    """Problems with the twins of the given ``.py`` sources (an empty list when all are in sync)."""
    problems = []
    for path in paths:
        path = Path(path)
        if path.suffix == ".ipynb":
            if not twin_of(path).exists():
                problems.append(f"{path}: no Databricks source {twin_of(path).name} beside it "
                                f"(create it with: python -m counterweight.notebooks to-source {path})")
            continue
        twin = twin_of(path)
        expected = source_to_ipynb(path.read_text(encoding="utf-8"), str(path))
        if not twin.exists():
            problems.append(f"{twin}: missing")
            continue
        actual = twin.read_text(encoding="utf-8")
        if actual != expected:
            problems.append(f"{twin}: {_difference(actual, expected, twin)}")
    return problems


def _difference(actual: str, expected: str, name: Path) -> str:
    try:
        notebook = json.loads(actual)
    except ValueError:
        return "not valid JSON"
    cells = notebook.get("cells", [])
    if any(c.get("outputs") or c.get("execution_count") for c in cells):
        return "has outputs (twins are committed without outputs)"
    try:
        got = parse_ipynb(actual, str(name))
    except BadInputError as exc:
        return str(exc)
    want = parse_ipynb(expected)
    if len(got) != len(want):
        return f"{len(got)} cells, the source has {len(want)}"
    for index, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"cell {index + 1} differs from the source"
    return "same cells, different layout or metadata"


def _expand(paths: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(q for q in path.iterdir() if q.suffix in suffixes)
        elif path.exists():
            out.append(path)
        else:
            raise BadInputError(f"{p}: no such file or directory")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m counterweight.notebooks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command, helptext in (("to-ipynb", "write the .ipynb twin of each Databricks source .py"),
                              ("to-source", "write the Databricks source .py of each .ipynb"),
                              ("check", "verify every .py has an up-to-date .ipynb twin without outputs")):
        p = sub.add_parser(command, help=helptext)
        p.add_argument("paths", nargs="*", default=[str(NOTEBOOKS_DIR)] if command == "check" else None,
                       help="files or directories (check: default notebooks/)")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            paths = _expand(args.paths, (".py", ".ipynb"))
            problems = check(paths)
            for problem in problems:
                print(f"[counterweight] {problem}", file=sys.stderr)
            if problems:
                print("[counterweight] notebook twins out of sync; regenerate them with: "
                      "python -m counterweight.notebooks to-ipynb notebooks/*.py", file=sys.stderr)
                return 1
            print(f"[counterweight] {sum(p.suffix == '.py' for p in paths)} notebook(s) in sync with their .ipynb twins")
            return 0
        if not args.paths:
            parser.error(f"{args.command}: give at least one file")
        wanted = (".py",) if args.command == "to-ipynb" else (".ipynb",)
        for path in _expand(args.paths, wanted):
            if path.suffix not in wanted:
                raise BadInputError(f"{path}: {args.command} expects {wanted[0]} files")
            print(f"[counterweight] {path} -> {convert_file(path)}")
        return 0
    except BadInputError as exc:
        print(f"[counterweight] {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
