"""One evaluation job: problems → strategy → scorer → samples.jsonl, summary.json and an MLflow run."""

import asyncio
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from delegate import strict_json
from delegate.data import Split, load_split
from delegate.errors import RunFailed
from delegate.evaluation import Evaluation
from delegate.limits import LimitWatcher
from delegate.metrics import summarize
from delegate.models.cache import ResponseCache
from delegate.preflight import check_settings, response_cache_path
from delegate.records import SampleRecord, SampleWriter
from delegate.redaction import install_log_redaction, redact_files
from delegate.resume import OUTPUT_DIR_TAG, PreviousRun, find_previous_run, run_folder_lock, write_run_info
from delegate.run_folder import HYDRA_DIR, SAMPLES_FILE, SUMMARY_FILE
from delegate.signals import sigterm_as_interrupt
from delegate.strategies import Strategy, get_strategy
from delegate.sweep import sweep_tags
from delegate.tables import summary_table
from delegate.tracking.mlflow_run import (
    ERROR_TAG,
    KIND_TAG,
    ROLES_TAG,
    Store,
    TrackedRun,
    connect_store,
    flatten,
    git_commit,
    tracked_run,
)
from delegate.tracking.trace_writer import TraceWriter
from delegate.tracking.traces import trace_verdict, traces_enabled
from delegate.tracking.verdicts import log_run_verdicts, ui_hint

# The limit that stopped a run early (max_error_rate, max_cost_usd), and the line saying what was measured.
STOPPED_TAG = "delegate.stopped"
STOP_REASON_TAG = "delegate.stop_reason"


def budget_for_all(watcher: LimitWatcher) -> float:
    """A `max_cost_usd` that covers every problem of the run: the finished problems' mean cost times their number,
    with a quarter to spare, in two significant figures (rounded up)."""
    projected_usd = watcher.cost_usd / max(watcher.n_finished, 1) * watcher.n_problems * 1.25
    magnitude = 10 ** (math.floor(math.log10(projected_usd)) - 1) if projected_usd > 0 else 1
    return math.ceil(projected_usd / magnitude) * magnitude


def default_run_name(cfg: DictConfig, strategy: Strategy) -> str:
    """e.g. slm-smollm2-135m-n3-s123: strategy, the models it uses, sample count and seed."""
    models = "+".join(cfg[role].name for role in strategy.roles)
    return f"{strategy.name}-{models}-n{cfg.samples if cfg.samples is not None else 'all'}-s{cfg.seed}"


def run_params(cfg: DictConfig) -> dict[str, str]:
    """The run's MLflow params: the resolved config, flattened (`llm.model`), without `resume`."""
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return flatten({key: value for key, value in resolved.items() if key != "resume"})


def log_results(
    run: TrackedRun,
    output_dir: Path,
    records: list[SampleRecord],
    metrics: dict[str, float],
    method: str,
    run_name: str,
    data_cfg: Any,
) -> dict[str, Any]:
    """The end of a run that has its records: summary.json written and logged with the metrics, the per-problem
    table, description and dataset input (`log_run_verdicts`), and the summary table and the UI's address printed.
    Returns the summary ({method, run_name, run_id, **metrics})."""
    summary = {"method": method, "run_name": run_name, "run_id": run.run_id, **metrics}
    (output_dir / SUMMARY_FILE).write_text(strict_json.dumps(summary) + "\n", encoding="utf-8")
    run.log_metrics(metrics)
    run.log_artifact(output_dir / SUMMARY_FILE)
    log_run_verdicts(run, records, summary, data_cfg)
    print(summary_table([summary]))
    print(ui_hint(run.tracking_uri, run.experiment_id, run.run_id))
    return summary


def open_cache(cfg: DictConfig, launch_dir: Path) -> ResponseCache | None:
    """The response cache the config names (None when `cache.enabled` is false)."""
    return ResponseCache(response_cache_path(cfg, launch_dir)) if cfg.cache.enabled else None


def progress_bar(
    evaluation: Evaluation, writer: SampleWriter, done: int, todo: int
) -> tuple[tqdm, Callable[[SampleRecord], None]]:
    """A progress bar over the run's problems, and the `on_record` that writes each record as it finishes, closes
    its trace with the verdict and moves the bar (accuracy so far beside it)."""
    # Redrawn at most twice a second: a log file (no terminal) gets a few lines, not one per problem.
    progress = tqdm(total=done + todo, initial=done, desc=evaluation.strategy.name, unit="problem", mininterval=0.5)
    solved = correct = 0

    def on_record(record: SampleRecord) -> None:
        nonlocal solved, correct
        writer.write(record)
        trace_verdict(record)
        solved += 1
        correct += record.correct
        progress.set_postfix(accuracy=f"{correct / solved:.1%}", refresh=False)
        progress.update(1)

    return progress, on_record


def run_job(
    cfg: DictConfig, launch_dir: Path, output_dir: Path, extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the configured experiment (or continue it, with `resume`); returns the summary written to summary.json.

    `extra_tags` are added to the MLflow run's tags (delegate-reproduce's delegate.reproduces=<run id>).
    Raises ConfigError (a setting; nothing was created), RunFailed (nothing usable), RunStopped (a run-level limit
    was reached; what finished is kept) and KeyboardInterrupt (Ctrl-C or SIGTERM; the run ends KILLED, resumable).
    """
    # Again here: a launcher may run this job in another process, where no console script installed it.
    install_log_redaction()
    # Hydra saved the overrides and composed config as given: a URL's credentials or a secret-looking key's value
    # leave them before anything reads or logs the folder.
    redact_files(output_dir / HYDRA_DIR)
    strategy = get_strategy(cfg.strategy.name)
    # Every setting, before the store, the run or a model exists: a mistake leaves nothing behind.
    check_settings(cfg, launch_dir)
    split = load_split(OmegaConf.to_object(cfg.data), cfg.samples, cfg.seed)
    run_name = cfg.run_name or default_run_name(cfg, strategy)
    store = connect_store(cfg.tracking, launch_dir)
    previous = find_previous_run(cfg.resume, launch_dir, store, cfg) if cfg.resume else None
    if previous is not None:
        output_dir = previous.output_dir
    # One job at a time writes a run folder: a second resume of it is refused before it reads or writes anything.
    with run_folder_lock(output_dir, cfg.resume), sigterm_as_interrupt():
        return _run_locked(
            cfg,
            strategy=strategy,
            split=split,
            run_name=run_name,
            store=store,
            previous=previous,
            launch_dir=launch_dir,
            output_dir=output_dir,
            extra_tags=extra_tags,
        )


def _run_locked(
    cfg: DictConfig,
    *,
    strategy: Strategy,
    split: Split,
    run_name: str,
    store: Store,
    previous: PreviousRun | None,
    launch_dir: Path,
    output_dir: Path,
    extra_tags: dict[str, str] | None,
) -> dict[str, Any]:
    """run_job's work once its run folder is locked: the MLflow run, the problems left, the metrics."""
    ids = {p.id for p in split.problems}
    finished = [r for r in previous.finished_records(cfg.redo_degraded) if r.id in ids] if previous else []
    finished_ids = {r.id for r in finished}
    todo = [p for p in split.problems if p.id not in finished_ids]
    output_dir.mkdir(parents=True, exist_ok=True)
    samples_path = output_dir / SAMPLES_FILE
    cache = open_cache(cfg, launch_dir)
    # Built (keys read) before the MLflow run exists; nothing loads until the first call.
    evaluation = Evaluation.from_config(cfg, cache, split)
    # Problems finished before a resume count toward the budget and the error rate.
    watcher = LimitWatcher(evaluation.limits, len(split.problems), finished)
    tags = (
        {
            "strategy": strategy.name,
            **evaluation.model_names,
            OUTPUT_DIR_TAG: str(output_dir.resolve()),
            KIND_TAG: "eval",
            ROLES_TAG: ",".join(strategy.roles),
            # A resumed run keeps the commit it started on, and says which one finished it.
            "git_commit_resumed" if previous else "git_commit": git_commit(),
        }
        | sweep_tags()
        | (extra_tags or {})
    )
    with tracked_run(store, run_name, tags, run_id=previous.run_id if previous else None) as run:
        if previous is None:
            run.log_params(run_params(cfg))
            write_run_info(output_dir, run.run_id)
        else:
            # The reasons an earlier session stopped are not this one's.
            run.delete_tags((STOPPED_TAG, STOP_REASON_TAG, ERROR_TAG))
            print(f"resuming {output_dir}: {len(finished)} problems finished, {len(todo)} to go")
        writer = SampleWriter(samples_path)
        progress, on_record = progress_bar(evaluation, writer, len(finished), len(todo))

        async def solve_the_rest() -> list[SampleRecord]:
            async with evaluation:
                return await evaluation.run(todo, on_record, watcher)

        try:
            trace_sink = TraceWriter(run.tracking_uri, run.experiment_id, run.run_id) if cfg.tracking.traces else None
            tracing = traces_enabled(trace_sink) if trace_sink is not None else nullcontext()
            with tracing:
                records = finished + asyncio.run(solve_the_rest())
        finally:
            progress.close()
            writer.close()
            if cache is not None:
                cache.close()
            # Whatever finished is kept in the run, even when the job stops early.
            run.log_artifact(samples_path)
            run.log_artifact(output_dir / HYDRA_DIR, HYDRA_DIR)
        records.sort(key=lambda r: r.id)
        # Rows left out of the split because their gold is not a number: never scored, always counted.
        metrics = summarize(records) | {"n_skipped": float(evaluation.n_skipped)}
        summary = log_results(run, output_dir, records, metrics, evaluation.method, run_name, cfg.data)
        stopped = watcher.stopped
        if stopped is not None:
            # Why the run stopped, where the MLflow UI shows it; the job's last line says it too, with the command
            # that continues it (for a budget, one that covers every problem at the mean cost so far).
            run.set_tags({STOPPED_TAG: stopped.limit, STOP_REASON_TAG: str(stopped)})
            if stopped.limit == "max_cost_usd":
                stopped.resume_with = {"max_cost_usd": f"{budget_for_all(watcher):g}"}
            raise stopped
        failure = evaluation.run_failure(records)
        if failure is not None:
            raise RunFailed(failure)
    return summary
