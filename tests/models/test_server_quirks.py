"""What real servers send, through the real `openai` client and the scripted server over loopback: each kind of
malformed or missing field is normalised once, at the backend (`delegate.models.backends.openai_compatible.read_reply`)."""

import asyncio
import json

import pytest

from delegate.compose import compose_config
from delegate.errors import ConfigError
from delegate.models.backends.openai_compatible import MalformedResponse, OpenAICompatibleModel, OpenAIModelConfig
from delegate.models.base import TOOL_CALL_ID_REPLACED, TOOL_CALL_IN_CONTENT, USAGE_MISSING, ChatRequest
from delegate.models.cache import CachedModel, ResponseCache
from delegate.models.hermes import MALFORMED_CALL_NAME, malformed_call_detail
from delegate.records import ModelPrices, RoleUsage
from delegate.testing.scripted_server import Reply

HELLO = [{"role": "user", "content": "What is 6*8?"}]
TOOLS = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object", "properties": {}}}}]
STREAMED = [False, True]


def make_model(base_url: str, **overrides) -> OpenAICompatibleModel:
    """A model that asks once: what a reply is read as, not whether it is asked again (tests/models/test_retry.py)."""
    defaults = {"name": "scripted", "model": "scripted", "base_url": base_url, "api_key_env": None, "max_retries": 0}
    cfg = OpenAIModelConfig(**defaults | overrides)
    return OpenAICompatibleModel(cfg, role="llm")


def chat(model, messages=HELLO, tools=TOOLS, streamed: bool = False):
    """One call (streamed through a sink when asked); the model is closed afterwards."""
    sink: list[str] = []

    async def call():
        try:
            return await model.chat(ChatRequest(messages, tools), sink.append if streamed else None)
        finally:
            await model.aclose()

    response = asyncio.run(call())
    if streamed:
        assert "".join(sink) == response.text or TOOL_CALL_IN_CONTENT in response.events
    return response


def message(*calls, content=None) -> dict:
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def call(arguments, name="ask", call_id="call_a", **fields) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}} | fields


def chunk(delta: dict | None = None, finish_reason=None) -> dict:
    return {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]}


def tool_delta(**piece) -> dict:
    return chunk({"tool_calls": [piece]})


# Kind 3: tool-call fields


@pytest.mark.parametrize(
    ("sent", "arguments"),
    [
        ({"question": "What is 6*8?"}, '{"question": "What is 6*8?"}'),  # an object (Ollama and others)
        ('{"question": "What is 6*8?"}', '{"question": "What is 6*8?"}'),  # the standard: JSON text
        (json.dumps('{"question": "x"}'), '{"question": "x"}'),  # JSON text encoded twice
        (42, "42"),
        (None, ""),
        ("", ""),
        ([1, 2], "[1, 2]"),
        (True, "true"),
        ("{not json", "{not json"),  # passed on as written, for the caller to answer with the JSON error
    ],
    ids=["object", "text", "double-encoded", "number", "null", "empty", "array", "boolean", "invalid-json"],
)
def test_arguments_of_any_json_type_become_json_text(scripted_server, sent, arguments):
    scripted_server.push(Reply(raw_message=message(call(sent))))
    response = chat(make_model(scripted_server.base_url))
    [tool_call] = response.tool_calls
    assert (tool_call.name, tool_call.arguments) == ("ask", arguments)
    # What goes back in the conversation is what a server accepts: a string.
    assert response.as_message()["tool_calls"][0]["function"]["arguments"] == arguments


def test_arguments_missing_from_the_function_are_empty(scripted_server):
    scripted_server.push(Reply(raw_message=message({"id": "c", "type": "function", "function": {"name": "ask"}})))
    [tool_call] = chat(make_model(scripted_server.base_url)).tool_calls
    assert (tool_call.name, tool_call.arguments) == ("ask", "")


@pytest.mark.parametrize(
    "shape",
    [
        {"id": "c", "function": {"name": "ask", "arguments": "{}"}},  # no type
        {"id": "c", "type": None, "function": {"name": "ask", "arguments": "{}"}},
        {"id": "c", "type": "tool", "function": {"name": "ask", "arguments": "{}"}},
        {"id": "c", "name": "ask", "arguments": {}},  # flat, no function object
    ],
    ids=["no-type", "null-type", "other-type", "flat"],
)
def test_a_call_is_a_function_call_whatever_its_type_says(scripted_server, shape):
    scripted_server.push(Reply(raw_message=message(shape)))
    [tool_call] = chat(make_model(scripted_server.base_url)).tool_calls
    assert (tool_call.id, tool_call.name, tool_call.arguments) == ("c", "ask", "{}")


@pytest.mark.parametrize(
    ("shape", "detail"),
    [
        ({"id": "c", "type": "function", "function": {"arguments": "{}"}}, 'no "name"'),
        (
            {"id": "c", "type": "function", "function": {"name": None, "arguments": "{}"}},
            '"name" is a JSON null, not a string',
        ),
        (
            {"id": "c", "type": "function", "function": {"name": 7, "arguments": "{}"}},
            '"name" is a JSON number, not a string',
        ),
        ("ask", 'a JSON string, not an object with a "name"'),
    ],
    ids=["no-name", "null-name", "number-name", "string-call"],
)
def test_a_call_without_a_usable_name_is_kept_as_a_malformed_call(scripted_server, shape, detail):
    scripted_server.push(Reply(raw_message=message(shape)))
    [tool_call] = chat(make_model(scripted_server.base_url)).tool_calls
    assert tool_call.name == MALFORMED_CALL_NAME
    # The router answers it with what is wrong, read from its arguments.
    assert malformed_call_detail(tool_call.arguments) == detail


def test_tool_calls_sent_as_one_object_instead_of_a_list(scripted_server):
    scripted_server.push(Reply(raw_message={"role": "assistant", "content": None, "tool_calls": call("{}")}))
    [tool_call] = chat(make_model(scripted_server.base_url)).tool_calls
    assert (tool_call.id, tool_call.name) == ("call_a", "ask")


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ([{"type": "text", "text": "So "}, {"type": "text", "text": "\\boxed{48}"}], "So \\boxed{48}"),
        ("plain", "plain"),
        ("", ""),
    ],
    ids=["parts", "string", "empty"],
)
def test_content_of_any_shape_becomes_text(scripted_server, content, text):
    scripted_server.push(Reply(raw_message={"role": "assistant", "content": content}))
    assert chat(make_model(scripted_server.base_url), tools=None).text == text


# Kind 3: tool-call ids


def test_calls_without_ids_get_unique_local_ids_and_keep_none_as_the_original(scripted_server):
    no_id = {"type": "function", "function": {"name": "ask", "arguments": "{}"}}
    scripted_server.push(Reply(raw_message=message(no_id, no_id | {"id": None}, no_id | {"id": ""})))
    response = chat(make_model(scripted_server.base_url))
    ids = [c.id for c in response.tool_calls]
    assert len(set(ids)) == 3 and all(ids)
    assert [c.original_id for c in response.tool_calls] == [None, None, ""]
    assert response.events == (TOOL_CALL_ID_REPLACED,) * 3


def test_a_repeated_id_is_replaced_and_the_original_recorded(scripted_server):
    scripted_server.push(
        Reply(raw_message=message(call("{}", call_id="call_0"), call("{}", call_id="call_0"), call("{}", call_id=3)))
    )
    response = chat(make_model(scripted_server.base_url))
    first, second, third = response.tool_calls
    assert first.id == first.original_id == "call_0"
    assert second.id not in {"call_0", third.id} and second.original_id == "call_0"
    # A number is an id too, as text.
    assert third.id == third.original_id == "3"
    assert response.events == (TOOL_CALL_ID_REPLACED,)


def test_an_id_already_used_in_the_conversation_is_replaced(scripted_server):
    """Servers that number calls per turn (call_0 every turn) would pair two turns' tool messages with one id."""
    earlier = [
        *HELLO,
        {"role": "assistant", "content": "", "tool_calls": [call("{}", call_id="call_0")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "48"},
    ]
    scripted_server.push(Reply(raw_message=message(call("{}", call_id="call_0"))))
    [tool_call] = chat(make_model(scripted_server.base_url), earlier).tool_calls
    assert tool_call.id != "call_0" and tool_call.original_id == "call_0"


def test_local_ids_are_the_same_for_the_same_conversation(scripted_server):
    """A replayed conversation (the cache's keys include the ids sent back) must get the same ids again."""
    no_id = {"type": "function", "function": {"name": "ask", "arguments": "{}"}}
    scripted_server.default = Reply(raw_message=message(no_id, no_id))
    first = chat(make_model(scripted_server.base_url))
    second = chat(make_model(scripted_server.base_url))
    assert first.tool_calls == second.tool_calls


# Kind 3: streamed tool-call deltas


def streamed_calls(scripted_server, *chunks) -> list[tuple[str | None, str, str]]:
    scripted_server.push(Reply(raw_chunks=[*chunks, chunk(finish_reason="tool_calls")]))
    response = chat(make_model(scripted_server.base_url), streamed=True)
    return [(c.original_id, c.name, c.arguments) for c in response.tool_calls]


def test_streamed_deltas_with_indexes_are_put_together(scripted_server):
    assert streamed_calls(
        scripted_server,
        tool_delta(index=0, id="a", type="function", function={"name": "ask", "arguments": ""}),
        tool_delta(index=1, id="b", type="function", function={"name": "ask", "arguments": '{"q":'}),
        tool_delta(index=0, function={"arguments": '{"q": 1}'}),
        tool_delta(index=1, function={"arguments": " 2}"}),
    ) == [("a", "ask", '{"q": 1}'), ("b", "ask", '{"q": 2}')]


def test_streamed_deltas_without_index_are_told_apart_by_id(scripted_server):
    assert streamed_calls(
        scripted_server,
        tool_delta(id="a", function={"name": "ask", "arguments": '{"q":'}),
        tool_delta(id="b", function={"name": "ask", "arguments": '{"q":'}),
        tool_delta(id="a", function={"arguments": " 1}"}),
        tool_delta(id="b", function={"arguments": " 2}"}),
    ) == [("a", "ask", '{"q": 1}'), ("b", "ask", '{"q": 2}')]


def test_streamed_deltas_with_one_index_for_two_calls_are_told_apart_by_id(scripted_server):
    assert streamed_calls(
        scripted_server,
        tool_delta(index=0, id="a", function={"name": "ask", "arguments": '{"q": 1}'}),
        tool_delta(index=0, id="b", function={"name": "ask", "arguments": '{"q": 2}'}),
    ) == [("a", "ask", '{"q": 1}'), ("b", "ask", '{"q": 2}')]


def test_streamed_deltas_without_index_or_id_start_a_call_at_each_new_name(scripted_server):
    got = streamed_calls(
        scripted_server,
        tool_delta(function={"name": "ask", "arguments": '{"q": '}),
        tool_delta(function={"arguments": "1}"}),
        tool_delta(function={"name": "ask", "arguments": '{"q": 2}'}),  # the same tool again, after complete arguments
        tool_delta(index=0, function={"name": "other", "arguments": "{}"}),  # one index reused for another tool
    )
    assert [(name, arguments) for _, name, arguments in got] == [
        ("ask", '{"q": 1}'),
        ("ask", '{"q": 2}'),
        ("other", "{}"),
    ]


def test_a_name_repeated_in_every_delta_of_one_call_is_one_call(scripted_server):
    assert streamed_calls(
        scripted_server,
        tool_delta(index=0, id="a", function={"name": "ask", "arguments": '{"q"'}),
        tool_delta(index=0, id="a", function={"name": "ask", "arguments": ": 1}"}),
    ) == [("a", "ask", '{"q": 1}')]


def test_streamed_arguments_sent_as_one_object(scripted_server):
    assert streamed_calls(
        scripted_server,
        tool_delta(index=0, id="a", function={"name": "ask", "arguments": {"q": 1}}),
    ) == [("a", "ask", '{"q": 1}')]


def test_streamed_calls_without_ids_get_local_ids(scripted_server):
    scripted_server.push(
        Reply(
            raw_chunks=[
                tool_delta(index=0, function={"name": "ask", "arguments": "{}"}),
                tool_delta(index=1, function={"name": "ask", "arguments": "{}"}),
                chunk(finish_reason="tool_calls"),
            ]
        )
    )
    response = chat(make_model(scripted_server.base_url), streamed=True)
    assert len({c.id for c in response.tool_calls}) == 2 and all(c.id for c in response.tool_calls)
    assert response.events == (TOOL_CALL_ID_REPLACED,) * 2


# Kind 3: tool calls left in the content


HERMES_REPLY = 'Let me ask.\n<tool_call>\n{"name": "ask", "arguments": {"question": "What is 6*8?"}}\n</tool_call>'


@pytest.mark.parametrize("streamed", STREAMED, ids=["plain", "streamed"])
def test_tool_call_text_in_content_is_read_as_a_call(scripted_server, streamed):
    scripted_server.push(Reply(content=HERMES_REPLY))
    response = chat(make_model(scripted_server.base_url), streamed=streamed)
    [tool_call] = response.tool_calls
    assert (tool_call.name, json.loads(tool_call.arguments)) == ("ask", {"question": "What is 6*8?"})
    assert tool_call.id and tool_call.original_id is None
    assert response.text == "Let me ask."
    # One event for the reply; the calls it held have no server ids to replace.
    assert response.events == (TOOL_CALL_IN_CONTENT,)


def test_tool_call_text_is_left_alone_when_no_tools_were_offered(scripted_server):
    scripted_server.push(Reply(content=HERMES_REPLY))
    response = chat(make_model(scripted_server.base_url), tools=None)
    assert (response.text, response.tool_calls, response.events) == (HERMES_REPLY, (), ())


def test_tool_call_text_is_left_alone_beside_native_calls(scripted_server):
    scripted_server.push(Reply(content=HERMES_REPLY, tool_calls=[{"name": "ask", "arguments": "{}", "id": "n"}]))
    response = chat(make_model(scripted_server.base_url))
    assert [c.id for c in response.tool_calls] == ["n"]
    assert response.text == HERMES_REPLY and response.events == ()


def test_a_tool_call_only_drafted_in_reasoning_is_not_a_call(scripted_server):
    text = '<think>maybe <tool_call>{"name": "ask", "arguments": {}}</tool_call></think>The answer is 48.'
    scripted_server.push(Reply(content=text))
    response = chat(make_model(scripted_server.base_url))
    assert (response.tool_calls, response.text, response.events) == ((), text, ())


# Kind 3: replies that are not completions


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"id": "x", "choices": []}, "no choices"),
        ({"id": "x", "choices": None}, "no choices"),
        ({"id": "x"}, "no choices"),
        ({"id": "x", "choices": ["text"]}, "no choices"),
        (["not", "an", "object"], "a JSON list, not a chat completion object"),
        ("a string", "is text"),
        ({"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]}, "a choice without a message"),
        (
            {"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]},
            "neither content",
        ),
        ({"choices": [{"message": {"role": "assistant"}, "finish_reason": "stop"}]}, "neither content"),
        ({"choices": [{"message": {"content": None, "tool_calls": []}, "finish_reason": None}]}, "neither content"),
    ],
    ids=[
        "empty-choices",
        "null-choices",
        "no-choices",
        "string-choice",
        "array",
        "string",
        "no-message",
        "null-content",
        "no-content",
        "null-content-empty-calls",
    ],
)
def test_a_reply_that_is_not_a_completion_fails_the_call_with_one_clear_error(scripted_server, body, error):
    scripted_server.push(Reply(raw_body=body))
    with pytest.raises(MalformedResponse, match=error):
        chat(make_model(scripted_server.base_url))


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "is text"),
        ('{"id": "chatcmpl-1", "choices": [{"message": {"content": "4', "application/json", "not valid JSON"),
        ('{"id": "chatcmpl-1", "choices": [{"message": {"content": "4', "text/plain", "is text"),
    ],
    ids=["html", "truncated-json", "truncated-text"],
)
@pytest.mark.parametrize("streamed", STREAMED, ids=["plain", "streamed"])
def test_a_body_that_is_not_json_fails_the_call_without_quoting_it(
    scripted_server, body, content_type, error, streamed
):
    # Streamed, the body holds no events: the call is asked again without streaming, and gets the same body.
    scripted_server.default = Reply(raw_text=body, content_type=content_type)
    with pytest.raises(MalformedResponse, match=error) as caught:
        chat(make_model(scripted_server.base_url), streamed=streamed)
    assert "502" not in str(caught.value) and "chatcmpl" not in str(caught.value)


def test_a_streamed_chunk_that_is_not_json_fails_the_call(scripted_server):
    cut = 'data: {"choices": [{"delta": {"content": "4\n\n'  # an event cut short, then the stream ends
    scripted_server.push(Reply(raw_text=cut, content_type="text/event-stream"))
    with pytest.raises(MalformedResponse, match="streamed chunk"):
        chat(make_model(scripted_server.base_url), streamed=True)


def test_a_stream_with_neither_content_nor_tool_calls_fails_the_call(scripted_server):
    scripted_server.push(Reply(raw_chunks=[chunk({"role": "assistant", "content": None}), chunk({}, "stop")]))
    with pytest.raises(MalformedResponse, match="neither content"):
        chat(make_model(scripted_server.base_url), streamed=True)


@pytest.mark.parametrize("finish_reason", ["length", "content_filter"])
@pytest.mark.parametrize("streamed", STREAMED, ids=["plain", "streamed"])
def test_no_content_is_an_empty_reply_when_the_finish_reason_says_why(scripted_server, finish_reason, streamed):
    """A reasoning model that spent its whole output bound thinking, or a filtered reply: empty, not malformed."""
    if streamed:
        scripted_server.push(Reply(raw_chunks=[chunk({"role": "assistant"}), chunk({}, finish_reason)]))
    else:
        scripted_server.push(Reply(raw_message={"role": "assistant", "content": None}, finish_reason=finish_reason))
    response = chat(make_model(scripted_server.base_url), streamed=streamed)
    assert (response.text, response.tool_calls, response.finish_reason) == ("", (), finish_reason)


# Kind 4: token counts


@pytest.mark.parametrize(
    "usage",
    [
        "omit",
        None,
        {},
        {"total_tokens": 15},
        {"prompt_tokens": 10},
        {"prompt_tokens": None, "completion_tokens": None},
        {"prompt_tokens": "10", "completion_tokens": "5"},
        {"prompt_tokens": -1, "completion_tokens": 5},
        {"prompt_tokens": 0, "completion_tokens": 0},
        "not an object",
    ],
    ids=[
        "omitted",
        "null",
        "empty",
        "total-only",
        "prompt-only",
        "null-counts",
        "strings",
        "negative",
        "zeros",
        "string",
    ],
)
@pytest.mark.parametrize("streamed", STREAMED, ids=["plain", "streamed"])
def test_missing_or_unusable_usage_is_unknown_not_zero(scripted_server, usage, streamed):
    scripted_server.push(Reply(content="\\boxed{48}", usage=usage))
    response = chat(make_model(scripted_server.base_url), tools=None, streamed=streamed)
    assert response.text == "\\boxed{48}"
    assert (response.prompt_tokens, response.completion_tokens) == (None, None)
    assert response.usage_missing and response.events == (USAGE_MISSING,)


def test_a_stream_that_ignores_include_usage_has_usage_missing(scripted_server):
    # The scripted server, like such servers, sends no usage chunk although the request asked for one.
    scripted_server.push(Reply(content="\\boxed{48}", usage="omit"))
    response = chat(make_model(scripted_server.base_url), tools=None, streamed=True)
    assert scripted_server.requests[0]["stream_options"] == {"include_usage": True}
    assert response.usage_missing


@pytest.mark.parametrize("streamed", STREAMED, ids=["plain", "streamed"])
def test_reported_usage_comes_back_with_reasoning_and_cached_tokens(scripted_server, streamed):
    scripted_server.push(
        Reply(
            content="48",
            prompt_tokens=2006,
            completion_tokens=300,
            prompt_tokens_details={"cached_tokens": 1920, "audio_tokens": 0},
            completion_tokens_details={"reasoning_tokens": 256, "audio_tokens": 0},
        )
    )
    response = chat(make_model(scripted_server.base_url), tools=None, streamed=streamed)
    assert (response.prompt_tokens, response.completion_tokens) == (2006, 300)
    assert (response.reasoning_tokens, response.provider_cached_prompt_tokens) == (256, 1920)
    assert not response.usage_missing and response.events == ()


@pytest.mark.parametrize(
    ("prompt_details", "completion_details"),
    [(None, None), ({"cached_tokens": None}, {"reasoning_tokens": "many"}), ("x", [])],
    ids=["absent", "unusable", "not-objects"],
)
def test_details_a_server_does_not_give_are_unknown(scripted_server, prompt_details, completion_details):
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 5,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": completion_details,
    }
    scripted_server.push(Reply(content="48", usage=usage))
    response = chat(make_model(scripted_server.base_url), tools=None)
    assert (response.prompt_tokens, response.completion_tokens) == (20, 5)
    assert (response.reasoning_tokens, response.provider_cached_prompt_tokens) == (None, None)


def test_a_call_without_usage_counts_as_a_call_but_adds_no_tokens():
    usage = RoleUsage()
    usage.add(
        chat_response(prompt_tokens=100, completion_tokens=10, provider_cached_prompt_tokens=64, reasoning_tokens=4)
    )
    usage.add(chat_response(prompt_tokens=None, completion_tokens=None, latency_s=2.0))
    assert (usage.calls, usage.usage_missing_calls, usage.latency_s) == (2, 1, 3.0)
    assert (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.reasoning_tokens,
        usage.provider_cached_prompt_tokens,
    ) == (100, 10, 4, 64)
    assert usage.cost_usd(ModelPrices(input_usd_per_1m=1.0, output_usd_per_1m=1.0)) == pytest.approx(110 / 1e6)


def test_a_replay_of_a_reply_without_usage_still_has_usage_missing(scripted_server, tmp_path):
    scripted_server.push(Reply(content="\\boxed{48}", usage="omit"))
    cache = ResponseCache(tmp_path / "responses.sqlite")
    cfg = OpenAIModelConfig(name="s", model="s", base_url=scripted_server.base_url, api_key_env=None)
    model = CachedModel(OpenAICompatibleModel(cfg, "llm"), cache, cfg)

    async def twice():
        try:
            return [await model.chat(ChatRequest(HELLO)), await model.chat(ChatRequest(HELLO))]
        finally:
            await model.aclose()

    made, replayed = asyncio.run(twice())
    cache.close()
    assert len(scripted_server.requests) == 1 and replayed.cache_hit
    assert made.usage_missing and replayed.usage_missing
    assert replayed.events == made.events == (USAGE_MISSING,)


def chat_response(latency_s: float = 1.0, **fields):
    from delegate.models.base import ChatResponse

    return ChatResponse(text="", latency_s=latency_s, **fields)


# Kind 5: reasoning models' parameters and prices


def test_max_completion_tokens_and_no_temperature_for_a_reasoning_model(scripted_server):
    scripted_server.push(Reply(content="48"))
    chat(
        make_model(
            scripted_server.base_url, max_tokens=4096, max_tokens_param="max_completion_tokens", temperature=None
        )
    )
    request = scripted_server.requests[0]
    assert request["max_completion_tokens"] == 4096
    assert "max_tokens" not in request and "temperature" not in request


def test_the_defaults_send_max_tokens_and_temperature(scripted_server):
    scripted_server.push(Reply(content="48"))
    chat(make_model(scripted_server.base_url, max_tokens=77))
    request = scripted_server.requests[0]
    assert (request["max_tokens"], request["temperature"]) == (77, 0.0)
    assert "max_completion_tokens" not in request


# Error bodies as OpenAI and vLLM send them; each carries a fake secret that must not reach the one-line error.
SECRET = "sentinel-SECRET-in-the-echoed-request"
OPENAI_MAX_TOKENS = {
    "message": f"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead. ({SECRET})",
    "type": "invalid_request_error",
    "param": "max_tokens",
    "code": "unsupported_parameter",
}
OPENAI_TEMPERATURE = {
    "message": f"Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported. {SECRET}",
    "type": "invalid_request_error",
    "param": "temperature",
    "code": "unsupported_value",
}
VLLM_EXTRA_FIELD = {
    "object": "error",
    "type": "BadRequestError",
    "code": 400,
    "message": f"[{{'type': 'extra_forbidden', 'loc': ('body', 'max_completion_tokens'), 'msg': 'Extra inputs are not permitted', 'input': '{SECRET}'}}]",
}


@pytest.mark.parametrize(
    ("overrides", "error", "status", "line"),
    [
        (
            {},
            OPENAI_MAX_TOKENS,
            400,
            "llm.max_tokens_param=max_tokens: the server refused 'max_tokens' for model gpt-5-mini (OpenAI's reasoning "
            "models, o-series and gpt-5, take max_completion_tokens); set llm.max_tokens_param=max_completion_tokens",
        ),
        (
            {"max_tokens_param": "max_completion_tokens"},
            OPENAI_TEMPERATURE,
            400,
            "llm.temperature=0.0: the server refused 'temperature' for model gpt-5-mini (reasoning models take only their "
            "default); set llm.temperature=null to leave it out",
        ),
        (
            {"max_tokens_param": "max_completion_tokens", "temperature": None},
            VLLM_EXTRA_FIELD,
            400,
            "llm.max_tokens_param=max_completion_tokens: the server refused 'max_completion_tokens' for model gpt-5-mini "
            "(OpenAI's reasoning models, o-series and gpt-5, take max_completion_tokens); set llm.max_tokens_param=max_tokens",
        ),
        (
            {},
            {"message": f"Unrecognized request argument supplied: max_tokens {SECRET}"},
            422,
            "set llm.max_tokens_param=max_completion_tokens",
        ),
        (
            {},
            {"message": SECRET, "param": "max_tokens", "code": "unsupported_parameter"},
            400,
            "set llm.max_tokens_param=max_completion_tokens",
        ),
    ],
    ids=["openai-max-tokens", "openai-temperature", "vllm-extra-field", "422-unrecognized", "code-and-param-only"],
)
def test_a_refused_parameter_is_one_line_naming_the_setting_and_the_fix(
    scripted_server, overrides, error, status, line
):
    # OpenAI wraps the error in {"error": ...}; vLLM sends it bare.
    scripted_server.push(Reply(status=status, raw_body=error if "object" in error else {"error": error}))
    scripted_server.set_responder(lambda body: Reply(status=status, content="unexpected second call"))
    model = make_model(scripted_server.base_url, model="gpt-5-mini", **overrides)
    with pytest.raises(ConfigError) as caught:
        chat(model)
    message = str(caught.value)
    assert line in message and "\n" not in message
    assert SECRET not in message and "Unsupported" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(scripted_server.requests) == 1  # a refusal is not retried


def test_a_400_about_a_value_is_not_taken_for_a_refused_setting(scripted_server):
    """vLLM names 'max_tokens' when a conversation outgrows the context: that problem fails, the job goes on."""
    import openai

    too_long = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens ('max_tokens' is too large)."
    scripted_server.push(Reply(status=400, content=too_long))
    with pytest.raises(openai.BadRequestError):
        chat(make_model(scripted_server.base_url))


@pytest.mark.parametrize(
    ("preset", "prices", "reasoning"),
    [
        ("gpt-4o", (2.50, 1.25, 10.00), False),
        ("gpt-4o-mini", (0.15, 0.075, 0.60), False),
        ("gpt-4.1-mini", (0.40, 0.10, 1.60), False),
        ("gpt-5-mini", (0.25, 0.025, 2.00), True),
    ],
)
def test_presets_carry_todays_prices_and_reasoning_settings(preset, prices, reasoning):
    llm = compose_config([f"llm={preset}"]).llm
    assert (llm.model, llm.name) == (preset, preset)
    assert (llm.price_input_usd_per_1m, llm.price_cached_input_usd_per_1m, llm.price_output_usd_per_1m) == prices
    assert (llm.max_tokens_param == "max_completion_tokens") is reasoning
    assert (llm.temperature is None) is reasoning


def test_cached_input_is_priced_at_its_own_rate():
    usage = RoleUsage()
    usage.add(
        chat_response(
            prompt_tokens=2000, completion_tokens=300, provider_cached_prompt_tokens=1500, reasoning_tokens=200
        )
    )
    usage.add(
        chat_response(prompt_tokens=1000, completion_tokens=100, provider_cached_prompt_tokens=1000, cache_hit=True)
    )
    gpt_5_mini = ModelPrices(input_usd_per_1m=0.25, cached_input_usd_per_1m=0.025, output_usd_per_1m=2.00)
    assert usage.cost_usd(gpt_5_mini) == pytest.approx((500 * 0.25 + 2500 * 0.025 + 400 * 2.00) / 1e6)
    assert usage.cache_saved_usd(gpt_5_mini) == pytest.approx((1000 * 0.025 + 100 * 2.00) / 1e6)
    # No cached-input price: cached input costs what other input costs.
    assert usage.cost_usd(ModelPrices(input_usd_per_1m=0.25, output_usd_per_1m=2.00)) == pytest.approx(
        (3000 * 0.25 + 400 * 2.00) / 1e6
    )


def test_cached_tokens_above_the_prompt_are_capped_at_the_prompt(scripted_server):
    scripted_server.push(Reply(content="48", prompt_tokens=100, prompt_tokens_details={"cached_tokens": 500}))
    assert chat(make_model(scripted_server.base_url), tools=None).provider_cached_prompt_tokens == 100
