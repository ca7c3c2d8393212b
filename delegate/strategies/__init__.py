"""Strategies (llm, slm, router, ...): every module in this package registers itself when the registry discovers it."""

from delegate.strategies.registry import STRATEGIES, Attempt, Strategy, get_strategy, register_strategy

__all__ = ["STRATEGIES", "Attempt", "Strategy", "get_strategy", "register_strategy"]
