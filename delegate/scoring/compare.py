"""Decide whether an extracted answer equals the gold answer, for the numeric scorer."""

from fractions import Fraction

from delegate.scoring.bounded import verify_latex
from delegate.scoring.extract import normalize_answer


def _as_fraction(answer: str) -> Fraction | None:
    try:
        return Fraction(answer)
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str | None, gold: str) -> bool:
    """Exact rational equality when both sides are numbers ("18.00" == "18", "1/2" == "0.5"), else math_verify."""
    if predicted is None:
        return False
    predicted_value = normalize_answer(predicted)
    gold_value = normalize_answer(gold)
    if predicted_value is None or gold_value is None:
        return False
    predicted_number = _as_fraction(predicted_value)
    gold_number = _as_fraction(gold_value)
    if predicted_number is not None and gold_number is not None:
        return predicted_number == gold_number
    return verify_latex(gold_value, predicted_value)


def gold_is_number(gold: str) -> bool:
    """Whether `gold` reads as one number ("18", "-3.5", "3/4", "145.0", "18 dollars"), as an answer is read; a gold
    that is not (a word, an expression) could never be matched fairly."""
    value = normalize_answer(gold)
    return value is not None and _as_fraction(value) is not None
