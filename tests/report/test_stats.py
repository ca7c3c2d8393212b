"""Paired statistics against hand-computed and published values."""

import math

import pytest

from delegate.report.stats import PairedCounts, mcnemar_exact_p, paired_difference_ci

Z = 1.959963984540054


def test_counts_from_paired_outcomes():
    a = [True, True, False, False, True, False]
    b = [True, False, True, False, True, True]
    counts = PairedCounts.from_outcomes(a, b)
    assert counts == PairedCounts(both_right=2, only_a=1, only_b=2, both_wrong=1)
    assert counts.n == 6
    assert counts.accuracy_a == pytest.approx(3 / 6)
    assert counts.accuracy_b == pytest.approx(4 / 6)
    assert counts.difference == pytest.approx(1 / 6)


def test_outcomes_of_different_length_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        PairedCounts.from_outcomes([True], [True, False])


def test_mcnemar_exact_p_by_hand():
    # 8 discordant problems, 1 of them B's: P(X <= 1 | Bin(8, 1/2)) = (C(8,0) + C(8,1)) / 2^8 = 9/256, doubled.
    assert mcnemar_exact_p(PairedCounts(both_right=1, only_a=7, only_b=1, both_wrong=12)) == pytest.approx(18 / 256)
    # All 6 discordant problems B's: 2 * (1/2)^6.
    assert mcnemar_exact_p(PairedCounts(both_right=3, only_a=0, only_b=6, both_wrong=0)) == pytest.approx(1 / 32)
    # A balanced split is no evidence at all.
    assert mcnemar_exact_p(PairedCounts(both_right=5, only_a=4, only_b=4, both_wrong=5)) == pytest.approx(1.0)


def test_identical_runs_differ_by_nothing():
    counts = PairedCounts.from_outcomes([True, False, True, True], [True, False, True, True])
    assert counts.difference == 0
    assert mcnemar_exact_p(counts) == 1.0
    low, high = paired_difference_ci(counts)
    assert low < 0 < high
    assert low == pytest.approx(-high)


def test_newcombe_interval_matches_the_published_value():
    # Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8: complete response before
    # and after consolidation therapy (Cavo et al. 2012), table [[59, 6], [16, 80]], rows the first measurement.
    # Newcombe square-and-add: estimate -0.0621 (95% CI -0.1186 to -0.0046). The rows' measurement is our B.
    counts = PairedCounts(both_right=59, only_a=16, only_b=6, both_wrong=80)
    assert counts.difference == pytest.approx(-0.0621, abs=5e-5)
    low, high = paired_difference_ci(counts)
    assert low == pytest.approx(-0.1186, abs=5e-5)
    assert high == pytest.approx(-0.0046, abs=5e-5)


def wilson_by_hand(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def test_newcombe_interval_by_hand_without_correlation():
    # A right on none of 4 problems, B on 2: the margin a + c is 0, so phi = 0 and the interval is plain
    # square-and-add of the two Wilson intervals: theta = 0.5,
    # L = 0.5 - sqrt((0.5 - l_B)^2 + (u_A - 0)^2), U = 0.5 + sqrt((u_B - 0.5)^2 + (0 - l_A)^2) with l_A = 0.
    counts = PairedCounts(both_right=0, only_a=0, only_b=2, both_wrong=2)
    low_b, high_b = wilson_by_hand(2, 4)  # 0.1500, 0.8500
    _, high_a = wilson_by_hand(0, 4)  # 0.4899
    assert (low_b, high_b, high_a) == pytest.approx((0.1500, 0.8500, 0.4899), abs=1e-4)
    low, high = paired_difference_ci(counts)
    assert low == pytest.approx(0.5 - math.sqrt((0.5 - low_b) ** 2 + high_a**2))
    assert high == pytest.approx(0.5 + (high_b - 0.5))
    assert (low, high) == pytest.approx((-0.1021, 0.8500), abs=1e-4)


def test_newcombe_interval_with_a_continuity_corrected_correlation():
    # a=10, b=only B=3, c=only A=1, d=6, n=20: ad - bc = 60 - 3 = 57 > n/2, so phi = (57 - 10) / sqrt(13*7*11*9).
    counts = PairedCounts(both_right=10, only_a=1, only_b=3, both_wrong=6)
    phi = 47 / math.sqrt(13 * 7 * 11 * 9)
    p_b, p_a = 13 / 20, 11 / 20
    low_b, high_b = wilson_by_hand(13, 20)
    low_a, high_a = wilson_by_hand(11, 20)
    expected_low = 0.1 - math.sqrt((p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2)
    expected_high = 0.1 + math.sqrt((high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2)
    assert paired_difference_ci(counts) == pytest.approx((expected_low, expected_high))


def test_an_empty_table_has_no_interval():
    with pytest.raises(ValueError, match="no paired problems"):
        paired_difference_ci(PairedCounts(0, 0, 0, 0))
