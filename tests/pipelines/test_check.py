"""`delegate-check`: one ✓/✗ line per check, exit 1 on any ✗, against the scripted server and a real MLflow store."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import ViewType

from delegate.testing.scripted_server import Reply
from pipelines.check import main

DELEGATE_CHECK = Path(sys.executable).with_name("delegate-check")
# Stands for a real key: it must reach the server, never the output.
SENTINEL_KEY = "sentinel-delegate-check-key-0123456789"


def run_check(capsys, *overrides: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `delegate-check <overrides>`, run in this process."""
    try:
        main(list(overrides))
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """A launch folder with no .env, no OpenAI key and no tracking URI from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def served_overrides(server, tmp_path: Path) -> list[str]:
    """Both roles at the scripted server, the built-in problems, the MLflow store in tmp_path."""
    return [
        "llm=openai-compatible",
        f"llm.base_url={server.base_url}",
        "slm=openai-compatible",
        f"slm.base_url={server.base_url}",
        "data=sample",
        "samples=3",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
    ]


def test_passes_against_the_scripted_server_with_one_token_calls(clean_env, capsys, scripted_server):
    scripted_server.default = Reply(content="OK", completion_tokens=1)
    status, out, err = run_check(capsys, *served_overrides(scripted_server, clean_env), "strategy=router")
    lines = out.splitlines()
    assert status == 0, out + err
    assert lines and all(line.startswith("✓ ") for line in lines), out
    names = [line[2:].split(":")[0] for line in lines]
    assert names == [
        "python",
        "packages",
        "config",
        "resume",
        "run limits",
        "roles",
        "llm settings",
        "llm device",
        "llm api key",
        "slm settings",
        "slm device",
        "slm api key",
        "tracking",
        "cache",
        "data",
        "llm endpoint",
        "slm endpoint",
        "tracking store",
    ]
    assert "3 problems (samples=3 drawn with seed=123)" in out
    # One real call per role, each for a single token, never retried.
    assert len(scripted_server.requests) == 2
    assert all(request["max_tokens"] == 1 for request in scripted_server.requests)
    # The store did not exist: it is checked, not created.
    assert "does not exist yet" in out
    assert not (clean_env / "mlflow.db").exists()
    assert not (clean_env / "mlartifacts").exists()


def test_a_missing_key_fails_naming_it_and_no_key_is_ever_printed(clean_env, capsys, monkeypatch, scripted_server):
    scripted_server.default = Reply(content="OK", completion_tokens=1)
    monkeypatch.setenv("DELEGATE_CHECK_TEST_KEY", SENTINEL_KEY)
    status, out, err = run_check(
        capsys,
        "llm=gpt-4o",
        "slm=openai-compatible",
        f"slm.base_url={scripted_server.base_url}",
        "slm.api_key_env=DELEGATE_CHECK_TEST_KEY",
        "data=sample",
        f"tracking.uri=sqlite:///{clean_env}/mlflow.db",
    )
    assert status == 1
    key_line = next(line for line in out.splitlines() if line.startswith("✗ llm api key"))
    assert "$OPENAI_API_KEY is not set" in key_line
    assert "fix: export it or add it to .env" in key_line
    assert "✓ slm api key: $DELEGATE_CHECK_TEST_KEY is set (from the environment; value not shown)" in out
    # The key went where it belongs (the slm endpoint), and nowhere in what the check printed.
    assert scripted_server.headers[0]["authorization"] == f"Bearer {SENTINEL_KEY}"
    assert SENTINEL_KEY not in out + err
    # No call to api.openai.com without a key, and no second line about it: the key's line says it all.
    assert len(scripted_server.requests) == 1
    assert not any(line.startswith("✗ llm endpoint") for line in out.splitlines())
    assert err == "1 check failed\n"


def test_a_refused_key_is_reported_without_the_servers_echo_of_it(clean_env, capsys, monkeypatch, scripted_server):
    # Servers quote part of a wrong key back ("Incorrect API key provided: sk-..."): the check must not pass it on.
    scripted_server.default = Reply(status=401, content=f"Incorrect API key provided: {SENTINEL_KEY}")
    monkeypatch.setenv("DELEGATE_CHECK_TEST_KEY", SENTINEL_KEY)
    status, out, err = run_check(
        capsys, *served_overrides(scripted_server, clean_env), "llm.api_key_env=DELEGATE_CHECK_TEST_KEY"
    )
    assert status == 1
    assert (
        f"✗ llm endpoint: {scripted_server.base_url} refused the key (HTTP 401) — fix: check the key in $DELEGATE_CHECK_TEST_KEY"
        in out
    )
    assert SENTINEL_KEY not in out + err


def test_an_unreadable_dataset_fails_with_the_fix(clean_env, capsys, scripted_server):
    scripted_server.default = Reply(content="OK", completion_tokens=1)
    status, out, _ = run_check(
        capsys, *served_overrides(scripted_server, clean_env), "data.path=/nonexistent/test.jsonl"
    )
    assert status == 1
    failures = [line for line in out.splitlines() if line.startswith("✗")]
    assert failures == [
        "✗ data: data.path=/nonexistent/test.jsonl: no such file — fix: give an existing JSON-lines file"
    ]


def test_an_existing_store_is_checked_without_leaving_a_run(clean_env, capsys, scripted_server):
    from delegate.compose import compose_config
    from delegate.tracking.mlflow_run import connect_store

    scripted_server.default = Reply(content="OK", completion_tokens=1)
    overrides = served_overrides(scripted_server, clean_env)
    store = connect_store(compose_config(overrides).tracking, clean_env)
    status, out, err = run_check(capsys, *overrides)
    assert status == 0, out + err
    assert f"✓ tracking store: {store.tracking_uri} is writable; experiment 'delegate-gsm8k' exists" in out
    assert store.client.search_runs([store.experiment_id], run_view_type=ViewType.ALL) == []


def test_a_bad_override_is_one_error_line_and_status_2(clean_env, capsys):
    for override in ("llm=no-such-model", "no_such_key=1", "--verbose"):
        status, out, err = run_check(capsys, override)
        assert status == 2, override
        assert out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err


def test_help_says_what_is_checked(capsys):
    status, out, _ = run_check(capsys, "--help")
    assert status == 0
    assert out.startswith("usage: delegate-check [OVERRIDE ...]")


def test_console_script_fails_without_a_key(tmp_path, scripted_server):
    scripted_server.default = Reply(content="OK", completion_tokens=1)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "MLFLOW_TRACKING_URI")}
    done = subprocess.run(
        [
            str(DELEGATE_CHECK),
            "llm=gpt-4o",
            "slm=openai-compatible",
            f"slm.base_url={scripted_server.base_url}",
            "data=sample",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    failures = [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("✗")]
    # One line for the missing key: the endpoint it would need is not called.
    assert failures == ["✗ llm api key"]
    assert "✗ llm api key: llm.api_key_env: $OPENAI_API_KEY is not set" in done.stdout
    # The default store (mlflow.db in the launch folder) is checked, not created.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("smaples=2", "error: unknown key 'smaples' — did you mean 'samples'?\n"),
        ("strategy=oracle", "error: strategy=oracle is not an option; use one of llm, router, slm\n"),
    ],
)
def test_a_mistake_reads_as_delegate_eval_says_it(clean_env, capsys, override, line):
    status, _, err = run_check(capsys, override)
    assert (status, err) == (2, line)
