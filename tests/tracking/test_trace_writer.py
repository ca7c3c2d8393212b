"""The trace writer: batches into a real SQLite store, one bad trace costs only itself, and the span format MLflow reads."""

from delegate.tracking.trace_writer import TraceWriter, mlflow_trace_id
from delegate.tracking.traces import SpanRecord


def root(trace_id: int, name: str = "problem-1", outputs=None) -> list[SpanRecord]:
    return [
        SpanRecord(
            name=name,
            span_type="AGENT",
            trace_id=trace_id,
            span_id=trace_id + 1,
            parent_id=None,
            start_ns=1_700_000_000_000_000_000,
            end_ns=1_700_000_000_250_000_000,
            outputs=outputs,
        )
    ]


def test_one_bad_trace_costs_only_itself(store_run):
    uri, client, experiment_id, run_id = store_run
    writer = TraceWriter(uri, experiment_id, run_id)
    writer.put(root(10, name="problem-" + "x" * 5000))  # MLflow refuses trace names over 4,096 characters
    # A lone surrogate, as a model's broken escape can leave in its text: not valid UTF-8 as it is.
    writer.put(root(20, name="problem-2", outputs="6*8 = \ud83d"))
    writer.put(root(30, name="problem-3", outputs="48"))
    failure = writer.close()

    assert (writer.written, writer.failed) == (2, 1)
    assert failure.startswith("1 of 3 traces could not be written to the MLflow store (the results are unaffected): ")
    assert "4096" in failure
    traces = {t.info.trace_id: t for t in client.search_traces(locations=[experiment_id], run_id=run_id)}
    assert sorted(traces) == [mlflow_trace_id(20), mlflow_trace_id(30)]
    assert traces[mlflow_trace_id(20)].data.spans[0].outputs == "6*8 = \ud83d"
    assert traces[mlflow_trace_id(30)].info.execution_duration == 250


def test_closing_an_idle_writer_writes_nothing_and_reports_nothing(store_run):
    uri, client, experiment_id, run_id = store_run
    writer = TraceWriter(uri, experiment_id, run_id)
    assert writer.close() is None
    assert client.search_traces(locations=[experiment_id]) == []
