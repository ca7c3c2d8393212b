"""A canary API key never leaves: `delegate-eval` (a real process) with the key in the environment, or only in `.env`,
against LLM and SLM servers that echo the request's Authorization header in error bodies and in replies; then every
file under the launch directory (the MLflow store, artifacts, run folder, logs, response cache), what the job printed,
and what the LLM's provider was sent, are searched for the key, plain, URL-encoded and in base64 at any alignment."""

import json
import os
from pathlib import Path

import pytest

from delegate.testing.scripted_server import Reply, ScriptedServer
from tests.support.canary import carries
from tests.support.cli import run_eval

# A made-up value no secret scanner mistakes for a real key.
CANARY = "sentinel-delegate-canary-key-5c7e1d90a4"
KEY_VARIABLE = "DELEGATE_CANARY_API_KEY"


def echoing_llm(request: dict) -> Reply:
    """Delegates once, then answers with the request's headers (the key among them) echoed back."""
    if request.get("tools") and not any(m["role"] == "tool" for m in request["messages"]):
        question = next(m["content"] for m in request["messages"] if m["role"] == "user")
        return Reply(tool_calls=[{"name": "ask_math_assistant", "arguments": json.dumps({"question": question[:400]})}])
    return Reply(content="So the answer is \\boxed{48}. Seen:", echo_headers=True)


def echoing_slm(request: dict) -> Reply:
    """Fails every other call with the headers echoed in the error body; echoes them in its reply otherwise."""
    if sum(len(m.get("content") or "") for m in request["messages"]) % 2:
        return Reply(status=503, content="overloaded; you sent", echo_headers=True)
    return Reply(content="The answer is \\boxed{48}. Headers:", echo_headers=True)


def launch_dir_texts(root: Path) -> dict[Path, str]:
    """Every file under the launch directory but the `.env` the key is kept in, read as text (bytes as latin-1)."""
    return {
        path: path.read_bytes().decode("latin-1") for path in root.rglob("*") if path.is_file() and path.name != ".env"
    }


@pytest.mark.parametrize("key_in", ["environment", "dotenv"])
def test_a_canary_key_appears_nowhere(tmp_path, key_in):
    env = {k: v for k, v in os.environ.items() if k != KEY_VARIABLE}
    if key_in == "environment":
        env[KEY_VARIABLE] = CANARY
    else:
        (tmp_path / ".env").write_text(f"{KEY_VARIABLE}={CANARY}\n", encoding="utf-8")
    with ScriptedServer(echoing_llm) as llm, ScriptedServer(echoing_slm) as slm:
        # Every fourth LLM request fails with the headers echoed in the error body: those problems end in `error`.
        llm.fail_every(4, Reply(status=500, content="upstream failed, request was", echo_headers=True))
        done = run_eval(
            tmp_path,
            "experiment=local",
            "strategy=router",
            "samples=6",
            "max_error_rate=1.0",
            "llm=openai-compatible",
            f"llm.base_url={llm.base_url}",
            "llm.model=echo-llm",
            "llm.max_retries=0",
            f"llm.api_key_env={KEY_VARIABLE}",
            "slm=openai-compatible",
            f"slm.base_url={slm.base_url}",
            "slm.model=echo-slm",
            "slm.max_retries=0",
            f"slm.api_key_env={KEY_VARIABLE}",
            env=env,
        )
    # The key was really sent, and really echoed: the test would catch a leak.
    assert all(headers.get("authorization") == f"Bearer {CANARY}" for headers in llm.headers + slm.headers)
    assert len(llm.requests) >= 6 and len(slm.requests) >= 2
    assert done.returncode in (0, 1), done.stderr[-3000:]

    leaks = [str(path) for path, text in launch_dir_texts(tmp_path).items() if carries(text, CANARY)]
    assert leaks == []
    assert not carries(done.stdout, CANARY) and not carries(done.stderr, CANARY)
    # Nothing an SLM server said reached the LLM's provider: the tool message names the failure, not its body.
    sent_to_llm = json.dumps(llm.requests)
    assert not carries(sent_to_llm, CANARY) and "overloaded; you sent" not in sent_to_llm

    # What was scanned: the run's records, artifacts, store and the job's log.
    scanned = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert {"samples.jsonl", "mlflow.db", "config.yaml", "overrides.yaml"} <= scanned
    records = [
        json.loads(line) for p in tmp_path.glob("outputs/**/samples.jsonl") for line in p.read_text().splitlines()
    ]
    # Each kind of echo happened, and was redacted: an LLM error, an SLM error (a degraded problem), the replies.
    assert any(r["error"] and "Bearer [REDACTED]" in r["error"] for r in records)
    assert any(r["degraded"] and "Bearer [REDACTED]" in r["failures"][0] for r in records)
    assert any("Bearer [REDACTED]" in r["response"] for r in records)


def test_a_key_in_a_base_urls_query_string_never_leaves(tmp_path, scripted_server):
    # Azure-style: the key rides in the URL (`?api-key=...`), not in a header. The run, its params, its `.hydra/`
    # files and their MLflow copies, and what it printed must not hold it.
    scripted_server.set_responder(lambda body: Reply(content="So the answer is \\boxed{48}."))
    base_url = f"{scripted_server.base_url}?api-version=2024-10-21&api-key={CANARY}"
    # Unquoted, Hydra cannot read the override: the error line names it without the key.
    unread = run_eval(tmp_path, "strategy=llm", f"llm.base_url={base_url}", env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert unread.returncode == 2 and "api-key=***" in unread.stderr
    assert not carries(unread.stdout + unread.stderr, CANARY)
    done = run_eval(
        tmp_path,
        "experiment=local",
        "strategy=llm",
        "llm=openai-compatible",
        f"llm.base_url='{base_url}'",
        "samples=2",
        "llm.max_retries=0",
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    leaks = [str(path) for path, text in launch_dir_texts(tmp_path).items() if carries(text, CANARY)]
    assert not leaks
    assert not carries(done.stdout + done.stderr, CANARY)
    saved = (next(tmp_path.glob("outputs/*/*/.hydra/config.yaml"))).read_text(encoding="utf-8")
    assert "api-version=2024-10-21&api-key=" in saved
