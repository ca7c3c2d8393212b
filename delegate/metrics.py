"""Aggregate sample records into the run's metrics (names are MLflow metric names)."""

import math
from statistics import mean

import numpy as np

from delegate.records import ROLES, SampleRecord


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


def summarize(records: list[SampleRecord]) -> dict[str, float]:
    """Accuracy with its interval, latency percentiles, average tokens per model, tool use, cost and counts."""
    n = len(records)
    if n == 0:
        raise ValueError("no sample records to summarize")
    correct = sum(r.correct for r in records)
    low, high = wilson_interval(correct, n)
    latencies_s = [r.latency_s for r in records]
    metrics = {
        "accuracy": correct / n,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "avg_latency_s": mean(latencies_s),
        "p50_latency_s": float(np.percentile(latencies_s, 50)),
        "p95_latency_s": float(np.percentile(latencies_s, 95)),
    }
    for role in ROLES:
        prompt = mean(r.usage[role].prompt_tokens for r in records)
        completion = mean(r.usage[role].completion_tokens for r in records)
        metrics |= {
            f"avg_{role}_prompt_tokens": prompt,
            f"avg_{role}_completion_tokens": completion,
            f"avg_{role}_tokens": prompt + completion,
        }
    delegations = [d for r in records for d in r.delegations]
    metrics |= {
        "avg_tool_calls": mean(r.tool_calls for r in records),
        "delegation_rate": sum(r.tool_calls > 0 for r in records) / n,
        "avg_slm_latency_s": mean(r.usage["slm"].latency_s for r in records),
        # Tool calls answered with an error (bad arguments, SLM failures, over the limit), per tool call.
        "tool_error_rate": _ratio(sum(d.error is not None for d in delegations), len(delegations)),
        "cost_usd": sum(r.cost_usd for r in records),
        "cache_saved_usd": sum(r.cache_saved_usd for r in records),
        "cache_hit_rate": _ratio(sum(r.usage[role].cache_hits for r in records for role in ROLES),
                                 sum(r.usage[role].calls for r in records for role in ROLES)),
        "n_samples": float(n),
        "n_errors": float(sum(r.error is not None for r in records)),
    }
    return metrics
