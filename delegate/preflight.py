"""Settings checked before a run is created or a model called: each mistake is one ConfigError naming the setting and
the fix, found without side effects (no file or folder made, no MLflow store opened, no model loaded or called)."""

import difflib
import os
import re
import urllib.error
import urllib.request
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from delegate.config.schema import MODEL_SCHEMAS, Config
from delegate.data import draw_sample, read_split
from delegate.data.loader import skipped_warning
from delegate.errors import ConfigError
from delegate.models.openai_compatible import OPENAI_BASE_URL
from delegate.models.secrets import read_api_key
from delegate.resume import check_resume
from delegate.strategies import get_strategy
from delegate.tracking.mlflow_run import redacted_uri, resolve_tracking_uri, sqlite_path

# An MLflow server that does not answer fails the check in seconds, not after MLflow's minutes of retries.
TRACKING_PROBE_TIMEOUT_S = 3.0
# Asking the Hub whether a model exists, when it is not in the local cache and the Hub is not switched off.
HUB_PROBE_TIMEOUT_S = 3.0
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::(?P<index>\d+))?")
# The schemes MLflow's tracking store registry knows (MLflow 3); a database URI may name its driver (postgresql+psycopg2).
TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")
# Where responses are cached when cache.path is null, relative to the launch directory.
DEFAULT_CACHE_PATH = Path(".cache/delegate/responses.sqlite")


@dataclass(frozen=True)
class Bound:
    """The values a number setting accepts: from `low` (itself allowed when `low_included`) up to `high`, if any."""

    low: float
    low_included: bool = True
    high: float | None = None

    def admits(self, value: float) -> bool:
        above = value >= self.low if self.low_included else value > self.low
        return above and (self.high is None or value <= self.high)

    @property
    def rule(self) -> str:
        if self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        return f"at least {self.low:g}" if self.low_included else f"greater than {self.low:g}"

    @property
    def allowed(self) -> str:
        if self.high is not None:
            return f"a value from {self.low:g} to {self.high:g}"
        return f"{self.low:g} or more" if self.low_included else f"more than {self.low:g}"


# Top-level numbers (conf/config.yaml).
RUN_BOUNDS = {
    "concurrency": Bound(1),
    "samples": Bound(1),
    "max_error_rate": Bound(0, high=1),
    "max_cost_usd": Bound(0, low_included=False),
}
# A model's numbers, for whichever of them its backend's schema has.
MODEL_BOUNDS = {
    "temperature": Bound(0),
    "max_tokens": Bound(1),
    "max_new_tokens": Bound(1),
    "timeout_s": Bound(0, low_included=False),
    "max_retries": Bound(0),
    "retry_backoff_s": Bound(0),
    "retry_max_backoff_s": Bound(0),
    "max_requests_in_flight": Bound(1),
    "max_batch_size": Bound(1),
    "batch_wait_ms": Bound(0),
    "price_input_usd_per_1m": Bound(0),
    "price_cached_input_usd_per_1m": Bound(0),
    "price_output_usd_per_1m": Bound(0),
}


@dataclass(frozen=True)
class SettingCheck:
    """One check: `name` (the delegate-check line's, e.g. "llm api key"), the model `role` it concerns (None: the
    whole run), and `run`, which returns what it found (one phrase) or raises ConfigError."""

    name: str
    run: Callable[[], str]
    role: str | None = None


def _optional(schema: type, name: str) -> bool:
    """Whether the schema's field may be null (its default is None)."""
    found = {f.name: f for f in fields(schema)}.get(name)
    return found is not None and found.default is None and found.default_factory is MISSING


def _check_bounds(node: DictConfig, bounds: dict[str, Bound], schema: type, prefix: str) -> None:
    for name, bound in bounds.items():
        value = node.get(name)
        if value is None or bound.admits(value):
            continue
        setting = f"{prefix}{name}"
        null = ", or to null" if _optional(schema, name) else ""
        raise ConfigError(f"{setting}={value}: must be {bound.rule}; set {setting} to {bound.allowed}{null}")


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
    """concurrency, samples, max_error_rate and max_cost_usd within their bounds (RUN_BOUNDS)."""
    _check_bounds(cfg, RUN_BOUNDS, Config, "")
    return ", ".join(f"{name}={'null' if cfg[name] is None else cfg[name]}" for name in RUN_BOUNDS)


def check_base_url(base_url: str | None, role: str) -> str:
    """`<role>.base_url` is an http(s) URL without credentials; returns the URL calls go to. The URL is never shown
    when it carries a user or password."""
    if base_url is None:
        return OPENAI_BASE_URL
    authority = base_url.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority:
        raise ConfigError(f"{role}.base_url: carries credentials (user:password@ before the host), which would be "
                          f"logged with the URL; remove them and name the variable that holds the key in {role}.api_key_env")
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{role}.base_url={base_url}: not an http(s) URL; give the server's URL, e.g. http://127.0.0.1:8000/v1")
    return base_url


def check_model_settings(cfg: DictConfig, role: str) -> str:
    """The role's numbers within their bounds (MODEL_BOUNDS) and, for a served model, its base_url."""
    model_cfg = cfg[role]
    _check_bounds(model_cfg, MODEL_BOUNDS, MODEL_SCHEMAS[model_cfg.backend], f"{role}.")
    if model_cfg.backend == "openai":
        url = check_base_url(model_cfg.base_url, role)
        return (f"{model_cfg.model} at {url}, max_tokens={model_cfg.max_tokens}, temperature={model_cfg.temperature}, "
                f"timeout_s={model_cfg.timeout_s}, max_retries={model_cfg.max_retries}")
    return f"{model_cfg.model}, max_new_tokens={model_cfg.max_new_tokens}, max_batch_size={model_cfg.max_batch_size}"


def device_setting(cfg: DictConfig, role: str) -> str:
    """The setting a user changes to move `role`: the global `device` it follows by default, or its own."""
    return "device" if OmegaConf.is_interpolation(cfg[role], "device") else f"{role}.device"


def check_device(cfg: DictConfig, role: str) -> str:
    """The device and dtype an in-process model of `role` would load on, resolved as loading does, without loading
    it: a known device that this machine has, and a torch dtype."""
    model_cfg = cfg[role]
    if model_cfg.backend != "transformers":
        return f"none in-process; {role} is served at {model_cfg.get('base_url') or OPENAI_BASE_URL}"
    setting = device_setting(cfg, role)
    found = _DEVICE.fullmatch(model_cfg.device)
    if found is None:
        raise ConfigError(f"{setting}={model_cfg.device}: not a device; use one of {DEVICE_CHOICES}")
    import torch

    from delegate.models.transformers_local import resolve_device, resolve_dtype

    device = resolve_device(model_cfg.device)
    kind = device.partition(":")[0]
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if not available[kind]:
        raise ConfigError(f"{setting}={model_cfg.device}: torch {torch.__version__} sees no {kind.upper()} device; "
                          f"set {setting}=auto or {setting}=cpu, or install a torch build for {kind.upper()}")
    count = torch.cuda.device_count() if kind == "cuda" else 0
    if found["index"] is not None and int(found["index"]) >= count:
        raise ConfigError(f"{setting}={device}: there are {count} CUDA devices; "
                          f"set {setting}=cuda:0 (or another index below {count})")
    try:
        dtype = resolve_dtype(model_cfg.dtype, device)
    except ConfigError as error:
        raise ConfigError(f"{role}.{error}") from None
    where = f"{device} ({torch.cuda.get_device_name(device)})" if kind == "cuda" else device
    return (f"{model_cfg.name} would run on {where} in {str(dtype).removeprefix('torch.')} "
            f"({setting}={model_cfg.device}, {role}.dtype={model_cfg.dtype})")


def check_api_key(cfg: DictConfig, role: str) -> str:
    """The key `<role>.api_key_env` names is in the environment or ./.env (its value is never shown): needed for
    OpenAI's API; with a base_url, naming a variable that is not set is a mistake too (no key would be sent)."""
    model_cfg = cfg[role]
    if model_cfg.api_key_env is None:
        return f"none sent ({role}.api_key_env=null)"
    key = read_api_key(model_cfg.api_key_env, role, required=model_cfg.base_url is None)
    if key is None:
        raise ConfigError(f"{role}.api_key_env: ${model_cfg.api_key_env} is not set; export it or add it to .env, "
                          f"or set {role}.api_key_env=null if {model_cfg.base_url} needs no key")
    source = "the environment" if os.environ.get(model_cfg.api_key_env) else ".env"
    return f"${model_cfg.api_key_env} is set (from {source}; value not shown)"


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) for pattern in ("*.safetensors", "*.bin"))


def _check_folder_weights(folder: Path, model_cfg: DictConfig, role: str) -> str:
    gguf_file = model_cfg.gguf_file
    if gguf_file:
        if not (folder / gguf_file).is_file():
            found = sorted(p.name for p in folder.glob("*.gguf"))
            choices = f"use one of {', '.join(found)}" if found else f"{folder} has no .gguf file"
            raise ConfigError(f"{role}.gguf_file={gguf_file}: not in {folder}; {choices}")
        return f"{gguf_file} in {folder}"
    if not (folder / "config.json").is_file() or not _has_weights(folder):
        raise ConfigError(f"{role}.model={model_cfg.model}: {folder} holds no model (config.json and weights); "
                          f"give a folder written by save_pretrained, or set {role}.gguf_file to a .gguf file in it")
    return f"the model folder {folder}"


def _check_hub_weights(model_cfg: DictConfig, role: str) -> str:
    """A Hub model in the local Hugging Face cache, or else obtainable: the Hub is not switched off and says the
    model exists (one short request; nothing is downloaded)."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    model, gguf_file = model_cfg.model, model_cfg.gguf_file
    cached = try_to_load_from_cache(model, gguf_file or "config.json")
    if isinstance(cached, str) and (gguf_file or _has_weights(Path(cached).parent)):
        return f"{model} in the Hugging Face cache"
    if is_offline_mode():
        raise ConfigError(f"{role}.model={model}: not in the Hugging Face cache and HF_HUB_OFFLINE=1; download it "
                          f"once online (hf download {model}), or set {role}.model to a local folder")
    try:
        info = HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT_S, files_metadata=False)
    except GatedRepoError:
        raise ConfigError(f"{role}.model={model}: gated on the Hugging Face Hub; accept its terms on huggingface.co "
                          "and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise ConfigError(f"{role}.model={model}: no such model on the Hugging Face Hub; "
                          f"check {role}.model (an id like Qwen/Qwen2.5-Math-1.5B-Instruct, or a local folder)") from None
    except Exception as error:  # noqa: BLE001 - whatever the HTTP client raises: the Hub can't be reached
        raise ConfigError(f"{role}.model={model}: not in the Hugging Face cache and the Hub did not answer "
                          f"({type(error).__name__}); connect to the internet once, or set {role}.model to a local folder") from None
    if gguf_file and gguf_file not in {sibling.rfilename for sibling in info.siblings or ()}:
        raise ConfigError(f"{role}.gguf_file={gguf_file}: {model} on the Hub has no such file; check {role}.gguf_file")
    return f"{model} is on the Hub (downloaded on first use)"


def check_weights(cfg: DictConfig, role: str) -> str:
    """An in-process model's weights can be had: a `pkg://` package or local folder that holds them (and
    `<role>.gguf_file`), or a Hub id in the local cache or obtainable (see _check_hub_weights)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from delegate.models.transformers_local import resolve_model_path

    model_cfg = cfg[role]
    folder = Path(resolve_model_path(model_cfg.model, role)).expanduser()
    if folder.is_dir():
        return _check_folder_weights(folder, model_cfg, role)
    try:
        validate_repo_id(model_cfg.model)
    except HFValidationError:
        raise ConfigError(f"{role}.model={model_cfg.model}: no such folder; give a model folder or a Hugging Face Hub id") from None
    return _check_hub_weights(model_cfg, role)


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
            raise ConfigError(f"{setting}={shown}: cannot be created ({reason}); "
                              "set tracking.uri=sqlite:///<a writable folder>/mlflow.db")
        return f"{shown} {'exists' if database.exists() else 'does not exist yet; delegate-eval will create it (the folder allows it)'}"
    if scheme in ("http", "https"):
        reason = _unanswered(uri)
        if reason is not None:
            raise ConfigError(f"{setting}={shown}: no answer within {TRACKING_PROBE_TIMEOUT_S:g} s ({reason}); start "
                              "the MLflow server there, or set tracking.uri=sqlite:///mlflow.db for a local store")
        return f"{shown} answers"
    if scheme in ("", "file"):
        folder = Path(unquote(urlsplit(uri).path) if scheme else uri).expanduser()
        reason = unwritable_folder(folder if folder.is_absolute() else launch_dir / folder)
        if reason is not None:
            raise ConfigError(f"{setting}={shown}: cannot be written ({reason}); set tracking.uri=sqlite:///mlflow.db")
        return f"{shown} (a folder store)"
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(f"{setting}={shown}: unknown scheme {scheme!r}; use sqlite:///<path>, http(s)://<server>, "
                          "or a database URI (postgresql://, mysql://, mssql://)")
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
        raise ConfigError(f"{setting}: cannot be written ({reason}); set cache.path to a file in a writable folder, "
                          "or cache.enabled=false")
    return f"{path} {'exists' if path.exists() else 'will be created'}"


def check_data(cfg: DictConfig) -> str:
    """The split reads, every row checked, and the sample can be drawn, exactly as a job loads it (silently)."""
    data = OmegaConf.to_object(cfg.data)
    split = read_split(data)
    drawn = draw_sample(split, cfg.samples, cfg.seed, data)
    source = data.path or (f"built-in {data.builtin}" if data.builtin else f"{data.hub_path} ({data.hub_name}, {data.split}) from the Hub")
    which = "every problem" if cfg.samples is None else f"samples={cfg.samples} drawn with seed={cfg.seed}"
    skipped = skipped_warning(split, data)
    return f"{data.name} from {source}: {len(drawn.problems)} problems ({which})" + (f"; {skipped}" if skipped else "")


def role_checks(cfg: DictConfig, role: str) -> list[SettingCheck]:
    """The checks of one model role: its settings, its device, and its API key (served) or weights (in-process)."""
    checks = [
        SettingCheck(f"{role} settings", lambda: check_model_settings(cfg, role), role),
        SettingCheck(f"{role} device", lambda: check_device(cfg, role), role),
    ]
    if cfg[role].backend == "openai":
        checks.append(SettingCheck(f"{role} api key", lambda: check_api_key(cfg, role), role))
    else:
        checks.append(SettingCheck(f"{role} weights", lambda: check_weights(cfg, role), role))
    return checks


def setting_checks(cfg: DictConfig, launch_dir: Path, roles: tuple[str, ...]) -> list[SettingCheck]:
    """Every check for `cfg`, in order: the config itself, what it resumes, run limits, each of `roles`, the tracking store, the response cache, the data."""
    return [
        SettingCheck("config", lambda: check_config(cfg)),
        SettingCheck("resume", lambda: check_resume(cfg, launch_dir)),
        SettingCheck("run limits", lambda: check_run_limits(cfg)),
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
    "Bound", "SettingCheck", "check_settings", "response_cache_path", "role_checks", "run_setting_check",
    "setting_checks", "unwritable_file", "unwritable_folder",
]
