"""Score a model reply against a GSM8K gold answer, recording how the answer was found."""

from dataclasses import dataclass

from delegate.scoring.compare import answers_match
from delegate.scoring.extract import Extraction, extract_answer, extract_answer_with_rule, read_values

__all__ = [
    "Extraction",
    "Score",
    "answers_match",
    "extract_answer",
    "extract_answer_with_rule",
    "is_correct",
    "read_values",
    "score",
]


@dataclass(frozen=True)
class Score:
    """What a sample record stores: the extracted answer, the rule that found it, and whether it matches gold."""

    extracted: str | None
    rule: str
    correct: bool


def score(text: str, gold: str) -> Score:
    """Extract the final answer from text and compare it with gold."""
    extraction = extract_answer_with_rule(text)
    return Score(extracted=extraction.answer, rule=extraction.rule, correct=answers_match(extraction.answer, gold))


def is_correct(text: str, gold: str) -> bool:
    """Whether the final answer in text equals gold."""
    return score(text, gold).correct
