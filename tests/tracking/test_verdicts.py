"""Each problem's verdict on its MLflow trace, the run's per-problem table, description and dataset, and a sweep's
runs grouped under one run: made by real jobs (`run_job`, models served by the scripted server) in real SQLite stores."""

import contextlib
import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.tracing.client import TracingClient
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.job import run_job
from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE, SWEEP_SUMMARY_FILE
from delegate.sweep import PARENT_RUN_TAG, SWEEP_TAG, SweepSummary, sweep_run_name
from delegate.testing.scripted_server import Reply, ScriptedServer
from delegate.tracking import sql_fastpath, verdicts
from delegate.tracking.mlflow_run import TrackedRun
from delegate.tracking.trace_writer import BATCH_WAIT_S, TraceWriter, mlflow_trace_id
from delegate.tracking.traces import SpanRecord
from tests.support.cli import run_eval
from tests.support.records import make_record
from tests.tracking.test_tracking_server import mlflow_server  # noqa: F401 - a fixture

SAMPLES = 6
GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}
# The 6 problems drawn with seed 123 (id: gold): 1: 48, 2: 85, 3: 8, 8: 50, 13: 27, 22: 216. Even golds are answered
# right, odd ones wrong, and problem 22's calls fail while `failing` is set.
RIGHT, WRONG, FAILED = {1, 3, 8}, {2, 13}, {22}
FAILING_GOLD = "216"


class Models:
    """Both models, on one scripted server: right on even golds, wrong on odd ones, HTTP 500 on FAILING_GOLD."""

    def __init__(self):
        self.failing = True

    def __call__(self, request: dict) -> Reply:
        text = "\n".join(m.get("content") or "" for m in request["messages"])
        gold = next(g for q, g in GOLD_BY_QUESTION.items() if q in text)
        if self.failing and gold == FAILING_GOLD:
            return Reply(status=500, content="backend down")
        return Reply(
            content=f"So the answer is \\boxed{{{gold if int(gold) % 2 == 0 else -1}}}.",
            prompt_tokens=30,
            completion_tokens=int(gold) % 7 + 3,
        )


def job_config(root: Path, base_url: str, strategy: str, *extra: str):
    return compose_config(
        [
            "experiment=local",
            f"strategy={strategy}",
            f"samples={SAMPLES}",
            "llm=openai-compatible",
            f"llm.base_url={base_url}",
            "llm.model=scripted-llm",
            "llm.name=scripted-llm",
            "llm.max_retries=0",
            "slm=openai-compatible",
            f"slm.base_url={base_url}",
            "slm.model=scripted-slm",
            "slm.name=scripted-slm",
            "slm.max_retries=0",
            f"tracking.uri=sqlite:///{root}/mlflow.db",
            "cache.enabled=false",
            *extra,
        ]
    )


def quiet_job(cfg, root: Path, output_dir: Path, **kwargs) -> tuple[dict, str]:
    """run_job, and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        summary = run_job(cfg, root, output_dir, **kwargs)
    return summary, out.getvalue()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """An llm run and an slm run over the same 6 problems, in one store."""
    root = tmp_path_factory.mktemp("verdicts")
    with ScriptedServer(Models()) as server:
        made = {s: quiet_job(job_config(root, server.base_url, s), root, root / s) for s in ("llm", "slm")}
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    return {
        "root": root,
        "client": client,
        "summaries": {s: summary for s, (summary, _) in made.items()},
        "printed": {s: printed for s, (_, printed) in made.items()},
        "records": {s: {r.id: r for r in read_records(root / s / SAMPLES_FILE)} for s in made},
        "experiment_id": client.get_run(made["llm"][0]["run_id"]).info.experiment_id,
    }


def run_traces(client, run_id: str, filter_string: str | None = None) -> list:
    experiment_id = client.get_run(run_id).info.experiment_id
    return client.search_traces(locations=[experiment_id], run_id=run_id, filter_string=filter_string, max_results=500)


def by_problem(traces) -> dict[int, object]:
    found = {}
    for trace in traces:
        problem = int(trace.info.tags[verdicts.PROBLEM_TAG])
        assert problem not in found, f"two traces of problem {problem}"
        found[problem] = trace
    return found


def test_each_trace_carries_the_gold_the_score_and_tags(jobs):
    summary, records = jobs["summaries"]["llm"], jobs["records"]["llm"]
    traces = by_problem(run_traces(jobs["client"], summary["run_id"]))
    assert sorted(traces) == sorted(RIGHT | WRONG | FAILED) == sorted(records)
    for problem, trace in traces.items():
        record = records[problem]
        # Exactly one of each: nothing written twice.
        [gold] = [a for a in trace.info.assessments if a.name == verdicts.GOLD]
        [correct] = [a for a in trace.info.assessments if a.name == verdicts.CORRECT]
        assert len(trace.info.assessments) == 2
        assert (gold.expectation.value, gold.source.source_type, gold.source.source_id) == (
            record.gold,
            "HUMAN",
            "sample/sample",
        )
        assert correct.feedback.value is record.correct
        assert (correct.source.source_type, correct.source.source_id) == ("CODE", verdicts.SCORER)
        assert correct.metadata == {
            "extracted": record.extracted or "",
            "extraction_rule": record.extraction_rule,
            "verdict": verdicts.verdict(record),
        }
        tags = trace.info.tags
        assert {k: tags[k] for k in ("strategy", "run", "problem_id", "dataset", "verdict")} == {
            "strategy": "llm",
            "run": summary["run_name"],
            "problem_id": str(problem),
            "dataset": "sample/sample",
            "verdict": "right" if problem in RIGHT else "wrong" if problem in WRONG else "error",
        }
        # A wrong answer is a trace that ran fine (OK) with `correct` false; only a failed model call is an ERROR.
        assert trace.info.state.value == ("ERROR" if problem in FAILED else "OK")
    assert traces[2].info.assessments[1].rationale == "extracted '-1' (rule: boxed), gold '85'"
    assert traces[1].info.assessments[1].rationale == "extracted '48' (rule: boxed), gold '48'"
    assert (
        traces[22]
        .info.assessments[1]
        .rationale.startswith("no answer: a model call failed (InternalServerError (HTTP 500): ")
    )


def test_the_wrong_answers_filter_finds_exactly_the_problems_not_answered_right(jobs):
    client, run_id = jobs["client"], jobs["summaries"]["llm"]["run_id"]
    assert verdicts.WRONG_ANSWERS_FILTER == "feedback.correct = 'false'"
    assert sorted(by_problem(run_traces(client, run_id, verdicts.WRONG_ANSWERS_FILTER))) == sorted(WRONG | FAILED)
    assert sorted(by_problem(run_traces(client, run_id, "feedback.correct = 'true'"))) == sorted(RIGHT)
    # The verdict tag tells a wrong answer from a failed call.
    assert sorted(by_problem(run_traces(client, run_id, "tags.verdict = 'wrong'"))) == sorted(WRONG)
    assert sorted(by_problem(run_traces(client, run_id, "tags.verdict = 'error'"))) == sorted(FAILED)


def test_one_problems_traces_line_up_across_strategies(jobs):
    client = jobs["client"]
    traces = client.search_traces(locations=[jobs["experiment_id"]], filter_string="tags.problem_id = '2'")
    assert sorted((t.info.tags["strategy"], t.info.tags["run"]) for t in traces) == [
        ("llm", jobs["summaries"]["llm"]["run_name"]),
        ("slm", jobs["summaries"]["slm"]["run_name"]),
    ]


def problem_table(client, run_id: str, download_dir: Path) -> pd.DataFrame:
    """The run's problems.json as MLflow's table view reads it (`MlflowClient.load_table` reads the format, but finds
    runs through the default tracking URI, not the client's)."""
    path = client.download_artifacts(run_id, verdicts.PROBLEMS_TABLE, str(download_dir / "downloads" / run_id))
    return pd.read_json(path, orient="split", dtype=False)


def test_the_run_holds_its_per_problem_table_description_and_dataset(jobs):
    client, summary, records = jobs["client"], jobs["summaries"]["llm"], jobs["records"]["llm"]
    run = client.get_run(summary["run_id"])
    assert json.loads(run.data.tags[verdicts.LOGGED_ARTIFACTS_TAG]) == [
        {"path": verdicts.PROBLEMS_TABLE, "type": "table"}
    ]
    table = problem_table(client, summary["run_id"], jobs["root"])
    assert list(table.columns) == [
        "id",
        "question",
        "gold",
        "extracted",
        "extraction_rule",
        "correct",
        "verdict",
        "degraded",
        "tool_calls",
        "llm_tokens",
        "slm_tokens",
        "latency_s",
        "cost_usd",
        "error",
        "failures",
    ]
    assert table["id"].tolist() == sorted(records)
    for row in table.itertuples():
        record = records[row.id]
        assert (row.question, row.gold, row.correct, row.llm_tokens, row.slm_tokens) == (
            record.question,
            record.gold,
            record.correct,
            record.usage["llm"].tokens,
            0,
        )
    assert table.set_index("id").loc[22, "error"].startswith("InternalServerError")

    description = run.data.tags[verdicts.NOTE_TAG]
    assert description.startswith(
        f"**llm (scripted-llm)** on 6 problems of `sample/sample`: accuracy **50.0%** "
        f"[{summary['accuracy_ci_low']:.1%}, {summary['accuracy_ci_high']:.1%}] (Wilson 95% CI), "
        f"60.0% [{summary['accuracy_clean_ci_low']:.1%}, {summary['accuracy_clean_ci_high']:.1%}] on the 5 clean problems · "
    )
    assert "tokens per problem" in description and "cost 0.0000 USD" in description and "1 failed" in description
    assert "0 degraded (answered after a model call failed)" in description
    assert not table["degraded"].any() and table["failures"].isna().all()

    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "sample/sample"
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == SAMPLES
    assert dataset_input.dataset.source_type == "local"
    assert json.loads(dataset_input.dataset.source)["uri"].endswith("delegate/data/builtin/sample.jsonl")
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "eval")]
    # The slm run drew the same problems: the same digest.
    [slm_input] = client.get_run(jobs["summaries"]["slm"]["run_id"]).inputs.dataset_inputs
    assert slm_input.dataset.digest == dataset_input.dataset.digest


def test_each_job_prints_how_to_open_its_run_in_the_ui(jobs):
    summary, root = jobs["summaries"]["llm"], jobs["root"]
    lines = jobs["printed"]["llm"].splitlines()
    command = next(line for line in lines if line.startswith("MLflow UI: "))
    assert command == f"MLflow UI: {verdicts.mlflow_command()} ui --backend-store-uri sqlite:///{root}/mlflow.db"
    assert Path(verdicts.mlflow_command()).is_absolute()
    assert f"this run: http://127.0.0.1:5000/#/experiments/{jobs['experiment_id']}/runs/{summary['run_id']}" in lines


def test_the_ui_hint_makes_a_sqlite_path_absolute_and_hides_a_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        verdicts.ui_hint("sqlite:///runs/mlflow.db", "3", "abc")
        .splitlines()[0]
        .endswith(f"ui --backend-store-uri sqlite:///{tmp_path}/runs/mlflow.db")
    )
    # The whole userinfo goes (delegate.redaction), the user name with the password.
    assert "--backend-store-uri 'postgresql://***@db/mlflow'" in verdicts.ui_hint(
        "postgresql://me:s3cret@db/mlflow", "3", "abc"
    )
    assert verdicts.ui_hint("http://me:s3cret@mlflow-host:5000/", "3", "abc") == (
        "MLflow UI: http://***@mlflow-host:5000/#/experiments/3/runs/abc"
    )


def save_hydra_config(cfg, output_dir: Path) -> None:
    """What Hydra leaves in a run folder, which resume compares the new config with."""
    (output_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / ".hydra" / "config.yaml")


def test_a_resumed_job_gives_each_new_trace_its_verdict_once_and_replaces_the_table(tmp_path):
    models = Models()
    with ScriptedServer(models) as server:
        first, _ = quiet_job(job_config(tmp_path, server.base_url, "llm"), tmp_path, tmp_path / "run")
        save_hydra_config(job_config(tmp_path, server.base_url, "llm"), tmp_path / "run")
        models.failing = False  # the server is back: resume solves the failed problem again
        resumed, _ = quiet_job(
            job_config(tmp_path, server.base_url, "llm", f"resume={tmp_path / 'run'}"), tmp_path, tmp_path / "other"
        )
    assert resumed["run_id"] == first["run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    traces = run_traces(client, first["run_id"])
    # Six from the first session, and problem 22 again: each trace with its own verdict, once.
    assert sorted(int(t.info.tags["problem_id"]) for t in traces) == sorted([*RIGHT, *WRONG, *FAILED, 22])
    assert all(sorted(a.name for a in t.info.assessments) == ["correct", "gold"] for t in traces)
    assert sorted(t.info.tags["verdict"] for t in traces if t.info.tags["problem_id"] == "22") == ["error", "right"]

    table = problem_table(client, first["run_id"], tmp_path)
    assert table["id"].tolist() == sorted(RIGHT | WRONG | FAILED)
    assert table.set_index("id").loc[22, "correct"]
    run = client.get_run(first["run_id"])
    assert "accuracy **66.7%**" in run.data.tags[verdicts.NOTE_TAG]
    assert len(run.inputs.dataset_inputs) == 1


def root_span(problem: int, trace_id: int) -> list[SpanRecord]:
    return [
        SpanRecord(
            name=f"problem-{problem}",
            span_type="AGENT",
            trace_id=trace_id,
            span_id=trace_id + 1,
            parent_id=None,
            start_ns=1_700_000_000_000_000_000,
            end_ns=1_700_000_000_100_000_000,
            inputs={"id": problem, "question": "q"},
            attributes={"strategy": "llm"},
        )
    ]


def test_a_record_that_comes_after_its_trace_was_written_is_attached_once(store_run):
    uri, client, experiment_id, run_id = store_run
    writer = TraceWriter(uri, experiment_id, run_id)
    writer.put(root_span(5, 100))
    time.sleep(4 * BATCH_WAIT_S)  # written without its record by now
    [trace] = client.search_traces(locations=[experiment_id], run_id=run_id)
    assert (trace.info.tags["problem_id"], trace.info.assessments) == ("5", [])
    writer.put_verdict(make_record(5, gold="7", extracted="8", correct=False))
    assert writer.close() is None
    [trace] = client.search_traces(locations=[experiment_id], run_id=run_id)
    assert {k: trace.info.tags[k] for k in ("strategy", "problem_id", "dataset", "verdict")} == {
        "strategy": "llm",
        "problem_id": "5",
        "dataset": "sample/sample",
        "verdict": "wrong",
    }
    assert sorted((a.name, a.value) for a in trace.info.assessments) == [("correct", False), ("gold", "7")]


def test_a_degraded_problem_is_tagged_and_listed_with_its_failures(store_run):
    uri, client, experiment_id, run_id = store_run
    writer = TraceWriter(uri, experiment_id, run_id)
    writer.put(root_span(1, 400))
    writer.put(root_span(2, 500))
    assert writer.close() is None
    failure = "slm: InternalServerError (HTTP 500): backend down"
    degraded = make_record(1, gold="12", extracted="12", degraded=True, failures=[failure])
    clean = make_record(2, gold="12", extracted="12")
    verdicts.log_trace_verdicts(
        TracingClient(uri).store,
        [
            verdicts.TraceVerdict(
                mlflow_trace_id(trace),
                verdicts.verdict_tags(record),
                verdicts.trace_assessments(record, mlflow_trace_id(trace)),
            )
            for trace, record in ((400, degraded), (500, clean))
        ],
    )
    found = client.search_traces(locations=[experiment_id], filter_string="tags.degraded = 'true'")
    assert [t.info.trace_id for t in found] == [mlflow_trace_id(400)]
    assert client.get_trace(mlflow_trace_id(500)).info.tags["degraded"] == "false"
    # Right, but the scorer's rationale says the answer came after a failed call.
    assert verdicts.rationale(degraded) == (
        f"extracted '12' (rule: boxed), gold '12'; degraded, answered after a model call failed ({failure})"
    )
    table = verdicts.problem_table([clean, degraded])
    assert table["degraded"].tolist() == [True, False]
    assert table["failures"].tolist()[0] == failure and table["failures"].isna().tolist() == [False, True]


def test_a_run_that_cannot_take_its_table_costs_one_line_and_no_result(store_run, capfd):
    uri, client, experiment_id, _ = store_run
    gone = TrackedRun(client, uri, experiment_id, "0" * 32)  # no such run
    verdicts.log_run_verdicts(gone, [make_record(1)], {}, DataConfig(name="sample", builtin="sample.jsonl"))
    [line] = capfd.readouterr().err.splitlines()
    assert line.startswith(
        "delegate: the run's per-problem table, description or dataset could not be logged to the "
        "MLflow store (the results are unaffected): "
    )
    assert uri not in line


def test_a_sweeps_job_runs_are_nested_under_its_report_run(tmp_path):
    sweep_dir = tmp_path / "outputs" / "multirun" / "2026-11-29" / "18-40-00-123456"
    with ScriptedServer(Models()) as server:
        for number, strategy in enumerate(("llm", "slm")):
            cfg = job_config(tmp_path, server.base_url, strategy, "samples=2")
            # What `sweep_tags()` gives a job of this sweep (tested through the CLI below).
            quiet_job(cfg, tmp_path, sweep_dir / f"{number}-{strategy}", extra_tags={SWEEP_TAG: str(sweep_dir)})
    hydra = {"sweep": {"dir": str(sweep_dir)}, "runtime": {"cwd": str(tmp_path)}}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        SweepSummary().on_multirun_end(
            OmegaConf.create({"hydra": hydra, "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}})
        )
    check_grouped_sweep(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"), sweep_dir, jobs=2)
    assert "MLflow: 2 job runs nested under the sweep's run sweep-2026-11-29-18-40-00-123456" in printed.getvalue()


def check_grouped_sweep(client, sweep_dir: Path, jobs: int) -> None:
    """The sweep's run (its report run) holds sweep_summary.csv and the report; every job run is its child."""
    experiment_id = client.get_experiment_by_name("delegate-gsm8k").experiment_id
    [parent] = client.search_runs([experiment_id], "tags.`delegate.report` = 'true'")
    children = client.search_runs([experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'")
    assert len(children) == jobs
    assert {r.data.tags[SWEEP_TAG] for r in children} == {parent.data.tags[SWEEP_TAG]} == {str(sweep_dir)}
    assert parent.info.run_name == sweep_run_name(sweep_dir)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {SWEEP_SUMMARY_FILE, "report.md", "comparison.csv"} <= artifacts
    logged = pd.read_csv(client.download_artifacts(parent.info.run_id, SWEEP_SUMMARY_FILE, str(sweep_dir / "check")))
    assert sorted(logged["run_id"]) == sorted(r.info.run_id for r in children)


@pytest.mark.slow  # one `delegate-eval -m` with two jobs: a process that imports the whole stack (10-30 s)
def test_a_real_sweep_tags_its_jobs_and_nests_them_under_its_run(tmp_path, scripted_server):
    scripted_server.set_responder(Models())
    done = run_eval(
        tmp_path,
        "-m",
        "experiment=local",
        "strategy=llm,slm",
        "samples=1",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "slm=openai-compatible",
        f"slm.base_url={scripted_server.base_url}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")
    check_grouped_sweep(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"), sweep_dir, jobs=2)
    # Each job says how to open the UI on this store, with its run's page.
    assert (
        done.stdout.count(
            f"MLflow UI: {verdicts.mlflow_command()} ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db"
        )
        == 2
    )
    assert done.stdout.count("this run: http://127.0.0.1:5000/#/experiments/") == 2


@pytest.mark.slow  # starts `mlflow server` (10-25 s)
def test_over_a_tracking_server_each_trace_gets_its_verdict_and_the_run_its_table(mlflow_server, tmp_path, capfd):  # noqa: F811
    url, _ = mlflow_server
    with ScriptedServer(Models()) as server:
        cfg = job_config(
            tmp_path, server.base_url, "llm", "tracking=server", f"tracking.uri={url}", "tracking.experiment=verdicts"
        )
        summary, printed = quiet_job(cfg, tmp_path, tmp_path / "job")
    client = MlflowClient(url)
    # No batch call over HTTP: the tags went with the spans, the assessments one call each.
    assert not sql_fastpath.available(TracingClient(url).store)
    traces = by_problem(run_traces(client, summary["run_id"]))
    assert sorted(traces) == sorted(RIGHT | WRONG | FAILED)
    for problem, trace in traces.items():
        assert trace.info.tags["verdict"] == ("right" if problem in RIGHT else "wrong" if problem in WRONG else "error")
        assert sorted(a.name for a in trace.info.assessments) == ["correct", "gold"]
    assert sorted(by_problem(run_traces(client, summary["run_id"], verdicts.WRONG_ANSWERS_FILTER))) == sorted(
        WRONG | FAILED
    )
    run = client.get_run(summary["run_id"])
    assert problem_table(client, summary["run_id"], tmp_path)["id"].tolist() == sorted(RIGHT | WRONG | FAILED)
    assert run.data.tags[verdicts.NOTE_TAG].startswith("**llm (scripted-llm)**")
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["sample/sample"]
    assert f"MLflow UI: {url}/#/experiments/{run.info.experiment_id}/runs/{summary['run_id']}" in printed.splitlines()
    assert "could not be" not in capfd.readouterr().err
