"""Produce each mix row's text as emitted: control-token tags and rewrites (executor side).

Called through ``mapInArrow`` with a plan that maps bucket name -> what to do. Every choice is
deterministic: whether a document is left untagged is ``unit_hash(doc_id, seed, "tag") <
untagged_fraction`` (Korbak et al. keep ~1% untagged so the model still sees the raw
distribution), and window tags come from the same stance model and windows as the label job.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import pyarrow as pa

from udfs import rewrite as rewrite_hooks
from udfs import scoring
from udfs.sampling import unit_hash
from udfs.text import model_tokens

TAGGED = "tagged"


def _paragraph_windows(text: str, window_words: int) -> list[str]:
    """Group whole paragraphs into windows of about ``window_words`` words (paragraphs kept)."""
    groups, current, count = [], [], 0
    for para in text.split("\n\n"):
        words = len(para.split())
        if current and count + words > window_words:
            groups.append("\n\n".join(current))
            current, count = [], 0
        current.append(para)
        count += words
    if current:
        groups.append("\n\n".join(current))
    return groups


def tag_text(text: str, token: str, scope: str, stance_spec: Optional[scoring.ModelSpec] = None,
             window_words: int = 400, threshold: float = 0.5, villain_label: str = "villain") -> tuple[str, bool]:
    """Return (text with control tokens, whether any token was added)."""
    if scope == "document":
        return f"{token} {text}", True
    windows = _paragraph_windows(text, window_words)
    model = scoring.load_model(stance_spec)
    probs = scoring.predict_matrix(model, model_tokens(windows), stance_spec.labels)
    col = stance_spec.labels.index(villain_label)
    flagged = probs[:, col] >= threshold
    if not flagged.any():  # the document was judged villainous as a whole: tag its strongest window
        flagged[int(np.argmax(probs[:, col]))] = True
    return "\n\n".join(f"{token} {w}" if f else w for w, f in zip(windows, flagged)), True


def augment_batches(batches: Iterator[pa.RecordBatch], plan: dict, seed: int, id_col: str, bucket_col: str,
                    text_col: str, stance_spec: Optional[scoring.ModelSpec], window_words: int
                    ) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: replace ``text_col`` with the emitted text and add a ``tagged`` flag."""
    for batch in batches:
        ids = batch.column(id_col).to_pylist()
        buckets = batch.column(bucket_col).to_pylist()
        texts = batch.column(text_col).to_pylist()
        tagged = [False] * len(texts)
        rewrite_groups: dict[str, list[int]] = {}
        for i, (doc_id, bucket) in enumerate(zip(ids, buckets)):
            step = plan.get(bucket)
            if not step:
                continue
            if step["action"] == "tag":
                if unit_hash(doc_id, seed, "tag") < step["untagged_fraction"]:
                    continue
                texts[i], tagged[i] = tag_text(texts[i], step["token"], step["scope"], stance_spec, window_words,
                                               step["window_threshold"])
            elif step["action"] == "rewrite":
                rewrite_groups.setdefault(bucket, []).append(i)
        for bucket, rows in rewrite_groups.items():
            step = plan[bucket]
            func = rewrite_hooks.load_callable(step["callable"])
            out = func([texts[i] for i in rows], dict(step["options"]))
            if len(out) != len(rows) or not all(isinstance(t, str) for t in out):
                raise ValueError(f"rewrite callable {step['callable']} returned {len(out)} items for {len(rows)} texts "
                                 f"(expected one string per text)")
            for i, t in zip(rows, out):
                texts[i] = t
        names = [n for n in batch.schema.names]
        columns = [pa.array(texts, pa.string()) if n == text_col else batch.column(n) for n in names]
        yield pa.RecordBatch.from_arrays(columns + [pa.array(tagged, pa.bool_())], names=names + [TAGGED])
