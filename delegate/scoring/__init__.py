"""Scorers: each reads a dataset's gold answers, finds the answer in a reply and says how (the rule), and judges it.

A dataset's config names its scorer (`data.scorer: numeric`, `symbolic` or `exact`) and any more whose verdicts are
also recorded (`data.scorers`); `get_scorer(name)` gives it. A new answer type is one module here that registers a
scorer with `@register_scorer("<name>")`. Importing this package loads no scorer (nor math-verify): the registry
imports its modules on the first look-up.
"""

from delegate.scoring.base import SCORERS, Extraction, Score, Scorer, get_scorer, register_scorer, score_with
from delegate.scoring.extract import extract_answer

__all__ = ["SCORERS", "Extraction", "Score", "Scorer", "extract_answer", "get_scorer", "register_scorer", "score_with"]
