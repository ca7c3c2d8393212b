"""The setup checks one at a time: settings as report lines, endpoint failures as fixes, a store probe that leaves nothing."""

import socket
import sqlite3

import pytest
import torch

from delegate.check import CheckResult, _sqlite_probe_write, check_model, check_setting, check_store
from delegate.compose import compose_config
from delegate.preflight import role_checks, setting_checks
from delegate.testing.scripted_server import Reply


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_lines_read_as_a_checklist():
    assert CheckResult(True, "data", "24 problems").line() == "✓ data: 24 problems"
    assert CheckResult(False, "data", "no file", "give one").line() == "✗ data: no file — fix: give one"


def device_line(overrides: list[str], role: str) -> CheckResult:
    [check] = [c for c in role_checks(compose_config(overrides), role) if c.name == f"{role} device"]
    return check_setting(check)


def test_device_and_dtype_are_resolved_without_loading_the_model():
    result = device_line(["llm=local", "slm=local", "device=cpu"], "slm")
    assert result.ok
    assert result.detail == "smollm2-135m would run on cpu in float32 (device=cpu, slm.dtype=auto)"
    assert device_line(["llm=gpt-4o"], "llm").detail == "none in-process; llm is served at https://api.openai.com/v1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_missing_gpu_names_the_setting_to_change():
    result = device_line(["slm=local", "device=cuda"], "slm")
    assert not result.ok
    assert result.fix.startswith("set device=auto or device=cpu")
    # A role's own setting is named when it does not follow the global one.
    assert device_line(["slm=local", "slm.device=cuda"], "slm").fix.startswith("set slm.device=auto")


def test_a_bad_device_or_dtype_fails_with_the_fix():
    bad_device = device_line(["slm=local", "device=gpu"], "slm")
    assert (bad_device.ok, bad_device.detail, bad_device.fix) == (
        False,
        "device=gpu: not a device",
        "use one of auto, cpu, cuda, cuda:N, mps",
    )
    bad_dtype = device_line(["slm=local", "device=cpu", "slm.dtype=float7"], "slm")
    assert not bad_dtype.ok
    assert bad_dtype.detail == "slm.dtype='float7' is not a torch dtype"
    assert bad_dtype.fix == "use auto, float32, bfloat16 or float16"


def test_an_endpoint_that_is_down_or_lacks_the_model_says_what_to_fix(scripted_server):
    port = free_port()
    down = check_model(
        compose_config(["slm=openai-compatible", f"slm.base_url=http://127.0.0.1:{port}/v1"]), "slm", True
    )
    assert not down.ok
    assert down.detail.startswith(f"cannot connect to http://127.0.0.1:{port}/v1")
    assert down.fix == "start the server, or point slm.base_url at one that runs"
    scripted_server.default = Reply(status=404, content="The model `nope` does not exist")
    missing = check_model(
        compose_config(["slm=openai-compatible", f"slm.base_url={scripted_server.base_url}", "slm.model=nope"]),
        "slm",
        False,
    )
    assert not missing.ok
    assert missing.detail == f"{scripted_server.base_url}: HTTP 404 for model 'nope' (strategy=llm does not use slm)"
    assert missing.fix.startswith("check slm.model")
    # The strategy does not use the slm: the failure is shown, marked `!`, and does not count.
    assert not missing.failed and missing.line().startswith("! slm endpoint: ")
    assert down.failed and down.line().startswith("✗ slm endpoint: ")


def tracking_line(overrides: list[str], launch_dir) -> CheckResult:
    [check] = [c for c in setting_checks(compose_config(overrides), launch_dir, ()) if c.name == "tracking"]
    return check_setting(check)


def test_a_store_is_checked_where_it_would_be_created_and_nothing_is_created(tmp_path):
    # MLflow makes the database and its missing folders on first use: that is fine, if a folder can be made there.
    overrides = [f"tracking.uri=sqlite:///{tmp_path}/runs/mlflow.db"]
    creatable = tracking_line(overrides, tmp_path)
    assert creatable.ok, creatable.line()
    assert creatable.detail.endswith("does not exist yet; delegate-eval will create it (the folder allows it)")
    store = check_store(compose_config(overrides), tmp_path)
    assert store.ok and store.detail.startswith("experiment 'delegate-gsm8k' will be created"), store.line()
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    blocked = tracking_line([f"tracking.uri=sqlite:///{tmp_path}/notes.txt/mlflow.db"], tmp_path)
    assert not blocked.ok
    assert blocked.detail.endswith(f"cannot be created ({tmp_path}/notes.txt is not a writable folder)")
    assert blocked.fix == "set tracking.uri=sqlite:///<a writable folder>/mlflow.db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_write_probe_leaves_the_database_as_it_was(tmp_path):
    # A plain SQLite file stands for the store: the probe's table must be rolled back, the journal gone.
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE experiments (name TEXT)")
    _sqlite_probe_write(path)
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert tables == ["experiments"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
