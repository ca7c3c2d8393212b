"""Tests for the scripted OpenAI-compatible server, driven through the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from delegate.testing.scripted_server import Reply, ScriptedServer, serve

USER = [{"role": "user", "content": "What is 6*7?"}]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def client(server: ScriptedServer, max_retries: int = 0) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="x", max_retries=max_retries)


def test_content_and_usage_round_trip(server: ScriptedServer) -> None:
    server.push(Reply(content="\\boxed{42}", prompt_tokens=12, completion_tokens=3))
    resp = client(server).chat.completions.create(model="big-model", messages=USER)
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "\\boxed{42}"
    assert choice.finish_reason == "stop"
    assert resp.model == "big-model"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (12, 3, 15)


def test_tool_calls(server: ScriptedServer) -> None:
    server.push(
        Reply(
            tool_calls=[
                {"name": "delegate", "arguments": '{"task": "add"}'},
                {"name": "delegate", "arguments": "{not json", "id": "call_mine"},
            ]
        )
    )
    resp = client(server).chat.completions.create(model="m", messages=USER)
    calls = resp.choices[0].message.tool_calls
    assert resp.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["delegate", "delegate"]
    assert [c.function.arguments for c in calls] == ['{"task": "add"}', "{not json"]
    assert calls[0].id.startswith("call_") and calls[1].id == "call_mine"
    assert calls[0].type == "function"


def test_server_error_then_success_is_retried(server: ScriptedServer) -> None:
    server.push(Reply(status=500), Reply(content="ok"))
    resp = client(server, max_retries=2).chat.completions.create(model="m", messages=USER)
    assert resp.choices[0].message.content == "ok"
    assert len(server.requests) == 2


def test_server_error_without_retries_raises(server: ScriptedServer) -> None:
    server.push(Reply(status=500, content="boom"), Reply(content="never"))
    with pytest.raises(openai.InternalServerError, match="boom"):
        client(server).chat.completions.create(model="m", messages=USER)
    assert len(server.requests) == 1


def test_rate_limit_with_retry_after_is_retried(server: ScriptedServer) -> None:
    server.push(Reply(status=429, headers={"Retry-After": "0"}), Reply(content="ok"))
    resp = client(server, max_retries=1).chat.completions.create(model="m", messages=USER)
    assert resp.choices[0].message.content == "ok"
    assert len(server.requests) == 2


def test_exhausted_script_is_a_500_unless_default(server: ScriptedServer) -> None:
    with pytest.raises(openai.InternalServerError, match="script exhausted"):
        client(server).chat.completions.create(model="m", messages=USER)
    server.default = Reply(content="fallback")
    assert client(server).chat.completions.create(model="m", messages=USER).choices[0].message.content == "fallback"


def test_delay_is_concurrent() -> None:
    async def run(s: ScriptedServer) -> list[str]:
        aclient = AsyncOpenAI(base_url=s.base_url, api_key="x", max_retries=0)
        resps = await asyncio.gather(*(aclient.chat.completions.create(model="m", messages=USER) for _ in range(8)))
        return [r.choices[0].message.content for r in resps]

    with serve(default=Reply(content="slow", delay_s=0.3)) as s:
        start = time.perf_counter()
        contents = asyncio.run(run(s))
        elapsed = time.perf_counter() - start
    assert contents == ["slow"] * 8
    assert 0.3 <= elapsed < 1.5


def test_streaming_content_and_usage(server: ScriptedServer) -> None:
    text = "Let me think... \\boxed{42}"
    server.push(Reply(content=text, prompt_tokens=7, completion_tokens=9))
    stream = client(server).chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 16


def test_streaming_tool_calls(server: ScriptedServer) -> None:
    server.push(Reply(tool_calls=[{"name": "delegate", "arguments": '{"task": "compute 6*7"}'}]))
    stream = client(server).chat.completions.create(model="m", messages=USER, stream=True)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        assert chunk.usage is None  # usage only when requested
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert list(calls.values()) == [{"id": calls[0]["id"], "name": "delegate", "arguments": '{"task": "compute 6*7"}'}]
    assert calls[0]["id"].startswith("call_")


def test_responder_sees_request_body(server: ScriptedServer) -> None:
    server.set_responder(lambda body: Reply(content="echo: " + body["messages"][-1]["content"]))
    resp = client(server).chat.completions.create(model="m", messages=USER)
    assert resp.choices[0].message.content == "echo: What is 6*7?"


def test_queued_replies_take_precedence_over_responder() -> None:
    with serve(lambda body: Reply(content="responder")) as s:
        s.push(Reply(content="queued"))
        c = client(s)
        got = [c.chat.completions.create(model="m", messages=USER).choices[0].message.content for _ in range(2)]
    assert got == ["queued", "responder"]


def test_requests_are_recorded(server: ScriptedServer) -> None:
    server.default = Reply(content="ok")
    c = client(server)
    c.chat.completions.create(model="a", messages=USER, temperature=0.5)
    c.chat.completions.create(model="b", messages=USER, tools=[{"type": "function", "function": {"name": "f"}}])
    assert [r["model"] for r in server.requests] == ["a", "b"]
    assert server.requests[0]["temperature"] == 0.5 and server.requests[0]["messages"] == USER
    assert server.requests[1]["tools"][0]["function"]["name"] == "f"


def test_every_nth_request_gets_the_fault_and_the_script_is_not_consumed(server: ScriptedServer) -> None:
    server.push(Reply(content="one"), Reply(content="two"), Reply(content="three"), Reply(content="four"))
    server.fail_every(3, Reply(status=429, headers={"Retry-After": "1", "retry-after-ms": "50"}))
    c, got = client(server), []
    for _ in range(6):
        try:
            got.append(c.chat.completions.create(model="m", messages=USER).choices[0].message.content)
        except openai.RateLimitError as error:
            got.append((error.response.headers["retry-after"], error.response.headers["retry-after-ms"]))
    assert got == ["one", "two", ("1", "50"), "three", "four", ("1", "50")]
    assert len(server.arrivals_s) == 6 and server.arrivals_s == sorted(server.arrivals_s)


@pytest.mark.parametrize("status", [200, 502])
def test_a_raw_text_body_is_sent_as_it_is(server: ScriptedServer, status: int) -> None:
    server.push(Reply(raw_text="<html>Bad Gateway</html>", content_type="text/html", status=status))
    body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
    try:
        response = urllib.request.urlopen(urllib.request.Request(server.base_url + "/chat/completions", data=body))
    except urllib.error.HTTPError as error:
        response = error
    with response:
        assert (response.status, response.headers["Content-Type"]) == (status, "text/html")
        assert response.read() == b"<html>Bad Gateway</html>"


def test_echo_headers_puts_the_request_headers_in_the_error(server: ScriptedServer) -> None:
    server.push(Reply(status=401, content="bad key", echo_headers=True), Reply(content="hi", echo_headers=True))
    c = OpenAI(base_url=server.base_url, api_key="sk-canary-123", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        c.chat.completions.create(model="m", messages=USER)
    assert caught.value.body["message"].startswith("bad key (request headers: ")
    assert "authorization: Bearer sk-canary-123" in caught.value.body["message"]
    assert "Bearer sk-canary-123" in c.chat.completions.create(model="m", messages=USER).choices[0].message.content


def test_models_and_unknown_paths(server: ScriptedServer) -> None:
    assert [m.id for m in client(server).models.list()] == ["scripted"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.base_url + "/nope")
    assert err.value.code == 404
    assert "error" in json.loads(err.value.read())


def test_cli_serves_constant_reply() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "delegate.testing.scripted_server", "--content", "\\boxed{7}"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().split()[-1]
        resp = OpenAI(base_url=base_url, api_key="x", max_retries=0).chat.completions.create(model="m", messages=USER)
        assert resp.choices[0].message.content == "\\boxed{7}"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
