"""Extraction finds the final answer in each reply format and names the rule that found it."""

import pytest

from delegate.scoring import Extraction, extract_answer, extract_answer_with_rule

CASES = [
    # (reply, expected answer, expected rule)
    (r"So the total is \boxed{18}.", "18", "boxed"),
    (r"$\boxed{\frac{3}{4}}$", "3/4", "boxed"),
    (r"\boxed{\dfrac{1}{2}}", "1/2", "boxed"),
    (r"\boxed{\text{18 dollars}}", "18", "boxed"),
    (r"\boxed{\$18}", "18", "boxed"),
    (r"\boxed{$18$}", "18", "boxed"),
    (r"\boxed{1{,}000}", "1000", "boxed"),
    (r"\boxed{1,000}", "1000", "boxed"),
    (r"\boxed{25\%}", "25", "boxed"),
    (r"\boxed{7.}", "7", "boxed"),
    (r"\boxed{-3}", "-3", "boxed"),
    (r"\boxed{18.00}", "18.00", "boxed"),
    (r"\boxed{x = 5}", "5", "boxed"),
    (r"\boxed{3 \times 4 = 12}", "12", "boxed"),
    (r"First \boxed{10}, then corrected: \boxed{12}", "12", "boxed"),
    (r"The answer is $\boxed 5$.", "5", "boxed"),
    (r"\fbox{9}", "9", "boxed"),
    (r"\boxed{\sqrt{4}}", r"\sqrt{4}", "boxed"),
    ("The answer is 42.", "42", "answer_is"),
    ("Final answer: $1,234", "1234", "answer_is"),
    ("**Final Answer:** 42", "42", "answer_is"),
    ("The answer is 12 dollars, because 3 x 4 = 12 and she spent 0.", "12", "answer_is"),
    ("The answer is 3.5.\nDone.", "3.5", "answer_is"),
    ("The answer is as follows:\n7 + 3 = 10", "10", "last_number"),
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", "hashes"),
    ("#### 1,000", "1000", "hashes"),
    ("So she has 5 apples left", "5", "last_number"),
    ("The temperature fell to -4 degrees", "-4", "last_number"),
    ("She ate 3/4 of the pie", "3/4", "last_number"),
    ("He paid 1,250.50 in total", "1250.50", "last_number"),
    ("Between 2020-2021 it rose", "2021", "last_number"),
    ("I cannot solve this problem.", None, "none"),
    ("", None, "none"),
    (r"\boxed{}", None, "none"),
]


@pytest.mark.parametrize(("reply", "answer", "rule"), CASES)
def test_extract_answer_with_rule(reply: str, answer: str | None, rule: str) -> None:
    assert extract_answer_with_rule(reply) == Extraction(answer=answer, rule=rule)


def test_extract_answer_returns_the_answer_alone() -> None:
    assert extract_answer(r"so \boxed{\frac{3}{4}}") == "3/4"
    assert extract_answer("no digits here") is None
