"""Re-score a finished run without calling any model: its records judged again by the scorers its saved config
names (overrides such as `data.scorer=symbolic` or `data.scorers=[exact]` applied), written as a new MLflow run
tagged `delegate.rescores=<run id>` and `delegate.kind=rescore`, so a scorer fix or a second scorer needs no re-run.

Everything but the verdicts (responses, tokens, latency, cost, errors) is the original's, record for record.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf

from delegate.config.schema import TrackingConfig
from delegate.data.loader import scorers_of
from delegate.errors import ConfigError
from delegate.job import log_results, run_params
from delegate.metrics import summarize
from delegate.records import SampleRecord, SampleWriter, judged, read_records
from delegate.report.runs import run_method_label
from delegate.reproduce import (
    MetricComparison,
    compare_metrics,
    default_output_dir,
    find_original_run,
    rebuild_config,
    save_hydra_files,
)
from delegate.resume import OUTPUT_DIR_TAG, write_run_info
from delegate.run_folder import HYDRA_DIR, SAMPLES_FILE
from delegate.scoring.base import get_scorer, score_with
from delegate.tracking.mlflow_run import ERROR_TAG, KIND_TAG, connect_store, git_commit, tracked_run

RESCORES_TAG = "delegate.rescores"
# The scorers of a re-scoring, primary first, comma-separated.
SCORERS_TAG = "delegate.scorers"
# Tags of the original that say how that run went, not what its records are: not carried over.
_NOT_CARRIED = (
    "mlflow.",
    "delegate.stopped",
    "delegate.stop_reason",
    "delegate.reproduces",
    OUTPUT_DIR_TAG,
    ERROR_TAG,
    "git_commit",
)


@dataclass(frozen=True)
class Rescoring:
    """A re-scoring's outcome: its run and folder, the scorers, and each metric beside the original's."""

    original_run_id: str
    run_id: str
    output_dir: Path
    scorers: tuple[str, ...]
    comparisons: list[MetricComparison]
    # Problems whose primary verdict (`correct`) differs from the original's.
    n_changed: int
    n_problems: int


def rescored(record: SampleRecord, scorers: tuple[str, ...]) -> SampleRecord:
    """`record` judged by `scorers` (names, the primary first), each comparing against the gold as it reads it.

    Raises ConfigError naming the setting when the primary scorer cannot read the record's gold (a scorer of numbers
    on a symbolic answer): such a problem could never be judged fairly.
    """
    primary = get_scorer(scorers[0])
    if primary.read_gold(record.gold) is None:
        raise ConfigError(
            f"data.scorer={scorers[0]}: the gold answer of problem {record.id} ({record.gold!r}) is "
            f"{primary.unusable_gold}; re-score with a scorer that reads it"
        )
    return judged(record, score_with(scorers, record.response, record.gold))


def rescore(
    reference: str, overrides: list[str], cwd: Path, tracking_uri: str | None = None, output_dir: Path | None = None
) -> Rescoring:
    """Re-score the run `reference` names (a run folder or an MLflow run id, as for delegate-reproduce) with the
    scorers of its saved config after `overrides`; 0 model requests. The new run goes into the original's store and
    experiment, its records, summary and `.hydra/` into `output_dir` (default outputs/rescore/...).

    Raises ConfigError for a reference, store, override or scorer that is wrong, or a run with no records.
    """
    with tempfile.TemporaryDirectory(prefix="delegate-rescore-") as download_dir:
        original = find_original_run(reference, cwd, tracking_uri, Path(download_dir))
        cfg, hydra_cfg = rebuild_config(original.hydra_dir, overrides)
        client = MlflowClient(original.tracking_uri)
        original_run = client.get_run(original.run_id)
        try:
            samples = client.download_artifacts(original.run_id, SAMPLES_FILE, download_dir)
        except (MlflowException, OSError):
            raise ConfigError(f"{reference}: the run has no {SAMPLES_FILE} artifact; nothing to re-score") from None
        records = read_records(Path(samples))
    if not records:
        raise ConfigError(f"{reference}: the run's {SAMPLES_FILE} holds no problems; nothing to re-score")
    scorers = scorers_of(OmegaConf.to_object(cfg.data))
    new_records = [rescored(record, scorers) for record in sorted(records, key=lambda r: r.id)]
    before = {r.id: r.correct for r in records}

    output_dir = (output_dir or default_output_dir(cwd, cfg.strategy.name, "rescore")).resolve()
    save_hydra_files(cfg, hydra_cfg, output_dir, original.launch_dir)
    writer = SampleWriter(output_dir / SAMPLES_FILE)
    for record in new_records:
        writer.write(record)
    writer.close()

    original_metrics = original_run.data.metrics
    metrics = {name: float(value) for name, value in summarize(new_records).items()}
    if "n_skipped" in original_metrics:
        # Rows the original left out: the re-scoring has no record of them either.
        metrics["n_skipped"] = original_metrics["n_skipped"]
    experiment = client.get_experiment(original_run.info.experiment_id)
    store = connect_store(TrackingConfig(uri=original.tracking_uri, experiment=experiment.name), original.launch_dir)
    tags = {key: value for key, value in original_run.data.tags.items() if not key.startswith(_NOT_CARRIED)} | {
        KIND_TAG: "rescore",
        RESCORES_TAG: original.run_id,
        SCORERS_TAG: ",".join(scorers),
        OUTPUT_DIR_TAG: str(output_dir),
        "git_commit": git_commit(),
    }
    run_name = f"{original_run.info.run_name}-rescored-{'+'.join(scorers)}"
    with tracked_run(store, run_name, tags) as run:
        run.log_params(run_params(cfg))
        write_run_info(output_dir, run.run_id)
        run.log_artifact(output_dir / SAMPLES_FILE)
        run.log_artifact(output_dir / HYDRA_DIR, HYDRA_DIR)
        method = run_method_label(original_run.data.tags, records)
        log_results(run, output_dir, new_records, metrics, method, run_name, cfg.data)
    return Rescoring(
        original_run_id=original.run_id,
        run_id=run.run_id,
        output_dir=output_dir,
        scorers=scorers,
        comparisons=compare_metrics(original_metrics, metrics, list(metrics)),
        n_changed=sum(before[r.id] != r.correct for r in new_records),
        n_problems=len(new_records),
    )
