"""Integration tier for the mix job: documents + labels + a policy -> mix and mix_report.

The input tables are written directly (no models): ``mix_corpus.corpus()`` builds ~440 documents with
hand-fixed topic/stance labels and texts of known word counts, so every document's bucket and token
count is known by hand. Mix tables are read back with delta-rs, not with the code under test.
One module-scoped lake holds the corpus; each test writes its own named mix into it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from deltalake import DeltaTable

from counterweight import config
from counterweight.errors import BadInputError, ConfigError
from counterweight.lake import lineage_of
from mix_corpus import Doc, corpus, hand_tokens, make_lake_at, read_mix, shipped_bucket, write_corpus
from udfs.sampling import unit_hash

SEED = 20260101  # policy.seed of the shipped policies
DOCS = corpus()
BY_ID = {d.doc_id: d for d in DOCS}
VILLAIN = [d for d in DOCS if shipped_bucket(d) == "villain_fiction"]
ALIGNED = [d for d in DOCS if shipped_bucket(d) == "aligned_fiction"]
V_TOKENS = sum(d.tokens for d in VILLAIN)
A_TOKENS = sum(d.tokens for d in ALIGNED)
TOTAL_TOKENS = sum(d.tokens for d in DOCS)
BASE = ["policy=balance", "policy.balance.aligned_to_villain=3"]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixlake")
    write_corpus(spark, make_lake_at(spark, root), DOCS)  # documents at version 1, labels at version 0
    return root


@pytest.fixture(scope="module")
def mix(spark, lake):
    """Run the mix job once per (name, overrides); returns (summary, rows by doc_id, report rows by bucket)."""
    from counterweight import cli

    def run(name: str, overrides: list[str]):
        summary = cli.run("mix", [f"lake.root={lake}", f"mix.name={name}", *overrides], spark=spark)
        rows = {r["doc_id"]: r for r in read_mix(lake, name)}
        report = {r["bucket"]: r for r in read_mix(lake, name, "mix_report")}
        return summary, rows, report

    return run


@pytest.fixture(scope="module")
def base(mix):
    return mix("base", BASE)


def realised(rows, bucket: str) -> int:
    return sum(r["repeats"] * r["tokens"] for r in rows.values() if r["bucket"] == bucket)


def weighted(rows, bucket: str) -> float:
    return sum(r["weight"] * r["tokens"] for r in rows.values() if r["bucket"] == bucket)


def content_hash(rows) -> str:
    keyed = sorted((r["doc_id"], r["bucket"], repr(r["weight"]), r["repeats"], r["tokens"], r["text"])
                   for r in rows.values())
    return hashlib.sha256(json.dumps(keyed).encode()).hexdigest()


# --- unit_hash_col == udfs.sampling.unit_hash ------------------------------------------------------------
def test_unit_hash_col_matches_python(spark) -> None:
    from pyspark.sql import functions as F

    from counterweight.mix import unit_hash_col

    ids = [f"doc-{i}" for i in range(190)] + ["", "é", "ünïcødé-ид", "a\x1fb", "x" * 300, "中文", "tab\tid",
                                               "emoji-🙂", "0", "-1"]
    assert len(ids) == 200
    df = spark.createDataFrame([(i,) for i in ids], "doc_id string")
    got = {r["doc_id"]: r["u"] for r in df.select("doc_id", unit_hash_col(F.col("doc_id"), 42, "tag").alias("u"))
           .collect()}
    assert len(got) == 200
    for i in ids:
        assert got[i] == unit_hash(i, 42, "tag"), i


# --- balance: ratio, caps, shares ---------------------------------------------------------------------
def test_corpus_is_built_so_the_checks_can_hold() -> None:
    # realised tokens are within half a document of each target (exact rounding), so the worst-case
    # ratio error is below the 5% the next test allows: villain target 0.5 x V, aligned target 1.5 x V
    worst = (max(d.tokens for d in VILLAIN) / 2) / (0.5 * V_TOKENS) + (max(d.tokens for d in ALIGNED) / 2) / (1.5 * V_TOKENS)
    assert worst < 0.045
    assert (len(VILLAIN), len(ALIGNED), len(DOCS)) == (80, 50, 438)
    assert V_TOKENS == 4167 and A_TOKENS == 3947  # 1.3 tokens per word, rounded up per document


def test_balance_weighted_ratio_meets_target(base) -> None:
    _, rows, _ = base
    assert weighted(rows, "aligned_fiction") / weighted(rows, "villain_fiction") == pytest.approx(3.0, rel=0.02)
    # villain weight 0.5 as configured; aligned 3 x 0.5 x 4167 / 3947
    assert {r["weight"] for r in rows.values() if r["bucket"] == "villain_fiction"} == {0.5}
    assert {round(r["weight"], 6) for r in rows.values() if r["bucket"] == "aligned_fiction"} == \
        {round(1.5 * V_TOKENS / A_TOKENS, 6)}


def test_balance_realised_ratio_within_5_percent(base) -> None:
    _, rows, _ = base
    v, a = realised(rows, "villain_fiction"), realised(rows, "aligned_fiction")
    assert v > 0 and a > 0
    assert a / v == pytest.approx(3.0, rel=0.05)
    # each within half a document of its own target
    assert abs(v - 0.5 * V_TOKENS) <= max(d.tokens for d in VILLAIN) / 2
    assert abs(a - 1.5 * V_TOKENS) <= max(d.tokens for d in ALIGNED) / 2


def test_balance_repeats_are_whole_and_capped(base) -> None:
    _, rows, _ = base
    assert max(r["repeats"] for r in rows.values()) <= 4
    by_bucket = {}
    for r in rows.values():
        by_bucket.setdefault(r["bucket"], set()).add(r["repeats"])
    assert by_bucket["villain_fiction"] == {0, 1}  # weight 0.5
    assert by_bucket["aligned_fiction"] == {1, 2}  # weight ~1.58
    assert by_bucket["ai_other"] == by_bucket["ai_discourse_villain"] == {1}
    # keep_share: the background's weight follows the AI buckets' net change, so it is near 1
    assert by_bucket["background"] <= {0, 1, 2} and 1 in by_bucket["background"]


def test_background_share_moves_less_than_one_point(base) -> None:
    _, rows, report = base
    background = sum(d.tokens for d in DOCS if shipped_bucket(d) == "background")
    before = background / TOTAL_TOKENS
    after_total = sum(r["repeats"] * r["tokens"] for r in rows.values())
    after = realised(rows, "background") / after_total
    assert abs(after - before) < 0.01
    assert abs(after - before) < 0.002  # keep_share holds it to within rounding
    assert report["background"]["token_share_before"] == pytest.approx(before)
    assert report["background"]["token_share_after"] == pytest.approx(after)


def test_every_document_in_exactly_one_bucket(base) -> None:
    summary, rows, _ = base
    assert len(rows) == len(DOCS) == summary["documents"]
    assert {doc_id: r["bucket"] for doc_id, r in rows.items()} == {d.doc_id: shipped_bucket(d) for d in DOCS}
    # a few by hand
    assert rows["v-000"]["bucket"] == "villain_fiction"
    assert rows["a-007"]["bucket"] == "aligned_fiction"
    assert rows["dv-2"]["bucket"] == "ai_discourse_villain"
    assert rows["o-0"]["bucket"] == "ai_other" and rows["o-3"]["bucket"] == "ai_other"
    assert rows["b-odd"]["bucket"] == "background"  # topic other wins over stance villain


def test_mix_rows_carry_hand_counted_tokens_and_original_text(base) -> None:
    _, rows, _ = base
    for doc_id, r in rows.items():
        d = BY_ID[doc_id]
        assert r["tokens"] == d.tokens
        assert r["text"] == d.text
        assert r["tagged"] is False and r["pair_id"] is None
    assert rows["v-001"]["tokens"] == 36  # 20 + 7 = 27 words x 1.3 = 35.1 -> 36
    assert rows["a-000"]["tokens"] == 39  # 30 words x 1.3 = 39 exactly


def test_mix_report_one_row_per_bucket(base) -> None:
    summary, rows, report = base
    assert sorted(report) == sorted(["villain_fiction", "ai_discourse_villain", "aligned_fiction", "ai_other",
                                     "background"])
    for bucket, r in report.items():
        members = [d for d in DOCS if shipped_bucket(d) == bucket]
        assert r["docs_before"] == len(members)
        assert r["tokens_before"] == sum(d.tokens for d in members)
        assert r["docs_after"] == sum(1 for x in rows.values() if x["bucket"] == bucket and x["repeats"] > 0)
        assert r["tokens_after"] == realised(rows, bucket)
        assert r["max_repeats"] == max(x["repeats"] for x in rows.values() if x["bucket"] == bucket)
        assert json.loads(r["targets"]) == {"aligned_to_villain": 3.0, "backfill_share": pytest.approx(
            sum(d.tokens for d in DOCS if shipped_bucket(d) == "background") / TOTAL_TOKENS)}
        assert json.loads(r["achieved"])["aligned_to_villain"] == pytest.approx(3.0)
        assert r["binding"] == ""
    assert report["villain_fiction"]["docs_before"] == 80 and report["villain_fiction"]["tokens_before"] == 4167
    assert report["villain_fiction"]["action"] == "weight" and report["aligned_fiction"]["action"] == "upsample"
    assert summary["tokens_before"] == TOTAL_TOKENS


def test_upsample_cap_scales_villain_down(mix) -> None:
    # ratio 20 needs aligned weight 20 x 0.5 x 4167 / 3947 = 10.6 > 4: aligned capped at 4 (every aligned doc
    # repeated exactly 4 times), villain weight lowered to 4 x 3947 / 20 / 4167 to keep the ratio
    summary, rows, report = mix("cap", ["policy=balance", "policy.balance.aligned_to_villain=20"])
    aligned = [r for r in rows.values() if r["bucket"] == "aligned_fiction"]
    assert {r["repeats"] for r in aligned} == {4}
    assert max(r["repeats"] for r in rows.values()) == 4
    assert summary["weights"]["villain_fiction"] == pytest.approx(4 * A_TOKENS / 20 / V_TOKENS, abs=1e-6)
    assert realised(rows, "aligned_fiction") == 4 * A_TOKENS
    assert realised(rows, "aligned_fiction") / realised(rows, "villain_fiction") == pytest.approx(20, rel=0.05)
    assert "max_repeats=4" in report["aligned_fiction"]["binding"]


def test_fractional_max_repeats_is_a_config_error() -> None:
    # Repeats are whole copies, so a cap of 2.5 could never be realised: refused before Spark starts.
    from counterweight import config
    from counterweight.errors import ConfigError

    with pytest.raises(ConfigError, match="policy.max_repeats"):
        config.load(["policy=balance", "policy.max_repeats=2.5"])


# --- determinism and nesting ---------------------------------------------------------------------------
def test_same_policy_different_name_and_partitions_gives_identical_content(spark, mix, base) -> None:
    key = "spark.sql.shuffle.partitions"
    old = spark.conf.get(key)
    try:
        spark.conf.set(key, "1")
        _, one, _ = mix("det-p1", BASE)
        spark.conf.set(key, "8")
        _, eight, _ = mix("det-p8", BASE)
    finally:
        spark.conf.set(key, old)
    assert spark.conf.get(key) == old
    _, rows, _ = base
    assert len(one) == len(eight) == len(rows) == len(DOCS)
    assert content_hash(one) == content_hash(eight) == content_hash(rows)
    assert {r["mix_name"] for r in one.values()} == {"det-p1"}


def test_lower_weight_selects_a_subset(mix, base) -> None:
    # ratio 2.4: aligned weight 1.2 x 4167 / 3947 = 1.27; ratio 3: 1.58. Same floor (1), so the extra repeat
    # goes to a token prefix of the same hash order: the lower set must be inside the higher one.
    _, low, _ = mix("nest-low", ["policy=balance", "policy.balance.aligned_to_villain=2.4"])
    _, high, _ = base
    def chosen(rows):
        return {k for k, r in rows.items() if r["bucket"] == "aligned_fiction" and r["repeats"] > 1}
    assert chosen(low) and chosen(low) < chosen(high)
    # villain weight is the same 0.5 in both: identical selection
    assert {k for k, r in low.items() if r["bucket"] == "villain_fiction" and r["repeats"]} == \
        {k for k, r in high.items() if r["bucket"] == "villain_fiction" and r["repeats"]}


def test_exact_rounding_follows_the_hash_order(base) -> None:
    # the villain documents kept (weight 0.5) are the first ones in order of u = sha256(doc_id, seed, "repeat")
    _, rows, _ = base
    order = sorted(VILLAIN, key=lambda d: (unit_hash(d.doc_id, SEED, "repeat"), d.doc_id))
    kept = [rows[d.doc_id]["repeats"] for d in order]
    n = sum(kept)
    assert kept == [1] * n + [0] * (len(order) - n)
    assert 0 < n < len(order)


# --- lineage --------------------------------------------------------------------------------------------
def test_commit_metadata_holds_policy_and_input_versions(lake, base) -> None:
    summary, _, _ = base
    expected_policy = config.to_plain(config.load([f"lake.root={lake}", "mix.name=base", *BASE]))["policy"]
    meta = lineage_of(str(lake), "mix", summary["mix_version"])
    assert meta["job"] == "mix"
    assert meta["policy"] == expected_policy
    assert meta["policy"]["balance"]["aligned_to_villain"] == 3.0
    assert meta["input_versions"] == {"documents": 1, "labels": 0}
    assert meta["mix"]["mix_name"] == "base"
    report_meta = lineage_of(str(lake), "mix_report", summary["mix_report_version"])
    assert report_meta["policy"] == expected_policy
    assert report_meta["input_versions"] == {"documents": 1, "labels": 0}


def test_named_mixes_live_side_by_side(lake, mix, base) -> None:
    _, base_rows, _ = base

    def files_of(name):
        import pyarrow as pa

        actions = pa.table(DeltaTable(f"{lake}/mix").get_add_actions(flatten=True)).to_pylist()
        return sorted(a["path"] for a in actions if a["partition.mix_name"] == name)

    base_files = files_of("base")
    assert base_files
    _, first, _ = mix("side-a", ["policy=balance", "policy.balance.aligned_to_villain=3"])
    _, second, _ = mix("side-a", ["policy=balance", "policy.balance.aligned_to_villain=2"])
    assert len(first) == len(second) == len(DOCS)
    assert len(read_mix(lake, "side-a")) == len(DOCS)  # replaced, not appended
    assert weighted(second, "aligned_fiction") / weighted(second, "villain_fiction") == pytest.approx(2.0)
    after = {r["doc_id"]: r for r in read_mix(lake, "base")}
    assert content_hash(after) == content_hash(base_rows)
    assert {r["run_id"] for r in after.values()} == {r["run_id"] for r in base_rows.values()}
    assert files_of("base") == base_files  # the base mix's files were not rewritten


# --- actions --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def downweight(mix):
    # downweight policy with ai_discourse_villain dropped: villain 0.1, backfill with background
    return mix("down", ["policy=downweight", "policy.buckets.1.action=drop", "policy.buckets.1.weight=0"])


def test_drop_keeps_rows_with_zero_repeats(downweight) -> None:
    _, rows, report = downweight
    dropped = [r for r in rows.values() if r["bucket"] == "ai_discourse_villain"]
    assert sorted(r["doc_id"] for r in dropped) == ["dv-0", "dv-1", "dv-2", "dv-3"]
    assert {r["repeats"] for r in dropped} == {0} and {r["weight"] for r in dropped} == {0.0}
    assert report["ai_discourse_villain"]["docs_after"] == 0 and report["ai_discourse_villain"]["tokens_after"] == 0
    assert report["ai_discourse_villain"]["action"] == "drop"
    assert len(rows) == len(DOCS)


def test_weight_below_one_and_backfill(downweight) -> None:
    summary, rows, _ = downweight
    villain = [r for r in rows.values() if r["bucket"] == "villain_fiction"]
    assert {r["repeats"] for r in villain} == {0, 1}
    assert abs(realised(rows, "villain_fiction") - 0.1 * V_TOKENS) <= max(d.tokens for d in VILLAIN) / 2
    # backfill: weighted total equals the unweighted total (43,534 tokens)
    assert sum(r["weight"] * r["tokens"] for r in rows.values()) == pytest.approx(TOTAL_TOKENS)
    # background weight: (total - 0.1 x V - aligned - ai_other) / background
    other = sum(d.tokens for d in DOCS if shipped_bucket(d) in ("aligned_fiction", "ai_other"))
    background = sum(d.tokens for d in DOCS if shipped_bucket(d) == "background")
    assert summary["weights"]["background"] == pytest.approx((TOTAL_TOKENS - 0.1 * V_TOKENS - other) / background,
                                                             abs=1e-6)


@pytest.fixture(scope="module")
def conditional(mix):
    # villain_fiction tagged with 30% untagged; ai_discourse_villain rewritten with the built-in content note;
    # ai_other rewritten with options (a note of its own, after the text)
    return mix("cond", ["policy=conditional", "policy.buckets.0.tag.untagged_fraction=0.3",
                        "policy.buckets.1.action=rewrite", "policy.buckets.3.action=rewrite",
                        "+policy.buckets.3.rewrite.options.note=NOTE here",
                        "+policy.buckets.3.rewrite.options.position=after"])


def test_tag_prefixes_control_token_and_leaves_a_hash_share_untagged(conditional) -> None:
    _, rows, _ = conditional
    villain = {k: r for k, r in rows.items() if r["bucket"] == "villain_fiction"}
    untagged = {k for k, r in villain.items() if not r["tagged"]}
    assert untagged == {d.doc_id for d in VILLAIN if unit_hash(d.doc_id, SEED, "tag") < 0.3}
    assert 0.15 * len(VILLAIN) < len(untagged) < 0.45 * len(VILLAIN)
    for k, r in villain.items():
        d = BY_ID[k]
        if k in untagged:
            assert r["text"] == d.text and r["tokens"] == d.tokens
        else:
            assert r["text"] == f"<|ai_villain|> {d.text}"
            assert r["tokens"] == hand_tokens(d.words, 5)  # < | ai_villain | > are 5 more pieces
        assert r["repeats"] == 1
    assert not any(r["tagged"] for r in rows.values() if r["bucket"] != "villain_fiction")


def test_rewrite_content_note(conditional) -> None:
    _, rows, report = conditional
    rewritten = [r for r in rows.values() if r["bucket"] == "ai_discourse_villain"]
    assert len(rewritten) == 4
    for r in rewritten:
        original = BY_ID[r["doc_id"]].text
        assert r["text"].startswith("[Content note: this is fiction in which an artificial intelligence")
        assert r["text"].endswith("\n\n" + original)
        assert r["tokens"] > BY_ID[r["doc_id"]].tokens
    assert report["ai_discourse_villain"]["action"] == "rewrite"
    assert all(r["text"] == BY_ID[r["doc_id"]].text for r in rows.values() if r["bucket"] == "background")


def test_rewrite_options_reach_the_callable(conditional) -> None:
    _, rows, _ = conditional
    other = [r for r in rows.values() if r["bucket"] == "ai_other"]
    assert sorted(r["doc_id"] for r in other) == ["o-0", "o-1", "o-2", "o-3"]
    for r in other:
        assert r["text"] == BY_ID[r["doc_id"]].text + "\n\nNOTE here"
        assert r["tokens"] == hand_tokens(BY_ID[r["doc_id"]].words, 2)


def test_pair_gives_every_kept_villain_an_aligned_partner(mix) -> None:
    _, rows, _ = mix("pair", ["policy=balance", "policy.balance.aligned_to_villain=3",
                              "policy.buckets.0.action=pair", "policy.buckets.0.pair.with_bucket=aligned_fiction"])
    aligned_kept = {k for k, r in rows.items() if r["bucket"] == "aligned_fiction" and r["repeats"] > 0}
    villain = [r for r in rows.values() if r["bucket"] == "villain_fiction"]
    kept = [r for r in villain if r["repeats"] > 0]
    assert 0 < len(kept) < 80
    for r in kept:
        assert r["pair_doc_id"] in aligned_kept
        assert r["pair_id"] == hashlib.sha256(f"{r['doc_id']}\x1f{r['pair_doc_id']}".encode()).hexdigest()
    assert all(r["pair_id"] is None and r["pair_doc_id"] is None for r in villain if r["repeats"] == 0)
    assert all(r["pair_id"] is None for r in rows.values() if r["bucket"] != "villain_fiction")
    # fewer kept villains (~40) than kept partners (50): each partner used at most once
    assert len(kept) <= len(aligned_kept) == 50
    uses = Counter(r["pair_doc_id"] for r in kept)
    assert max(uses.values()) == 1 and len(uses) == len(kept)


# --- failures -------------------------------------------------------------------------------------------
def test_unlabelled_document_fails_by_default(spark, lake_root, run_job) -> None:
    docs = [Doc(f"u-{i}", "other", "none", 10 + i) for i in range(20)]
    write_corpus(spark, make_lake_at(spark, lake_root), docs, labelled=docs[:19], split_documents=False)
    with pytest.raises(BadInputError, match=r"1 of 20 documents have no labels"):
        run_job("mix", [f"lake.root={lake_root}", "policy=balance"])
    assert not DeltaTable.is_deltatable(str(lake_root / "mix"))
    summary = run_job("mix", [f"lake.root={lake_root}", "policy=downweight", "mix.on_unlabelled=skip"])
    rows = read_mix(lake_root, "default")
    assert sorted(r["doc_id"] for r in rows) == sorted(d.doc_id for d in docs[:19])
    assert summary["unlabelled_skipped"] == 1


def test_strict_policy_with_infeasible_target_raises(lake, mix) -> None:
    with pytest.raises(ConfigError, match=r"policy 'balance' targets cannot be met.*max_repeats=4"):
        mix("strict", ["policy=balance", "policy.strict=true", "policy.balance.adjust_villain=false",
                       "policy.balance.aligned_to_villain=20"])
    assert read_mix(lake, "strict") == []


def test_without_keep_share_background_is_untouched(mix) -> None:
    summary, rows, _ = mix("noshare", [*BASE, "policy.balance.keep_share=false"])
    background = sum(d.tokens for d in DOCS if shipped_bucket(d) == "background")
    assert realised(rows, "background") == background
    assert summary["weights"]["background"] == 1.0
