"""`delegate-eval` in a subprocess: the response cache across jobs, and resuming a job stopped by Ctrl-C or SIGKILL."""

import itertools
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.records import SampleRecord, parse_record, read_records
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import DELEGATE_EVAL, logged_records, mlflow_runs, run_eval

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}
# Metrics that depend on the answers and their usage only, never on timing or on where the answers came from.
DETERMINISTIC_METRICS = {
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "avg_llm_prompt_tokens",
    "avg_llm_completion_tokens",
    "avg_llm_tokens",
    "avg_slm_prompt_tokens",
    "avg_slm_completion_tokens",
    "avg_slm_tokens",
    "avg_tool_calls",
    "delegation_rate",
    "cost_usd",
    "n_samples",
    "n_errors",
}
TIMING_METRICS = {"avg_latency_s", "p50_latency_s", "p95_latency_s", "avg_slm_latency_s"}
CACHE_METRICS = {"cache_hit_rate", "cache_saved_usd"}


def answer_half_right(delay_s: float = 0.0):
    """Right for even golds, wrong for odd ones, with usage that differs per problem; each reply after `delay_s`."""

    def respond(request: dict) -> Reply:
        gold = GOLD_BY_QUESTION[request["messages"][-1]["content"]]
        answer = gold if int(gold) % 2 == 0 else "-1"
        return Reply(
            content=f"So the total is \\boxed{{{answer}}}.",
            prompt_tokens=len(gold) + 40,
            completion_tokens=int(gold) % 7 + 3,
            delay_s=delay_s,
        )

    return respond


def llm_job(server: ScriptedServer, *extra: str) -> list[str]:
    return [
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={server.base_url}",
        "llm.price_input_usd_per_1m=2.5",
        "llm.price_output_usd_per_1m=10",
        *extra,
    ]


def question_of(request: dict) -> str:
    return request["messages"][-1]["content"]


# The response cache


def test_a_repeated_job_is_answered_from_the_cache(tmp_path, scripted_server):
    scripted_server.set_responder(answer_half_right())
    job = llm_job(scripted_server, "samples=6", f"cache.path={tmp_path}/cache.sqlite")

    first = run_eval(tmp_path, *job)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(scripted_server.requests) == 6
    second = run_eval(tmp_path, *job)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(scripted_server.requests) == 6
    assert (tmp_path / "cache.sqlite").is_file()
    assert not (tmp_path / ".cache").exists()

    client, (made, replayed) = mlflow_runs(tmp_path)
    assert made.info.status == replayed.info.status == "FINISHED"
    assert (
        set(made.data.metrics) == set(replayed.data.metrics) >= DETERMINISTIC_METRICS | TIMING_METRICS | CACHE_METRICS
    )
    for name in set(made.data.metrics) - TIMING_METRICS - CACHE_METRICS:
        assert replayed.data.metrics[name] == pytest.approx(made.data.metrics[name]), name
    assert made.data.metrics["cost_usd"] > 0
    assert made.data.metrics["cache_saved_usd"] == 0
    assert made.data.metrics["cache_hit_rate"] == 0
    # A replayed job still reports what its calls cost, and that the cache saved all of it.
    assert replayed.data.metrics["cache_hit_rate"] == 1.0
    assert replayed.data.metrics["cache_saved_usd"] == pytest.approx(replayed.data.metrics["cost_usd"])

    made_records = {r.id: r for r in logged_records(client, made, tmp_path / "download")}
    replayed_records = logged_records(client, replayed, tmp_path / "download")
    assert len(replayed_records) == 6 and {r.id for r in replayed_records} == set(made_records)
    for record in replayed_records:
        before = made_records[record.id]
        assert record.usage["llm"].cache_hits == record.usage["llm"].calls == 1
        assert before.usage["llm"].cache_hits == 0
        assert (record.response, record.correct) == (before.response, before.correct)
        assert (record.usage["llm"].prompt_tokens, record.usage["llm"].completion_tokens) == (
            before.usage["llm"].prompt_tokens,
            before.usage["llm"].completion_tokens,
        )
        assert record.cache_saved_usd == pytest.approx(record.cost_usd) and record.cost_usd > 0
        assert before.cache_saved_usd == 0

    uncached = run_eval(tmp_path, *job, "cache.enabled=false")
    assert uncached.returncode == 0, uncached.stderr[-3000:]
    assert len(scripted_server.requests) == 12
    _, runs = mlflow_runs(tmp_path)
    assert runs[2].data.metrics["cache_hit_rate"] == 0
    assert runs[2].data.metrics["cost_usd"] == pytest.approx(made.data.metrics["cost_usd"])


# Resume

RESUMABLE = ("samples=8", "concurrency=1", "cache.enabled=false")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The metrics and record ids of the same job run to the end in one go."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    with ScriptedServer(answer_half_right()) as server:
        done = run_eval(cwd, *llm_job(server, *RESUMABLE))
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(cwd)
    return run.data.metrics, sorted(r.id for r in logged_records(client, run, cwd / "download"))


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a native library loaded earlier in this test process may have set SIGINT to
    be ignored, and an ignored signal stays ignored across exec (the job then never sees the test's SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(cwd: Path, *overrides: str) -> subprocess.Popen:
    log = cwd / "interrupted.log"
    with log.open("w") as out:
        return subprocess.Popen(
            [str(DELEGATE_EVAL), *overrides],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=as_from_a_terminal,
        )


def wait_for_records(cwd: Path, process: subprocess.Popen, at_least: int, timeout_s: float = 120) -> Path:
    """The job's samples.jsonl, once it holds `at_least` finished records."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list(cwd.glob("outputs/**/samples.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= at_least:
            return found[0]
        if process.poll() is not None:
            pytest.fail(
                f"the job ended (rc {process.returncode}) first:\n{(cwd / 'interrupted.log').read_text()[-3000:]}"
            )
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no {at_least} records in {timeout_s}s")


def interrupt(cwd: Path, server: ScriptedServer, how: signal.Signals) -> tuple[Path, subprocess.Popen]:
    """Start the job, and signal it once 3 problems are finished. The server holds every later reply until the
    signal has been sent, so the job is still running then however slow the machine is."""
    answer = answer_half_right(delay_s=0.2)
    signalled = threading.Event()
    replies = itertools.count()

    def hold_after_three(request: dict) -> Reply:
        if next(replies) >= 3:
            signalled.wait(timeout=120)
        return answer(request)

    server.set_responder(hold_after_three)
    process = start_cli(cwd, *llm_job(server, *RESUMABLE))
    try:
        samples = wait_for_records(cwd, process, at_least=3)
        assert process.poll() is None, "the job ended before it was signalled"
        process.send_signal(how)
        process.wait(timeout=60)
    finally:
        signalled.set()
        server.set_responder(answer)
    return samples, process


def finished_before(samples: Path) -> list[SampleRecord]:
    """The whole records an interrupted job left (a line cut short by SIGKILL would not count)."""
    text = samples.read_text(encoding="utf-8")
    return [parse_record(json.loads(line), str(samples)) for line in text[: text.rfind("\n") + 1].splitlines()]


def check_resumed(
    cwd: Path,
    server: ScriptedServer,
    samples: Path,
    run_id: str,
    before: list[dict],
    resume: str,
    uninterrupted,
    every_finished_problem_traced: bool,
):
    requests_before = len(server.requests)
    done = run_eval(cwd, *llm_job(server, *RESUMABLE), f"resume={resume}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {samples.parent}: {len(before)} problems finished, {8 - len(before)} to go" in done.stdout

    client, [run] = mlflow_runs(cwd)
    assert run.info.run_id == run_id
    assert run.info.status == "FINISHED"
    # One samples.jsonl: the resumed job wrote into the interrupted job's folder.
    assert list(cwd.glob("outputs/**/samples.jsonl")) == [samples]
    records = read_records(samples)
    assert len(records) == 8
    assert sorted(r.id for r in records) == uninterrupted[1]
    assert records[: len(before)] == before
    assert sorted(r.id for r in logged_records(client, run, cwd / "download")) == uninterrupted[1]
    assert json.loads((samples.parent / "summary.json").read_text())["run_id"] == run_id

    # A finished problem is never asked again; at most the one in flight at the interruption is asked twice.
    finished_questions = {r.question for r in before}
    assert not finished_questions & {question_of(r) for r in server.requests[requests_before:]}
    assert {question_of(r) for r in server.requests} == {r.question for r in records}
    assert len(server.requests) <= 8 + 1

    # Each problem the resumed job solved is a trace in the same run; after Ctrl-C, so is each one finished before.
    # (A kill can lose the traces still queued for writing, never a record.)
    # The problem in flight at the interruption left no trace of its own: one trace per problem, none failed.
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run_id, max_results=100)
    names = [t.info.tags["mlflow.traceName"] for t in traces]
    assert len(names) == len(set(names)) and {t.info.state.value for t in traces} == {"OK"}
    finished_ids = {r.id for r in before}
    expected = {f"problem-{r.id}" for r in records if every_finished_problem_traced or r.id not in finished_ids}
    assert expected <= set(names)

    metrics, _ = uninterrupted
    for name in DETERMINISTIC_METRICS:
        assert run.data.metrics[name] == pytest.approx(metrics[name]), name


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_job_stopped_by_ctrl_c_or_sigterm_resumes_from_its_run_folder(tmp_path, scripted_server, uninterrupted, how):
    """SIGTERM (kill, a scheduler, a container stopping) is handled as Ctrl-C is: the run KILLED, resumable."""
    samples, process = interrupt(tmp_path, scripted_server, how)
    # Ended by the interrupt with one line that says how to continue, and no traceback.
    log = (tmp_path / "interrupted.log").read_text()
    assert process.returncode == 128 + signal.SIGINT, log[-3000:]
    # The command to continue, with the job's own overrides.
    [line] = [line for line in log.splitlines() if line.startswith(f"interrupted; continue with: {DELEGATE_EVAL} ")]
    assert " samples=8 concurrency=1 cache.enabled=false resume=" in line
    assert "Traceback" not in log
    client, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "KILLED"
    assert "n_samples" not in run.data.metrics
    before = finished_before(samples)
    assert len(before) >= 3 and len({r.id for r in before}) == len(before)
    assert samples.read_text(encoding="utf-8").endswith("\n")
    # What finished is already in the run too.
    assert logged_records(client, run, tmp_path / "killed") == before
    run_id = json.loads((samples.parent / "run_info.json").read_text())["run_id"]
    assert run_id == run.info.run_id

    check_resumed(
        tmp_path,
        scripted_server,
        samples,
        run_id,
        before,
        str(samples.parent.relative_to(tmp_path)),
        uninterrupted,
        every_finished_problem_traced=True,
    )


def test_a_job_killed_outright_resumes_from_its_run_id(tmp_path, scripted_server, uninterrupted):
    samples, process = interrupt(tmp_path, scripted_server, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    _, [run] = mlflow_runs(tmp_path)
    # Nothing could end the run: it stays RUNNING until resumed.
    assert run.info.status == "RUNNING"
    before = finished_before(samples)
    assert len(before) >= 3
    run_id = json.loads((samples.parent / "run_info.json").read_text())["run_id"]
    assert run_id == run.info.run_id

    check_resumed(
        tmp_path, scripted_server, samples, run_id, before, run_id, uninterrupted, every_finished_problem_traced=False
    )


def test_resuming_with_a_changed_override_is_refused(tmp_path, scripted_server):
    scripted_server.set_responder(answer_half_right())
    job = llm_job(scripted_server, "samples=2", "cache.enabled=false")
    assert run_eval(tmp_path, *job).returncode == 0
    [samples] = tmp_path.glob("outputs/**/samples.jsonl")
    before = samples.read_text(encoding="utf-8")

    refused = run_eval(tmp_path, *job, "seed=99", f"resume={samples.parent}")
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error: resume=")]
    assert len(errors) == 1, refused.stderr[-3000:]
    assert errors[0].startswith(
        f"error: resume={samples.parent}: the config differs from the interrupted run's in seed;"
    )
    assert "Traceback" not in refused.stderr
    assert len(scripted_server.requests) == 2
    assert samples.read_text(encoding="utf-8") == before
    _, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
