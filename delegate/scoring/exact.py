"""The `exact` scorer (multiple-choice letters, yes/no, names): the answer equals the gold as text, after case,
spacing, math delimiters, `\\text{...}`, enclosing parentheses and a final full stop are set aside."""

import re

from delegate.scoring.base import Extraction, ScorerBase, register_scorer
from delegate.scoring.extract import find_answer_is, find_boxed, find_hashes

# A claim after "the answer is" ends at a full stop, a comma or a semicolon ("the answer is B, because ...").
_CLAIM_END_RE = re.compile(r"[.;,](?:\s|$)")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
# Delimiters and wrappers that never change the answer, removed from both ends until none is left.
_WRAPPERS = (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("(", ")"), ("*", "*"), ('"', '"'), ("'", "'"))


def normalize_text(raw: str) -> str:
    """`raw` as `exact` compares it: `\\text{...}` unwrapped, a final full stop and the wrappers around it removed,
    spaces collapsed, case folded ("\\text{(B)}." -> "b", " Yes " -> "yes")."""
    text = " ".join(_TEXT_WRAPPER_RE.sub(r"\1", raw).split())
    previous = None
    while previous != text:
        previous = text
        text = text.removesuffix(".").strip()
        for opening, closing in _WRAPPERS:
            if len(text) >= len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
                text = text[len(opening) : len(text) - len(closing)].strip()
    return text.casefold()


@register_scorer("exact")
class ExactScorer(ScorerBase):
    unusable_gold = "empty"
    RULES = (
        ("boxed", find_boxed),
        (
            "answer_is",
            lambda text: find_answer_is(text, _CLAIM_END_RE, counts=lambda claim: bool(normalize_text(claim))),
        ),
        ("hashes", find_hashes),
    )

    def read_gold(self, raw: str) -> str | None:
        """The gold trimmed; None when nothing is left once normalized."""
        gold = raw.strip()
        return gold if normalize_text(gold) else None

    def extract(self, text: str) -> Extraction:
        """The last `\\boxed{...}`, else the last "the answer is" claim, else the last "####" claim, trimmed; rule
        `none` when there is none (no last-word guess: a free reply's last word is rarely its answer)."""
        for rule, find in self.RULES:
            raw = find(text)
            if raw is not None and normalize_text(raw):
                return Extraction(answer=raw.strip(), rule=rule)
        return Extraction(answer=None, rule="none")

    def matches(self, extracted: str | None, gold: str) -> bool:
        return extracted is not None and normalize_text(extracted) == normalize_text(gold)
