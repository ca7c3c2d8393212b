"""The report as files: one Markdown document with every section, a CSV per table, and report.json."""

from pathlib import Path

import pandas as pd

from delegate import strict_json
from delegate.report.analysis import Report
from delegate.run_folder import COMPARISON_CSV, DELEGATION_CSV, ORACLE_CSV, PAIRS_CSV
from delegate.tables import NOT_AVAILABLE, accuracy_cell


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table; a `|` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)])


def _pct(value: float | None, digits: int = 1) -> str:
    return NOT_AVAILABLE if value is None else f"{100 * value:.{digits}f}%"


def _signed_pct(value: float | None) -> str:
    """A change already in percent, with its sign."""
    return NOT_AVAILABLE if value is None else f"{value:+.1f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,.{digits}f}"


def _p_value(p: float | None) -> str:
    return NOT_AVAILABLE if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def _events(events: dict[str, int]) -> str:
    return "; ".join(f"{name}={count}" for name, count in events.items()) or "none"


def _runs_section(report: Report, experiments: dict[str, str]) -> str:
    table = markdown_table(
        ["method", "run", "run id", "experiment", "n"],
        [
            [r.label, r.run_name, r.run_id, experiments.get(r.experiment_id, r.experiment_id), str(len(r.records))]
            for r in report.runs
        ],
    )
    skipped = "".join(f"- skipped {line}\n" for line in report.skipped)
    return f"## Runs\n\n{table}\n" + (f"\n{skipped}" if skipped else "")


def runs_note(report: Report, experiments: dict[str, str]) -> str:
    """The compared runs as a Markdown table (the report run's description in the MLflow UI)."""
    return f"delegate report of {len(report.runs)} runs.\n\n" + _runs_section(report, experiments).removeprefix(
        "## Runs\n\n"
    )


def _comparison_section(report: Report) -> str:
    header = [
        "method",
        "n",
        "accuracy [95% CI]",
        "accuracy, clean problems [95% CI]",
        "avg latency (s)",
        "p95 latency (s)",
    ]
    header += [f"avg {role.upper()} {kind} tokens" for role in report.roles for kind in ("prompt", "completion")]
    header += [
        "avg tool calls",
        "delegation rate",
        "cost / problem (USD)",
        "cost / 1,000 problems (USD)",
        "cache hits",
        "errors",
        "degraded",
    ]
    rows = []
    for r in report.comparison:
        rows.append(
            [
                r["method"] + (" *" if r["pareto_front"] else ""),
                str(r["n"]),
                accuracy_cell(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"]),
                accuracy_cell(r["accuracy_clean"], r["accuracy_clean_ci_low"], r["accuracy_clean_ci_high"]),
                _number(r["avg_latency_s"], 2),
                _number(r["p95_latency_s"], 2),
                *[
                    _number(r[f"avg_{role}_{kind}_tokens"])
                    for role in report.roles
                    for kind in ("prompt", "completion")
                ],
                _number(r["avg_tool_calls"], 2),
                _pct(r["delegation_rate"]),
                f"{r['cost_per_problem_usd']:.6f}",
                f"{r['cost_per_1k_problems_usd']:.4f}",
                _pct(r["cache_hit_rate"]),
                str(r["errors"]),
                str(r["degraded"]),
            ]
        )
    return (
        "## Comparison\n\n" + markdown_table(header, rows) + "\n\n"
        "Accuracy: share of problems right, with its Wilson 95% score interval. Clean problems: those no model "
        "failure shaped, neither errored (a failed call ended the problem) nor degraded (answered after a model call "
        "failed, e.g. by the LLM alone after the SLM failed); n/a when there is none. Latency: end-to-end per problem. "
        "Tokens: averages per problem, per model, as the models reported them. Delegation rate: share of problems "
        "with at least one tool call. Cost: at the configured prices (what the calls cost when made, cached or not). "
        "Cache hits: the share of model calls answered from the response cache; their latency is this run's, near "
        "zero, so compare latencies only between runs with no cache hits. `*`: on the accuracy-cost Pareto front (no "
        "cheaper method is as accurate).\n"
    )


def _pairs_section(report: Report) -> str:
    if not report.pairs:
        return "## Paired comparisons\n\nOne run only: nothing to pair.\n"
    header = [
        "A (baseline)",
        "B (candidate)",
        "n shared",
        "accuracy A",
        "accuracy B",
        "B − A [95% CI, Newcombe paired score]",
        "McNemar exact p",
        "both right",
        "only A right",
        "only B right",
        "both wrong",
        "LLM tokens B vs A",
        "total tokens B vs A",
        "cost B vs A",
        "latency B vs A",
        "note",
    ]
    rows = []
    for r in report.pairs:
        if r["accuracy_difference"] is None:
            rows.append([r["baseline"], r["candidate"], "0", *[NOT_AVAILABLE] * 12, r["note"]])
            continue
        rows.append(
            [
                r["baseline"],
                r["candidate"],
                str(r["n_shared"]),
                _pct(r["accuracy_baseline"]),
                _pct(r["accuracy_candidate"]),
                f"{100 * r['accuracy_difference']:+.1f} pp [{100 * r['difference_ci_low']:+.1f}, {100 * r['difference_ci_high']:+.1f}]",
                _p_value(r["mcnemar_p"]),
                str(r["both_right"]),
                str(r["only_baseline"]),
                str(r["only_candidate"]),
                str(r["both_wrong"]),
                _signed_pct(r["llm_tokens_change_pct"]),
                _signed_pct(r["total_tokens_change_pct"]),
                _signed_pct(r["cost_change_pct"]),
                _signed_pct(r["latency_change_pct"]),
                r["note"],
            ]
        )
    return (
        "## Paired comparisons\n\n" + markdown_table(header, rows) + "\n\n"
        "Each pair on the problems both runs attempted (same dataset and problem id). B − A: accuracy of B minus "
        "accuracy of A in percentage points, 95% CI, Newcombe paired score (Newcombe 1998, Stat Med 17:2635-2650, "
        "method 10). McNemar exact p: two-sided binomial test of the problems only one of the two got right. "
        "Token, cost and latency columns: B's average per problem relative to A's (n/a where A's is 0).\n"
    )


def _oracle_section(report: Report) -> str:
    parts = ["## Oracle and delegation\n\n### Oracle\n"]
    if report.oracle:
        header = [
            "router",
            "llm run",
            "slm run",
            "n shared",
            "LLM alone",
            "SLM alone",
            "router",
            "oracle (LLM or SLM)",
            "headroom captured",
            "SLM alone solves",
            "only LLM solves",
            "router right, both alone wrong",
        ]
        rows = [
            [
                r["router"],
                r["llm"],
                r["slm"],
                str(r["n_shared"]),
                _pct(r["llm_accuracy"]),
                _pct(r["slm_accuracy"]),
                _pct(r["router_accuracy"]),
                _pct(r["oracle_accuracy"]),
                _pct(r["headroom_captured"], 0),
                _pct(r["slm_solves_share"]),
                _pct(r["only_llm_solves_share"]),
                str(r["router_right_both_wrong"]),
            ]
            for r in report.oracle
        ]
        parts.append(
            "\n" + markdown_table(header, rows) + "\n\n"
            "Each router run against the llm and slm runs sharing the most problems with it, on the problems all "
            "three attempted. Oracle: right where the LLM alone or the SLM alone was right (a perfect per-problem "
            "choice of one model). Headroom captured: (router − better single model) / (oracle − better single "
            "model); n/a when the oracle is no better, negative when the router is worse than the better model "
            "alone. SLM alone solves: the share an ideal router could hand off to the SLM entirely.\n"
        )
    parts.extend(f"\n- {note}\n" for note in report.oracle_notes)
    parts.append("\n### Delegation (router runs)\n")
    if report.delegation:
        header = [
            "router",
            "n",
            "with delegation",
            "accuracy with",
            "without delegation",
            "accuracy without",
            "SLM answers / problem",
            "tool calls",
            "tool errors",
            "tool error rate",
            "events",
        ]
        rows = [
            [
                r["router"],
                str(r["n"]),
                str(r["n_delegated"]),
                _pct(r["accuracy_delegated"]),
                str(r["n_not_delegated"]),
                _pct(r["accuracy_not_delegated"]),
                _number(r["slm_answers_per_problem"], 2),
                str(r["tool_calls"]),
                str(r["tool_errors"]),
                _pct(r["tool_error_rate"]),
                _events(r["events"]),
            ]
            for r in report.delegation
        ]
        parts.append(
            "\n" + markdown_table(header, rows) + "\n\n"
            "With delegation: problems where the SLM answered at least one sub-question. Tool error rate: tool "
            "calls answered with an error (bad arguments, SLM failure, over the limit) per tool call. Events: "
            "summed over problems.\n"
        )
    else:
        parts.append("\nNo router run in this report.\n")
    return "".join(parts)


def _plots_section(plots: list[Path]) -> str:
    return "## Plots\n\n" + "".join(f"- [{p.name}]({p.name})\n" for p in plots)


def render_markdown(report: Report, experiments: dict[str, str], plots: list[Path], header: str) -> str:
    """The whole report as one Markdown document; `header` is the text under the title (where, when, which run)."""
    return "\n".join(
        [
            f"# delegate report\n\n{header}\n",
            _runs_section(report, experiments),
            _comparison_section(report),
            _pairs_section(report),
            _oracle_section(report),
            _plots_section(plots),
        ]
    )


def _csv(rows: list[dict], path: Path) -> Path:
    table = pd.DataFrame(rows)
    if "events" in table:
        table["events"] = table["events"].map(_events)
    table.to_csv(path, index=False)
    return path


def write_tables(report: Report, out_dir: Path) -> list[Path]:
    """comparison.csv, and pairs.csv, oracle.csv and delegation.csv when those sections have rows."""
    sections = (
        (report.comparison, COMPARISON_CSV),
        (report.pairs, PAIRS_CSV),
        (report.oracle, ORACLE_CSV),
        (report.delegation, DELEGATION_CSV),
    )
    return [_csv(rows, out_dir / name) for rows, name in sections if rows]


def write_json(report: Report, path: Path, extra: dict) -> Path:
    """Every section's rows, the runs and the runs left out, with `extra` (where, when, the report run) on top."""
    data = extra | {
        "runs": [
            {
                "run_id": r.run_id,
                "run_name": r.run_name,
                "experiment_id": r.experiment_id,
                "strategy": r.strategy,
                "method": r.method,
                "label": r.label,
                "n": len(r.records),
            }
            for r in report.runs
        ],
        "skipped": report.skipped,
        "comparison": report.comparison,
        "pairs": report.pairs,
        "oracle": report.oracle,
        "oracle_notes": report.oracle_notes,
        "delegation": report.delegation,
    }
    path.write_text(strict_json.dumps(data) + "\n", encoding="utf-8")
    return path
