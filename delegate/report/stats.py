"""Paired statistics for two runs scored on the same problems: the 2×2 table, McNemar's exact test, Newcombe's interval."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import binomtest

from delegate.metrics import wilson_interval


@dataclass(frozen=True)
class PairedCounts:
    """How a baseline run A and a candidate run B did on the same n problems (counts of problems)."""

    both_right: int
    only_a: int
    only_b: int
    both_wrong: int

    @classmethod
    def from_outcomes(cls, a_correct: Sequence[bool], b_correct: Sequence[bool]) -> "PairedCounts":
        """The 2×2 table of two equally long lists of right/wrong, problem i of A paired with problem i of B."""
        if len(a_correct) != len(b_correct):
            raise ValueError(f"paired outcomes differ in length: {len(a_correct)} and {len(b_correct)}")
        pairs = list(zip(a_correct, b_correct))
        return cls(
            both_right=sum(a and b for a, b in pairs),
            only_a=sum(a and not b for a, b in pairs),
            only_b=sum(b and not a for a, b in pairs),
            both_wrong=sum(not a and not b for a, b in pairs),
        )

    @property
    def n(self) -> int:
        return self.both_right + self.only_a + self.only_b + self.both_wrong

    @property
    def accuracy_a(self) -> float:
        return (self.both_right + self.only_a) / self.n

    @property
    def accuracy_b(self) -> float:
        return (self.both_right + self.only_b) / self.n

    @property
    def difference(self) -> float:
        """Accuracy of B minus accuracy of A (a proportion in [-1, 1]); only the discordant problems move it."""
        return (self.only_b - self.only_a) / self.n


def mcnemar_exact_p(counts: PairedCounts) -> float:
    """McNemar's exact two-sided p-value: a binomial test of the discordant pairs against 1/2 (1.0 when there are none).

    Under "A and B are equally accurate" each problem only one of them got right is A's or B's with probability 1/2;
    the p-value is scipy's exact two-sided binomial test of `only_b` successes in `only_a + only_b` trials.
    McNemar (1947), Psychometrika 12:153-157; the exact (binomial) form as in Fagerland, Lydersen & Laake (2013),
    BMC Med Res Methodol 13:91.
    """
    discordant = counts.only_a + counts.only_b
    if discordant == 0:
        return 1.0
    return float(binomtest(counts.only_b, discordant, 0.5).pvalue)


def paired_difference_ci(counts: PairedCounts, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% interval for accuracy(B) − accuracy(A) on paired problems: Newcombe's hybrid score interval.

    Newcombe (1998), "Improved confidence intervals for the difference between binomial proportions based on paired
    data", Stat Med 17:2635-2650, method 10: each accuracy's Wilson interval (l, u), combined "square-and-add" with
    the correlation φ of the two runs' outcomes,
        L = θ − √((p_B − l_B)² − 2φ(p_B − l_B)(u_A − p_A) + (u_A − p_A)²)
        U = θ + √((u_B − p_B)² − 2φ(u_B − p_B)(p_A − l_A) + (p_A − l_A)²)
    with θ = p_B − p_A and, for the table (a both right, b only B, c only A, d both wrong; e, f, g, h its margins
    a+b, c+d, a+c, b+d), φ = max(ad − bc − n/2, 0)/√(efgh) when ad > bc, (ad − bc)/√(efgh) otherwise, and 0 when a
    margin is 0. Unlike the Wald interval it stays within [-1, 1] and behaves at small n and at 0% or 100%.
    Raises ValueError for an empty table.
    """
    n = counts.n
    if n == 0:
        raise ValueError("no paired problems: the difference is undefined")
    a, b, c, d = counts.both_right, counts.only_b, counts.only_a, counts.both_wrong
    p_b, p_a = (a + b) / n, (a + c) / n
    low_b, high_b = wilson_interval(a + b, n, z)
    low_a, high_a = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    association = a * d - b * c
    if margins == 0:
        phi = 0.0
    elif association > 0:
        phi = max(association - n / 2, 0.0) / math.sqrt(margins)
    else:
        phi = association / math.sqrt(margins)
    theta = p_b - p_a
    below = (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2
    above = (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2
    # Rounding can leave a true 0 a hair below it.
    return theta - math.sqrt(max(below, 0.0)), theta + math.sqrt(max(above, 0.0))
