"""Errors a user can cause: shown as one line naming the setting and the fix, never as a traceback."""


class ConfigError(ValueError):
    """A setting is wrong or something it needs is missing."""


class EndpointFailing(ConfigError):
    """An endpoint kept refusing calls for a reason no retry can fix (HTTP 400, 401, 403, 404): the circuit breaker
    stops the run, naming the setting to check, instead of failing every problem one by one."""


class RunFailed(RuntimeError):
    """The job ran but produced nothing usable (every problem failed); its records are kept."""


class RunStopped(RuntimeError):
    """A run-level limit stopped the run before every problem started; what finished is kept and resumable.

    `limit` names the setting that was reached (`max_error_rate`, `max_cost_usd`); the message says what was
    measured and how to continue.
    """

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit
        # Overrides the command that continues the run should carry instead of the job's (a higher budget).
        self.resume_with: dict[str, str] = {}

    @property
    def run_status(self) -> str:
        """The MLflow run's end status: KILLED for a budget reached (stopped on purpose), FAILED otherwise."""
        return "KILLED" if self.limit == "max_cost_usd" else "FAILED"


class ModelCallError(RuntimeError):
    """A model call that failed after its retries, as every backend's failure leaves the model layer.

    `role` (llm, slm), `kind` (the failure's class, e.g. RateLimitError, APIConnectionError, MalformedResponse),
    `status_code` (the HTTP status, None without one) and `detail` (the server's message, already redacted). Only
    `summary` (kind and status, never the body) may be shown to another model or provider.
    """

    def __init__(self, role: str, kind: str, status_code: int | None, detail: str):
        self.role, self.kind, self.status_code, self.detail = role, kind, status_code, detail
        super().__init__(f"{self.summary}: {detail}" if detail else self.summary)

    @property
    def summary(self) -> str:
        """'RateLimitError (HTTP 429)': what failed, without the server's words."""
        return f"{self.kind} (HTTP {self.status_code})" if self.status_code is not None else self.kind
