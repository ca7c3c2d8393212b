"""Spans cost nothing while traces are off; on, one problem is one trace in a real SQLite store, linked to the run."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from delegate.testing.scripted_server import Reply, ScriptedServer
from delegate.tracking.trace_writer import TraceWriter
from delegate.tracking.traces import span, traces_enabled
from tests.support.router import PROBLEM, solve


def test_span_is_a_no_op_while_traces_are_off():
    with span("problem-0", "AGENT", inputs={"id": 0}, root=True) as root:
        with span("llm.chat", "CHAT_MODEL", inputs={"messages": []}) as live:
            # Nothing is recorded, yet the strategy's calls on it still work.
            live.set_inputs({"a": 1})
            live.set_outputs("text")
            live.set_attributes({"prompt_tokens": 3})
            live.set_error("none really")
        root.set_outputs({"correct": True})
    assert type(root) is type(live)
    assert not hasattr(live, "span_id")


def test_span_off_does_not_import_mlflow():
    # A fresh interpreter: this process has imported mlflow already.
    code = (
        "import sys\n"
        "from delegate.tracking.traces import span\n"
        "with span('problem-0', 'AGENT', inputs={'id': 0}, root=True) as live:\n"
        "    live.set_attributes({'x': 1}); live.set_outputs('y'); live.set_inputs('z')\n"
        "print('mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_router_problem_is_one_trace_linked_to_the_run(store_run, scripted_server):
    uri, client, experiment_id, run_id = store_run

    llm = scripted_server
    llm.push(
        Reply(
            tool_calls=[{"id": "call_a", "name": "ask_math_assistant", "arguments": '{"question": "What is 6*8?"}'}],
            prompt_tokens=101,
            completion_tokens=17,
        ),
        Reply(content="\\boxed{48}", prompt_tokens=257, completion_tokens=23),
    )
    with ScriptedServer() as slm:
        slm.push(Reply(content="6*8 = 48. \\boxed{48}", prompt_tokens=31, completion_tokens=44, delay_s=0.05))
        with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
            record, _ = solve(llm, slm)
    assert record.correct and record.error is None

    [trace] = client.search_traces(locations=[experiment_id])
    assert [t.info.trace_id for t in client.search_traces(locations=[experiment_id], run_id=run_id)] == [
        trace.info.trace_id
    ]
    # The filter the MLflow UI's run page uses for its Traces tab.
    ui_filter = f"request_metadata.`mlflow.sourceRun` = '{run_id}'"
    assert [t.info.trace_id for t in client.search_traces(locations=[experiment_id], filter_string=ui_filter)] == [
        trace.info.trace_id
    ]
    assert trace.info.state.value == "OK"
    assert trace.info.tags["mlflow.traceName"] == "problem-0"
    # The trace's totals are the tokens the models reported: 101+17 and 257+23 (LLM), 31+44 (SLM).
    assert trace.info.token_usage == {
        "input_tokens": 101 + 257 + 31,
        "output_tokens": 17 + 23 + 44,
        "total_tokens": 101 + 17 + 257 + 23 + 31 + 44,
    }

    spans = trace.data.spans
    [root] = [s for s in spans if s.parent_id is None]
    assert (root.name, root.span_type) == ("problem-0", "AGENT")
    assert root.inputs == {"id": 0, "question": PROBLEM.question}
    assert root.outputs == {"response": "\\boxed{48}", "extracted": "48", "correct": True}
    assert root.attributes["tool_calls"] == 1 and root.attributes["strategy"] == "router"

    llm_spans = sorted((s for s in spans if s.name == "llm.chat"), key=lambda s: s.start_time_ns)
    assert [(s.span_type, s.parent_id) for s in llm_spans] == [("CHAT_MODEL", root.span_id)] * 2
    assert [(s.attributes["prompt_tokens"], s.attributes["completion_tokens"]) for s in llm_spans] == [
        (101, 17),
        (257, 23),
    ]
    assert llm_spans[0].outputs["tool_calls"][0]["id"] == "call_a"

    [tool] = [s for s in spans if s.span_type == "TOOL"]
    assert (tool.name, tool.parent_id) == ("ask_math_assistant", root.span_id)
    assert tool.inputs == {"name": "ask_math_assistant", "arguments": '{"question": "What is 6*8?"}'}
    assert tool.outputs == record.delegations[0].result
    [slm_span] = [s for s in spans if s.name == "slm.chat"]
    assert (slm_span.span_type, slm_span.parent_id) == ("CHAT_MODEL", tool.span_id)
    assert (slm_span.attributes["prompt_tokens"], slm_span.attributes["completion_tokens"]) == (31, 44)
    assert slm_span.attributes["latency_s"] >= 0.05
    assert slm_span.attributes["latency_s"] == record.delegations[0].slm_latency_s
    assert slm_span.inputs["messages"][-1] == {"role": "user", "content": "What is 6*8?"}
    assert len(spans) == 5


def test_spans_after_the_job_are_off_again(store_run):
    uri, client, experiment_id, run_id = store_run
    with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
        with span("problem-1", "AGENT", root=True):
            pass
    with span("problem-2", "AGENT", root=True) as live:
        live.set_outputs("ignored")
    traces = client.search_traces(locations=[experiment_id])
    assert [[s.name for s in t.data.spans] for t in traces] == [["problem-1"]]


def test_concurrent_problems_each_get_their_own_trace_all_linked(store_run):
    # More traces than one write batch (200) and than one link request (100), made by concurrent tasks.
    uri, client, experiment_id, run_id = store_run

    async def problem(i: int) -> None:
        with span(f"problem-{i}", "AGENT", inputs={"id": i}, root=True) as root:
            await asyncio.sleep(0.001 * (i % 7))
            with span("llm.chat", "CHAT_MODEL") as live:
                await asyncio.sleep(0.001 * (i % 5))
                live.set_attributes({"prompt_tokens": i, "completion_tokens": 1})
            root.set_outputs({"id": i})

    async def all_problems() -> None:
        await asyncio.gather(*(problem(i) for i in range(450)))

    with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
        asyncio.run(all_problems())

    traces = client.search_traces(locations=[experiment_id], run_id=run_id, max_results=1000)
    assert len(traces) == 450
    for trace in traces:
        [root] = [s for s in trace.data.spans if s.parent_id is None]
        [child] = [s for s in trace.data.spans if s.parent_id is not None]
        # The child is under its own problem's root, whatever ran in between.
        assert child.parent_id == root.span_id
        assert child.attributes["prompt_tokens"] == root.outputs["id"]
        assert root.start_time_ns <= child.start_time_ns <= child.end_time_ns <= root.end_time_ns


def test_a_failed_problem_is_an_error_trace(store_run):
    uri, client, experiment_id, run_id = store_run
    with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
        with span("problem-3", "AGENT", root=True) as root:
            with pytest.raises(TimeoutError):
                with span("llm.chat", "CHAT_MODEL"):
                    raise TimeoutError("no reply in 60 s")
            root.set_error("TimeoutError: no reply in 60 s")
    [trace] = client.search_traces(locations=[experiment_id])
    assert trace.info.state.value == "ERROR"
    assert {s.name: (s.status.status_code.value, s.status.description) for s in trace.data.spans} == {
        "problem-3": ("ERROR", "TimeoutError: no reply in 60 s"),
        "llm.chat": ("ERROR", "TimeoutError: no reply in 60 s"),
    }


def test_traces_that_cannot_be_written_are_reported_in_one_line_and_the_job_goes_on(store_run, capfd):
    uri, client, _, run_id = store_run
    with traces_enabled(TraceWriter(uri, "987654", run_id)):  # no such experiment
        with span("problem-1", "AGENT", root=True):
            pass
        with span("problem-2", "AGENT", root=True):
            pass
    [line] = [line for line in capfd.readouterr().err.splitlines() if line.startswith("delegate:")]
    assert line.startswith(
        "delegate: 2 of 2 traces could not be written to the MLflow store (the results are unaffected): "
    )


def test_an_interrupted_problem_leaves_no_trace(store_run):
    # Like its record: the resumed job solves it again, and traces it then.
    uri, client, experiment_id, run_id = store_run

    async def problem() -> None:
        with span("problem-1", "AGENT", root=True), span("llm.chat", "CHAT_MODEL"):
            await asyncio.sleep(10)

    async def interrupted() -> None:
        task = asyncio.ensure_future(problem())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
        asyncio.run(interrupted())
        with span("problem-2", "AGENT", root=True):
            pass
    assert [t.info.tags["mlflow.traceName"] for t in client.search_traces(locations=[experiment_id])] == ["problem-2"]


def test_a_span_still_open_when_its_problem_ends_is_written_as_unfinished(store_run):
    uri, client, experiment_id, run_id = store_run

    async def straggler() -> None:
        with span("tool", "TOOL"):
            await asyncio.sleep(0.2)
            with span("slm.chat", "CHAT_MODEL"):  # opened after the problem ended: not part of what was written
                pass

    async def problem() -> None:
        with span("problem-1", "AGENT", root=True):
            task = asyncio.ensure_future(straggler())
            await asyncio.sleep(0.05)
        await task

    with traces_enabled(TraceWriter(uri, experiment_id, run_id)):
        asyncio.run(problem())
    [trace] = client.search_traces(locations=[experiment_id])
    spans = {s.name: s for s in trace.data.spans}
    assert sorted(spans) == ["problem-1", "tool"]
    assert spans["tool"].status.description == "still running when the problem ended"
    assert spans["tool"].end_time_ns == spans["problem-1"].end_time_ns
