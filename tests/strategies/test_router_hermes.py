"""What the router tells the LLM about Hermes `<tool_call>` blocks it could not read: the real fault, never a fake tool."""

import json

import pytest

from delegate.compose import compose_config
from delegate.models.hermes import MALFORMED_CALL_NAME, parse_tool_calls
from delegate.strategies.router import ToolConfig, read_question
from delegate.testing.scripted_server import Reply
from tests.support.router import solve

TOOL = ToolConfig(description="Ask a small math model.", argument_description="The sub-question.")
TOOL_ERRORS = compose_config(["strategy=router"]).strategy.tool_errors
FORMAT_HINT = '<tool_call>{"name": "ask_math_assistant", "arguments": {"question": "..."}}</tool_call>'


def read(reply: str) -> tuple[str | None, str | None, str | None]:
    """What the router makes of the one call the in-process backend parses from `reply`."""
    _, (call,) = parse_tool_calls(reply)
    return read_question(call, TOOL, TOOL_ERRORS)


def test_a_well_formed_call_gives_the_router_its_question():
    reply = '<tool_call>{"name": "ask_math_assistant", "arguments": {"question": "  What is 6*8? "}}</tool_call>'
    assert read(reply) == ("What is 6*8?", None, None)


def test_a_leniently_decoded_call_gives_the_router_its_question():
    reply = "<tool_call>```json\n{'name': 'ask_math_assistant', 'arguments': {'question': 'What is 6*8?'}\n```</tool_ca"
    assert read(reply) == ("What is 6*8?", None, None)


@pytest.mark.parametrize(
    "block, detail",
    [
        ('{"name": "ask_math_assistant", "arguments": {"question": "What is 6*8?}}', "Unterminated string starting at"),
        ('{"name": "ask_math_assistant", "argum', "Unterminated string starting at"),
        (
            '{"name": "ask_math_assistant", "arguments": {question: "6*8"}}',
            "Expecting property name enclosed in double quotes",
        ),
    ],
    ids=["unterminated-string", "cut-off", "unquoted-key"],
)
def test_undecodable_json_for_the_right_tool_is_reported_as_invalid_json(block, detail):
    question, event, message = read(f"<tool_call>{block}</tool_call>")
    assert (question, event) == (None, "invalid_arguments")
    assert message == f'Error: the arguments are not valid JSON ({detail}); send {{"question": "..."}}.'


def test_undecodable_json_for_another_tool_says_that_tool_does_not_exist():
    question, event, message = read('<tool_call>{"name": "calculator", "arguments": {x: 1}}</tool_call>')
    assert (question, event) == (None, "unknown_tool")
    assert message == "Error: there is no tool named 'calculator'; the only tool is 'ask_math_assistant'."


@pytest.mark.parametrize(
    "block, detail",
    [
        ("{oops", "not valid JSON: Expecting property name enclosed in double quotes"),
        ("ask_math_assistant(question='6*8')", "not valid JSON: Expecting value"),
        ("", "empty"),
        ('["ask_math_assistant"]', 'item 0 of the array: a JSON string, not an object with a "name"'),
        ('{"arguments": {"question": "6*8"}}', 'no "name"'),
        ('{"name": 7, "arguments": {"question": "6*8"}}', '"name" is a JSON number, not a string'),
    ],
    ids=["broken-json", "call-syntax", "empty", "array-of-string", "no-name", "name-number"],
)
def test_a_block_naming_no_tool_is_told_why_and_how_to_write_one(block, detail):
    question, event, message = read(f"<tool_call>{block}</tool_call>")
    assert (question, event) == (None, "malformed_call")
    assert message == f"Error: the <tool_call> block is not a call ({detail}); write {FORMAT_HINT}."
    assert MALFORMED_CALL_NAME not in message


# Through the loop, as the in-process backend hands the calls over (scripted servers, real SDK and config)


def hermes_reply(text: str) -> Reply:
    """The LLM reply that `text` becomes once parsed: its content and its calls, as native tool calls."""
    content, calls = parse_tool_calls(text)
    return Reply(content=content, tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls])


def test_broken_blocks_are_answered_with_their_faults_and_a_good_one_is_delegated(llm, slm):
    llm.push(
        hermes_reply(
            '<think>Draft: <tool_call>{"name": "ask_math_assistant", "arguments": {"question": "1+1?"}}'
            "</tool_call></think>Three calls.\n"
            "<tool_call>{not json at all</tool_call>\n"
            '<tool_call>{"name": "ask_math_assistant", "arguments": {"question": "6*8?</tool_call>\n'
            "<tool_call>{'name': 'ask_math_assistant', 'arguments': {'question': 'What is 6*8?'}}</tool_call>"
        ),
        Reply(content="So \\boxed{48}"),
    )
    slm.push(Reply(content="\\boxed{48}"))
    record, _ = solve(llm, slm)

    # The drafted call never ran; the SLM answered the one readable call.
    assert [r["messages"][-1]["content"] for r in slm.requests] == ["What is 6*8?"]
    assert record.events == {"malformed_call": 1, "invalid_arguments": 1}
    malformed, invalid, answered = record.delegations
    assert malformed.name == MALFORMED_CALL_NAME and malformed.arguments == "{not json at all"
    assert malformed.result.startswith("Error: the <tool_call> block is not a call (not valid JSON: ")
    assert invalid.name == "ask_math_assistant"
    assert invalid.result.startswith("Error: the arguments are not valid JSON (Unterminated string")
    assert answered.answered and answered.error is None
    tool_messages = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_messages == [malformed.result, invalid.result, answered.result]
    assert not any("no tool named" in m for m in tool_messages)
    assert record.correct is True


def test_the_malformed_call_message_comes_from_the_config(llm, slm):
    llm.push(hermes_reply("<tool_call>42</tool_call>"), Reply(content="\\boxed{48}"))
    solve(llm, slm, "strategy.tool_errors.malformed_call='Bad block ({detail}); use {tool} with {argument}. {x}'")
    [message] = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert (
        message == 'Bad block (a JSON number, not an object with a "name"); use ask_math_assistant with question. {x}'
    )
    assert slm.requests == []


def test_the_arguments_sent_back_to_the_llm_are_json_it_can_read(llm, slm):
    llm.push(
        hermes_reply("<tool_call>{'name': 'ask_math_assistant', 'arguments': {'question': 'Was ist 6×8?'}}"),
        Reply(content="\\boxed{48}"),
    )
    slm.push(Reply(content="\\boxed{48}"))
    record, _ = solve(llm, slm)
    [call] = llm.requests[1]["messages"][-2]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"question": "Was ist 6×8?"}
    assert record.delegations[0].question == "Was ist 6×8?"
