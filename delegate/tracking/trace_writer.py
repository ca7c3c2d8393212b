"""Write finished traces to MLflow in batches, off the job's thread, the way MLflow ingests OpenTelemetry spans.

MLflow's own exporter writes every span and every trace in its own transactions (dozens of SQL statements per
trace); on a SQLite store that costs more than an instant model call. Here a background thread sends whole
batches of traces through the store's `log_spans` (one transaction per batch, which also creates each trace's
record, previews, token totals and name) and links them to the run with `link_traces_to_run`.
"""

import base64
import json
import queue
import threading
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Span
from mlflow.tracing.client import TracingClient
from mlflow.tracing.constant import SpanAttributeKey, TraceTagKey

from delegate.tracking.traces import SpanRecord

# At most this many traces per transaction; MLflow links at most 100 traces to a run per request.
MAX_TRACES_PER_BATCH = 200
MAX_LINKS_PER_REQUEST = 100
# How long the thread gathers traces before writing a batch that is not full.
BATCH_WAIT_S = 0.25

_CLOSE = object()


class TraceWriter:
    """A background thread that writes the traces it is given to one experiment, linked to one run."""

    def __init__(self, tracking_uri: str, experiment_id: str, run_id: str):
        self._client = MlflowClient(tracking_uri)
        self._tracing = TracingClient(tracking_uri)
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.written = 0
        self.failed = 0
        self._first_error: str | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="delegate-trace-writer", daemon=True)
        self._thread.start()

    def put(self, spans: list[SpanRecord]) -> None:
        """Queue one finished trace (its root span and everything under it)."""
        self._queue.put(spans)

    def close(self) -> str | None:
        """Write what is queued and stop; a one-line account of traces that could not be written, if any."""
        self._queue.put(_CLOSE)
        self._thread.join()
        # Left behind only if the thread died: counted, not lost silently.
        while not self._queue.empty():
            if self._queue.get() is not _CLOSE:
                self.failed += 1
        if not self.failed:
            return None
        return (
            # Not the tracking URI: a database URI can carry a password.
            f"{self.failed} of {self.failed + self.written} traces could not be written to the MLflow store "
            f"(the results are unaffected): {self._first_error}"
        )

    def _run(self) -> None:
        try:
            self._write_until_closed()
        except BaseException as exc:  # noqa: BLE001 - reported by close(), which counts what was left
            self._note_error(exc)

    def _write_until_closed(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[list[SpanRecord]] = []
            deadline_s = time.monotonic() + BATCH_WAIT_S
            while item is not _CLOSE:
                batch.append(item)
                if len(batch) == MAX_TRACES_PER_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline_s - time.monotonic()))
                except queue.Empty:
                    break
            self._write(batch)
            if item is _CLOSE:
                return

    def _write(self, traces: list[list[SpanRecord]]) -> None:
        if not traces:
            return
        try:
            self._write_batch(traces)
        except Exception as exc:  # noqa: BLE001 - a trace store failure must not stop or lose the job's results
            if len(traces) == 1:
                self.failed += 1
                self._note_error(exc)
                return
            # One bad trace must not cost the rest of its batch.
            for trace in traces:
                self._write([trace])
        else:
            self.written += len(traces)

    def _write_batch(self, traces: list[list[SpanRecord]]) -> None:
        self._tracing.log_spans(self.experiment_id, [to_mlflow_span(record) for spans in traces for record in spans])
        trace_ids = [mlflow_trace_id(spans[0].trace_id) for spans in traces]
        for start in range(0, len(trace_ids), MAX_LINKS_PER_REQUEST):
            self._client.link_traces_to_run(trace_ids[start : start + MAX_LINKS_PER_REQUEST], self.run_id)

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


def to_mlflow_span(record: SpanRecord) -> Span:
    """The MLflow span for a record, in MLflow's own serialised form (what `Span.to_dict` writes)."""
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
    return Span.from_dict({
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
    })
