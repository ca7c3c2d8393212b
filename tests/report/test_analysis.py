"""The report's sections computed from synthetic records with known answers."""

import pytest

from delegate.records import Delegation, RoleUsage
from delegate.report.analysis import (
    NO_SHARED_PROBLEMS,
    analyse,
    change_pct,
    comparison_rows,
    delegation_rows,
    oracle_rows,
    pair_rows,
    pareto_front,
)
from delegate.report.runs import LoadedRun, label_runs
from delegate.report.stats import PairedCounts, mcnemar_exact_p, paired_difference_ci
from tests.support.records import make_record


def loaded(
    strategy: str, right: list[bool], name: str | None = None, dataset: str = "sample/sample", **fields
) -> LoadedRun:
    """A run of `strategy` whose problem i (ids 0..n-1) was right as `right[i]` says."""
    records = [make_record(i, dataset=dataset, strategy=strategy, correct=ok, **fields) for i, ok in enumerate(right)]
    run = LoadedRun(f"id-{name or strategy}", name or strategy, "1", strategy, f"{strategy} (m)", records)
    label_runs([run])
    return run


def delegation(answered: bool = True, error: str | None = None) -> Delegation:
    return Delegation(
        tool_call_id="c",
        name="ask_math_assistant",
        arguments="{}",
        result="r",
        error=error,
        slm_output="6*8 = \\boxed{48}" if answered else None,
    )


# comparison


def test_comparison_row_in_the_study_shape():
    usage = {
        "llm": RoleUsage(calls=1, prompt_tokens=100, completion_tokens=20),
        "slm": RoleUsage(calls=2, prompt_tokens=30, completion_tokens=10),
    }
    records = [
        make_record(0, correct=True, latency_s=1.0, usage=usage, tool_calls=2, cost_usd=0.002),
        make_record(1, correct=False, latency_s=3.0, usage=usage, tool_calls=0, cost_usd=0.004),
    ]
    run = LoadedRun("abc", "router-run", "1", "router", "router (big -> small)", records, label="router (big -> small)")
    [row] = comparison_rows([run])
    assert row["method"] == "router (big -> small)" and row["n"] == 2
    assert row["accuracy"] == 0.5
    assert 0 < row["accuracy_ci_low"] < 0.5 < row["accuracy_ci_high"] < 1
    assert row["avg_latency_s"] == 2.0
    assert row["p95_latency_s"] == pytest.approx(2.9)
    assert (row["avg_llm_prompt_tokens"], row["avg_llm_completion_tokens"]) == (100, 20)
    assert (row["avg_slm_prompt_tokens"], row["avg_slm_completion_tokens"]) == (30, 10)
    assert row["avg_tool_calls"] == 1.0 and row["delegation_rate"] == 0.5
    assert row["cost_per_problem_usd"] == pytest.approx(0.003)
    assert row["cost_per_1k_problems_usd"] == pytest.approx(3.0)
    assert row["pareto_front"] is True
    assert row["cache_hit_rate"] == 0.0


FAILURE = "slm: InternalServerError (HTTP 500): backend down"


def test_comparison_row_shows_the_accuracy_over_the_clean_problems_and_counts_degraded_ones():
    records = [
        make_record(0, correct=True),
        make_record(1, correct=False),
        make_record(2, correct=True, degraded=True, failures=[FAILURE]),
        make_record(3, correct=False, error="InternalServerError (HTTP 500): llm down"),
    ]
    [row] = comparison_rows([LoadedRun("abc", "r", "1", "router", "router (m)", records, label="router (m)")])
    assert (row["accuracy"], row["accuracy_clean"]) == (0.5, 0.5)
    assert row["accuracy_clean_ci_low"] < 0.5 < row["accuracy_clean_ci_high"]
    assert (row["errors"], row["degraded"]) == (1, 1)


def test_clean_accuracy_is_none_not_nan_when_no_problem_is_clean():
    [row] = comparison_rows([loaded("router", [True, False], degraded=True, failures=[FAILURE])])
    assert row["degraded"] == 2 and row["accuracy"] == 0.5
    assert (row["accuracy_clean"], row["accuracy_clean_ci_low"], row["accuracy_clean_ci_high"]) == (None, None, None)


def test_pareto_front_keeps_only_runs_no_cheaper_run_matches():
    # (cost, accuracy): the cheapest, then only runs more accurate than everything cheaper.
    points = [(0.5, 0.80), (0.1, 0.60), (0.3, 0.55), (0.9, 0.90), (0.1, 0.60), (0.7, 0.80)]
    assert pareto_front(points) == [1, 0, 3]
    assert pareto_front([]) == []


# paired comparisons


def test_pairs_on_the_same_problems_match_the_paired_statistics():
    a = loaded("llm", [True, True, False, False, True, False, True, True])
    b = loaded("router", [True, False, True, True, True, False, True, True])
    [row] = pair_rows([a, b])
    counts = PairedCounts(both_right=4, only_a=1, only_b=2, both_wrong=1)
    assert (row["both_right"], row["only_baseline"], row["only_candidate"], row["both_wrong"]) == (4, 1, 2, 1)
    assert row["n_shared"] == 8 and row["note"] == ""
    assert row["accuracy_difference"] == pytest.approx(1 / 8)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(paired_difference_ci(counts))
    assert row["mcnemar_p"] == pytest.approx(mcnemar_exact_p(counts)) == pytest.approx(1.0)


def test_identical_runs_pair_with_no_difference():
    a = loaded("llm", [True, False, True], name="first")
    b = loaded("llm", [True, False, True], name="second")
    [row] = pair_rows([a, b])
    assert row["accuracy_difference"] == 0
    assert row["difference_ci_low"] < 0 < row["difference_ci_high"]
    assert row["mcnemar_p"] == 1.0
    assert row["llm_tokens_change_pct"] is None  # no LLM tokens in either: no baseline to compare with
    assert row["latency_change_pct"] == 0


def test_pairs_compare_only_the_shared_problems_and_say_so():
    a = loaded("llm", [True] * 6)
    b = LoadedRun(
        "id-b", "b", "1", "slm", "slm (m)", [make_record(i, correct=False) for i in (4, 5, 6, 7)], label="slm (m)"
    )
    [row] = pair_rows([a, b])
    assert row["n_shared"] == 2
    assert (row["both_right"], row["only_baseline"], row["only_candidate"], row["both_wrong"]) == (0, 2, 0, 0)
    assert row["note"] == "on the 2 shared problems (6 and 4 in the runs)"


def test_runs_on_different_datasets_get_a_note_not_a_comparison():
    a = loaded("llm", [True, False])
    b = loaded("slm", [True, False], dataset="gsm8k/test")
    [row] = pair_rows([a, b])
    assert row["n_shared"] == 0
    assert row["note"] == NO_SHARED_PROBLEMS
    assert row["accuracy_difference"] is None and row["mcnemar_p"] is None and row["both_right"] is None


def test_token_cost_and_latency_changes_are_the_candidates_relative_to_the_baseline():
    usage_a = {"llm": RoleUsage(calls=1, prompt_tokens=300, completion_tokens=100)}
    usage_b = {
        "llm": RoleUsage(calls=1, prompt_tokens=60, completion_tokens=20),
        "slm": RoleUsage(calls=1, prompt_tokens=50, completion_tokens=30),
    }
    a = LoadedRun(
        "a", "a", "1", "llm", "llm", [make_record(0, usage=usage_a, cost_usd=0.004, latency_s=1.0)], label="llm"
    )
    b = LoadedRun(
        "b",
        "b",
        "1",
        "router",
        "router",
        [make_record(0, usage=usage_b, cost_usd=0.001, latency_s=2.5)],
        label="router",
    )
    [row] = pair_rows([a, b])
    assert row["llm_tokens_change_pct"] == pytest.approx(-80.0)  # 400 -> 80
    assert row["total_tokens_change_pct"] == pytest.approx(-60.0)  # 400 -> 160
    assert row["cost_change_pct"] == pytest.approx(-75.0)
    assert row["latency_change_pct"] == pytest.approx(150.0)
    assert change_pct(0, 5) is None


def test_a_problem_without_token_counts_is_left_out_of_the_token_and_cost_changes_and_said_so():
    counted = {"llm": RoleUsage(calls=1, prompt_tokens=300, completion_tokens=100)}
    missing = {"llm": RoleUsage(calls=1, usage_missing_calls=1)}
    a = LoadedRun(
        "a",
        "a",
        "1",
        "llm",
        "llm",
        [make_record(0, usage=counted, cost_usd=0.004), make_record(1, usage=counted, cost_usd=0.004)],
        label="llm",
    )
    b_records = [
        make_record(0, usage={"llm": RoleUsage(calls=1, prompt_tokens=100, completion_tokens=100)}, cost_usd=0.002),
        make_record(1, usage=missing, cost_usd=0.0),
    ]
    b = LoadedRun("b", "b", "1", "llm", "llm", b_records, label="llm 2")
    [row] = pair_rows([a, b])
    # Problem 1's unknown count is not zero: only problem 0 counts (400 -> 200 tokens, 0.004 -> 0.002 USD).
    assert row["llm_tokens_change_pct"] == pytest.approx(-50.0)
    assert row["cost_change_pct"] == pytest.approx(-50.0)
    assert row["note"] == "tokens and cost over the 1 problems that ran to their end with every call's usage reported"


def test_latency_changes_leave_out_problems_replayed_from_the_cache_and_say_so():
    fresh = {"llm": RoleUsage(calls=1, prompt_tokens=10, completion_tokens=10)}
    replayed = {"llm": RoleUsage(calls=1, prompt_tokens=10, completion_tokens=10, cache_hits=1)}
    a = LoadedRun(
        "a", "a", "1", "llm", "llm", [make_record(i, usage=fresh, latency_s=2.0) for i in range(2)], label="a"
    )
    b_records = [make_record(0, usage=fresh, latency_s=3.0), make_record(1, usage=replayed, latency_s=0.0)]
    b = LoadedRun("b", "b", "1", "llm", "llm", b_records, label="b")
    [row] = pair_rows([a, b])
    # Problem 1's replay took no time: only problem 0 is timed (2.0 s -> 3.0 s).
    assert row["latency_change_pct"] == pytest.approx(50.0)
    assert row["note"] == "latency over the 1 problems with no call replayed from the cache"
    every_call_replayed = LoadedRun(
        "c", "c", "1", "llm", "llm", [make_record(i, usage=replayed) for i in range(2)], label="c"
    )
    [row] = pair_rows([a, every_call_replayed])
    assert row["latency_change_pct"] is None


# oracle and delegation


def test_oracle_headroom_and_the_share_the_slm_solves():
    llm = loaded("llm", [True, True, True, False, False, False, True, False])
    slm = loaded("slm", [True, False, False, True, True, False, False, False])
    router = loaded("router", [True, True, False, True, False, True, True, False])
    [row], notes = oracle_rows([llm, slm, router])
    assert notes == []
    assert row["n_shared"] == 8
    assert (row["llm_accuracy"], row["slm_accuracy"], row["router_accuracy"]) == (4 / 8, 3 / 8, 5 / 8)
    # Either model right on problems 0-4 and 6: 6 of 8.
    assert row["oracle_accuracy"] == 6 / 8
    # (5/8 - 4/8) / (6/8 - 4/8)
    assert row["headroom_captured"] == pytest.approx(0.5)
    assert row["slm_solves_share"] == 3 / 8
    assert row["only_llm_solves_share"] == 3 / 8  # problems 1, 2, 6
    assert row["router_right_both_wrong"] == 1  # problem 5


def test_headroom_is_undefined_when_the_oracle_is_no_better():
    llm = loaded("llm", [True, True, False])
    slm = loaded("slm", [True, False, False])
    router = loaded("router", [True, False, False])
    [row], _ = oracle_rows([llm, slm, router])
    assert row["oracle_accuracy"] == row["llm_accuracy"]
    assert row["headroom_captured"] is None


def test_oracle_takes_the_llm_and_slm_runs_sharing_most_problems_with_the_router():
    router = loaded("router", [True] * 4)
    far_llm = LoadedRun("far", "far", "1", "llm", "llm (m)", [make_record(i) for i in (3, 9, 10)])
    near_llm = LoadedRun("near", "near", "1", "llm", "llm (m)", [make_record(i, correct=False) for i in (0, 1, 2)])
    slm = loaded("slm", [False] * 4)
    label_runs([far_llm, near_llm])
    [row], _ = oracle_rows([far_llm, near_llm, slm, router])
    assert row["llm"] == near_llm.label
    assert row["n_shared"] == 3


def test_oracle_needs_all_three_strategies_on_shared_problems():
    assert oracle_rows([loaded("llm", [True]), loaded("router", [True])]) == (
        [],
        ["needs an llm, an slm and a router run on the same problems; this report has 1 llm, 0 slm, 1 router run(s)"],
    )
    rows, notes = oracle_rows(
        [loaded("llm", [True]), loaded("slm", [True]), loaded("router", [True], dataset="gsm8k/test")]
    )
    assert rows == [] and notes == ["router (m): no problems shared with both an llm and an slm run"]


def test_delegation_accuracy_sub_answers_and_tool_errors():
    records = [
        make_record(0, strategy="router", correct=True, tool_calls=2, delegations=[delegation(), delegation()]),
        make_record(
            1,
            strategy="router",
            correct=False,
            tool_calls=2,
            delegations=[delegation(answered=False, error="invalid_arguments"), delegation()],
            events={"invalid_arguments": 1},
        ),
        make_record(
            2,
            strategy="router",
            correct=True,
            tool_calls=1,
            delegations=[delegation(answered=False, error="over_limit")],
            events={"over_limit": 1, "forced_final": 1},
        ),
        make_record(3, strategy="router", correct=True),
    ]
    run = LoadedRun("r", "r", "1", "router", "router (m)", records, label="router (m)")
    [row] = delegation_rows([run, loaded("llm", [True])])
    # Problems 0 and 1 had an SLM answer; 2 (its only call refused) and 3 did not.
    assert (row["n_delegated"], row["accuracy_delegated"]) == (2, 0.5)
    assert (row["n_not_delegated"], row["accuracy_not_delegated"]) == (2, 1.0)
    assert row["slm_answers_per_problem"] == pytest.approx(3 / 4)
    assert row["tool_calls"] == 5
    assert row["tool_errors"] == 2 and row["tool_error_rate"] == pytest.approx(2 / 5)
    assert row["events"] == {"forced_final": 1, "invalid_arguments": 1, "over_limit": 1}


def test_a_router_that_never_delegated_has_no_delegated_accuracy():
    [row] = delegation_rows([loaded("router", [True, False])])
    assert row["accuracy_delegated"] is None and row["tool_error_rate"] is None
    assert row["accuracy_not_delegated"] == 0.5


def test_analyse_fills_every_section():
    runs = [loaded("llm", [True, False]), loaded("slm", [False, False]), loaded("router", [True, True])]
    report = analyse(runs, ["run x: RUNNING, not finished"])
    assert len(report.comparison) == 3 and len(report.pairs) == 3
    assert len(report.oracle) == 1 and len(report.delegation) == 1
    assert report.skipped == ["run x: RUNNING, not finished"]
