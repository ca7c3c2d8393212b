"""Settings checked before a run is created or a model called: each mistake is one ConfigError naming the setting and
the fix, found without side effects (no file or folder made, no MLflow store opened, no model loaded or called)."""

import difflib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from delegate.config.bounds import check_bounds, field_bounds
from delegate.config.roles import check_role_models, model_roles
from delegate.config.schema import Config
from delegate.data import draw_sample, read_split
from delegate.data.loader import skipped_warning, source_description
from delegate.errors import ConfigError
from delegate.models.backends import backend_class
from delegate.resume import check_resume
from delegate.strategies import get_strategy
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri, sqlite_path

# An MLflow server that does not answer fails the check in seconds, not after MLflow's minutes of retries.
TRACKING_PROBE_TIMEOUT_S = 3.0
# The schemes MLflow's tracking store registry knows (MLflow 3); a database URI may name its driver (postgresql+psycopg2).
TRACKING_SCHEMES = (
    "sqlite",
    "http",
    "https",
    "file",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)
# Where responses are cached when cache.path is null, relative to the launch directory.
DEFAULT_CACHE_PATH = Path(".cache/delegate/responses.sqlite")


# Top-level numbers (conf/config.yaml).


@dataclass(frozen=True)
class SettingCheck:
    """One check: `name` (the delegate-check line's, e.g. "llm api key"), the model `role` it concerns (None: the
    whole run), and `run`, which returns what it found (one phrase) or raises ConfigError."""

    name: str
    run: Callable[[], str]
    role: str | None = None


def _added_keys(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """(dotted key, the keys its schema has) for each key of a schema-typed node that its schema lacks, at any depth."""
    schema = OmegaConf.get_type(node)
    known = [f.name for f in fields(schema)] if is_dataclass(schema) else None
    for key in node.keys():
        if known is not None and key not in known:
            yield f"{prefix}{key}", known
        child = node[key]
        if isinstance(child, DictConfig):
            yield from _added_keys(child, f"{prefix}{key}.")


def check_config(cfg: DictConfig) -> str:
    """Every value resolves (an interpolation to nothing fails here, not halfway through a run), and no key was added
    (`+key=value`) that no schema has: nothing would read it, so it is a typo."""
    OmegaConf.to_container(cfg, resolve=True)
    for key, known in _added_keys(cfg):
        parent, _, name = key.rpartition(".")
        close = difflib.get_close_matches(name, known, n=1)
        fix = f"did you mean {parent + '.' if parent else ''}{close[0]}? (without the +)" if close else "remove it"
        raise ConfigError(f"{key}: no such setting (added with +; nothing would read it); {fix}")
    return "every value resolves; no unknown keys"


def check_run_limits(cfg: DictConfig) -> str:
    """The run's number settings (samples, concurrency, max_error_rate, max_cost_usd) within the bounds on Config's
    fields."""
    check_bounds(cfg, Config, "")
    return ", ".join(f"{name}={'null' if cfg[name] is None else cfg[name]}" for name in field_bounds(Config))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable_folder(folder: Path) -> str | None:
    """Why `folder` could not be written (or created, with its missing parents); None when it could."""
    existing = _nearest_existing(folder)
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not a writable folder"
    return None


def unwritable_file(path: Path) -> str | None:
    """Why a file at `path` could not be written (or created, with its missing folders); None when it could."""
    if not path.exists():
        return unwritable_folder(path.parent)
    if not path.is_file():
        return f"{path} is not a file"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite writes a journal beside the file.
        return f"{path} or its folder is read-only"
    return None


def _tracking_setting(cfg: DictConfig) -> str:
    """The setting that gave the tracking URI: tracking.uri, or $MLFLOW_TRACKING_URI when tracking.uri is null."""
    if cfg.tracking.uri is None and os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    return "tracking.uri"


def _unanswered(url: str) -> str | None:
    """Why `url` gave no HTTP answer within TRACKING_PROBE_TIMEOUT_S (None: it answered, whatever the status)."""
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    try:
        urllib.request.urlopen(urllib.request.Request(bare, method="GET"), timeout=TRACKING_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as error:
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    except (OSError, ValueError) as error:
        return getattr(error, "strerror", None) or str(error) or type(error).__name__
    return None


def check_tracking(cfg: DictConfig, launch_dir: Path) -> str:
    """The MLflow store's URI: a known scheme; a SQLite database that can be written or created where it would go;
    a server that answers an HTTP request within TRACKING_PROBE_TIMEOUT_S. Nothing is created or opened in MLflow."""
    uri = resolve_tracking_uri(cfg.tracking, launch_dir)
    shown = redacted_uri(uri)
    setting = _tracking_setting(cfg)
    scheme = urlsplit(uri).scheme.partition("+")[0]
    database = sqlite_path(uri)
    if database is not None:
        reason = unwritable_file(database)
        if reason is not None:
            raise ConfigError(
                f"{setting}={shown}: cannot be created ({reason}); "
                "set tracking.uri=sqlite:///<a writable folder>/mlflow.db"
            )
        return f"{shown} {'exists' if database.exists() else 'does not exist yet; delegate-eval will create it (the folder allows it)'}"
    if scheme in ("http", "https"):
        reason = _unanswered(uri)
        if reason is not None:
            raise ConfigError(
                f"{setting}={shown}: no answer within {TRACKING_PROBE_TIMEOUT_S:g} s ({reason}); start "
                "the MLflow server there, or set tracking.uri=sqlite:///mlflow.db for a local store"
            )
        return f"{shown} answers"
    if scheme in ("", "file"):
        folder = Path(unquote(urlsplit(uri).path) if scheme else uri).expanduser()
        reason = unwritable_folder(folder if folder.is_absolute() else launch_dir / folder)
        if reason is not None:
            raise ConfigError(f"{setting}={shown}: cannot be written ({reason}); set tracking.uri=sqlite:///mlflow.db")
        return f"{shown} (a folder store)"
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"{setting}={shown}: unknown scheme {scheme!r}; use sqlite:///<path>, http(s)://<server>, "
            "or a database URI (postgresql://, mysql://, mssql://)"
        )
    return f"{shown} (not probed before the run)"


def response_cache_path(cfg: DictConfig, launch_dir: Path) -> Path:
    """The response cache's SQLite file: cache.path, else DEFAULT_CACHE_PATH; relative paths from `launch_dir`."""
    path = Path(cfg.cache.path).expanduser() if cfg.cache.path else DEFAULT_CACHE_PATH
    return path if path.is_absolute() else launch_dir / path


def check_cache(cfg: DictConfig, launch_dir: Path) -> str:
    """With cache.enabled, its file can be written, or created with its folders."""
    if not cfg.cache.enabled:
        return "off (cache.enabled=false)"
    path = response_cache_path(cfg, launch_dir)
    reason = unwritable_file(path)
    if reason is not None:
        setting = f"cache.path={cfg.cache.path}" if cfg.cache.path else f"cache.path (null: {DEFAULT_CACHE_PATH})"
        raise ConfigError(
            f"{setting}: cannot be written ({reason}); set cache.path to a file in a writable folder, "
            "or cache.enabled=false"
        )
    return f"{path} {'exists' if path.exists() else 'will be created'}"


def check_data(cfg: DictConfig) -> str:
    """The split reads, every row checked, and the sample can be drawn, exactly as a job loads it (silently)."""
    data = OmegaConf.to_object(cfg.data)
    split = read_split(data)
    drawn = draw_sample(split, cfg.samples, cfg.seed, data)
    source = source_description(data)
    which = "every problem" if cfg.samples is None else f"samples={cfg.samples} drawn with seed={cfg.seed}"
    skipped = skipped_warning(split, data)
    return f"{data.name} from {source}: {len(drawn.problems)} problems ({which})" + (f"; {skipped}" if skipped else "")


def check_roles(cfg: DictConfig) -> str:
    """Every model role the strategy uses has a model in `cfg` (a strategy's own role has none until given one)."""
    strategy = get_strategy(cfg.strategy.name)
    check_role_models(cfg, strategy.name, strategy.roles)
    return ", ".join(f"{role}={cfg[role].name}" for role in strategy.roles)


def role_checks(cfg: DictConfig, role: str) -> list[SettingCheck]:
    """The checks of one model role, as its backend names them (`Backend.setting_checks`): its settings, its device,
    and its API key (served) or weights (in-process); none for a role with no model (`check_roles` says so)."""
    if role not in model_roles(cfg):
        return []
    checks = backend_class(cfg[role].backend, role).setting_checks(cfg, role)
    return [SettingCheck(f"{role} {name}", run, role) for name, run in checks.items()]


def setting_checks(cfg: DictConfig, launch_dir: Path, roles: tuple[str, ...]) -> list[SettingCheck]:
    """Every check for `cfg`, in order: the config itself, what it resumes, run limits, each of `roles`, the tracking store, the response cache, the data."""
    return [
        SettingCheck("config", lambda: check_config(cfg)),
        SettingCheck("resume", lambda: check_resume(cfg, launch_dir)),
        SettingCheck("run limits", lambda: check_run_limits(cfg)),
        SettingCheck("roles", lambda: check_roles(cfg)),
        *(check for role in roles for check in role_checks(cfg, role)),
        SettingCheck("tracking", lambda: check_tracking(cfg, launch_dir)),
        SettingCheck("cache", lambda: check_cache(cfg, launch_dir)),
        SettingCheck("data", lambda: check_data(cfg)),
    ]


def run_setting_check(check: SettingCheck) -> str:
    """`check.run()`, with a value the config can't give (an interpolation to nothing) as a ConfigError too."""
    try:
        return check.run()
    except OmegaConfBaseException as error:
        message = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(f"{error.full_key or check.name}: {message}; fix that value") from None


def check_settings(cfg: DictConfig, launch_dir: Path) -> None:
    """Raise ConfigError (one line: the setting, what is wrong, the fix) for the first mistake in the composed job
    config `cfg`, checking the roles its strategy uses, before any run is created or model called.

    `launch_dir`: where relative paths (the SQLite store, the cache, .env) are resolved. Side-effect free: nothing is
    created, no MLflow store opened, no model loaded or called; network use is limited to short probes (an HTTP
    tracking server, the Hub for a model not in the local cache).
    """
    for check in setting_checks(cfg, launch_dir, get_strategy(cfg.strategy.name).roles):
        run_setting_check(check)


__all__ = [
    "SettingCheck",
    "check_settings",
    "response_cache_path",
    "role_checks",
    "run_setting_check",
    "setting_checks",
    "unwritable_file",
    "unwritable_folder",
]
