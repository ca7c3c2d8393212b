"""Jobs that start together share one fresh SQLite store safely: every run filed once, in one experiment.

Without the lock in `connect_store`, six processes opening a new mlflow.db at once run MLflow's migrations over
each other ("duplicate column name: step", "table _alembic_tmp_experiments already exists") and can leave a store
that no process can open again.
"""

import multiprocessing
from pathlib import Path

from mlflow import MlflowClient

from delegate.config.schema import TrackingConfig
from delegate.tracking.mlflow_run import connect_store, sqlite_path, store_creation_lock, tracked_run

JOBS = 6
EXPERIMENT = "race"
START_TIMEOUT_S = 120


def file_one_run(uri: str, job: int, start, results) -> None:
    """One job as a sweep starts it: wait for the others, then connect (creating the store) and file one run."""
    try:
        start.wait(timeout=START_TIMEOUT_S)
        store = connect_store(TrackingConfig(uri=uri, experiment=EXPERIMENT), Path("."))
        with tracked_run(store, f"job-{job}", {"job": str(job)}) as run:
            run.log_metrics({"job": job})
        results.put((job, store.experiment_id, run.run_id, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which names the job that failed
        results.put((job, None, None, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"))


def test_jobs_starting_together_on_a_fresh_store_each_file_one_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # The forkserver imports MLflow and its SQL store once instead of once per job; jobs are still separate processes.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "mlflow.store.tracking.sqlalchemy_store"])
    start, results = context.Barrier(JOBS), context.Queue()
    jobs = [context.Process(target=file_one_run, args=(uri, job, start, results)) for job in range(JOBS)]
    for process in jobs:
        process.start()
    reported = sorted(results.get(timeout=START_TIMEOUT_S + 60) for _ in jobs)
    for process in jobs:
        process.join(timeout=30)

    assert [error for *_, error in reported] == [None] * JOBS
    assert [process.exitcode for process in jobs] == [0] * JOBS
    assert len({experiment_id for _, experiment_id, _, _ in reported}) == 1

    client = MlflowClient(uri)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", EXPERIMENT]
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs([experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(run_id for _, _, run_id, _ in reported)
    assert sorted(r.info.run_name for r in runs) == [f"job-{job}" for job in range(JOBS)]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.metrics["job"] for r in runs) == list(range(JOBS))

    # Still usable: a new run is filed and found beside the others.
    added = client.create_run(experiment_id, run_name="after").info.run_id
    client.log_metric(added, "job", JOBS)
    client.set_terminated(added)
    assert len(client.search_runs([experiment_id])) == JOBS + 1


def test_only_sqlite_stores_are_locked(tmp_path):
    database = tmp_path / "new" / "mlflow.db"
    with store_creation_lock(f"sqlite:///{database}?timeout=30"):
        assert Path(f"{database}.lock").exists()
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("postgresql://user:pw@db/mlflow") is None
    with store_creation_lock("http://127.0.0.1:5000"):
        pass
