"""MLflow traces: one per problem, with CHAT_MODEL spans for model calls and TOOL spans for delegations."""

import os
from contextlib import contextmanager
from typing import Any, Iterator

# MLflow's export queue holds 1,000 traces by default and silently drops the rest when a fast job outruns it.
TRACE_QUEUE_SIZE = 1_000_000

# Set by `enable_traces` for the job's duration; while None, spans cost nothing.
_destination: dict[str, str] | None = None


class _NoSpan:
    def set_inputs(self, inputs: Any) -> None: ...

    def set_outputs(self, outputs: Any) -> None: ...

    def set_attributes(self, attributes: dict[str, Any]) -> None: ...


@contextmanager
def traces_enabled(tracking_uri: str, experiment_id: str, run_id: str) -> Iterator[None]:
    """Send the spans opened inside to this experiment, each trace linked to `run_id`; flush them at the end."""
    import mlflow
    from mlflow.entities.trace_location import MlflowExperimentLocation

    global _destination
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", str(TRACE_QUEUE_SIZE))
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.tracing.set_destination(MlflowExperimentLocation(experiment_id))
    _destination = {"run_id": run_id}
    try:
        yield
    finally:
        _destination = None
        mlflow.flush_trace_async_logging()
        # Leave no process-wide MLflow state behind for the next job (a sweep runs jobs in one process).
        mlflow.tracing.reset()
        mlflow.set_tracking_uri(previous_uri)


@contextmanager
def span(name: str, span_type: str, inputs: Any = None, root: bool = False) -> Iterator[Any]:
    """A span under the current one (`root`: a new trace, linked to the job's run); a no-op while traces are off."""
    if _destination is None:
        yield _NoSpan()
        return
    import mlflow

    run_id = _destination["run_id"] if root else None
    with mlflow.start_span(name=name, span_type=span_type, run_id=run_id) as live:
        if inputs is not None:
            live.set_inputs(inputs)
        yield live
