"""A third model role through a strategy and config alone: the worked example docs/examples/verify.py (the SLM
answers, a `verifier` model checks, the LLM solves what it rejects) loaded with DELEGATE_PLUGINS, its YAML from
DELEGATE_CONFIG_DIR, run by the real `delegate-eval` against three scripted servers. Records, metrics, tags, the
method label and the report carry the new role with no change to delegate itself."""

import json
import os
from pathlib import Path

import pytest

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.records import read_records
from delegate.report import build_report
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import mlflow_runs, run_eval
from tests.support.plugins import plugin_env

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}


def gold_in(text: str) -> str:
    return next(gold for question, gold in GOLD_BY_QUESTION.items() if question in text)


def slm_reply(body: dict) -> Reply:
    """Right for even golds, wrong for odd ones."""
    gold = gold_in(body["messages"][-1]["content"])
    answer = gold if int(gold) % 2 == 0 else "-1"
    return Reply(content=f"So \\boxed{{{answer}}}.", prompt_tokens=30, completion_tokens=7)


def verifier_reply(body: dict) -> Reply:
    """Accepts an answer holding the gold, rejects any other."""
    text = body["messages"][-1]["content"]
    proposed = text.split("Proposed answer:", 1)[1]
    verdict = "yes" if f"{{{gold_in(text)}}}" in proposed else "no"
    return Reply(content=verdict, prompt_tokens=50, completion_tokens=1)


def llm_reply(body: dict) -> Reply:
    gold = gold_in(body["messages"][-1]["content"])
    return Reply(content=f"The answer is \\boxed{{{gold}}}.", prompt_tokens=80, completion_tokens=20)


@pytest.fixture
def servers():
    with ScriptedServer(llm_reply) as llm, ScriptedServer(slm_reply) as slm, ScriptedServer(verifier_reply) as verifier:
        yield llm, slm, verifier


def test_a_third_role_through_a_strategy_and_config_alone(tmp_path, servers):
    llm, slm, verifier = servers
    env = plugin_env("verify")
    done = run_eval(
        tmp_path,
        "strategy=verify",
        "experiment=local",
        "samples=6",
        "seed=3",
        "llm=openai-compatible",
        f"llm.base_url={llm.base_url}",
        "llm.model=big",
        "slm=openai-compatible",
        f"slm.base_url={slm.base_url}",
        "slm.model=small",
        "+verifier=openai-compatible",
        f"verifier.base_url={verifier.base_url}",
        "verifier.model=checker",
        "verifier.price_input_usd_per_1m=1",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(tmp_path)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["verifier"] == "checker" and tags["llm"] == "big" and tags["slm"] == "small"
    assert tags["delegate.roles"] == "slm,verifier,llm"
    assert run.info.run_name == "verify-small+checker+big-n6-s3"
    records = read_records(Path(client.download_artifacts(run.info.run_id, SAMPLES_FILE, str(tmp_path / "dl"))))
    assert all(set(r.usage) == {"llm", "slm", "verifier"} for r in records)
    assert all(r.usage["verifier"].calls == 1 and r.usage["verifier"].tokens == 51 for r in records)
    escalated = [r for r in records if r.events.get("escalated")]
    assert len(escalated) == sum(int(r.gold) % 2 for r in records)
    assert all(r.usage["llm"].calls == (1 if r in escalated else 0) for r in records)
    assert metrics["accuracy"] == 1.0
    assert metrics["avg_verifier_tokens"] == 51.0
    assert metrics["avg_verifier_prompt_tokens"] == 50.0
    # The verifier's price is charged: 50 prompt tokens a problem at 1 USD per million.
    assert metrics["cost_usd"] == pytest.approx(6 * 50 / 1e6)
    summary = json.loads((next(tmp_path.glob("outputs/*/*/summary.json"))).read_text(encoding="utf-8"))
    assert summary["method"] == "verify (small -> checker -> big)"
    built = build_report(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "report", log_run=False)
    [row] = json.loads((built.out_dir / "report.json").read_text(encoding="utf-8"))["comparison"]
    assert row["method"] == "verify (small -> checker -> big)"
    assert row["avg_verifier_prompt_tokens"] == 50.0
    assert "avg VERIFIER prompt tokens" in built.markdown


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path):
    done = run_eval(tmp_path, "strategy=llm", env=dict(os.environ, DELEGATE_PLUGINS="no_such_module"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: DELEGATE_PLUGINS=no_such_module: cannot import no_such_module (ModuleNotFoundError: No module named "
        "'no_such_module'); put the module on PYTHONPATH or fix it"
    ]
    assert not list(tmp_path.iterdir())


def test_a_role_the_strategy_uses_without_a_model_is_one_line(tmp_path):
    done = run_eval(tmp_path, "strategy=verify", "experiment=local", env=plugin_env("verify"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: verifier: strategy=verify uses the role verifier, which has no model; give it one, e.g. "
        "+verifier=local (any model of the model/ folder)"
    ]
    assert not list(tmp_path.iterdir())


def test_a_strategy_whose_module_was_not_loaded_names_delegate_plugins(tmp_path):
    env = plugin_env("verify") | {"DELEGATE_PLUGINS": ""}
    done = run_eval(tmp_path, "strategy=verify", "experiment=local", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: strategy=verify: its config extends verify_schema, which no registered strategy provides; if the "
        "strategy is your own, name the module that registers it in DELEGATE_PLUGINS (and put it on PYTHONPATH)"
    ]
    assert not list(tmp_path.iterdir())
