"""The table a job and a sweep print: accuracy next to the accuracy over the clean problems, errors and degraded."""

from delegate.metrics import summarize
from delegate.tables import summary_table
from tests.support.records import make_record

FAILURE = "slm: InternalServerError (HTTP 500): backend down"


def row(records, method: str) -> dict:
    return {"method": method, "run_name": f"{method}-run", **summarize(records)}


def test_the_table_shows_the_clean_accuracy_and_the_degraded_problems():
    degraded = [
        make_record(0),
        make_record(1, correct=False),
        make_record(2, degraded=True, failures=[FAILURE]),
        make_record(3, correct=False, error="TimeoutError: no reply"),
    ]
    all_degraded = [make_record(0, degraded=True, failures=[FAILURE])]
    lines = summary_table([row(degraded, "router"), row(all_degraded, "down")]).splitlines()
    assert lines[0].split() == [
        "run",
        "method",
        "accuracy",
        "accuracy_clean",
        "avg_latency_s",
        "avg_llm_tokens",
        "avg_slm_tokens",
        "avg_tool_calls",
        "cost_usd",
        "n",
        "errors",
        "degraded",
    ]
    assert "50.0% [15.0%, 85.0%]" in lines[1] and "50.0% [9.5%, 90.5%]" in lines[1]
    assert lines[1].split()[-3:] == ["4", "1", "1"]
    # No clean problem: the clean accuracy is n/a, not nan%.
    assert "100.0% [20.7%, 100.0%]" in lines[2] and " n/a " in lines[2]
    assert lines[2].split()[-3:] == ["1", "0", "1"]


def test_token_averages_no_problem_could_give_are_n_a_not_nan():
    failed = [make_record(0, correct=False, error="InternalServerError (HTTP 500): down")]
    [_, line] = summary_table([row(failed, "llm")]).splitlines()
    assert "nan" not in line and line.split().count("n/a") == 3  # accuracy_clean and both token averages
