"""Run `delegate-eval` in a subprocess and read back what it left in the MLflow store."""

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from delegate.records import SampleRecord, read_records
from delegate.run_folder import SAMPLES_FILE

DELEGATE_EVAL = Path(sys.executable).with_name("delegate-eval")


def run_eval(
    cwd: Path, *overrides: str, timeout_s: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`delegate-eval <overrides>` in `cwd`, its output captured; `env`: the whole environment (default: this one)."""
    return subprocess.run(
        [str(DELEGATE_EVAL), *overrides], cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=env
    )


def mlflow_runs(cwd: Path, experiment: str = "delegate-gsm8k") -> tuple[MlflowClient, list]:
    """The store at <cwd>/mlflow.db and its runs in `experiment`, oldest first."""
    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def logged_records(client: MlflowClient, run, download_dir: Path) -> list[SampleRecord]:
    """The samples.jsonl the run logged as an artifact, read through the record contract's loader."""
    path = client.download_artifacts(run.info.run_id, SAMPLES_FILE, str(download_dir / run.info.run_id))
    return read_records(Path(path))
