"""The tool result carries the SLM's answer as the scorer reads it: one value, the last claim, never a stray token."""

import json

import pytest

from delegate.data.problem import Problem
from delegate.testing.scripted_server import Reply
from tests.support.router import solve

TOOL = "ask_math_assistant"

SLM_ANSWERS = [
    # (SLM reply, the value the LLM must be told, the LLM's final reply quoting the SLM)
    (r"Each box takes 13/4 hours, that is \boxed{3\frac{1}{4}}.", "3.25", r"It takes \boxed{3\frac{1}{4}} hours."),
    ("Add 1 hour and 3/4 of an hour. It takes 1 3/4 hours.", "1.75", "It takes \\boxed{1\\tfrac{3}{4}} hours."),
    (r"7 m times 7 m: the area is \boxed{49 \text{ m}^2}.", "49", r"The area is \boxed{49} m^2."),
    (r"1000 people per day for 5 days: about 5\times 10^3 people.", "5000", r"\boxed{5000}"),
    ("The answer is 12. Wait, recheck: the answer is 14.", "14", r"\boxed{14}"),
]


@pytest.mark.parametrize(("slm_text", "value", "llm_final"), SLM_ANSWERS)
def test_the_tool_result_carries_the_value_the_scorer_reads(scripted_server, slm, slm_text, value, llm_final):
    llm = scripted_server
    call = {"id": "call_a", "name": TOOL, "arguments": json.dumps({"question": "How long does one box take?"})}
    llm.push(Reply(tool_calls=[call]), Reply(content=llm_final))
    slm.push(Reply(content=slm_text))

    record, cfg = solve(llm, slm, problem=Problem(id=0, question="How long?", gold=value))

    assert cfg.tool_result == "answer"
    assert cfg.answer_template.startswith("Answer: {answer}.")
    [tool_message] = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_message["tool_call_id"] == "call_a"
    assert tool_message["content"].startswith(f"Answer: {value}. (Last step: ")
    assert record.delegations[0].result == tool_message["content"]
    # The LLM's own reply is scored by the same reader.
    assert (record.extracted, record.correct) == (value, True)


def test_the_tool_result_is_read_by_the_problems_scorer(scripted_server, slm):
    """A MATH problem's SLM reply is shortened to its LaTeX answer, not to the numeric reading of it (14/3)."""
    llm = scripted_server
    call = {"id": "call_a", "name": TOOL, "arguments": json.dumps({"question": "What is 4 2/3 as a fraction?"})}
    llm.push(Reply(tool_calls=[call]), Reply(content=r"So \boxed{\frac{14}{3}}."))
    slm.push(Reply(content=r"Mixed to improper: \boxed{\dfrac{14}{3}}."))

    record, _ = solve(llm, slm, problem=Problem(id=0, question="4 2/3?", gold=r"4\frac{2}{3}", scorers=("symbolic",)))

    [tool_message] = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_message["content"].startswith(r"Answer: \dfrac{14}{3}. (Last step: ")
    assert (record.extracted, record.correct) == (r"\frac{14}{3}", True)
    assert list(record.scores) == ["symbolic"]


@pytest.mark.parametrize("tool_result", ["answer", "full"])
def test_the_slms_thinking_never_reaches_the_llm_as_its_answer(scripted_server, slm, tool_result):
    llm = scripted_server
    call = {"id": "call_t", "name": TOOL, "arguments": json.dumps({"question": "6 times 8?"})}
    llm.push(Reply(tool_calls=[call]), Reply(content="<think>The helper says 48.</think> \\boxed{48}"))
    thinking = "<think>6 times 8 is \\boxed{42}? Let me check.</think>"
    slm.push(Reply(content=f"{thinking} 6 times 8 is 48, so \\boxed{{48}}."))

    record, _ = solve(
        llm, slm, f"strategy.tool_result={tool_result}", problem=Problem(id=0, question="6x8?", gold="48")
    )

    [tool_message] = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "<think>" not in tool_message["content"] and "42" not in tool_message["content"]
    if tool_result == "answer":
        assert tool_message["content"].startswith("Answer: 48. (Last step: ")
    # The record keeps what the SLM and the LLM wrote, thinking included; the score reads past it.
    assert record.delegations[0].slm_output.startswith(thinking)
    assert record.response.startswith("<think>")
    assert (record.extracted, record.correct) == ("48", True)
