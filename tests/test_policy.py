"""Unit and config tiers for the mix policy (no Spark): the token-budget solver, policy validation,
the shipped policies, deterministic hash sampling and token counting.

Every expected number below is worked out by hand in the comment next to it, from the inputs the
test writes; none is produced by the code under test.
"""

from __future__ import annotations

import hashlib
import math

import pytest

from counterweight import config
from counterweight.errors import ConfigError
from counterweight.policy import (
    Action,
    BalanceConfig,
    BucketConfig,
    PairConfig,
    PolicyConfig,
    PredicateConfig,
    TagConfig,
    solve,
    validate_policy,
)
from udfs import tokens as tok
from udfs.sampling import unit_hash

V, A, BG = "villain_fiction", "aligned_fiction", "background"
TOPICS = {"ai_fiction", "ai_nonfiction", "other"}
STANCES = {"villain", "aligned", "neutral", "none"}
LABEL_COLUMNS = {"p_ai_fiction", "p_ai_nonfiction", "p_other", "p_villain", "p_aligned", "p_neutral",
                 "topic_score", "stance_score", "n_chunks"}


def bal(**kw) -> BalanceConfig:
    base = dict(aligned_to_villain=None, villain_buckets=[V], aligned_buckets=[A], adjust_villain=True,
                total_tokens=None, backfill=False, backfill_buckets=[BG])
    base.update(kw)
    return BalanceConfig(**base)


# --- solve(): the aligned:villain ratio -------------------------------------------------------------
def test_feasible_ratio_scales_aligned_only() -> None:
    # villain weighted = 0.5 * 1000 = 500; aligned needs 2 * 500 = 1000 tokens from 500 -> weight 2.0
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000}, bal(aligned_to_villain=2.0), 4.0)
    assert sol.feasible is True
    assert sol.binding == []
    assert sol.weights == pytest.approx({V: 0.5, A: 2.0, BG: 1.0})
    assert sol.targets == {"aligned_to_villain": 2.0}
    assert sol.achieved["aligned_to_villain"] == pytest.approx(2.0)


def test_feasible_ratio_with_configured_aligned_weight() -> None:
    # villain 0.25 * 800 = 200; ratio 3 -> aligned 600 tokens from 300 tokens -> weight 2.0
    # (configured 1.5 scaled by s = 600 / 450 = 4/3)
    sol = solve({V: 0.25, A: 1.5, BG: 1.0}, {V: 800, A: 300, BG: 50}, bal(aligned_to_villain=3.0), 4.0)
    assert sol.feasible
    assert sol.weights[A] == pytest.approx(2.0)
    assert sol.weights[V] == pytest.approx(0.25)
    assert sol.weights[BG] == 1.0


def test_ratio_beyond_max_repeats_adjusts_villain() -> None:
    # villain 0.5 * 1000 = 500; ratio 3 needs 1500 aligned tokens from 100 -> weight 15 > 4.
    # Aligned capped at 4 -> 400 tokens; villain must be 400 / 3 = 133.33 tokens -> weight 2/15.
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 100, BG: 10_000}, bal(aligned_to_villain=3.0), 4.0)
    assert sol.feasible is True
    assert sol.weights[A] == pytest.approx(4.0)
    assert sol.weights[V] == pytest.approx(2 / 15)
    assert sol.weights[BG] == 1.0
    assert sol.achieved["aligned_to_villain"] == pytest.approx(3.0)
    assert len(sol.binding) == 1 and "max_repeats=4" in sol.binding[0]


def test_ratio_beyond_max_repeats_without_adjusting_villain_is_infeasible() -> None:
    # as above but villain stays 0.5: aligned 4 * 100 = 400 vs villain 500 -> ratio 0.8
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 100, BG: 10_000},
                bal(aligned_to_villain=3.0, adjust_villain=False), 4.0)
    assert sol.feasible is False
    assert sol.weights[A] == pytest.approx(4.0)
    assert sol.weights[V] == pytest.approx(0.5)
    assert sol.achieved["aligned_to_villain"] == pytest.approx(0.8)
    assert len(sol.binding) == 1
    assert "max_repeats=4" in sol.binding[0] and "adjust_villain" in sol.binding[0]


def test_ratio_exactly_at_cap_is_feasible_without_binding() -> None:
    # villain 1 * 400 = 400; ratio 1 -> aligned 400 tokens from 100 -> weight exactly 4 = max_repeats
    sol = solve({V: 1.0, A: 1.0, BG: 1.0}, {V: 400, A: 100, BG: 10}, bal(aligned_to_villain=1.0, adjust_villain=False),
                4.0)
    assert sol.feasible and sol.binding == []
    assert sol.weights[A] == pytest.approx(4.0)


def test_empty_villain_bucket_reports_binding() -> None:
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 0, A: 500, BG: 10_000}, bal(aligned_to_villain=2.0), 4.0)
    assert sol.feasible is False
    assert sol.weights == {V: 0.5, A: 1.0, BG: 1.0}  # left as configured
    assert len(sol.binding) == 1 and "no villain tokens" in sol.binding[0]
    assert sol.achieved["aligned_to_villain"] == math.inf


def test_villain_bucket_missing_from_token_counts() -> None:
    # a bucket no document fell into has no entry in the aggregation at all
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {A: 500, BG: 10_000}, bal(aligned_to_villain=2.0), 4.0)
    assert sol.feasible is False
    assert "no villain tokens" in sol.binding[0]


def test_empty_aligned_bucket_reports_binding() -> None:
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 0, BG: 10_000}, bal(aligned_to_villain=2.0), 4.0)
    assert sol.feasible is False
    assert sol.weights == {V: 0.5, A: 1.0, BG: 1.0}
    assert len(sol.binding) == 1 and "no aligned tokens" in sol.binding[0]
    assert sol.achieved["aligned_to_villain"] == 0.0


def test_all_buckets_zero_tokens_never_divides_by_zero() -> None:
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 0, A: 0, BG: 0}, bal(aligned_to_villain=2.0, backfill=True), 4.0)
    assert sol.feasible is False
    assert any("no villain tokens" in b for b in sol.binding)
    assert any("no backfill tokens" in b for b in sol.binding)
    assert sol.achieved["total_tokens"] == 0.0


def test_zero_token_aligned_bucket_does_not_set_the_cap() -> None:
    # Two aligned buckets: "aligned_empty" has no tokens, so only aligned_fiction (weight 1) caps s at 4.
    # villain 1 * 1000; ratio 2 needs 2000 aligned tokens from 100 -> s = 20 -> capped at 4 -> villain
    # weight 400 / 2 / 1000 = 0.2.
    sol = solve({V: 1.0, A: 1.0, "aligned_empty": 0.5, BG: 1.0}, {V: 1000, A: 100, "aligned_empty": 0, BG: 10},
                bal(aligned_to_villain=2.0, aligned_buckets=[A, "aligned_empty"]), 4.0)
    assert sol.feasible
    assert sol.weights[A] == pytest.approx(4.0)
    assert sol.weights[V] == pytest.approx(0.2)
    assert sol.achieved["aligned_to_villain"] == pytest.approx(2.0)


def test_no_final_weight_exceeds_max_repeats_with_an_empty_aligned_bucket() -> None:
    # same setup as above, but the empty aligned bucket is configured at weight 2: s = 4 -> 2 * 4 = 8
    sol = solve({V: 1.0, A: 1.0, "aligned_empty": 2.0, BG: 1.0}, {V: 1000, A: 100, "aligned_empty": 0, BG: 10},
                bal(aligned_to_villain=2.0, aligned_buckets=[A, "aligned_empty"]), 4.0)
    assert max(sol.weights.values()) <= 4.0


def test_several_aligned_buckets_share_one_scale_and_the_tightest_cap() -> None:
    # aligned a1 weight 2 (100 tokens), a2 weight 1 (300 tokens): base 500 aligned tokens.
    # villain 1 * 1000; ratio 3 -> 3000 tokens -> s = 6; caps: a1 4/2 = 2, a2 4/1 = 4 -> s = 2.
    # a1 -> 4, a2 -> 2: aligned 400 + 600 = 1000; villain must be 1000 / 3 -> weight 1/3.
    sol = solve({V: 1.0, "a1": 2.0, "a2": 1.0, BG: 1.0}, {V: 1000, "a1": 100, "a2": 300, BG: 10},
                bal(aligned_to_villain=3.0, aligned_buckets=["a1", "a2"]), 4.0)
    assert sol.feasible
    assert sol.weights["a1"] == pytest.approx(4.0)
    assert sol.weights["a2"] == pytest.approx(2.0)
    assert sol.weights[V] == pytest.approx(1 / 3)
    assert sol.achieved["aligned_to_villain"] == pytest.approx(3.0)


# --- solve(): total budget and backfill ------------------------------------------------------------
def test_total_tokens_budget_scales_backfill() -> None:
    # fixed: villain 0.5 * 1000 + aligned 1 * 500 = 1000; budget 12,000 -> background 11,000 / 10,000 = 1.1
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000}, bal(total_tokens=12_000), 4.0)
    assert sol.feasible and sol.binding == []
    assert sol.weights == pytest.approx({V: 0.5, A: 1.0, BG: 1.1})
    assert sol.targets == {"total_tokens": 12_000.0}
    assert sol.achieved["total_tokens"] == pytest.approx(12_000.0)


def test_ratio_then_budget() -> None:
    # ratio 2: aligned 2.0 (1000 tokens); fixed 500 + 1000 = 1500; budget 12,000 -> background 1.05
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000},
                bal(aligned_to_villain=2.0, total_tokens=12_000), 4.0)
    assert sol.feasible
    assert sol.weights == pytest.approx({V: 0.5, A: 2.0, BG: 1.05})
    assert sol.achieved == pytest.approx({"aligned_to_villain": 2.0, "total_tokens": 12_000.0})


def test_backfill_keeps_total_equal_to_unweighted_total() -> None:
    # unweighted total 1000 + 500 + 10,000 = 11,500; fixed 0.1 * 1000 + 500 = 600 -> background 10,900 / 10,000
    sol = solve({V: 0.1, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000}, bal(backfill=True), 4.0)
    assert sol.feasible and sol.binding == []
    assert sol.weights[BG] == pytest.approx(1.09)
    assert sol.targets["total_tokens"] == 11_500.0
    assert sol.achieved["total_tokens"] == pytest.approx(11_500.0)


def test_backfill_needing_negative_weight_is_infeasible() -> None:
    # ratio 3 on villain 1 * 1000 -> aligned 3.0 * 1000 = 3000; fixed 4000 > unweighted total 2100
    sol = solve({V: 1.0, A: 1.0, BG: 1.0}, {V: 1000, A: 1000, BG: 100},
                bal(aligned_to_villain=3.0, backfill=True), 4.0)
    assert sol.feasible is False
    assert sol.weights[BG] == 0.0
    assert sol.weights[A] == pytest.approx(3.0)
    assert any("exceed the total" in b for b in sol.binding)
    assert sol.achieved["total_tokens"] == pytest.approx(4000.0)


def test_backfill_needing_more_than_max_repeats_is_infeasible() -> None:
    # fixed 0.5 * 1000 + 500 = 1000; budget 100,000 -> background 99,000 / 10,000 = 9.9 > 4 -> capped at 4
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000}, bal(total_tokens=100_000), 4.0)
    assert sol.feasible is False
    assert sol.weights[BG] == 4.0
    assert any("max_repeats=4" in b and "backfill" in b for b in sol.binding)
    assert sol.achieved["total_tokens"] == pytest.approx(41_000.0)


def test_no_targets_leaves_weights_as_configured() -> None:
    sol = solve({V: 0.5, A: 1.0, BG: 1.0}, {V: 1000, A: 500, BG: 10_000}, bal(), 4.0)
    assert sol.feasible and sol.binding == [] and sol.targets == {} and sol.achieved == {}
    assert sol.weights == {V: 0.5, A: 1.0, BG: 1.0}


# --- validate_policy() -------------------------------------------------------------------------------
def policy(**kw) -> PolicyConfig:
    buckets = kw.pop("buckets", None) or [
        BucketConfig(name=V, when=PredicateConfig(topic=["ai_fiction"], stance=["villain"]), action=Action.weight,
                     weight=0.5),
        BucketConfig(name=A, when=PredicateConfig(topic=["ai_fiction"], stance=["aligned"]), action=Action.upsample,
                     weight=1.0),
        BucketConfig(name=BG),
    ]
    return PolicyConfig(name="t", buckets=buckets, balance=kw.pop("balance", bal(aligned_to_villain=2.0)), **kw)


def check(p) -> list[str]:
    return validate_policy(p, LABEL_COLUMNS, TOPICS, STANCES)


def test_valid_policy_has_no_warnings() -> None:
    assert check(policy()) == []


def test_unknown_topic_names_the_key() -> None:
    p = policy()
    p.buckets[0].when.topic = ["ai_fictoin"]
    with pytest.raises(ConfigError, match=r"policy\.buckets\[0\] \('villain_fiction'\)\.when\.topic: 'ai_fictoin'"
                                          r".*valid: ai_fiction, ai_nonfiction, other"):
        check(p)


def test_unknown_stance_names_the_key() -> None:
    p = policy()
    p.buckets[1].when.stance = ["good"]
    with pytest.raises(ConfigError, match=r"policy\.buckets\[1\] \('aligned_fiction'\)\.when\.stance: 'good'"):
        check(p)


@pytest.mark.parametrize("bound", ["min", "max"])
def test_unknown_column_names_the_key(bound) -> None:
    p = policy()
    setattr(p.buckets[0].when, bound, {"p_evil": 0.5})
    with pytest.raises(ConfigError, match=rf"policy\.buckets\[0\] \('villain_fiction'\)\.when\.{bound}\.p_evil: "
                                          r"not a label column"):
        check(p)


def test_known_columns_pass() -> None:
    p = policy()
    p.buckets[0].when.min = {"p_villain": 0.6}
    p.buckets[0].when.max = {"topic_score": 0.99}
    assert check(p) == []


def test_duplicate_bucket_names() -> None:
    p = policy()
    p.buckets[1].name = V
    with pytest.raises(ConfigError, match=r"policy\.buckets: duplicate bucket names \['villain_fiction'\]"):
        check(p)


@pytest.mark.parametrize("when", [PredicateConfig(topic=["other"]), PredicateConfig(source=["web"]),
                                  PredicateConfig(min={"p_villain": 0.1})])
def test_last_bucket_with_conditions(when) -> None:
    p = policy()
    p.buckets[-1].when = when
    with pytest.raises(ConfigError, match=r"policy\.buckets\[2\] \('background'\) must have no conditions"):
        check(p)


def test_upsample_with_weight_below_one() -> None:
    p = policy()
    p.buckets[1].weight = 0.5
    with pytest.raises(ConfigError, match=r"policy\.buckets\[1\] \('aligned_fiction'\)\.weight: 0\.5; upsample needs"):
        check(p)


def test_weight_over_max_repeats() -> None:
    p = policy()
    p.buckets[1].weight = 5.0
    with pytest.raises(ConfigError, match=r"policy\.buckets\[1\] \('aligned_fiction'\)\.weight: 5\.0; exceeds "
                                          r"policy\.max_repeats=4"):
        check(p)


def test_pair_with_unknown_bucket() -> None:
    p = policy()
    p.buckets[0].action = Action.pair
    p.buckets[0].pair = PairConfig(with_bucket="aligned_fixtion")
    with pytest.raises(ConfigError, match=r"policy\.buckets\[0\] \('villain_fiction'\)\.pair\.with_bucket: "
                                          r"'aligned_fixtion' is not a bucket; valid: villain_fiction, "
                                          r"aligned_fiction, background"):
        check(p)


def test_pair_with_known_bucket_passes() -> None:
    p = policy()
    p.buckets[0].action = Action.pair
    p.buckets[0].pair = PairConfig(with_bucket=A)
    assert check(p) == []


def test_max_repeats_over_16_warns() -> None:
    warnings = check(policy(max_repeats=20.0))
    assert len(warnings) == 1
    assert "policy.max_repeats=20" in warnings[0] and "16" in warnings[0]


def test_max_repeats_16_does_not_warn() -> None:
    assert check(policy(max_repeats=16.0)) == []


def test_max_repeats_below_one() -> None:
    with pytest.raises(ConfigError, match=r"policy\.max_repeats: 0\.5"):
        check(policy(max_repeats=0.5))


def test_tag_untagged_fraction_out_of_range() -> None:
    p = policy()
    p.buckets[0].action = Action.tag
    p.buckets[0].tag = TagConfig(untagged_fraction=1.0)
    with pytest.raises(ConfigError, match=r"\.tag\.untagged_fraction: 1\.0"):
        check(p)


def test_balance_names_unknown_bucket() -> None:
    p = policy(balance=bal(aligned_to_villain=2.0, aligned_buckets=["nope"]))
    with pytest.raises(ConfigError, match=r"policy\.balance\.aligned_buckets: 'nope' is not a bucket"):
        check(p)


def test_empty_buckets() -> None:
    with pytest.raises(ConfigError, match=r"policy\.buckets is empty"):
        validate_policy(PolicyConfig(name="t", buckets=[]), LABEL_COLUMNS, TOPICS, STANCES)


# The same checks reached through the real config loader (Hydra overrides on a shipped policy).
@pytest.mark.parametrize("override, pattern", [
    ("policy.buckets.0.when.topic=[robots]", r"policy\.buckets\[0\] \('villain_fiction'\)\.when\.topic: 'robots'"),
    ("policy.buckets.0.when.stance=[evil]", r"policy\.buckets\[0\] \('villain_fiction'\)\.when\.stance: 'evil'"),
    ("+policy.buckets.0.when.min.p_evil=0.5", r"policy\.buckets\[0\] \('villain_fiction'\)\.when\.min\.p_evil"),
    ("policy.buckets.1.name=villain_fiction", r"duplicate bucket names \['villain_fiction'\]"),
    ("policy.buckets.4.when.topic=[other]", r"policy\.buckets\[4\] \('background'\) must have no conditions"),
    ("policy.buckets.2.weight=0.5", r"policy\.buckets\[2\] \('aligned_fiction'\)\.weight: 0\.5; upsample"),
    ("policy.buckets.2.weight=6", r"policy\.buckets\[2\] \('aligned_fiction'\)\.weight: 6\.0; exceeds"),
])
def test_bad_policy_through_config_load(override, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern):
        config.load(["policy=balance", override])


def test_pair_with_unknown_bucket_through_config_load() -> None:
    with pytest.raises(ConfigError, match=r"policy\.buckets\[0\] \('villain_fiction'\)\.pair\.with_bucket: 'nobody'"):
        config.load(["policy=balance", "policy.buckets.0.action=pair", "policy.buckets.0.pair.with_bucket=nobody"])


def test_bucket_key_spelled_in_yaml_overrides_without_plus() -> None:
    cfg = config.load(["policy=conditional", "policy.buckets.0.tag.untagged_fraction=0.3",
                       "policy.buckets.2.action=rewrite"])
    assert cfg.policy.buckets[0].tag.untagged_fraction == 0.3
    assert cfg.policy.buckets[2].action == Action.rewrite


@pytest.mark.parametrize("overrides", [
    ["policy=balance", "policy.buckets.0.action=pair", "policy.buckets.0.pair.with_bucket=aligned_fiction"],
    ["policy=balance", "policy.buckets.0.action=tag", "policy.buckets.0.tag.untagged_fraction=0.3"],
])
def test_schema_bucket_keys_override_without_plus(overrides) -> None:
    cfg = config.load(overrides)
    assert cfg.policy.buckets[0].action in (Action.pair, Action.tag)


@pytest.mark.parametrize("override", ["policy.buckets.0.colour=red", "+policy.buckets.0.colour=red"])
def test_unknown_bucket_key_lists_valid_bucket_keys(override) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(["policy=balance", override])
    message = str(err.value)
    assert "policy.buckets" in message and "colour" in message
    assert all(k in message for k in ("name", "when", "action", "weight", "tag", "pair", "rewrite"))


def test_max_repeats_over_16_warns_through_config_load(caplog) -> None:
    with caplog.at_level("WARNING", logger="counterweight"):
        cfg = config.load(["policy=balance", "policy.max_repeats=20"])
    assert cfg.policy.max_repeats == 20
    assert any("policy.max_repeats=20" in r.getMessage() for r in caplog.records)


# --- shipped policies ----------------------------------------------------------------------------------
BUCKETS = ["villain_fiction", "ai_discourse_villain", "aligned_fiction", "ai_other", "background"]


@pytest.mark.parametrize("name", ["balance", "downweight", "conditional"])
def test_shipped_policy_loads(name, caplog) -> None:
    with caplog.at_level("WARNING", logger="counterweight"):
        cfg = config.load([f"policy={name}"])
    assert cfg.policy.name == name
    assert [b.name for b in cfg.policy.buckets] == BUCKETS
    assert cfg.policy.max_repeats == 4
    assert not [r for r in caplog.records if "policy" in r.getMessage()]


def test_shipped_policies_carry_their_intent() -> None:
    balance = config.load(["policy=balance"]).policy
    assert balance.balance.aligned_to_villain == 2.0
    assert balance.buckets[0].action == Action.weight and balance.buckets[0].weight == 0.5
    assert balance.buckets[2].action == Action.upsample
    down = config.load(["policy=downweight"]).policy
    assert down.balance.backfill is True and down.balance.aligned_to_villain is None
    assert down.buckets[0].weight == 0.1
    cond = config.load(["policy=conditional"]).policy
    assert cond.buckets[0].action == Action.tag and cond.buckets[0].tag.token == "<|ai_villain|>"
    assert cond.buckets[0].tag.untagged_fraction == 0.01


# --- deterministic sampling -----------------------------------------------------------------------------
def test_unit_hash_in_unit_interval_and_deterministic() -> None:
    values = [unit_hash(f"doc-{i}", 20260101, "repeat") for i in range(2000)]
    assert all(0.0 <= u < 1.0 for u in values)
    assert values == [unit_hash(f"doc-{i}", 20260101, "repeat") for i in range(2000)]
    assert len(set(values)) == 2000
    assert 0.45 < sum(values) / len(values) < 0.55


def test_unit_hash_matches_the_documented_recipe() -> None:
    # sha256("doc-1" US "7" US "tag"), first 13 hex digits over 2^52 (computed here with hashlib)
    digest = hashlib.sha256(b"doc-1\x1f7\x1ftag").hexdigest()
    assert unit_hash("doc-1", 7, "tag") == int(digest[:13], 16) / 2 ** 52
    assert unit_hash("doc-1", "7", "tag") == unit_hash("doc-1", 7, "tag")


def test_unit_hash_depends_on_seed_and_purpose() -> None:
    ids = [f"d{i}" for i in range(500)]
    a = [unit_hash(i, 1, "repeat") for i in ids]
    assert a != [unit_hash(i, 2, "repeat") for i in ids]
    assert a != [unit_hash(i, 1, "tag") for i in ids]


def test_rates_nest_and_match_the_selected_fraction() -> None:
    ids = [f"doc-{i:05d}" for i in range(20_000)]
    u = {i: unit_hash(i, 20260101, "tag") for i in ids}
    selected = {rate: {i for i in ids if u[i] < rate} for rate in (0.01, 0.1, 0.3, 0.5)}
    assert selected[0.01] <= selected[0.1] <= selected[0.3] <= selected[0.5]
    assert selected[0.1] < selected[0.3]
    for rate, chosen in selected.items():
        assert abs(len(chosen) / len(ids) - rate) < 0.01, (rate, len(chosen))


# --- tokens ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, per_word, expected", [
    ("", 1.3, 0),
    ("one", 1.3, 2),  # 1 piece x 1.3 -> 2
    ("one two three", 1.3, 4),  # 3 x 1.3 = 3.9 -> 4
    ("Hello, world!", 1.3, 6),  # Hello , world ! = 4 pieces -> 5.2 -> 6
    ("don't stop", 1.0, 4),  # don ' t stop
    ("  spaced   out\n\nlines \t", 1.0, 3),
    (" ".join(["w"] * 10), 1.3, 13),  # exactly 13, not 14
    (" ".join(["w"] * 70), 1.3, 91),
    ("<|ai_villain|> story", 1.0, 6),  # < | ai_villain | > story
])
def test_estimate_tokens_hand_counted(text, per_word, expected) -> None:
    assert tok.estimate_tokens(text, per_word) == expected


def test_count_tokens_estimate_and_none() -> None:
    assert tok.count_tokens(["a b", None, "c"], "estimate", 1.0) == [2, 0, 1]


def test_count_tokens_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer kind 'bpe'"):
        tok.count_tokens(["x"], "bpe")


def test_token_batches_appends_counts() -> None:
    import pyarrow as pa

    batch = pa.RecordBatch.from_pydict({"doc_id": ["a", "b"], "text": ["one two", "x, y, z"]})
    out = list(tok.token_batches(iter([batch]), "text", "tokens", "estimate", 1.0, None))
    assert out[0].column("tokens").to_pylist() == [2, 5]
    assert out[0].schema.names == ["doc_id", "text", "tokens"]


def test_count_tokens_hf(tmp_path) -> None:
    tokenizers = pytest.importorskip(
        "tokenizers", reason="the `tokenizers` package is not installed in .venv (optional extra "
                             "counterweight[tokenizer]); kind=hf cannot be exercised")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "the": 1, "robot": 2, "helps": 3, ".": 4}
    t = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()
    path = tmp_path / "tokenizer.json"
    t.save(str(path))
    # Whitespace splits words and punctuation: "the robot helps ." -> 4; unknown words count as [UNK]
    assert tok.count_tokens(["the robot helps.", "the alien waves", ""], "hf", path=str(path)) == [4, 3, 0]
    assert tokenizers.__version__


def test_keep_share_holds_the_backfill_share() -> None:
    # villain 100 tokens x0.5 -> 50, aligned 100 -> ratio 3 needs 150 (w 1.5), other 200 stays:
    # others go 400 -> 400 - 50 + 50 = 400... use numbers where they grow: aligned ratio 4 -> 200.
    bal = BalanceConfig(aligned_to_villain=4.0, keep_share=True)
    tokens = {"villain_fiction": 100, "aligned_fiction": 100, "background": 600}
    sol = solve({"villain_fiction": 0.5, "aligned_fiction": 1.0, "background": 1.0}, tokens, bal, 4)
    # others before 200, after 50 + 200 = 250: background weight 250 / 200 = 1.25
    assert sol.weights["background"] == pytest.approx(1.25)
    share_before = 600 / 800
    share_after = 1.25 * 600 / (1.25 * 600 + 250)
    assert share_after == pytest.approx(share_before)
    assert sol.achieved["backfill_share"] == pytest.approx(share_before)
    assert sol.feasible


def test_keep_share_with_backfill_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="keep_share"):
        config.load(["policy=balance", "policy.balance.backfill=true"])
