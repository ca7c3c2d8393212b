"""The `numeric` scorer (GSM8K, SVAMP): the answer is a number, found by the first rule that applies (boxed, "the
answer is", "####", the last number) and compared exactly as a rational."""

from delegate.scoring.base import Extraction, ScorerBase, register_scorer
from delegate.scoring.compare import answers_match, gold_is_number
from delegate.scoring.extract import extract_answer_with_rule


@register_scorer("numeric")
class NumericScorer(ScorerBase):
    unusable_gold = "not a number"

    def read_gold(self, raw: str) -> str | None:
        """`raw` trimmed, thousands commas removed ("1,450,000" -> "1450000"); None unless it reads as one number."""
        gold = raw.strip().replace(",", "")
        return gold if gold_is_number(gold) else None

    def extract(self, text: str) -> Extraction:
        return extract_answer_with_rule(text)

    def matches(self, extracted: str | None, gold: str) -> bool:
        return answers_match(extracted, gold)
