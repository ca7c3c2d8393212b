"""Decide whether an extracted answer equals the gold answer."""

import inspect
import threading
from collections.abc import Callable
from fractions import Fraction

from math_verify import parse, verify

from delegate.scoring.extract import normalize_answer


def _without_timeout(function: Callable[..., object], keyword: str) -> dict[str, None]:
    return {keyword: None} if keyword in inspect.signature(function).parameters else {}


# math_verify bounds a runaway answer (\boxed{10^{10^{10}}}) with signal.alarm, which only works in the main
# thread, where the pipeline scores; elsewhere (a caller's worker thread) the bound must be switched off.
_PARSE_UNBOUNDED = _without_timeout(parse, "parsing_timeout")
_VERIFY_UNBOUNDED = _without_timeout(verify, "timeout_seconds")


def _as_fraction(answer: str) -> Fraction | None:
    try:
        return Fraction(answer)
    except (ValueError, ZeroDivisionError):
        return None


def _math_verify_match(predicted: str, gold: str) -> bool:
    in_main_thread = threading.current_thread() is threading.main_thread()
    parse_options = {} if in_main_thread else _PARSE_UNBOUNDED
    verify_options = {} if in_main_thread else _VERIFY_UNBOUNDED
    try:
        gold_parsed = parse(f"${gold}$", **parse_options)
        predicted_parsed = parse(f"${predicted}$", **parse_options)
        return bool(verify(gold_parsed, predicted_parsed, **verify_options))
    except Exception:  # math_verify raises on odd LaTeX; an unparseable answer is simply not a match
        return False


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
    return _math_verify_match(predicted_value, gold_value)
