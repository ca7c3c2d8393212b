"""The settings check before a run: one ConfigError line per mistake, for the roles a strategy uses, and no side effects."""

import os
import socket
import time

import huggingface_hub.constants
import pytest
import torch

from delegate.compose import compose_config
from delegate.errors import ConfigError
from delegate.preflight import check_settings

# A served LLM (no torch, no weights): what most checks below change one setting of.
SERVED = ["llm=openai-compatible", "llm.base_url=http://127.0.0.1:9/v1", "strategy=llm", "data=sample"]
# Stands for a password in a URL: it must never be shown.
SECRET = "pw-sentinel-0123456789"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mistake(launch_dir, *overrides: str) -> str:
    """The one line check_settings gives for SERVED with `overrides`."""
    with pytest.raises(ConfigError) as caught:
        check_settings(compose_config([*SERVED, *overrides]), launch_dir)
    line = str(caught.value)
    assert "\n" not in line
    return line


@pytest.fixture
def launch_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_a_good_config_passes_and_creates_nothing(launch_dir):
    # In-process models (device, gguf file in its package), the default SQLite store and cache: all checked, none made.
    check_settings(compose_config(["experiment=local", "strategy=router"]), launch_dir)
    check_settings(compose_config(SERVED), launch_dir)
    assert list(launch_dir.iterdir()) == []


def test_only_the_roles_the_strategy_uses_are_checked(launch_dir):
    # The SLM's weights are nowhere, but strategy=llm never loads them.
    check_settings(compose_config([*SERVED, "slm=local", "slm.model=/nonexistent/model"]), launch_dir)
    assert mistake(launch_dir, "strategy=router", "slm=local", "slm.model=/nonexistent/model").startswith("slm.model=")


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("concurrency=0", "concurrency=0: must be at least 1; set concurrency to 1 or more"),
        ("samples=0", "samples=0: must be at least 1; set samples to 1 or more, or to null"),
        (
            "max_error_rate=1.5",
            "max_error_rate=1.5: must be between 0 and 1; set max_error_rate to a value from 0 to 1",
        ),
        ("max_cost_usd=0", "max_cost_usd=0.0: must be greater than 0; set max_cost_usd to more than 0, or to null"),
        (
            "llm.retry_backoff_s=-1",
            "llm.retry_backoff_s=-1.0: must be at least 0; set llm.retry_backoff_s to 0 or more",
        ),
        (
            "llm.retry_max_backoff_s=-0.5",
            "llm.retry_max_backoff_s=-0.5: must be at least 0; set llm.retry_max_backoff_s to 0 or more",
        ),
        (
            "llm.price_output_usd_per_1m=-2",
            "llm.price_output_usd_per_1m=-2.0: must be at least 0; set llm.price_output_usd_per_1m to 0 or more",
        ),
        (
            "llm.max_requests_in_flight=0",
            "llm.max_requests_in_flight=0: must be at least 1; set llm.max_requests_in_flight to 1 or more, or to null",
        ),
    ],
)
def test_numbers_out_of_bounds_name_the_setting_and_what_it_takes(launch_dir, override, line):
    assert mistake(launch_dir, override) == line


def test_an_in_process_models_numbers_are_checked_too(launch_dir):
    line = mistake(launch_dir, "strategy=slm", "slm=local", "device=cpu", "slm.max_new_tokens=0")
    assert line == "slm.max_new_tokens=0: must be at least 1; set slm.max_new_tokens to 1 or more"


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://user:{SECRET}@127.0.0.1:8000/v1",
        f"https://:{SECRET}@api.example.com/v1",
        f"user:{SECRET}@127.0.0.1:8000/v1",
    ],
)
def test_a_base_url_with_credentials_is_refused_without_showing_them(launch_dir, base_url):
    line = mistake(launch_dir, f"llm.base_url={base_url}")
    assert line.startswith("llm.base_url: carries credentials")
    assert "llm.api_key_env" in line
    assert SECRET not in line


@pytest.mark.parametrize("base_url", ["not-a-url", "ftp://127.0.0.1/v1", "http://", "http://127.0.0.1:port/v1"])
def test_a_base_url_that_is_not_an_http_url_is_refused(launch_dir, base_url):
    assert mistake(launch_dir, f"llm.base_url='{base_url}'") == (
        f"llm.base_url={base_url}: not an http(s) URL; give the server's URL, e.g. http://127.0.0.1:8000/v1"
    )


def test_an_api_key_variable_must_be_set_where_it_is_named(launch_dir, monkeypatch):
    monkeypatch.delenv("DELEGATE_TEST_UNSET_KEY", raising=False)
    assert mistake(launch_dir, "llm.api_key_env=DELEGATE_TEST_UNSET_KEY") == (
        "llm.api_key_env: $DELEGATE_TEST_UNSET_KEY is not set; export it or add it to .env, "
        "or set llm.api_key_env=null if http://127.0.0.1:9/v1 needs no key"
    )
    # OpenAI's API always needs one.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert mistake(launch_dir, "llm=gpt-4o").startswith("llm.api_key_env: $OPENAI_API_KEY is not set")
    # A key in ./.env counts, and its value is never shown.
    (launch_dir / ".env").write_text(f"DELEGATE_TEST_UNSET_KEY={SECRET}\n")
    check_settings(compose_config([*SERVED, "llm.api_key_env=DELEGATE_TEST_UNSET_KEY"]), launch_dir)


def test_a_tracking_server_that_does_not_answer_fails_in_seconds(launch_dir, scripted_server):
    port = free_port()
    started_s = time.perf_counter()
    line = mistake(launch_dir, f"tracking.uri=http://127.0.0.1:{port}")
    assert time.perf_counter() - started_s < 5
    assert line.startswith(f"tracking.uri=http://127.0.0.1:{port}: no answer within 3 s (")
    assert line.endswith("start the MLflow server there, or set tracking.uri=sqlite:///mlflow.db for a local store")
    # Any HTTP answer means a server is there (the check reads nothing from it).
    check_settings(compose_config([*SERVED, f"tracking.uri={scripted_server.base_url}"]), launch_dir)


def test_a_tracking_uri_from_the_environment_is_named_as_such(launch_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://x")
    assert mistake(launch_dir).startswith(
        "$MLFLOW_TRACKING_URI=bogus://x: unknown scheme 'bogus'; use sqlite:///<path>"
    )


def test_a_sqlite_store_that_cannot_be_created_is_refused(launch_dir):
    (launch_dir / "notes.txt").write_text("a file, not a folder")
    assert mistake(launch_dir, f"tracking.uri=sqlite:///{launch_dir}/notes.txt/mlflow.db") == (
        f"tracking.uri=sqlite:///{launch_dir}/notes.txt/mlflow.db: cannot be created "
        f"({launch_dir}/notes.txt is not a writable folder); set tracking.uri=sqlite:///<a writable folder>/mlflow.db"
    )


def test_a_cache_that_cannot_be_written_is_refused_unless_it_is_off(launch_dir):
    (launch_dir / "notes.txt").write_text("a file, not a folder")
    path = launch_dir / "notes.txt" / "cache" / "responses.sqlite"
    assert mistake(launch_dir, f"cache.path={path}") == (
        f"cache.path={path}: cannot be written ({launch_dir}/notes.txt is not a writable folder); "
        "set cache.path to a file in a writable folder, or cache.enabled=false"
    )
    check_settings(compose_config([*SERVED, f"cache.path={path}", "cache.enabled=false"]), launch_dir)


def test_a_device_that_is_unknown_or_absent_is_refused(launch_dir):
    in_process = ["strategy=slm", "slm=local"]
    assert (
        mistake(launch_dir, *in_process, "device=tpu")
        == "device=tpu: not a device; use one of auto, cpu, cuda, cuda:N, mps"
    )
    # The role's own setting, when it does not follow the global one.
    assert mistake(launch_dir, *in_process, "slm.device=cuda:x").startswith("slm.device=cuda:x: not a device")
    count = torch.cuda.device_count()
    if count:
        assert mistake(launch_dir, *in_process, f"device=cuda:{count}").startswith(
            f"device=cuda:{count}: there are {count} CUDA devices"
        )
    else:
        assert mistake(launch_dir, *in_process, "device=cuda").startswith("device=cuda: torch ")


def test_model_files_are_found_before_anything_loads(launch_dir):
    in_process = ["strategy=slm", "slm=local", "device=cpu"]
    gguf = mistake(launch_dir, *in_process, "slm.gguf_file=missing.gguf")
    assert gguf.startswith("slm.gguf_file=missing.gguf: not in ") and gguf.endswith(
        "use one of SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    assert mistake(launch_dir, *in_process, "slm.model=./models/smollm2") == (
        "slm.model=./models/smollm2: no such folder; give a model folder or a Hugging Face Hub id"
    )
    (launch_dir / "empty-model").mkdir()
    assert mistake(launch_dir, *in_process, f"slm.model={launch_dir}/empty-model", "slm.gguf_file=null").startswith(
        f"slm.model={launch_dir}/empty-model: {launch_dir}/empty-model holds no model (config.json and weights)"
    )
    assert mistake(launch_dir, *in_process, "slm.model=pkg://no_such_weights_package").startswith(
        "slm.model=pkg://no_such_weights_package: package no_such_weights_package is not installed"
    )


def hub_snapshot(cache: os.PathLike, repo_id: str, files: list[str]) -> None:
    """A model in the layout huggingface_hub's cache keeps: refs/main naming a snapshot folder that holds `files`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")


def test_hub_weights_come_from_the_local_cache_or_a_hub_that_answers(launch_dir, tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub_model = ["strategy=slm", "slm=qwen2.5-math-1.5b", "device=cpu"]
    assert mistake(launch_dir, *hub_model) == (
        "slm.model=Qwen/Qwen2.5-Math-1.5B-Instruct: not in the Hugging Face cache and HF_HUB_OFFLINE=1; download it once "
        "online (hf download Qwen/Qwen2.5-Math-1.5B-Instruct), or set slm.model to a local folder"
    )
    # A config without weights is not a model to load.
    hub_snapshot(cache, "Qwen/Qwen2.5-Math-1.5B-Instruct", ["config.json"])
    assert "not in the Hugging Face cache" in mistake(launch_dir, *hub_model)
    hub_snapshot(cache, "delegate-tests/cached-model", ["config.json", "model.safetensors"])
    check_settings(compose_config([*SERVED, *hub_model, "slm.model=delegate-tests/cached-model"]), launch_dir)
    # Online but the Hub does not answer: said in seconds, nothing downloaded.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")
    started_s = time.perf_counter()
    line = mistake(launch_dir, *hub_model)
    assert time.perf_counter() - started_s < 10
    assert line.startswith(
        "slm.model=Qwen/Qwen2.5-Math-1.5B-Instruct: not in the Hugging Face cache and the Hub did not answer"
    )


def test_a_key_added_with_a_plus_or_a_value_that_does_not_resolve_is_refused(launch_dir):
    assert mistake(launch_dir, "+smaples=3") == (
        "smaples: no such setting (added with +; nothing would read it); did you mean samples? (without the +)"
    )
    assert mistake(launch_dir, "+llm.max_tokns=3").endswith("did you mean llm.max_tokens? (without the +)")
    # Even in a role the strategy does not use: the job logs the whole config, and would fail there.
    assert mistake(launch_dir, "slm.device=${nope}") == "slm.device: Interpolation key 'nope' not found; fix that value"


def test_a_sample_larger_than_the_data_is_refused(launch_dir):
    assert (
        mistake(launch_dir, "samples=500")
        == "samples=500: data.builtin=sample.jsonl has 24 problems; use 1..24 or samples=null for all"
    )
