"""The model roles of a composed config: every top-level node that is a model (has a `backend`), e.g. `llm`, `slm`
and any role a strategy adds (`verifier`). Records, metrics, tags and the report iterate over these."""

from typing import Any

from omegaconf import DictConfig


def model_roles(cfg: Any) -> tuple[str, ...]:
    """The roles `cfg` names a model for, in config order; () when it names none."""
    return tuple(
        str(key) for key, node in cfg.items() if isinstance(node, DictConfig) and "backend" in node
    )
