"""The report's numbers from the runs' records: the comparison table, paired comparisons, oracle and delegation.

Every row is a flat dict (column → value, None where a value is undefined), so one row is one CSV line and one JSON
object. Accuracies and rates are proportions in [0, 1]; changes are percentages.
"""

import math
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from statistics import mean

from delegate.metrics import summarize
from delegate.records import SampleRecord, record_roles
from delegate.report.runs import LoadedRun
from delegate.report.stats import PairedCounts, mcnemar_exact_p, paired_difference_ci

NO_SHARED_PROBLEMS = "no shared problems (different datasets/samples)"
PAIR_STATISTICS = (
    "accuracy_baseline",
    "accuracy_candidate",
    "accuracy_difference",
    "difference_ci_low",
    "difference_ci_high",
    "mcnemar_p",
    "both_right",
    "only_baseline",
    "only_candidate",
    "both_wrong",
    "llm_tokens_change_pct",
    "total_tokens_change_pct",
    "cost_change_pct",
    "latency_change_pct",
)

CLEAN_ACCURACY = ("accuracy_clean", "accuracy_clean_ci_low", "accuracy_clean_ci_high")


@dataclass
class Report:
    """Everything the report shows: the runs, the runs left out, and one list of rows per section."""

    runs: list[LoadedRun]
    skipped: list[str]
    comparison: list[dict]
    pairs: list[dict]
    oracle: list[dict]
    delegation: list[dict]
    # Why the oracle section has no row for a router run (or none at all).
    oracle_notes: list[str]

    @property
    def roles(self) -> tuple[str, ...]:
        """Every model role the compared runs account for, in the order they first appear."""
        return run_roles(self.runs)


def run_roles(runs: list[LoadedRun]) -> tuple[str, ...]:
    """Every model role the records of `runs` account for, in the order they first appear."""
    return record_roles(record for run in runs for record in run.records)


def analyse(runs: list[LoadedRun], skipped: list[str]) -> Report:
    """All sections for `runs` (in the order they are given)."""
    oracle, notes = oracle_rows(runs)
    return Report(runs, skipped, comparison_rows(runs), pair_rows(runs), oracle, delegation_rows(runs), notes)


def comparison_rows(runs: list[LoadedRun]) -> list[dict]:
    """One row per run in the study's shape: n, accuracy with its Wilson 95% CI, the accuracy over the clean problems
    (neither errored nor degraded) with its CI (None when none is clean), average and p95 latency (s), average prompt
    and completion tokens per problem for each role, average tool calls, delegation rate (share of problems with at
    least one tool call), cost per problem and per 1,000 problems (USD), errored and degraded problems, and whether the
    run is on the accuracy-cost Pareto front."""
    rows = []
    roles = run_roles(runs)
    for run in runs:
        n = len(run.records)
        metrics = summarize(run.records)
        row = {
            "method": run.label,
            "run": run.run_name,
            "run_id": run.run_id,
            "strategy": run.strategy,
            "n": n,
            "accuracy": metrics["accuracy"],
            "accuracy_ci_low": metrics["accuracy_ci_low"],
            "accuracy_ci_high": metrics["accuracy_ci_high"],
            **{name: _defined(metrics[name]) for name in CLEAN_ACCURACY},
            "avg_latency_s": metrics["avg_latency_s"],
            "p95_latency_s": metrics["p95_latency_s"],
        }
        for role in roles:
            # A run whose config named no model for a role spent no tokens in it.
            row[f"avg_{role}_prompt_tokens"] = metrics.get(f"avg_{role}_prompt_tokens", 0.0)
            row[f"avg_{role}_completion_tokens"] = metrics.get(f"avg_{role}_completion_tokens", 0.0)
        cost_per_problem_usd = metrics["cost_usd"] / n
        row |= {
            "avg_tool_calls": metrics["avg_tool_calls"],
            "delegation_rate": metrics["delegation_rate"],
            "cost_per_problem_usd": cost_per_problem_usd,
            "cost_per_1k_problems_usd": 1000 * cost_per_problem_usd,
            "cache_hit_rate": metrics["cache_hit_rate"],
            "errors": int(metrics["n_errors"]),
            "degraded": int(metrics["n_degraded"]),
        }
        rows.append(row)
    front = pareto_front([(r["cost_per_problem_usd"], r["accuracy"]) for r in rows])
    for index, row in enumerate(rows):
        row["pareto_front"] = index in front
    return rows


def _defined(value: float) -> float | None:
    """None for NaN (a metric undefined for this run), so a row's JSON stays JSON."""
    return None if math.isnan(value) else value


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points no other point beats: none cheaper or as cheap is at least as accurate.

    In order of rising cost (and accuracy); of identical points only the first counts.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best_accuracy = [], float("-inf")
    for index in order:
        if points[index][1] > best_accuracy:
            front.append(index)
            best_accuracy = points[index][1]
    return front


def change_pct(baseline: float, candidate: float) -> float | None:
    """(candidate − baseline) / baseline in percent; None when the baseline is 0."""
    return None if baseline == 0 else 100 * (candidate - baseline) / baseline


def _total_tokens(record: SampleRecord) -> int:
    return sum(usage.tokens for usage in record.usage.values())


def pair_rows(runs: list[LoadedRun]) -> list[dict]:
    """For every pair of runs (the earlier one the baseline A, the later the candidate B), on the problems both
    solved (same dataset and id): accuracies, B − A with Newcombe's paired 95% CI, McNemar's exact p, the 2×2 table,
    and B's change in LLM tokens, total tokens, cost and latency per problem relative to A, in percent.

    A pair with no shared problem gets only its note; a pair sharing some problems says how many.
    """
    rows = []
    for a, b in combinations(runs, 2):
        problems_a, problems_b = a.problems, b.problems
        shared = sorted(problems_a.keys() & problems_b.keys())
        row = {
            "baseline": a.label,
            "candidate": b.label,
            "baseline_run_id": a.run_id,
            "candidate_run_id": b.run_id,
            "n_baseline": len(problems_a),
            "n_candidate": len(problems_b),
            "n_shared": len(shared),
        }
        if not shared:
            rows.append(row | dict.fromkeys(PAIR_STATISTICS) | {"note": NO_SHARED_PROBLEMS})
            continue
        records_a = [problems_a[key] for key in shared]
        records_b = [problems_b[key] for key in shared]
        counts = PairedCounts.from_outcomes([r.correct for r in records_a], [r.correct for r in records_b])
        low, high = paired_difference_ci(counts)

        # Tokens and cost only over the problems that ran to their end with every call's usage reported, in both
        # runs: an unknown count is not zero, nor is a problem cut off by a failure (the metrics leave them out too).
        reported = [
            i for i, (ra, rb) in enumerate(zip(records_a, records_b)) if ra.usage_complete and rb.usage_complete
        ]

        # A latency is this run's only when no call was replayed from the response cache (a replay takes no time).
        timed = [
            i
            for i, (ra, rb) in enumerate(zip(records_a, records_b))
            if not any(u.cache_hits for u in (*ra.usage.values(), *rb.usage.values()))
        ]

        def change(value, indices=range(len(shared))) -> float | None:
            if not indices:
                return None
            return change_pct(
                float(mean(value(records_a[i]) for i in indices)), float(mean(value(records_b[i]) for i in indices))
            )

        row |= {
            "accuracy_baseline": counts.accuracy_a,
            "accuracy_candidate": counts.accuracy_b,
            "accuracy_difference": counts.difference,
            "difference_ci_low": low,
            "difference_ci_high": high,
            "mcnemar_p": mcnemar_exact_p(counts),
            "both_right": counts.both_right,
            "only_baseline": counts.only_a,
            "only_candidate": counts.only_b,
            "both_wrong": counts.both_wrong,
            # The study's own measure: what the big model spent (0 for a run without an LLM).
            "llm_tokens_change_pct": change(lambda r: r.usage["llm"].tokens if "llm" in r.usage else 0, reported),
            "total_tokens_change_pct": change(_total_tokens, reported),
            "cost_change_pct": change(lambda r: r.cost_usd, reported),
            "latency_change_pct": change(lambda r: r.latency_s, timed),
            "note": "; ".join(
                note
                for note, applies in (
                    (
                        f"on the {len(shared)} shared problems ({len(problems_a)} and {len(problems_b)} in the runs)",
                        not len(shared) == len(problems_a) == len(problems_b),
                    ),
                    (
                        f"tokens and cost over the {len(reported)} problems that ran to their end with every call's usage reported",
                        len(reported) < len(shared),
                    ),
                    (
                        f"latency over the {len(timed)} problems with no call replayed from the cache",
                        len(timed) < len(shared),
                    ),
                )
                if applies
            ),
        }
        rows.append(row)
    return rows


def _largest_overlap(run: LoadedRun, others: list[LoadedRun]) -> LoadedRun | None:
    """The run among `others` sharing the most problems with `run` (the first on a tie), None if none shares any."""
    keys = run.problems.keys()
    best = max(others, key=lambda other: len(keys & other.problems.keys()), default=None)
    return best if best is not None and keys & best.problems.keys() else None


def oracle_rows(runs: list[LoadedRun]) -> tuple[list[dict], list[str]]:
    """Per router run, against the llm run and the slm run sharing the most problems with it, on the problems all
    three attempted: each one's accuracy; the oracle's (right where the LLM or the SLM alone was right); the share of
    the headroom above the better single model that the router captures, (router − best) / (oracle − best), None when
    the oracle is no better; the share the SLM alone solves (what an ideal router could hand off whole); the share only
    the LLM solves; and problems the router got right where both models alone were wrong.

    Returns the rows and a note for each router run (or the whole section) that could not be analysed.
    """
    routers = [r for r in runs if r.strategy == "router"]
    llms = [r for r in runs if r.strategy == "llm"]
    slms = [r for r in runs if r.strategy == "slm"]
    if not (routers and llms and slms):
        have = ", ".join(f"{len(group)} {name}" for name, group in (("llm", llms), ("slm", slms), ("router", routers)))
        return [], [f"needs an llm, an slm and a router run on the same problems; this report has {have} run(s)"]
    rows, notes = [], []
    for router in routers:
        llm, slm = _largest_overlap(router, llms), _largest_overlap(router, slms)
        shared = sorted(
            router.problems.keys() & (llm.problems.keys() if llm else set()) & (slm.problems.keys() if slm else set())
        )
        if not shared:
            notes.append(f"{router.label}: no problems shared with both an llm and an slm run")
            continue
        llm_right = [llm.problems[key].correct for key in shared]
        slm_right = [slm.problems[key].correct for key in shared]
        router_right = [router.problems[key].correct for key in shared]
        n = len(shared)
        llm_accuracy, slm_accuracy, router_accuracy = sum(llm_right) / n, sum(slm_right) / n, sum(router_right) / n
        oracle_accuracy = sum(l or s for l, s in zip(llm_right, slm_right)) / n
        best = max(llm_accuracy, slm_accuracy)
        rows.append(
            {
                "router": router.label,
                "llm": llm.label,
                "slm": slm.label,
                "n_shared": n,
                "llm_accuracy": llm_accuracy,
                "slm_accuracy": slm_accuracy,
                "router_accuracy": router_accuracy,
                "oracle_accuracy": oracle_accuracy,
                "headroom_captured": None
                if oracle_accuracy == best
                else (router_accuracy - best) / (oracle_accuracy - best),
                "slm_solves_share": slm_accuracy,
                "only_llm_solves_share": sum(l and not s for l, s in zip(llm_right, slm_right)) / n,
                "router_right_both_wrong": sum(
                    r and not (l or s) for r, l, s in zip(router_right, llm_right, slm_right)
                ),
            }
        )
    return rows, notes


def _accuracy(records: list[SampleRecord]) -> float | None:
    return sum(r.correct for r in records) / len(records) if records else None


def delegation_rows(runs: list[LoadedRun]) -> list[dict]:
    """Per router run, over all its problems: accuracy on problems with at least one answered delegation and on the
    others (None where there are none), SLM sub-answers per problem, tool calls, tool errors (count, and per tool call:
    None without tool calls) and the record events summed over problems."""
    rows = []
    for run in (r for r in runs if r.strategy == "router"):
        delegated = [r for r in run.records if r.delegated]
        direct = [r for r in run.records if not r.delegated]
        delegations = [d for r in run.records for d in r.delegations]
        tool_errors = sum(d.error is not None for d in delegations)
        events = Counter()
        for record in run.records:
            events.update(record.events)
        rows.append(
            {
                "router": run.label,
                "run_id": run.run_id,
                "n": len(run.records),
                "n_delegated": len(delegated),
                "accuracy_delegated": _accuracy(delegated),
                "n_not_delegated": len(direct),
                "accuracy_not_delegated": _accuracy(direct),
                "slm_answers_per_problem": sum(d.answered for d in delegations) / len(run.records),
                "tool_calls": sum(r.tool_calls for r in run.records),
                "tool_errors": tool_errors,
                "tool_error_rate": tool_errors / len(delegations) if delegations else None,
                "events": dict(sorted(events.items())),
            }
        )
    return rows
