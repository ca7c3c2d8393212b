"""Scorers are found by the name a dataset's config gives; an unknown name is one line naming the setting."""

import subprocess
import sys

import pytest

from delegate.errors import ConfigError
from delegate.scoring import SCORERS, Score, get_scorer


def test_the_three_scorers_are_registered_under_their_names():
    assert SCORERS.names() == ["exact", "numeric", "symbolic"]
    for name in SCORERS.names():
        scorer = get_scorer(name)
        assert scorer.name == name
        assert scorer.unusable_gold


def test_an_unknown_scorer_is_one_line_naming_the_setting_and_the_choices():
    with pytest.raises(ConfigError) as caught:
        get_scorer("numerci")
    assert (
        str(caught.value)
        == "data.scorer=numerci is unknown; use one of ['exact', 'numeric', 'symbolic'] (one of your own: name the module that registers it in DELEGATE_PLUGINS)"
    )


@pytest.mark.parametrize("name", ["numeric", "symbolic", "exact"])
def test_score_is_extract_then_match(name):
    scorer = get_scorer(name)
    extraction = scorer.extract(r"so \boxed{7}")
    assert scorer.score(r"so \boxed{7}", "7") == Score(extraction.answer, extraction.rule, True)
    assert scorer.score("nothing here", "7") == Score(None, "none", False)


def test_importing_scoring_loads_no_scorer_and_no_math_verify():
    code = "import sys, delegate.scoring, delegate.records; print('math_verify' in sys.modules, 'sympy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
