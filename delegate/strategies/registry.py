"""One registry of strategies: the config's `strategy.name` picks the solver, the roles it uses and its schema."""

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from delegate.config.roles import add_role_groups
from delegate.data.problem import Problem
from delegate.errors import ModelCallError
from delegate.models.metered import MeteredModel
from delegate.records import Delegation, SampleRecord
from delegate.registry import Registry
from delegate.strategies.observer import Observer


@dataclass
class Attempt:
    """One problem's attempt, filled in by the strategy as it goes, so a failure part-way keeps what happened."""

    # The final text to score.
    response: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    # Counted events that did not stop the attempt (bad tool arguments, SLM errors, cut-offs).
    events: Counter = field(default_factory=Counter)
    # One entry per tool call: the sub-question, the SLM's output and usage, what went back to the LLM.
    delegations: list[Delegation] = field(default_factory=list)
    # Model calls that failed after their retries and that the strategy went on without, as `SampleRecord.failures`
    # lists them; any makes the record `degraded`, unless the attempt ends in an error anyway.
    failures: list[str] = field(default_factory=list)

    def absorb_failure(self, role: str, error: Exception) -> None:
        """Note that a call of `role` failed and the strategy goes on without it: '<role>: <describe_failure>'."""
        self.failures.append(f"{role}: {describe_failure(error)}")


def describe_failure(error: Exception) -> str:
    """What failed, for a record: 'RateLimitError (HTTP 429): <detail>' for a ModelCallError, '<Type>: <message>'
    for any other exception."""
    return str(error) if isinstance(error, ModelCallError) else f"{type(error).__name__}: {error}"


# solve(problem, models by role, the strategy's config, an observer, the attempt to fill in)
Solver = Callable[[Problem, dict[str, MeteredModel], Any, Observer, Attempt], Awaitable[None]]


# Why a run's records make it a failed run, beyond every problem erroring (which fails any run); None: they don't.
RunFailure = Callable[[list[SampleRecord]], "str | None"]


@dataclass(frozen=True)
class Strategy:
    """A solver, the model roles it uses (in the order a method label names them) and its own test of a failed run."""

    name: str
    roles: tuple[str, ...]
    solve: Solver
    run_failure: RunFailure | None = None


# Every module of delegate.strategies registers its strategies when discovered: a new one is one module + one YAML.
STRATEGIES: Registry[Strategy] = Registry("strategy", "delegate.strategies", setting="strategy")


def register_strategy(
    name: str, roles: tuple[str, ...], schema: type, run_failure: RunFailure | None = None
) -> Callable[[Solver], Solver]:
    """Add a solver under `name` using the model `roles`, and store its schema, which `conf/strategy/<name>.yaml`
    extends; `run_failure` says when the records make a failed run beyond every problem erroring."""

    def add(solve: Solver) -> Solver:
        add_role_groups(roles)
        STRATEGIES.add(name, Strategy(name=name, roles=roles, solve=solve, run_failure=run_failure))
        ConfigStore.instance().store(group="strategy", name=f"{name}_schema", node=schema)
        return solve

    return add


def get_strategy(name: str) -> Strategy:
    """The strategy registered as `name`; ConfigError (`strategy=<name> is unknown; use one of [...]`) if none is."""
    return STRATEGIES.get(name)
