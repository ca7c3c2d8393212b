"""Building a role's model from its config: the backend its `backend` names, redacted, behind the response cache."""

from dataclasses import asdict

from omegaconf import DictConfig, OmegaConf

from delegate.errors import ConfigError
from delegate.models.backends import backend_class
from delegate.models.base import ChatModel
from delegate.models.cache import CachedModel, ResponseCache
from delegate.models.redacted import RedactedModel
from delegate.redaction import register_config_secrets


def build_model(cfg: DictConfig, role: str, cache: ResponseCache | None = None) -> ChatModel:
    """The backend for `<role>` (llm or slm), built lazily (nothing loads until the first call), its replies and
    failures redacted (RedactedModel; the credentials of the config's URLs are registered first), behind `cache`
    (which stores only the calls it can replay exactly: see `is_cacheable`)."""
    backend = backend_class(cfg.backend, role)
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, backend.schema):
        raise ConfigError(f"{role}: the group file must extend {cfg.backend}_schema in its defaults list")
    register_config_secrets(asdict(typed))
    model = RedactedModel(backend(typed, role), role)
    if cache is not None:
        return CachedModel(model, cache, typed)
    return model
