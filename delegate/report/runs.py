"""Find the delegate runs to compare in an MLflow store and read each one's per-problem records."""

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException

from delegate.config.schema import TrackingConfig
from delegate.errors import ConfigError
from delegate.records import LEGACY_ROLES, IncompatibleRecords, SampleRecord, read_records, record_roles
from delegate.records import method_label as records_method_label
from delegate.run_folder import RUN_INFO_FILE, SAMPLES_FILE
from delegate.tracking.mlflow_run import KIND_TAG, ROLES_TAG, redacted_uri

# Tags on the run a report logs itself to; runs carrying REPORT_TAG are never compared.
REPORT_TAG = "delegate.report"
REPORT_RUNS_TAG = "delegate.report.runs"
DEFAULT_EXPERIMENT = TrackingConfig().experiment
# Tables and plots list runs in this order of strategy (others after, by name).
STRATEGY_ORDER = ("llm", "slm", "router")
RUNS_PER_PAGE = 1000


@dataclass
class LoadedRun:
    """One finished delegate run and its records, with the labels the report shows for it."""

    run_id: str
    run_name: str
    experiment_id: str
    strategy: str
    # e.g. "router (gpt-4o -> qwen2.5-math-1.5b)": the strategy and the models of the roles it uses, in order.
    method: str
    records: list[SampleRecord]
    # `method`, plus the run name where another run has the same method: unique within one report.
    label: str = ""

    @property
    def problems(self) -> dict[tuple[str, int], SampleRecord]:
        """The records by problem identity (dataset, id)."""
        return {(r.dataset, r.id): r for r in self.records}


@dataclass
class Selection:
    """The MLflow runs (entities) chosen for the report, and one line for each run left out and why."""

    runs: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def sweep_run_ids(sweep_dir: Path) -> list[str]:
    """The MLflow run ids of a Hydra sweep's jobs (each job folder holds run_info.json); ConfigError if there are none."""
    if not sweep_dir.is_dir():
        raise ConfigError(
            f"--sweep {sweep_dir}: no such folder; pass a sweep folder such as outputs/multirun/<date>/<time>"
        )
    infos = sorted(sweep_dir.glob(f"*/{RUN_INFO_FILE}"))
    if not infos:
        raise ConfigError(
            f"--sweep {sweep_dir}: no job folders with {RUN_INFO_FILE}; pass the folder a `delegate-eval -m` sweep "
            "wrote (outputs/multirun/<date>/<time>)"
        )
    return [json.loads(path.read_text(encoding="utf-8"))["run_id"] for path in infos]


def _experiment_runs(client, name: str, tracking_uri: str) -> list:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise ConfigError(_no_runs_message([name], tracking_uri))
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            max_results=RUNS_PER_PAGE,
            page_token=token,
            order_by=["attributes.start_time ASC"],
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _no_runs_message(experiments: list[str], tracking_uri: str) -> str:
    names = ", ".join(f"'{name}'" for name in experiments)
    return (
        f"no finished delegate runs in experiment {names} at {redacted_uri(tracking_uri)}; "
        "run delegate-eval first or pass --tracking-uri"
    )


def select_runs(
    client,
    tracking_uri: str,
    experiments: Iterable[str] = (),
    run_ids: Iterable[str] = (),
    sweep_dir: Path | None = None,
) -> Selection:
    """The finished delegate runs named by id, by a sweep folder, and in each experiment (default: delegate-gsm8k
    when nothing is named). Left out: report runs (with a line when named by id), and with a line saying why,
    unfinished runs, runs without a `strategy` tag (not made by delegate-eval), and runs of another kind than
    `eval` (`delegate.kind`: a re-scoring) unless named by id. ConfigError for an unknown run id
    or experiment, or when nothing is left."""
    ids = list(run_ids) + (sweep_run_ids(sweep_dir) if sweep_dir is not None else [])
    names = list(experiments) or ([] if ids else [DEFAULT_EXPERIMENT])
    candidates = []
    for run_id in ids:
        try:
            candidates.append(client.get_run(run_id))
        except MlflowException:
            raise ConfigError(
                f"run {run_id}: no such run at {redacted_uri(tracking_uri)}; check the id or pass --tracking-uri"
            ) from None
    for name in names:
        candidates.extend(_experiment_runs(client, name, tracking_uri))
    selection, seen = Selection(), set()
    for run in candidates:
        if run.info.run_id in seen:
            continue
        seen.add(run.info.run_id)
        who = f"run {run.info.run_name} ({run.info.run_id})"
        if run.data.tags.get(REPORT_TAG) == "true":
            # Reports found in an experiment are no news; a report named by id is worth a word.
            if run.info.run_id in ids:
                selection.skipped.append(f"{who}: a report run, not a delegate-eval run")
        elif "strategy" not in run.data.tags:
            selection.skipped.append(f"{who}: not a delegate-eval run (no `strategy` tag)")
        elif run.data.tags.get(KIND_TAG, "eval") != "eval" and run.info.run_id not in ids:
            # A re-scoring found in an experiment would stand beside its own original: named by id, it is compared.
            selection.skipped.append(f"{who}: a {run.data.tags[KIND_TAG]} run; name it with --runs to compare it")
        elif run.info.status != "FINISHED":
            selection.skipped.append(f"{who}: {run.info.status}, not finished")
        else:
            selection.runs.append(run)
    if not selection.runs:
        if names and not ids:
            raise ConfigError(_no_runs_message(names, tracking_uri))
        raise ConfigError(f"none of the runs given is a finished delegate run ({'; '.join(selection.skipped)})")
    return selection


# The roles of the strategies runs written before the `delegate.roles` tag could have used.
_LEGACY_STRATEGY_ROLES = {"llm": ("llm",), "slm": ("slm",), "router": ("llm", "slm")}


def method_label(
    strategy: str, model_names: dict[str, str], records: list[SampleRecord], roles_tag: str | None = None
) -> str:
    """'<strategy> (<model> -> <model>)' over the roles the strategy used, as delegate.job labels a run: the run's
    `delegate.roles` tag, else (a run written before it) the roles of the three strategies of that time, else the
    roles that made calls."""
    if roles_tag:
        roles = tuple(roles_tag.split(","))
    elif strategy in _LEGACY_STRATEGY_ROLES:
        roles = _LEGACY_STRATEGY_ROLES[strategy]
    else:
        roles = tuple(role for role in record_roles(records) if any(r.usage[role].calls for r in records))
    return records_method_label(strategy, roles, model_names)


def run_method_label(tags: dict[str, str], records: list[SampleRecord]) -> str:
    """`method_label` of a run, from its MLflow tags (`strategy`, `<role>=<model>`, `delegate.roles`) and records."""
    models = {role: tags[role] for role in (*LEGACY_ROLES, *record_roles(records)) if role in tags}
    return method_label(tags["strategy"], models, records, tags.get(ROLES_TAG))


def _strategy_rank(strategy: str) -> int:
    return STRATEGY_ORDER.index(strategy) if strategy in STRATEGY_ORDER else len(STRATEGY_ORDER)


def load_runs(client, selection: Selection) -> list[LoadedRun]:
    """Each selected run with the records of its samples.jsonl artifact, ordered llm, slm, router, then others.

    A run without a samples.jsonl artifact, or with an empty one, is left out with a line added to
    `selection.skipped`; a file of another record version raises ConfigError naming the run.
    """
    loaded = []
    with tempfile.TemporaryDirectory(prefix="delegate-report-") as download_dir:
        for run in selection.runs:
            run_id, run_name = run.info.run_id, run.info.run_name
            try:
                path = client.download_artifacts(run_id, SAMPLES_FILE, str(Path(download_dir) / run_id))
            except (MlflowException, OSError):
                selection.skipped.append(f"run {run_name} ({run_id}): no {SAMPLES_FILE} artifact")
                continue
            try:
                records = read_records(Path(path))
            except IncompatibleRecords as error:
                raise ConfigError(f"run {run_name} ({run_id}): {error}") from None
            if not records:
                selection.skipped.append(f"run {run_name} ({run_id}): {SAMPLES_FILE} holds no problems")
                continue
            label = run_method_label(run.data.tags, records)
            loaded.append(
                LoadedRun(run_id, run_name, run.info.experiment_id, run.data.tags["strategy"], label, records)
            )
    if not loaded:
        raise ConfigError(f"no run with records to compare ({'; '.join(selection.skipped)})")
    loaded.sort(key=lambda r: (_strategy_rank(r.strategy), r.method, r.run_name))
    label_runs(loaded)
    return loaded


def label_runs(runs: list[LoadedRun]) -> None:
    """Set each run's `label`: its method, with the run name added where methods repeat (and the id where names do)."""
    methods = [r.method for r in runs]
    for run in runs:
        run.label = run.method if methods.count(run.method) == 1 else f"{run.method} [{run.run_name}]"
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} {run.run_id[:8]}"
