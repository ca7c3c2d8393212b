"""Faults from servers, through whole jobs (`delegate.job.run_job`) with both roles on scripted servers: a steady 429
is absorbed, a bad key or model stops the run early naming the setting, a malformed 200 is one clear error in the
record, and an empty or null reply is never cached."""

import contextlib
import io
import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from delegate.compose import compose_config
from delegate.errors import EndpointFailing
from delegate.job import run_job
from delegate.records import read_records
from delegate.run_folder import SAMPLES_FILE
from delegate.testing.scripted_server import Reply, ScriptedServer

QUESTION = re.compile(r"Problem (\d+): what is (\d+) plus (\d+)\?")
SUB_QUESTION = re.compile(r"What is (\d+) plus (\d+)\?")
TOOL = "ask_math_assistant"


def write_problems(path: Path, n: int) -> Path:
    """`n` synthetic problems as GSM8K-style JSON lines: problem i asks i + 7."""
    with path.open("w", encoding="utf-8") as lines:
        for i in range(n):
            problem = {"question": f"Problem {i}: what is {i} plus 7?", "answer": f"{i} + 7\n#### {i + 7}"}
            lines.write(json.dumps(problem) + "\n")
    return path


def problem_of(text: str) -> tuple[int, int, int]:
    """(problem number, a, b) of the problem a question is."""
    number, a, b = map(int, QUESTION.search(text).groups())
    return number, a, b


def asked(request: dict) -> tuple[int, int, int]:
    """problem_of the question an LLM request is about (its first user message)."""
    return problem_of(next(m["content"] for m in request["messages"] if m["role"] == "user"))


def llm_replies(request: dict) -> Reply:
    """The router's LLM: delegates the sum, then answers with what the tool said."""
    _, a, b = asked(request)
    if request["messages"][-1]["role"] == "tool":
        return Reply(content=f"The assistant says {a + b}, so the answer is \\boxed{{{a + b}}}.")
    return Reply(tool_calls=[{"name": TOOL, "arguments": json.dumps({"question": f"What is {a} plus {b}?"})}])


def slm_replies(request: dict) -> Reply:
    a, b = map(int, SUB_QUESTION.search(request["messages"][-1]["content"]).groups())
    return Reply(content=f"{a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}.")


def job_config(tmp_path: Path, data: Path, llm: ScriptedServer, slm: ScriptedServer, *extra: str):
    return compose_config(
        [
            f"data.path={data}",
            "data.name=synthetic",
            "strategy=router",
            "llm=openai-compatible",
            f"llm.base_url={llm.base_url}",
            "llm.model=scripted-llm",
            "slm=openai-compatible",
            f"slm.base_url={slm.base_url}",
            "slm.model=scripted-slm",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            "tracking.traces=false",
            "cache.enabled=false",
            *extra,
        ]
    )


def quiet_job(cfg, tmp_path: Path, name: str) -> dict:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run_job(cfg, tmp_path, tmp_path / name)


def test_a_steady_429_on_one_request_in_three_is_absorbed(tmp_path):
    """200 problems at concurrency 64, every third request to either server refused with a short Retry-After: every
    problem finishes, none errored or degraded, no delegation failed."""
    data = write_problems(tmp_path / "problems.jsonl", 200)
    rate_limited = Reply(status=429, content="slow down", headers={"retry-after-ms": "20", "Retry-After": "1"})
    with ScriptedServer(llm_replies) as llm, ScriptedServer(slm_replies) as slm:
        for server in (llm, slm):
            server.fail_every(3, rate_limited)
        started_s = time.monotonic()
        summary = quiet_job(job_config(tmp_path, data, llm, slm, "concurrency=64"), tmp_path, "run")
        wall_s = time.monotonic() - started_s
        requests = {"llm": len(llm.requests), "slm": len(slm.requests)}
    records = read_records(tmp_path / "run" / SAMPLES_FILE)
    print(f"\n429 every 3rd request, 200 problems, concurrency 64: {wall_s:.1f} s, requests {requests}")
    assert (summary["n_samples"], summary["n_errors"], len(records)) == (200, 0, 200)
    assert [r for r in records if r.error or r.degraded] == []
    assert [d for r in records for d in r.delegations if d.error] == []
    assert all(r.correct for r in records)
    # Each problem: two LLM calls and one SLM call answered; one request in three was a 429 on top.
    for role, answered in (("llm", 400), ("slm", 200)):
        assert requests[role] // 3 == (requests[role] - answered)


@pytest.mark.parametrize(
    ("role", "status", "line"),
    [
        ("llm", 401, r"^llm.base_url=\S+ refused the API key \(HTTP 401, 3 calls in a row\); set llm.api_key_env"),
        ("slm", 404, r"^slm.model=scripted-slm is not served at slm.base_url=\S+ \(HTTP 404, 3 calls in a row\)"),
    ],
)
def test_a_bad_key_or_model_stops_the_run_early_naming_the_setting(tmp_path, monkeypatch, role, status, line):
    monkeypatch.setenv("DELEGATE_TEST_FAULT_KEY", "sk-fault-canary-0123")
    data = write_problems(tmp_path / "problems.jsonl", 30)
    failing = Reply(status=status, content="refused", echo_headers=True)
    with ScriptedServer(llm_replies) as llm, ScriptedServer(slm_replies) as slm:
        (llm if role == "llm" else slm).set_responder(lambda request: failing)
        cfg = job_config(tmp_path, data, llm, slm, f"{role}.api_key_env=DELEGATE_TEST_FAULT_KEY")
        with pytest.raises(EndpointFailing) as caught:
            quiet_job(cfg, tmp_path, "run")
        seen = len((llm if role == "llm" else slm).requests)
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value)
    assert "sk-fault-canary" not in str(caught.value)
    # A handful of requests (the breaker's 3, and those already in flight at concurrency 4), not one per problem.
    assert seen <= 8


MALFORMED = {
    0: (Reply(raw_text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"), "is text"),
    1: (Reply(raw_text='{"id": "chatcmpl-1", "choices": [{"message": {"content": "The ans'), "not valid JSON"),
    2: (Reply(raw_body={"id": "chatcmpl-1", "object": "chat.completion", "choices": []}), "has no choices"),
    3: (Reply(raw_message={"role": "assistant", "content": None}), "neither content"),
}


def test_a_malformed_200_is_one_clear_error_in_the_record(tmp_path):
    data = write_problems(tmp_path / "problems.jsonl", 6)

    def llm_malformed(request: dict) -> Reply:
        number, _, _ = asked(request)
        return MALFORMED[number][0] if number in MALFORMED else llm_replies(request)

    with ScriptedServer(llm_malformed) as llm, ScriptedServer(slm_replies) as slm:
        overrides = ("llm.max_retries=1", "llm.retry_backoff_s=0.01", "max_error_rate=1.0")
        cfg = job_config(tmp_path, data, llm, slm, *overrides)
        summary = quiet_job(cfg, tmp_path, "run")
    records = {problem_of(r.question)[0]: r for r in read_records(tmp_path / "run" / SAMPLES_FILE)}
    assert summary["n_errors"] == len(MALFORMED)
    for number, (_, message) in MALFORMED.items():
        error = records[number].error
        assert error.startswith("MalformedResponse: the server's reply ") and message in error, error
        assert not re.search(r"IndexError|AttributeError|KeyError|TypeError|Bad Gateway|chatcmpl", error)
    assert all(records[n].correct and records[n].error is None for n in (4, 5))


def test_a_null_or_empty_reply_is_not_cached_and_the_recovered_answer_is(tmp_path):
    """The first run meets a server answering null (problem 0) or nothing (problem 1); the second, once it has
    recovered, gets the real answers from the server, not the poisoned ones from the cache."""
    data = write_problems(tmp_path / "problems.jsonl", 2)
    cache_path = tmp_path / "responses.sqlite"
    poisoned = {0: Reply(raw_message={"role": "assistant", "content": None}), 1: Reply(content="")}
    recovered = False

    def llm_flaky(request: dict) -> Reply:
        number, a, b = asked(request)
        return Reply(content=f"\\boxed{{{a + b}}}") if recovered else poisoned[number]

    with ScriptedServer(llm_flaky) as llm, ScriptedServer(slm_replies) as slm:
        overrides = (
            "strategy=llm",
            "cache.enabled=true",
            f"cache.path={cache_path}",
            "llm.max_retries=0",
            "max_error_rate=1.0",
        )
        runs = {}
        for name in ("first", "second", "third"):
            quiet_job(job_config(tmp_path, data, llm, slm, *overrides), tmp_path, name)
            runs[name] = {problem_of(r.question)[0]: r for r in read_records(tmp_path / name / SAMPLES_FILE)}
            recovered = True
        n_requests = len(llm.requests)
    assert runs["first"][0].error.startswith("MalformedResponse: ") and runs["first"][1].response == ""
    assert all(r.correct and not r.usage["llm"].cache_hits for r in runs["second"].values())
    # Asked twice per problem (poisoned, then recovered); the third run is served from the cache.
    assert n_requests == 4
    assert all(r.correct and r.usage["llm"].cache_hits == 1 for r in runs["third"].values())
    with contextlib.closing(sqlite3.connect(cache_path)) as db:
        texts = [json.loads(response)["text"] for (response,) in db.execute("SELECT response FROM responses")]
    assert sorted(texts) == ["\\boxed{7}", "\\boxed{8}"]
