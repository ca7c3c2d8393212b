"""Scoring compares numbers exactly, falls back to math_verify, and is safe in worker threads."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from delegate.scoring import Score, answers_match, is_correct, score

CASES = [
    # (reply, gold, extracted, rule, correct)
    (r"\boxed{18}", "18", "18", "boxed", True),
    (r"\boxed{17}", "18", "17", "boxed", False),
    (r"\boxed{\frac{3}{4}}", "0.75", "3/4", "boxed", True),
    (r"\boxed{\text{18 dollars}}", "18", "18", "boxed", True),
    (r"\boxed{\$18}", "18", "18", "boxed", True),
    (r"\boxed{1{,}000}", "1,000", "1000", "boxed", True),
    (r"\boxed{1,000}", "1000", "1000", "boxed", True),
    (r"\boxed{1,001}", "1,000", "1001", "boxed", False),
    (r"\boxed{25\%}", "25", "25", "boxed", True),
    (r"\boxed{18.00}", "18", "18.00", "boxed", True),
    (r"\boxed{18.5}", "18", "18.5", "boxed", False),
    (r"\boxed{1/2}", "0.5", "1/2", "boxed", True),
    (r"\boxed{-3}", "-3", "-3", "boxed", True),
    (r"\boxed{3}", "-3", "3", "boxed", False),
    (r"\boxed{10} no wait \boxed{12}", "12", "12", "boxed", True),
    (r"\boxed{10} no wait \boxed{12}", "10", "12", "boxed", False),
    ("The answer is 42.", "42", "42", "answer_is", True),
    ("Final answer: $1,234", "1,234", "1234", "answer_is", True),
    ("Final answer: $1,234", "1,243", "1234", "answer_is", False),
    ("#### 72", "72", "72", "hashes", True),
    ("#### 70", "72", "70", "hashes", False),
    ("so she has 5 apples left", "5", "5", "last_number", True),
    ("so she has 5 apples left", "6", "5", "last_number", False),
    ("The debt is -7.50 now", "-7.5", "-7.50", "last_number", True),
    ("I do not know.", "18", None, "none", False),
]


@pytest.mark.parametrize(("reply", "gold", "extracted", "rule", "correct"), CASES)
def test_score(reply: str, gold: str, extracted: str | None, rule: str, correct: bool) -> None:
    assert score(reply, gold) == Score(extracted=extracted, rule=rule, correct=correct)
    assert is_correct(reply, gold) is correct


@pytest.mark.parametrize(
    ("predicted", "gold", "match"),
    [
        (None, "18", False),
        ("18.00", "18", True),
        ("0.5", "1/2", True),
        ("1,000", "1000", True),
        (r"\frac{3}{4}", "0.75", True),
        (r"\sqrt{4}", "3", False),
        ("banana", "18", False),
    ],
)
def test_answers_match(predicted: str | None, gold: str, match: bool) -> None:
    assert answers_match(predicted, gold) is match


def test_math_verify_fallback_runs_in_a_worker_thread() -> None:
    # math_verify's default timeouts use signal.alarm, which raises outside the main thread.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(is_correct, [r"\boxed{\sqrt{4}}", r"\boxed{\sqrt{9}}"], ["2", "2"]))
    assert results == [True, False]


def test_a_runaway_answer_is_bounded_in_the_main_thread():
    started_s = time.perf_counter()
    assert is_correct("\\boxed{10^{10^{10}}}", "18") is False
    assert time.perf_counter() - started_s < 30
