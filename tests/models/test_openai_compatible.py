"""The OpenAI-compatible backend against the scripted server over loopback, with the real SDK."""

import asyncio

import openai
import pytest

from delegate.errors import ConfigError
from delegate.models.backends.openai_compatible import OpenAICompatibleModel, OpenAIModelConfig
from delegate.models.base import ChatRequest, GenerateConfig
from delegate.testing.scripted_server import Reply


def make_model(base_url: str | None, **overrides) -> OpenAICompatibleModel:
    cfg = OpenAIModelConfig(name="scripted", model="scripted", base_url=base_url, api_key_env=None, **overrides)
    return OpenAICompatibleModel(cfg, role="llm")


def chat(model, messages, tools=None, config: GenerateConfig | None = None):
    async def call():
        try:
            return await model.chat(ChatRequest(messages, tools, config=config or GenerateConfig()))
        finally:
            await model.aclose()

    return asyncio.run(call())


def test_text_usage_and_latency_come_back_as_reported(scripted_server):
    scripted_server.push(Reply(content="\\boxed{42}", prompt_tokens=31, completion_tokens=7, delay_s=0.2))
    response = chat(make_model(scripted_server.base_url), [{"role": "user", "content": "6*7?"}])
    assert response.text == "\\boxed{42}"
    assert (response.prompt_tokens, response.completion_tokens) == (31, 7)
    assert response.latency_s >= 0.2
    assert response.tool_calls == ()


def test_request_carries_model_settings_and_tools(scripted_server):
    scripted_server.push(Reply(content="ok"))
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    chat(
        make_model(scripted_server.base_url, max_tokens=77, temperature=0.0), [{"role": "user", "content": "hi"}], tools
    )
    request = scripted_server.requests[0]
    assert request["model"] == "scripted"
    assert request["max_tokens"] == 77
    assert request["temperature"] == 0.0
    assert request["tools"] == tools
    assert request["tool_choice"] == "auto"


def test_top_p_seed_and_stop_are_sent_only_when_set(scripted_server):
    scripted_server.push(Reply(content="a"), Reply(content="b"))
    hi = [{"role": "user", "content": "hi"}]
    chat(make_model(scripted_server.base_url), hi)
    chat(make_model(scripted_server.base_url), hi, config=GenerateConfig(top_p=0.9, seed=42, stop=("\n\n", "END")))
    plain, overridden = scripted_server.requests
    assert not {"top_p", "seed", "stop"} & plain.keys()
    assert (overridden["top_p"], overridden["seed"], overridden["stop"]) == (0.9, 42, ["\n\n", "END"])


def test_a_call_overrides_the_model_settings_it_names_and_keeps_the_rest(scripted_server):
    scripted_server.push(Reply(content="a"), Reply(content="b"))
    model_settings = dict(max_tokens=77, temperature=0.0, max_tokens_param="max_completion_tokens")
    hi = [{"role": "user", "content": "hi"}]
    chat(make_model(scripted_server.base_url, **model_settings), hi, config=GenerateConfig(temperature=0.7))
    chat(make_model(scripted_server.base_url, **model_settings), hi, config=GenerateConfig(max_tokens=5))
    sampled, shorter = scripted_server.requests
    assert (sampled["temperature"], sampled["max_completion_tokens"]) == (0.7, 77)
    assert (shorter["temperature"], shorter["max_completion_tokens"]) == (0.0, 5)


def test_a_call_s_timeout_overrides_the_model_s(scripted_server):
    scripted_server.push(Reply(content="late", delay_s=1.0))
    model = make_model(scripted_server.base_url, timeout_s=30.0, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        chat(model, [{"role": "user", "content": "hi"}], config=GenerateConfig(timeout_s=0.2))


def test_tool_calls_are_parsed(scripted_server):
    scripted_server.push(
        Reply(tool_calls=[{"name": "ask", "arguments": '{"q": "2+2"}'}, {"name": "ask", "arguments": "{bad"}])
    )
    response = chat(make_model(scripted_server.base_url), [{"role": "user", "content": "hi"}])
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("ask", '{"q": "2+2"}'), ("ask", "{bad")]
    assert response.finish_reason == "tool_calls"
    assert response.as_message()["tool_calls"][1]["function"]["arguments"] == "{bad"


def test_server_errors_are_retried_by_the_backend_not_the_sdk(scripted_server):
    scripted_server.push(Reply(status=503), Reply(status=429, headers={"Retry-After": "0"}), Reply(content="fine"))
    model = make_model(scripted_server.base_url, max_retries=2, retry_backoff_s=0.01)
    assert model._client.max_retries == 0  # the SDK's own retries would multiply ours
    response = chat(model, [{"role": "user", "content": "hi"}])
    assert response.text == "fine"
    assert len(scripted_server.requests) == 3
    # The SDK sends a retry count with each request: every attempt was the SDK's first.
    assert {h.get("x-stainless-retry-count") for h in scripted_server.headers} == {"0"}


def test_errors_past_the_retry_budget_raise(scripted_server):
    scripted_server.push(Reply(status=500), Reply(status=500))
    with pytest.raises(openai.InternalServerError):
        chat(
            make_model(scripted_server.base_url, max_retries=1, retry_backoff_s=0.01),
            [{"role": "user", "content": "hi"}],
        )
    assert len(scripted_server.requests) == 2


def test_timeout_bounds_a_slow_call(scripted_server):
    scripted_server.push(Reply(content="late", delay_s=3.0))
    with pytest.raises(openai.APITimeoutError):
        chat(make_model(scripted_server.base_url, timeout_s=0.5, max_retries=0), [{"role": "user", "content": "hi"}])


def test_missing_key_for_openai_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = OpenAIModelConfig(name="gpt-4o", model="gpt-4o")
    with pytest.raises(ConfigError, match=r"llm.api_key_env: \$OPENAI_API_KEY is not set"):
        OpenAICompatibleModel(cfg, role="llm")


def test_key_is_read_from_dotenv_and_sent_only_as_a_header(scripted_server, monkeypatch, tmp_path):
    monkeypatch.delenv("DELEGATE_TEST_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DELEGATE_TEST_KEY=sk-test-secret-123\n")
    scripted_server.push(Reply(content="ok"))
    cfg = OpenAIModelConfig(name="s", model="s", base_url=scripted_server.base_url, api_key_env="DELEGATE_TEST_KEY")
    chat(OpenAICompatibleModel(cfg, role="llm"), [{"role": "user", "content": "hi"}])
    assert "sk-test-secret-123" not in str(scripted_server.requests[0])
    assert scripted_server.headers[0]["authorization"] == "Bearer sk-test-secret-123"


def test_requests_in_flight_are_capped_per_endpoint(scripted_server):
    scripted_server.default = Reply(content="ok", delay_s=0.3)

    async def six_at_once(model):
        started_s = asyncio.get_running_loop().time()
        try:
            await asyncio.gather(*(model.chat(ChatRequest([{"role": "user", "content": str(i)}])) for i in range(6)))
        finally:
            await model.aclose()
        return asyncio.get_running_loop().time() - started_s

    capped_s = asyncio.run(six_at_once(make_model(scripted_server.base_url, max_requests_in_flight=2)))
    free_s = asyncio.run(six_at_once(make_model(scripted_server.base_url)))
    assert capped_s >= 0.9  # three waves of two
    assert free_s < 0.6  # one wave


def test_a_pasted_key_in_api_key_env_is_refused_without_echoing_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = OpenAIModelConfig(name="s", model="s", base_url="http://127.0.0.1:9/v1", api_key_env="sk-proj-abc123-secret")
    with pytest.raises(ConfigError, match=r"llm.api_key_env: not an environment variable name") as caught:
        OpenAICompatibleModel(cfg, role="llm")
    assert "sk-proj-abc123-secret" not in str(caught.value)


def test_openai_base_url_in_the_environment_does_not_redirect_calls(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = OpenAICompatibleModel(OpenAIModelConfig(name="gpt-4o", model="gpt-4o"), role="llm")
    assert str(model._client.base_url).startswith("https://api.openai.com/v1")


def test_each_sample_of_a_seeded_request_sends_a_seed_of_its_own(scripted_server):
    scripted_server.set_responder(lambda body: Reply(content="a sample"))
    model = make_model(scripted_server.base_url)
    hi = [{"role": "user", "content": "hi"}]
    config = GenerateConfig(temperature=0.7, seed=42)

    async def samples() -> None:
        for index in (0, 1, 2, 1):
            await model.chat(ChatRequest(hi, config=config, sample_index=index))
        await model.aclose()

    asyncio.run(samples())
    seeds = [request["seed"] for request in scripted_server.requests]
    # Sample 0 sends the seed as given; the others their own, the same each time, within 32 bits.
    assert seeds[0] == 42
    assert len(set(seeds[:3])) == 3 and seeds[3] == seeds[1]
    assert all(0 <= seed < 2**31 for seed in seeds)
