"""Faults at the level of a whole run, through real jobs (`run_job` in process, both models on scripted servers over
loopback, a real SQLite MLflow store): an SLM outage that resume repairs, a budget, the error-rate stop, and two
resumes of one run folder at once."""

import contextlib
import io
import json
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.errors import ConfigError, RunFailed, RunStopped
from delegate.job import STOP_REASON_TAG, STOPPED_TAG, run_job
from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply, ScriptedServer
from delegate.tracking.mlflow_run import ERROR_TAG

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}
SLM_DOWN = "slm backend down: upstream connection refused"


def gold_in(request: dict) -> str:
    text = "\n".join(m.get("content") or "" for m in request["messages"])
    return next(g for q, g in GOLD_BY_QUESTION.items() if q in text)


def router_llm(request: dict) -> Reply:
    """Delegates the whole problem once; then answers the SLM's number if the tool message carries the gold, else -1
    (alone, it gets every problem wrong: a degraded problem shows in the accuracy)."""
    gold = gold_in(request)
    tool_messages = [m["content"] for m in request["messages"] if m["role"] == "tool"]
    if request.get("tools") and not tool_messages:
        question = next(m["content"] for m in request["messages"] if m["role"] == "user")
        return Reply(tool_calls=[{"name": "ask_math_assistant", "arguments": json.dumps({"question": question})}])
    answer = gold if any(gold in text for text in tool_messages) else "-1"
    return Reply(content=f"So the answer is \\boxed{{{answer}}}.")


class Slm:
    """Right every time, unless `down_for` holds the problem's gold: then HTTP 503 with the server's words."""

    def __init__(self, down_for: set[str] = frozenset()):
        self.down_for = set(down_for)

    def __call__(self, request: dict) -> Reply:
        gold = gold_in(request)
        if gold in self.down_for:
            return Reply(status=503, content=SLM_DOWN)
        return Reply(content=f"The answer is \\boxed{{{gold}}}.")


def job_config(root: Path, llm_url: str, slm_url: str, *extra: str):
    return compose_config(
        [
            "experiment=local",
            "samples=6",
            "concurrency=2",
            "llm=openai-compatible",
            f"llm.base_url={llm_url}",
            "llm.model=scripted-llm",
            "llm.max_retries=0",
            "slm=openai-compatible",
            f"slm.base_url={slm_url}",
            "slm.model=scripted-slm",
            "slm.max_retries=0",
            f"tracking.uri=sqlite:///{root}/mlflow.db",
            "cache.enabled=false",
            *extra,
        ]
    )


def save_hydra_config(cfg, output_dir: Path) -> None:
    """What Hydra leaves in a run folder, which resume compares the new config with."""
    (output_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / ".hydra" / "config.yaml")


def quiet_job(cfg, root: Path, output_dir: Path) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        return run_job(cfg, root, output_dir)


def test_an_slm_outage_marks_problems_degraded_and_resume_repairs_them(tmp_path):
    slm = Slm()
    with ScriptedServer(router_llm) as llm, ScriptedServer(slm) as slm_server:
        cfg = job_config(tmp_path, llm.base_url, slm_server.base_url, "strategy=router")
        # Find the six problems' golds on a healthy run's records, then take the SLM down for half of them.
        probe = quiet_job(
            job_config(tmp_path / "probe", llm.base_url, slm_server.base_url, "strategy=router"),
            tmp_path / "probe",
            tmp_path / "probe" / "run",
        )
        assert probe["accuracy"] == 1.0
        golds = sorted(r.gold for r in read_records(tmp_path / "probe" / "run" / SAMPLES_FILE))
        slm.down_for = set(golds[:3])
        llm_requests_before = len(llm.requests)

        first = quiet_job(cfg, tmp_path, tmp_path / "run")
        records = read_records(tmp_path / "run" / SAMPLES_FILE)
        degraded = [r for r in records if r.degraded]
        assert {r.gold for r in degraded} == slm.down_for
        assert all(r.error is None and not r.correct for r in degraded)
        assert all(
            len(r.failures) == 1 and r.failures[0].startswith("slm: InternalServerError (HTTP 503)") for r in degraded
        )
        assert first["n_errors"] == 0 and first["n_degraded"] == 3
        assert first["accuracy"] == 0.5 and first["accuracy_clean"] == 1.0
        # The LLM's provider heard what failed (kind, status), never the SLM server's words.
        sent_to_llm = str(llm.requests[llm_requests_before:])
        assert "HTTP 503" in sent_to_llm and SLM_DOWN not in sent_to_llm

        # The SLM is back: resume solves the degraded problems again, and only those.
        slm.down_for = set()
        slm_requests_before = len(slm_server.requests)
        save_hydra_config(cfg, tmp_path / "run")
        resumed = quiet_job(
            job_config(tmp_path, llm.base_url, slm_server.base_url, "strategy=router", f"resume={tmp_path / 'run'}"),
            tmp_path,
            tmp_path / "other",
        )
        assert len(slm_server.requests) - slm_requests_before == 3
    assert resumed["run_id"] == first["run_id"]
    assert resumed["n_degraded"] == 0 and resumed["accuracy"] == 1.0 and resumed["n_samples"] == 6
    records = read_records(tmp_path / "run" / SAMPLES_FILE)
    assert sorted(r.id for r in records) == sorted({r.id for r in records}) and len(records) == 6


def test_redo_degraded_false_keeps_degraded_problems_on_resume(tmp_path):
    with ScriptedServer(router_llm) as llm, ScriptedServer(Slm(down_for=set(GOLD_BY_QUESTION.values()))) as slm:
        cfg = job_config(tmp_path, llm.base_url, slm.base_url, "strategy=router", "samples=2")
        with pytest.raises(RunFailed, match="every one of the 2 SLM calls failed"):  # its records are kept
            quiet_job(cfg, tmp_path, tmp_path / "run")
        save_hydra_config(cfg, tmp_path / "run")
        requests_before = len(slm.requests)
        with pytest.raises(RunFailed, match="every one of the 2 SLM calls failed"):  # the same records, kept
            quiet_job(
                job_config(
                    tmp_path,
                    llm.base_url,
                    slm.base_url,
                    "strategy=router",
                    "samples=2",
                    "redo_degraded=false",
                    f"resume={tmp_path / 'run'}",
                ),
                tmp_path,
                tmp_path / "other",
            )
        assert len(slm.requests) == requests_before
    records = read_records(tmp_path / "run" / SAMPLES_FILE)
    assert len(records) == 2 and all(r.degraded for r in records)


def priced_llm_job(root: Path, url: str, *extra: str):
    # 10 prompt tokens a call at 100,000 USD per 1M: 1 USD a problem.
    return job_config(root, url, url, "strategy=llm", "concurrency=1", "llm.price_input_usd_per_1m=100000", *extra)


def test_a_budget_stops_the_run_and_a_higher_one_resumes_it(tmp_path):
    with ScriptedServer(default=Reply(content="\\boxed{1}", prompt_tokens=10, completion_tokens=5)) as server:
        cfg = priced_llm_job(tmp_path, server.base_url, "max_cost_usd=3")
        with pytest.raises(RunStopped) as stopped:
            quiet_job(cfg, tmp_path, tmp_path / "run")
        assert stopped.value.limit == "max_cost_usd"
        assert str(stopped.value).startswith("max_cost_usd=3")
        # The command that continues it carries a budget for all 6 problems at 1 USD each, with a quarter to spare.
        assert stopped.value.resume_with == {"max_cost_usd": "7.5"}
        records = read_records(tmp_path / "run" / SAMPLES_FILE)
        assert len(records) == 3 and sum(r.cost_usd for r in records) == pytest.approx(3.0)
        assert len(server.requests) == 3

        client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        [run] = client.search_runs([client.get_experiment_by_name("delegate-gsm8k").experiment_id])
        assert run.info.status == "KILLED"
        assert run.data.tags[STOPPED_TAG] == "max_cost_usd"
        assert run.data.tags[STOP_REASON_TAG] == str(stopped.value) == run.data.tags[ERROR_TAG]
        assert run.data.metrics["n_samples"] == 3 and run.data.metrics["cost_usd"] == pytest.approx(3.0)

        save_hydra_config(cfg, tmp_path / "run")
        resumed = quiet_job(
            priced_llm_job(tmp_path, server.base_url, "max_cost_usd=100", f"resume={tmp_path / 'run'}"),
            tmp_path,
            tmp_path / "other",
        )
        assert len(server.requests) == 6
    assert resumed["run_id"] == run.info.run_id and resumed["n_samples"] == 6
    assert resumed["cost_usd"] == pytest.approx(6.0)
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    # The earlier session's reasons for stopping are gone from the finished run.
    assert not {STOPPED_TAG, STOP_REASON_TAG, ERROR_TAG} & set(finished.data.tags)


def test_too_many_errors_stop_the_run_failed(tmp_path):
    calls = iter(range(10_000))

    def two_in_three_fail(request: dict) -> Reply:
        return Reply(status=500, content="down") if next(calls) % 3 else Reply(content="\\boxed{1}")

    with ScriptedServer(two_in_three_fail) as server:
        cfg = job_config(tmp_path, server.base_url, server.base_url, "strategy=llm", "concurrency=1", "samples=24")
        with pytest.raises(RunStopped) as stopped:
            quiet_job(cfg, tmp_path, tmp_path / "run")
    assert stopped.value.limit == "max_error_rate"
    assert str(stopped.value).startswith("max_error_rate=0.5: ")
    records = read_records(tmp_path / "run" / SAMPLES_FILE)
    assert 10 <= len(records) < 24
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("delegate-gsm8k").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags[STOPPED_TAG] == "max_error_rate"
    assert run.data.metrics["n_samples"] == len(records)


def test_a_second_resume_of_a_run_folder_in_use_is_refused(tmp_path):
    release = threading.Event()
    held = threading.Event()
    answered = iter(range(10_000))

    def hold_after_two(request: dict) -> Reply:
        if next(answered) >= 2:
            held.set()
            release.wait(timeout=60)
        return Reply(content="\\boxed{1}", prompt_tokens=10, completion_tokens=5)

    with ScriptedServer(hold_after_two) as server:
        # A run stopped by its budget after 2 problems: a run folder to resume.
        cfg = priced_llm_job(tmp_path, server.base_url, "max_cost_usd=2")
        with pytest.raises(RunStopped):
            quiet_job(cfg, tmp_path, tmp_path / "run")
        save_hydra_config(cfg, tmp_path / "run")
        resume = priced_llm_job(tmp_path, server.base_url, "max_cost_usd=100", f"resume={tmp_path / 'run'}")
        outcome: dict = {}

        def first_resume() -> None:
            try:
                outcome["summary"] = quiet_job(resume, tmp_path, tmp_path / "first")
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = error

        thread = threading.Thread(target=first_resume)
        thread.start()
        try:
            assert held.wait(timeout=60), "the first resume never reached the server"
            with pytest.raises(ConfigError) as refused:
                quiet_job(resume, tmp_path, tmp_path / "second")
        finally:
            release.set()
            thread.join(timeout=60)
    assert str(refused.value).startswith(f"resume={tmp_path / 'run'}: another delegate-eval is writing this run folder")
    assert "error" not in outcome, outcome.get("error")
    records = read_records(tmp_path / "run" / SAMPLES_FILE)
    assert len(records) == 6 == len({r.id for r in records})


def test_rows_whose_gold_is_not_a_number_are_skipped_and_counted(tmp_path):
    data = tmp_path / "mixed.jsonl"
    rows = [{"question": f"What is {n} + 1?", "answer": f"#### {n + 1}"} for n in range(4)]
    rows[2]["answer"] = "#### four"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with ScriptedServer(default=Reply(content="\\boxed{2}")) as server:
        summary = quiet_job(
            job_config(
                tmp_path,
                server.base_url,
                server.base_url,
                "strategy=llm",
                "samples=null",
                f"data.path={data}",
                "data.name=mixed",
            ),
            tmp_path,
            tmp_path / "run",
        )
        assert len(server.requests) == 3
    assert summary["n_skipped"] == 1 and summary["n_samples"] == 3
    assert sorted(r.id for r in read_records(tmp_path / "run" / SAMPLES_FILE)) == [0, 1, 3]
