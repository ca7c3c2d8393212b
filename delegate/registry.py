"""One registry mechanism for everything a config names by a string: strategies, model backends, scorers.

A kind of thing lives in one package; each module of that package registers what it defines with a decorator when
it is imported (`@STRATEGIES.register("router", ...)`), and the registry imports the package's modules the first time
a name is looked up, so a new strategy, backend or scorer is one new module and no list is kept in step. Modules
found this way must import only light dependencies at their top (a model SDK is imported when a model is built, so
`--help` and config composition import none).

Modelled on Inspect AI's `registry_add` / `registry_create`.
"""

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from delegate.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, discovered from the modules of `package`.

    `setting` is how a config names the choice (e.g. "strategy", "data.scorer"): unknown names raise ConfigError as
    one line, `<setting>=<name> is unknown; use one of [...]`.
    """

    def __init__(self, kind: str, package: str, setting: str):
        self.kind = kind
        self.package = package
        self.setting = setting
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that adds the decorated object under `name` (a second object under a taken name is a bug)."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        """Add `entry` under `name`; registering the same name twice is a programming error (ValueError)."""
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def discover(self) -> None:
        """Import every module of the package once, so each registers its entries."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def get(self, name: str) -> T:
        """The entry named `name`; ConfigError naming the setting and the known names when there is none."""
        self.discover()
        if name not in self._entries:
            raise ConfigError(
                f"{self.setting}={name} is unknown; use one of {self.names()} (one of your own: name the module that "
                "registers it in DELEGATE_PLUGINS)"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def items(self) -> Iterator[tuple[str, T]]:
        self.discover()
        return iter(sorted(self._entries.items()))
