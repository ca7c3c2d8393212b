"""The exact scorer compares text: multiple-choice letters, yes/no and names, with formatting set aside."""

import pytest

from delegate.scoring import Extraction, get_scorer
from delegate.scoring.exact import normalize_text

EXACT = get_scorer("exact")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (r"\text{(B)}.", "b"),
        ("  Yes ", "yes"),
        ("$C$", "c"),
        ("**No**", "no"),
        ('"New  York"', "new york"),
        ("", ""),
    ],
)
def test_normalized_text(raw, normalized):
    assert normalize_text(raw) == normalized


@pytest.mark.parametrize(
    ("reply", "extraction"),
    [
        (r"The letter is \boxed{\text{(B)}}", Extraction(r"\text{(B)}", "boxed")),
        ("The answer is B, because the rest are odd.", Extraction("B", "answer_is")),
        ("Answer: yes", Extraction("yes", "answer_is")),
        ("#### C", Extraction("C", "hashes")),
        # No guessing from a free reply.
        ("I think it is probably C", Extraction(None, "none")),
    ],
)
def test_extraction(reply, extraction):
    assert EXACT.extract(reply) == extraction


@pytest.mark.parametrize(
    ("reply", "gold", "correct"),
    [
        (r"\boxed{B}", "(B)", True),
        (r"\boxed{B}", "C", False),
        ("The answer is Yes.", "yes", True),
        ("The answer is no.", "yes", False),
        # Text, not numbers: 18.0 is not 18 here.
        (r"\boxed{18.0}", "18", False),
    ],
)
def test_score(reply, gold, correct):
    assert EXACT.score(reply, gold).correct is correct


def test_an_empty_gold_is_unusable():
    assert EXACT.read_gold("  $ $ ") is None
    assert EXACT.read_gold(" B ") == "B"
