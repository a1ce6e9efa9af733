"""Evaluate the configured models on a labelled JSONL through the real label path.

    .venv/bin/spark-submit jobs/evaluate.py evaluate.path=../shared/eval/dev_labels.jsonl
    make eval

Each record (``id``, ``text``, ``topic``, ``stance``) is normalised exactly as ingest stores it,
scored and decided exactly as the label job does (same functions, same thresholds), and compared
with its gold labels. Prints precision / recall / F1 per label, macro-F1 and confusion matrices,
and writes them as JSON to ``evaluate.out``. Stance is reported twice: end to end over all
records (gold ``none`` for non-AI text), and over the records whose gold topic is an AI topic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from counterweight import columns as C
from counterweight.errors import BadInputError
from counterweight.label import STANCE_NONE, decide, model_spec, resolve_thresholds, score, score_options
from counterweight.train import metrics
from udfs.text import normalize_text, text_hash


def load_gold(path: str) -> list[dict]:
    if not os.path.isfile(path):
        raise BadInputError(f"evaluate.path: {path} not found (run `make train` to create the dev holdout, "
                            f"or point it at a JSONL with id, text, topic, stance)")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                rows.append({"id": str(r["id"]), "text": r["text"], "topic": r["topic"], "stance": r["stance"]})
            except (ValueError, KeyError) as exc:
                raise BadInputError(f"{path}:{n}: expected JSON with id, text, topic, stance ({exc})") from None
    if not rows:
        raise BadInputError(f"{path} holds no records")
    return rows


def format_report(name: str, m: dict) -> str:
    lines = [f"{name}: macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} (n={m['n']})"]
    for label, v in m["per_label"].items():
        lines.append(f"  {label:<14} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  (support {v['support']})")
    labels = list(m["confusion"])
    lines.append("  confusion (rows gold, columns predicted): " + " | ".join(labels))
    for g in labels:
        lines.append(f"  {g:<14} " + " ".join(f"{m['confusion'][g][p]:>5}" for p in labels))
    return "\n".join(lines)


def run(ctx) -> dict:
    cfg, spark = ctx.cfg, ctx.spark
    gold = load_gold(cfg.evaluate.path)
    topic = model_spec("topic", cfg.model)
    stance = model_spec("stance", cfg.model)
    docs = spark.createDataFrame(
        [(r["id"], text_hash(normalize_text(r["text"])), normalize_text(r["text"])) for r in gold],
        f"{C.DOC_ID} string, {C.TEXT_HASH} string, {C.TEXT} string",
    )
    scored = score(spark, docs, cfg, score_options(cfg, topic, stance, spark)).cache()
    decided = decide(scored, cfg, topic, stance, resolve_thresholds(scored, cfg.model.topic),
                     resolve_thresholds(scored, cfg.model.stance))
    pred = {r[C.DOC_ID]: (r[C.TOPIC], r[C.STANCE]) for r in decided.select(C.DOC_ID, C.TOPIC, C.STANCE).collect()}
    ids = [r["id"] for r in gold]
    topic_m = metrics([r["topic"] for r in gold], [pred[i][0] for i in ids], list(topic.labels))
    stance_labels = list(stance.labels)
    stance_all = metrics([r["stance"] for r in gold], [pred[i][1] for i in ids], stance_labels)
    ai = [r for r in gold if r["topic"] in cfg.model.ai_topics]
    stance_ai = metrics([r["stance"] for r in ai], [pred[r["id"]][1] for r in ai], stance_labels)
    report = {
        "path": cfg.evaluate.path,
        "n": len(gold),
        "models": {"topic": topic.sha256, "stance": stance.sha256},
        "topic": topic_m,
        "stance_end_to_end": stance_all,
        "stance_on_gold_ai": stance_ai,
        "headline": {
            "topic_macro_f1": topic_m["macro_f1"],
            "villain_f1": stance_all["per_label"]["villain"]["f1"] if "villain" in stance_all["per_label"] else None,
            "aligned_f1": stance_all["per_label"]["aligned"]["f1"] if "aligned" in stance_all["per_label"] else None,
        },
    }
    print(format_report("topic", topic_m))
    print(format_report(f"stance (end to end; '{STANCE_NONE}' for non-AI)", stance_all))
    print(format_report("stance (gold AI documents only)", stance_ai))
    out = Path(cfg.evaluate.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"[counterweight] metrics written to {out}")
    return report["headline"]
