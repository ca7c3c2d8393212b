"""A cascade (the issue's first case) is one Python file and one YAML file: docs/examples/cascade.py samples the SLM
k times with seeded samples and escalates to the LLM when they disagree. Run by the real `delegate-eval` against
scripted servers: each sample is its own seeded request, every sample's tokens are charged, and a second run
replays the k samples of each problem from the cache, sample by sample."""

from pathlib import Path

from delegate.config.schema import DataConfig
from delegate.data import load_problems
from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import mlflow_runs, run_eval
from tests.support.plugins import plugin_env

GOLD_BY_QUESTION = {
    p.question: p.gold for p in load_problems(DataConfig(name="sample", builtin="sample.jsonl"), None, 0)
}


def slm_reply(body: dict) -> Reply:
    """Sure of even golds (every sample right); for odd ones each seed gives another answer."""
    gold = GOLD_BY_QUESTION[body["messages"][-1]["content"]]
    answer = gold if int(gold) % 2 == 0 else str(body["seed"] % 1000)
    return Reply(content=f"So \\boxed{{{answer}}}.", prompt_tokens=40, completion_tokens=10)


def llm_reply(body: dict) -> Reply:
    gold = GOLD_BY_QUESTION[body["messages"][-1]["content"]]
    return Reply(content=f"The answer is \\boxed{{{gold}}}.", prompt_tokens=90, completion_tokens=30)


def test_a_cascade_is_one_file_and_one_yaml(tmp_path):
    env = plugin_env("cascade")
    with ScriptedServer(llm_reply) as llm, ScriptedServer(slm_reply) as slm:
        overrides = [
            "strategy=cascade",
            "experiment=local",
            "samples=6",
            "seed=5",
            "strategy.seed=7",
            "llm=openai-compatible",
            f"llm.base_url={llm.base_url}",
            "llm.model=big",
            "slm=openai-compatible",
            f"slm.base_url={slm.base_url}",
            "slm.model=small",
        ]
        first = run_eval(tmp_path, *overrides, env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        slm_requests = len(slm.requests)
        again = run_eval(tmp_path, *overrides, env=env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(slm.requests) == slm_requests  # every sample replayed from the cache
    assert slm_requests == 18
    # Per problem, the k samples were k requests, the first with the strategy's seed and each with its own.
    by_question: dict[str, list[int]] = {}
    for request in slm.requests:
        by_question.setdefault(request["messages"][-1]["content"], []).append(request["seed"])
    assert all(len(seeds) == 3 and seeds[0] == 7 and len(set(seeds)) == 3 for seeds in by_question.values())
    client, runs = mlflow_runs(tmp_path)
    for run in runs:
        records = read_records(
            Path(client.download_artifacts(run.info.run_id, SAMPLES_FILE, str(tmp_path / run.info.run_id)))
        )
        odd = [r for r in records if int(r.gold) % 2]
        assert {r.id for r in records if r.events.get("escalated")} == {r.id for r in odd}
        assert all(r.usage["slm"].calls == 3 and r.usage["slm"].tokens == 150 for r in records)
        assert all(r.usage["llm"].calls == (1 if r in odd else 0) for r in records)
        assert run.data.metrics["accuracy"] == 1.0
        assert run.data.tags["delegate.roles"] == "slm,llm"
    assert runs[1].data.metrics["cache_hit_rate"] == 1.0
    assert runs[0].data.metrics["avg_slm_tokens"] == runs[1].data.metrics["avg_slm_tokens"] == 150.0
