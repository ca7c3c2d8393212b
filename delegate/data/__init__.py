"""Problems: loading a dataset split, parsing gold answers, drawing a seeded sample."""

from delegate.data.loader import load_problems
from delegate.data.problem import Problem

__all__ = ["Problem", "load_problems"]
