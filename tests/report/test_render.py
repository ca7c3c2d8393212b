"""The report's Markdown: every section, readable values, n/a where a value is undefined."""

import json
from pathlib import Path

from delegate.report.analysis import analyse
from delegate.report.render import markdown_table, render_markdown, runs_note, write_json
from delegate.report.runs import LoadedRun, label_runs
from tests.support.records import make_record


def test_markdown_table_escapes_pipes():
    assert markdown_table(["a", "b"], [["x|y", "2"]]) == "| a | b |\n|---|---|\n| x\\|y | 2 |"


def runs() -> list[LoadedRun]:
    made = [
        LoadedRun("id-llm", "llm-run", "1", "llm", "llm (big)", [make_record(i, correct=i < 2) for i in range(4)]),
        LoadedRun(
            "id-router",
            "router-run",
            "1",
            "router",
            "router (big -> small)",
            [make_record(i, strategy="router", correct=i < 3) for i in range(4)],
        ),
        LoadedRun("id-other", "other-run", "1", "slm", "slm (small)", [make_record(0, dataset="gsm8k/test")]),
    ]
    label_runs(made)
    return made


def test_markdown_has_every_section_and_names_the_statistics():
    report = analyse(runs(), ["run x (abc): RUNNING, not finished"])
    text = render_markdown(report, {"1": "delegate-gsm8k"}, [Path("accuracy_ci.png")], "3 runs from sqlite:///m.db.")
    for heading in (
        "# delegate report",
        "## Runs",
        "## Comparison",
        "## Paired comparisons",
        "## Oracle and delegation",
        "### Oracle",
        "### Delegation (router runs)",
        "## Plots",
    ):
        assert f"\n{heading}\n" in f"\n{text}"
    assert "- skipped run x (abc): RUNNING, not finished" in text
    assert "| llm (big) | router (big -> small) | 4 | 50.0% | 75.0% | +25.0 pp [" in text
    assert "95% CI, Newcombe paired score" in text and "McNemar exact p" in text
    assert "no shared problems (different datasets/samples)" in text
    # Router accuracy without delegation: 3 of 4; with: none delegated.
    assert "| router (big -> small) | 4 | 0 | n/a | 4 | 75.0% | 0.00 | 0 | 0 | n/a | none |" in text
    assert "- [accuracy_ci.png](accuracy_ci.png)" in text


def test_runs_note_is_a_table_of_the_compared_runs():
    note = runs_note(analyse(runs(), []), {"1": "delegate-gsm8k"})
    assert note.startswith("delegate report of 3 runs.\n\n| method | run | run id | experiment | n |")
    assert "| llm (big) | llm-run | id-llm | delegate-gsm8k | 4 |" in note


def strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity are refused."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_comparison_shows_the_clean_accuracy_and_the_degraded_problems(tmp_path):
    failure = "slm: InternalServerError (HTTP 500): backend down"
    made = [
        LoadedRun(
            "id-router",
            "router-run",
            "1",
            "router",
            "router (big -> small)",
            [
                make_record(0, strategy="router"),
                make_record(1, strategy="router", correct=False),
                make_record(2, strategy="router", degraded=True, failures=[failure]),
            ],
        ),
        LoadedRun(
            "id-down",
            "down-run",
            "1",
            "router",
            "router (big -> down)",
            [make_record(i, strategy="router", degraded=True, failures=[failure]) for i in range(2)],
        ),
    ]
    label_runs(made)
    report = analyse(made, [])
    text = render_markdown(report, {"1": "delegate-gsm8k"}, [], "2 runs.")
    assert "| method | n | accuracy [95% CI] | accuracy, clean problems [95% CI] | avg latency (s) |" in text
    lines = text.splitlines()
    # Cheaper (equally free) and more accurate: the all-degraded run is on the front, by accuracy over every problem.
    [small] = [line for line in lines if line.startswith("| router (big -> small) | 3 | 66.7% [")]
    [down] = [line for line in lines if line.startswith("| router (big -> down) * | 2 | 100.0% [")]
    assert small.startswith("| router (big -> small) | 3 | 66.7% [20.8%, 93.9%] | 50.0% [9.5%, 90.5%] | 1.00 |")
    # The last two columns: errors and degraded.
    assert small.endswith("| 0 | 1 |")
    # No clean problem: the clean accuracy is n/a.
    assert down.startswith("| router (big -> down) * | 2 | 100.0% [34.2%, 100.0%] | n/a | 1.00 |")
    assert down.endswith("| 0 | 2 |")
    data = strict_json(write_json(report, tmp_path / "report.json", {}).read_text(encoding="utf-8"))
    assert [(r["accuracy_clean"], r["degraded"]) for r in data["comparison"]] == [(0.5, 1), (None, 2)]


def test_report_json_is_strict_json_even_where_a_number_is_undefined(tmp_path):
    # A run whose calls reported no token counts has no token averages (NaN in the metrics): null in the file.
    from delegate.records import RoleUsage

    missing = {"llm": RoleUsage(calls=1, usage_missing_calls=1), "slm": RoleUsage()}
    run = LoadedRun("a", "a", "1", "llm", "llm (m)", [make_record(0, usage=missing)], label="llm (m)")
    path = write_json(analyse([run], []), tmp_path / "report.json", {"note": float("nan")})
    data = strict_json(path.read_text(encoding="utf-8"))
    assert data["note"] is None
    assert data["comparison"][0]["avg_llm_prompt_tokens"] is None
