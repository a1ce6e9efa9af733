"""Report: a static page for people who do not open notebooks.

    .venv/bin/spark-submit jobs/report.py mix.name=default            # -> <lake.root>/../reports/default/
    .venv/bin/spark-submit jobs/report.py mix.name=bal3 report.path=/www/mixes/bal3

Writes ``summary.json`` (composition, targets vs achieved, label counts, lineage), PNG charts and an
``index.html`` showing the same facts as ``notebooks/inspect_mix``. Reads tables only.
"""

from __future__ import annotations

import html
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from counterweight import inspection
from counterweight.progress import stage


def _table(df) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:,.4f}", border=0, classes="t")


def run(ctx) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, lake = ctx.cfg, ctx.lake
    mix_name = cfg.mix.name
    out = Path(cfg.report.path or os.path.join(os.path.dirname(lake.root), "reports", mix_name)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with stage("report: gather") as st:
        comp = inspection.composition(lake, mix_name)
        tgt = inspection.targets(comp)
        hist = inspection.stance_histograms(lake)
        counts = inspection.label_counts(lake)
        sample = inspection.samples(lake, mix_name, per_bucket=cfg.report.samples_per_bucket)
        lin = inspection.lineage(lake, mix_name)
        st.rows = int(comp["docs_before"].sum())
    with stage("report: charts and page"):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        inspection.plot_composition(comp, axes[0], "tokens")
        inspection.plot_composition(comp, axes[1], "docs")
        fig.tight_layout()
        fig.savefig(out / "composition.png", dpi=110)
        plt.close(fig)
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        inspection.plot_stance_histograms(hist, axes)
        fig.tight_layout()
        fig.savefig(out / "stance_histograms.png", dpi=110)
        plt.close(fig)
        summary = {
            "mix_name": mix_name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "lake": lake.root,
            "tokens_before": int(comp["tokens_before"].sum()),
            "tokens_after": int(comp["tokens_after"].sum()),
            "composition": json.loads(comp.drop(columns=["created_at"], errors="ignore").to_json(orient="records")),
            "targets": json.loads(tgt.to_json(orient="records")),
            "binding": comp.iloc[0]["binding"],
            "label_counts": json.loads(counts.to_json(orient="records")),
            "lineage": lin,
            "charts": ["composition.png", "stance_histograms.png"],
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        shown = comp[["bucket", "action", "docs_before", "docs_after", "tokens_before", "tokens_after",
                      "weight_configured", "weight", "token_share_before", "token_share_after", "max_repeats"]]
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Mix {html.escape(mix_name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table.t{{border-collapse:collapse}}
table.t td,table.t th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}} pre{{background:#f6f6f6;padding:1em;
white-space:pre-wrap}}</style></head><body>
<h1>Mix <code>{html.escape(mix_name)}</code></h1>
<p>{summary['tokens_before']:,} tokens before, {summary['tokens_after']:,} after. Lake: <code>{html.escape(lake.root)}</code>.
Mix table version {lin['mix_version']}, run {html.escape(str(lin['run_id']))}.</p>
<h2>Composition by bucket</h2>{_table(shown)}
<img src="composition.png" alt="composition by bucket" width="100%">
<h2>Targets vs achieved</h2>{_table(tgt) if len(tgt) else '<p>This policy sets no targets.</p>'}
<p>Binding constraints: {html.escape(summary['binding'] or 'none')}</p>
<h2>Stance scores by topic</h2><img src="stance_histograms.png" alt="stance score histograms" width="100%">
<h2>Labels</h2>{_table(counts)}
<h2>Sample documents</h2>{_table(sample)}
<h2>Lineage</h2><pre>{html.escape(json.dumps(lin, indent=2, default=str))}</pre>
</body></html>"""
        (out / "index.html").write_text(page, encoding="utf-8")
    print(f"[counterweight] report for mix '{mix_name}': {out / 'index.html'}")
    return {"path": str(out / "index.html"), "report_path": str(out / "index.html"), "tokens_before": summary["tokens_before"],
            "tokens_after": summary["tokens_after"]}
