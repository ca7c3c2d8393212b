"""Setup checks before a run: each says ✓ or ✗ about one thing a job needs, and with ✗ how to fix it."""

import asyncio
import importlib.metadata
import logging
import os
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import openai
from omegaconf import DictConfig, OmegaConf

from delegate.data import load_problems
from delegate.errors import ConfigError
from delegate.models import build_model
from delegate.models.openai_compatible import OPENAI_BASE_URL
from delegate.models.secrets import read_api_key
from delegate.records import ROLES
from delegate.strategies import get_strategy
from delegate.tracking.mlflow_run import default_artifact_location, redacted_uri, resolve_tracking_uri, sqlite_path

MIN_PYTHON = (3, 10)
# Distributions whose versions decide what a run does; a missing one means the install is broken.
KEY_PACKAGES = ("delegate", "torch", "transformers", "openai", "mlflow", "hydra-core", "datasets")
# The one-token call: asked for one token, so it costs next to nothing on a paid endpoint.
PROBE_MESSAGES = [{"role": "user", "content": "Reply with the word OK."}]
# A remote MLflow server that does not answer should fail the check in seconds, not after MLflow's minutes of retries.
REMOTE_STORE_TIMEOUT_S = 10


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: `name` (e.g. "llm endpoint"), what was found, and for a failure the fix."""

    ok: bool
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`✓ name: detail`, or `✗ name: detail — fix: ...`."""
        if self.ok:
            return f"✓ {self.name}: {self.detail}"
        return f"✗ {self.name}: {self.detail} — fix: {self.fix}"


def _failed(name: str, error: ConfigError, fallback_fix: str) -> CheckResult:
    """A ConfigError's one line, `<setting>: <problem>; <fix>`, split into the report's detail and fix."""
    problem, separator, fix = str(error).rpartition("; ")
    if not separator:
        return CheckResult(False, name, str(error), fallback_fix)
    return CheckResult(False, name, problem, fix)


def check_python() -> CheckResult:
    """The interpreter's version against pyproject's requires-python (>= 3.10)."""
    version = ".".join(str(part) for part in sys.version_info[:3])
    if sys.version_info[:2] < MIN_PYTHON:
        return CheckResult(False, "python", f"Python {version} at {sys.executable}",
                           f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer")
    return CheckResult(True, "python", f"Python {version} at {sys.executable}")


def check_packages() -> CheckResult:
    """The installed version of each key package (read from metadata, nothing imported)."""
    found, missing = [], []
    for package in KEY_PACKAGES:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
    if missing:
        return CheckResult(False, "packages", f"not installed: {', '.join(missing)}",
                           "pip install -e . in the repository (or make run, which does it)")
    return CheckResult(True, "packages", ", ".join(found))


def _device_setting(cfg: DictConfig, role: str) -> str:
    """The setting a user changes to move `role`: the global `device` it follows by default, or its own."""
    return "device" if OmegaConf.is_interpolation(cfg[role], "device") else f"{role}.device"


def check_device(cfg: DictConfig, role: str) -> CheckResult:
    """The device and dtype an in-process model of `role` would load on, resolved as loading does, without loading it."""
    import torch

    from delegate.models.transformers_local import resolve_device, resolve_dtype

    name = f"{role} device"
    model_cfg = cfg[role]
    if model_cfg.backend != "transformers":
        return CheckResult(True, name, f"none in-process; {role} is served at {model_cfg.base_url or OPENAI_BASE_URL}")
    setting = _device_setting(cfg, role)
    device = resolve_device(model_cfg.device)
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parsed = None
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if parsed is None or parsed.type not in available:
        return CheckResult(False, name, f"{setting}={model_cfg.device} is not a device", f"set {setting} to auto, cuda, mps or cpu")
    kind = parsed.type
    if not available[kind]:
        return CheckResult(False, name, f"{setting}={model_cfg.device} but torch {torch.__version__} sees no {kind.upper()} device",
                           f"set {setting}=auto or {setting}=cpu, or install a torch build for {kind.upper()}")
    if kind == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        return CheckResult(False, name, f"{setting}={device} but there are {torch.cuda.device_count()} CUDA devices",
                           f"set {setting}=cuda:0 (or another index below {torch.cuda.device_count()})")
    try:
        dtype = resolve_dtype(model_cfg.dtype, device)
    except ConfigError as error:
        return _failed(name, ConfigError(f"{role}.{error}"), f"set {role}.dtype=auto")
    where = f"{device} ({torch.cuda.get_device_name(device)})" if kind == "cuda" else device
    return CheckResult(True, name, f"{model_cfg.name} would run on {where} in {str(dtype).removeprefix('torch.')} "
                                   f"({setting}={model_cfg.device}, {role}.dtype={model_cfg.dtype})")


def check_api_key(cfg: DictConfig, role: str) -> CheckResult:
    """Whether the key `<role>.api_key_env` names is in the environment or ./.env; its value is never shown."""
    name = f"{role} api key"
    model_cfg = cfg[role]
    if model_cfg.api_key_env is None:
        return CheckResult(True, name, f"none sent ({role}.api_key_env=null)")
    try:
        read_api_key(model_cfg.api_key_env, role, required=True)
    except ConfigError as error:
        if model_cfg.base_url is None:
            return _failed(name, error, f"export {model_cfg.api_key_env} or add it to .env")
        # Named but absent with a base_url: delegate-eval would send no key, which the server may refuse.
        return CheckResult(False, name, f"{role}.api_key_env: ${model_cfg.api_key_env} is not set",
                           f"export it or add it to .env, or set {role}.api_key_env=null if {model_cfg.base_url} needs no key")
    source = "the environment" if os.environ.get(model_cfg.api_key_env) else ".env"
    return CheckResult(True, name, f"${model_cfg.api_key_env} is set (from {source}; value not shown)")


def _probe_config(model_cfg: DictConfig) -> DictConfig:
    """The role's settings for a one-token call: same endpoint, key, timeout and model; one token, no retries."""
    if model_cfg.backend == "openai":
        # No retries: a check should report the first failure as it is, not after backing off.
        return OmegaConf.merge(model_cfg, {"max_tokens": 1, "max_retries": 0})
    return OmegaConf.merge(model_cfg, {"max_new_tokens": 1})


async def _one_token_call(model_cfg: DictConfig, role: str) -> tuple[float, int]:
    """(seconds, completion tokens) of one chat call through the same backend class a job uses, without the cache."""
    model = build_model(_probe_config(model_cfg), role)
    try:
        started_s = time.perf_counter()
        response = await model.chat(PROBE_MESSAGES)
        return time.perf_counter() - started_s, response.completion_tokens
    finally:
        await model.aclose()


def _endpoint_failure(name: str, model_cfg: DictConfig, role: str, error: openai.OpenAIError) -> CheckResult:
    """An OpenAI SDK error as a report line; a refused key's message is left out (servers echo part of the key)."""
    url = model_cfg.base_url or OPENAI_BASE_URL
    if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
        fix = (f"check the key in ${model_cfg.api_key_env}" if model_cfg.api_key_env
               else f"the server wants a key: set {role}.api_key_env=<VARIABLE> and export that variable")
        return CheckResult(False, name, f"{url} refused the key (HTTP {error.status_code})", fix)
    if isinstance(error, openai.NotFoundError):
        return CheckResult(False, name, f"{url}: HTTP 404 for model {model_cfg.model!r}",
                           f"check {role}.model (the name the server serves) and {role}.base_url (ends in /v1)")
    if isinstance(error, openai.RateLimitError):
        return CheckResult(False, name, f"{url}: HTTP 429 ({error.message})",
                           "wait, or check the account's rate limits and quota")
    if isinstance(error, openai.APIStatusError):
        return CheckResult(False, name, f"{url}: HTTP {error.status_code} ({error.message})",
                           f"check the server's log and {role}.model")
    if isinstance(error, openai.APITimeoutError):
        return CheckResult(False, name, f"{url} did not answer within {role}.timeout_s={model_cfg.timeout_s}",
                           f"check that the server is up and not overloaded, or raise {role}.timeout_s")
    if isinstance(error, openai.APIConnectionError):
        return CheckResult(False, name, f"cannot connect to {url} ({error.__cause__ or error})",
                           f"start the server, or point {role}.base_url at one that runs")
    return CheckResult(False, name, f"{type(error).__name__}: {error}", f"check {role}.base_url and {role}.model")


def _model_result(model_cfg: DictConfig, role: str) -> CheckResult:
    served = model_cfg.backend == "openai"
    name = f"{role} endpoint" if served else f"{role} model"
    try:
        seconds, tokens = asyncio.run(_one_token_call(model_cfg, role))
    except ConfigError as error:
        # A missing key lands here too, as the same line the api key check gave.
        return _failed(name, error, f"fix {role}.* as the message says")
    except openai.OpenAIError as error:
        return _endpoint_failure(name, model_cfg, role, error)
    except OSError as error:
        # transformers' "not a local folder and not on the Hub (or offline)" and missing-file errors.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return CheckResult(False, name, f"{model_cfg.model} did not load ({first_line})",
                           f"download it once online (the Hugging Face cache keeps it), or point {role}.model at a local folder")
    except Exception as error:  # noqa: BLE001 - whatever stops the model stops the job too: report it, check the rest
        return CheckResult(False, name, f"{type(error).__name__}: {error}",
                           f"delegate-eval would fail the same way; check {role}.* and the message")
    if served:
        return CheckResult(True, name, f"{model_cfg.model} at {model_cfg.base_url or OPENAI_BASE_URL} "
                                       f"answered a one-token call in {seconds:.2f} s")
    return CheckResult(True, name, f"{model_cfg.name} ({model_cfg.model}) loaded and wrote {tokens} token in {seconds:.2f} s")


def check_model(cfg: DictConfig, role: str, used_by_strategy: bool) -> CheckResult:
    """A served model answers a one-token chat call; an in-process one loads and writes one token (loading is the check)."""
    result = _model_result(cfg[role], role)
    if used_by_strategy:
        return result
    return replace(result, detail=f"{result.detail} (strategy={cfg.strategy.name} does not use {role})")


def _sqlite_probe_write(path: Path) -> None:
    """Write to the database inside a transaction and roll it back: proves file and folder are writable, leaves nothing.

    A rolled-back CREATE TABLE needs the same rights as MLflow's writes (the file, and the folder for the journal).
    """
    connection = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=10)
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute("CREATE TABLE delegate_check_probe (x INTEGER)")
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_folder(path: Path) -> bool:
    """Whether `path` could be created or written: its nearest existing folder allows writing."""
    existing = _nearest_existing(path)
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


@contextmanager
def _fast_failing_mlflow_http() -> Iterator[None]:
    """MLflow's REST client retries for minutes by default; for the check, one try and a short timeout."""
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REMOTE_STORE_TIMEOUT_S)}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiment_state(uri: str, experiment: str):
    """The experiment (or None) as MLflow reads it; reading also checks the store's schema is current."""
    from mlflow import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with _fast_failing_mlflow_http():
        return MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)


def check_tracking(cfg: DictConfig, launch_dir: Path) -> CheckResult:
    """The MLflow store a job would use can be written, and the check leaves nothing in it.

    SQLite (the default): a write rolled back inside a transaction, then MLflow reads the experiment; a database
    that does not exist yet is not created (MLflow makes it, and its folders, on first use), only where it would go
    is checked. Other stores (a server, a database) are only read: a write there would leave a run or an experiment
    behind. In every case the experiment's artifact folder, when local, must be writable.
    """
    name = "tracking"
    uri = resolve_tracking_uri(cfg.tracking, launch_dir)
    shown = redacted_uri(uri)
    experiment_name = cfg.tracking.experiment
    path = sqlite_path(uri)
    created_by_the_job = path is not None and not path.exists()
    try:
        if created_by_the_job:
            # MLflow creates the database, and its missing folders, on first use: the check does neither.
            if not _writable_folder(path.parent):
                return CheckResult(False, name, f"{shown}: cannot be created ({_nearest_existing(path.parent)} is not a writable folder)",
                                   "set tracking.uri=sqlite:///<a writable folder>/mlflow.db")
            experiment = None
        else:
            if path is not None:
                _sqlite_probe_write(path)
            experiment = _experiment_state(uri, experiment_name)
    except Exception as error:  # noqa: BLE001 - sqlite3, SQLAlchemy and MLflow each raise their own kinds
        message = " ".join(str(error).split())
        password = urlsplit(uri).password
        if password:
            # MLflow's messages quote the URI whole.
            message = message.replace(password, "***")
        if "out-of-date database schema" in message:
            fix = f"run: mlflow db upgrade {shown}"
        elif path is not None:
            fix = "make the database and its folder writable, or set tracking.uri to another store"
        else:
            fix = f"check that {shown} is up and reachable, or set tracking.uri=sqlite:///mlflow.db"
        return CheckResult(False, name, f"{shown}: {type(error).__name__}: {message[:300]}", fix)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        return CheckResult(False, name, f"{shown}: experiment {experiment_name!r} is deleted",
                           f"restore it (mlflow experiments restore --experiment-id {experiment.experiment_id}) "
                           f"or set tracking.experiment=<another name>")
    artifacts = (experiment.artifact_location if experiment is not None
                 else cfg.tracking.artifact_location or default_artifact_location(uri))
    if artifacts and artifacts.startswith("file:") and not _writable_folder(Path(unquote(urlsplit(artifacts).path))):
        return CheckResult(False, name, f"artifacts go to {artifacts}, which is not writable",
                           "make that folder writable, or set tracking.artifact_location (a new experiment) to a writable one")
    if created_by_the_job:
        return CheckResult(True, name, f"{shown} does not exist yet; delegate-eval will create it (the folder allows it)")
    state = f"experiment {experiment_name!r} {'exists' if experiment is not None else 'will be created'}"
    if path is None:
        return CheckResult(True, name, f"{shown} answers; {state} (read only: the check writes nothing to this store)")
    return CheckResult(True, name, f"{shown} is writable; {state}")


def check_data(cfg: DictConfig) -> CheckResult:
    """The configured split loads and the sample can be drawn, exactly as a job loads it."""
    name = "data"
    data = cfg.data
    source = data.path or (f"built-in {data.builtin}" if data.builtin else f"{data.hub_path} ({data.hub_name}, {data.split}) from the Hub")
    try:
        problems = load_problems(OmegaConf.to_object(data), cfg.samples, cfg.seed)
    except ConfigError as error:
        return _failed(name, error, "set data.path to a readable JSON-lines file, or use data=sample")
    drawn = "every problem" if cfg.samples is None else f"samples={cfg.samples} drawn with seed={cfg.seed}"
    return CheckResult(True, name, f"{data.name} from {source}: {len(problems)} problems ({drawn})")


def run_checks(cfg: DictConfig, launch_dir: Path) -> Iterator[CheckResult]:
    """Every check for this config, one result at a time (model loading is slow: the report can print as it goes).

    Both roles are checked whatever the strategy, since a sweep over strategies uses both; lines for a role the
    configured strategy does not use say so.
    """
    strategy = get_strategy(cfg.strategy.name)
    yield check_python()
    yield check_packages()
    for role in ROLES:
        yield check_device(cfg, role)
    for role in ROLES:
        if cfg[role].backend == "openai":
            yield check_api_key(cfg, role)
    for role in ROLES:
        yield check_model(cfg, role, role in strategy.roles)
    yield check_tracking(cfg, launch_dir)
    yield check_data(cfg)
