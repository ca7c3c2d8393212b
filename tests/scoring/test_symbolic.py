"""The symbolic scorer reads MATH-500's LaTeX answers, judges them with math-verify, and stays bounded in time in
the main thread and in a worker thread."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from delegate.scoring import Extraction, get_scorer

SYMBOLIC = get_scorer("symbolic")
# A reply that would take sympy longer than anyone waits: 9^(9^(9^9)).
RUNAWAY = r"So the answer is \boxed{9^{9^{9^{9}}}}."
# Bounds hold with room for a loaded machine: math-verify's own bounds are 5 s each.
LIMIT_S = 60


@pytest.mark.parametrize(
    ("reply", "extraction"),
    [
        (
            r"Therefore $\boxed{\left( 3, \frac{\pi}{2} \right)}.$",
            Extraction(r"\left( 3, \frac{\pi}{2} \right)", "boxed"),
        ),
        # Nested braces stay whole; the last box wins.
        (r"\boxed{1} then \boxed{\frac{\sqrt{3}}{2}}", Extraction(r"\frac{\sqrt{3}}{2}", "boxed")),
        (r"The answer is $p - q$.", Extraction("p - q", "answer_is")),
        # A comma does not end a claim: tuples hold commas.
        (r"The final answer is (1, 2).", Extraction("(1, 2)", "answer_is")),
        ("#### x=5", Extraction("x=5", "hashes")),
        ("so she has 14/3 cups left", Extraction("14/3", "last_number")),
        ("I cannot tell.", Extraction(None, "none")),
    ],
)
def test_extraction_keeps_the_latex_and_names_the_rule(reply, extraction):
    assert SYMBOLIC.extract(reply) == extraction


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        (r"\frac{14}{3}", r"\frac{14}{3}"),
        ("14/3", r"\frac{14}{3}"),
        (r"4\frac{2}{3}", r"\frac{14}{3}"),
        (r"\sqrt{117}", r"3\sqrt{13}"),
        ("5", "x=5"),
        (r"(3, \pi/2)", r"\left( 3, \frac{\pi}{2} \right)"),
        ("-5i+6", "6 - 5i"),
        ("-q + p", "p - q"),
        ("90", r"90^\circ"),
        ("Evelyn", r"\text{Evelyn}"),
        ("[2, 5)", "[2,5)"),
    ],
)
def test_equivalent_answers_match(answer, gold):
    assert SYMBOLIC.matches(answer, gold)


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        (None, "5"),
        (r"\frac{13}{3}", r"\frac{14}{3}"),
        ("4.6667", r"\frac{14}{3}"),
        (r"3\sqrt{12}", r"3\sqrt{13}"),
        ("x=6", "x=5"),
        (r"(3, \pi)", r"\left( 3, \frac{\pi}{2} \right)"),
        ("q - p", "p - q"),
        ("(2, 5)", "[2,5)"),
        (r"\text{Bob}", r"\text{Evelyn}"),
        (r"\frac{1}{", "2"),
    ],
)
def test_different_answers_do_not_match(answer, gold):
    assert not SYMBOLIC.matches(answer, gold)


@pytest.mark.parametrize(
    ("raw", "gold"), [(r" \frac{14}{3} ", r"\frac{14}{3}"), ("$x=5$.", "x=5"), ("  ", None), ("$$", None)]
)
def test_a_gold_is_its_latex_and_an_empty_one_is_unusable(raw, gold):
    assert SYMBOLIC.read_gold(raw) == gold


def test_a_runaway_answer_is_bounded_in_the_main_thread():
    started_s = time.perf_counter()
    assert not SYMBOLIC.score(RUNAWAY, "18").correct
    assert time.perf_counter() - started_s < LIMIT_S


def test_a_runaway_answer_is_bounded_in_a_worker_thread_and_the_others_are_still_judged():
    started_s = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        verdicts = list(
            pool.map(
                lambda reply: SYMBOLIC.score(reply, r"3\sqrt{13}").correct,
                [RUNAWAY, r"\boxed{\sqrt{117}}", r"\boxed{\sqrt{13}}"],
            )
        )
    assert verdicts == [False, True, False]
    assert time.perf_counter() - started_s < LIMIT_S
