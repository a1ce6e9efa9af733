"""Integration tier for the export job: a mix -> shuffled training shards + manifest.json.

The mix comes from the synthetic corpus of ``mix_corpus`` (hand-known buckets and token counts).
Shards are read back with gzip/json and pyarrow; expected counts come from the mix table as read by
delta-rs, not from the export code.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mix_corpus import corpus, make_lake_at, read_mix, write_corpus

DOCS = corpus()
BY_ID = {d.doc_id: d for d in DOCS}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    from counterweight import cli

    root = tmp_path_factory.mktemp("exportlake")
    write_corpus(spark, make_lake_at(spark, root), DOCS)
    # every villain document kept (weight 1) and paired: 80 villains cycle over 50 aligned partners
    cli.run("mix", [f"lake.root={root}", "mix.name=paired", "policy=balance", "policy.balance.aligned_to_villain=3",
                    "policy.buckets.0.action=pair", "policy.buckets.0.weight=1",
                    "policy.buckets.0.pair.with_bucket=aligned_fiction"], spark=spark)
    return root


@pytest.fixture(scope="module")
def export(spark, lake, tmp_path_factory):
    from counterweight import cli

    def run(mix_name: str, *extra: str) -> tuple[dict, Path]:
        out = tmp_path_factory.mktemp(f"export-{mix_name}") / "out"
        summary = cli.run("export", [f"lake.root={lake}", f"mix.name={mix_name}", f"export.path={out}",
                                     "export.shard_records=50", *extra], spark=spark)
        return summary, out

    return run


@pytest.fixture(scope="module")
def paired(export):
    return export("paired")


def shard_records(out: Path) -> dict[str, list[dict]]:
    shards = {}
    for path in sorted(out.glob("shard-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            shards[path.name] = [json.loads(line) for line in handle]
    return shards


def mix_rows(lake, name):
    return {r["doc_id"]: r for r in read_mix(lake, name)}


def test_manifest_totals_match_the_mix(lake, paired) -> None:
    summary, out = paired
    rows = mix_rows(lake, "paired")
    manifest = json.loads((out / "manifest.json").read_text())
    expected_documents = sum(r["repeats"] for r in rows.values())
    expected_records = expected_documents + 80  # plus one partner record per kept villain copy
    assert expected_documents > len(DOCS)
    assert manifest["records"] == expected_records and manifest["document_records"] == expected_documents
    assert manifest["mix_tokens"] == sum(r["repeats"] * r["tokens"] for r in rows.values())
    assert manifest["documents"] == sum(1 for r in rows.values() if r["repeats"] > 0)
    assert manifest["mix_name"] == "paired" and manifest["format"] == "jsonl"
    # files: one per shard (~50 document records each; a hash decides the shard), counts add up
    names = sorted(p.name for p in out.glob("shard-*"))
    assert names == sorted(f["path"] for f in manifest["files"])
    assert manifest["shards"] == len(names) == -(-expected_documents // 50)
    shards = shard_records(out)
    assert sum(len(v) for v in shards.values()) == expected_records
    for f in manifest["files"]:
        assert f["records"] == len(shards[f["path"]])
        assert f["tokens"] == sum(r["tokens"] for r in shards[f["path"]])
    assert summary["records"] == expected_records


def test_each_document_appears_repeats_times(lake, paired) -> None:
    _, out = paired
    rows = mix_rows(lake, "paired")
    seen = Counter()
    copies = {}
    for records in shard_records(out).values():
        for r in records:
            assert r["text"] == rows[r["doc_id"]]["text"] == BY_ID[r["doc_id"]].text
            assert r["tokens"] == BY_ID[r["doc_id"]].tokens
            if r["record_type"] == "pair_partner":
                continue
            assert r["record_type"] == "document"
            seen[r["doc_id"]] += 1
            copies.setdefault(r["doc_id"], set()).add(r["copy"])
    assert dict(seen) == {k: r["repeats"] for k, r in rows.items() if r["repeats"] > 0}
    assert all(copies[k] == set(range(n)) for k, n in seen.items())
    assert {seen[k] for k, r in rows.items() if r["bucket"] == "aligned_fiction"} == {3, 4}  # weight ~3.17


def test_paired_manifest_counts_partner_tokens(lake, paired) -> None:
    _, out = paired
    rows = mix_rows(lake, "paired")
    villain = [r for r in rows.values() if r["bucket"] == "villain_fiction"]
    assert len(villain) == 80 and all(r["repeats"] == 1 and r["pair_doc_id"] for r in villain)
    # 80 villains over 50 partners, cycling: each partner used once or twice
    assert sorted(Counter(r["pair_doc_id"] for r in villain).values()) == [1] * 20 + [2] * 30
    manifest = json.loads((out / "manifest.json").read_text())
    mix_tokens = sum(r["repeats"] * r["tokens"] for r in rows.values())
    partner_tokens = sum(r["repeats"] * rows[r["pair_doc_id"]]["tokens"] for r in villain)
    assert manifest["mix_tokens"] == mix_tokens
    assert manifest["tokens"] == mix_tokens + partner_tokens
    assert manifest["document_records"] == sum(r["repeats"] for r in rows.values())
    assert manifest["pair_partner_records"] == 80
    assert manifest["records"] == manifest["document_records"] + 80


def _pairs_in_order(out: Path):
    for records in shard_records(out).values():
        for i, r in enumerate(records):
            if r["record_type"] == "document" and r.get("pair_id"):
                yield records, i


def test_paired_records_are_adjacent(lake, paired) -> None:
    _, out = paired
    rows = mix_rows(lake, "paired")
    n = 0
    for records, i in _pairs_in_order(out):
        v = records[i]
        neighbours = records[max(0, i - 1):i] + records[i + 1:i + 2]
        partner = [p for p in neighbours if p["record_type"] == "pair_partner" and p.get("pair_id") == v["pair_id"]]
        assert len(partner) == 1, v["doc_id"]
        assert partner[0]["doc_id"] == rows[v["doc_id"]]["pair_doc_id"]
        assert partner[0]["text"] == BY_ID[partner[0]["doc_id"]].text
        n += 1
    assert n == 80


def test_partner_comes_right_after_its_villain(lake, paired) -> None:
    _, out = paired
    n = 0
    for records, i in _pairs_in_order(out):
        assert i + 1 < len(records)
        nxt = records[i + 1]
        assert nxt["record_type"] == "pair_partner" and nxt["pair_id"] == records[i]["pair_id"]
        n += 1
    assert n == 80


def test_export_twice_gives_identical_shards(paired, export) -> None:
    _, first = paired
    _, second = export("paired")
    a, b = sorted(first.glob("shard-*.jsonl.gz")), sorted(second.glob("shard-*.jsonl.gz"))
    assert [p.name for p in a] == [p.name for p in b] and a
    for x, y in zip(a, b):
        assert gzip.decompress(x.read_bytes()) == gzip.decompress(y.read_bytes()), x.name
        assert gzip.decompress(x.read_bytes())  # not empty


def test_parquet_format(lake, export) -> None:
    summary, out = export("paired", "export.format=parquet")
    rows = mix_rows(lake, "paired")
    files = sorted(out.glob("shard-*.parquet"))
    assert files and not list(out.glob("*.jsonl.gz"))
    table = [r for f in files for r in pq.read_table(f).to_pylist()]
    docs = [r for r in table if r["record_type"] == "document"]
    assert len(docs) == sum(r["repeats"] for r in rows.values())
    assert Counter(r["doc_id"] for r in docs) == Counter({k: r["repeats"] for k, r in rows.items() if r["repeats"]})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "parquet"
    assert manifest["records"] == len(table)
    assert manifest["tokens"] == sum(r["tokens"] for r in table)
    assert summary["records"] == len(table)
