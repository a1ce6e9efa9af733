"""Deterministic randomness: u = sha256(doc_id, seed, purpose) mapped to [0, 1).

The same document gets the same u on 1 core or 1,000, in any partitioning, in Python or in Spark
SQL (:func:`counterweight.mix.unit_hash_col` computes the identical value). Because a document is
selected when ``u < rate``, a lower rate always selects a subset of a higher one.
"""

from __future__ import annotations

import hashlib

HEX_DIGITS = 13  # 52 bits: exactly representable in a double


def unit_hash(doc_id: str, seed: int | str, purpose: str) -> float:
    digest = hashlib.sha256(f"{doc_id}\x1f{seed}\x1f{purpose}".encode("utf-8")).hexdigest()
    return int(digest[:HEX_DIGITS], 16) / float(1 << (4 * HEX_DIGITS))
