"""The numeric scorer compares numbers exactly, falls back to math_verify, and is safe in worker threads."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from delegate.scoring import Score, get_scorer
from delegate.scoring.compare import answers_match

score = get_scorer("numeric").score


def is_correct(reply: str, gold: str) -> bool:
    return score(reply, gold).correct


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
    # A value made of several tokens is one value: mixed numbers...
    (r"\boxed{3\frac{1}{4}}", "3.25", "3.25", "boxed", True),
    (r"\boxed{3\frac{1}{4}}", "3.75", "3.25", "boxed", False),
    (r"\boxed{3\frac{1}{4}}", "31/4", "3.25", "boxed", False),
    (r"\boxed{3 \frac{1}{4}}", "13/4", "3.25", "boxed", True),
    (r"\boxed{-2\tfrac12}", "-2.5", "-2.5", "boxed", True),
    (r"\boxed{2\dfrac{1}{3}}", "7/3", "7/3", "boxed", True),
    ("It takes 1 3/4 hours", "1.75", "1.75", "last_number", True),
    ("It takes 1 3/4 hours", "0.75", "1.75", "last_number", False),
    ("It takes 1 3/4 hours", "1 3/4", "1.75", "last_number", True),
    # ...units with exponents...
    (r"\boxed{49 \text{ m}^2}", "49", "49", "boxed", True),
    (r"\boxed{49 \text{ m}^2}", "2", "49", "boxed", False),
    ("The area is 49 m^2", "49", "49", "last_number", True),
    ("The area is 49 m²", "49", "49", "last_number", True),
    (r"\boxed{12 \mathrm{cm}^{3}}", "12", "12", "boxed", True),
    ("He walks at 5 km/h", "5", "5", "last_number", True),
    # ...scientific notation.
    (r"about 5\times 10^3 people", "5000", "5000", "last_number", True),
    (r"about 5\times 10^3 people", "3", "5000", "last_number", False),
    (r"\boxed{5 \cdot 10^{3}}", "5000", "5000", "boxed", True),
    ("about 5e3 people", "5000", "5000", "last_number", True),
    ("about 5 x 10^3 people", "5000", "5000", "last_number", True),
    ("about 5 × 10³ people", "5,000", "5000", "last_number", True),
    # Adjacent numbers are never glued together.
    ("The answer is 3 4", "34", "3 4", "answer_is", False),
    (r"\boxed{1, 2, 3}", "123", "1, 2, 3", "boxed", False),
    ("The answer is 1,234.", "1234", "1234", "answer_is", True),
    # Currency and percent.
    (r"\boxed{\$1,200.50}", "1200.5", "1200.50", "boxed", True),
    (r"\boxed{45\%}", "45", "45", "boxed", True),
    # The last claim wins.
    ("The answer is 12. Wait, recheck: the answer is 14.", "14", "14", "answer_is", True),
    ("The answer is 12. Wait, recheck: the answer is 14.", "12", "14", "answer_is", False),
    ("answer is 12 ... so the answer is 14", "14", "14", "answer_is", True),
    ("#### 12 no wait #### 14", "14", "14", "hashes", True),
    (r"\boxed{12} no, \boxed{14}", "14", "14", "boxed", True),
    # Dates and times are not the answer when an explicit one exists.
    ("The meeting is at 3:30 pm on 12/05. The answer is 7.", "7", "7", "answer_is", True),
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
        ("3.25", "3 1/4", True),
        ("13/4", r"3\frac{1}{4}", True),
        ("5000", r"5 \times 10^3", True),
        ("3 4", "34", False),
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
