"""Continue an interrupted job: find its run folder and MLflow run, and keep every problem it finished."""

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from delegate.config.roles import model_roles
from delegate.config.schema import DataConfig
from delegate.errors import ConfigError
from delegate.records import SampleRecord, parse_record, record_lines
from delegate.run_folder import (
    HYDRA_DIR,
    LOCK_FILE,
    RUN_INFO_FILE,
    SAMPLES_FILE,
    SAVED_CONFIG_FILE,
    SAVED_OVERRIDES_FILE,
)
from delegate.tracking.mlflow_run import Store, flatten, redacted_uri, resolve_tracking_uri, sqlite_path

OUTPUT_DIR_TAG = "delegate.output_dir"
# How a call is made, never what it returns: a resume may retry harder or wait longer than the interrupted job.
_CALL_SETTINGS = ("timeout_s", "max_retries", "retry_backoff_s", "retry_max_backoff_s", "max_requests_in_flight")
# Settings that may differ between the interrupted job and the one that continues it: none changes a result (nor
# does any model role's `_CALL_SETTINGS`).
MAY_DIFFER = ("resume", "concurrency", "cache", "tracking.traces", "redo_degraded", "max_error_rate", "max_cost_usd")


def may_differ(cfg: DictConfig) -> tuple[str, ...]:
    """MAY_DIFFER, and how each model role of `cfg` makes its calls (`<role>.timeout_s`, ...)."""
    return (*MAY_DIFFER, *(f"{role}.{key}" for role in model_roles(cfg) for key in _CALL_SETTINGS))


@dataclass(frozen=True)
class PreviousRun:
    output_dir: Path
    run_id: str

    def finished_records(self, redo_degraded: bool = True) -> list[SampleRecord]:
        """The records to keep (see read_finished_records); read under the run folder's lock."""
        return read_finished_records(self.output_dir / SAMPLES_FILE, redo_degraded)


@contextmanager
def run_folder_lock(folder: Path, resume: str | None) -> Iterator[None]:
    """Hold `<folder>/.delegate.lock` (an OS file lock, released when the holder exits, even killed) while a job
    writes the folder; ConfigError at once when another job holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        setting = f"resume={resume}" if resume else f"run folder {folder}"
        raise ConfigError(
            f"{setting}: another delegate-eval is writing this run folder now; wait for it to end (or stop it) "
            "and resume then"
        ) from None
    try:
        yield
    finally:
        lock.release()


def write_run_info(output_dir: Path, run_id: str) -> None:
    (output_dir / RUN_INFO_FILE).write_text(json.dumps({"run_id": run_id}) + "\n", encoding="utf-8")


def read_finished_records(samples_path: Path, redo_degraded: bool = True) -> list[SampleRecord]:
    """One record per problem solved without error; the file is mended to hold just those, so appends stay valid.

    Dropped: a line cut short by a kill, a repeated id, a problem whose model call failed (resume tries it again),
    and, with `redo_degraded`, a problem whose answer a model failure shaped (`degraded`: the SLM failed and the LLM
    answered alone). A whole line that is not a record of this version raises IncompatibleRecords: it was not cut
    by a kill.
    """
    if not samples_path.exists():
        return []
    text = samples_path.read_text(encoding="utf-8")
    lines = record_lines(text)
    records: dict[int, SampleRecord] = {}
    kept: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        record = parse_record(data, f"{samples_path}:{number}")
        if record.id not in records and record.error is None and not (redo_degraded and record.degraded):
            records[record.id] = record
            kept.append(line)
    # Also mend a last record that lost its newline, or the next append would join it.
    if len(kept) != len(lines) or (text and not text.endswith("\n")):
        samples_path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return list(records.values())


def _config_differences(previous_config: Path, cfg: DictConfig) -> list[str]:
    saved = OmegaConf.load(previous_config)
    if "data" in saved:
        # Data settings added since the run was saved (data.scorer, ...) read as their defaults: what that run did.
        saved.data = OmegaConf.merge(OmegaConf.to_container(OmegaConf.structured(DataConfig)), saved.data)
    before = flatten(OmegaConf.to_container(saved, resolve=True))
    now = flatten(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    allowed = may_differ(cfg)
    return sorted(
        key
        for key in before.keys() | now.keys()
        if before.get(key) != now.get(key) and not any(key == m or key.startswith(f"{m}.") for m in allowed)
    )


def read_run_folder(reference: str, base_dir: Path) -> tuple[Path, str | None]:
    """`reference` as a folder (absolute, or relative to `base_dir`) and the MLflow run id its run_info.json names;
    None when it is not a run folder of delegate-eval."""
    folder = Path(reference).expanduser()
    folder = folder if folder.is_absolute() else base_dir / folder
    if not (folder / RUN_INFO_FILE).is_file():
        return folder, None
    return folder, json.loads((folder / RUN_INFO_FILE).read_text(encoding="utf-8"))["run_id"]


def find_previous_run(resume: str, launch_dir: Path, store: Store, cfg: DictConfig) -> PreviousRun:
    """`resume` is a run folder (absolute or relative to the launch dir) or an MLflow run id in this store."""
    folder, run_id = read_run_folder(resume, launch_dir)
    if run_id is None:
        try:
            run = store.client.get_run(resume)
        except MlflowException:
            raise ConfigError(
                f"resume={resume}: neither a run folder of delegate-eval nor a run id in {redacted_uri(store.tracking_uri)}; "
                "give the folder (outputs/...) or the MLflow run id"
            ) from None
        run_id = run.info.run_id
        folder = Path(run.data.tags.get(OUTPUT_DIR_TAG, ""))
        if not (folder / RUN_INFO_FILE).is_file():
            raise ConfigError(f"resume={resume}: its run folder {folder} is gone; resume needs its {SAMPLES_FILE}")
    try:
        store.client.get_run(run_id)
    except MlflowException:
        raise ConfigError(
            f"resume={resume}: its MLflow run {run_id} is not in {redacted_uri(store.tracking_uri)}; "
            "launch from the same directory or set tracking.uri to the store it used"
        ) from None
    check_same_config(resume, folder, cfg)
    return PreviousRun(output_dir=folder, run_id=run_id)


def check_same_config(resume: str, folder: Path, cfg: DictConfig) -> None:
    """ConfigError unless `cfg` matches the config the run in `folder` was started with (but for `may_differ`); the
    line gives the overrides that run was started with, from its `.hydra/overrides.yaml`."""
    differences = _config_differences(folder / HYDRA_DIR / SAVED_CONFIG_FILE, cfg)
    if not differences:
        return
    saved = folder / HYDRA_DIR / SAVED_OVERRIDES_FILE
    overrides = [str(o) for o in OmegaConf.load(saved)] if saved.is_file() else []
    overrides = [o for o in overrides if not o.startswith("resume=")]
    again = f"delegate-eval {shlex.join(overrides)} resume={resume}" if saved.is_file() else "the same overrides"
    raise ConfigError(
        f"resume={resume}: the config differs from the interrupted run's in {', '.join(differences[:5])}; "
        f"resume with the overrides it was started with: {again}"
    )


def check_resume(cfg: DictConfig, launch_dir: Path) -> str:
    """Before anything is created: `resume` names a run of delegate-eval (its folder, or its MLflow run id in the
    store `tracking` names, which must exist already), no other job is writing its folder now, and the config
    matches the one it was started with (find_previous_run's checks). Creates nothing but the folder's (empty) lock
    file; opens the store only when it exists."""
    if not cfg.resume:
        return "a new run (resume=null)"
    folder, run_id = read_run_folder(cfg.resume, launch_dir)
    if run_id is None and (folder.exists() or "/" in cfg.resume or cfg.resume.startswith((".", "~"))):
        found = f"it has no {RUN_INFO_FILE}" if folder.exists() else "no such folder"
        raise ConfigError(
            f"resume={cfg.resume}: {folder} is not a run folder of delegate-eval ({found}); "
            "give the run folder (outputs/<date>/<time>-<strategy>) or the MLflow run id"
        )
    uri = resolve_tracking_uri(cfg.tracking, launch_dir)
    database = sqlite_path(uri)
    if database is not None and not database.exists():
        folder_note = f"no run folder {folder} either; " if run_id is None else ""
        raise ConfigError(
            f"resume={cfg.resume}: there is no MLflow store at {redacted_uri(uri)} to find its run in ({folder_note}"
            "give the run folder, outputs/<date>/<time>-<strategy>); launch from the directory the run was started "
            "from, or set tracking.uri to the store it used"
        )
    from mlflow import MlflowClient

    previous = find_previous_run(cfg.resume, launch_dir, Store(MlflowClient(tracking_uri=uri), uri, ""), cfg)
    with run_folder_lock(previous.output_dir, cfg.resume):
        pass
    return f"{previous.output_dir}: run {previous.run_id}, the same config, not in use"
