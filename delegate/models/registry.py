"""One registry of model backends: the config's `backend` names the class."""

from dataclasses import asdict

from omegaconf import DictConfig, OmegaConf

from delegate.config.schema import MODEL_SCHEMAS
from delegate.errors import ConfigError
from delegate.models.base import ChatModel
from delegate.models.cache import CachedModel, ResponseCache, is_deterministic, model_identity
from delegate.models.openai_compatible import OpenAICompatibleModel
from delegate.models.redacted import RedactedModel
from delegate.models.transformers_local import TransformersModel
from delegate.redaction import register_config_secrets

BACKENDS = {"openai": OpenAICompatibleModel, "transformers": TransformersModel}


def build_model(cfg: DictConfig, role: str, cache: ResponseCache | None = None) -> ChatModel:
    """The backend for `<role>` (llm or slm), built lazily (nothing loads until the first call), its replies and
    failures redacted (RedactedModel; the credentials of the config's URLs are registered first), behind `cache` if
    deterministic."""
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"{role}.backend={cfg.backend!r} is unknown; use one of {sorted(BACKENDS)}")
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, MODEL_SCHEMAS[cfg.backend]):
        raise ConfigError(f"{role}: the group file must extend {cfg.backend}_schema in its defaults list")
    register_config_secrets(asdict(typed))
    model = RedactedModel(BACKENDS[cfg.backend](typed, role), role)
    if cache is not None and is_deterministic(typed):
        return CachedModel(model, cache, model_identity(typed))
    return model
