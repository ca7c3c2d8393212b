"""Problems: loading a dataset split, parsing gold answers, drawing a seeded sample."""

from delegate.data.loader import dataset_id, load_problems
from delegate.data.problem import Problem

__all__ = ["Problem", "dataset_id", "load_problems"]
