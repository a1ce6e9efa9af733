"""Train the fastText topic and stance models and write their model cards.

    .venv/bin/python -m counterweight train            # or: spark-submit jobs/train.py
    make train                                         # the same, then evaluates the result

Steps: build the training sets (:mod:`counterweight.training_data`), pick hyperparameters on
the validation split (a small grid, single-threaded and seeded so the result is reproducible),
retrain on train + validation with the chosen ones, optionally quantise to ``.ftz``, and write
``<name>.ftz`` + ``<name>.card.json`` into ``train.out_dir``. The model file's sha256 is the
model's version everywhere downstream.
"""

from __future__ import annotations

import itertools
import os
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

import counterweight
from counterweight import training_data
from counterweight.errors import BadInputError
from udfs.scoring import LABEL_PREFIX, file_sha256

log = logging.getLogger(__name__)


def read_fasttext_file(path: Path) -> tuple[list[str], list[str]]:
    labels, texts = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition(" ")
        labels.append(label.removeprefix(LABEL_PREFIX))
        texts.append(text)
    return labels, texts


def metrics(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    """Precision, recall, F1 per label, macro-F1, accuracy and the confusion matrix (gold x pred)."""
    per = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                      "support": tp + fn}
    all_labels = sorted(set(labels) | set(gold) | set(pred), key=lambda l: (l not in labels, l))
    confusion = {g: {p: sum(1 for a, b in zip(gold, pred) if a == g and b == p) for p in all_labels} for g in all_labels}
    scored = [l for l in labels if per[l]["support"] > 0]
    return {
        "per_label": per,
        "macro_f1": round(float(np.mean([per[l]["f1"] for l in scored])) if scored else 0.0, 4),
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / len(gold), 4) if gold else 0.0,
        "n": len(gold),
        "confusion": confusion,
    }


# fastText (0.9.x) leaves part of its input matrix uninitialised with thread=1 (upstream issue
# facebookresearch/fastText#1061), so results depend on whatever memory malloc hands back: the same
# data and seed gave different models, or "Encountered NaN", within one process. Every fit runs in
# a spawned worker whose allocator serves large blocks from fresh (zeroed) mmap pages, which makes
# training a function of data, parameters and seed only.
_CLEAN_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def quantize_options(train_cfg) -> dict | bool:
    """fastText ``quantize`` arguments for ``train.*`` (False: keep the full .bin model).

    ``dsub`` is the product quantiser's sub-vector size: 8 decodes a 32-dim row with 4 table look-ups
    instead of 16 at dsub 2, which makes predict about a third faster on long documents at equal
    measured quality (docs/benchmarks.md).
    """
    if not train_cfg.quantize:
        return False
    return {"qnorm": True, "cutoff": int(train_cfg.quantize_cutoff), "dsub": int(train_cfg.quantize_dsub)}


def _fit(train_path: str, params: dict, seed: int, quantize: dict | bool, texts: list[str],
         save_path: Optional[str] = None) -> tuple[list[str], list[str]]:
    """Train (and quantise) one model; return (predictions for ``texts``, model labels). Worker side."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    model = fasttext.train_supervised(input=train_path, thread=1, seed=seed, verbose=0, loss="softmax", **params)
    if quantize:  # False, or fastText quantize options (see quantize_options)
        model.quantize(input=train_path, retrain=True, thread=1, **quantize)
    predictions = []
    if texts:
        names, _ = model.predict(list(texts), k=1)
        predictions = [n[0].removeprefix(LABEL_PREFIX) for n in names]
    if save_path:
        model.save_model(save_path)
    return predictions, [l.removeprefix(LABEL_PREFIX) for l in model.get_labels()]


class CleanFitter:
    """Runs :func:`_fit` in a child Python process started with the clean allocator settings.

    A plain subprocess speaking JSON lines (not multiprocessing, whose spawn start method re-imports
    the caller's main module). The child keeps its real stdout for the protocol and sends anything
    fastText prints to stderr.
    """

    def __enter__(self) -> "CleanFitter":
        env = {**os.environ, **_CLEAN_ENV}
        self.proc = subprocess.Popen([sys.executable, "-m", "counterweight.train", "--fit-worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        return self

    def __call__(self, train_path: str, params: dict, seed: int, quantize: dict | bool, texts: list[str],
                 save_path: Optional[str] = None) -> tuple[list[str], list[str]]:
        request = {"train_path": train_path, "params": params, "seed": seed, "quantize": quantize,
                   "texts": list(texts), "save_path": save_path}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fastText worker exited with code {self.proc.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["predictions"], reply["labels"]

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def clean_fitter() -> CleanFitter:
    return CleanFitter()


def _fit_worker() -> int:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever fastText prints goes to stderr
    for line in sys.stdin:
        req = json.loads(line)
        try:
            predictions, labels = _fit(req["train_path"], req["params"], req["seed"], req["quantize"], req["texts"],
                                       req["save_path"])
            reply = {"predictions": predictions, "labels": labels}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            reply = {"error": str(exc) or type(exc).__name__}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


def train_one(name: str, train_file: Path, valid_file: Path, labels: list[str], grid: dict, seed: int,
              quantize: bool, out_dir: Path, manifest: dict, fit=None) -> dict:
    if fit is None:
        with clean_fitter() as fit:
            return train_one(name, train_file, valid_file, labels, grid, seed, quantize, out_dir, manifest, fit)
    valid_gold, valid_texts = read_fasttext_file(valid_file)
    keys = sorted(grid)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        try:
            predictions, _ = fit(str(train_file), params, seed, False, valid_texts)
        except RuntimeError as exc:  # fastText can still diverge ("Encountered NaN") for some settings
            trials.append({"params": params, "macro_f1": None, "error": str(exc)})
            log.info("%s %s -> failed: %s", name, params, exc)
            continue
        result = metrics(valid_gold, predictions, labels)
        trials.append({"params": params, "macro_f1": result["macro_f1"]})
        log.info("%s %s -> validation macro-F1 %.3f", name, params, result["macro_f1"])
    finished = [t for t in trials if t["macro_f1"] is not None]
    if not finished:
        raise BadInputError(f"every {name} training trial failed: {trials}")
    best = max(finished, key=lambda t: (t["macro_f1"], -t["params"].get("epoch", 0)))
    params = best["params"]
    # Validation figures: the chosen recipe (quantised as shipped) trained on the train split only.
    predictions, _ = fit(str(train_file), params, seed, quantize, valid_texts)
    validation = metrics(valid_gold, predictions, labels)
    # The shipped model: the same recipe on train + validation.
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / f"{name}_full.txt"
        full.write_text(train_file.read_text(encoding="utf-8") + valid_file.read_text(encoding="utf-8"),
                        encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.{'ftz' if quantize else 'bin'}"
        # Its predictions on the validation file (which it was trained on): a resubstitution figure,
        # recorded so the card also describes the saved model itself, not only the recipe.
        resub_pred, model_labels = fit(str(full), params, seed, quantize, valid_texts, str(path))
    if sorted(model_labels) != sorted(labels):
        path.unlink(missing_ok=True)
        raise BadInputError(f"{name} model learned labels {sorted(model_labels)}, expected {sorted(labels)}")
    sha = file_sha256(str(path))
    card = {
        "name": name,
        "file": path.name,
        "sha256": sha,
        "labels": labels,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counterweight_version": counterweight.__version__,
        "training_data": {
            "train_file_sha256": manifest["files"][train_file.name]["sha256"],
            "valid_file_sha256": manifest["files"][valid_file.name]["sha256"],
            "train_labels": manifest["files"][train_file.name]["labels"],
            "train_by_source": manifest["files"][train_file.name]["by_source"],
            "manifest_sha256": file_sha256(str(train_file.parent / "manifest.json")),
        },
        "hyperparameters": {**params, "loss": "softmax", "thread": 1, "seed": seed, "quantized": quantize},
        "grid": trials,
        "validation": validation,
        "validation_note": "held-out estimate of the recipe: the chosen hyperparameters trained (and quantised "
                           "as shipped) on the train split only, measured on the validation split. The saved model "
                           "(this file, this sha256) is the same recipe retrained on train + validation, so it has "
                           "no held-out figure here; 'resubstitution' is the saved model on the validation split it "
                           "was trained on (optimistic), and reports/eval/dev_holdout.json measures the saved model "
                           "on the held-out half of the dev set.",
        "validation_model": "train split only (not saved)",
        "resubstitution": metrics(valid_gold, resub_pred, labels),
        "resubstitution_model": "the saved model (train + validation)",
        "input_normalisation": "udfs.text.model_text(udfs.text.normalize_text(text)); training lines are "
                               f"windows of at most {training_data.WINDOW_WORDS} words plus short passages "
                               f"({training_data.SNIPPET_WORDS[0]}-{training_data.SNIPPET_WORDS[1]} words), validation "
                               f"lines are cut to {training_data.MAX_WORDS} words; scored in windows at label time",
    }
    (out_dir / f"{name}.card.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    return card


def run(ctx) -> dict:
    cfg = ctx.cfg
    repo = Path(__file__).resolve().parent.parent
    shared = Path(cfg.train.shared_dir) if cfg.train.shared_dir else None
    if shared is not None and not shared.is_dir():
        log.warning("train.shared_dir %s not found; using committed training data only", shared)
        shared = None
    build_dir = Path(cfg.train.build_dir)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    manifest = training_data.build(repo, shared, build_dir, seed=cfg.train.seed, valid_share=cfg.train.valid_share)
    print(f"[counterweight] training data: {manifest['examples']} examples; "
          + ", ".join(f"{k}: {v['lines']} lines {v['labels']}" for k, v in manifest["files"].items()))
    out_dir = Path(cfg.train.out_dir)
    integer_params = {"epoch", "wordNgrams", "dim", "minCount", "minn", "maxn", "bucket", "ws", "neg"}
    grid = {k: [int(x) if k in integer_params else float(x) for x in v] for k, v in cfg.train.grid.items()}
    summary = {}
    for name, labels in (("topic", list(cfg.model.topic.labels)), ("stance", list(cfg.model.stance.labels))):
        card = train_one(name, build_dir / f"{name}_train.txt", build_dir / f"{name}_valid.txt", labels, grid,
                         cfg.train.seed, quantize_options(cfg.train), out_dir, manifest)
        summary[name] = {"file": str(out_dir / card["file"]), "sha256": card["sha256"],
                         "validation_macro_f1": card["validation"]["macro_f1"], "params": card["hyperparameters"]}
        print(f"[counterweight] {name} model {card['file']} sha256 {card['sha256'][:12]}: validation macro-F1 "
              f"{card['validation']['macro_f1']:.3f}, per label "
              + ", ".join(f"{l} {m['f1']:.3f}" for l, m in card["validation"]["per_label"].items()))
    return summary


if __name__ == "__main__":
    if sys.argv[1:] == ["--fit-worker"]:
        sys.exit(_fit_worker())
    sys.exit("usage: python -m counterweight.train --fit-worker (internal); train with `python -m jobs.train`")
