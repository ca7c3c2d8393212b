"""Reproduce a run: rebuild its composed config from the saved `.hydra/`, run it again, compare every metric."""

import math
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from delegate.cli import config_error_line
from delegate.compose import register_schemas, typed_config
from delegate.config.schema import TrackingConfig
from delegate.errors import ConfigError
from delegate.job import STOP_REASON_TAG, run_job
from delegate.resume import OUTPUT_DIR_TAG, read_run_folder
from delegate.run_folder import HYDRA_DIR, RUN_INFO_FILE, SAVED_CONFIG_FILE, SAVED_HYDRA_FILE, SAVED_OVERRIDES_FILE
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri

REPRODUCES_TAG = "delegate.reproduces"
DIFFERS = "≠"


@dataclass(frozen=True)
class OriginalRun:
    """The run to reproduce: its MLflow run, its saved `.hydra/` folder, and where it was launched from."""

    run_id: str
    # The run folder's .hydra/, or a copy downloaded from the run's artifacts when the folder is gone.
    hydra_dir: Path
    # Where relative paths in its config (cache.path, data.path, a relative sqlite store) were resolved.
    launch_dir: Path
    # The MLflow store that holds the run (absolute).
    tracking_uri: str


@dataclass(frozen=True)
class MetricComparison:
    """One metric of the original run beside the reproduction's; None where a run lacks it."""

    name: str
    original: float | None
    reproduced: float | None

    @property
    def differs(self) -> bool:
        if self.original is None or self.reproduced is None:
            return self.original is not self.reproduced
        both_nan = math.isnan(self.original) and math.isnan(self.reproduced)
        return not both_nan and self.original != self.reproduced

    @property
    def expected_to_vary(self) -> str | None:
        """'timing' for wall-clock metrics, 'cache' for what the response cache answered; None: must be equal."""
        if self.name.endswith("latency_s"):
            return "timing"
        if self.name.startswith("cache_"):
            # The original made the calls the reproduction replays: its hit rate is lower and it saved less.
            return "cache"
        return None


@dataclass(frozen=True)
class Reproduction:
    original_run_id: str
    run_id: str
    output_dir: Path
    # Where relative paths were resolved: the original's launch directory, or the current one if that is gone.
    launch_dir: Path
    overrides: list[str]
    comparisons: list[MetricComparison]
    # The reason a run limit gave for stopping the original early (its delegate.stop_reason tag), if one did: the
    # reproduction, without the budget, solved problems the original never started.
    original_stopped: str | None = None

    @property
    def unexpected_differences(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.differs and c.expected_to_vary is None]


def launch_dir_of(hydra_dir: Path) -> Path | None:
    """The directory the job was launched from, as Hydra recorded it (`hydra.runtime.cwd` in hydra.yaml); None if gone."""
    hydra_yaml = hydra_dir / SAVED_HYDRA_FILE
    if not hydra_yaml.is_file():
        return None
    cwd = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.runtime.cwd")
    return Path(cwd) if cwd and Path(cwd).is_dir() else None


def _client(tracking_uri: str) -> MlflowClient:
    """A client on an existing store: opening a SQLite path that is not there would create an empty store."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix) :]).is_file():
        raise ConfigError(f"no MLflow store at {tracking_uri}; pass --tracking-uri <the store the run is in>")
    return MlflowClient(tracking_uri=tracking_uri)


def _check_run_in_store(client: MlflowClient, run_id: str, tracking_uri: str, reference: str) -> None:
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ConfigError(
            f"{reference}: its MLflow run {run_id} is not in {redacted_uri(tracking_uri)}; "
            "pass --tracking-uri <the store it used>"
        ) from None


def find_original_run(reference: str, cwd: Path, tracking_uri: str | None, download_dir: Path) -> OriginalRun:
    """The run that `reference` names: a run folder of delegate-eval (absolute or relative to `cwd`) or an MLflow run id.

    Store: `tracking_uri` if given; for a folder, else the one its saved config resolves to from its launch dir; for a
    run id, else $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db. A run whose folder is gone has its `.hydra/`
    artifacts downloaded into `download_dir`. Raises ConfigError naming what is missing.
    """
    folder, run_id = read_run_folder(reference, cwd)
    if run_id is not None:
        hydra_dir = folder / HYDRA_DIR
        if not (hydra_dir / SAVED_CONFIG_FILE).is_file():
            raise ConfigError(
                f"{reference}: no {HYDRA_DIR}/{SAVED_CONFIG_FILE} in the run folder; give the MLflow run id instead"
            )
        launch_dir = launch_dir_of(hydra_dir) or cwd
        if tracking_uri is None:
            saved_uri = OmegaConf.select(OmegaConf.load(hydra_dir / SAVED_CONFIG_FILE), "tracking.uri")
            tracking_uri = resolve_tracking_uri(TrackingConfig(uri=saved_uri), launch_dir)
        _check_run_in_store(_client(tracking_uri), run_id, tracking_uri, reference)
        return OriginalRun(run_id, hydra_dir, launch_dir, tracking_uri)
    if folder.is_dir():
        raise ConfigError(
            f"{reference}: not a run folder of delegate-eval (no {RUN_INFO_FILE}); give outputs/<date>/<time>-<strategy>"
        )
    if "/" in reference or reference.startswith((".", "~")):
        # A path, not a run id (MLflow's are 32 hex digits): say what is missing.
        raise ConfigError(
            f"{reference}: no such folder; give a run folder of delegate-eval (outputs/<date>/<time>-<strategy>) "
            "or an MLflow run id"
        )
    tracking_uri = tracking_uri or resolve_tracking_uri(TrackingConfig(), cwd)
    client = _client(tracking_uri)
    try:
        run = client.get_run(reference)
    except MlflowException:
        raise ConfigError(
            f"{reference}: neither a run folder of delegate-eval nor a run id in {redacted_uri(tracking_uri)}; "
            "give the folder (outputs/...) or the MLflow run id, with --tracking-uri for another store"
        ) from None
    run_id = run.info.run_id
    hydra_dir = Path(run.data.tags.get(OUTPUT_DIR_TAG, "")) / HYDRA_DIR
    if OUTPUT_DIR_TAG not in run.data.tags or not (hydra_dir / SAVED_CONFIG_FILE).is_file():
        try:
            hydra_dir = Path(client.download_artifacts(run_id, HYDRA_DIR, str(download_dir)))
        except (MlflowException, OSError):
            raise ConfigError(
                f"{reference}: the run has no {HYDRA_DIR}/ artifacts and its folder is gone; nothing to rebuild"
            ) from None
        if not (hydra_dir / SAVED_CONFIG_FILE).is_file():
            raise ConfigError(
                f"{reference}: the run's {HYDRA_DIR}/ artifacts hold no {SAVED_CONFIG_FILE}; nothing to rebuild"
            )
    return OriginalRun(run_id, hydra_dir, launch_dir_of(hydra_dir) or cwd, tracking_uri)


def rebuild_config(hydra_dir: Path, overrides: list[str]) -> tuple[DictConfig, DictConfig]:
    """The saved composed config with `overrides` (key=value, Hydra's syntax) applied, typed by the schemas.

    Returns (the job's config, Hydra's own `{hydra: ...}` node as compose makes it); interpolations such as
    `${device}` are kept. Group choices (`llm=gpt-4o`) are not available: the saved config is already composed.
    """
    register_schemas()
    # Typed first, so a setting added since the run was saved (a default now) can be overridden like any other.
    saved = typed_config(OmegaConf.load(hydra_dir / SAVED_CONFIG_FILE))
    try:
        with tempfile.TemporaryDirectory(prefix="delegate-saved-config-") as filled_dir:
            OmegaConf.save(saved, Path(filled_dir) / SAVED_CONFIG_FILE)
            with initialize_config_dir(config_dir=filled_dir, version_base="1.3", job_name="reproduce"):
                composed = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except HydraException as error:
        line = config_error_line(error)
        if line is not None and line.startswith("unknown key"):
            # The line delegate-eval gives: did you mean ...?
            raise ConfigError(f"overrides {' '.join(overrides)}: {line}") from None
        # Hydra's message without its detail lines and its advice to append with +, which the schemas refuse.
        lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith((" ", "To append"))]
        if error.__cause__ is not None:
            lines.append(str(error.__cause__).splitlines()[0])
        if "defaults list" in lines[0]:
            lines.append("the saved config is already composed: override values (key=value), not config groups")
        raise ConfigError(f"overrides {' '.join(overrides)}: {' '.join(lines)}") from None
    hydra_cfg = OmegaConf.masked_copy(composed, "hydra")
    cfg = typed_config(OmegaConf.masked_copy(composed, [key for key in composed if key != "hydra"]))
    # The saved config of a job that continued another names it; its reproduction is a fresh run.
    cfg.resume = None
    return cfg, hydra_cfg


def save_hydra_files(cfg: DictConfig, hydra_cfg: DictConfig, output_dir: Path, launch_dir: Path) -> None:
    """Write config.yaml, hydra.yaml and overrides.yaml into <output_dir>/.hydra/, as Hydra does for a job.

    hydra.yaml's `runtime.cwd` is `launch_dir`, the directory relative paths were resolved against, so a
    reproduction can itself be reproduced.
    """
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.hydra.runtime.cwd = str(launch_dir)
        hydra_cfg.hydra.runtime.output_dir = str(output_dir)
    folder = output_dir / HYDRA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / SAVED_CONFIG_FILE)
    OmegaConf.save(hydra_cfg, folder / SAVED_HYDRA_FILE)
    OmegaConf.save(hydra_cfg.hydra.overrides.task, folder / SAVED_OVERRIDES_FILE)


def compare_metrics(
    original: dict[str, float], reproduced: dict[str, float], order: list[str]
) -> list[MetricComparison]:
    """Every metric either run has, in `order` first (the summary's order), then the rest by name."""
    names = list(
        dict.fromkeys([*(n for n in order if n in original or n in reproduced), *sorted(original | reproduced)])
    )
    return [MetricComparison(name, original.get(name), reproduced.get(name)) for name in names]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    # repr: the shortest text that reads back as the same float, so two values shown alike are equal.
    return str(int(value)) if value.is_integer() else repr(value)


def comparison_table(comparisons: list[MetricComparison], new: str = "reproduced", varying: bool = True) -> str:
    """metric | original | `new` | ≠ where they differ | with `varying`, 'timing' or 'cache' for metrics expected to
    vary between two runs."""
    table = pd.DataFrame(
        {
            "metric": c.name,
            "original": _number(c.original),
            new: _number(c.reproduced),
            "": DIFFERS if c.differs else "",
            **({"expected to vary": c.expected_to_vary or ""} if varying else {}),
        }
        for c in comparisons
    )
    # Left-aligned like the header, so a ≠ stands out beside the numbers it flags.
    widths = {column: max(len(column), int(table[column].str.len().max())) for column in table.columns}
    return table.to_string(index=False, justify="left", formatters={c: f"{{:<{w}}}".format for c, w in widths.items()})


def verdict(comparisons: list[MetricComparison]) -> str:
    """One line: all equal, or how many differ and whether every difference is in a metric expected to vary."""
    differing = [c for c in comparisons if c.differs]
    if not differing:
        return f"all {len(comparisons)} metrics equal"
    unexpected = [c.name for c in differing if c.expected_to_vary is None]
    if not unexpected:
        kinds = sorted({c.expected_to_vary for c in differing})
        return f"{len(differing)} of {len(comparisons)} metrics differ, all expected to vary ({', '.join(kinds)}); the rest are equal"
    return f"{len(differing)} of {len(comparisons)} metrics differ, {len(unexpected)} not expected to: {', '.join(unexpected)}"


def default_output_dir(cwd: Path, strategy_name: str, kind: str = "reproduce") -> Path:
    """outputs/<kind>/<date>/<time with microseconds>-<strategy> (kind: reproduce, rescore), beside delegate-eval's
    outputs/<date>/..."""
    now = datetime.now()
    return cwd / "outputs" / kind / now.strftime("%Y-%m-%d") / f"{now.strftime('%H-%M-%S-%f')}-{strategy_name}"


def reproduce(
    reference: str, overrides: list[str], cwd: Path, tracking_uri: str | None = None, output_dir: Path | None = None
) -> Reproduction:
    """Re-run the run `reference` names (folder or run id) from its saved config, with `overrides`, and compare.

    The job runs through `run_job` like delegate-eval's, with relative paths resolved against the original launch
    directory (so `cache.path: null` finds the same response cache), into the original's MLflow store, as a new run
    tagged delegate.reproduces=<original run id>, without the original's `max_cost_usd` unless an override sets one.
    Raises ConfigError for a reference, store or override that is wrong, RunStopped when a run limit stops it.
    """
    with tempfile.TemporaryDirectory(prefix="delegate-reproduce-") as download_dir:
        original = find_original_run(reference, cwd, tracking_uri, Path(download_dir))
        cfg, hydra_cfg = rebuild_config(original.hydra_dir, overrides)
        saved_uri = OmegaConf.select(OmegaConf.load(original.hydra_dir / SAVED_CONFIG_FILE), "tracking.uri")
    # A budget decides how much of a run is paid for, never its results; the saved one is the first session's (a
    # resume may have raised it): the reproduction runs every problem unless an override sets a budget.
    if not any(o.partition("=")[0].lstrip("+~") == "max_cost_usd" for o in overrides):
        cfg.max_cost_usd = None
    # The reproduction goes where the original is, unless an override chose another store.
    if (
        cfg.tracking.uri == saved_uri
        and resolve_tracking_uri(cfg.tracking, original.launch_dir) != original.tracking_uri
    ):
        cfg.tracking.uri = original.tracking_uri
    output_dir = (output_dir or default_output_dir(cwd, cfg.strategy.name)).resolve()
    save_hydra_files(cfg, hydra_cfg, output_dir, original.launch_dir)
    summary = run_job(cfg, original.launch_dir, output_dir, extra_tags={REPRODUCES_TAG: original.run_id})
    original_data = _client(original.tracking_uri).get_run(original.run_id).data
    original_metrics = original_data.metrics
    reproduced_uri = resolve_tracking_uri(cfg.tracking, original.launch_dir)
    reproduced_metrics = MlflowClient(tracking_uri=reproduced_uri).get_run(summary["run_id"]).data.metrics
    return Reproduction(
        original_run_id=original.run_id,
        run_id=summary["run_id"],
        output_dir=output_dir,
        launch_dir=original.launch_dir,
        overrides=list(overrides),
        comparisons=compare_metrics(original_metrics, reproduced_metrics, list(summary)),
        original_stopped=original_data.tags.get(STOP_REASON_TAG),
    )


# Re-running a saved config with delegate-eval's own (Hydra's) flags.

_CONFIG_DIR_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp")


def is_saved_hydra_dir(folder: Path) -> bool:
    """A run's `.hydra/` folder as Hydra saved it: the composed config.yaml beside hydra.yaml."""
    return (folder / SAVED_CONFIG_FILE).is_file() and (folder / SAVED_HYDRA_FILE).is_file()


def saved_config_arguments(arguments: list[str], cwd: Path) -> list[str]:
    """Hydra's command-line `arguments` with a flag that points at a run's saved `.hydra/` made to load that config.

    `--config-dir D` adds D to the search path *after* conf/, whose config.yaml then wins: the job would silently run
    the default experiment. A relative `--config-path D` is read relative to pipelines/, not to `cwd`. When D is a
    saved `.hydra/` folder, either becomes `--config-path <D, absolute>`; every other argument is left as it is.
    """
    result: list[str] = []
    rest = iter(arguments)
    for argument in rest:
        flag, equals, value = argument.partition("=")
        if flag not in _CONFIG_DIR_FLAGS:
            result.append(argument)
            continue
        given = [argument]
        if not equals:
            value = next(rest, "")
            given += [value] if value else []
        folder = Path(value).expanduser()
        folder = folder if folder.is_absolute() else cwd / folder
        result += ["--config-path", str(folder.resolve())] if value and is_saved_hydra_dir(folder) else given
    return result
