"""Mix: ``documents`` + ``labels`` + a policy -> ``mix`` and ``mix_report``.

    .venv/bin/spark-submit jobs/mix.py policy=balance policy.balance.aligned_to_villain=3 mix.name=bal3

Steps (each documented where it is implemented):

1. bucket every labelled document (first matching predicate of the policy, in order);
2. emit the text each row will carry (tags, rewrites; ``udfs.augment``) and count its tokens;
3. aggregate tokens per bucket (a Spark aggregation: documents never reach the driver) and solve
   the per-bucket weights (:func:`counterweight.policy.solve`);
4. realise weights as whole repeats, deterministically from u = sha256(doc_id, seed, purpose);
5. pair villain documents with aligned ones (``pair`` action);
6. write ``mix`` (partitioned by mix_name and bucket, replacing only this mix's partitions) and
   ``mix_report``, each as one commit recording the resolved policy and the input versions.

Same inputs and policy give identical mix content on any number of partitions.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone

from counterweight import columns as C
from counterweight.config import to_plain
from counterweight.errors import BadInputError, ConfigError, ReconciliationError
from counterweight.policy import Action, Rounding, solve
from counterweight.progress import stage
from udfs import augment, tokens
from udfs.sampling import HEX_DIGITS

log = logging.getLogger(__name__)

REPEAT_PURPOSE = "repeat"
PAIR_PURPOSE = "pair"


def unit_hash_col(doc_id_col, seed: int, purpose: str):
    """Spark column equal to :func:`udfs.sampling.unit_hash` (sha256 -> [0, 1))."""
    from pyspark.sql import functions as F

    digest = F.sha2(F.concat(doc_id_col, F.lit(f"\x1f{seed}\x1f{purpose}")), 256)
    return F.conv(F.substring(digest, 1, HEX_DIGITS), 16, 10).cast("double") / F.lit(float(1 << (4 * HEX_DIGITS)))


def bucket_col(policy):
    """Spark column naming each row's bucket: the first bucket whose predicate matches."""
    from pyspark.sql import functions as F

    expr = None
    for b in reversed(list(policy.buckets)):
        conds = [F.lit(True)]
        if b.when.topic:
            conds.append(F.col(C.TOPIC).isin(*b.when.topic))
        if b.when.stance:
            conds.append(F.col(C.STANCE).isin(*b.when.stance))
        if b.when.source:
            conds.append(F.col(C.SOURCE).isin(*b.when.source))
        for col, value in b.when.min.items():
            conds.append(F.coalesce(F.col(col) >= F.lit(float(value)), F.lit(False)))
        for col, value in b.when.max.items():
            conds.append(F.coalesce(F.col(col) < F.lit(float(value)), F.lit(False)))
        cond = conds[0]
        for c in conds[1:]:
            cond = cond & c
        expr = F.when(cond, F.lit(b.name)) if expr is None else F.when(cond, F.lit(b.name)).otherwise(expr)
    return expr


def augmentation_plan(policy) -> dict:
    plan = {}
    for b in policy.buckets:
        if b.action == Action.tag:
            plan[b.name] = {"action": "tag", "token": b.tag.token, "untagged_fraction": float(b.tag.untagged_fraction),
                            "scope": b.tag.scope.value, "window_threshold": float(b.tag.window_threshold)}
        elif b.action == Action.rewrite:
            plan[b.name] = {"action": "rewrite", "callable": b.rewrite.callable,
                            "options": {str(k): str(v) for k, v in b.rewrite.options.items()}}
    return plan


def configured_weights(policy) -> dict[str, float]:
    return {b.name: (0.0 if b.action == Action.drop else float(b.weight)) for b in policy.buckets}


def realise(df, weights: dict[str, float], policy, exact_buckets: set[str]):
    """Add ``weight`` and ``repeats``: floor(w) plus one more for a deterministic share frac(w).

    * exact buckets: documents in order of u = sha256(doc_id, seed, "repeat"); the extra repeat
      goes to the shortest prefix whose tokens reach frac(w) x bucket tokens (a document is in if
      its midpoint is before the target), so realised tokens are within half a document of the
      target, and a lower rate's prefix is contained in a higher rate's.
    * other buckets: independently, u < frac(w) (nested too; precise for large buckets).
    Repeats never exceed floor(policy.max_repeats).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    weight_map = F.create_map(*[x for b, w in weights.items() for x in (F.lit(b), F.lit(float(w)))])
    df = df.withColumn(C.WEIGHT, weight_map[F.col(C.BUCKET)])
    df = df.withColumn("_u", unit_hash_col(F.col(C.DOC_ID), policy.seed, REPEAT_PURPOSE))
    frac = F.col(C.WEIGHT) - F.floor(F.col(C.WEIGHT))
    independent = (F.col("_u") < frac).cast("int")
    if exact_buckets:
        order = Window.partitionBy(C.BUCKET).orderBy("_u", C.DOC_ID)
        running = F.sum(C.TOKENS).over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow))
        total = F.sum(C.TOKENS).over(Window.partitionBy(C.BUCKET))
        midpoint = running - F.col(C.TOKENS) / 2.0
        exact = (midpoint < frac * total).cast("int")
        extra = F.when(F.col(C.BUCKET).isin(*sorted(exact_buckets)), exact).otherwise(independent)
    else:
        extra = independent
    cap = int(math.floor(policy.max_repeats))
    repeats = F.least(F.floor(F.col(C.WEIGHT)).cast("int") + extra, F.lit(cap))
    return df.withColumn(C.REPEATS, repeats.cast("int")).drop("_u")


def assign_pairs(df, policy, spark):
    """``pair`` buckets: each kept document gets a partner from ``with_bucket`` (kept ones).

    Villain documents in order of u(doc, "pair") take partners in order of u(partner, "pair"),
    cycling when there are fewer partners. pair_id = sha256 of both ids.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = df.withColumn(C.PAIR_ID, F.lit(None).cast("string")).withColumn(C.PAIR_DOC_ID, F.lit(None).cast("string"))
    for b in policy.buckets:
        if b.action != Action.pair:
            continue
        u = unit_hash_col(F.col(C.DOC_ID), policy.seed, PAIR_PURPOSE)
        villains = (df.where((F.col(C.BUCKET) == b.name) & (F.col(C.REPEATS) > 0)).select(C.DOC_ID)
                    .withColumn("_rank", F.row_number().over(Window.orderBy(u, F.col(C.DOC_ID))) - 1))
        partners = (df.where((F.col(C.BUCKET) == b.pair.with_bucket) & (F.col(C.REPEATS) > 0)).select(C.DOC_ID)
                    .withColumn("_prank", F.row_number().over(Window.orderBy(u, F.col(C.DOC_ID))) - 1))
        n_partners = partners.count()
        if n_partners == 0:
            log.warning("bucket %s pairs with %s, which keeps no documents: no pairs", b.name, b.pair.with_bucket)
            continue
        pairs = (villains.withColumn("_prank", F.col("_rank") % F.lit(n_partners))
                 .join(partners.withColumnRenamed(C.DOC_ID, "_partner"), "_prank")
                 .select(F.col(C.DOC_ID).alias("_vid"), "_partner"))
        df = (df.join(pairs, df[C.DOC_ID] == pairs["_vid"], "left")
              .withColumn(C.PAIR_DOC_ID, F.coalesce(F.col(C.PAIR_DOC_ID), F.col("_partner")))
              .withColumn(C.PAIR_ID, F.coalesce(F.col(C.PAIR_ID), F.when(
                  F.col("_partner").isNotNull(), F.sha2(F.concat_ws("\x1f", F.col(C.DOC_ID), F.col("_partner")), 256))))
              .drop("_vid", "_partner"))
    return df


def run(ctx) -> dict:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, LongType, StructField, StructType

    from counterweight.label import model_spec

    cfg, spark, lake = ctx.cfg, ctx.spark, ctx.lake
    policy = cfg.policy
    mix_name = cfg.mix.name
    lake.require(C.DOCUMENTS)
    lake.require(C.LABELS)
    now = datetime.now(timezone.utc)
    stance_spec = None
    if any(b.action == Action.tag and b.tag.scope.value == "window" for b in policy.buckets):
        stance_spec = model_spec("stance", cfg.model)

    with stage("mix: bucket documents") as st:
        docs = lake.read(C.DOCUMENTS).select(C.DOC_ID, C.SOURCE, C.TEXT)
        labels = lake.read(C.LABELS).drop(C.RUN_ID, C.TEXT_HASH, C.LABELED_AT)
        joined = docs.join(labels, C.DOC_ID, "left")
        unlabelled = joined.where(F.col(C.TOPIC).isNull()).count()
        n_docs = docs.count()
        if unlabelled and cfg.mix.on_unlabelled == "fail":
            raise BadInputError(f"{unlabelled} of {n_docs} documents have no labels; run the label job first "
                                f"(or set mix.on_unlabelled=skip to leave them out of the mix)")
        labelled = joined.where(F.col(C.TOPIC).isNotNull()).withColumn(C.BUCKET, bucket_col(policy))
        st.rows = n_docs - unlabelled

    with stage("mix: emit text and count tokens") as st:
        plan = augmentation_plan(policy)
        if plan:
            schema = StructType(labelled.schema.fields + [StructField(augment.TAGGED, BooleanType())])
            seed, window_words = policy.seed, cfg.model.window_words
            labelled = labelled.mapInArrow(
                lambda it: augment.augment_batches(it, plan, seed, C.DOC_ID, C.BUCKET, C.TEXT, stance_spec,
                                                   window_words), schema)
        else:
            labelled = labelled.withColumn(augment.TAGGED, F.lit(False))
        tok = policy.tokenizer
        tok_path = tok.path
        schema = StructType(labelled.schema.fields + [StructField(C.TOKENS, LongType())])
        counted = labelled.mapInArrow(
            lambda it: tokens.token_batches(it, C.TEXT, C.TOKENS, tok.kind, tok.tokens_per_word, tok_path), schema)
        counted = counted.persist(StorageLevel.DISK_ONLY)
        stats = {r[C.BUCKET]: (r["docs"], r["tokens"]) for r in
                 counted.groupBy(C.BUCKET).agg(F.count("*").alias("docs"), F.sum(C.TOKENS).alias("tokens")).collect()}
        st.rows = sum(d for d, _ in stats.values())
        st.tokens = sum(t for _, t in stats.values())

    names = [b.name for b in policy.buckets]
    tokens_before = {b: int(stats.get(b, (0, 0))[1] or 0) for b in names}
    docs_before = {b: int(stats.get(b, (0, 0))[0]) for b in names}
    solution = solve(configured_weights(policy), tokens_before, policy.balance, policy.max_repeats)
    for line in solution.binding:
        print(f"[counterweight] mix constraint: {line}")
    if policy.strict and not solution.feasible:
        raise ConfigError(f"policy '{policy.name}' targets cannot be met (policy.strict=true): "
                          + "; ".join(solution.binding) + f"; achieved {solution.achieved}")

    with stage("mix: realise repeats") as st:
        exact = set()
        if policy.rounding == Rounding.exact:
            exact = {b for b in names if docs_before[b] <= policy.exact_max_docs}
        realised = realise(counted, solution.weights, policy, exact)
        realised = assign_pairs(realised, policy, spark)
        label_cols = [c for c in labels.columns if c != C.DOC_ID]
        mix = realised.select(
            F.lit(mix_name).alias(C.MIX_NAME), C.BUCKET, C.DOC_ID, C.SOURCE, C.WEIGHT, C.REPEATS, C.TOKENS, C.TEXT,
            augment.TAGGED, C.PAIR_ID, C.PAIR_DOC_ID, *label_cols, F.lit(ctx.run_id).alias(C.RUN_ID),
        ).persist(StorageLevel.DISK_ONLY)
        after = {r[C.BUCKET]: r for r in mix.groupBy(C.BUCKET).agg(
            F.sum(F.when(F.col(C.REPEATS) > 0, 1).otherwise(0)).alias("docs_after"),
            F.sum(F.col(C.REPEATS) * F.col(C.TOKENS)).alias("tokens_after"),
            F.sum(F.col(C.WEIGHT) * F.col(C.TOKENS)).alias("weighted"),
            F.max(C.REPEATS).alias("max_repeats"),
            F.count("*").alias("rows")).collect()}
        st.rows = sum(r["rows"] for r in after.values())
        st.tokens = sum(int(r["tokens_after"] or 0) for r in after.values())

    rows_total = sum(r["rows"] for r in after.values())
    if rows_total != n_docs - unlabelled:
        raise ReconciliationError(f"mix has {rows_total} rows for {n_docs - unlabelled} labelled documents")
    total_before = sum(tokens_before.values())
    total_after = sum(int(r["tokens_after"] or 0) for r in after.values())
    policy_plain = to_plain(cfg)["policy"]
    report_rows = []
    for position, b in enumerate(policy.buckets):
        r = after.get(b.name)
        t_after = int(r["tokens_after"] or 0) if r else 0
        report_rows.append((
            mix_name, b.name, position, b.action.value, docs_before[b.name], tokens_before[b.name],
            float(configured_weights(policy)[b.name]), float(solution.weights[b.name]),
            float(r["weighted"] or 0.0) if r else 0.0, int(r["docs_after"] or 0) if r else 0, t_after,
            int(r["max_repeats"] or 0) if r else 0,
            tokens_before[b.name] / total_before if total_before else 0.0,
            t_after / total_after if total_after else 0.0,
            json.dumps(solution.targets, sort_keys=True), json.dumps(solution.achieved, sort_keys=True),
            "; ".join(solution.binding), ctx.run_id, now,
        ))
    report = spark.createDataFrame(report_rows, (
        f"{C.MIX_NAME} string, {C.BUCKET} string, position int, action string, docs_before long, tokens_before long, "
        "weight_configured double, weight double, weighted_tokens double, docs_after long, tokens_after long, "
        "max_repeats int, token_share_before double, token_share_after double, targets string, achieved string, "
        f"binding string, {C.RUN_ID} string, created_at timestamp"))
    summary = {
        "mix_name": mix_name,
        "policy": policy.name,
        "documents": n_docs,
        "unlabelled_skipped": unlabelled,
        "tokens_before": total_before,
        "tokens_after": total_after,
        "weights": {k: round(v, 6) for k, v in solution.weights.items()},
        "targets": solution.targets,
        "achieved": solution.achieved,
        "binding": solution.binding,
    }
    extra = {"mix": summary, "policy": policy_plain}
    with stage("mix: write mix and mix_report") as st:
        result = lake.overwrite(C.MIX, mix, partition_by=[C.MIX_NAME, C.BUCKET], extra=extra,
                                replace_partitions={C.MIX_NAME: [mix_name]})
        report_result = lake.overwrite(C.MIX_REPORT, report, partition_by=[C.MIX_NAME], extra=extra,
                                       replace_partitions={C.MIX_NAME: [mix_name]})
        st.rows = result.rows
    counted.unpersist()
    mix.unpersist()
    summary["mix_version"] = result.version
    summary["mix_report_version"] = report_result.version
    print(f"[counterweight] mix '{mix_name}' ({policy.name}): {total_before:,} tokens before, {total_after:,} after")
    for row in report_rows:
        print(f"  {row[1]:<22} {row[3]:<9} docs {row[4]:>6} -> {row[9]:>6}  tokens {row[5]:>10,} -> {row[10]:>10,}"
              f"  weight {row[7]:.4f}")
    return summary
