"""Bounds of number settings, kept on the schema fields they concern and checked in one way for all of them."""

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from delegate.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """The values a number setting accepts: from `low` (itself allowed when `low_included`) up to `high`, if any."""

    low: float
    low_included: bool = True
    high: float | None = None

    def admits(self, value: float) -> bool:
        above = value >= self.low if self.low_included else value > self.low
        return above and (self.high is None or value <= self.high)

    @property
    def rule(self) -> str:
        if self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        return f"at least {self.low:g}" if self.low_included else f"greater than {self.low:g}"

    @property
    def allowed(self) -> str:
        if self.high is not None:
            return f"a value from {self.low:g} to {self.high:g}"
        return f"{self.low:g} or more" if self.low_included else f"more than {self.low:g}"


def bounded(default: Any, bound: Bound) -> Any:
    """A schema field with `default` whose values `bound` limits (read back by `field_bounds`)."""
    return field(default=default, metadata={"bound": bound})


def field_bounds(schema: type) -> dict[str, Bound]:
    """The bounds a dataclass schema declares on its fields (`bounded`), by field name, in field order."""
    return {f.name: f.metadata["bound"] for f in fields(schema) if "bound" in f.metadata}


def _optional(found: Field) -> bool:
    """Whether the field may be null (its default is None)."""
    return found.default is None and found.default_factory is MISSING


def check_bounds(values: Mapping[str, Any], schema: type, prefix: str, bounds: dict[str, Bound] | None = None) -> None:
    """ConfigError (one line: the setting, the rule, the values allowed) for the first of `values` outside its bound:
    `bounds`, else those on `schema`'s fields. `prefix` leads each setting's name (e.g. "llm."); null values pass."""
    by_name = {f.name: f for f in fields(schema)}
    for name, bound in (field_bounds(schema) if bounds is None else bounds).items():
        value = values.get(name)
        if value is None or bound.admits(value):
            continue
        setting = f"{prefix}{name}"
        null = ", or to null" if name in by_name and _optional(by_name[name]) else ""
        raise ConfigError(f"{setting}={value}: must be {bound.rule}; set {setting} to {bound.allowed}{null}")
