"""The rows written straight into MLflow's SQL tables are the rows MLflow's own calls write, on the installed MLflow;
outside the checked versions the same data lands through MLflow's public calls. Real SQLite stores throughout."""

import pytest
from mlflow.tracing.client import TracingClient

from delegate.tracking import sql_fastpath, verdicts
from delegate.tracking.trace_writer import TraceWriter, mlflow_trace_id
from tests.support.records import make_record
from tests.tracking.test_verdicts import root_span

RIGHT = make_record(1, gold="12", extracted="12")
WRONG = make_record(2, gold="7", extracted="8", correct=False, degraded=True, failures=["slm: HTTP 500"])


def written(client, trace_id: str) -> tuple:
    """What a trace holds of its verdict: its tags (the trace's name and MLflow's own aside) and its assessments."""
    info = client.get_trace(trace_id).info
    tags = {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")}
    assessments = sorted(
        (a.name, a.value, a.source.source_type, a.source.source_id, a.rationale, a.metadata, a.valid, a.trace_id)
        for a in info.assessments
    )
    return tags, assessments


def test_the_installed_mlflow_is_one_the_fast_path_was_checked_on(store_run):
    # If this fails after an MLflow upgrade: run this file on the new version, then widen CHECKED_MLFLOW.
    assert sql_fastpath.available(TracingClient(store_run.uri).store)


@pytest.mark.parametrize("version", [(3, 16), (3, 19), (4, 0)])
def test_an_mlflow_outside_the_checked_versions_gets_the_public_calls(store_run, monkeypatch, version):
    monkeypatch.setattr(sql_fastpath, "MLFLOW_VERSION", version)
    assert not sql_fastpath.available(TracingClient(store_run.uri).store)


def test_sql_trace_rollups_turn_the_fast_path_off(store_run, monkeypatch):
    monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "true")
    assert not sql_fastpath.available(TracingClient(store_run.uri).store)


def test_one_transaction_writes_the_rows_the_public_calls_write(store_run):
    writer = TraceWriter(store_run.uri, store_run.experiment_id, store_run.run_id)
    writer.put(root_span(1, 200))
    writer.put(root_span(1, 300))
    assert writer.close() is None
    store = TracingClient(store_run.uri).store
    fast, public = mlflow_trace_id(200), mlflow_trace_id(300)
    sql_fastpath.insert_trace_verdicts(
        store, [(fast, verdicts.verdict_tags(RIGHT), verdicts.trace_assessments(RIGHT, fast))]
    )
    verdicts.log_one_by_one(
        store, [verdicts.TraceVerdict(public, verdicts.verdict_tags(RIGHT), verdicts.trace_assessments(RIGHT, public))]
    )
    fast_written, public_written = written(store_run.client, fast), written(store_run.client, public)
    assert fast_written[0] == public_written[0]
    assert [a[:-1] for a in fast_written[1]] == [a[:-1] for a in public_written[1]]
    assert fast_written[0]["verdict"] == "right"
    found = store_run.client.search_traces(
        locations=[store_run.experiment_id], filter_string="feedback.correct = 'true'"
    )
    assert sorted(t.info.trace_id for t in found) == [fast, public]


def test_verdicts_for_a_trace_not_in_the_store_are_refused_whole(store_run):
    store = TracingClient(store_run.uri).store
    writer = TraceWriter(store_run.uri, store_run.experiment_id, store_run.run_id)
    writer.put(root_span(1, 200))
    assert writer.close() is None
    present, absent = mlflow_trace_id(200), mlflow_trace_id(9)
    with pytest.raises(Exception, match="not found"):
        sql_fastpath.insert_trace_verdicts(
            store,
            [
                (present, verdicts.verdict_tags(RIGHT), verdicts.trace_assessments(RIGHT, present)),
                (absent, verdicts.verdict_tags(RIGHT), verdicts.trace_assessments(RIGHT, absent)),
            ],
        )
    assert "verdict" not in store_run.client.get_trace(present).info.tags


def traces_written_by_a_job(store_run, trace_ids: tuple[int, int]) -> list[tuple]:
    """What the trace writer leaves for two problems' traces, each with its record, as a job hands them over."""
    writer = TraceWriter(store_run.uri, store_run.experiment_id, store_run.run_id)
    for record, trace_id in zip((RIGHT, WRONG), trace_ids):
        writer.put(root_span(record.id, trace_id))
        writer.put_verdict(record)
    assert writer.close() is None
    return [written(store_run.client, mlflow_trace_id(trace_id)) for trace_id in trace_ids]


def test_outside_the_checked_versions_the_same_verdicts_land_through_the_public_calls(store_run, monkeypatch):
    fast = traces_written_by_a_job(store_run, (400, 500))
    monkeypatch.setattr(sql_fastpath, "MLFLOW_VERSION", (3, 19))
    # Nothing may touch the SQL tables now.
    monkeypatch.setattr(sql_fastpath, "insert_trace_verdicts", None)
    public = traces_written_by_a_job(store_run, (600, 700))
    for (fast_tags, fast_assessments), (public_tags, public_assessments) in zip(fast, public):
        assert fast_tags == public_tags
        assert [a[:-1] for a in fast_assessments] == [a[:-1] for a in public_assessments]
    assert [tags["verdict"] for tags, _ in public] == ["right", "wrong"]
    assert [tags["degraded"] for tags, _ in public] == ["false", "true"]
    assert [sorted(a[0] for a in assessments) for _, assessments in public] == [["correct", "gold"]] * 2
