"""At the end of a Hydra sweep (-m): one summary table with a row per job (sweep_summary.csv), then the full report,
logged to one run that the sweep's job runs are nested under in the MLflow UI."""

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from delegate.errors import ConfigError
from delegate.redaction import redact_files
from delegate.run_folder import RUN_INFO_FILE, SUMMARY_FILE, SWEEP_REPORT_DIR, SWEEP_SUMMARY_FILE
from delegate.tables import summary_table
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri

# On every job run of a sweep and on its parent run: the sweep folder (absolute). The UI can group runs by it.
SWEEP_TAG = "delegate.sweep"
# MLflow's own tag: the UI lists a run under its parent.
PARENT_RUN_TAG = "mlflow.parentRunId"


def sweep_dir_of(hydra_cfg: Any) -> Path:
    """The sweep folder of a Hydra config (`hydra.sweep.dir`, made absolute against the launch directory)."""
    sweep_dir = Path(hydra_cfg.sweep.dir)
    return sweep_dir if sweep_dir.is_absolute() else Path(hydra_cfg.runtime.cwd) / sweep_dir


def sweep_tags() -> dict[str, str]:
    """{delegate.sweep: <sweep folder>} for a job that a Hydra sweep (-m) runs, in whatever process its launcher
    starts; {} otherwise (a single run, or a job run from code)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    return {SWEEP_TAG: str(sweep_dir_of(HydraConfig.get()))}


def sweep_run_name(sweep_dir: Path) -> str:
    """e.g. sweep-2026-11-29-18-40-00-123456 for outputs/multirun/2026-11-29/18-40-00-123456."""
    return f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}"


def report_command(sweep_dir: Path, tracking_uri: str) -> str:
    """The delegate-report command that compares a sweep's runs (printed, so a user can run it again; a password in
    the URI shows as ***)."""
    return shlex.join(["delegate-report", "--sweep", str(sweep_dir), "--tracking-uri", redacted_uri(tracking_uri)])


def group_sweep_runs(tracking_uri: str, sweep_dir: Path, parent_run_id: str) -> int:
    """Make `parent_run_id` the sweep's run: name it `sweep-<folder>`, tag it with the sweep, log sweep_summary.csv
    to it, and nest every job run (each job folder's run_info.json) under it. Returns the number of job runs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run_ids = [
        json.loads(p.read_text(encoding="utf-8"))["run_id"] for p in sorted(sweep_dir.glob(f"*/{RUN_INFO_FILE}"))
    ]
    client.update_run(parent_run_id, name=sweep_run_name(sweep_dir))
    client.set_tag(parent_run_id, SWEEP_TAG, str(sweep_dir))
    if (sweep_dir / SWEEP_SUMMARY_FILE).exists():
        client.log_artifact(parent_run_id, str(sweep_dir / SWEEP_SUMMARY_FILE))
    for run_id in run_ids:
        # The jobs tag themselves already; a job from before this version, or resumed outside the sweep, may not.
        client.set_tag(run_id, SWEEP_TAG, str(sweep_dir))
        client.set_tag(run_id, PARENT_RUN_TAG, parent_run_id)
    return len(run_ids)


def unfinished_jobs(sweep_dir: Path, tracking_uri: str) -> tuple[list[str], int]:
    """The sweep's job folders whose job did not end with a FINISHED MLflow run (a settings mistake, every problem
    failed, interrupted), and how many job folders there are. Read from the folders and the store, so it holds for
    jobs that ran in other processes (joblib, submitit) too."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    jobs = sorted(folder.parent for folder in sweep_dir.glob("*/.hydra"))
    client = MlflowClient(tracking_uri=tracking_uri)
    unfinished = []
    for job in jobs:
        try:
            run_id = json.loads((job / RUN_INFO_FILE).read_text(encoding="utf-8"))["run_id"]
            finished = client.get_run(run_id).info.status == "FINISHED"
        except (OSError, ValueError, KeyError, MlflowException):
            finished = False
        if not finished:
            unfinished.append(job.name)
    return unfinished, len(jobs)


class SweepSummary(Callback):
    # Set at the end of a sweep run in this process: (job folders that did not finish, number of jobs).
    outcome: tuple[list[str], int] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra saved the sweep's multirun.yaml with the overrides as given: no secret stays in it.
        redact_files(sweep_dir_of(config.hydra))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = sweep_dir_of(config.hydra)
        launch_dir = Path(config.hydra.runtime.cwd)
        SweepSummary.outcome = unfinished_jobs(sweep_dir, resolve_tracking_uri(config.tracking, launch_dir))
        summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"))]
        if not summaries:
            return
        pd.DataFrame(summaries).to_csv(sweep_dir / SWEEP_SUMMARY_FILE, index=False)
        print(f"\nSweep summary ({sweep_dir}):")
        print(summary_table(summaries))
        report_run_id = self.report(config, sweep_dir, launch_dir)
        if report_run_id is not None:
            self.group(config, sweep_dir, launch_dir, report_run_id)

    @staticmethod
    def report(config: DictConfig, sweep_dir: Path, launch_dir: Path) -> str | None:
        """The report over the sweep's runs (paired tests, oracle, plots), written to <sweep>/report and logged; the
        report run's id, None when there is no report."""
        from delegate.report import build_report

        tracking_uri = resolve_tracking_uri(config.tracking, launch_dir)
        command = report_command(sweep_dir, tracking_uri)
        try:
            built = build_report(tracking_uri, sweep_dir / SWEEP_REPORT_DIR, sweep_dir=sweep_dir)
        except ConfigError as error:
            print(f"no report for this sweep: {error}\nonce that is fixed: {command}")
            return None
        print(f"\n{built.markdown}")
        print(f"report written to {built.out_dir}; report run {built.report_run_id}. Again with: {command}")
        return built.report_run_id

    @staticmethod
    def group(config: DictConfig, sweep_dir: Path, launch_dir: Path, parent_run_id: str) -> None:
        """The report run becomes the sweep's run in the MLflow UI, its jobs nested under it; a failure is one line."""
        tracking_uri = resolve_tracking_uri(config.tracking, launch_dir)
        try:
            jobs = group_sweep_runs(tracking_uri, sweep_dir, parent_run_id)
        except Exception as error:  # noqa: BLE001 - the sweep's results and report are written; only the grouping is missing
            first_line = (str(error).splitlines() or [""])[0][:300]
            print(
                f"delegate: the sweep's runs could not be grouped in the MLflow store: {type(error).__name__}: {first_line}",
                file=sys.stderr,
            )
            return
        print(f"MLflow: {jobs} job runs nested under the sweep's run {sweep_run_name(sweep_dir)} ({parent_run_id})")
