"""Strategies (llm, slm, router, ...): every module in this package registers itself when imported."""

import importlib
import pkgutil

from delegate.strategies.registry import STRATEGIES, Attempt, Strategy, get_strategy, register_strategy

# A new strategy is one new module here plus one YAML file: no list to keep in step.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STRATEGIES", "Attempt", "Strategy", "get_strategy", "register_strategy"]
