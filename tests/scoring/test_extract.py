"""Extraction finds the final answer in each reply format and names the rule that found it."""

import pytest

from delegate.scoring import Extraction, extract_answer
from delegate.scoring.extract import extract_answer_with_rule, read_values

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
    # A value made of several tokens is read as one value, never as its last token nor glued together.
    # Mixed numbers, LaTeX and plain: whole + fraction, written exactly.
    (r"\boxed{3\frac{1}{4}}", "3.25", "boxed"),
    (r"\boxed{3 \frac{1}{4}}", "3.25", "boxed"),
    (r"\boxed{3\,\dfrac{1}{4}}", "3.25", "boxed"),
    (r"\boxed{-2\tfrac12}", "-2.5", "boxed"),
    (r"\boxed{2\frac{1}{3}}", "7/3", "boxed"),
    (r"\boxed{12\frac{1}{2}}", "12.5", "boxed"),
    (r"\boxed{3\frac{1}{4} \text{ hours}}", "3.25", "boxed"),
    ("It takes 1 3/4 hours", "1.75", "last_number"),
    ("The answer is 1 3/4 hours.", "1.75", "answer_is"),
    ("I need 2 1/2 cups, then 3 1/3 cups", "10/3", "last_number"),
    ("#### -2 1/2", "-2.5", "hashes"),
    ("scores 3 5/4 here", "5/4", "last_number"),  # not a proper fraction: two values, not one mixed number
    # Units: the exponent of a unit is no value.
    (r"\boxed{49 \text{ m}^2}", "49", "boxed"),
    (r"$49\text{ m}^2$", "49", "last_number"),
    ("The area is 49 m^2", "49", "last_number"),
    ("The area is 49 m²", "49", "last_number"),
    (r"\boxed{12 \mathrm{cm}^{3}}", "12", "boxed"),
    ("The volume is 12 cm³.", "12", "last_number"),
    ("The answer is 12 cm^{3}.", "12", "answer_is"),
    ("He walks at 5 km/h", "5", "last_number"),
    ("g is 9.8 m/s^2", "9.8", "last_number"),
    ("so x^{2} = 49 and x is 7 x^{3}", "7", "last_number"),
    # Scientific notation and powers of a number: one value.
    (r"about 5\times 10^3 people", "5000", "last_number"),
    (r"\boxed{5 \cdot 10^{3}}", "5000", "boxed"),
    (r"\boxed{5\times10^{3}}", "5000", "boxed"),
    ("about 5e3 people", "5000", "last_number"),
    ("about 5 x 10^3 people", "5000", "last_number"),
    ("about 5 × 10³ people", "5000", "last_number"),
    (r"The answer is 2.5 \times 10^{-3} grams.", "0.0025", "answer_is"),
    ("It grew to 1.5E+3", "1500", "last_number"),
    ("The debt is -5 x 10^3", "-5000", "last_number"),
    ("The answer is 10^3 dollars", "1000", "answer_is"),
    (r"\boxed{2^{10}}", "1024", "boxed"),
    ("There are 10² tiles", "100", "last_number"),
    (r"\boxed{-2^2}", "-4", "boxed"),
    (r"\boxed{0^{-1}}", "0^{-1}", "boxed"),  # no value: left as written for math_verify
    # Adjacent numbers are never glued together.
    ("The answer is 3 4", "3 4", "answer_is"),
    (r"\boxed{1, 2, 3}", "1, 2, 3", "boxed"),
    ("The numbers are 1, 2, 3", "3", "last_number"),
    ("He got 3 4-packs", "4", "last_number"),
    (r"\boxed{3{,}5}", "3,5", "boxed"),
    ("The answer is 1,234.", "1234", "answer_is"),
    (r"\boxed{1\,000}", "1000", "boxed"),
    # Currency, percent, negatives.
    (r"\boxed{\$1,200.50}", "1200.50", "boxed"),
    (r"\boxed{45\%}", "45", "boxed"),
    ("The answer is −12.", "-12", "answer_is"),
    ("It fell by -.5 degrees", "-.5", "last_number"),
    # The last claim wins, also on one line.
    ("The answer is 12. Wait, recheck: the answer is 14.", "14", "answer_is"),
    ("The answer is 12, so the answer is 14", "14", "answer_is"),
    ("answer is 12 ... so the answer is 14", "14", "answer_is"),
    ("The answer is 12.\nHmm, no. Final answer: 14", "14", "answer_is"),
    ("The answer is 12. I explain the answer is as follows", "12", "answer_is"),
    ("#### 12 no wait #### 14", "14", "hashes"),
    ("#### 12\n#### 14", "14", "hashes"),
    ("#### 12 ####", "12", "hashes"),
    (r"\boxed{12} no, \boxed{14}", "14", "boxed"),
    # Numbers that are not the answer stay out when an explicit answer exists.
    ("The meeting is at 3:30 pm on 12/05. The answer is 7.", "7", "answer_is"),
    ("On 2024-03-05 at 10:45 she had 9 left.\n#### 9", "9", "hashes"),
]


@pytest.mark.parametrize(("reply", "answer", "rule"), CASES)
def test_extract_answer_with_rule(reply: str, answer: str | None, rule: str) -> None:
    assert extract_answer_with_rule(reply) == Extraction(answer=answer, rule=rule)


def test_extract_answer_returns_the_answer_alone() -> None:
    assert extract_answer(r"so \boxed{\frac{3}{4}}") == "3/4"
    assert extract_answer("no digits here") is None


@pytest.mark.parametrize(
    ("span", "values"),
    [
        ("It takes 1 3/4 hours, not 2", ["1.75", "2"]),
        ("3 4", ["3", "4"]),
        ("1, 2, 3", ["1", "2", "3"]),
        ("1,234 and 5,678", ["1234", "5678"]),
        ("49 m^2 and 49 m² and x^{2}", ["49", "49"]),
        (r"5 x 10^3, 5e3, 5 \cdot 10^{3}", ["5000", "5000", "5000"]),
        ("18.00 and 3/4 and -7.50", ["18.00", "3/4", "-7.50"]),
        ("2020-2021", ["2020", "2021"]),
        ("no numbers", []),
    ],
)
def test_read_values_reads_each_value_whole(span: str, values: list[str]) -> None:
    assert read_values(span) == values
