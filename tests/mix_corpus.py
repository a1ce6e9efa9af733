"""Synthetic `documents` + `labels` tables for the mix and export tests (no models needed).

Each document's text is ``<name> word word ...`` with exactly ``words`` whitespace-separated
alphanumeric words and no punctuation, so the estimate tokenizer (1.3 tokens per word, rounded up)
gives ``ceil(1.3 x words)`` tokens: :func:`hand_tokens` computes that with integer arithmetic.
The bucket of every document under the shipped policies follows from its (topic, stance), fixed
by hand here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

TOPIC_LABELS = ["ai_fiction", "ai_nonfiction", "other"]
STANCE_LABELS = ["villain", "aligned", "neutral"]

DOCUMENTS_DDL = ("doc_id string, source_id string, source string, text string, text_hash string, n_chars long, "
                 "metadata map<string,string>, input_file string, record_position long, ingested_at timestamp, "
                 "run_id string")
LABELS_DDL = ("doc_id string, text_hash string, topic string, topic_score double, p_ai_fiction double, "
              "p_ai_nonfiction double, p_other double, stance string, stance_score double, p_villain double, "
              "p_aligned double, p_neutral double, n_chunks int, topic_model string, stance_model string, "
              "labeled_at timestamp, run_id string")

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def hand_tokens(words: int, extra_pieces: int = 0) -> int:
    """ceil(1.3 x pieces) in integers: 13 x pieces / 10 rounded up."""
    return (13 * (words + extra_pieces) + 9) // 10


@dataclass(frozen=True)
class Doc:
    doc_id: str
    topic: str
    stance: str
    words: int
    source: str = "synthetic"

    @property
    def text(self) -> str:
        name = self.doc_id.replace("-", "")
        return " ".join([name] + ["word"] * (self.words - 1))

    @property
    def tokens(self) -> int:
        return hand_tokens(self.words)


def corpus(n_villain: int = 80, n_aligned: int = 50, n_background: int = 300) -> list[Doc]:
    """The standard corpus. Ids: aligned 'a-', villain 'v-' (so every aligned id sorts before every villain id).

    * villain_fiction (ai_fiction/villain): lengths 20..60 words, uneven
    * aligned_fiction (ai_fiction/aligned): lengths 30..90 words, uneven
    * ai_discourse_villain (ai_nonfiction/villain): 4 docs
    * ai_other: ai_fiction/neutral x2, ai_nonfiction/aligned x2
    * background: topic other (stance none), plus one 'other'/'villain' row (still background)
    """
    docs = [Doc(f"v-{i:03d}", "ai_fiction", "villain", 20 + (i * 7) % 41) for i in range(n_villain)]
    docs += [Doc(f"a-{i:03d}", "ai_fiction", "aligned", 30 + (i * 11) % 61) for i in range(n_aligned)]
    docs += [Doc(f"dv-{i}", "ai_nonfiction", "villain", 25 + 5 * i) for i in range(4)]
    docs += [Doc("o-0", "ai_fiction", "neutral", 33), Doc("o-1", "ai_fiction", "neutral", 44),
             Doc("o-2", "ai_nonfiction", "aligned", 55), Doc("o-3", "ai_nonfiction", "aligned", 66)]
    docs += [Doc(f"b-{i:03d}", "other", "none", 60 + (i * 13) % 60) for i in range(n_background - 1)]
    docs.append(Doc("b-odd", "other", "villain", 70))
    return docs


# bucket of each (topic, stance) under the shipped policies, by hand from conf/policy/*.yaml
def shipped_bucket(doc: Doc) -> str:
    if doc.topic == "ai_fiction" and doc.stance == "villain":
        return "villain_fiction"
    if doc.topic == "ai_nonfiction" and doc.stance == "villain":
        return "ai_discourse_villain"
    if doc.topic == "ai_fiction" and doc.stance == "aligned":
        return "aligned_fiction"
    if doc.topic in ("ai_fiction", "ai_nonfiction"):
        return "ai_other"
    return "background"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def document_rows(docs: list[Doc]) -> list[tuple]:
    return [(d.doc_id, d.doc_id, d.source, d.text, _sha(d.text), len(d.text),
             {"k": "v"} if i % 2 else None, "/in/synthetic.jsonl", i, WHEN, "ingest-run")
            for i, d in enumerate(docs)]


def label_rows(docs: list[Doc]) -> list[tuple]:
    rows = []
    for d in docs:
        topic_p = {t: (0.8 if t == d.topic else 0.1) for t in TOPIC_LABELS}
        if d.stance in STANCE_LABELS:
            stance_p = {s: (0.7 if s == d.stance else 0.15) for s in STANCE_LABELS}
        else:
            stance_p = {s: None for s in STANCE_LABELS}
        rows.append((d.doc_id, _sha(d.text), d.topic, topic_p[d.topic], topic_p["ai_fiction"],
                     topic_p["ai_nonfiction"], topic_p["other"], d.stance, stance_p.get(d.stance),
                     stance_p["villain"], stance_p["aligned"], stance_p["neutral"], 1, "topic-sha", "stance-sha",
                     WHEN, "label-run"))
    return rows


def write_corpus(spark, lake, docs: list[Doc], labelled: list[Doc] | None = None, split_documents: bool = True):
    """Append documents (in two commits when ``split_documents``: version 1) and labels (one commit)."""
    rows = document_rows(docs)
    if split_documents and len(rows) > 1:
        half = len(rows) // 2
        lake.append("documents", spark.createDataFrame(rows[:half], DOCUMENTS_DDL))
        lake.append("documents", spark.createDataFrame(rows[half:], DOCUMENTS_DDL))
    else:
        lake.append("documents", spark.createDataFrame(rows, DOCUMENTS_DDL))
    lake.append("labels", spark.createDataFrame(label_rows(docs if labelled is None else labelled), LABELS_DDL))


def make_lake_at(spark, root) -> object:
    import uuid

    from counterweight.lake import Lake, Lineage

    return Lake(spark, str(root), Lineage(job="test", run_id=uuid.uuid4().hex, config_hash="test-config"),
                engine="delta_rs")


def read_mix(lake_root, mix_name: str, table: str = "mix") -> list[dict]:
    """Rows of one mix, read with delta-rs (not with the code under test)."""
    from deltalake import DeltaTable

    rows = DeltaTable(f"{lake_root}/{table}").to_pyarrow_table().to_pylist()
    return [r for r in rows if r["mix_name"] == mix_name]
