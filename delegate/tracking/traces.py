"""Spans for one problem's work: a root span per problem, children for model calls and delegations; a no-op while off.

Each problem's verdict (its `SampleRecord`) follows its trace to the sink through `trace_verdict`, so the trace is
written with the gold answer, the score and tags that let the MLflow UI show and filter right and wrong answers.
"""

import asyncio
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from delegate.records import SampleRecord


class TraceSink(Protocol):
    """Where finished traces go (`trace_writer.TraceWriter` writes them to MLflow)."""

    def put(self, spans: list["SpanRecord"]) -> None: ...

    def put_verdict(self, record: "SampleRecord") -> None: ...

    def close(self) -> str | None:
        """Write what is left and stop; a one-line account of what could not be written, if anything."""


@dataclass
class SpanRecord:
    """One span as the job saw it: what went in, what came out, and when."""

    name: str
    span_type: str
    trace_id: int  # 128 bits, shared by every span of one problem
    span_id: int  # 64 bits
    parent_id: int | None
    start_ns: int
    end_ns: int | None = None
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def set_inputs(self, inputs: Any) -> None:
        self.inputs = inputs

    def set_outputs(self, outputs: Any) -> None:
        self.outputs = outputs

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self.attributes.update(attributes)

    def set_error(self, message: str) -> None:
        """Mark the span failed, with the error the job recorded (the problem's work may have gone on)."""
        self.error = message


class _NoSpan:
    def set_inputs(self, inputs: Any) -> None: ...

    def set_outputs(self, outputs: Any) -> None: ...

    def set_attributes(self, attributes: dict[str, Any]) -> None: ...

    def set_error(self, message: str) -> None: ...


# Set by `traces_enabled` for the job's duration; while None, spans cost nothing.
_sink: TraceSink | None = None
# The innermost open span, and the list its trace's spans are gathered in; each asyncio task (one problem) has its own.
_current: ContextVar[tuple[SpanRecord, list[SpanRecord]] | None] = ContextVar("delegate_current_span", default=None)


@contextmanager
def traces_enabled(sink: TraceSink) -> Iterator[None]:
    """Hand each problem's trace to `sink` (the job injects a `trace_writer.TraceWriter` for its MLflow run) while
    the block runs; the sink is closed at its end, so every trace is written by then."""
    global _sink
    _sink = sink
    try:
        yield
    finally:
        _sink = None
        failure = sink.close()
        if failure:
            # The job's results are safe in samples.jsonl and the run; only the traces are missing.
            print(f"delegate: {failure}", file=sys.stderr)


def trace_verdict(record: "SampleRecord") -> None:
    """Hand a problem's scored record to the trace of that problem (its root span's `inputs["id"]`); a no-op while
    traces are off. Call it once the record is made: the trace is written with the verdict attached."""
    sink = _sink
    if sink is not None:
        sink.put_verdict(record)


@contextmanager
def span(name: str, span_type: str, inputs: Any = None, root: bool = False) -> Iterator[Any]:
    """A span under the current one (`root`, or no span open: the start of a new trace); a no-op while traces are off."""
    sink = _sink
    if sink is None:
        yield _NoSpan()
        return
    outer = None if root else _current.get()
    parent, spans = outer if outer is not None else (None, [])
    record = SpanRecord(
        name=name,
        span_type=span_type,
        trace_id=parent.trace_id if parent else secrets.randbits(128),
        span_id=secrets.randbits(64) or 1,
        parent_id=parent.span_id if parent else None,
        start_ns=time.time_ns(),
        inputs=inputs,
    )
    spans.append(record)
    token = _current.set((record, spans))
    interrupted = False
    try:
        yield record
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        # A problem that did not finish: like its record, its trace is not kept (a resumed job traces it anew).
        interrupted = True
        record.set_error(f"{type(exc).__name__}: cancelled")
        raise
    except BaseException as exc:
        record.set_error(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        record.end_ns = time.time_ns()
        _current.reset(token)
        if parent is None and not interrupted:
            sink.put(finished_copy(spans, record.end_ns))


def finished_copy(spans: list[SpanRecord], end_ns: int) -> list[SpanRecord]:
    """The trace as it stands when its root ends: copies, so a task still running can't change what gets written."""
    copies = [replace(record, attributes=dict(record.attributes)) for record in spans]
    for record in copies:
        if record.end_ns is None:
            record.end_ns = end_ns
            record.error = record.error or "still running when the problem ended"
    return copies
