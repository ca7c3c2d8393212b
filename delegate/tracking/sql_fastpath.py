"""Rows written straight into MLflow's private SQL tables, for speed; the only module that knows those tables.

MLflow writes each trace tag and each assessment in a transaction of its own (2-3 ms an assessment on SQLite, more
than the whole job spends on a problem). `insert_trace_verdicts` writes a whole batch's tags and assessments in one
transaction, as the same rows MLflow's own `set_trace_tag` / `create_assessment` write: 0.3-0.8 ms a trace.

The table shapes were checked on the MLflow versions in CHECKED_MLFLOW (the rows each write compared with MLflow's
own, in tests/tracking/test_sql_fastpath.py). Outside that range, on any store but MLflow's plain SQL store (a
tracking server; a subclass that checks access), or with MLflow's opt-in SQL trace rollups on, `available` is False
and the caller writes through MLflow's public calls instead. To check a new MLflow version: run that test file on it,
then widen CHECKED_MLFLOW.
"""

from importlib.metadata import version
from typing import Any

# The MLflow versions (major, minor) whose SQL tables `insert_trace_verdicts` was checked against: 3.17 and 3.18.
CHECKED_MLFLOW = ((3, 17), (3, 19))  # from, up to (not including)
# The installed MLflow's (major, minor); a test pretends another to force the fallback.
MLFLOW_VERSION = tuple(int(part) for part in version("mlflow").split(".")[:2])


def available(store: Any) -> bool:
    """Whether `store` (a tracking store, e.g. `TracingClient(uri).store`) takes `insert_trace_verdicts`: MLflow's own
    SQL store class, an MLflow version in CHECKED_MLFLOW, and SQL trace rollups off."""
    if not CHECKED_MLFLOW[0] <= MLFLOW_VERSION < CHECKED_MLFLOW[1]:
        return False
    from mlflow.environment_variables import MLFLOW_SQL_TRACE_ROLLUPS_ENABLED
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    # Rollups would have to be marked stale as MLflow does, with helpers that change between minor versions.
    return type(store) is SqlAlchemyStore and not MLFLOW_SQL_TRACE_ROLLUPS_ENABLED.get()


def insert_trace_verdicts(store: Any, verdicts: list[tuple[str, dict[str, str], list[Any]]]) -> None:
    """Write `verdicts` — (trace id, {tag: value}, [mlflow.entities.Assessment]) each, for traces already in the
    store — in one transaction of `store`, where `available(store)`. Raises MlflowException, and writes nothing,
    when a trace is not in the store."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo, SqlTraceTag

    trace_ids = sorted({trace_id for trace_id, _, _ in verdicts})
    with store.ManagedSessionMaker(read_only=False) as session:
        traces = {
            trace_id: (experiment_id, timestamp_ms)
            for trace_id, experiment_id, timestamp_ms in session.query(
                SqlTraceInfo.request_id, SqlTraceInfo.experiment_id, SqlTraceInfo.timestamp_ms
            ).filter(SqlTraceInfo.request_id.in_(trace_ids))
        }
        missing = [trace_id for trace_id in trace_ids if trace_id not in traces]
        if missing:
            raise MlflowException(f"Trace with ID '{missing[0]}' not found; its verdict was not written.")
        rows: list[Any] = []
        for trace_id, tags, assessments in verdicts:
            rows.extend(SqlTraceTag(request_id=trace_id, key=k, value=v) for k, v in tags.items())
            for assessment in assessments:
                row = SqlAssessments.from_mlflow_entity(assessment)
                # What MLflow copies from the trace onto each assessment row.
                row.experiment_id, row.trace_timestamp_ms = traces[trace_id]
                rows.append(row)
        session.add_all(rows)
