"""Evaluation.run with run-level limits: the error rate and the budget stop new problems from starting, the problems
in flight finish and are handed on, and the watcher says in one line what was measured. The `llm` strategy runs as
it is; its model is a stand-in (no SDK involved) that fails or answers as each question says."""

import asyncio

import pytest

from delegate.config.schema import PromptConfig
from delegate.data.problem import Problem
from delegate.errors import ConfigError, ModelCallError, RunStopped
from delegate.evaluation import Evaluation
from delegate.limits import MIN_FINISHED, LimitWatcher, RunLimits
from delegate.models.base import ChatRequest, ChatResponse
from delegate.records import ModelPrices, SampleRecord
from delegate.scoring import Score
from delegate.strategies import get_strategy
from delegate.strategies.solo import SoloConfig
from tests.support.records import make_record

# 250,000 prompt tokens at 1 USD per million: each answered problem costs exactly 0.25 USD.
PRICES = {role: ModelPrices(input_usd_per_1m=1.0) for role in ("llm", "slm")}
PROBLEM_COST_USD = 0.25
FAIL = "fail"


class StandIn:
    """Answers \\boxed{1} after `delay_s`, or fails like a server error when the question is FAIL."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.calls = 0

    async def chat(self, request: ChatRequest, on_text=None) -> ChatResponse:
        self.calls += 1
        question = request.messages[-1]["content"]
        await asyncio.sleep(0 if question.endswith("first") else self.delay_s)
        if question.startswith(FAIL):
            raise ModelCallError("llm", "InternalServerError", 500, "down")
        return ChatResponse(text="\\boxed{1}", prompt_tokens=250_000, completion_tokens=0, latency_s=0.0)

    async def aclose(self) -> None:
        pass


def problems(*questions: str) -> list[Problem]:
    return [Problem(id=i, question=q, gold="1") for i, q in enumerate(questions)]


def run(todo: list[Problem], watcher: LimitWatcher | None, concurrency: int = 1, model: StandIn | None = None):
    """The records Evaluation.run returns, and those it handed on, in order."""
    handed_on: list[SampleRecord] = []
    evaluation = Evaluation(
        strategy=get_strategy("llm"),
        strategy_config=SoloConfig(name="llm", prompt=PromptConfig()),
        models={"llm": model or StandIn()},
        prices=PRICES,
        model_names={"llm": "stand-in", "slm": "unused"},
        problems=todo,
        concurrency=concurrency,
    )
    records = asyncio.run(evaluation.run(on_record=handed_on.append, watcher=watcher))
    return records, handed_on


def test_without_a_watcher_every_problem_runs():
    records, handed_on = run(problems(*[FAIL] * 12), None)
    assert len(records) == len(handed_on) == 12


def test_an_error_rate_over_the_limit_stops_new_problems_once_enough_finished():
    model = StandIn()
    todo = problems(*[FAIL] * 30)
    watcher = LimitWatcher(RunLimits(max_error_rate=0.5), len(todo))
    records, handed_on = run(todo, watcher, model=model)
    assert len(records) == len(handed_on) == model.calls == MIN_FINISHED == 10
    stopped = watcher.stopped
    assert isinstance(stopped, RunStopped) and stopped.limit == "max_error_rate"
    assert str(stopped) == (
        "max_error_rate=0.5: 10 of 10 finished problems errored (100%), so 20 problems did not "
        "start; the first: InternalServerError (HTTP 500): down"
    )


def test_an_error_rate_at_the_limit_does_not_stop_the_run():
    # Never more than half errored at any point: each failure follows a success.
    todo = problems(*["ok", FAIL] * 10)
    watcher = LimitWatcher(RunLimits(max_error_rate=0.5), len(todo))
    records, _ = run(todo, watcher)
    assert len(records) == 20 and sum(r.error is not None for r in records) == 10
    assert watcher.stopped is None


def test_a_run_smaller_than_min_finished_is_judged_when_all_of_it_finished():
    todo = problems(FAIL, FAIL, FAIL, "ok")
    watcher = LimitWatcher(RunLimits(max_error_rate=0.5), len(todo))
    records, _ = run(todo, watcher)
    assert len(records) == 4
    # Nothing was left to start, but the run still ends stopped: most of it failed.
    assert str(watcher.stopped) == (
        "max_error_rate=0.5: 3 of 4 finished problems errored (75%); the first: InternalServerError (HTTP 500): down"
    )


def test_a_budget_stops_new_problems_once_the_finished_ones_cost_it():
    todo = problems(*["ok"] * 10)
    watcher = LimitWatcher(RunLimits(max_cost_usd=1.0), len(todo))
    records, _ = run(todo, watcher)
    assert len(records) == 4 and sum(r.cost_usd for r in records) == 4 * PROBLEM_COST_USD
    assert watcher.stopped.limit == "max_cost_usd"
    assert str(watcher.stopped) == (
        "max_cost_usd=1: 4 finished problems cost 1.0000 USD, so 6 problems did not start; "
        "resume with a higher max_cost_usd to solve the rest"
    )


def test_problems_in_flight_when_a_limit_is_reached_finish_and_are_handed_on():
    # The first problem answers at once and spends the budget; the next three are in flight by then.
    todo = problems("ok first", *["ok"] * 9)
    watcher = LimitWatcher(RunLimits(max_cost_usd=PROBLEM_COST_USD), len(todo))
    records, handed_on = run(todo, watcher, concurrency=4, model=StandIn(delay_s=0.05))
    assert records[0].id == 0
    assert sorted(r.id for r in handed_on) == [0, 1, 2, 3] == sorted(r.id for r in records)
    assert str(watcher.stopped).startswith(
        "max_cost_usd=0.25: 1 finished problem cost 0.2500 USD, so 6 problems did not start"
    )


def test_records_finished_before_a_resume_count_toward_the_budget():
    finished = [make_record(i, cost_usd=0.5) for i in range(2)]
    todo = problems(*["ok"] * 3)
    model = StandIn()
    watcher = LimitWatcher(RunLimits(max_cost_usd=1.0), len(finished) + len(todo), finished)
    records, _ = run(todo, watcher, model=model)
    assert records == [] and model.calls == 0
    assert str(watcher.stopped).startswith(
        "max_cost_usd=1: 2 finished problems cost 1.0000 USD, so 3 problems did not start"
    )


def test_a_budget_reached_by_the_last_problem_stops_nothing():
    todo = problems(*["ok"] * 4)
    watcher = LimitWatcher(RunLimits(max_cost_usd=1.0), len(todo))
    records, _ = run(todo, watcher)
    assert len(records) == 4 and watcher.stopped is None


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_error_rate": 1.5}, r"^max_error_rate=1.5: must be a share between 0 and 1"),
        ({"max_error_rate": -0.1}, r"^max_error_rate=-0.1: "),
        ({"max_cost_usd": 0}, r"^max_cost_usd=0: must be more than 0 USD, or null for no budget$"),
    ],
)
def test_limits_out_of_range_name_the_setting(limits, message):
    with pytest.raises(ConfigError, match=message):
        RunLimits(**limits)


def test_each_of_the_problems_scorers_judges_it_and_an_errored_attempt_is_wrong_for_all():
    # The stand-in answers \boxed{1}: right for the numeric scorer against "1.0", wrong for the exact one.
    todo = [
        Problem(id=0, question="ok", gold="1.0", scorers=("numeric", "exact")),
        Problem(id=1, question=FAIL, gold="1.0", scorers=("numeric", "exact")),
    ]
    records, _ = run(todo, None)
    answered, errored = sorted(records, key=lambda record: record.id)
    assert answered.scores == {"numeric": Score("1", "boxed", True), "exact": Score("1", "boxed", False)}
    assert (answered.extracted, answered.extraction_rule, answered.correct) == ("1", "boxed", True)
    assert errored.error is not None and not errored.correct
    assert [score.correct for score in errored.scores.values()] == [False, False]
