"""Runs written by record version 2 (tests/fixtures/v2_store, made before the core redesign) stay readable: their
records load, `delegate-report` gives the numbers it gave then, `resume=` continues one and `delegate-reproduce`
re-runs one to the same metrics."""

import csv
import json
import os

import pytest
import yaml
from mlflow import MlflowClient

from delegate.records import read_records
from delegate.report import build_report
from delegate.reproduce import reproduce
from tests.support.cli import run_eval
from tests.support.v2_fixture import FIXTURE, RUN_IDS

# The report's columns that must read the same as when the store was written (timings aside).
SAME_NUMBERS = (
    "n",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "accuracy_clean",
    "avg_llm_prompt_tokens",
    "avg_llm_completion_tokens",
    "avg_slm_prompt_tokens",
    "avg_slm_completion_tokens",
    "avg_tool_calls",
    "delegation_rate",
    "cost_per_problem_usd",
    "cache_hit_rate",
    "errors",
    "degraded",
    "pareto_front",
)


@pytest.mark.parametrize("strategy", sorted(RUN_IDS))
def test_version_2_records_read(strategy):
    records = read_records(FIXTURE / "outputs" / strategy / "samples.jsonl")
    assert len(records) == 5
    assert all(r.record_version == 2 and r.strategy == strategy for r in records)


def _rows(report_json: dict) -> dict[str, dict]:
    return {row["method"]: row for row in report_json["comparison"]}


def test_report_of_version_2_runs_gives_the_same_numbers(v2_store, tmp_path):
    built = build_report(
        f"sqlite:///{v2_store}/mlflow.db", tmp_path / "report", experiments=["delegate-gsm8k"], log_run=False
    )
    now = _rows(json.loads((built.out_dir / "report.json").read_text(encoding="utf-8")))
    then = _rows(json.loads((FIXTURE / "expected" / "report.json").read_text(encoding="utf-8")))
    assert set(now) == set(then)
    for method, row in then.items():
        for column in SAME_NUMBERS:
            assert now[method][column] == pytest.approx(row[column]), (method, column)
    pairs_then = {
        (p["baseline"], p["candidate"]): p
        for p in csv.DictReader((FIXTURE / "expected" / "pairs.csv").open(encoding="utf-8"))
    }
    pairs_now = {
        (p["baseline"], p["candidate"]): p for p in csv.DictReader((built.out_dir / "pairs.csv").open(encoding="utf-8"))
    }
    assert set(pairs_now) == set(pairs_then)
    for pair, row in pairs_then.items():
        for column in (
            "n_shared",
            "accuracy_difference",
            "difference_ci_low",
            "difference_ci_high",
            "mcnemar_p",
            "both_right",
            "only_baseline",
            "only_candidate",
            "both_wrong",
            "total_tokens_change_pct",
            "cost_change_pct",
        ):
            then_value, now_value = row[column], pairs_now[pair][column]
            assert (now_value == then_value == "") or float(now_value) == pytest.approx(float(then_value)), (
                pair,
                column,
            )


def test_resume_continues_a_version_2_run(v2_store, v2_servers):
    samples = v2_store / "outputs" / "llm" / "samples.jsonl"
    lines = samples.read_text(encoding="utf-8").splitlines()
    samples.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    # Resumed as the interrupted line says: with the overrides the run was started with.
    overrides = yaml.safe_load((v2_store / "outputs" / "llm" / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    done = run_eval(v2_store, *overrides, "resume=outputs/llm", env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 problems finished, 2 to go" in done.stdout
    records = read_records(samples)
    assert len(records) == 5 and len({r.id for r in records}) == 5
    run = MlflowClient(f"sqlite:///{v2_store}/mlflow.db").get_run(RUN_IDS["llm"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["n_samples"] == 5
    assert run.data.metrics["accuracy"] == pytest.approx(0.8)


def test_reproduce_a_version_2_run_gives_the_same_metrics(v2_store, v2_servers, tmp_path):
    result = reproduce(str(v2_store / "outputs" / "router"), [], v2_store, output_dir=tmp_path / "again")
    assert not result.unexpected_differences, [c for c in result.unexpected_differences]
    reproduced = MlflowClient(f"sqlite:///{v2_store}/mlflow.db").get_run(result.run_id).data.metrics
    assert reproduced["accuracy"] == pytest.approx(0.8)
    assert reproduced["avg_tool_calls"] == 1.0
