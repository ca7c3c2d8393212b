"""The `symbolic` scorer (MATH-500): the answer is LaTeX (`\\frac{14}{3}`, `3\\sqrt{13}`, `x=5`,
`\\left( 3, \\frac{\\pi}{2} \\right)`, `\\text{Evelyn}`), compared with the gold by math-verify, bounded in time."""

import re

from delegate.scoring.base import Extraction, ScorerBase, register_scorer
from delegate.scoring.bounded import verify_latex
from delegate.scoring.extract import find_answer_is, find_boxed, find_hashes, find_last_number

# A claim after "the answer is" ends at a full stop; a comma does not end it, since tuples and intervals hold commas.
_CLAIM_END_RE = re.compile(r"\.(?:\s|$)")
# Math delimiters around a whole answer, and a sentence's full stop after it.
_DELIMITERS_RE = re.compile(r"^(?:\$+|\\\(|\\\[)|(?:\$+|\\\)|\\\])$")
_SPACE_RE = re.compile(r"\s+")


def _bare(raw: str) -> str:
    """The answer without math delimiters, surrounding space or a final full stop ("$x=5$." -> "x=5")."""
    answer = raw.strip().removesuffix(".").strip()
    return _DELIMITERS_RE.sub("", answer).strip()


def _find_answer_is(text: str) -> str | None:
    return find_answer_is(text, _CLAIM_END_RE, counts=lambda claim: bool(_bare(claim)))


@register_scorer("symbolic")
class SymbolicScorer(ScorerBase):
    unusable_gold = "empty"
    # The first rule that finds something wins; a reply with none of the others may still end on a plain number.
    RULES = (
        ("boxed", find_boxed),
        ("answer_is", _find_answer_is),
        ("hashes", find_hashes),
        ("last_number", find_last_number),
    )

    def read_gold(self, raw: str) -> str | None:
        """The gold LaTeX as written, delimiters and a final full stop removed; None when nothing is left."""
        return _bare(raw) or None

    def extract(self, text: str) -> Extraction:
        """The LaTeX of the last `\\boxed{...}` (nested braces kept whole), else of the last "the answer is"
        claim, else of the last "####" claim, else the last number; rule `none` when there is none."""
        for rule, find in self.RULES:
            raw = find(text)
            answer = _bare(raw) if raw is not None else ""
            if answer:
                return Extraction(answer=answer, rule=rule)
        return Extraction(answer=None, rule="none")

    def matches(self, extracted: str | None, gold: str) -> bool:
        """The same text (spacing aside), else math-verify's equivalence (`4\\frac{2}{3}` == `\\frac{14}{3}`,
        `5` == `x=5`); an answer math-verify cannot read, or that runs past its time bound, is no match."""
        if extracted is None:
            return False
        if _SPACE_RE.sub("", extracted) == _SPACE_RE.sub("", gold):
            return True
        return verify_latex(gold, extracted)
