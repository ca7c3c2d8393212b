"""The response cache: SQLite round trip, what the key covers, and CachedModel in front of the scripted server."""

import asyncio
import hashlib
import json
from dataclasses import asdict

import pytest
from omegaconf import OmegaConf

from delegate.errors import ModelCallError
from delegate.models import build_model
from delegate.models.backends.openai_compatible import OpenAIModelConfig
from delegate.models.base import ChatRequest, ChatResponse, GenerateConfig, ToolCall, effective_config
from delegate.models.cache import NOT_IN_KEY, CachedModel, ResponseCache, is_cacheable, model_identity, request_key
from delegate.models.metered import MeteredModel
from delegate.records import ModelPrices, RoleUsage
from delegate.testing.scripted_server import Reply

HELLO = [{"role": "user", "content": "What is 6*7?"}]
TOOLS = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object", "properties": {}}}}]


def scripted_cfg(base_url: str, **overrides) -> OpenAIModelConfig:
    return OpenAIModelConfig(
        **{"name": "scripted", "model": "scripted", "base_url": base_url, "api_key_env": None} | overrides
    )


def cached_model(base_url: str, cache: ResponseCache, **overrides):
    """What a job builds for a role: build_model over the schema-typed config, behind `cache`."""
    return build_model(OmegaConf.structured(scripted_cfg(base_url, **overrides)), "llm", cache)


def requests_in_turn(model, *requests: ChatRequest) -> list[ChatResponse]:
    """Each request in order on one event loop; the model is closed afterwards."""

    async def go():
        try:
            return [await model.chat(request) for request in requests]
        finally:
            await model.aclose()

    return asyncio.run(go())


def chat_in_turn(model, *calls):
    """Each (messages, tools) call in order on one event loop; the model is closed afterwards."""
    return requests_in_turn(model, *(ChatRequest(messages, tools) for messages, tools in calls))


@pytest.fixture
def cache(tmp_path):
    opened = ResponseCache(tmp_path / "cache" / "responses.sqlite")
    yield opened
    opened.close()


# ResponseCache


def test_a_stored_response_survives_a_reopen_of_the_file(tmp_path):
    path = tmp_path / "nested" / "dir" / "responses.sqlite"
    response = ChatResponse(
        text="Let me ask.\n\u00e9t\u00e9 \\boxed{42}",
        prompt_tokens=123,
        completion_tokens=45,
        latency_s=1.625,
        tool_calls=(
            ToolCall(id="call_1", name="ask", arguments='{"q": "2+2"}'),
            ToolCall(id="call_2", name="ask", arguments="{bad"),
        ),
        finish_reason="tool_calls",
    )
    writer = ResponseCache(path)
    writer.put("k1", response)
    writer.close()

    reader = ResponseCache(path)
    try:
        stored = reader.get("k1")
        assert stored == response
        assert isinstance(stored.tool_calls, tuple) and all(isinstance(c, ToolCall) for c in stored.tool_calls)
        # Only CachedModel marks a reply as served from the cache.
        assert stored.cache_hit is False
        assert reader.get("k2") is None
    finally:
        reader.close()


def test_what_a_server_left_out_or_added_survives_the_cache(cache):
    """Missing usage stays missing (None, not 0) on replay; reasoning and provider-cached tokens, the backend's
    events and the servers' original tool-call ids come back as they were."""
    response = ChatResponse(
        text="",
        prompt_tokens=None,
        completion_tokens=None,
        latency_s=0.5,
        tool_calls=(
            ToolCall(id="call_local_0", name="ask", arguments="{}", original_id=None),
            ToolCall(id="call_local_1", name="ask", arguments="{}", original_id="dup"),
        ),
        events=("tool_call_id_replaced", "tool_call_id_replaced", "usage_missing"),
    )
    reported = ChatResponse(
        text="x",
        prompt_tokens=100,
        completion_tokens=50,
        latency_s=0.1,
        reasoning_tokens=40,
        provider_cached_prompt_tokens=64,
    )
    cache.put("missing", response)
    cache.put("reported", reported)
    assert cache.get("missing") == response and cache.get("missing").usage_missing
    assert cache.get("reported") == reported


def test_put_replaces_the_reply_under_a_key(cache):
    cache.put("k", ChatResponse(text="old", prompt_tokens=1, completion_tokens=1, latency_s=0.1))
    cache.put("k", ChatResponse(text="new", prompt_tokens=2, completion_tokens=3, latency_s=0.2))
    assert cache.get("k") == ChatResponse(text="new", prompt_tokens=2, completion_tokens=3, latency_s=0.2)


# request_key


def key_of(messages=HELLO, tools=None, **cfg) -> str:
    return request_key(model_identity(scripted_cfg("http://127.0.0.1:9/v1", **cfg)), ChatRequest(messages, tools))


def test_the_same_request_has_the_same_key():
    assert key_of() == key_of()
    assert key_of(tools=TOOLS) == key_of(tools=[dict(t) for t in TOOLS])
    # Key order in the identity does not matter.
    identity = model_identity(scripted_cfg("http://127.0.0.1:9/v1"))
    assert request_key(dict(reversed(identity.items())), ChatRequest(HELLO)) == request_key(
        identity, ChatRequest(HELLO)
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"messages": [{"role": "user", "content": "What is 6*8?"}]},
        {"messages": [{"role": "system", "content": "Be brief."}, *HELLO]},
        {"tools": TOOLS},
        {"model": "another-model"},
        {"base_url": "http://127.0.0.1:10/v1"},
        {"temperature": 0.5},
        {"max_tokens": 77},
        {"max_tokens_param": "max_completion_tokens"},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_the_key_changes_with_what_decides_the_reply(changed):
    if "base_url" in changed:
        other = request_key(model_identity(scripted_cfg(changed["base_url"])), ChatRequest(HELLO))
    else:
        other = key_of(**changed)
    assert other != key_of()


@pytest.mark.parametrize(
    "changed",
    [
        {"api_key_env": "SOME_OTHER_KEY"},
        {"price_input_usd_per_1m": 2.5},
        {"price_output_usd_per_1m": 10.0},
        {"price_cached_input_usd_per_1m": 1.25},
        {"timeout_s": 5.0},
        {"max_retries": 0},
        {"retry_backoff_s": 2.0},
        {"retry_max_backoff_s": 5.0},
        {"max_requests_in_flight": 2},
        {"name": "renamed"},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_the_key_ignores_how_a_call_is_made_or_billed(changed):
    assert key_of(**changed) == key_of()


def test_only_greedy_or_seeded_calls_are_cacheable():
    def cacheable(overrides: GenerateConfig | None = None, **cfg) -> bool:
        return is_cacheable(effective_config(scripted_cfg("http://x/v1", **cfg), overrides or GenerateConfig()))

    assert cacheable()
    assert not cacheable(temperature=0.7)
    # Left to the server's default (reasoning models): sampled, so never cached, unless the call is seeded.
    assert not cacheable(temperature=None)
    assert cacheable(GenerateConfig(seed=3), temperature=None)
    assert cacheable(GenerateConfig(temperature=0.9, seed=3))
    assert not cacheable(GenerateConfig(temperature=0.9))
    assert cacheable(GenerateConfig(temperature=0.0), temperature=0.7)


def test_a_request_that_overrides_nothing_keeps_the_key_it_had_before_requests_carried_settings():
    """Caches written before ChatRequest still hit: the key of a default request is the JSON it always was."""
    cfg = scripted_cfg("http://127.0.0.1:9/v1")
    identity = {k: v for k, v in asdict(cfg).items() if k not in NOT_IN_KEY}
    for tools in (None, TOOLS):
        before = json.dumps({"model": identity, "messages": HELLO, "tools": tools}, sort_keys=True, ensure_ascii=False)
        assert (
            request_key(model_identity(cfg), ChatRequest(HELLO, tools)) == hashlib.sha256(before.encode()).hexdigest()
        )
    # The same, written down: a key a cache file of an earlier version holds.
    assert request_key(model_identity(cfg), ChatRequest(HELLO)) == DEFAULT_REQUEST_KEY


# The key of ChatRequest(HELLO) on scripted_cfg("http://127.0.0.1:9/v1"), as the code before ChatRequest made it.
DEFAULT_REQUEST_KEY = "7997b30ac67931de336449600ae92bcf302b1ce5e4f3580dcbb77a24371124d5"


def test_the_key_holds_the_overrides_and_the_sample_index_that_are_set():
    identity = model_identity(scripted_cfg("http://127.0.0.1:9/v1"))
    plain = request_key(identity, ChatRequest(HELLO))
    seeded = [
        request_key(identity, ChatRequest(HELLO, config=GenerateConfig(seed=7), sample_index=i)) for i in range(3)
    ]
    assert len({plain, *seeded}) == 4
    assert request_key(identity, ChatRequest(HELLO, config=GenerateConfig(seed=7))) == seeded[0]
    assert request_key(identity, ChatRequest(HELLO, config=GenerateConfig(seed=8))) != seeded[0]
    for changed in (GenerateConfig(max_tokens=5), GenerateConfig(top_p=0.9), GenerateConfig(stop=("\n",))):
        assert request_key(identity, ChatRequest(HELLO, config=changed)) != plain
    # How long a call may take never changes its reply.
    assert request_key(identity, ChatRequest(HELLO, config=GenerateConfig(timeout_s=3.0))) == plain


def test_seeded_samples_are_cached_and_replayed_per_sample_index(scripted_server, cache):
    # Each sample is sent a seed of its own (tests/models/test_openai_compatible.py); here only the calls count.
    scripted_server.set_responder(lambda body: Reply(content=f"sample seeded, call {len(scripted_server.requests)}"))

    def samples(k: int) -> list[ChatResponse]:
        requests = [ChatRequest(HELLO, config=GenerateConfig(seed=11), sample_index=i) for i in range(k)]
        return requests_in_turn(cached_model(scripted_server.base_url, cache, temperature=0.8), *requests)

    first = samples(2)
    assert [r.text for r in first] == ["sample seeded, call 1", "sample seeded, call 2"]
    assert not any(r.cache_hit for r in first)
    again = samples(3)
    # The two samples made are replayed, each under its own index; the third is new.
    assert [r.text for r in again] == [first[0].text, first[1].text, "sample seeded, call 3"]
    assert [r.cache_hit for r in again] == [True, True, False]
    assert len(scripted_server.requests) == 3


def test_an_unseeded_sampled_call_is_never_cached(scripted_server, cache):
    scripted_server.set_responder(lambda body: Reply(content=f"call {len(scripted_server.requests)}"))
    model = cached_model(scripted_server.base_url, cache, temperature=None)
    sampled = ChatRequest(HELLO, config=GenerateConfig(temperature=0.8))
    replies = requests_in_turn(model, ChatRequest(HELLO), ChatRequest(HELLO), sampled, sampled)
    assert [r.text for r in replies] == ["call 1", "call 2", "call 3", "call 4"]
    assert not any(r.cache_hit for r in replies)
    assert len(scripted_server.requests) == 4


def test_the_api_key_never_reaches_the_cache_file(tmp_path, scripted_server, monkeypatch):
    monkeypatch.setenv("DELEGATE_TEST_CACHE_KEY", "sk-secret-xyz")
    scripted_server.push(Reply(content="\\boxed{42}"))
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    model = cached_model(scripted_server.base_url, cache, api_key_env="DELEGATE_TEST_CACHE_KEY")
    assert isinstance(model, CachedModel)
    [response] = chat_in_turn(model, (HELLO, None))
    cache.close()
    assert response.text == "\\boxed{42}"
    # The key was really in play: the server received it.
    assert scripted_server.headers[0]["authorization"] == "Bearer sk-secret-xyz"
    files = sorted(path.parent.glob("responses.sqlite*"))
    assert path in files
    contents = b"".join(f.read_bytes() for f in files)
    assert b"\\\\boxed{42}" in contents  # the reply is there, as JSON text
    assert b"sk-secret-xyz" not in contents


# CachedModel


def test_a_repeated_call_is_answered_from_the_cache(cache, scripted_server):
    scripted_server.push(Reply(content="\\boxed{42}", prompt_tokens=31, completion_tokens=7, delay_s=0.2))
    model = cached_model(scripted_server.base_url, cache)
    assert isinstance(model, CachedModel)
    first, second = chat_in_turn(model, (HELLO, None), (HELLO, None))
    assert len(scripted_server.requests) == 1
    assert first.cache_hit is False
    assert second.cache_hit is True
    assert (second.text, second.prompt_tokens, second.completion_tokens) == ("\\boxed{42}", 31, 7)
    # The latency is what the call cost when it was made, not the time of the lookup.
    assert second.latency_s == first.latency_s >= 0.2


def test_the_cache_outlives_the_model_and_ignores_key_and_name(tmp_path, scripted_server, monkeypatch):
    monkeypatch.setenv("DELEGATE_TEST_CACHE_KEY", "sk-one")
    scripted_server.push(Reply(content="once", tool_calls=[{"name": "ask", "arguments": '{"q": "1"}'}]))
    path = tmp_path / "responses.sqlite"
    first_cache = ResponseCache(path)
    [made] = chat_in_turn(
        cached_model(scripted_server.base_url, first_cache, api_key_env="DELEGATE_TEST_CACHE_KEY"), (HELLO, TOOLS)
    )
    first_cache.close()

    second_cache = ResponseCache(path)
    try:
        model = cached_model(
            scripted_server.base_url, second_cache, name="renamed", max_retries=0, price_input_usd_per_1m=3.0
        )
        [replayed] = chat_in_turn(model, (HELLO, TOOLS))
    finally:
        second_cache.close()
    assert len(scripted_server.requests) == 1
    assert replayed.cache_hit is True
    assert replayed.tool_calls == made.tool_calls and replayed.tool_calls[0].arguments == '{"q": "1"}'
    assert replayed.finish_reason == made.finish_reason == "tool_calls"


def test_a_different_request_misses(cache, scripted_server):
    scripted_server.push(Reply(content="a"), Reply(content="b"), Reply(content="c"))
    model = cached_model(scripted_server.base_url, cache)
    other = [{"role": "user", "content": "What is 6*8?"}]
    first, second, third = chat_in_turn(model, (HELLO, None), (other, None), (HELLO, TOOLS))
    assert [r.text for r in (first, second, third)] == ["a", "b", "c"]
    assert not any(r.cache_hit for r in (first, second, third))
    assert len(scripted_server.requests) == 3


def test_a_different_endpoint_or_generation_setting_misses(cache, scripted_server):
    scripted_server.default = Reply(content="fresh")
    chat_in_turn(cached_model(scripted_server.base_url, cache), (HELLO, None))
    chat_in_turn(cached_model(scripted_server.base_url, cache, max_tokens=77), (HELLO, None))
    chat_in_turn(cached_model(scripted_server.base_url, cache, model="other"), (HELLO, None))
    assert len(scripted_server.requests) == 3


def test_sampled_calls_are_not_cached(cache, scripted_server):
    scripted_server.push(Reply(content="one"), Reply(content="two"))
    model = cached_model(scripted_server.base_url, cache, temperature=0.7)
    first, second = chat_in_turn(model, (HELLO, None), (HELLO, None))
    assert (first.text, second.text) == ("one", "two")
    assert len(scripted_server.requests) == 2
    # Nor stored for a later deterministic model to find.
    scripted_server.push(Reply(content="three"))
    [greedy] = chat_in_turn(cached_model(scripted_server.base_url, cache), (HELLO, None))
    assert (greedy.text, greedy.cache_hit) == ("three", False)


def test_a_failed_call_is_not_cached(cache, scripted_server):
    scripted_server.push(Reply(status=500, content="down"), Reply(content="\\boxed{1}"))

    with pytest.raises(ModelCallError, match="InternalServerError"):
        chat_in_turn(cached_model(scripted_server.base_url, cache, max_retries=0), (HELLO, None))
    [response] = chat_in_turn(cached_model(scripted_server.base_url, cache, max_retries=0), (HELLO, None))
    assert (response.text, response.cache_hit) == ("\\boxed{1}", False)
    assert len(scripted_server.requests) == 2


@pytest.mark.parametrize(
    "poisoned",
    [Reply(raw_message={"role": "assistant", "content": None}), Reply(content=""), Reply(content=" \n")],
    ids=["null", "empty", "blank"],
)
def test_an_empty_or_null_reply_is_not_cached_and_the_recovered_one_is(cache, scripted_server, poisoned):
    scripted_server.push(poisoned, Reply(content="\\boxed{42}"))
    model = cached_model(scripted_server.base_url, cache, max_retries=0)
    try:
        [first] = chat_in_turn(model, (HELLO, None))
    except ModelCallError as error:  # null content: the call failed
        assert error.kind == "MalformedResponse"
        first = None
    assert first is None or (first.text.strip(), first.cache_hit) == ("", False)
    assert (
        cache.get(
            request_key(model_identity(scripted_cfg(scripted_server.base_url, max_retries=0)), ChatRequest(HELLO))
        )
        is None
    )
    # The server recovered: the next run asks again and gets (and keeps) the real answer.
    second, third = chat_in_turn(
        cached_model(scripted_server.base_url, cache, max_retries=0), (HELLO, None), (HELLO, None)
    )
    assert (second.text, second.cache_hit, third.text, third.cache_hit) == ("\\boxed{42}", False, "\\boxed{42}", True)
    assert len(scripted_server.requests) == 2


def test_an_empty_reply_stored_by_an_older_version_is_a_miss(cache, scripted_server):
    identity = model_identity(scripted_cfg(scripted_server.base_url))
    cache.put(
        request_key(identity, ChatRequest(HELLO)),
        ChatResponse(text="", prompt_tokens=5, completion_tokens=0, latency_s=0.1),
    )
    scripted_server.push(Reply(content="\\boxed{42}"))
    [response] = chat_in_turn(cached_model(scripted_server.base_url, cache), (HELLO, None))
    assert (response.text, response.cache_hit) == ("\\boxed{42}", False)
    assert cache.get(request_key(identity, ChatRequest(HELLO))).text == "\\boxed{42}"


def test_a_reply_with_only_tool_calls_is_cached(cache, scripted_server):
    scripted_server.push(Reply(content=None, tool_calls=[{"name": "ask", "arguments": '{"q": "1"}'}]))
    model = cached_model(scripted_server.base_url, cache)
    first, second = chat_in_turn(model, (HELLO, TOOLS), (HELLO, TOOLS))
    assert (first.text, second.cache_hit, len(scripted_server.requests)) == ("", True, 1)


def test_a_hit_streams_the_stored_text_to_the_sink(cache, scripted_server):
    scripted_server.push(Reply(content="streamed \\boxed{7}"))
    model = cached_model(scripted_server.base_url, cache)
    pieces: list[list[str]] = [[], []]

    async def go():
        try:
            for sink in pieces:
                await model.chat(ChatRequest(HELLO), sink.append)
        finally:
            await model.aclose()

    asyncio.run(go())
    assert len(scripted_server.requests) == 1
    assert "".join(pieces[0]) == "".join(pieces[1]) == "streamed \\boxed{7}"


# RoleUsage

GPT_4O = ModelPrices(input_usd_per_1m=2.5, output_usd_per_1m=10.0)
ONE_USD = ModelPrices(input_usd_per_1m=1.0, output_usd_per_1m=1.0)


def test_cache_hits_are_counted_and_priced_apart():
    usage = RoleUsage()
    usage.add(ChatResponse(text="", prompt_tokens=100, completion_tokens=10, latency_s=1.0))
    usage.add(ChatResponse(text="", prompt_tokens=200, completion_tokens=20, latency_s=2.0, cache_hit=True))
    usage.add(ChatResponse(text="", prompt_tokens=300, completion_tokens=30, latency_s=3.0, cache_hit=True))
    assert (usage.calls, usage.cache_hits) == (3, 2)
    assert (usage.prompt_tokens, usage.completion_tokens) == (600, 60)
    assert (usage.cached_prompt_tokens, usage.cached_completion_tokens) == (500, 50)
    assert usage.latency_s == pytest.approx(6.0)
    # cost_usd is what the calls cost when made (hits included); cache_saved_usd is the hits' share of it.
    assert usage.cost_usd(GPT_4O) == pytest.approx((600 * 2.5 + 60 * 10.0) / 1e6)
    assert usage.cache_saved_usd(GPT_4O) == pytest.approx((500 * 2.5 + 50 * 10.0) / 1e6)
    assert usage.tokens == 660
    assert RoleUsage().cache_saved_usd(GPT_4O) == 0


def test_metered_model_over_the_cache_counts_the_hit(cache, scripted_server):
    scripted_server.push(Reply(content="x", prompt_tokens=40, completion_tokens=4))
    metered = MeteredModel(cached_model(scripted_server.base_url, cache), "llm")

    async def go():
        try:
            await metered.chat(ChatRequest(HELLO))
            await metered.chat(ChatRequest(HELLO))
        finally:
            await metered._model.aclose()

    asyncio.run(go())
    usage = metered.usage
    assert (usage.calls, usage.cache_hits, usage.prompt_tokens, usage.cached_prompt_tokens) == (2, 1, 80, 40)
    assert usage.cost_usd(ONE_USD) == pytest.approx(88 / 1e6)
    assert usage.cache_saved_usd(ONE_USD) == pytest.approx(44 / 1e6)
