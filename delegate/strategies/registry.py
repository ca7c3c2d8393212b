"""One registry of strategies: the config's `strategy.name` picks the solver, the roles it uses and its schema."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from hydra.core.config_store import ConfigStore

from delegate.data.problem import Problem
from delegate.errors import ConfigError, ModelCallError
from delegate.models.metered import MeteredModel
from delegate.records import Delegation
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


@dataclass(frozen=True)
class Strategy:
    name: str
    roles: tuple[str, ...]
    solve: Solver


STRATEGIES: dict[str, Strategy] = {}


def method_label(strategy: str, roles: tuple[str, ...], model_names: dict[str, str]) -> str:
    """How runs and report rows name a method: '<strategy> (<model> -> <model>)' over the roles it uses, in order."""
    return f"{strategy} ({' -> '.join(model_names.get(role, '?') for role in roles)})"


def register_strategy(name: str, roles: tuple[str, ...], schema: type) -> Callable[[Solver], Solver]:
    """Add a solver under `name` and store its schema, which `conf/strategy/<name>.yaml` extends."""

    def add(solve: Solver) -> Solver:
        STRATEGIES[name] = Strategy(name=name, roles=roles, solve=solve)
        ConfigStore.instance().store(group="strategy", name=f"{name}_schema", node=schema)
        return solve

    return add


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ConfigError(f"strategy={name} is unknown; use one of {sorted(STRATEGIES)}")
    return STRATEGIES[name]
