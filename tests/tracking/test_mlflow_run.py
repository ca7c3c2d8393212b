"""The tracking URI resolves once to an absolute store; tracked runs end FINISHED or FAILED in a real SQLite store."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from delegate import redaction
from delegate.config.schema import TrackingConfig
from delegate.redaction import MARKER, redact, redact_files
from delegate.tracking.mlflow_run import (
    MAX_PARAM_VALUE_CHARS,
    PARAMS_PER_BATCH,
    connect_store,
    default_artifact_location,
    ensure_experiment,
    flatten,
    redacted_uri,
    resolve_tracking_uri,
    tracked_run,
)


@pytest.fixture
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# resolve_tracking_uri


def test_default_is_sqlite_in_launch_dir(tmp_path, no_env_uri):
    uri = resolve_tracking_uri(TrackingConfig(), tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_relative_sqlite_is_made_absolute_against_launch_dir(tmp_path, no_env_uri):
    uri = resolve_tracking_uri(TrackingConfig(uri="sqlite:///stores/runs.db"), tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve() / 'stores' / 'runs.db'}"
    assert Path(uri.removeprefix("sqlite:///")).is_absolute()


def test_relative_launch_dir_still_gives_absolute_path(no_env_uri):
    uri = resolve_tracking_uri(TrackingConfig(), Path("."))
    assert uri == f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def test_absolute_sqlite_is_kept(tmp_path, no_env_uri):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert resolve_tracking_uri(TrackingConfig(uri=uri), Path("/launch")) == uri


def test_explicit_uri_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(TrackingConfig(uri="http://127.0.0.1:6000"), tmp_path) == "http://127.0.0.1:6000"


def test_env_wins_over_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(TrackingConfig(), tmp_path) == "http://127.0.0.1:5000"


def test_relative_sqlite_from_env_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri(TrackingConfig(), tmp_path) == f"sqlite:///{tmp_path.resolve() / 'env.db'}"


def test_artifacts_go_beside_a_sqlite_store(tmp_path):
    assert default_artifact_location(f"sqlite:///{tmp_path / 'mlflow.db'}") == (tmp_path / "mlartifacts").as_uri()
    assert default_artifact_location("http://127.0.0.1:5000") is None


# flatten


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://delegate:s3cret@db.example:5432/mlflow", "postgresql://***@db.example:5432/mlflow"),
        ("sqlite:////work/mlflow.db", "sqlite:////work/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_a_uri_in_a_message_never_shows_its_password(uri, shown):
    assert redacted_uri(uri) == shown


def test_flatten_nested_config():
    tree = {"llm": {"model": "gpt-4o", "price": 2.5, "extra": {"a": None}}, "samples": None, "seed": 123, "ok": True}
    assert flatten(tree) == {
        "llm.model": "gpt-4o",
        "llm.price": "2.5",
        "llm.extra.a": "None",
        "samples": "None",
        "seed": "123",
        "ok": "True",
    }


def test_a_tracking_uri_registers_its_password(tmp_path, monkeypatch):
    monkeypatch.setattr(redaction, "_registered", set())
    resolve_tracking_uri(TrackingConfig(uri="postgresql://delegate:sentinel-db-password@db.example/mlflow"), tmp_path)
    assert redact("connection failed: password sentinel-db-password") == f"connection failed: password {MARKER}"


# Spelt so that no secret scanner takes it for a real key.
CANARY = "sentinel-delegate-params-canary-0123456789"


def test_flatten_redacts_secrets_and_keeps_what_only_mentions_them(monkeypatch):
    monkeypatch.setenv("DELEGATE_PARAMS_TEST_KEY", CANARY)
    tree = {
        "llm": {
            "base_url": f"http://delegate:{CANARY}@127.0.0.1:8000/v1",
            "api_key_env": "DELEGATE_PARAMS_TEST_KEY",
            "max_tokens": 64,
            "max_tokens_param": "max_tokens",
            "price_input_usd_per_1m": 2.5,
        },
        "extra": {"api_key": "sentinel-pasted-into-config", "prompt": f"never mention {CANARY}"},
    }
    assert flatten(tree) == {
        "llm.base_url": "http://***@127.0.0.1:8000/v1",
        "llm.api_key_env": "DELEGATE_PARAMS_TEST_KEY",
        "llm.max_tokens": "64",
        "llm.max_tokens_param": "max_tokens",
        "llm.price_input_usd_per_1m": "2.5",
        "extra.api_key": MARKER,
        "extra.prompt": f"never mention {MARKER}",
    }


def test_a_redacted_saved_config_flattens_like_the_live_one(tmp_path, monkeypatch):
    """What resume compares: `.hydra/config.yaml` as redact_files left it, against the live config."""
    monkeypatch.setenv("DELEGATE_PARAMS_TEST_KEY", CANARY)
    live = {"llm": {"base_url": f"http://delegate:{CANARY}@127.0.0.1:8000/v1", "max_tokens": 64}, "seed": 7}
    OmegaConf.save(OmegaConf.create(live), tmp_path / "config.yaml")
    redact_files(tmp_path)
    assert CANARY not in (tmp_path / "config.yaml").read_text(encoding="utf-8")
    assert flatten(OmegaConf.to_container(OmegaConf.load(tmp_path / "config.yaml"))) == flatten(live)


def test_flatten_cuts_long_values():
    flat = flatten({"strategy": {"prompt": "x" * (MAX_PARAM_VALUE_CHARS + 10)}, "tags": ["a", "b"]})
    assert flat["strategy.prompt"] == "x" * MAX_PARAM_VALUE_CHARS
    assert flat["tags"] == "['a', 'b']"


# tracked_run against a real SQLite store

STORE_URI = "sqlite:///mlflow.db"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    """One SQLite store for the module: creating one runs MLflow's migrations (about a second)."""
    return tmp_path_factory.mktemp("launch")


@pytest.fixture(scope="module")
def client(store_dir):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=resolve_tracking_uri(TrackingConfig(uri=STORE_URI), store_dir))


@pytest.fixture
def cfg(request, no_env_uri) -> TrackingConfig:
    """Tracking into the shared store, in an experiment of the test's own."""
    return TrackingConfig(uri=STORE_URI, experiment=f"delegate-{request.node.name}")


def test_finished_run_has_tags_params_metrics_and_artifacts(tmp_path, store_dir, cfg, client):
    artifact = tmp_path / "summary.json"
    artifact.write_text('{"accuracy": 0.5}\n', encoding="utf-8")
    folder = tmp_path / "hydra_out"
    folder.mkdir()
    (folder / "config.yaml").write_text("seed: 123\n", encoding="utf-8")

    with tracked_run(
        connect_store(cfg, store_dir), "llm-gpt-4o-n3-s123", {"strategy": "llm", "git_commit": "abc"}
    ) as run:
        run.log_params({"llm.model": "gpt-4o", "samples": "3"})
        run.log_metrics({"accuracy": 0.5, "n_samples": 3})
        run.log_artifact(artifact)
        run.log_artifact(folder, ".hydra")
        run.log_artifact(tmp_path / "absent.jsonl")  # nothing to log, and no error
        run_id = run.run_id

    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.info.run_name == "llm-gpt-4o-n3-s123"
    assert logged.data.tags["strategy"] == "llm"
    assert logged.data.tags["git_commit"] == "abc"
    assert logged.data.tags["mlflow.runName"] == "llm-gpt-4o-n3-s123"
    assert logged.data.params == {"llm.model": "gpt-4o", "samples": "3"}
    assert logged.data.metrics == {"accuracy": 0.5, "n_samples": 3.0}
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.name == cfg.experiment
    assert experiment.artifact_location == (store_dir.resolve() / "mlartifacts").as_uri()
    artifact_paths = {a.path for a in client.list_artifacts(run_id)}
    assert artifact_paths == {"summary.json", ".hydra"}
    assert [a.path for a in client.list_artifacts(run_id, ".hydra")] == [".hydra/config.yaml"]
    assert (store_dir / "mlflow.db").is_file()
    assert (store_dir / "mlartifacts").is_dir()


def test_run_whose_body_raises_is_failed(store_dir, cfg, client):
    with pytest.raises(RuntimeError, match="boom"):
        with tracked_run(connect_store(cfg, store_dir), "failing", {}) as run:
            run.log_metrics({"accuracy": 0.0})
            run_id = run.run_id
            raise RuntimeError("boom")
    logged = client.get_run(run_id)
    assert logged.info.status == "FAILED"
    assert logged.info.end_time is not None
    assert logged.data.metrics == {"accuracy": 0.0}


def test_interrupted_run_is_killed(store_dir, cfg, client):
    with pytest.raises(KeyboardInterrupt):
        with tracked_run(connect_store(cfg, store_dir), "interrupted", {}) as run:
            run_id = run.run_id
            raise KeyboardInterrupt
    assert client.get_run(run_id).info.status == "KILLED"


def test_logged_params_carry_no_secret(store_dir, cfg, client, monkeypatch):
    monkeypatch.setenv("DELEGATE_PARAMS_TEST_KEY", CANARY)
    tree = {
        "llm": {"base_url": f"http://delegate:{CANARY}@127.0.0.1:8000/v1", "api_key_env": "DELEGATE_PARAMS_TEST_KEY"}
    }
    with tracked_run(connect_store(cfg, store_dir), "secret-params", {}) as run:
        run.log_params(flatten(tree))
        run_id = run.run_id
    params = client.get_run(run_id).data.params
    assert params == {"llm.base_url": "http://***@127.0.0.1:8000/v1", "llm.api_key_env": "DELEGATE_PARAMS_TEST_KEY"}


def test_more_params_than_one_batch(store_dir, cfg, client):
    params = {f"p.{i:03d}": str(i) for i in range(PARAMS_PER_BATCH * 2 + 50)}
    with tracked_run(connect_store(cfg, store_dir), "many-params", {}) as run:
        run.log_params(params)
        run_id = run.run_id
    assert client.get_run(run_id).data.params == params


def test_runs_share_one_experiment(store_dir, cfg, client):
    with tracked_run(connect_store(cfg, store_dir), "first", {}) as first:
        pass
    with tracked_run(connect_store(cfg, store_dir), "second", {}) as second:
        pass
    experiment_ids = {client.get_run(r.run_id).info.experiment_id for r in (first, second)}
    assert len(experiment_ids) == 1
    assert len(client.search_runs(list(experiment_ids))) == 2


def test_ensure_experiment_twice_returns_same_id(client):
    first = ensure_experiment(client, "twice", None)
    assert ensure_experiment(client, "twice", None) == first
    assert client.get_experiment_by_name("twice").experiment_id == first


def test_ensure_experiment_survives_losing_the_race(client):
    """Another job creates the experiment between our lookup and our create."""
    existing = client.create_experiment("raced")

    class LateLookup:
        def __init__(self):
            self.lookups = 0

        def get_experiment_by_name(self, name):
            self.lookups += 1
            return None if self.lookups == 1 else client.get_experiment_by_name(name)

        def create_experiment(self, name, artifact_location=None):
            return client.create_experiment(name, artifact_location=artifact_location)

    racing = LateLookup()
    assert ensure_experiment(racing, "raced", None) == existing
    assert racing.lookups == 2
