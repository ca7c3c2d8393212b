"""One evaluation: the problems, the strategy and its settings, the scorer, the models and their prices per role,
the concurrency and the run limits, built once from the typed config. It solves one problem (solve, meter, trace,
score, cost → a `SampleRecord`) or runs many; the job around it keeps only the lifecycle (lock, resume, MLflow run,
folder, artifacts, metrics), and the demo and the benchmark use the same value.

Modelled on Inspect AI's `Task(dataset, solver, scorer)` with `model_roles`.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from delegate.config.roles import check_role_models, model_roles
from delegate.data import Split, load_split
from delegate.data.problem import Problem
from delegate.errors import ConfigError
from delegate.limits import LimitWatcher, RunLimits
from delegate.models import ChatModel, build_model
from delegate.models.cache import ResponseCache
from delegate.models.metered import MeteredModel
from delegate.records import ModelPrices, RoleUsage, SampleRecord, judged, method_label
from delegate.scoring import score_with
from delegate.strategies import get_strategy
from delegate.strategies.observer import NO_OBSERVER, Observer
from delegate.strategies.registry import Attempt, Strategy, describe_failure
from delegate.tasks import gather_or_cancel
from delegate.tracking.traces import span


@dataclass
class Evaluation:
    """What one job evaluates. `models` holds a built model for each role the strategy uses; `prices` and
    `model_names` cover every role of the run (each model the config names), so records account for all of them
    (a role the strategy does not use stays at zero)."""

    strategy: Strategy
    # The strategy's typed settings (its schema's dataclass).
    strategy_config: Any
    models: dict[str, ChatModel]
    prices: dict[str, ModelPrices]
    model_names: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    concurrency: int = 1
    limits: RunLimits = field(default_factory=RunLimits)
    # Rows of the split left out because their gold could not be scored: never solved, always counted.
    n_skipped: int = 0

    @classmethod
    def from_config(
        cls, cfg: DictConfig, cache: ResponseCache | None = None, split: Split | None = None
    ) -> "Evaluation":
        """The evaluation `cfg` describes, its models behind `cache` (nothing loads until the first call), its
        problems `split` (default: the configured sample, read now). Raises ConfigError for a setting that names no
        strategy, backend or data."""
        strategy = get_strategy(cfg.strategy.name)
        check_role_models(cfg, strategy.name, strategy.roles)
        roles = model_roles(cfg)
        split = split if split is not None else load_split(OmegaConf.to_object(cfg.data), cfg.samples, cfg.seed)
        return cls(
            strategy=strategy,
            strategy_config=OmegaConf.to_object(cfg.strategy),
            models={role: build_model(cfg[role], role, cache) for role in strategy.roles},
            prices={role: ModelPrices.of(cfg[role]) for role in roles},
            model_names={role: cfg[role].name for role in roles},
            problems=split.problems,
            concurrency=cfg.concurrency,
            limits=RunLimits(cfg.max_error_rate, cfg.max_cost_usd),
            n_skipped=split.n_skipped,
        )

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role of the run, in config order (llm, slm, then any a strategy adds): records, metrics and tables
        list them so, whatever the strategy."""
        return tuple(self.prices)

    @property
    def method(self) -> str:
        """How runs and report rows name this evaluation: '<strategy> (<model> -> <model>)'."""
        return method_label(self.strategy.name, self.strategy.roles, self.model_names)

    async def solve(
        self, problem: Problem, observer: Observer = NO_OBSERVER, raise_failure: bool = False
    ) -> SampleRecord:
        """One problem end to end; a model failure becomes a record with `error`, not a crashed run (with
        `raise_failure`, it propagates instead: the demo has no record to keep), and a failure the strategy went on
        without (`Attempt.failures`) a `degraded` record listing it. ConfigError (a setting the strategy found wrong)
        propagates."""
        attempt = Attempt()
        # What the backends note about their replies (missing usage, calls found in text) is counted with the attempt's events.
        metered = {role: MeteredModel(self.models[role], role, attempt.events) for role in self.strategy.roles}
        with span(
            f"problem-{problem.id}", "AGENT", inputs={"id": problem.id, "question": problem.question}, root=True
        ) as live:
            started_s = time.perf_counter()
            error = None
            try:
                await self.strategy.solve(problem, metered, self.strategy_config, observer, attempt)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - any model/server failure is recorded against this problem
                if raise_failure:
                    raise
                # The attempt keeps what happened before the failure: transcript, delegations, tokens.
                error = describe_failure(exc)
            degraded = bool(attempt.failures) and error is None
            latency_s = time.perf_counter() - started_s
            usage = {role: metered[role].usage if role in metered else RoleUsage() for role in self.roles}
            scores = score_with(problem.scorers, attempt.response, problem.gold)
            result = scores[problem.scorer]
            live.set_outputs({"response": attempt.response, "extracted": result.extracted, "correct": result.correct})
            live.set_attributes(
                {
                    "strategy": self.strategy.name,
                    "tool_calls": attempt.tool_calls,
                    "error": error or "",
                    "degraded": degraded,
                }
            )
            if error:
                live.set_error(error)
        record = SampleRecord(
            id=problem.id,
            dataset=problem.dataset,
            question=problem.question,
            gold=problem.gold,
            strategy=self.strategy.name,
            response=attempt.response,
            extracted=result.extracted,
            extraction_rule=result.rule,
            correct=result.correct,
            latency_s=latency_s,
            usage=usage,
            tool_calls=attempt.tool_calls,
            events=dict(attempt.events),
            delegations=attempt.delegations,
            cost_usd=sum(usage[role].cost_usd(self.prices[role]) for role in self.roles),
            cache_saved_usd=sum(usage[role].cache_saved_usd(self.prices[role]) for role in self.roles),
            error=error,
            transcript=attempt.transcript,
            degraded=degraded,
            failures=attempt.failures,
        )
        return judged(record, scores)

    async def run(
        self,
        problems: list[Problem] | None = None,
        on_record: Callable[[SampleRecord], None] = lambda record: None,
        watcher: LimitWatcher | None = None,
    ) -> list[SampleRecord]:
        """Every problem (default: the evaluation's), `concurrency` at a time; records come back in completion order
        and are handed to `on_record` as each finishes.

        With a `watcher`, each record is added to it as it finishes, and once it reports a limit reached no new
        problem starts: those in flight finish and are handed on, and the records finished are returned as usual;
        the caller reads `watcher.stopped`.
        """
        slots = asyncio.Semaphore(self.concurrency)
        records: list[SampleRecord] = []

        async def run_one(problem: Problem) -> None:
            async with slots:
                if watcher is not None and not watcher.may_start():
                    return
                record = await self.solve(problem)
            records.append(record)
            if watcher is not None:
                watcher.add(record)
            on_record(record)

        await gather_or_cancel(run_one(p) for p in (self.problems if problems is None else problems))
        return records

    def run_failure(self, records: list[SampleRecord]) -> str | None:
        """Why these records make a failed run, or None: every problem errored, or the strategy's own test failed
        (the router's: every SLM call failed)."""
        errors = [r.error for r in records if r.error]
        if records and len(errors) == len(records):
            return f"all {len(records)} problems failed; the first: {errors[0]}"
        return self.strategy.run_failure(records) if self.strategy.run_failure else None

    async def __aenter__(self) -> "Evaluation":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every model (their HTTP clients, in-process batchers)."""
        for model in self.models.values():
            await model.aclose()
