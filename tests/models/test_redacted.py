"""RedactedModel over the real openai SDK and the scripted server: a server that echoes the request's Authorization
header, in an error body or in a reply, gets no key past the model layer, in any form."""

import asyncio
import base64
import json
import logging
import sqlite3
import traceback

import pytest
from omegaconf import OmegaConf

from delegate import redaction
from delegate.errors import ConfigError, ModelCallError
from delegate.models import build_model
from delegate.models.backends.openai_compatible import OpenAIModelConfig
from delegate.models.base import ChatRequest
from delegate.models.cache import ResponseCache
from delegate.models.redacted import RedactedModel
from delegate.testing.scripted_server import Reply
from tests.support.canary import carries
from tests.test_redaction import CANARY

HELLO = [{"role": "user", "content": "What is 6*7?"}]
# A variable whose name does not look secret: only read_api_key's registration can make the redactor know its value.
KEY_VARIABLE = "DELEGATE_REDACTION_CANARY_VALUE"


@pytest.fixture(autouse=True, params=["environment", "dotenv"])
def canary_key(request, monkeypatch, tmp_path):
    """The canary key in the environment, or only in ./.env."""
    monkeypatch.setattr(redaction, "_registered", set())
    if request.param == "environment":
        monkeypatch.setenv(KEY_VARIABLE, CANARY)
    else:
        monkeypatch.delenv(KEY_VARIABLE, raising=False)
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".env").write_text(f"{KEY_VARIABLE}={CANARY}\n", encoding="utf-8")


def model_for(base_url: str, cache: ResponseCache | None = None, **overrides):
    """What a job builds for the role: build_model over the schema-typed config (the key named by api_key_env)."""
    cfg = OpenAIModelConfig(
        name="scripted", model="scripted", base_url=base_url, api_key_env=KEY_VARIABLE, max_retries=0
    )
    return build_model(OmegaConf.structured(cfg), "slm", cache)


def call(model, messages=HELLO, tools=None, on_text=None):
    async def go():
        try:
            return await model.chat(ChatRequest(messages, tools), on_text)
        finally:
            await model.aclose()

    return asyncio.run(go())


def failure_of(model) -> ModelCallError:
    with pytest.raises(ModelCallError) as caught:
        call(model)
    return caught.value


def assert_no_canary(error: ModelCallError) -> None:
    shown = "".join(traceback.format_exception(error)) + repr(error) + error.detail + error.summary
    assert not carries(shown, CANARY)
    # The original exception (its body, the request's headers) is kept nowhere a traceback or span could print it.
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize(("status", "kind"), [(500, "InternalServerError"), (429, "RateLimitError")])
def test_an_error_body_echoing_the_key_becomes_a_redacted_model_call_error(scripted_server, status, kind):
    scripted_server.push(Reply(status=status, content="bad request", echo_headers=True))
    error = failure_of(model_for(scripted_server.base_url))
    assert scripted_server.headers[0]["authorization"] == f"Bearer {CANARY}"  # the server did see (and echo) it
    assert (error.role, error.kind, error.status_code) == ("slm", kind, status)
    assert error.summary == f"{kind} (HTTP {status})"
    assert "bad request (request headers:" in error.detail and "Bearer [REDACTED]" in error.detail
    assert_no_canary(error)


def test_a_reply_echoing_the_key_comes_back_redacted(scripted_server):
    scripted_server.push(Reply(content="\\boxed{42}", echo_headers=True))
    response = call(model_for(scripted_server.base_url))
    assert response.text.startswith("\\boxed{42} (request headers:")
    assert "Bearer [REDACTED]" in response.text and not carries(response.text, CANARY)


def test_streamed_text_echoing_the_key_is_redacted_as_it_streams(scripted_server):
    scripted_server.push(Reply(content="\\boxed{42}", echo_headers=True))
    streamed: list[str] = []
    response = call(model_for(scripted_server.base_url), on_text=streamed.append)
    assert "".join(streamed) == response.text
    assert len(streamed) > 1 and not carries("".join(streamed), CANARY)


def test_tool_calls_echoing_the_key_come_back_redacted(scripted_server):
    def echo_in_a_tool_call(body: dict) -> Reply:
        key = scripted_server.headers[-1]["authorization"].removeprefix("Bearer ")
        basic = base64.b64encode(f"user:{key}".encode()).decode()
        return Reply(tool_calls=[{"id": f"call-{key}", "name": f"ask_{key}", "arguments": json.dumps({"q": basic})}])

    scripted_server.set_responder(echo_in_a_tool_call)
    tools = [{"type": "function", "function": {"name": "ask", "parameters": {"type": "object", "properties": {}}}}]
    [tool_call] = call(model_for(scripted_server.base_url), tools=tools).tool_calls
    assert tool_call.name == "ask_[REDACTED]" and tool_call.id == tool_call.original_id == "call-[REDACTED]"
    assert not carries(tool_call.arguments, CANARY)


@pytest.fixture
def log_redaction(monkeypatch):
    """install_log_redaction for one test; the process's record factory is put back after."""
    monkeypatch.setattr(redaction, "_log_redaction_installed", False)
    factory = logging.getLogRecordFactory()
    redaction.install_log_redaction()
    yield
    logging.setLogRecordFactory(factory)


def test_credentials_in_the_base_url_leave_no_trace(scripted_server, caplog, log_redaction):
    # httpx sends a URL's userinfo as `Authorization: Basic base64(user:password)`, and logs the URL at INFO.
    base_url = scripted_server.base_url.replace("http://", f"http://delegate:{CANARY}@")
    scripted_server.push(
        Reply(content="\\boxed{42}", echo_headers=True), Reply(status=500, content="down", echo_headers=True)
    )
    # The HTTP clients' own levels too (newer openai SDKs log as httpx2): quiet_libraries(), run by earlier tests,
    # sets them to WARNING.
    with (
        caplog.at_level(logging.INFO),
        caplog.at_level(logging.INFO, logger="httpx"),
        caplog.at_level(logging.INFO, logger="httpx2"),
    ):
        response = call(model_for(base_url))
        error = failure_of(model_for(base_url))
    assert scripted_server.headers[0]["authorization"].startswith("Basic ")
    assert carries(scripted_server.headers[0]["authorization"], CANARY)
    assert not carries(response.text, CANARY)
    assert_no_canary(error)
    assert any("http://***@127.0.0.1" in record.getMessage() for record in caplog.records)
    assert not carries(caplog.text, CANARY)


def test_the_cache_never_holds_the_key(scripted_server, tmp_path):
    scripted_server.push(Reply(content="\\boxed{42}", echo_headers=True))
    cache = ResponseCache(tmp_path / "responses.sqlite")
    first = call(model_for(scripted_server.base_url, cache))
    second = call(model_for(scripted_server.base_url, cache))
    cache.close()
    assert (second.cache_hit, second.text) == (True, first.text)
    with sqlite3.connect(tmp_path / "responses.sqlite") as db:
        stored = "".join(row[0] for row in db.execute("SELECT response FROM responses"))
    assert "Bearer [REDACTED]" in stored and not carries(stored, CANARY)


def test_a_malformed_reply_is_a_model_call_error_without_a_status(scripted_server):
    scripted_server.push(Reply(raw_text=f"<html>proxy error for Bearer {CANARY}</html>", content_type="text/html"))
    error = failure_of(model_for(scripted_server.base_url))
    assert (error.kind, error.status_code) == ("MalformedResponse", None)
    assert_no_canary(error)


def test_a_config_error_passes_through(scripted_server):
    refusal = {"message": "Unsupported parameter: 'max_tokens'", "param": "max_tokens", "code": "unsupported_parameter"}
    scripted_server.push(Reply(status=400, raw_body={"error": refusal}))
    with pytest.raises(ConfigError, match="set slm.max_tokens_param=max_completion_tokens"):
        call(model_for(scripted_server.base_url))


def test_a_config_error_quoting_a_secret_is_remade_redacted():
    class Refusing:
        async def chat(self, *args):
            raise ConfigError(f"slm.base_url=http://delegate:{CANARY}@host/v1 refused the key")

        async def aclose(self):
            pass

    with pytest.raises(ConfigError) as caught:
        call(RedactedModel(Refusing(), "slm"))
    assert str(caught.value) == "slm.base_url=http://***@host/v1 refused the key"
    assert caught.value.__context__ is None


def test_cancellation_passes_through_untouched(scripted_server):
    scripted_server.push(Reply(content="late", delay_s=2.0))
    model = model_for(scripted_server.base_url)

    async def cancelled_mid_call():
        task = asyncio.create_task(model.chat(ChatRequest(HELLO)))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        finally:
            await model.aclose()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled_mid_call())
