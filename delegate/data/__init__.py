"""Problems: reading a dataset split and checking its rows, parsing gold answers, drawing a seeded sample."""

from delegate.data.loader import Split, dataset_id, draw_sample, load_problems, load_split, read_split
from delegate.data.problem import Problem

__all__ = ["Problem", "Split", "dataset_id", "draw_sample", "load_problems", "load_split", "read_split"]
