"""`delegate-report` end to end: llm, slm and router runs made in-process against scripted servers, then the report
read back from the real MLflow store, its files, its terminal output and its own MLflow run."""

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from delegate.compose import compose_config
from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.job import run_job
from delegate.records import read_records
from delegate.report.stats import PairedCounts, mcnemar_exact_p, paired_difference_ci
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply, ScriptedServer
from pipelines.report import main

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}
TOOL = "ask_math_assistant"
STRATEGIES = ("llm", "slm", "router")
REPORT_FILES = {
    "report.md",
    "report.json",
    "comparison.csv",
    "pairs.csv",
    "oracle.csv",
    "delegation.csv",
    "accuracy_ci.png",
    "tokens_per_problem.png",
    "latency.png",
    "accuracy_vs_cost.png",
}
SECTIONS = (
    "## Runs",
    "## Comparison",
    "## Paired comparisons",
    "## Oracle and delegation",
    "### Oracle",
    "### Delegation (router runs)",
    "## Plots",
)


def question_of(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def scripted_llm(body: dict) -> Reply:
    """Right alone on even golds. With the tool: answers even golds itself, delegates odd ones (for gold 5 first with
    malformed arguments) and then repeats the SLM's answer."""
    gold = GOLD_BY_QUESTION[question_of(body)]
    tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
    if "tools" not in body or int(gold) % 2 == 0:
        return Reply(
            content=f"\\boxed{{{gold if int(gold) % 2 == 0 else -1}}}", prompt_tokens=100, completion_tokens=20
        )
    if not tool_messages and gold == "5":
        return Reply(tool_calls=[{"name": TOOL, "arguments": "{not json"}], prompt_tokens=100, completion_tokens=20)
    if not tool_messages or tool_messages[-1]["content"].startswith("Error"):
        return Reply(
            tool_calls=[{"name": TOOL, "arguments": json.dumps({"question": question_of(body)})}],
            prompt_tokens=100,
            completion_tokens=20,
        )
    answer = re.search(r"Answer: (-?\d+)", tool_messages[-1]["content"]).group(1)
    return Reply(content=f"\\boxed{{{answer}}}", prompt_tokens=120, completion_tokens=10)


def scripted_slm(body: dict) -> Reply:
    """Right on golds divisible by 3, alone or asked by the router (which sends it the whole problem)."""
    gold = GOLD_BY_QUESTION[body["messages"][-1]["content"]]
    return Reply(content=f"So \\boxed{{{gold if int(gold) % 3 == 0 else -1}}}.", prompt_tokens=30, completion_tokens=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A folder with mlflow.db holding one finished run per strategy on the same 8 problems (golds 48, 85, 8, 50, 5,
    27, 216, 475), their job folders under sweep/ as a Hydra sweep leaves them, and one run left RUNNING."""
    root = tmp_path_factory.mktemp("report")
    with ScriptedServer(scripted_llm) as llm, ScriptedServer(scripted_slm) as slm:
        for number, strategy in enumerate(STRATEGIES):
            cfg = compose_config(
                [
                    "experiment=local",
                    f"strategy={strategy}",
                    "samples=8",
                    "seed=123",
                    "llm=openai-compatible",
                    f"llm.base_url={llm.base_url}",
                    "llm.name=big",
                    "llm.price_input_usd_per_1m=2.5",
                    "llm.price_output_usd_per_1m=10",
                    "slm=openai-compatible",
                    f"slm.base_url={slm.base_url}",
                    "slm.name=small",
                    "slm.price_input_usd_per_1m=0.1",
                    "slm.price_output_usd_per_1m=0.2",
                    f"tracking.uri=sqlite:///{root}/mlflow.db",
                    "tracking.traces=false",
                    "cache.enabled=false",
                ]
            )
            run_job(cfg, root, root / "sweep" / f"{number}-{strategy}")
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("delegate-gsm8k")
    client.create_run(experiment.experiment_id, run_name="still-running", tags={"strategy": "llm"})
    return root


def records_of(store: Path, strategy: str) -> dict[int, bool]:
    [samples] = (store / "sweep").glob(f"*-{strategy}/{SAMPLES_FILE}")
    return {r.id: r.correct for r in read_records(samples)}


def report_runs(store: Path) -> list:
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    experiment = client.get_experiment_by_name("delegate-gsm8k")
    return client.search_runs([experiment.experiment_id], "tags.`delegate.report` = 'true'")


def test_report_on_llm_slm_and_router_runs(store, capsys):
    out = store / "report-all"
    main(["--tracking-uri", f"sqlite:///{store}/mlflow.db", "--out", str(out)])
    printed = capsys.readouterr().out

    for section in SECTIONS:
        assert f"\n{section}\n" in printed
    assert "skipped run still-running" in printed and "RUNNING, not finished" in printed
    assert REPORT_FILES <= {p.name for p in out.iterdir()}
    assert len(list(out.glob("*.png"))) >= 4
    assert (out / "report.md").read_text(encoding="utf-8") in printed

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    by_method = {row["method"]: row for row in report["comparison"]}
    assert list(by_method) == ["llm (big)", "slm (small)", "router (big -> small)"]
    llm, slm, router = (records_of(store, s) for s in STRATEGIES)
    assert by_method["llm (big)"]["accuracy"] == sum(llm.values()) / 8 == 4 / 8
    assert by_method["slm (small)"]["accuracy"] == sum(slm.values()) / 8 == 3 / 8
    assert by_method["router (big -> small)"]["accuracy"] == sum(router.values()) / 8 == 5 / 8
    assert (
        by_method["llm (big)"]["avg_llm_prompt_tokens"] == 100 and by_method["llm (big)"]["avg_slm_prompt_tokens"] == 0
    )
    assert by_method["slm (small)"]["cost_per_1k_problems_usd"] == pytest.approx(1000 * (30 * 0.1 + 10 * 0.2) / 1e6)

    # llm (A) against router (B), from the records the jobs wrote.
    pair = next(
        p for p in report["pairs"] if p["baseline"] == "llm (big)" and p["candidate"] == "router (big -> small)"
    )
    counts = PairedCounts.from_outcomes([llm[i] for i in sorted(llm)], [router[i] for i in sorted(llm)])
    assert (pair["both_right"], pair["only_baseline"], pair["only_candidate"], pair["both_wrong"]) == (4, 0, 1, 3)
    assert counts == PairedCounts(4, 0, 1, 3)
    assert pair["mcnemar_p"] == mcnemar_exact_p(counts) == 1.0
    assert (pair["difference_ci_low"], pair["difference_ci_high"]) == pytest.approx(paired_difference_ci(counts))
    assert pair["n_shared"] == 8

    # Router right where either model alone was right (5/8): all of the headroom above the LLM's 4/8.
    [oracle] = report["oracle"]
    assert (oracle["oracle_accuracy"], oracle["headroom_captured"], oracle["slm_solves_share"]) == (5 / 8, 1.0, 3 / 8)
    # Odd golds 85, 5, 27, 475 delegated (only 27 right); gold 5 first sent malformed arguments.
    [delegation] = report["delegation"]
    assert (delegation["n_delegated"], delegation["accuracy_delegated"]) == (4, 1 / 4)
    assert delegation["accuracy_not_delegated"] == 1.0
    assert (delegation["tool_calls"], delegation["tool_errors"], delegation["tool_error_rate"]) == (5, 1, 1 / 5)
    assert delegation["slm_answers_per_problem"] == 4 / 8

    # The report is itself an MLflow run, naming the runs it compares, with every file at its artifact root.
    [run] = report_runs(store)
    assert run.info.run_id == report["report_run_id"]
    assert f"report run: {run.info.run_id} in experiment 'delegate-gsm8k'" in printed
    assert run.info.run_name == "report-3-runs" and run.info.status == "FINISHED"
    compared = {row["run_id"] for row in report["comparison"]}
    assert set(run.data.tags["delegate.report.runs"].split(",")) == compared
    assert all(run_id in run.data.tags["mlflow.note.content"] for run_id in compared)
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {p.name for p in out.iterdir()}


def test_sweep_folder_and_run_ids_without_logging(store, capsys):
    before = len(report_runs(store))
    main(
        [
            "--tracking-uri",
            f"sqlite:///{store}/mlflow.db",
            "--sweep",
            str(store / "sweep"),
            "--out",
            str(store / "sweep-report"),
            "--no-log",
        ]
    )
    printed = capsys.readouterr().out
    assert "| router (big -> small) |" in printed and "report run:" not in printed
    assert json.loads((store / "sweep-report" / "report.json").read_text())["report_run_id"] is None

    ids = [row["run_id"] for row in json.loads((store / "sweep-report" / "report.json").read_text())["comparison"]]
    main(
        [
            "--tracking-uri",
            f"sqlite:///{store}/mlflow.db",
            "--runs",
            ids[0],
            ids[2],
            "--out",
            str(store / "two"),
            "--no-log",
        ]
    )
    two = json.loads((store / "two" / "report.json").read_text())
    assert [row["method"] for row in two["comparison"]] == ["llm (big)", "router (big -> small)"]
    assert len(two["pairs"]) == 1 and two["oracle"] == []
    assert "needs an llm, an slm and a router run" in capsys.readouterr().out
    assert len(report_runs(store)) == before


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A folder whose mlflow.db holds the default experiment and no run."""
    root = tmp_path_factory.mktemp("empty")
    MlflowClient(f"sqlite:///{root}/mlflow.db").create_experiment("delegate-gsm8k")
    return root


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            [],
            "error: no finished delegate runs in experiment 'delegate-gsm8k' at sqlite:///{tmp}/mlflow.db; "
            "run delegate-eval first or pass --tracking-uri",
        ),
        (
            ["--experiment", "other"],
            "error: no finished delegate runs in experiment 'other' at sqlite:///{tmp}/mlflow.db",
        ),
        (["--runs", "0123456789abcdef"], "error: run 0123456789abcdef: no such run at sqlite:///{tmp}/mlflow.db"),
        (["--sweep", "{tmp}"], "error: --sweep {tmp}: no job folders with run_info.json"),
    ],
)
def test_selections_that_find_nothing_fail_in_one_line(empty_store, monkeypatch, capsys, arguments, message):
    # The store is found where delegate-eval puts it: ./mlflow.db.
    monkeypatch.chdir(empty_store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([a.format(tmp=empty_store) for a in arguments])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(message.format(tmp=empty_store.resolve()))
    assert len(error.strip().splitlines()) == 1


def test_no_store_here_is_one_line_and_no_store_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"error: no MLflow store at sqlite:///{tmp_path.resolve()}/mlflow.db; run delegate-eval first, or pass --tracking-uri\n"
    )
    assert list(tmp_path.iterdir()) == []
