"""Hermes `<tool_call>` blocks parse into ToolCalls: reasoning skipped, payloads decoded leniently, broken blocks kept."""

import json

import pytest

from delegate.models.base import ToolCall
from delegate.models.hermes import (
    MALFORMED_CALL_NAME,
    decode_payload,
    inline_tools,
    malformed_call_detail,
    parse_tool_calls,
    strip_reasoning,
)

ASK = '{"name": "ask", "arguments": {"question": "What is 6*8?"}}'


def only_call(text: str) -> tuple[str, dict]:
    """(name, decoded arguments) of the one call in `text`."""
    _, (call,) = parse_tool_calls(text)
    return call.name, json.loads(call.arguments)


# Well-formed calls


def test_one_call_is_parsed_and_its_block_removed():
    content, calls = parse_tool_calls(f"I need a product first.\n<tool_call>\n{ASK}\n</tool_call>")
    assert content == "I need a product first."
    assert calls == (ToolCall(id="call_0", name="ask", arguments='{"question": "What is 6*8?"}'),)


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


def test_an_array_of_calls_in_one_block_is_several_calls_numbered_with_the_others():
    text = (
        '<tool_call>[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]</tool_call>'
        '<tool_call>{"name": "c"}</tool_call>'
    )
    _, calls = parse_tool_calls(text, id_prefix="p")
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("p_0", "a", '{"x": 1}'),
        ("p_1", "b", "{}"),
        ("p_2", "c", "{}"),
    ]


@pytest.mark.parametrize("separator", ["\n", " ", ",\n", ", "])
def test_objects_one_after_another_in_one_block_are_several_calls(separator):
    text = f'<tool_call>{{"name": "a"}}{separator}{{"name": "b", "arguments": {{"x": 1}}}}</tool_call>'
    _, calls = parse_tool_calls(text)
    assert [(c.name, c.arguments) for c in calls] == [("a", "{}"), ("b", '{"x": 1}')]


def test_a_broken_object_after_a_good_one_in_the_same_block_is_not_dropped():
    # Reading only the first object would lose a call silently: the block is reported instead.
    for block in ('{"name": "a"} {"name": "b", "argu', "{'name': 'a'} {'name': 'b', 'argu"):
        _, calls = parse_tool_calls(f"<tool_call>{block}</tool_call>")
        assert calls == (ToolCall(id="call_0", name="a", arguments=block),), block


def test_arguments_given_as_a_json_string_are_kept_as_json_text():
    text = '<tool_call>{"name": "ask", "arguments": "{\\"question\\": \\"6*8?\\"}"}</tool_call>'
    _, (call,) = parse_tool_calls(text)
    assert call.arguments == '{"question": "6*8?"}'


def test_arguments_that_are_a_string_but_not_an_object_are_kept_as_written_for_the_caller_to_refuse():
    _, (call,) = parse_tool_calls('<tool_call>{"name": "ask", "arguments": "What is 6*8?"}</tool_call>')
    assert (call.name, call.arguments) == ("ask", "What is 6*8?")
    _, (call,) = parse_tool_calls('<tool_call>{"name": "ask", "arguments": [1, 2]}</tool_call>')
    assert call.arguments == "[1, 2]"


def test_nested_braces_and_unicode_in_arguments_survive():
    arguments = {"question": "Solve {x | x > 2} for ½ of 48 € — 六 × 8 = ? 🙂", "hints": {"a": [{"b": "}"}, "{"]}}
    text = f"<tool_call>{json.dumps({'name': 'ask', 'arguments': arguments}, ensure_ascii=False)}</tool_call>"
    _, (call,) = parse_tool_calls(text)
    assert json.loads(call.arguments) == arguments
    assert "六" in call.arguments  # readable in the record, not \u escapes
    # The same payload written with \u escapes decodes to the same arguments.
    assert only_call(f"<tool_call>{json.dumps({'name': 'ask', 'arguments': arguments})}</tool_call>")[1] == arguments


def test_unclosed_block_at_the_end_is_still_read():
    # A generation cut by max_new_tokens can stop before </tool_call>.
    content, (call,) = parse_tool_calls(f"Asking.\n<tool_call>\n{ASK}\n")
    assert content == "Asking."
    assert (call.name, json.loads(call.arguments)) == ("ask", {"question": "What is 6*8?"})


def test_an_unclosed_block_ends_at_the_next_one():
    text = '<tool_call>{"name": "a"}\n<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    _, calls = parse_tool_calls(text)
    assert [c.name for c in calls] == ["a", "b"]


def test_text_without_calls_comes_back_unchanged():
    text = "  6*8 = 48, so the answer is \\boxed{48}.\n"
    assert parse_tool_calls(text) == (text, ())
    assert not parse_tool_calls(text).found


def test_found_says_whether_the_reply_had_a_block():
    assert parse_tool_calls(f"<tool_call>{ASK}</tool_call>").found
    assert parse_tool_calls("<tool_call>{oops</tool_call>").found
    assert not parse_tool_calls(f"<think><tool_call>{ASK}</tool_call></think>\\boxed{{48}}").found


# Lenient decoding: every reading below yields the same call


@pytest.mark.parametrize(
    "block",
    [
        ASK,
        f"```json\n{ASK}\n```",
        f"```\n{ASK}\n```",
        f"{ASK}</tool_ca",
        f"{ASK}\n</tool",
        f"{ASK}<",
        f"{ASK}}}",
        f"{ASK} I will wait for the answer.",
        f"{ASK}\n```",
        '{"name": "ask", "arguments": {"question": "What is 6*8?"}',
        '{"name": "ask", "arguments": {"question": "What is 6*8?"',
        '```json\n{"name": "ask", "arguments": {"question": "What is 6*8?"}\n```',
        "{'name': 'ask', 'arguments': {'question': 'What is 6*8?'}}",
        "{'name': 'ask', 'arguments': {'question': 'What is 6*8?'}",
        "{'name': \"ask\", 'arguments': {\"question\": 'What is 6*8?'}}</tool_c",
        '{"name": "ask", "arguments": "{\'question\': \'What is 6*8?\'}"}',
        '{"name": "ask", "parameters": {"question": "What is 6*8?"}}',
        f"[{ASK}]",
    ],
    ids=[
        "strict",
        "json-fence",
        "bare-fence",
        "cut-tag",
        "cut-tag-short",
        "cut-tag-one-char",
        "extra-brace",
        "trailing-prose",
        "trailing-fence",
        "missing-brace",
        "missing-two-braces",
        "fence-and-missing-brace",
        "python-quotes",
        "python-missing-brace",
        "mixed-quotes-cut-tag",
        "arguments-python-string",
        "parameters-key",
        "array-of-one",
    ],
)
def test_lenient_readings_give_the_same_call(block):
    for text in (f"<tool_call>{block}</tool_call>", f"<tool_call>\n{block}"):
        assert only_call(text) == ("ask", {"question": "What is 6*8?"}), text


def test_python_literals_become_json_values():
    name, arguments = only_call(
        "<tool_call>{'name': 'f', 'arguments': {'a': True, 'b': False, 'c': None, 'd': (1, 2)}}</tool_call>"
    )
    assert (name, arguments) == ("f", {"a": True, "b": False, "c": None, "d": [1, 2]})


def test_latex_backslashes_that_are_not_json_escapes_are_kept():
    # `\s` is not a JSON escape: strict JSON fails, the Python-literal reading keeps the backslash.
    name, arguments = only_call(
        '<tool_call>{"name": "ask", "arguments": {"question": "What is \\sqrt{16}?"}}</tool_call>'
    )
    assert (name, arguments) == ("ask", {"question": "What is \\sqrt{16}?"})


def test_decode_payload_raises_the_strict_json_error_and_never_evaluates_code(tmp_path):
    marker = tmp_path / "ran"
    for text in ("{not json", f"__import__('pathlib').Path({str(marker)!r}).touch()", "{'a': 1 + 1}", ""):
        with pytest.raises(json.JSONDecodeError) as raised:
            decode_payload(text)
        with pytest.raises(json.JSONDecodeError) as strict:
            json.loads(text)
        assert (raised.value.msg, raised.value.pos) == (strict.value.msg, strict.value.pos)
    assert not marker.exists()


# Reasoning is not a reply


def test_a_call_drafted_while_thinking_does_not_run():
    text = f"<think>Maybe <tool_call>{ASK}</tool_call>? No, I know it.</think>\n6*8 = 48, so \\boxed{{48}}."
    assert parse_tool_calls(text) == ("6*8 = 48, so \\boxed{48}.", ())


def test_a_call_after_a_think_span_runs_and_the_content_has_no_thinking():
    text = f"<think>I should delegate.</think>\nLet me ask.\n<tool_call>{ASK}</tool_call>"
    content, calls = parse_tool_calls(text)
    assert content == "Let me ask."
    assert [c.name for c in calls] == ["ask"]


def test_an_unclosed_think_swallows_the_rest_of_the_reply():
    text = f"Plan: <think>first <tool_call>{ASK}</tool_call> then \\boxed{{1}}"
    assert parse_tool_calls(text) == ("Plan:", ())
    assert parse_tool_calls(f"<think>{ASK}") == ("", ())


def test_a_closing_think_without_an_opening_one_ends_reasoning_begun_in_the_prompt():
    # Qwen3 and DeepSeek-R1 templates end the prompt with `<think>`: the reply holds only `</think>`.
    text = (
        f"draft: <tool_call>{ASK}</tool_call></think>Asking for real.<tool_call>{ASK.replace('6*8', '7*8')}</tool_call>"
    )
    content, (call,) = parse_tool_calls(text)
    assert content == "Asking for real."
    assert json.loads(call.arguments) == {"question": "What is 7*8?"}


def test_strip_reasoning_removes_every_span():
    assert strip_reasoning("a<think>1</think>b<think>2</think>c<think>3") == "abc"
    assert strip_reasoning("no thinking here") == "no thinking here"
    assert strip_reasoning("x</think>y<think>z</think>w") == "yw"


# Blocks that are not calls still become calls, so the model is told what was wrong


@pytest.mark.parametrize(
    "block, name",
    [
        ('{"name": "ask", "argum', "ask"),
        ('{"name": "ask", "arguments": {"question": "What is 6*8?}}', "ask"),
        ('{"name": "calculator", "arguments": {question: 6*8}}', "calculator"),
        ("{'name': 'ask', 'arguments': {'question': 'What's 6*8?'}}", "ask"),
        ('{"name": "ask", "arguments": __import__("os").getcwd()}', "ask"),
    ],
    ids=["cut-mid-key", "unterminated-string", "unquoted-keys", "bad-python-quote", "code"],
)
def test_an_undecodable_block_is_named_after_the_tool_it_names_and_keeps_its_text(block, name):
    content, calls = parse_tool_calls(f"Let me ask. <tool_call> {block} </tool_call>")
    assert content == "Let me ask."
    assert calls == (ToolCall(id="call_0", name=name, arguments=block),)
    # Its arguments are the block itself, so a JSON reader reports the real error.
    with pytest.raises(ValueError):
        json.loads(calls[0].arguments)


@pytest.mark.parametrize(
    "block, detail",
    [
        ("", "empty"),
        ("ask_math_assistant(question='What is 6*8?')", "not valid JSON: Expecting value"),
        ("I want to ask what 6*8 is.", "not valid JSON: Expecting value"),
        ("{oops", "not valid JSON: Expecting property name enclosed in double quotes"),
        ('"ask"', 'a JSON string, not an object with a "name"'),
        ("42", 'a JSON number, not an object with a "name"'),
        ("null", 'a JSON null, not an object with a "name"'),
        ("[]", 'a JSON array, not an object with a "name"'),
        ('["ask"]', 'item 0 of the array: a JSON string, not an object with a "name"'),
        (f'[{ASK}, {{"arguments": {{}}}}]', 'item 1 of the array: no "name"'),
        ('{"arguments": {"question": "What is 6*8?"}}', 'no "name"'),
        ('{"name": 3, "arguments": {}}', '"name" is a JSON number, not a string'),
        ('{"name": null}', '"name" is a JSON null, not a string'),
        ('{"name": ["ask"]}', '"name" is a JSON array, not a string'),
        ('{"name": {"name": "ask"}}', '"name" is a JSON object, not a string'),
        ("{'name': 'ask', 'arguments': {'question': {1, 2}}}", "arguments that JSON cannot represent"),
    ],
    ids=[
        "empty",
        "call-syntax",
        "prose",
        "broken-json",
        "string",
        "number",
        "null",
        "empty-array",
        "array-of-string",
        "array-item-without-name",
        "no-name",
        "name-number",
        "name-null",
        "name-array",
        "name-object",
        "python-set",
    ],
)
def test_a_block_naming_no_tool_is_a_malformed_call_that_says_why(block, detail):
    content, calls = parse_tool_calls(f"Asking.<tool_call>{block}</tool_call>")
    assert content == "Asking."
    assert calls == (ToolCall(id="call_0", name=MALFORMED_CALL_NAME, arguments=block),)
    assert malformed_call_detail(calls[0].arguments) == detail


def test_a_tag_with_nothing_after_it_is_an_empty_malformed_call():
    content, (call,) = parse_tool_calls("Let me ask.\n<tool_call>")
    assert (content, call.name, malformed_call_detail(call.arguments)) == ("Let me ask.", MALFORMED_CALL_NAME, "empty")


def test_a_good_call_after_a_malformed_one_is_kept():
    text = '<tool_call>{oops</tool_call><tool_call>{"name": "ask", "arguments": {"question": "1+1?"}}</tool_call>'
    _, calls = parse_tool_calls(text)
    assert [(c.id, c.name) for c in calls] == [("call_0", MALFORMED_CALL_NAME), ("call_1", "ask")]


def test_a_well_formed_block_has_no_malformed_detail():
    assert malformed_call_detail(ASK) == ""


# Writing history for templates that ignore tools


def test_inline_tools_writes_tools_calls_and_results_as_hermes_text():
    tools = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": "What is 6*8?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "ask", "arguments": '{"question": "6*8"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "48"},
    ]
    inlined = inline_tools(messages, tools, "Tools:\n{tools}")
    assert inlined[0] == {"role": "system", "content": f"Solve it.\n\nTools:\n{json.dumps(tools[0])}"}
    assert inlined[1] == messages[1]
    assert inlined[2] == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "ask", "arguments": {"question": "6*8"}}\n</tool_call>',
    }
    assert inlined[3] == {"role": "user", "content": "<tool_response>\n48\n</tool_response>"}
    # What the model writes back in that format parses into the same call.
    _, [call] = parse_tool_calls(inlined[2]["content"])
    assert (call.name, json.loads(call.arguments)) == ("ask", {"question": "6*8"})


def test_inline_tools_without_tools_keeps_the_history_readable():
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "48"}]
    assert inline_tools(messages, None, "unused {tools}") == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "<tool_response>\n48\n</tool_response>"},
    ]
