"""Hermes `<tool_call>` blocks (Qwen2.5) parse into ToolCalls; a broken block becomes a call the router refuses."""

import json

from delegate.config import compose_config
from delegate.models.base import ToolCall
from delegate.models.hermes import MALFORMED_CALL_NAME, inline_tools, parse_tool_calls
from delegate.strategies.router import ToolConfig, read_question

TOOL = ToolConfig(description="Ask a small math model.", argument_description="The sub-question.")
TOOL_ERRORS = compose_config(["strategy=router"]).strategy.tool_errors


def test_one_call_is_parsed_and_its_block_removed():
    text = (
        "I need a product first.\n"
        '<tool_call>\n{"name": "ask_math_assistant", "arguments": {"question": "What is 6*8?"}}\n</tool_call>'
    )
    content, calls = parse_tool_calls(text)
    assert content == "I need a product first."
    assert calls == (ToolCall(id="call_0", name="ask_math_assistant", arguments='{"question": "What is 6*8?"}'),)
    assert json.loads(calls[0].arguments) == {"question": "What is 6*8?"}


def test_arguments_are_reserialized_as_json_text():
    text = '<tool_call>{"name": "f", "arguments": {"b": [1, 2],   "a": "x\\"y"}}</tool_call>'
    _, (call,) = parse_tool_calls(text)
    assert call.arguments == json.dumps({"b": [1, 2], "a": 'x"y'})


def test_call_without_arguments_gets_an_empty_object():
    _, (call,) = parse_tool_calls('<tool_call>{"name": "f"}</tool_call>')
    assert (call.name, call.arguments) == ("f", "{}")


def test_several_calls_keep_their_order_and_get_distinct_ids():
    text = (
        "Two steps.\n"
        '<tool_call>{"name": "ask", "arguments": {"question": "6*8?"}}</tool_call>\n'
        "and then\n"
        '<tool_call>{"name": "ask", "arguments": {"question": "48+2?"}}</tool_call>\n'
        '<tool_call>{"name": "other", "arguments": {}}</tool_call>'
    )
    content, calls = parse_tool_calls(text, id_prefix="call_7")
    assert [c.id for c in calls] == ["call_7_0", "call_7_1", "call_7_2"]
    assert [c.name for c in calls] == ["ask", "ask", "other"]
    assert [json.loads(c.arguments) for c in calls] == [{"question": "6*8?"}, {"question": "48+2?"}, {}]
    assert "<tool_call>" not in content and "</tool_call>" not in content
    assert content.startswith("Two steps.") and "and then" in content


def test_arguments_given_as_a_json_string_are_kept_verbatim():
    text = '<tool_call>{"name": "ask", "arguments": "{\\"question\\": \\"6*8?\\"}"}</tool_call>'
    _, (call,) = parse_tool_calls(text)
    assert call.arguments == '{"question": "6*8?"}'


def test_malformed_json_becomes_a_malformed_call_with_the_raw_text():
    raw = '{"name": "ask", "arguments": {"question": "6*8?"'
    content, calls = parse_tool_calls(f"Let me ask. <tool_call> {raw} </tool_call>")
    assert content == "Let me ask."
    assert calls == (ToolCall(id="call_0", name=MALFORMED_CALL_NAME, arguments=raw),)


def test_block_without_a_string_name_is_malformed():
    for payload in ('{"arguments": {"question": "6*8?"}}', '{"name": 3}', '["ask"]', '"ask"'):
        _, (call,) = parse_tool_calls(f"<tool_call>{payload}</tool_call>")
        assert (call.name, call.arguments) == (MALFORMED_CALL_NAME, payload), payload


def test_unclosed_block_at_the_end_is_still_read():
    # A generation cut by max_new_tokens can stop before </tool_call>.
    whole = 'Asking.\n<tool_call>\n{"name": "ask", "arguments": {"question": "6*8?"}}\n'
    content, (call,) = parse_tool_calls(whole)
    assert content == "Asking."
    assert (call.name, json.loads(call.arguments)) == ("ask", {"question": "6*8?"})

    truncated = 'Asking.\n<tool_call>\n{"name": "ask", "argum'
    content, (call,) = parse_tool_calls(truncated)
    assert content == "Asking."
    assert (call.name, call.arguments) == (MALFORMED_CALL_NAME, '{"name": "ask", "argum')


def test_a_good_call_after_a_malformed_one_is_kept():
    text = '<tool_call>{oops</tool_call><tool_call>{"name": "ask", "arguments": {"question": "1+1?"}}</tool_call>'
    _, calls = parse_tool_calls(text)
    assert [(c.id, c.name) for c in calls] == [("call_0", MALFORMED_CALL_NAME), ("call_1", "ask")]


def test_text_without_calls_comes_back_unchanged():
    text = "  6*8 = 48, so the answer is \\boxed{48}.\n"
    assert parse_tool_calls(text) == (text, ())


# What the router makes of parsed calls


def test_malformed_call_is_an_unknown_tool_for_the_router():
    _, (call,) = parse_tool_calls("<tool_call>{not json</tool_call>")
    question, event, message = read_question(call, TOOL, TOOL_ERRORS)
    assert question is None
    assert event == "unknown_tool"
    assert message.startswith("Error:")
    assert f"the only tool is '{TOOL.name}'" in message


def test_well_formed_call_gives_the_router_its_question():
    _, (call,) = parse_tool_calls(
        '<tool_call>{"name": "ask_math_assistant", "arguments": {"question": "  What is 6*8? "}}</tool_call>'
    )
    assert read_question(call, TOOL, TOOL_ERRORS) == ("What is 6*8?", None, None)


def test_an_unclosed_block_ends_at_the_next_one():
    text = '<tool_call>{"name": "a"}\n<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    _, calls = parse_tool_calls(text)
    assert [c.name for c in calls] == ["a", "b"]


def test_inline_tools_writes_tools_calls_and_results_as_hermes_text():
    tools = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": "What is 6*8?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "ask", "arguments": '{"question": "6*8"}'}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "48"},
    ]
    inlined = inline_tools(messages, tools, "Tools:\n{tools}")
    assert inlined[0] == {"role": "system", "content": f"Solve it.\n\nTools:\n{json.dumps(tools[0])}"}
    assert inlined[1] == messages[1]
    assert inlined[2] == {"role": "assistant", "content": '<tool_call>\n{"name": "ask", "arguments": {"question": "6*8"}}\n</tool_call>'}
    assert inlined[3] == {"role": "user", "content": "<tool_response>\n48\n</tool_response>"}
    # What the model writes back in that format parses into the same call.
    _, [call] = parse_tool_calls(inlined[2]["content"])
    assert (call.name, json.loads(call.arguments)) == ("ask", {"question": "6*8"})


def test_inline_tools_without_tools_keeps_the_history_readable():
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "48"}]
    assert inline_tools(messages, None, "unused {tools}") == [
        {"role": "user", "content": "hi"}, {"role": "user", "content": "<tool_response>\n48\n</tool_response>"}
    ]
