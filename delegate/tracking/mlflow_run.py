"""Open one MLflow run per job in a SQLite store by default, and log config, metrics and artifacts to it."""

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delegate.config.schema import TrackingConfig
from delegate.redaction import redact, redact_config, register_url_credentials

# The one line that ended a run FAILED or stopped it (an error the job raised), for the UI and for scripts.
ERROR_TAG = "delegate.error"
# What wrote a run: eval (delegate-eval, delegate-reproduce), rescore, report; runs written before the tag existed
# carry none and are eval runs unless they carry delegate.report.
KIND_TAG = "delegate.kind"
# The model roles the run's strategy used, in order, comma-separated ("llm,slm"): the report labels methods by them.
ROLES_TAG = "delegate.roles"
# MLflow's param values are capped; a longer one (a long prompt) is cut rather than failing the run.
MAX_PARAM_VALUE_CHARS = 6000
# The SQL store refuses batches of more than 100 params.
PARAMS_PER_BATCH = 100


def resolve_tracking_uri(cfg: TrackingConfig, launch_dir: Path) -> str:
    """`tracking.uri`, else $MLFLOW_TRACKING_URI, else sqlite:///<launch dir>/mlflow.db, made absolute now; its
    credentials (a database's password) are registered with the redactor."""
    uri = cfg.uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    register_url_credentials(uri)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str((launch_dir / uri[len(prefix) :]).resolve())
    return uri


def redacted_uri(uri: str) -> str:
    """The URI as messages may show it: its userinfo (`user:password@`) becomes `***@`, as `redact` does anywhere."""
    return redact(uri)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///<path>` store (query string dropped); None for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix) :].split("?", 1)[0])


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database, not wherever the process happens to run."""
    database = sqlite_path(tracking_uri)
    return (database.parent / "mlartifacts").as_uri() if database is not None else None


def store_creation_lock(tracking_uri: str) -> AbstractContextManager:
    """An inter-process lock on `<database>.lock` beside a SQLite store; a no-op for any other store.

    Jobs that start together (a joblib or submitit sweep, several terminals) would otherwise all run MLflow's
    schema migrations on a fresh database at once, which leaves it broken (duplicate columns, a half-applied
    alembic version; MLflow issues #4123, #10334). A database server or `mlflow server` serialises this itself.
    The lock is an OS file lock (flock), released when its holder exits, even killed; the empty lock file stays.
    """
    database = sqlite_path(tracking_uri)
    if database is None:
        return nullcontext()
    from filelock import FileLock

    database.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{database}.lock")


def ensure_experiment(client, name: str, artifact_location: str | None) -> str:
    """The experiment's id, creating it if needed; safe when parallel jobs race to create it."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def git_commit() -> str:
    """The commit of the delegate checkout that ran the job, or 'unknown' outside git."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(tree: dict[str, Any]) -> dict[str, str]:
    """Nested config → {'llm.model': 'gpt-4o', ...} with string values MLflow accepts, secrets redacted
    (`redact_config`: values under secret-looking keys, URL credentials, known keys). Resume compares a run's saved
    `.hydra/config.yaml` (redacted) with the live config through it, so both sides are compared redacted."""
    return _flat(redact_config(tree), "")


def _flat(tree: dict[str, Any], prefix: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flat(value, f"{name}.")
        else:
            flat[name] = str(value)[:MAX_PARAM_VALUE_CHARS]
    return flat


class TrackedRun:
    """The calls a job makes on its MLflow run."""

    def __init__(self, client, tracking_uri: str, experiment_id: str, run_id: str):
        self.client = client
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.run_id = run_id

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + PARAMS_PER_BATCH])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()])

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def delete_tags(self, names: tuple[str, ...]) -> None:
        """Remove those of these tags the run has (a resumed run's stale reasons for stopping)."""
        present = self.client.get_run(self.run_id).data.tags
        for name in names:
            if name in present:
                self.client.delete_tag(self.run_id, name)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)


@dataclass(frozen=True)
class Store:
    client: Any
    tracking_uri: str
    experiment_id: str


def connect_store(cfg: TrackingConfig, launch_dir: Path) -> Store:
    """The MLflow store and experiment this job logs to (created if needed, one process at a time for SQLite)."""
    from mlflow import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = resolve_tracking_uri(cfg, launch_dir)
    with store_creation_lock(uri):
        # Opening the client creates or migrates the database; both must happen under the lock.
        client = MlflowClient(tracking_uri=uri)
        experiment_id = ensure_experiment(
            client, cfg.experiment, cfg.artifact_location or default_artifact_location(uri)
        )
    return Store(client, uri, experiment_id)


@contextmanager
def tracked_run(store: Store, run_name: str, tags: dict[str, str], run_id: str | None = None) -> Iterator[TrackedRun]:
    """A new run (or `run_id`, reopened) that ends FINISHED, KILLED on Ctrl-C (or SIGTERM), else FAILED if the job
    raised — or the status the exception names in `run_status` (a budget stop ends KILLED: stopped on purpose)."""
    client = store.client
    if run_id is None:
        run_id = client.create_run(
            store.experiment_id, run_name=run_name, tags=tags | {"mlflow.runName": run_name}
        ).info.run_id
    else:
        client.update_run(run_id, status="RUNNING")
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    status = "FAILED"
    try:
        yield TrackedRun(client, store.tracking_uri, store.experiment_id, run_id)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as error:
        status = getattr(error, "run_status", "FAILED")
        # Why, where the run is looked at (the terminal's line is gone once the job ends): its first line, redacted.
        client.set_tag(run_id, ERROR_TAG, redact(str(error).splitlines()[0] if str(error) else type(error).__name__))
        raise
    finally:
        client.set_terminated(run_id, status=status)
