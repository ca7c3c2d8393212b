"""A real peer, no code of ours on the other side: llama.cpp's OpenAI-compatible server as the router's LLM."""

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from scripts.serve_llama_cpp import server_command
from tests.support.cli import logged_records, mlflow_runs, run_eval

LLAMA_CPP_SPEC = "llama-cpp-python[server]==0.3.36"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(base_url: str, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"llama.cpp server not answering at {base_url} after {timeout_s} s")


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None:
        # Built from source the first time (about 5 minutes); pip caches the wheel.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", LLAMA_CPP_SPEC], check=True)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_cpp") / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(server_command(port), stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(base_url, server)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_router_delegates_through_real_llama_cpp_tool_calls(tmp_path, llama_cpp_server):
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=router",
        "samples=2",
        "llm=openai-compatible",
        f"llm.base_url={llama_cpp_server}",
        "llm.model=smollm2",
        "llm.max_tokens=128",
        "llm.timeout_s=120",
        "llm.max_retries=0",
        "strategy.max_tool_calls=2",
        "slm.max_new_tokens=48",
        timeout_s=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == 2 and all(r.error is None for r in records)

    answered = [d for r in records for d in r.delegations if d.answered]
    assert answered, "no real tool call reached the SLM"
    for record in records:
        # What the SLM was charged is exactly what its calls reported, one call per answered delegation.
        calls = [d for d in record.delegations if d.answered]
        assert record.usage["slm"].calls == len(calls)
        assert record.usage["slm"].prompt_tokens == sum(d.slm_prompt_tokens for d in calls)
        assert record.usage["slm"].completion_tokens == sum(d.slm_completion_tokens for d in calls)
        assert record.tool_calls == len(record.delegations) + record.events.get("over_limit", 0)
        # Every LLM turn was a real call with usage reported by llama.cpp.
        llm_turns = sum(m["role"] == "assistant" for m in record.transcript)
        assert record.usage["llm"].calls == llm_turns and record.usage["llm"].prompt_tokens > 0
    metrics = run.data.metrics
    assert metrics["avg_slm_tokens"] == pytest.approx(sum(r.usage["slm"].tokens for r in records) / 2)
    assert metrics["avg_llm_tokens"] == pytest.approx(sum(r.usage["llm"].tokens for r in records) / 2)
    assert metrics["avg_tool_calls"] == pytest.approx(sum(r.tool_calls for r in records) / 2)
    assert metrics["delegation_rate"] > 0
