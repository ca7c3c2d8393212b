"""One problem to solve: a stable id, the question, and the gold answer."""

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Problem:
    # Index in the full split, so the same problem has the same id in every run and sample.
    id: int
    question: str
    gold: str
    # The split it comes from (`dataset_id`): a problem's identity across runs is (dataset, id).
    dataset: str = ""


def parse_gold(answer: str, marker: str | None) -> str:
    """The text after the last `marker` (GSM8K: '####'), thousands commas removed."""
    if marker is not None:
        if marker not in answer:
            raise ValueError(f"answer has no {marker!r} marker: {answer[-80:]!r}")
        answer = answer.rsplit(marker, 1)[1]
    return answer.strip().replace(",", "")


def gold_is_number(gold: str) -> bool:
    """Whether the scorer reads `gold` as one number ("18", "-3.5", "3/4", "145.0", "18 dollars"), as it reads
    an answer; a gold that is not (a word, an expression) could never be matched fairly."""
    from delegate.scoring.extract import normalize_answer

    value = normalize_answer(gold)
    if value is None:
        return False
    try:
        Fraction(value)
    except (ValueError, ZeroDivisionError):
        return False
    return True
