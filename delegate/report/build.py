"""Build one report: pick the runs, read their records, analyse, write the files, and log them as an MLflow run."""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from delegate.errors import ConfigError
from delegate.report.analysis import Report, analyse
from delegate.report.plots import write_plots
from delegate.report.render import render_markdown, runs_note, write_json, write_tables
from delegate.report.runs import REPORT_RUNS_TAG, REPORT_TAG, load_runs, select_runs
from delegate.run_folder import REPORT_JSON, REPORT_MD
from delegate.tracking.mlflow_run import KIND_TAG, Store, redacted_uri, sqlite_path, tracked_run

# MLflow refuses longer tag values (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
MAX_TAG_VALUE_CHARS = 8000
NOTE_TAG = "mlflow.note.content"


@dataclass(frozen=True)
class BuiltReport:
    """Where the report went: its folder, the Markdown printed, every file written, and the MLflow run (if logged)."""

    out_dir: Path
    markdown: str
    files: list[Path]
    report_run_id: str | None
    experiment_name: str


def default_out_dir(launch_dir: Path, now: datetime | None = None) -> Path:
    """outputs/reports/<date>/<time> under the launch directory, beside Hydra's outputs/<date>/<time> job folders."""
    now = now or datetime.now()
    return launch_dir / "outputs" / "reports" / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S-%f")


def _write_files(
    report: Report, out_dir: Path, experiments: dict[str, str], header: str, extra: dict
) -> tuple[str, list[Path]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out_dir)
    markdown = render_markdown(report, experiments, plots, header)
    markdown_path = out_dir / REPORT_MD
    markdown_path.write_text(markdown, encoding="utf-8")
    files = [markdown_path, *write_tables(report, out_dir), write_json(report, out_dir / REPORT_JSON, extra), *plots]
    return markdown, files


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TAG_VALUE_CHARS else text[: MAX_TAG_VALUE_CHARS - 1] + "…"


def build_report(
    tracking_uri: str,
    out_dir: Path,
    *,
    experiments: Iterable[str] = (),
    run_ids: Iterable[str] = (),
    sweep_dir: Path | None = None,
    log_run: bool = True,
) -> BuiltReport:
    """Compare the finished delegate runs named by `run_ids`, by the jobs of `sweep_dir` and in `experiments` (all
    finished runs of each; `delegate-gsm8k` when nothing is named), write report.md, the CSVs, report.json and the
    PNGs into `out_dir`, and with `log_run` log them as artifacts (at the artifact root) of a new run
    `report-<n>-runs` in the first compared run's experiment, tagged delegate.report=true and
    delegate.report.runs=<ids>, its description a table of the runs. ConfigError for a selection that finds nothing.
    """
    from mlflow import MlflowClient

    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_file():
        # Opening a missing SQLite store would create an empty one here: say where none was found instead.
        raise ConfigError(
            f"no MLflow store at {redacted_uri(tracking_uri)}; run delegate-eval first, or pass --tracking-uri"
        )
    # One bar per downloaded samples.jsonl would drown the report (the CLI's and the sweep's alike).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri=tracking_uri)
    selection = select_runs(client, tracking_uri, experiments, run_ids, sweep_dir)
    runs = load_runs(client, selection)
    report = analyse(runs, selection.skipped)
    experiment_names = {i: client.get_experiment(i).name for i in dict.fromkeys(r.experiment_id for r in runs)}
    experiment_id = runs[0].experiment_id
    extra = {"generated_at": datetime.now().isoformat(timespec="seconds"), "tracking_uri": redacted_uri(tracking_uri)}
    header = f"{len(runs)} runs from {redacted_uri(tracking_uri)}, generated {extra['generated_at']}."
    if not log_run:
        markdown, files = _write_files(report, out_dir, experiment_names, header, extra | {"report_run_id": None})
        return BuiltReport(out_dir, markdown, files, None, experiment_names[experiment_id])
    tags = {
        REPORT_TAG: "true",
        KIND_TAG: "report",
        REPORT_RUNS_TAG: _cut(",".join(r.run_id for r in runs)),
        NOTE_TAG: _cut(runs_note(report, experiment_names)),
    }
    store = Store(client, tracking_uri, experiment_id)
    with tracked_run(store, f"report-{len(runs)}-runs", tags) as run:
        header += f" Logged as MLflow run {run.run_id} in experiment '{experiment_names[experiment_id]}'."
        markdown, files = _write_files(report, out_dir, experiment_names, header, extra | {"report_run_id": run.run_id})
        for path in files:
            run.log_artifact(path)
    return BuiltReport(out_dir, markdown, files, run.run_id, experiment_names[experiment_id])
