"""Setup checks before a run: each says ✓ or ✗ about one thing a job needs, and with ✗ how to fix it."""

import asyncio
import importlib.metadata
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import openai
from omegaconf import DictConfig, OmegaConf

from delegate.config.roles import model_roles
from delegate.errors import ConfigError, ModelCallError
from delegate.models import build_model
from delegate.models.backends.openai_compatible import OPENAI_BASE_URL
from delegate.models.base import ChatRequest, GenerateConfig
from delegate.preflight import SettingCheck, run_setting_check, setting_checks, unwritable_folder
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
    # False for a role the configured strategy does not use: its failure is shown, not counted as one.
    counted: bool = True

    @property
    def failed(self) -> bool:
        """A failure that counts: the job as configured would not run."""
        return not self.ok and self.counted

    def line(self) -> str:
        """`✓ name: detail`, `✗ name: detail — fix: ...`, or `! ...` for a failure that does not count."""
        if self.ok:
            return f"✓ {self.name}: {self.detail}"
        return f"{'✗' if self.counted else '!'} {self.name}: {self.detail} — fix: {self.fix}"


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
        return CheckResult(
            False,
            "python",
            f"Python {version} at {sys.executable}",
            f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer",
        )
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
        return CheckResult(
            False,
            "packages",
            f"not installed: {', '.join(missing)}",
            "pip install -e . in the repository (or make run, which does it)",
        )
    return CheckResult(True, "packages", ", ".join(found))


def _probe_config(model_cfg: DictConfig) -> DictConfig:
    """The role's settings for the probe: same endpoint, key, timeout and model; no retries where a backend has
    them (a check should report the first failure as it is, not after backing off)."""
    return OmegaConf.merge(model_cfg, {"max_retries": 0}) if "max_retries" in model_cfg else model_cfg


async def _one_token_call(model_cfg: DictConfig, role: str) -> tuple[float, int]:
    """(seconds, completion tokens) of one chat call through the same backend class a job uses, without the cache."""
    model = build_model(_probe_config(model_cfg), role)
    try:
        started_s = time.perf_counter()
        response = await model.chat(ChatRequest(PROBE_MESSAGES, config=GenerateConfig(max_tokens=1)))
        return time.perf_counter() - started_s, response.completion_tokens
    finally:
        await model.aclose()


def _endpoint_failure(name: str, model_cfg: DictConfig, role: str, error: ModelCallError) -> CheckResult:
    """A failed call to a served model as a report line, by its HTTP status or kind (the openai SDK's error class); a
    refused key's message is left out (servers echo part of the key)."""
    url = model_cfg.base_url or OPENAI_BASE_URL
    status = error.status_code
    if status in (401, 403):
        fix = (
            f"check the key in ${model_cfg.api_key_env}"
            if model_cfg.api_key_env
            else f"the server wants a key: set {role}.api_key_env=<VARIABLE> and export that variable"
        )
        return CheckResult(False, name, f"{url} refused the key (HTTP {status})", fix)
    if status == 404:
        return CheckResult(
            False,
            name,
            f"{url}: HTTP 404 for model {model_cfg.model!r}",
            f"check {role}.model (the name the server serves) and {role}.base_url (ends in /v1)",
        )
    if status == 429:
        return CheckResult(
            False, name, f"{url}: HTTP 429 ({error.detail})", "wait, or check the account's rate limits and quota"
        )
    if status is not None:
        return CheckResult(
            False, name, f"{url}: HTTP {status} ({error.detail})", f"check the server's log and {role}.model"
        )
    if error.kind == openai.APITimeoutError.__name__:
        return CheckResult(
            False,
            name,
            f"{url} did not answer within {role}.timeout_s={model_cfg.timeout_s}",
            f"check that the server is up and not overloaded, or raise {role}.timeout_s",
        )
    if error.kind == openai.APIConnectionError.__name__:
        return CheckResult(
            False,
            name,
            f"cannot connect to {url} ({error.detail})",
            f"start the server, or point {role}.base_url at one that runs",
        )
    return CheckResult(False, name, str(error), f"check {role}.base_url and {role}.model")


def _model_result(model_cfg: DictConfig, role: str) -> CheckResult:
    # A served model has an endpoint; an in-process one loads weights.
    served = "base_url" in model_cfg
    name = f"{role} endpoint" if served else f"{role} model"
    try:
        seconds, tokens = asyncio.run(_one_token_call(model_cfg, role))
    except ConfigError as error:
        return _failed(name, error, f"fix {role}.* as the message says")
    except ModelCallError as error:
        if served:
            return _endpoint_failure(name, model_cfg, role, error)
        # transformers' "not a local folder and not on the Hub (or offline)", a broken weights file, ...
        first_line = error.detail.strip().splitlines()[0] if error.detail.strip() else error.kind
        return CheckResult(
            False,
            name,
            f"{model_cfg.model} did not load ({error.kind}: {first_line})",
            f"delegate-eval would fail the same way; check {role}.model and {role}.gguf_file",
        )
    if served:
        return CheckResult(
            True,
            name,
            f"{model_cfg.model} at {model_cfg.base_url or OPENAI_BASE_URL} "
            f"answered a one-token call in {seconds:.2f} s",
        )
    return CheckResult(
        True, name, f"{model_cfg.name} ({model_cfg.model}) loaded and wrote {tokens} token in {seconds:.2f} s"
    )


def check_model(cfg: DictConfig, role: str, used_by_strategy: bool) -> CheckResult:
    """A served model answers a one-token chat call; an in-process one loads and writes one token (loading is the check)."""
    result = _model_result(cfg[role], role)
    return result if used_by_strategy else _for_unused_role(result, cfg, role)


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


def check_store(cfg: DictConfig, launch_dir: Path) -> CheckResult:
    """Beyond the settings check of the store's URI (delegate.preflight.check_tracking): the store a job would use can
    be written and its experiment used, and the check leaves nothing in it.

    An existing SQLite database: a write rolled back inside a transaction, then MLflow reads the experiment; one that
    does not exist yet is not created (MLflow makes it on first use). Other stores (a server, a database) are only
    read: a write there would leave a run or an experiment behind. In every case the experiment's artifact folder,
    when local, must be writable.
    """
    name = "tracking store"
    uri = resolve_tracking_uri(cfg.tracking, launch_dir)
    shown = redacted_uri(uri)
    experiment_name = cfg.tracking.experiment
    path = sqlite_path(uri)
    experiment = None
    try:
        if path is None or path.exists():
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
        return CheckResult(
            False,
            name,
            f"{shown}: experiment {experiment_name!r} is deleted",
            f"restore it (mlflow experiments restore --experiment-id {experiment.experiment_id}) "
            f"or set tracking.experiment=<another name>",
        )
    artifacts = (
        experiment.artifact_location
        if experiment is not None
        else cfg.tracking.artifact_location or default_artifact_location(uri)
    )
    if artifacts and artifacts.startswith("file:") and unwritable_folder(Path(unquote(urlsplit(artifacts).path))):
        return CheckResult(
            False,
            name,
            f"artifacts go to {artifacts}, which is not writable",
            "make that folder writable, or set tracking.artifact_location (a new experiment) to a writable one",
        )
    state = f"experiment {experiment_name!r} {'exists' if experiment is not None else 'will be created'}"
    if path is None:
        return CheckResult(True, name, f"{shown} answers; {state} (read only: the check writes nothing to this store)")
    if not path.exists():
        return CheckResult(True, name, f"{state}, with its artifacts in {artifacts}")
    return CheckResult(True, name, f"{shown} is writable; {state}")


def _for_unused_role(result: CheckResult, cfg: DictConfig, role: str) -> CheckResult:
    return replace(result, detail=f"{result.detail} (strategy={cfg.strategy.name} does not use {role})", counted=False)


def check_setting(check: SettingCheck) -> CheckResult:
    """One of delegate-eval's settings checks (delegate.preflight) as a report line."""
    try:
        return CheckResult(True, check.name, run_setting_check(check))
    except ConfigError as error:
        return _failed(check.name, error, "change the setting as the message says")


def run_checks(cfg: DictConfig, launch_dir: Path) -> Iterator[CheckResult]:
    """Every check for this config, one result at a time (model loading is slow: the report can print as it goes).

    Python and the key packages; the settings checks delegate-eval runs before every job (delegate.preflight); a
    one-token call to each model whose settings passed (a role whose setting failed is not called: its ✗ line is
    the one that says why); and the tracking store, read. Every role the config names a model for is checked
    whatever the strategy, since a sweep over strategies uses them all; lines for a role the configured strategy does not use say so, and their
    failures (`!`) do not count.
    """
    strategy = get_strategy(cfg.strategy.name)
    yield check_python()
    yield check_packages()
    failed = set()
    roles = model_roles(cfg)
    for check in setting_checks(cfg, launch_dir, roles):
        result = check_setting(check)
        if check.role is not None and check.role not in strategy.roles:
            result = _for_unused_role(result, cfg, check.role)
        if not result.ok:
            failed.add(check.role or check.name)
        yield result
    for role in roles:
        if role not in failed:
            yield check_model(cfg, role, role in strategy.roles)
    if "tracking" not in failed:
        yield check_store(cfg, launch_dir)
