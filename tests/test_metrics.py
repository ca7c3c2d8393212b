"""Wilson intervals match known values; summarize turns sample records into exactly the documented metrics."""

import math

import pytest

from delegate.metrics import summarize, wilson_interval
from delegate.records import RoleUsage
from tests.support.records import make_record

METRIC_NAMES = {
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "accuracy_clean",
    "accuracy_clean_ci_low",
    "accuracy_clean_ci_high",
    "avg_latency_s",
    "p50_latency_s",
    "p95_latency_s",
    "avg_llm_prompt_tokens",
    "avg_llm_completion_tokens",
    "avg_llm_tokens",
    "avg_slm_prompt_tokens",
    "avg_slm_completion_tokens",
    "avg_slm_tokens",
    "avg_tool_calls",
    "avg_slm_latency_s",
    "avg_llm_latency_s",
    "cost_usd",
    "n_samples",
    "n_errors",
    "n_degraded",
    "delegation_rate",
    "cache_saved_usd",
    "cache_hit_rate",
    "tool_error_rate",
    "avg_llm_reasoning_tokens",
    "avg_slm_reasoning_tokens",
    "avg_llm_provider_cached_prompt_tokens",
    "avg_slm_provider_cached_prompt_tokens",
    "n_llm_usage_missing",
    "n_slm_usage_missing",
    "n_usage_missing",
}


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (5, 10, 0.2366, 0.7634),
        (1, 2, 0.0945, 0.9055),
        (50, 100, 0.4038, 0.5962),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_known_values(successes, n, low, high):
    got_low, got_high = wilson_interval(successes, n)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize("n", [1, 3, 10, 13, 500])
def test_wilson_interval_stays_inside_zero_one_at_the_ends(n):
    low_at_zero, high_at_zero = wilson_interval(0, n)
    low_at_all, high_at_all = wilson_interval(n, n)
    assert 0.0 <= low_at_zero == pytest.approx(0.0, abs=1e-12)
    assert high_at_all <= 1.0 and high_at_all == pytest.approx(1.0, abs=1e-12)
    assert high_at_zero == pytest.approx(1.0 - low_at_all)


@pytest.mark.parametrize(("successes", "n", "end", "exact"), [(0, 3, 0, 0.0), (10, 10, 1, 1.0)])
def test_wilson_interval_is_exact_at_the_ends(successes, n, end, exact):
    assert wilson_interval(successes, n)[end] == exact


def test_wilson_interval_of_nothing():
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_wilson_interval_narrows_with_n():
    small = wilson_interval(8, 10)
    large = wilson_interval(80, 100)
    assert small[0] < large[0] < 0.8 < large[1] < small[1]


def record(
    correct,
    latency_s,
    llm,
    slm,
    slm_latency_s,
    tool_calls,
    cost_usd,
    error=None,
    calls=(1, 0),
    hits=(0, 0),
    saved_usd=0.0,
):
    return make_record(
        correct=correct,
        latency_s=latency_s,
        tool_calls=tool_calls,
        cost_usd=cost_usd,
        cache_saved_usd=saved_usd,
        error=error,
        usage={
            "llm": RoleUsage(prompt_tokens=llm[0], completion_tokens=llm[1], calls=calls[0], cache_hits=hits[0]),
            "slm": RoleUsage(
                prompt_tokens=slm[0],
                completion_tokens=slm[1],
                latency_s=slm_latency_s,
                calls=calls[1],
                cache_hits=hits[1],
            ),
        },
    )


RECORDS = [
    record(True, 1.0, (100, 50), (0, 0), 0.0, 0, 0.01, hits=(1, 0), saved_usd=0.01),
    record(False, 2.0, (200, 150), (40, 20), 0.5, 2, 0.02, calls=(3, 2), hits=(1, 2), saved_usd=0.004),
    record(True, 3.0, (300, 250), (80, 60), 1.5, 1, 0.03, calls=(2, 1)),
    record(False, 10.0, (0, 0), (0, 0), 0.0, 0, 0.0, error="TimeoutError: no reply", calls=(0, 0)),
]


def test_summarize_metrics_by_hand():
    metrics = summarize(RECORDS)
    assert set(metrics) == METRIC_NAMES
    low, high = wilson_interval(2, 4)
    expected = {
        "accuracy": 0.5,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        # No record is degraded: the clean problems are the three that did not error, two of them right.
        "accuracy_clean": 2 / 3,
        "accuracy_clean_ci_low": wilson_interval(2, 3)[0],
        "accuracy_clean_ci_high": wilson_interval(2, 3)[1],
        "avg_latency_s": 16.0 / 4,
        # numpy's linear percentile over [1, 2, 3, 10]: rank 1.5 and rank 2.85.
        "p50_latency_s": 2.5,
        "p95_latency_s": 3.0 + 0.85 * 7.0,
        # Over the three problems that ran to their end: the timed-out one spent an unknown part of its tokens.
        "avg_llm_prompt_tokens": 600 / 3,
        "avg_llm_completion_tokens": 450 / 3,
        "avg_llm_tokens": 1050 / 3,
        "avg_slm_prompt_tokens": 120 / 3,
        "avg_slm_completion_tokens": 80 / 3,
        "avg_slm_tokens": 200 / 3,
        "avg_tool_calls": 3 / 4,
        "avg_slm_latency_s": 2.0 / 4,
        # The records' LLM calls took no time (latency_s 0): every role gets its average.
        "avg_llm_latency_s": 0.0,
        "cost_usd": 0.06,
        "n_samples": 4.0,
        "n_errors": 1.0,
        "n_degraded": 0.0,
        # Two of four records called the SLM at least once.
        "delegation_rate": 0.5,
        "cache_saved_usd": 0.014,
        # 4 of the 9 model calls came from the cache.
        "cache_hit_rate": 4 / 9,
        # These records list no delegations.
        "tool_error_rate": 0.0,
        # Every call reported its usage, none its reasoning or cached tokens.
        "avg_llm_reasoning_tokens": 0.0,
        "avg_llm_provider_cached_prompt_tokens": 0.0,
        "n_llm_usage_missing": 0.0,
        "n_slm_usage_missing": 0.0,
        "n_usage_missing": 0.0,
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value), name
    assert low == pytest.approx(0.1500, abs=1e-4) and high == pytest.approx(0.8500, abs=1e-4)


def test_summarize_values_are_finite_floats():
    # MLflow metrics must be numbers.
    for name, value in summarize(RECORDS).items():
        assert isinstance(value, (int, float)) and math.isfinite(value), name


def test_summarize_one_record():
    metrics = summarize([record(True, 2.0, (10, 5), (0, 0), 0.0, 0, 0.001)])
    assert metrics["accuracy"] == 1.0
    assert metrics["p50_latency_s"] == metrics["p95_latency_s"] == 2.0
    assert metrics["accuracy_ci_high"] == 1.0
    assert metrics["delegation_rate"] == 0.0
    assert metrics["n_errors"] == 0.0


def test_summarize_nothing_raises():
    with pytest.raises(ValueError, match="no sample records"):
        summarize([])


# Missing usage, reasoning and provider-cached tokens


def usage_record(llm: RoleUsage, slm: RoleUsage | None = None, cost_usd: float = 0.0):
    return make_record(usage={"llm": llm, "slm": slm or RoleUsage()}, cost_usd=cost_usd)


def test_token_averages_leave_out_problems_whose_calls_lacked_usage():
    records = [
        usage_record(RoleUsage(calls=1, prompt_tokens=100, completion_tokens=50), cost_usd=0.1),
        # Two LLM calls, one without usage: its known half would drag the average down, so the problem is left out.
        usage_record(RoleUsage(calls=2, prompt_tokens=200, completion_tokens=20, usage_missing_calls=1), cost_usd=0.2),
        usage_record(
            RoleUsage(calls=1, prompt_tokens=300, completion_tokens=150),
            RoleUsage(calls=3, usage_missing_calls=3),
            cost_usd=0.3,
        ),
    ]
    metrics = summarize(records)
    assert metrics["avg_llm_prompt_tokens"] == 200 and metrics["avg_llm_completion_tokens"] == 100
    assert metrics["avg_llm_tokens"] == 300
    # The SLM's averages are over the two problems whose SLM calls (none) all reported.
    assert metrics["avg_slm_tokens"] == 0
    assert (metrics["n_llm_usage_missing"], metrics["n_slm_usage_missing"], metrics["n_usage_missing"]) == (1, 3, 4)
    # Cost sums what the records priced: the calls that reported usage.
    assert metrics["cost_usd"] == pytest.approx(0.6)


def test_a_role_whose_calls_never_reported_usage_has_no_average():
    records = [usage_record(RoleUsage(calls=2, usage_missing_calls=2)) for _ in range(3)]
    metrics = summarize(records)
    for kind in ("prompt", "completion", "reasoning", "provider_cached_prompt"):
        assert math.isnan(metrics[f"avg_llm_{kind}_tokens"]), kind
    assert math.isnan(metrics["avg_llm_tokens"])
    assert metrics["n_usage_missing"] == 6 and metrics["cost_usd"] == 0


def test_reasoning_and_provider_cached_tokens_are_averaged_per_problem():
    records = [
        usage_record(
            RoleUsage(
                calls=1,
                prompt_tokens=2000,
                completion_tokens=500,
                reasoning_tokens=400,
                provider_cached_prompt_tokens=1024,
            )
        ),
        usage_record(
            RoleUsage(
                calls=1, prompt_tokens=1000, completion_tokens=100, reasoning_tokens=0, provider_cached_prompt_tokens=0
            )
        ),
    ]
    metrics = summarize(records)
    assert (metrics["avg_llm_reasoning_tokens"], metrics["avg_llm_provider_cached_prompt_tokens"]) == (200, 512)


# Problems a model failure shaped


FAILURE = "slm: InternalServerError (HTTP 500): backend down"


def test_degraded_problems_are_counted_and_left_out_of_the_clean_accuracy():
    records = [
        make_record(0, correct=True),
        make_record(1, correct=False),
        # Answered right by the LLM alone after the SLM failed: counts in accuracy, not in accuracy_clean.
        make_record(2, correct=True, degraded=True, failures=[FAILURE]),
        make_record(3, correct=True, degraded=True, failures=[FAILURE, FAILURE]),
        make_record(4, correct=False, error="InternalServerError (HTTP 500): llm down"),
    ]
    metrics = summarize(records)
    assert (metrics["n_samples"], metrics["n_errors"], metrics["n_degraded"]) == (5, 1, 2)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["accuracy_clean"] == pytest.approx(1 / 2)
    assert (metrics["accuracy_clean_ci_low"], metrics["accuracy_clean_ci_high"]) == pytest.approx(wilson_interval(1, 2))


def test_clean_accuracy_is_undefined_when_no_problem_is_clean():
    records = [
        make_record(0, degraded=True, failures=[FAILURE]),
        make_record(1, correct=False, error="TimeoutError: no reply"),
    ]
    metrics = summarize(records)
    assert metrics["n_degraded"] == 1 and metrics["accuracy"] == 0.5
    for name in ("accuracy_clean", "accuracy_clean_ci_low", "accuracy_clean_ci_high"):
        assert math.isnan(metrics[name]), name


def test_each_further_scorer_has_its_accuracy_beside_the_primary():
    from delegate.scoring.base import Score

    def judged(right: bool, exact_right: bool):
        return make_record(
            correct=right,
            scores={"numeric": Score("1", "boxed", right), "exact": Score("1.0", "boxed", exact_right)},
        )

    metrics = summarize([judged(True, False), judged(True, True), judged(False, False), judged(True, False)])
    assert metrics["accuracy"] == 0.75
    assert metrics["accuracy_exact"] == 0.25
    assert "accuracy_numeric" not in metrics
    # Records written before `scores` (numeric alone) add no further accuracy.
    assert not any(
        name.startswith("accuracy_") and "ci" not in name and "clean" not in name for name in summarize(RECORDS)
    )
