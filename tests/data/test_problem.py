"""A gold is what follows the last marker, trimmed; the numeric scorer then drops thousands commas."""

import pytest

from delegate.data.problem import Problem, gold_text
from delegate.scoring import get_scorer


@pytest.mark.parametrize(
    ("answer", "marker", "gold"),
    [
        ("She has 3+4=<<3+4=7>>7 apples.\n#### 7", "####", "7"),
        ("Total: 1,450,000 dollars.\n#### 1,450,000", "####", "1450000"),
        ("#### 2,125", "####", "2125"),
        ("Work...\n####   42  \n", "####", "42"),
        ("####42", "####", "42"),
        ("The balance falls to\n#### -15", "####", "-15"),
        ("Per hour:\n#### 3.5", "####", "3.5"),
        ("#### 1,234.50", "####", "1234.50"),
        # The last marker wins.
        ("A #### inside reasoning, then\n#### 12", "####", "12"),
        # No marker: the whole field is the gold.
        ("  1,000 ", None, "1000"),
        ("Answer: 5", "Answer:", "5"),
    ],
)
def test_numeric_gold(answer, marker, gold):
    assert get_scorer("numeric").read_gold(gold_text(answer, marker)) == gold


@pytest.mark.parametrize("answer", ["She has 7 apples.", "", "### 7"])
def test_missing_marker_raises(answer):
    with pytest.raises(ValueError, match="'####'"):
        gold_text(answer, "####")


def test_problem_is_frozen():
    problem = Problem(id=0, question="q", gold="1")
    with pytest.raises(AttributeError):
        problem.gold = "2"
