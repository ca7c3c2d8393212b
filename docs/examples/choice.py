"""A new answer type in one module: multiple-choice letters (A-E). Register it, then name it in a dataset's config
(`scorer: choice`). Loaded here with DELEGATE_PLUGINS=choice; in a checkout it could live in delegate/scoring/."""

import re

from delegate.scoring.base import Extraction, ScorerBase, register_scorer

_LETTER = re.compile(r"\b([A-E])\b")


@register_scorer("choice")
class ChoiceScorer(ScorerBase):
    unusable_gold = "not a letter from A to E"

    def read_gold(self, raw: str) -> str | None:
        letter = raw.strip().strip("()").upper()
        return letter if len(letter) == 1 and letter in "ABCDE" else None

    def extract(self, text: str) -> Extraction:
        letters = _LETTER.findall(text)
        return Extraction(letters[-1], "last_letter") if letters else Extraction(None, "none")

    def matches(self, extracted: str | None, gold: str) -> bool:
        return extracted == gold
