"""The short table a job and a sweep print at their end: one line per run, in the reference study's shape."""

import pandas as pd


def summary_table(rows: list[dict]) -> str:
    """One row per run: `rows` hold a `method` label and the metrics of `delegate.metrics.summarize`."""
    table = pd.DataFrame(
        {
            "run": r.get("run_name", ""),
            "method": r["method"],
            "accuracy": f"{r['accuracy']:.1%} [{r['accuracy_ci_low']:.1%}, {r['accuracy_ci_high']:.1%}]",
            "avg_latency_s": f"{r['avg_latency_s']:.2f}",
            "avg_llm_tokens": f"{r['avg_llm_tokens']:.1f}",
            "avg_slm_tokens": f"{r['avg_slm_tokens']:.1f}",
            "avg_tool_calls": f"{r['avg_tool_calls']:.2f}",
            "cost_usd": f"{r['cost_usd']:.4f}",
            "n": int(r["n_samples"]),
            "errors": int(r["n_errors"]),
        }
        for r in rows
    )
    return table.to_string(index=False)
