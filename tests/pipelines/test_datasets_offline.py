"""`delegate-eval data=svamp` and `data=math500` end to end, offline: the files come from the data folder
($DELEGATE_DATA_DIR), the models are the scripted server, and each dataset's scorer judges its answers."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from delegate.compose import compose_config
from delegate.data import read_split
from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.cli import logged_records, mlflow_runs, run_eval

# The folder `shared/data` beside the checkout.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
TOOL = "ask_math_assistant"


@pytest.fixture(autouse=True)
def data_dir(monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared data folder is not at {SHARED_DATA}")
    monkeypatch.setenv("DELEGATE_DATA_DIR", str(SHARED_DATA))


@pytest.fixture
def slm():
    with ScriptedServer() as server:
        yield server


def problems_by_question(dataset: str) -> dict:
    return {p.question: p for p in read_split(OmegaConf.to_object(compose_config([f"data={dataset}"]).data)).problems}


def asked(request: dict, problems: dict):
    """The problem a request is about (None for the SLM's sub-question)."""
    return next((problems[m["content"]] for m in request["messages"] if m.get("content") in problems), None)


def test_svamp_runs_offline_and_is_scored_as_numbers(tmp_path, scripted_server):
    problems = problems_by_question("svamp")

    def answer_even_ids(request: dict) -> Reply:
        problem = asked(request, problems)
        # "145.0" is answered as 145: the numeric scorer compares values.
        answer = f"{float(problem.gold):g}" if problem.id % 2 == 0 else "-1"
        return Reply(content=f"So the answer is \\boxed{{{answer}}}.")

    scripted_server.set_responder(answer_even_ids)
    done = run_eval(
        tmp_path,
        "data=svamp",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "samples=5",
        "seed=3",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(tmp_path)
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == 5 and {r.dataset for r in records} == {"svamp/test"}
    assert all(r.question in problems and r.extraction_rule == "boxed" for r in records)
    assert [r.correct for r in records] == [r.id % 2 == 0 for r in records]
    assert [list(r.scores) for r in records] == [["numeric"]] * 5
    assert run.data.metrics["accuracy"] == pytest.approx(sum(r.id % 2 == 0 for r in records) / 5)
    assert run.data.params["data.scorer"] == "numeric"


def test_math500_runs_offline_through_the_router_and_is_scored_symbolically(tmp_path, scripted_server, slm):
    problems = problems_by_question("math500")

    def delegate_then_answer(request: dict) -> Reply:
        problem = asked(request, problems)
        if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
            return Reply(tool_calls=[{"name": TOOL, "arguments": '{"question": "What is 4 2/3 as a fraction?"}'}])
        # The gold as written for even ids, a wrong answer for odd ones.
        answer = f"{{{problem.gold}}}" if problem.id % 2 == 0 else r"{\text{no idea}}"
        return Reply(content=f"Therefore $\\boxed{answer}$.")

    scripted_server.set_responder(delegate_then_answer)
    slm.set_responder(lambda request: Reply(content=r"Mixed to improper: \boxed{\dfrac{14}{3}}."))
    done = run_eval(
        tmp_path,
        "data=math500",
        "data.scorers=[exact]",
        "strategy=router",
        "llm=openai-compatible",
        f"llm.base_url={scripted_server.base_url}",
        "slm=openai-compatible",
        f"slm.base_url={slm.base_url}",
        "samples=4",
        "seed=5",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(tmp_path)
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == 4 and {r.dataset for r in records} == {"math500/test"}
    assert [r.correct for r in records] == [r.id % 2 == 0 for r in records]
    assert all(list(r.scores) == ["symbolic", "exact"] for r in records)
    assert all(r.scores["symbolic"] == r.all_scores["symbolic"] for r in records)
    # The SLM's reply went back to the LLM as the symbolic scorer reads it: LaTeX, not 14/3.
    assert all(r.delegations[0].result.startswith(r"Answer: \dfrac{14}{3}.") for r in records)
