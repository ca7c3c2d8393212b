"""Bootstrapping a config: register every schema (each strategy's and backend's too), compose delegate/conf/ with
the user's folders for some overrides, and type a saved config by its schemas. It sits above the library (it imports
the strategies and backends); the ground floor's `delegate.config` only describes."""

import importlib
import os

from omegaconf import DictConfig, OmegaConf

from delegate.config.search_path import CONFIG_DIR
from delegate.errors import ConfigError

# Modules of the user's own (comma-separated, importable from the launch directory or PYTHONPATH) that register
# strategies, scorers or backends, imported before any config composes.
PLUGINS_ENV = "DELEGATE_PLUGINS"


def import_plugins() -> None:
    """Import each module $DELEGATE_PLUGINS names, so what it registers (a strategy with its schema and roles, a
    scorer, a backend) is known before Hydra composes. Raises ConfigError naming the setting for one that fails."""
    for name in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - any failure of the user's module is one line naming it
            raise ConfigError(
                f"{PLUGINS_ENV}={os.environ[PLUGINS_ENV]}: cannot import {name} ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); put the module on PYTHONPATH or fix it"
            ) from None


def register_schemas() -> None:
    """Store every schema (models, data, tracking, and each strategy's) before Hydra composes, after importing the
    user's plugin modules ($DELEGATE_PLUGINS). Raises ConfigError for a plugin that cannot be imported."""
    import_plugins()
    from delegate.config.roles import role_groups
    from delegate.config.schema import register_base_schemas
    from delegate.models.backends import register_backend_schemas
    from delegate.strategies import STRATEGIES

    STRATEGIES.discover()  # each strategy stores its own schema, and adds its model roles, when imported
    register_base_schemas(role_groups())
    register_backend_schemas(role_groups())


def compose_config(overrides: list[str]) -> DictConfig:
    """The job config for these overrides, as `delegate-eval` would compose it (without the `hydra` node): from
    delegate/conf/ and the user's config folders (`delegate.config.search_path`)."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def typed_config(cfg: DictConfig) -> DictConfig:
    """`cfg` typed by its schemas, as composing delegate/conf/ types it; a config that already is comes back unchanged.

    A run's saved `.hydra/config.yaml` has no defaults list, so Hydra composes it untyped (plain dicts, enums as
    text); this gives it the schemas its groups name (`strategy.name`, `llm.backend`, `slm.backend`) and checks it
    as compose time would. Raises ConfigError naming the setting when the saved config does not fit them.
    """
    from hydra.core.config_store import ConfigStore
    from hydra.plugins.config_source import ConfigLoadError
    from omegaconf.errors import OmegaConfBaseException

    from delegate.config.roles import role_groups
    from delegate.config.schema import Config, config_schema
    from delegate.errors import ConfigError

    if isinstance(OmegaConf.get_type(cfg), type) and issubclass(OmegaConf.get_type(cfg), Config):
        return cfg
    register_schemas()
    store = ConfigStore.instance()
    typed = OmegaConf.structured(config_schema(role_groups()))
    roles = [key for key in cfg if OmegaConf.select(cfg, f"{key}.backend") is not None]
    groups = {"strategy": ("strategy", "name"), **{role: (role, "backend") for role in roles}}
    for key, (group, field) in groups.items():
        choice = OmegaConf.select(cfg, f"{key}.{field}")
        try:
            typed[key] = store.load(f"{group}/{choice}_schema.yaml").node
        except ConfigLoadError:
            known = sorted(
                name.removesuffix("_schema.yaml") for name in store.list(group) if name.endswith("_schema.yaml")
            )
            raise ConfigError(f"{key}.{field}={choice}: unknown {field}; use one of {known}") from None
    try:
        typed.merge_with(cfg)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{error.full_key}: {str(error).splitlines()[0]}") from None
    OmegaConf.set_struct(typed, True)
    return typed
