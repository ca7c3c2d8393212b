"""Dataclass schemas for every config group, so a misspelt key or a wrong type fails at compose time."""

from dataclasses import dataclass, field, fields, make_dataclass
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataConfig:
    name: str = MISSING
    # Hub dataset (used when neither `path` nor `builtin` is set).
    hub_path: Optional[str] = None
    hub_name: Optional[str] = None
    split: str = "test"
    # A local JSON-lines file with the same fields; wins over the Hub.
    path: Optional[str] = None
    # A file shipped in delegate/data/builtin/, e.g. "sample.jsonl".
    builtin: Optional[str] = None
    question_field: str = "question"
    answer_field: str = "answer"
    # The gold answer is what follows this marker in the answer field; null = the whole field.
    gold_marker: Optional[str] = "####"


@dataclass
class PromptConfig:
    system: Optional[str] = None
    user: str = "{question}"


@dataclass
class ModelConfig:
    """Fields shared by every backend."""

    backend: str = MISSING
    name: str = MISSING
    model: str = MISSING
    # USD per million tokens. Cached input: prompt tokens the provider served from its prompt cache (OpenAI reports
    # them as prompt_tokens_details.cached_tokens); null = the input price.
    price_input_usd_per_1m: float = 0.0
    price_cached_input_usd_per_1m: Optional[float] = None
    price_output_usd_per_1m: float = 0.0


class MaxTokensParam(str, Enum):
    """The request field that carries `max_tokens`."""

    max_tokens = "max_tokens"  # chat models and most OpenAI-compatible servers
    max_completion_tokens = "max_completion_tokens"  # OpenAI's reasoning models (o-series, gpt-5), which refuse max_tokens


@dataclass
class OpenAIModelConfig(ModelConfig):
    backend: str = "openai"
    base_url: Optional[str] = None
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    # The output bound of every call (reasoning tokens included, for reasoning models), sent as `max_tokens_param`.
    max_tokens: int = 1024
    max_tokens_param: MaxTokensParam = MaxTokensParam.max_tokens
    # null = not sent (the server's default; reasoning models accept no other). Only 0 makes calls cacheable.
    temperature: Optional[float] = 0.0
    timeout_s: float = 120.0
    # Retries of a call that may pass next time (HTTP 408, 409, 429, 5xx, connection errors, timeouts, a malformed
    # 200): after the wait the server asked for (Retry-After, retry-after-ms), else `retry_backoff_s` doubling up to
    # `retry_max_backoff_s`; each wait gets up to half again as jitter. 8 absorbs a steady 429 on one call in three.
    # A 429 or 503 also holds every call to the same base_url (both roles) for that wait; HTTP 400, 401, 403 or 404
    # three times in a row stops the run with one line naming the setting to fix (EndpointFailing).
    max_retries: int = 8
    # The first wait of the backoff (seconds).
    retry_backoff_s: float = 0.5
    # The longest wait before a retry (seconds; a longer Retry-After is cut to it), jitter aside.
    retry_max_backoff_s: float = 30.0
    # Requests in flight to this endpoint at once; null = no limit beyond `concurrency`.
    max_requests_in_flight: Optional[int] = None


@dataclass
class TransformersModelConfig(ModelConfig):
    backend: str = "transformers"
    gguf_file: Optional[str] = None
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = 512
    # Concurrent calls are gathered into one left-padded generate: up to this many (1 = no batching) ...
    max_batch_size: int = 8
    # ... waiting at most this long for companions once the first call arrives.
    batch_wait_ms: float = 20.0
    # For chat templates that ignore `tools`: appended to the system message, `{tools}` replaced by their JSON;
    # calls are then read back as Hermes <tool_call> blocks. Null: rely on the chat template.
    tool_prompt: Optional[str] = None


@dataclass
class StrategyConfig:
    """Fields every strategy has; a strategy's own schema extends this."""

    name: str = MISSING


@dataclass
class TrackingConfig:
    # null: $MLFLOW_TRACKING_URI, else sqlite:///<launch dir>/mlflow.db
    uri: Optional[str] = None
    experiment: str = "delegate-gsm8k"
    # null: <directory of mlflow.db>/mlartifacts for SQLite stores, MLflow's default otherwise.
    artifact_location: Optional[str] = None
    # Each problem as an MLflow trace: model calls (CHAT_MODEL) and delegations (TOOL), linked to the run.
    traces: bool = True


@dataclass
class CacheConfig:
    # Deterministic calls (temperature 0, greedy in-process) are stored and replayed from SQLite.
    enabled: bool = True
    # null: <launch dir>/.cache/delegate/responses.sqlite
    path: Optional[str] = None


@dataclass
class Config:
    data: DataConfig = MISSING
    # Typed by the schema each group file extends (a backend's or a strategy's).
    strategy: Any = MISSING
    llm: Any = MISSING
    slm: Any = MISSING
    tracking: TrackingConfig = MISSING
    cache: CacheConfig = field(default_factory=CacheConfig)
    samples: Optional[int] = None
    seed: int = 123
    device: str = "auto"
    concurrency: int = 4
    run_name: Optional[str] = None
    # A run folder or MLflow run id to continue: finished problems are kept, the rest are solved.
    resume: Optional[str] = None
    # With resume: also solve again the problems a model failure shaped (`degraded`), not only those that errored.
    redo_degraded: bool = True
    # Stop starting problems once more than this share of the finished ones errored (the run ends FAILED).
    max_error_rate: float = 0.5
    # Stop starting problems once the finished ones cost this much (USD); null = no budget.
    max_cost_usd: Optional[float] = None


MODEL_SCHEMAS = {"openai": OpenAIModelConfig, "transformers": TransformersModelConfig}


def config_schema(roles: tuple[str, ...]) -> type:
    """`Config`, with a field (a model, or null) for each model role beyond `llm` and `slm` (a strategy's
    `verifier`), so `+verifier=local` composes."""
    extra = [role for role in roles if role not in {f.name for f in fields(Config)}]
    if not extra:
        return Config
    return make_dataclass("Config", [(role, Any, field(default=None)) for role in extra], bases=(Config,))


def register_base_schemas(roles: tuple[str, ...] = ("llm", "slm")) -> None:
    """Store every schema; group files extend them through their defaults lists. Each model role's group gets each
    backend's schema (a model file names `openai_schema` whatever role it is chosen for)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=config_schema(roles))
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="tracking", name="tracking_schema", node=TrackingConfig)
    for role in roles:
        for backend, schema in MODEL_SCHEMAS.items():
            cs.store(group=role, name=f"{backend}_schema", node=schema)
    # Strategy schemas are stored by the strategy registry, next to each strategy.
