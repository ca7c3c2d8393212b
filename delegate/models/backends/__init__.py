"""Model backends (openai, transformers): every module here registers its backend class, with its schema, when
imported; none imports its model SDK at its top, so finding them (`--help`, composing config) loads no SDK."""

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from delegate.errors import ConfigError
from delegate.registry import Registry


class Backend(Protocol):
    """A backend class: built from its typed schema and a role, it is a ChatModel."""

    # The dataclass its config group files extend (`<name>_schema` in the llm and slm groups).
    schema: ClassVar[type]

    def __init__(self, cfg: Any, role: str) -> None: ...

    @classmethod
    def setting_checks(cls, cfg: DictConfig, role: str) -> dict[str, Callable[[], str]]:
        """What preflight checks for `role` on this backend before a run, by check name (`settings`, `device`, and
        `api key` or `weights`): each returns what it found, one phrase, or raises ConfigError. Side-effect free."""
        ...


BACKENDS: Registry[Backend] = Registry("model backend", __name__, "backend")


def backend_class(name: str, role: str) -> Backend:
    """The backend registered as `name`; ConfigError naming `<role>.backend` and the known names when none is."""
    if name not in BACKENDS:
        raise ConfigError(f"{role}.backend={name!r} is unknown; use one of {BACKENDS.names()}")
    return BACKENDS.get(name)


def register_backend_schemas(groups: tuple[str, ...]) -> None:
    """Store each backend's schema in each model role's group (`groups`), as `<backend>_schema`, for group files to
    extend (a model file names `openai_schema` whatever role it is chosen for)."""
    store = ConfigStore.instance()
    for name, backend in BACKENDS.items():
        for group in groups:
            store.store(group=group, name=f"{name}_schema", node=backend.schema)
