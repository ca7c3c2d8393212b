"""A job logs to a live `mlflow server` over HTTP (`tracking=server`): run, params, metrics, traces, served artifacts."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from delegate.compose import compose_config
from delegate.job import run_job
from delegate.testing.scripted_server import Reply
from tests.support.cli import logged_records
from tests.support.mlflow_server import mlflow_server as running_mlflow_server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A real `mlflow server` on loopback with its own SQLite store, serving artifacts from a folder; (URL, folder)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts = root / "artifacts"
    with running_mlflow_server(
        f"sqlite:///{root / 'server.db'}", root / "server.log", "--artifacts-destination", str(artifacts)
    ) as (url, wait_healthy):
        wait_healthy()
        yield url, artifacts


@pytest.mark.slow
def test_a_job_logs_everything_to_a_tracking_server(mlflow_server, scripted_server, tmp_path, capfd):
    url, artifacts = mlflow_server
    scripted_server.default = Reply(content="So the total is \\boxed{7}.", prompt_tokens=40, completion_tokens=8)
    cfg = compose_config(
        [
            "experiment=local",
            "strategy=llm",
            "llm=openai-compatible",
            f"llm.base_url={scripted_server.base_url}",
            "samples=3",
            "tracking=server",
            f"tracking.uri={url}",
            "tracking.experiment=cluster",
        ]
    )

    summary = run_job(cfg, tmp_path, tmp_path / "outputs" / "job")

    client = MlflowClient(url)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "cluster"
    assert run.data.metrics["n_samples"] == 3
    assert run.data.metrics["avg_llm_tokens"] == 48
    assert run.data.params["tracking.uri"] == url
    assert run.data.params["llm.base_url"] == scripted_server.base_url
    assert run.data.tags["strategy"] == "llm"

    # Artifacts go through the server (mlflow-artifacts:/...) into its folder, and come back through it.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"samples.jsonl", "summary.json"}
    assert list(artifacts.rglob(f"{run.info.run_id}/artifacts/samples.jsonl"))
    records = logged_records(client, run, tmp_path / "download")
    assert len(records) == 3
    assert {r.extracted for r in records} == {"7"}

    # Traces go over HTTP too (OTLP to the server), one per problem, linked to the run.
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
    assert sorted(t.info.tags["mlflow.traceName"] for t in traces) == sorted(f"problem-{r.id}" for r in records)
    assert "could not be written" not in capfd.readouterr().err

    # Nothing was written to a local store.
    assert not (tmp_path / "mlflow.db").exists()
