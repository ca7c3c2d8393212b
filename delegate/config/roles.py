"""The model roles of a composed config: every top-level node that is a model (has a `backend`), e.g. `llm`, `slm`
and any role a strategy adds (`verifier`). Records, metrics, tags and the report iterate over these."""

from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig

from delegate.errors import ConfigError

# The model roles whose config groups exist (`llm=...`): the reference study's two, and each role a registered
# strategy declares (added when strategies are registered). Every one is served from the `model/` config folder.
_ROLE_GROUPS: dict[str, None] = dict.fromkeys(("llm", "slm"))


def add_role_groups(roles: Iterable[str]) -> None:
    """Make each of `roles` a config group of models (e.g. a strategy's `verifier`)."""
    _ROLE_GROUPS.update(dict.fromkeys(roles))


def role_groups() -> tuple[str, ...]:
    """Every model role with a config group, in the order they were added (llm, slm first)."""
    return tuple(_ROLE_GROUPS)


def model_roles(cfg: Any) -> tuple[str, ...]:
    """The roles `cfg` names a model for, in config order; () when it names none."""
    return tuple(str(key) for key, node in cfg.items() if isinstance(node, DictConfig) and "backend" in node)


def check_role_models(cfg: Any, strategy: str, roles: tuple[str, ...]) -> None:
    """ConfigError, naming the role and the fix, unless `cfg` gives a model to each of `roles` (those `strategy`
    uses; a strategy's own role has none until given one)."""
    missing = [role for role in roles if role not in model_roles(cfg)]
    if missing:
        raise ConfigError(
            f"{missing[0]}: strategy={strategy} uses the role {missing[0]}, which has no model; give it one, "
            f"e.g. +{missing[0]}=local (any model of the model/ folder)"
        )
