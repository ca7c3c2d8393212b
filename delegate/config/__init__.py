"""Typed config schemas, their registration in Hydra's ConfigStore, and composing conf/ from code."""

from pathlib import Path

from omegaconf import DictConfig

# conf/ beside the package (an editable install or a checkout).
CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


def register_schemas() -> None:
    """Store every schema (models, data, tracking, and each strategy's) before Hydra composes."""
    from delegate.config.schema import register_base_schemas

    register_base_schemas()
    import delegate.strategies  # noqa: F401 - each strategy stores its own schema on import


def compose_config(overrides: list[str]) -> DictConfig:
    """The job config for these overrides, as `delegate-eval` would compose it (without the `hydra` node)."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


__all__ = ["CONFIG_DIR", "compose_config", "register_schemas"]
