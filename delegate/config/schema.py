"""Dataclass schemas for every config group, so a misspelt key or a wrong type fails at compose time."""

from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from delegate.config.bounds import Bound, bounded


@dataclass
class DataConfig:
    name: str = MISSING
    # Hub dataset (used when none of `path`, `file` and `builtin` is set).
    hub_path: Optional[str] = None
    hub_name: Optional[str] = None
    split: str = "test"
    # A local JSON-lines file with the same fields; wins over everything else.
    path: Optional[str] = None
    # A JSON-lines file in the data folder, e.g. "svamp/test.jsonl": $DELEGATE_DATA_DIR, else ./data.
    file: Optional[str] = None
    # A file shipped in delegate/data/builtin/, e.g. "sample.jsonl".
    builtin: Optional[str] = None
    question_field: str = "question"
    # The question made of several fields, e.g. "{Body} {Question}"; null = `question_field` alone.
    question_template: Optional[str] = None
    answer_field: str = "answer"
    # The field holding the gold answer; null = `answer_field` (its older name).
    gold_field: Optional[str] = None
    # The gold answer is what follows this marker in the gold field; null = the whole field.
    gold_marker: Optional[str] = "####"
    # The scorer (delegate.scoring: numeric, symbolic, exact) that reads the gold and judges each answer; a row
    # whose gold it cannot use is skipped and counted (n_skipped).
    scorer: str = "numeric"
    # More scorers whose verdicts each record also keeps (`SampleRecord.scores`), e.g. [exact].
    scorers: list[str] = field(default_factory=list)


@dataclass
class PromptConfig:
    system: Optional[str] = None
    user: str = "{question}"


@dataclass
class ModelConfig:
    """Fields shared by every backend; a backend's own schema extends this, next to the backend
    (delegate/models/backends/). Number fields carry their bounds (`bounded`), which preflight checks."""

    backend: str = MISSING
    name: str = MISSING
    model: str = MISSING
    # USD per million tokens. Cached input: prompt tokens the provider served from its prompt cache (OpenAI reports
    # them as prompt_tokens_details.cached_tokens); null = the input price.
    price_input_usd_per_1m: float = bounded(0.0, Bound(0))
    price_cached_input_usd_per_1m: Optional[float] = bounded(None, Bound(0))
    price_output_usd_per_1m: float = bounded(0.0, Bound(0))


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
    # Deterministic calls (temperature 0, greedy in-process) and seeded samples (per sample index) are stored and
    # replayed from SQLite.
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
    samples: Optional[int] = bounded(None, Bound(1))
    seed: int = 123
    device: str = "auto"
    concurrency: int = bounded(4, Bound(1))
    run_name: Optional[str] = None
    # A run folder or MLflow run id to continue: finished problems are kept, the rest are solved.
    resume: Optional[str] = None
    # With resume: also solve again the problems a model failure shaped (`degraded`), not only those that errored.
    redo_degraded: bool = True
    # Stop starting problems once more than this share of the finished ones errored (the run ends FAILED).
    max_error_rate: float = bounded(0.5, Bound(0, high=1))
    # Stop starting problems once the finished ones cost this much (USD); null = no budget.
    max_cost_usd: Optional[float] = bounded(None, Bound(0, low_included=False))


def config_schema(roles: tuple[str, ...]) -> type:
    """`Config`, with a field (a model, or null) for each model role beyond `llm` and `slm` (a strategy's
    `verifier`), so `+verifier=local` composes."""
    extra = [role for role in roles if role not in {f.name for f in fields(Config)}]
    if not extra:
        return Config
    return make_dataclass("Config", [(role, Any, field(default=None)) for role in extra], bases=(Config,))


def register_base_schemas(roles: tuple[str, ...] = ("llm", "slm")) -> None:
    """Store every schema; group files extend them through their defaults lists. Backend schemas are stored by
    the backend registry (`register_backend_schemas`), strategy schemas by the strategy registry."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=config_schema(roles))
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="tracking", name="tracking_schema", node=TrackingConfig)
