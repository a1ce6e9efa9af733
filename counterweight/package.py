"""Build what executors need on a cluster: ``dist/counterweight.zip`` (+ the model files).

    make package        # = python -m counterweight.package

The zip holds the ``counterweight`` and ``udfs`` packages and a copy of ``conf/`` as
``counterweight/_conf`` (found by :func:`counterweight.config.conf_dir` when no repo is around, e.g.
in cluster deploy mode). Pass it with ``spark-submit --py-files dist/counterweight.zip`` and the
models with ``--files dist/models/topic.ftz,dist/models/stance.ftz``. Entries are written in sorted
order with fixed timestamps, so the same sources give a byte-identical zip.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _add(zf: zipfile.ZipFile, path: Path, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, path.read_bytes())


def build(out_dir: Path = REPO / "dist") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "counterweight.zip"
    entries = []
    for package in ("counterweight", "udfs"):
        for path in sorted((REPO / package).rglob("*.py")):
            entries.append((path, str(path.relative_to(REPO))))
    for path in sorted((REPO / "conf").rglob("*.yaml")):
        entries.append((path, "counterweight/_conf/" + str(path.relative_to(REPO / "conf"))))
    with zipfile.ZipFile(target, "w") as zf:
        for path, arcname in sorted(entries, key=lambda e: e[1]):
            _add(zf, path, arcname)
    models = out_dir / "models"
    models.mkdir(exist_ok=True)
    for model in sorted((REPO / "models").glob("*")):
        if model.suffix in (".ftz", ".bin", ".json"):
            shutil.copy2(model, models / model.name)
    print(f"[counterweight] wrote {target} ({len(entries)} files) and {models}/")
    return target


if __name__ == "__main__":
    build()
    sys.exit(0)
