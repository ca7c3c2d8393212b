"""Plain-text cells and the short table a job and a sweep print at their end: one line per run, in the reference study's shape."""

import math

import pandas as pd

# What a table shows for a value that is undefined for a run.
NOT_AVAILABLE = "n/a"


def accuracy_cell(accuracy: float, low: float, high: float) -> str:
    """'62.5% [30.6%, 86.3%]': an accuracy with its 95% interval; 'n/a' when it is undefined (NaN or None)."""
    if accuracy is None or math.isnan(accuracy):
        return NOT_AVAILABLE
    return f"{accuracy:.1%} [{low:.1%}, {high:.1%}]"


def number_cell(value: float | None, digits: int) -> str:
    """`value` with `digits` decimals; 'n/a' when it is undefined (NaN or None: e.g. no problem reported usage)."""
    if value is None or math.isnan(value):
        return NOT_AVAILABLE
    return f"{value:.{digits}f}"


def summary_roles(rows: list[dict]) -> list[str]:
    """The model roles the rows' metrics name (`avg_<role>_tokens`, from `n_<role>_usage_missing`), in order."""
    found: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith("n_") and key.endswith("_usage_missing") and key != "n_usage_missing":
                found[key.removeprefix("n_").removesuffix("_usage_missing")] = None
    return list(found)


def summary_table(rows: list[dict]) -> str:
    """One row per run: `rows` hold a `method` label and the metrics of `delegate.metrics.summarize`.

    `accuracy_clean` is the accuracy over the problems no model failure shaped; `errors` and `degraded` count the
    problems a failed call ended and those answered after one. One `avg_<role>_tokens` column per model role the
    rows name (a run without that role spent none in it).
    """
    roles = summary_roles(rows)
    table = pd.DataFrame(
        {
            "run": r.get("run_name", ""),
            "method": r["method"],
            "accuracy": accuracy_cell(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"]),
            "accuracy_clean": accuracy_cell(
                r["accuracy_clean"], r["accuracy_clean_ci_low"], r["accuracy_clean_ci_high"]
            ),
            "avg_latency_s": f"{r['avg_latency_s']:.2f}",
            **{f"avg_{role}_tokens": number_cell(r.get(f"avg_{role}_tokens", 0.0), 1) for role in roles},
            "avg_tool_calls": f"{r['avg_tool_calls']:.2f}",
            "cost_usd": f"{r['cost_usd']:.4f}",
            "n": int(r["n_samples"]),
            "errors": int(r["n_errors"]),
            "degraded": int(r["n_degraded"]),
        }
        for r in rows
    )
    return table.to_string(index=False)
