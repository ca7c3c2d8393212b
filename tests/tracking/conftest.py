"""A fresh SQLite MLflow store with one experiment and one run, for the trace tests."""

from typing import NamedTuple

import pytest
from mlflow import MlflowClient


class StoreRun(NamedTuple):
    uri: str
    client: MlflowClient
    experiment_id: str
    run_id: str


@pytest.fixture
def store_run(tmp_path) -> StoreRun:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("traces", artifact_location=(tmp_path / "mlartifacts").as_uri())
    return StoreRun(uri, client, experiment_id, client.create_run(experiment_id).info.run_id)
