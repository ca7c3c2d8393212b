"""Retries, the per-endpoint back-off gate and the circuit breaker (delegate.models.retry), through the
OpenAI-compatible backend and the real SDK against scripted servers on loopback; waits are measured where the server
saw the requests."""

import asyncio
import email.utils
import re
import socket
import time

import openai
import pytest

from delegate.errors import ConfigError, EndpointFailing
from delegate.models.backends.openai_compatible import MalformedResponse, OpenAICompatibleModel, OpenAIModelConfig
from delegate.models.base import ChatRequest
from delegate.models.retry import BREAKER_THRESHOLD, JITTER_SHARE
from delegate.testing.scripted_server import Reply, ScriptedServer

HELLO = [{"role": "user", "content": "What is 6*8?"}]
# Scheduling slack on a busy 2-core machine, for the upper bounds of measured waits.
SLACK_S = 0.3
OK = Reply(content="\\boxed{48}")


def make_model(base_url: str, role: str = "llm", **overrides) -> OpenAICompatibleModel:
    settings = {
        "name": "scripted",
        "model": "scripted",
        "base_url": base_url,
        "api_key_env": None,
        "retry_backoff_s": 0.01,
    } | overrides
    return OpenAICompatibleModel(OpenAIModelConfig(**settings), role=role)


def chat(model: OpenAICompatibleModel, times: int = 1) -> list:
    """`times` calls in turn (each one's reply, or the exception it raised); the model is closed afterwards."""

    async def go():
        outcomes = []
        try:
            for _ in range(times):
                try:
                    outcomes.append(await model.chat(ChatRequest(HELLO)))
                except Exception as error:  # noqa: BLE001 - the test looks at what each call raised
                    outcomes.append(error)
        finally:
            await model.aclose()
        return outcomes

    return asyncio.run(go())


def gaps_s(server: ScriptedServer) -> list[float]:
    return [later - earlier for earlier, later in zip(server.arrivals_s, server.arrivals_s[1:])]


# Which failures are retried


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(scripted_server, status):
    scripted_server.push(Reply(status=status), OK)
    [response] = chat(make_model(scripted_server.base_url))
    assert response.text == "\\boxed{48}" and len(scripted_server.requests) == 2


@pytest.mark.parametrize(
    "malformed",
    [
        Reply(raw_text="<html>502</html>", content_type="text/html"),
        Reply(raw_text='{"choices": [{"mess'),
        Reply(raw_body={"choices": []}),
        Reply(raw_message={"role": "assistant", "content": None}),
    ],
    ids=["html", "truncated-json", "empty-choices", "null-content"],
)
def test_a_malformed_200_is_retried(scripted_server, malformed):
    scripted_server.push(malformed, OK)
    [response] = chat(make_model(scripted_server.base_url))
    assert response.text == "\\boxed{48}" and len(scripted_server.requests) == 2


def test_a_timeout_is_retried(scripted_server):
    scripted_server.push(Reply(content="late", delay_s=1.0), OK)
    [response] = chat(make_model(scripted_server.base_url, timeout_s=0.3))
    assert response.text == "\\boxed{48}" and len(scripted_server.requests) == 2


def test_a_refused_connection_is_retried_then_raised():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started_s = time.monotonic()
    [error] = chat(make_model(f"http://127.0.0.1:{port}/v1", max_retries=2, retry_backoff_s=0.1))
    assert isinstance(error, openai.APIConnectionError)
    assert time.monotonic() - started_s >= 0.1 + 0.2  # two waits: the backoff, then twice it


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_errors_no_retry_fixes_are_not_retried(scripted_server, status):
    scripted_server.push(Reply(status=status, content="no"), OK)
    [error] = chat(make_model(scripted_server.base_url))
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    assert len(scripted_server.requests) == 1


def test_a_stream_that_passed_text_on_is_not_asked_again(scripted_server):
    """Asked again, the caller's sink would get the text twice."""
    cut = 'data: {"choices": [{"index": 0, "delta": {"content": "So 4"}}]}\n\ndata: {"choi\n\n'
    scripted_server.push(Reply(raw_text=cut, content_type="text/event-stream"), OK)
    model, sink = make_model(scripted_server.base_url), []

    async def go():
        try:
            return await model.chat(ChatRequest(HELLO), on_text=sink.append)
        finally:
            await model.aclose()

    with pytest.raises(MalformedResponse, match="streamed chunk"):
        asyncio.run(go())
    assert sink == ["So 4"] and len(scripted_server.requests) == 1


def test_retries_stop_after_max_retries(scripted_server):
    scripted_server.default = Reply(status=500)
    [error] = chat(make_model(scripted_server.base_url, max_retries=3))
    assert isinstance(error, openai.InternalServerError) and len(scripted_server.requests) == 4


# How long a retry waits


@pytest.mark.parametrize(
    ("headers", "asked_s"),
    [({"Retry-After": "1"}, 1.0), ({"retry-after-ms": "400", "Retry-After": "9"}, 0.4), ({"Retry-After": "0.5"}, 0.5)],
    ids=["seconds", "milliseconds-first", "fractional-seconds"],
)
def test_retry_after_is_honoured_with_jitter_on_top(scripted_server, headers, asked_s):
    scripted_server.push(Reply(status=429, headers=headers), OK)
    [response] = chat(make_model(scripted_server.base_url))
    [waited_s] = gaps_s(scripted_server)
    assert response.text == "\\boxed{48}"
    assert asked_s <= waited_s <= asked_s * (1 + JITTER_SHARE) + SLACK_S


def test_retry_after_as_an_http_date_is_honoured(scripted_server):
    # HTTP dates have whole seconds: "2 s from now" is between 1 and 2 s away once formatted.
    in_two_s = email.utils.formatdate(time.time() + 2, usegmt=True)
    scripted_server.push(Reply(status=503, headers={"Retry-After": in_two_s}), OK)
    chat(make_model(scripted_server.base_url))
    [waited_s] = gaps_s(scripted_server)
    assert 1.0 <= waited_s <= 2.0 * (1 + JITTER_SHARE) + SLACK_S


def test_without_retry_after_the_backoff_doubles_up_to_the_cap(scripted_server):
    scripted_server.push(*[Reply(status=500)] * 5, OK)
    chat(make_model(scripted_server.base_url, retry_backoff_s=0.05, retry_max_backoff_s=0.2))
    delays_s = [0.05, 0.1, 0.2, 0.2, 0.2]
    for waited_s, delay_s in zip(gaps_s(scripted_server), delays_s, strict=True):
        assert delay_s <= waited_s <= delay_s * (1 + JITTER_SHARE) + SLACK_S


def test_a_retry_after_beyond_the_cap_is_cut_to_the_cap(scripted_server):
    scripted_server.push(Reply(status=429, headers={"Retry-After": "30"}), OK)
    [response] = chat(make_model(scripted_server.base_url, retry_max_backoff_s=0.3))
    [waited_s] = gaps_s(scripted_server)
    assert response.text == "\\boxed{48}"
    assert 0.3 <= waited_s <= 0.3 * (1 + JITTER_SHARE) + SLACK_S


def test_jitter_spreads_the_retries_of_calls_that_failed_together(scripted_server):
    calls = 16
    scripted_server.push(*[Reply(status=429, headers={"retry-after-ms": "200"})] * calls)
    scripted_server.default = OK
    model = make_model(scripted_server.base_url)

    async def together():
        try:
            return await asyncio.gather(*(model.chat(ChatRequest(HELLO)) for _ in range(calls)))
        finally:
            await model.aclose()

    responses = asyncio.run(together())
    assert all(r.text == "\\boxed{48}" for r in responses)
    first_tries, retries = scripted_server.arrivals_s[:calls], scripted_server.arrivals_s[calls:]
    assert len(retries) == calls
    assert min(retries) >= max(first_tries) + 0.2 - 0.02  # none before the time asked for (first tries took ~ms)
    # Spread over the jitter window (up to 0.1 s here), not fired at once.
    assert max(retries) - min(retries) >= 0.03
    assert len({round(t, 3) for t in retries}) >= calls // 2


# The back-off gate, per endpoint


def test_an_overloaded_endpoint_holds_the_calls_of_every_model_using_it():
    """llm's call meets a 429 asking for 0.6 s; slm's call to the same endpoint, started meanwhile, waits for it too;
    a call to another endpoint does not."""
    with ScriptedServer(default=OK) as shared, ScriptedServer(default=OK) as other:
        shared.push(Reply(status=429, headers={"retry-after-ms": "600"}))
        llm = make_model(shared.base_url, "llm", model="big")
        slm = make_model(shared.base_url, "slm", model="small")
        elsewhere = make_model(other.base_url, "slm", model="small")

        async def scenario():
            try:
                first = asyncio.create_task(llm.chat(ChatRequest(HELLO)))
                while not shared.requests:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)  # llm has its 429 by now
                started_s = time.monotonic()
                await elsewhere.chat(ChatRequest(HELLO))
                elsewhere_s = time.monotonic() - started_s
                await slm.chat(ChatRequest(HELLO))
                await first
                return elsewhere_s
            finally:
                for model in (llm, slm, elsewhere):
                    await model.aclose()

        elsewhere_s = asyncio.run(scenario())
        refused_at_s = shared.arrivals_s[0]
        slm_at_s = next(t for r, t in zip(shared.requests, shared.arrivals_s) if r["model"] == "small")
    assert slm_at_s - refused_at_s >= 0.6
    assert elsewhere_s < 0.3


# The circuit breaker


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (401, r"^llm.base_url=\S+ refused the API key \(HTTP 401, 3 calls in a row\); set llm.api_key_env"),
        (403, r"^llm.base_url=\S+ denies this key access to llm.model=scripted \(HTTP 403"),
        (404, r"^llm.model=scripted is not served at llm.base_url=\S+ \(HTTP 404.*the URL's path"),
        (400, r"^llm.base_url=\S+ refused the request for llm.model=scripted \(HTTP 400.*max_tokens=1024"),
    ],
    ids=["401", "403", "404", "400"],
)
def test_the_breaker_opens_after_identical_failures_naming_the_setting(scripted_server, status, line):
    scripted_server.default = Reply(status=status, content="no: Bearer sk-canary-secret")
    outcomes = chat(make_model(scripted_server.base_url), times=BREAKER_THRESHOLD + 2)
    assert [type(o) for o in outcomes[: BREAKER_THRESHOLD - 1]] == [type(outcomes[0])] * (BREAKER_THRESHOLD - 1)
    assert isinstance(outcomes[0], openai.APIStatusError) and outcomes[0].status_code == status
    opened = outcomes[BREAKER_THRESHOLD - 1 :]
    assert all(isinstance(o, EndpointFailing) and isinstance(o, ConfigError) for o in opened)
    assert all(str(o) == str(opened[0]) for o in opened)
    assert re.search(line, str(opened[0]))
    assert "sk-canary" not in str(opened[0]) and "\n" not in str(opened[0])
    assert opened[0].__cause__ is None and opened[0].__suppress_context__
    # Once open, calls fail without a request.
    assert len(scripted_server.requests) == BREAKER_THRESHOLD


@pytest.mark.parametrize(
    "statuses",
    [[401, 404, 401, 404, 401, 404], [401, 401, 200, 401, 401, 200], [404, 404, 500, 200, 404, 404]],
    ids=["mixed", "success-between", "success-after-a-5xx"],
)
def test_the_breaker_stays_closed_on_mixed_failures_or_a_success_between(scripted_server, statuses):
    scripted_server.push(*[OK if s == 200 else Reply(status=s) for s in statuses])
    outcomes = chat(make_model(scripted_server.base_url, max_retries=0), times=len(statuses))
    assert not any(isinstance(o, EndpointFailing) for o in outcomes)
    assert len(scripted_server.requests) == len(statuses)


def test_the_breaker_is_per_model_and_shared_by_roles(scripted_server):
    scripted_server.set_responder(lambda body: Reply(status=404) if body["model"] == "gone" else OK)

    async def go():
        llm = make_model(scripted_server.base_url, "llm", model="gone")
        slm = make_model(scripted_server.base_url, "slm", model="gone")
        other = make_model(scripted_server.base_url, "slm", model="here")
        try:
            for model in (llm, slm, llm):
                with pytest.raises((openai.NotFoundError, EndpointFailing)):
                    await model.chat(ChatRequest(HELLO))
            with pytest.raises(EndpointFailing, match=r"^slm.model=gone is not served"):
                await slm.chat(ChatRequest(HELLO))
            return await other.chat(ChatRequest(HELLO))
        finally:
            for model in (llm, slm, other):
                await model.aclose()

    assert asyncio.run(go()).text == "\\boxed{48}"
    assert [r["model"] for r in scripted_server.requests] == ["gone"] * BREAKER_THRESHOLD + ["here"]


def test_the_next_job_starts_with_the_breaker_closed(scripted_server):
    """Gates and breakers belong to the event loop a job runs on: the next one in the process starts afresh."""
    scripted_server.push(*[Reply(status=401)] * BREAKER_THRESHOLD, OK)
    model = make_model(scripted_server.base_url)
    assert isinstance(chat(model, times=BREAKER_THRESHOLD)[-1], EndpointFailing)
    [response] = chat(make_model(scripted_server.base_url))
    assert response.text == "\\boxed{48}" and len(scripted_server.requests) == BREAKER_THRESHOLD + 1
