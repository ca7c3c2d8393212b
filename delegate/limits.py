"""Run-level limits: `max_error_rate` and `max_cost_usd` stop a run from starting new problems, and say in one line
what was measured."""

from collections.abc import Iterable
from dataclasses import dataclass

from delegate.errors import ConfigError, RunStopped
from delegate.records import SampleRecord

# The error rate is judged only once this many problems have finished (or all of them have): over the first few, one
# or two failures would be a share far above any sensible max_error_rate.
MIN_FINISHED = 10


@dataclass(frozen=True)
class RunLimits:
    """What stops a run from starting new problems: more than `max_error_rate` (a share in [0, 1]) of the finished
    problems errored, or the finished problems cost `max_cost_usd` (USD, > 0) or more. None: no such limit.

    Raises ConfigError, naming the setting, for a value out of range.
    """

    max_error_rate: float | None = None
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if self.max_error_rate is not None and not 0 <= self.max_error_rate <= 1:
            raise ConfigError(f"max_error_rate={self.max_error_rate}: must be a share between 0 and 1 (1: never stop)")
        if self.max_cost_usd is not None and not self.max_cost_usd > 0:
            raise ConfigError(f"max_cost_usd={self.max_cost_usd}: must be more than 0 USD, or null for no budget")


def _problems(n: int, adjective: str = "") -> str:
    """'1 finished problem', '3 problems'."""
    return " ".join(filter(None, [str(n), adjective, "problem" if n == 1 else "problems"]))


class LimitWatcher:
    """Watches a run's finished problems against its `RunLimits`; `Evaluation.run` asks it before each problem starts.

    `n_problems` counts every problem of the run, `finished` included: the records finished before a resume, which
    count as finished problems for the error rate and whose `cost_usd` counts toward the budget (a limit they already
    reach stops the run before anything starts). Costs are the records' `cost_usd`: a lower bound where a server
    reported no usage.
    """

    def __init__(self, limits: RunLimits, n_problems: int, finished: Iterable[SampleRecord] = ()):
        self.limits = limits
        self.n_problems = n_problems
        self.n_finished = self.n_errored = self.n_not_started = 0
        self.cost_usd = 0.0
        self.first_error: str | None = None
        # (the setting reached, what was measured, what follows): set once, by the first limit reached.
        self._reached: tuple[str, str, str] | None = None
        # Judged once over all of them, so that a limit already passed is reported with what finished, not with the
        # first records that passed it.
        for record in finished:
            self._count(record)
        self._check()

    def add(self, record: SampleRecord) -> None:
        """Count one finished problem, and check the limits."""
        self._count(record)
        self._check()

    def _count(self, record: SampleRecord) -> None:
        self.n_finished += 1
        self.cost_usd += record.cost_usd
        if record.error is not None:
            self.n_errored += 1
            self.first_error = self.first_error or record.error

    def _check(self) -> None:
        if self._reached is None:
            self._reached = self._error_rate_reached() or self._budget_reached()

    def _error_rate_reached(self) -> tuple[str, str, str] | None:
        limit = self.limits.max_error_rate
        judged = self.n_finished >= min(MIN_FINISHED, self.n_problems)
        if limit is None or not judged or self.n_errored <= limit * self.n_finished:
            return None
        measured = (
            f"max_error_rate={limit:g}: {self.n_errored} of {_problems(self.n_finished, 'finished')} errored "
            f"({self.n_errored / self.n_finished:.0%})"
        )
        return "max_error_rate", measured, f"the first: {self.first_error.splitlines()[0] if self.first_error else ''}"

    def _budget_reached(self) -> tuple[str, str, str] | None:
        limit = self.limits.max_cost_usd
        if limit is None or self.cost_usd < limit:
            return None
        measured = f"max_cost_usd={limit:g}: {_problems(self.n_finished, 'finished')} cost {self.cost_usd:.4f} USD"
        return "max_cost_usd", measured, "resume with a higher max_cost_usd to solve the rest"

    def may_start(self) -> bool:
        """Whether another problem may start: False once a limit is reached (the problem is counted as not started)."""
        if self._reached is None:
            return True
        self.n_not_started += 1
        return False

    @property
    def stopped(self) -> RunStopped | None:
        """The limit that stopped the run, as the error the job raises once what finished is saved; None if none did.

        One line: the setting, what was measured when it was reached, how many problems did not start, and the first
        error (error rate) or how to continue (budget). An error rate over the limit always stops the run, even when
        every problem had finished; a budget only when it kept a problem from starting.
        """
        if self._reached is None:
            return None
        limit, measured, then = self._reached
        if limit == "max_cost_usd" and self.n_not_started == 0:
            return None
        not_started = f", so {_problems(self.n_not_started)} did not start" if self.n_not_started else ""
        return RunStopped(limit, f"{measured}{not_started}; {then}")
