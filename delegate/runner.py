"""Run a strategy over problems with bounded concurrency, score each answer, and hand each record on as it finishes."""

import asyncio
import time
from typing import Any, Callable

from delegate.data.problem import Problem
from delegate.errors import ConfigError
from delegate.models.base import ChatModel
from delegate.models.metered import MeteredModel
from delegate.records import ROLES, ModelPrices, RoleUsage, SampleRecord
from delegate.scoring import score
from delegate.strategies.observer import NO_OBSERVER, Observer
from delegate.strategies.registry import Attempt, Strategy
from delegate.tasks import gather_or_cancel
from delegate.tracking.traces import span


async def solve_and_score(
    problem: Problem,
    strategy: Strategy,
    models: dict[str, ChatModel],
    strategy_cfg: Any,
    prices: dict[str, ModelPrices],
    observer: Observer = NO_OBSERVER,
) -> SampleRecord:
    """One problem end to end; a model failure becomes a record with `error`, not a crashed run."""
    attempt = Attempt()
    # What the backends note about their replies (missing usage, calls found in text) is counted with the attempt's events.
    metered = {role: MeteredModel(models[role], role, attempt.events) for role in strategy.roles}
    with span(f"problem-{problem.id}", "AGENT", inputs={"id": problem.id, "question": problem.question}, root=True) as live:
        started_s = time.perf_counter()
        error = None
        try:
            await strategy.solve(problem, metered, strategy_cfg, observer, attempt)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - any model/server failure is recorded against this problem
            # The attempt keeps what happened before the failure: transcript, delegations, tokens.
            error = f"{type(exc).__name__}: {exc}"
        latency_s = time.perf_counter() - started_s
        usage = {role: metered[role].usage if role in metered else RoleUsage() for role in ROLES}
        result = score(attempt.response, problem.gold)
        live.set_outputs({"response": attempt.response, "extracted": result.extracted, "correct": result.correct})
        live.set_attributes({"strategy": strategy.name, "tool_calls": attempt.tool_calls, "error": error or ""})
        if error:
            live.set_error(error)
    return SampleRecord(
        id=problem.id,
        dataset=problem.dataset,
        question=problem.question,
        gold=problem.gold,
        strategy=strategy.name,
        response=attempt.response,
        extracted=result.extracted,
        extraction_rule=result.rule,
        correct=result.correct and error is None,
        latency_s=latency_s,
        usage=usage,
        tool_calls=attempt.tool_calls,
        events=dict(attempt.events),
        delegations=attempt.delegations,
        cost_usd=sum(usage[role].cost_usd(prices[role]) for role in ROLES),
        cache_saved_usd=sum(usage[role].cache_saved_usd(prices[role]) for role in ROLES),
        error=error,
        transcript=attempt.transcript,
    )


async def run_problems(
    problems: list[Problem],
    strategy: Strategy,
    models: dict[str, ChatModel],
    strategy_cfg: Any,
    prices: dict[str, ModelPrices],
    concurrency: int,
    on_record: Callable[[SampleRecord], None],
) -> list[SampleRecord]:
    """Every problem, `concurrency` at a time; records come back in completion order."""
    slots = asyncio.Semaphore(concurrency)
    records: list[SampleRecord] = []

    async def run_one(problem: Problem) -> None:
        async with slots:
            record = await solve_and_score(problem, strategy, models, strategy_cfg, prices)
        records.append(record)
        on_record(record)

    await gather_or_cancel(run_one(p) for p in problems)
    return records
