"""Rewrite hooks for the ``rewrite`` action: ``function(texts, options) -> texts``, per batch.

A hook runs inside Spark's Python workers on one Arrow batch of a bucket's documents at a time,
so it may hold expensive state (a model, a client) in a module-level cache, as ``udfs.scoring``
does. It must return one string per input, in order, and should be deterministic: the mix is
reproducible only if the rewrite is.

Plugging an LLM rewriter: write ``mypkg/rewriters.py`` with
``def villain_to_aligned(texts, options): ...`` that sends the batch to a model you serve
(e.g. an OpenAI-compatible server on your cluster, temperature 0, a fixed seed, caching answers by
sha256 of the text), ship it with ``--py-files``, and set
``policy.buckets[i].rewrite.callable=mypkg.rewriters:villain_to_aligned``. Options from the policy
(``rewrite.options``) arrive as a dict of strings.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

DEFAULT_NOTE = (
    "[Content note: this is fiction in which an artificial intelligence acts against people. "
    "Real AI systems are built to be honest, to be overseen, and to accept correction.]"
)


def content_note(texts: Sequence[str], options: dict) -> list[str]:
    """Built-in deterministic example: frame a villain narrative with a short counter-narrative note.

    ``options.note`` replaces the default note; ``options.position`` is ``before`` (default) or
    ``after``.
    """
    note = options.get("note") or DEFAULT_NOTE
    after = options.get("position", "before") == "after"
    return [f"{t}\n\n{note}" if after else f"{note}\n\n{t}" for t in texts]


def load_callable(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    func = getattr(importlib.import_module(module), name, None)
    if not callable(func):
        raise ValueError(f"rewrite callable {spec!r}: {module} has no function {name!r}")
    return func
