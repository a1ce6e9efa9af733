"""Mix policy: buckets, their actions, and the token-budget solver (pure Python, driver side).

A policy sorts every labelled document into exactly one bucket (the first whose predicate
matches, in order; the last bucket must match everything) and gives each bucket an action:

=========  =================================================================================
action     effect
=========  =================================================================================
keep       weight 1
weight     multiply by ``weight`` (< 1 downweights)
drop       weight 0 (the rows stay in ``mix`` with repeats 0, for traceability)
upsample   repeat ``weight`` times (> 1), capped by ``policy.max_repeats``
tag        keep (times ``weight``) and put a control token before the text or each flagged window
pair       keep (times ``weight``) and place an aligned-AI document from ``pair.with_bucket`` next to it
rewrite    keep (times ``weight``) and transform the text with a Python callable on the executors
=========  =================================================================================

Everything is measured in tokens. :func:`solve` turns configured weights and per-bucket token
counts into final weights that meet the balance targets (aligned:villain ratio, total budget,
backfill) within the caps, and says which constraint binds when they cannot all be met.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Optional

from counterweight.errors import ConfigError

REPEAT_WARN = 16  # Muennighoff et al. (2023): value of repeated data fades by ~16 epochs


class Action(enum.Enum):
    keep = "keep"
    weight = "weight"
    drop = "drop"
    upsample = "upsample"
    tag = "tag"
    pair = "pair"
    rewrite = "rewrite"


class TagScope(enum.Enum):
    document = "document"  # one control token before the whole text
    window = "window"  # before each window the stance model flags


class Rounding(enum.Enum):
    exact = "exact"  # per bucket, a token-exact prefix of the hash order (within one document)
    independent = "independent"  # repeats = floor(w) + (u < frac(w)), u per document


@dataclass
class PredicateConfig:
    """All given conditions must hold. Columns are label columns (p_villain, topic_score, ...)."""

    topic: list[str] = field(default_factory=list)  # empty: any
    stance: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    min: dict[str, float] = field(default_factory=dict)  # column >= value
    max: dict[str, float] = field(default_factory=dict)  # column < value


@dataclass
class TagConfig:
    token: str = "<|ai_villain|>"
    untagged_fraction: float = 0.01  # Korbak et al. (2023): ~1% left untagged
    scope: TagScope = TagScope.document
    window_threshold: float = 0.5  # scope=window: tag windows whose p_villain reaches this


@dataclass
class PairConfig:
    with_bucket: str = "aligned_fiction"


@dataclass
class RewriteConfig:
    callable: str = "udfs.rewrite:content_note"  # "module:function(texts, options) -> texts"
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class BucketConfig:
    name: str = "???"
    when: PredicateConfig = field(default_factory=PredicateConfig)
    action: Action = Action.keep
    weight: float = 1.0
    tag: TagConfig = field(default_factory=TagConfig)
    pair: PairConfig = field(default_factory=PairConfig)
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)


@dataclass
class BalanceConfig:
    aligned_to_villain: Optional[float] = None  # target ratio of weighted aligned : villain tokens
    villain_buckets: list[str] = field(default_factory=lambda: ["villain_fiction"])
    aligned_buckets: list[str] = field(default_factory=lambda: ["aligned_fiction"])
    # When the aligned side hits max_repeats, lower the villain weight to still meet the ratio.
    adjust_villain: bool = True
    total_tokens: Optional[int] = None  # total weighted tokens of the mix (budget)
    backfill: bool = False  # keep the mix's total tokens where they were before the policy
    # Keep the backfill buckets' token share where it was before the policy: their weight follows
    # the other buckets' growth or shrinkage (exclusive with total_tokens and backfill).
    keep_share: bool = False
    backfill_buckets: list[str] = field(default_factory=lambda: ["background"])


@dataclass
class TokenizerConfig:
    kind: str = "estimate"  # estimate | hf (a local tokenizer.json, via the `tokenizers` package)
    tokens_per_word: float = 1.3  # estimate: tokens = ceil(words and punctuation marks x this)
    path: Optional[str] = None  # hf: tokenizer.json


@dataclass
class PolicyConfig:
    name: str = "???"
    description: str = ""
    seed: int = 20260101
    max_repeats: int = 4  # whole copies: a document is repeated at most this many times
    strict: bool = False
    rounding: Rounding = Rounding.exact
    exact_max_docs: int = 2_000_000  # larger buckets use independent rounding (no global sort)
    buckets: list[BucketConfig] = field(default_factory=list)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


# --- validation ------------------------------------------------------------------------------
def validate_policy(policy, label_columns: set[str], topics: set[str], stances: set[str]) -> list[str]:
    """Check a policy before Spark starts; return warnings, raise ConfigError naming the key."""
    warnings = []
    names = [b.name for b in policy.buckets]
    if not names:
        raise ConfigError("policy.buckets is empty; define at least one bucket (the last one catches everything)")
    for i, name in enumerate(names):
        if not name or name == "???" or not name.replace("_", "").isalnum() or name != name.lower():
            raise ConfigError(f"policy.buckets[{i}].name: {name!r}; use lower-case letters, digits and _")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"policy.buckets: duplicate bucket names {sorted(dupes)}")
    last = policy.buckets[-1]
    if any([last.when.topic, last.when.stance, last.when.source, last.when.min, last.when.max]):
        raise ConfigError(f"policy.buckets[{len(names) - 1}] ('{last.name}') must have no conditions so every "
                          f"document lands in a bucket")
    if policy.max_repeats < 1:
        raise ConfigError(f"policy.max_repeats: {policy.max_repeats}; must be >= 1")
    if policy.max_repeats > REPEAT_WARN:
        warnings.append(f"policy.max_repeats={policy.max_repeats:g} exceeds {REPEAT_WARN}: repeated data is worth "
                        f"little beyond ~{REPEAT_WARN} epochs (Muennighoff et al., 2023)")
    for i, b in enumerate(policy.buckets):
        key = f"policy.buckets[{i}] ('{b.name}')"
        for t in b.when.topic:
            if t not in topics:
                raise ConfigError(f"{key}.when.topic: '{t}' is not a topic label; valid: {', '.join(sorted(topics))}")
        for s in b.when.stance:
            if s not in stances:
                raise ConfigError(f"{key}.when.stance: '{s}' is not a stance; valid: {', '.join(sorted(stances))}")
        for bound in ("min", "max"):
            for col in getattr(b.when, bound):
                if col not in label_columns:
                    raise ConfigError(f"{key}.when.{bound}.{col}: not a label column; valid: "
                                      f"{', '.join(sorted(label_columns))}")
        action = b.action
        if b.weight < 0:
            raise ConfigError(f"{key}.weight: {b.weight}; must be >= 0")
        if action == Action.drop and b.weight not in (0.0, 1.0):
            raise ConfigError(f"{key}: action drop takes no weight (got {b.weight}); use action weight instead")
        if action == Action.upsample and b.weight < 1:
            raise ConfigError(f"{key}.weight: {b.weight}; upsample needs a weight >= 1 (use action weight to downweight)")
        if b.weight > policy.max_repeats:
            raise ConfigError(f"{key}.weight: {b.weight}; exceeds policy.max_repeats={policy.max_repeats:g}")
        if action == Action.tag and not (0 <= b.tag.untagged_fraction < 1):
            raise ConfigError(f"{key}.tag.untagged_fraction: {b.tag.untagged_fraction}; must be in [0, 1)")
        if action == Action.tag and not b.tag.token.strip():
            raise ConfigError(f"{key}.tag.token is empty")
        if action == Action.pair and b.pair.with_bucket not in names:
            raise ConfigError(f"{key}.pair.with_bucket: '{b.pair.with_bucket}' is not a bucket; valid: {', '.join(names)}")
        if action == Action.pair and b.pair.with_bucket == b.name:
            raise ConfigError(f"{key}.pair.with_bucket: a bucket cannot pair with itself")
        if action == Action.rewrite and ":" not in b.rewrite.callable:
            raise ConfigError(f"{key}.rewrite.callable: {b.rewrite.callable!r}; give 'module:function'")
    bal = policy.balance
    for group in ("villain_buckets", "aligned_buckets", "backfill_buckets"):
        for name in getattr(bal, group):
            if name not in names and (bal.aligned_to_villain is not None or group == "backfill_buckets" and bal.backfill):
                raise ConfigError(f"policy.balance.{group}: '{name}' is not a bucket; valid: {', '.join(names)}")
    if bal.keep_share and (bal.backfill or bal.total_tokens is not None):
        raise ConfigError("policy.balance.keep_share cannot be combined with policy.balance.backfill or "
                          "policy.balance.total_tokens: each sets the backfill buckets' weight; choose one")
    if bal.keep_share:
        for name in bal.backfill_buckets:
            if name not in names:
                raise ConfigError(f"policy.balance.backfill_buckets: '{name}' is not a bucket; valid: {', '.join(names)}")
    if bal.aligned_to_villain is not None and bal.aligned_to_villain <= 0:
        raise ConfigError(f"policy.balance.aligned_to_villain: {bal.aligned_to_villain}; must be > 0")
    if bal.total_tokens is not None and bal.total_tokens <= 0:
        raise ConfigError(f"policy.balance.total_tokens: {bal.total_tokens}; must be > 0")
    if bal.aligned_to_villain is not None and set(bal.villain_buckets) & set(bal.aligned_buckets):
        raise ConfigError("policy.balance: a bucket cannot be both a villain and an aligned bucket")
    if policy.tokenizer.kind not in ("estimate", "hf"):
        raise ConfigError(f"policy.tokenizer.kind: {policy.tokenizer.kind!r}; valid: estimate, hf")
    if policy.tokenizer.kind == "hf" and not policy.tokenizer.path:
        raise ConfigError("policy.tokenizer.path: required for kind=hf (a local tokenizer.json)")
    if policy.tokenizer.tokens_per_word <= 0:
        raise ConfigError(f"policy.tokenizer.tokens_per_word: {policy.tokenizer.tokens_per_word}; must be > 0")
    return warnings


# --- solver ----------------------------------------------------------------------------------
@dataclass
class Solution:
    weights: dict[str, float]  # final weight per bucket
    targets: dict[str, float]  # what was asked (ratio, total)
    achieved: dict[str, float]  # what the weights give
    binding: list[str]  # constraints that stopped a target from being met, in plain words
    feasible: bool


def _weighted(weights: dict[str, float], tokens: dict[str, int], buckets) -> float:
    return sum(weights[b] * tokens.get(b, 0) for b in buckets)


def solve(configured: dict[str, float], tokens: dict[str, int], balance, max_repeats: float,
          tol: float = 1e-9) -> Solution:
    """Final per-bucket weights from configured weights and per-bucket token counts.

    1. Ratio: scale the aligned buckets' weights by one factor s so that
       aligned weighted tokens = ratio x villain weighted tokens. If s would push an aligned
       weight past ``max_repeats``, cap it and (``adjust_villain``) scale the villain weights down
       to keep the ratio; otherwise report the cap as binding.
    2. Share (``keep_share``): give the backfill buckets the weight that keeps their token share
       as it was: the other buckets' weighted tokens after / before.
    3. Total: with ``total_tokens`` (or ``backfill``: the unweighted total), scale the backfill
       buckets' weights so the mix's weighted tokens equal it, within [0, max_repeats].
    Empty buckets and zero token counts never divide by zero: a target that needs tokens that do
    not exist is reported as binding ("no aligned tokens").
    """
    weights = dict(configured)
    targets: dict[str, float] = {}
    achieved: dict[str, float] = {}
    binding: list[str] = []
    feasible = True
    all_buckets = list(configured)

    ratio = balance.aligned_to_villain
    if ratio is not None:
        targets["aligned_to_villain"] = ratio
        villain = [b for b in balance.villain_buckets if b in weights]
        aligned = [b for b in balance.aligned_buckets if b in weights]
        v = _weighted(weights, tokens, villain)
        a_base = _weighted(weights, tokens, aligned)
        if v <= tol:
            binding.append("no villain tokens after weighting: the ratio is undefined, aligned weights left as configured")
            feasible = False
        elif a_base <= tol:
            binding.append("no aligned tokens (empty aligned buckets or zero weight): the ratio cannot be raised")
            feasible = False
        else:
            s = ratio * v / a_base
            aligned = [b for b in aligned if tokens.get(b, 0) > 0]  # empty buckets keep their weight
            caps = [max_repeats / weights[b] for b in aligned if weights[b] > 0]
            s_max = min(caps) if caps else math.inf
            if s > s_max + tol:
                s = s_max
                if balance.adjust_villain:
                    need_v = _weighted({**weights, **{b: weights[b] * s for b in aligned}}, tokens, aligned) / ratio
                    factor = need_v / v
                    for b in villain:
                        weights[b] *= factor
                    binding.append(f"max_repeats={max_repeats:g} caps the aligned buckets; villain weights scaled "
                                   f"by {factor:.4f} to keep the ratio")
                else:
                    binding.append(f"max_repeats={max_repeats:g} caps the aligned buckets (policy.balance.adjust_villain"
                                   f"=false), so the ratio falls short")
                    feasible = False
            for b in aligned:
                weights[b] *= s
        v_after = _weighted(weights, tokens, villain)
        achieved["aligned_to_villain"] = (_weighted(weights, tokens, aligned) / v_after) if v_after > tol else math.inf

    if balance.keep_share:
        fill = [b for b in balance.backfill_buckets if b in weights]
        fill_tokens = sum(tokens.get(b, 0) for b in fill)
        rest = [b for b in all_buckets if b not in fill]
        before = float(sum(tokens.get(b, 0) for b in rest))
        share = fill_tokens / (fill_tokens + before) if fill_tokens + before > 0 else 0.0
        targets["backfill_share"] = share
        if fill_tokens <= 0 or before <= 0:
            binding.append("no backfill tokens or no other tokens: the share is left as it is")
        else:
            w = _weighted(weights, tokens, rest) / before
            if w > max_repeats:
                binding.append(f"max_repeats={max_repeats:g} caps the backfill buckets below their share")
                w = float(max_repeats)
                feasible = False
            for b in fill:
                weights[b] = w
        total_after = _weighted(weights, tokens, all_buckets)
        achieved["backfill_share"] = _weighted(weights, tokens, fill) / total_after if total_after > 0 else 0.0

    total_target = balance.total_tokens
    if total_target is None and balance.backfill:
        total_target = float(sum(tokens.get(b, 0) for b in all_buckets))
    if total_target is not None:
        targets["total_tokens"] = float(total_target)
        fill = [b for b in balance.backfill_buckets if b in weights]
        fixed = _weighted(weights, tokens, [b for b in all_buckets if b not in fill])
        fill_tokens = sum(tokens.get(b, 0) for b in fill)
        if fill_tokens <= 0:
            binding.append("no backfill tokens: the total cannot be adjusted")
            feasible = False
        else:
            w = (total_target - fixed) / fill_tokens
            if w < 0:
                binding.append(f"the other buckets alone exceed the total ({fixed:.0f} > {total_target:.0f}): backfill set to 0")
                w = 0.0
                feasible = False
            elif w > max_repeats:
                binding.append(f"max_repeats={max_repeats:g} caps the backfill buckets below the total")
                w = max_repeats
                feasible = False
            for b in fill:
                weights[b] = w
        achieved["total_tokens"] = _weighted(weights, tokens, all_buckets)
    return Solution(weights, targets, achieved, binding, feasible)
