"""Aggregate sample records into the run's metrics (names are MLflow metric names)."""

import math
from statistics import mean

import numpy as np

from delegate.records import SampleRecord, record_roles


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: sane at 0%, 100% and small n, unlike the normal approximation.

    Wilson (1927), "Probable inference, the law of succession, and statistical inference", JASA 22:209-212.
    """
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    # At 0% and 100% the bound is exactly 0 or 1; floating point would leave it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return low, high


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _mean_or_nan(values: list[float]) -> float:
    return mean(values) if values else math.nan


def summarize(records: list[SampleRecord]) -> dict[str, float]:
    """Accuracy with its interval, latency percentiles, average tokens per model role, tool use, cost and counts.

    Per role the records account for (`record_roles`: every model of the run's config, e.g. llm and slm):
    `avg_<role>_prompt_tokens`, `avg_<role>_completion_tokens`, `avg_<role>_tokens`, `avg_<role>_reasoning_tokens`,
    `avg_<role>_provider_cached_prompt_tokens`, `n_<role>_usage_missing` and `avg_<role>_latency_s` (seconds of that
    role's calls per problem).

    `accuracy` is over every problem. `accuracy_clean` (with its Wilson interval) is over the clean problems only,
    those no model failure shaped (neither errored nor degraded); NaN when none is clean. `n_errors` counts the
    problems a failed model call ended, `n_degraded` those answered after a model call failed (e.g. the LLM alone,
    after the SLM failed).

    Token averages are per problem, over the problems that ran to their end (no `error`: a problem cut off by a
    failed call spent only part of its tokens) and whose calls in that role all reported usage: a problem with a
    call whose server sent no token counts is left out of that role's `avg_<role>_*_tokens` (NaN when none is
    left), and `n_<role>_usage_missing` / `n_usage_missing` count such calls. `cost_usd` sums the calls that
    reported usage (a lower bound when `n_usage_missing` > 0). `accuracy_<scorer>`: each scorer beyond the
    primary (`data.scorers`), over the problems it judged.
    """
    n = len(records)
    if n == 0:
        raise ValueError("no sample records to summarize")
    correct = sum(r.correct for r in records)
    low, high = wilson_interval(correct, n)
    clean = [r for r in records if r.clean]
    correct_clean = sum(r.correct for r in clean)
    clean_low, clean_high = wilson_interval(correct_clean, len(clean)) if clean else (math.nan, math.nan)
    latencies_s = [r.latency_s for r in records]
    metrics = {
        "accuracy": correct / n,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "accuracy_clean": correct_clean / len(clean) if clean else math.nan,
        "accuracy_clean_ci_low": clean_low,
        "accuracy_clean_ci_high": clean_high,
        "avg_latency_s": mean(latencies_s),
        "p50_latency_s": float(np.percentile(latencies_s, 50)),
        "p95_latency_s": float(np.percentile(latencies_s, 95)),
    }
    n_usage_missing = 0
    roles = record_roles(records)
    for role in roles:
        counted = [r.usage[role] for r in records if r.error is None and r.usage[role].usage_missing_calls == 0]
        prompt = _mean_or_nan([u.prompt_tokens for u in counted])
        completion = _mean_or_nan([u.completion_tokens for u in counted])
        missing = sum(r.usage[role].usage_missing_calls for r in records)
        n_usage_missing += missing
        metrics |= {
            f"avg_{role}_prompt_tokens": prompt,
            f"avg_{role}_completion_tokens": completion,
            f"avg_{role}_tokens": prompt + completion,
            # Of the completion tokens, those spent reasoning; of the prompt tokens, those the provider's prompt cache served.
            f"avg_{role}_reasoning_tokens": _mean_or_nan([u.reasoning_tokens for u in counted]),
            f"avg_{role}_provider_cached_prompt_tokens": _mean_or_nan(
                [u.provider_cached_prompt_tokens for u in counted]
            ),
            f"n_{role}_usage_missing": float(missing),
            f"avg_{role}_latency_s": mean(r.usage[role].latency_s for r in records),
        }
    delegations = [d for r in records for d in r.delegations]
    metrics |= {
        "avg_tool_calls": mean(r.tool_calls for r in records),
        "delegation_rate": sum(r.tool_calls > 0 for r in records) / n,
        # Tool calls answered with an error (bad arguments, SLM failures, over the limit), per tool call.
        "tool_error_rate": _ratio(sum(d.error is not None for d in delegations), len(delegations)),
        "cost_usd": sum(r.cost_usd for r in records),
        "cache_saved_usd": sum(r.cache_saved_usd for r in records),
        "cache_hit_rate": _ratio(
            sum(u.cache_hits for r in records for u in r.usage.values()),
            sum(u.calls for r in records for u in r.usage.values()),
        ),
        "n_samples": float(n),
        "n_errors": float(sum(r.error is not None for r in records)),
        "n_degraded": float(sum(r.degraded for r in records)),
        "n_usage_missing": float(n_usage_missing),
    }
    # Each further scorer's accuracy (data.scorers), beside the primary's `accuracy`, over the problems it judged.
    for name in dict.fromkeys(name for r in records for name in list(r.all_scores)[1:]):
        judged = [r.all_scores[name].correct for r in records if name in r.all_scores]
        metrics[f"accuracy_{name}"] = sum(judged) / len(judged)
    return metrics
