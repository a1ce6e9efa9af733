"""One plain summary line per stage: what it did, how many rows, how long it took.

Spark's own console progress bar (``spark.ui.showConsoleProgress``) shows the work inside a stage;
these lines say what each stage amounted to, e.g.::

    [counterweight] ingest: read and parse: 2,831 rows in 14.2 s
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional


@dataclass
class StageInfo:
    name: str
    rows: Optional[int] = None
    tokens: Optional[int] = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        parts = []
        if self.rows is not None:
            parts.append(f"{self.rows:,} rows")
        if self.tokens is not None:
            parts.append(f"{self.tokens:,} tokens")
        parts += self.notes
        what = ", ".join(parts) if parts else "done"
        return f"[counterweight] {self.name}: {what} in {self.seconds:.1f} s"


@contextlib.contextmanager
def stage(name: str) -> Iterator[StageInfo]:
    info = StageInfo(name)
    started = time.perf_counter()
    try:
        yield info
    finally:
        info.seconds = time.perf_counter() - started
    print(info.line(), flush=True)
