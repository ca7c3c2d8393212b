"""Write finished traces to MLflow in batches, off the job's thread, the way MLflow ingests OpenTelemetry spans.

MLflow's own exporter writes every span and every trace in its own transactions (dozens of SQL statements per
trace); on a SQLite store that costs more than an instant model call. Here a background thread sends whole
batches of traces through the store's `log_spans` (one transaction per batch, which also creates each trace's
record, previews, token totals and name) and links them to the run with `link_traces_to_run`.

Each trace waits (at most a batch's wait) for its problem's record, handed over by `traces.trace_verdict`, and is
written with its verdict (`delegate.tracking.verdicts`): the tags and assessments of a whole batch go in one more
transaction on a SQL store (`delegate.tracking.sql_fastpath`); elsewhere (a tracking server, an MLflow version the
fast path was not checked on) the tags go with the spans and each assessment in a call of its own.
"""

import base64
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Span
from mlflow.tracing.client import TracingClient
from mlflow.tracing.constant import SpanAttributeKey, TraceTagKey

from delegate.records import SampleRecord
from delegate.tracking import sql_fastpath, verdicts
from delegate.tracking.traces import SpanRecord

# At most this many traces per transaction; MLflow links at most 100 traces to a run per request.
MAX_TRACES_PER_BATCH = 200
MAX_LINKS_PER_REQUEST = 100
# How long the thread gathers traces before writing a batch that is not full, and how long a trace waits for its
# problem's record (which the job makes right after the trace ends) before it is written without one.
BATCH_WAIT_S = 0.25

_CLOSE = object()


@dataclass
class _Verdict:
    record: SampleRecord


@dataclass
class _Waiting:
    spans: list[SpanRecord]
    since_s: float


class TraceWriter:
    """A background thread that writes the traces it is given to one experiment, linked to one run."""

    def __init__(self, tracking_uri: str, experiment_id: str, run_id: str):
        self._client = MlflowClient(tracking_uri)
        self._tracing = TracingClient(tracking_uri)
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.written = 0
        self.failed = 0
        self.verdicts_failed = 0
        self._first_error: str | None = None
        self._run_name: str | None = None
        # Set on the thread: whether tags and assessments go in one transaction per batch (sql_fastpath.available).
        self._one_transaction = False
        # Traces waiting for their problem's record, by problem id (oldest first); the ids of traces written without
        # it, by problem id, for a record that comes late.
        self._waiting: dict[Any, _Waiting] = {}
        self._written_without_verdict: dict[Any, str] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="delegate-trace-writer", daemon=True)
        self._thread.start()

    def put(self, spans: list[SpanRecord]) -> None:
        """Queue one finished trace (its root span first, then everything under it)."""
        self._queue.put(spans)

    def put_verdict(self, record: SampleRecord) -> None:
        """Queue a problem's record for the trace of that problem (queued before it, by `put`)."""
        self._queue.put(_Verdict(record))

    def close(self) -> str | None:
        """Write what is queued and stop; a one-line account of traces or verdicts that could not be written, if any."""
        self._queue.put(_CLOSE)
        self._thread.join()
        # Left behind only if the thread died: counted, not lost silently.
        self.failed += len(self._waiting)
        while not self._queue.empty():
            if isinstance(self._queue.get(), list):
                self.failed += 1
        if not self.failed and not self.verdicts_failed:
            return None
        # Not the tracking URI: a database URI can carry a password.
        lost = []
        if self.failed:
            lost.append(f"{self.failed} of {self.failed + self.written} traces")
        if self.verdicts_failed:
            lost.append(f"the verdicts of {self.verdicts_failed} traces")
        return (
            f"{' and '.join(lost)} could not be written to the MLflow store (the results are unaffected): "
            f"{self._first_error}"
        )

    def _run(self) -> None:
        try:
            try:
                self._run_name = self._client.get_run(self.run_id).info.run_name
                self._one_transaction = sql_fastpath.available(self._tracing.store)
            except Exception as exc:  # noqa: BLE001 - the traces are still written, without the run's name
                self._note_error(exc)
            self._write_until_closed()
        except BaseException as exc:  # noqa: BLE001 - reported by close(), which counts what was left
            self._note_error(exc)

    def _write_until_closed(self) -> None:
        closing = False
        while not closing:
            traces = 0
            verdicts_in: list[SampleRecord] = []
            try:
                # While traces wait for their records, wake up in time to write the ones that waited long enough.
                item = self._queue.get(timeout=BATCH_WAIT_S if self._waiting else None)
            except queue.Empty:
                item = None
            deadline_s = time.monotonic() + BATCH_WAIT_S
            while item is not None:
                if item is _CLOSE:
                    closing = True
                    break
                if isinstance(item, _Verdict):
                    verdicts_in.append(item.record)
                else:
                    self._wait_for_verdict(item)
                    traces += 1
                if traces == MAX_TRACES_PER_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline_s - time.monotonic()))
                except queue.Empty:
                    break
            ready, late = self._pair(verdicts_in, flush=closing)
            self._write(ready)
            self._write_late(late)

    def _wait_for_verdict(self, spans: list[SpanRecord]) -> None:
        problem_id = verdicts.problem_id(spans[0])
        if problem_id is None or problem_id in self._waiting:
            # Not a problem's trace, or one problem twice at once (never from delegate.job): written as it is.
            self._waiting[object()] = _Waiting(spans, since_s=float("-inf"))
        else:
            self._waiting[problem_id] = _Waiting(spans, since_s=time.monotonic())

    def _pair(self, records: list[SampleRecord], flush: bool) -> tuple[list, list]:
        """Traces to write now, each with its record (None when it waited its time without one), and the records
        whose trace was already written."""
        ready, late = [], []
        for record in records:
            waiting = self._waiting.pop(record.id, None)
            if waiting is not None:
                ready.append((waiting.spans, record))
            elif record.id in self._written_without_verdict:
                late.append((self._written_without_verdict.pop(record.id), record))
        now_s = time.monotonic()
        for key, waiting in list(self._waiting.items()):
            if flush or now_s - waiting.since_s >= BATCH_WAIT_S:
                ready.append((self._waiting.pop(key).spans, None))
        return ready, late

    def _write(self, traces: list[tuple[list[SpanRecord], SampleRecord | None]]) -> None:
        if not traces:
            return
        try:
            trace_verdicts = self._write_batch(traces)
        except Exception as exc:  # noqa: BLE001 - a trace store failure must not stop or lose the job's results
            if len(traces) == 1:
                self.failed += 1
                self._note_error(exc)
                return
            # One bad trace must not cost the rest of its batch.
            for trace in traces:
                self._write([trace])
            return
        self.written += len(traces)
        for spans, record in traces:
            if record is None and verdicts.problem_id(spans[0]) is not None:
                self._written_without_verdict[verdicts.problem_id(spans[0])] = mlflow_trace_id(spans[0].trace_id)
        self._write_verdicts(trace_verdicts)

    def _write_batch(self, traces: list[tuple[list[SpanRecord], SampleRecord | None]]) -> list[verdicts.TraceVerdict]:
        """Write the spans (one transaction) and link the traces to the run; what is left to write of their verdicts."""
        mlflow_spans, trace_verdicts = [], []
        for spans, record in traces:
            trace_id = mlflow_trace_id(spans[0].trace_id)
            tags = verdicts.trace_tags(spans[0], self._run_name) | (verdicts.verdict_tags(record) if record else {})
            assessments = verdicts.trace_assessments(record, trace_id) if record else []
            # A SQL store takes the tags with the assessments, in one insert; a server, free with the spans.
            mlflow_spans.append(to_mlflow_span(spans[0], None if self._one_transaction else tags))
            mlflow_spans.extend(to_mlflow_span(span) for span in spans[1:])
            trace_verdicts.append(verdicts.TraceVerdict(trace_id, tags if self._one_transaction else {}, assessments))
        self._tracing.log_spans(self.experiment_id, mlflow_spans)
        trace_ids = [v.trace_id for v in trace_verdicts]
        for start in range(0, len(trace_ids), MAX_LINKS_PER_REQUEST):
            self._client.link_traces_to_run(trace_ids[start : start + MAX_LINKS_PER_REQUEST], self.run_id)
        return trace_verdicts

    def _write_verdicts(self, trace_verdicts: list[verdicts.TraceVerdict]) -> None:
        try:
            verdicts.log_trace_verdicts(self._tracing.store, trace_verdicts)
        except Exception as exc:  # noqa: BLE001 - the traces are written; only their verdicts are missing
            self.verdicts_failed += sum(1 for v in trace_verdicts if v.tags or v.assessments)
            self._note_error(exc)

    def _write_late(self, late: list[tuple[str, SampleRecord]]) -> None:
        """Verdicts of traces that went without them (their record came after they had waited their time)."""
        for trace_id, record in late:
            self._write_verdicts(
                [
                    verdicts.TraceVerdict(
                        trace_id, verdicts.verdict_tags(record), verdicts.trace_assessments(record, trace_id)
                    )
                ]
            )

    def _note_error(self, exc: BaseException) -> None:
        first_line = (str(exc).splitlines() or [""])[0][:300]
        self._first_error = self._first_error or f"{type(exc).__name__}: {first_line}"


def mlflow_trace_id(trace_id: int) -> str:
    return f"tr-{trace_id:032x}"


def _json(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a model's broken "\\ud83d" escape) can't be stored as UTF-8; escaped, it can.
        return json.dumps(value, default=str)
    return text


def _base64_id(value: int, n_bytes: int) -> str:
    return base64.b64encode(value.to_bytes(n_bytes, "big")).decode("ascii")


def to_mlflow_span(record: SpanRecord, trace_tags: dict[str, str] | None = None) -> Span:
    """The MLflow span for a record, in MLflow's own serialised form (what `Span.to_dict` writes); a root span
    carries its trace's name and `trace_tags`, which the store sets on the trace as it writes the spans."""
    attributes = {
        SpanAttributeKey.REQUEST_ID: _json(mlflow_trace_id(record.trace_id)),
        SpanAttributeKey.SPAN_TYPE: _json(record.span_type),
        SpanAttributeKey.INPUTS: _json(record.inputs),
        SpanAttributeKey.OUTPUTS: _json(record.outputs),
        **{key: _json(value) for key, value in record.attributes.items()},
    }
    if "prompt_tokens" in record.attributes and "completion_tokens" in record.attributes:
        # The tokens as the model reported them, where MLflow's UI and trace totals look for them.
        prompt, completion = record.attributes["prompt_tokens"], record.attributes["completion_tokens"]
        attributes[SpanAttributeKey.CHAT_USAGE] = _json(
            {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
        )
    if record.parent_id is None:
        attributes[SpanAttributeKey.TRACE_TAG_PREFIX + TraceTagKey.TRACE_NAME] = _json(record.name)
        for key, value in (trace_tags or {}).items():
            attributes[SpanAttributeKey.TRACE_TAG_PREFIX + key] = _json(value)
    return Span.from_dict(
        {
            "trace_id": _base64_id(record.trace_id, 16),
            "span_id": _base64_id(record.span_id, 8),
            "parent_span_id": _base64_id(record.parent_id, 8) if record.parent_id is not None else None,
            "name": record.name,
            "start_time_unix_nano": record.start_ns,
            "end_time_unix_nano": record.end_ns,
            "events": [],
            "status": {
                "code": "STATUS_CODE_ERROR" if record.error else "STATUS_CODE_OK",
                "message": record.error or "",
            },
            "attributes": attributes,
        }
    )
