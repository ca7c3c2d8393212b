"""`delegate-score`: a finished run judged again by other scorers, with no model request, into a new MLflow run
tagged delegate.rescores; re-scored with its own scorer, a run's metrics come back exactly."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.errors import ConfigError
from delegate.records import read_records
from delegate.report import build_report
from delegate.rescore import rescore
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply
from tests.support.cli import DELEGATE_EVAL, mlflow_runs, run_eval
from tests.support.v2_fixture import RUN_IDS

DELEGATE_SCORE = DELEGATE_EVAL.with_name("delegate-score")


@pytest.mark.parametrize("strategy", sorted(RUN_IDS))
def test_rescored_with_its_own_scorer_a_run_keeps_every_metric(v2_store, v2_servers, strategy, tmp_path):
    result = rescore(str(v2_store / "outputs" / strategy), [], v2_store, output_dir=tmp_path / "rescored")
    assert [len(server.requests) for server in v2_servers] == [0, 0]
    client = MlflowClient(f"sqlite:///{v2_store}/mlflow.db")
    original, again = client.get_run(RUN_IDS[strategy]), client.get_run(result.run_id)
    for name, value in original.data.metrics.items():
        assert again.data.metrics[name] == value, name
    assert result.n_changed == 0 and result.scorers == ("numeric",)
    tags = again.data.tags
    assert tags["delegate.kind"] == "rescore" and tags["delegate.rescores"] == RUN_IDS[strategy]
    assert tags["strategy"] == strategy and tags["llm"] == original.data.tags["llm"]
    assert again.info.run_name == f"{original.info.run_name}-rescored-numeric"
    before = {r.id: r for r in read_records(v2_store / "outputs" / strategy / SAMPLES_FILE)}
    after = read_records(tmp_path / "rescored" / SAMPLES_FILE)
    assert [r.id for r in after] == sorted(before)
    for record in after:
        assert (record.correct, record.extracted, record.usage, record.response) == (
            before[record.id].correct,
            before[record.id].extracted,
            before[record.id].usage,
            before[record.id].response,
        )
        assert set(record.scores) == {"numeric"}


def test_a_second_scorer_is_kept_beside_the_first(v2_store, tmp_path):
    result = rescore(
        str(v2_store / "outputs" / "llm"), ["data.scorers=[exact,symbolic]"], v2_store, output_dir=tmp_path / "r"
    )
    assert result.scorers == ("numeric", "exact", "symbolic")
    records = read_records(tmp_path / "r" / SAMPLES_FILE)
    assert all(list(r.scores) == ["numeric", "exact", "symbolic"] for r in records)
    # Integers boxed: the three scorers agree.
    assert all(len({s.correct for s in r.scores.values()}) == 1 for r in records)
    comparisons = {c.name: c for c in result.comparisons}
    assert comparisons["accuracy_exact"].reproduced == comparisons["accuracy_symbolic"].reproduced == 0.8


def test_the_report_leaves_a_rescoring_out_unless_named(v2_store, tmp_path):
    result = rescore(str(v2_store / "outputs" / "slm"), [], v2_store, output_dir=tmp_path / "r")
    uri = f"sqlite:///{v2_store}/mlflow.db"
    by_experiment = build_report(uri, tmp_path / "a", experiments=["delegate-gsm8k"], log_run=False)
    report = json.loads((by_experiment.out_dir / "report.json").read_text(encoding="utf-8"))
    assert len(report["runs"]) == 3
    assert any("a rescore run" in line for line in report["skipped"])
    named = build_report(uri, tmp_path / "b", run_ids=[RUN_IDS["slm"], result.run_id], log_run=False)
    assert len(json.loads((named.out_dir / "report.json").read_text(encoding="utf-8"))["runs"]) == 2


def test_a_scorer_that_cannot_read_the_gold_is_one_line(v2_store, tmp_path):
    records = read_records(v2_store / "outputs" / "llm" / SAMPLES_FILE)
    with pytest.raises(ConfigError, match=r"^data\.scorer=nope is unknown; use one of \["):
        rescore(str(v2_store / "outputs" / "llm"), ["data.scorer=nope"], v2_store, output_dir=tmp_path / "r")
    assert records  # the original run is untouched
    assert not (tmp_path / "r").exists()


def test_delegate_score_from_the_command_line_changes_verdicts_without_a_model(tmp_path, scripted_server):
    # Every answer is the gold written as a decimal ("18.0"): right for the numeric scorer, wrong for exact text.
    gold_of = {p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)}

    def reply(body: dict) -> Reply:
        question = body["messages"][-1]["content"]
        return Reply(content=f"So \\boxed{{{gold_of[question]}.0}}.")

    scripted_server.set_responder(reply)
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "samples=4",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    client, [run] = mlflow_runs(tmp_path)
    assert run.data.metrics["accuracy"] == 1.0
    requests_before = len(scripted_server.requests)
    rescored = subprocess_score(tmp_path, run.info.run_id, "data.scorer=exact")
    assert rescored.returncode == 0, rescored.stderr[-2000:]
    assert len(scripted_server.requests) == requests_before
    assert "4 of 4 verdicts of the primary scorer (exact) changed" in rescored.stdout
    assert "0 model requests" in rescored.stdout
    _, runs = mlflow_runs(tmp_path)
    again = next(r for r in runs if r.data.tags.get("delegate.rescores") == run.info.run_id)
    assert again.data.metrics["accuracy"] == 0.0
    summary = json.loads(next(tmp_path.glob("outputs/rescore/*/*/summary.json")).read_text(encoding="utf-8"))
    assert summary["accuracy"] == 0.0 and summary["method"] == "llm (default)"
    gone = subprocess_score(tmp_path, "outputs/no-such-folder")
    assert gone.returncode == 2
    assert gone.stderr.strip() == (
        "error: outputs/no-such-folder: no such folder; give a run folder of delegate-eval "
        "(outputs/<date>/<time>-<strategy>) or an MLflow run id"
    )
    bad = subprocess_score(tmp_path, "no-such-run")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: no-such-run: neither a run folder of delegate-eval nor a run id")


def subprocess_score(cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DELEGATE_SCORE), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
