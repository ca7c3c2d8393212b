"""What every scorer is: the `Scorer` protocol, its two results (`Extraction`, `Score`) and the registry of scorers.

A scorer is named by a dataset's config (`data.scorer`, `data.scorers`) and found here by that name, like Inspect AI's
scorers; each one says how it found an answer (the rule, as lm-evaluation-harness names its filters), so a wrong
score can be traced in the record.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from delegate.registry import Registry


@dataclass(frozen=True)
class Extraction:
    """The answer a scorer found in a reply (None when nothing was found) and the rule that found it (`boxed`,
    `answer_is`, `hashes`, `last_number`, ... or `none`)."""

    answer: str | None
    rule: str


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one reply, as a sample record keeps it: the extracted answer, the rule that found it,
    and whether it matches gold."""

    extracted: str | None
    rule: str
    correct: bool


class Scorer(Protocol):
    """Reads a dataset's gold answers and judges replies against them.

    `unusable_gold` completes "gold answer ..." for a gold `read_gold` refuses ("not a number"), in the loader's
    warning about skipped rows.
    """

    name: str
    unusable_gold: str

    def read_gold(self, raw: str) -> str | None:
        """The gold as this scorer compares it (from the text after `data.gold_marker`), or None when it could never
        be matched fairly, so the loader skips the row."""

    def extract(self, text: str) -> Extraction:
        """The final answer in a model's reply, and the rule that found it."""

    def matches(self, extracted: str | None, gold: str) -> bool:
        """Whether an extracted answer (None: nothing found, never a match) equals a gold from `read_gold`."""

    def score(self, text: str, gold: str) -> Score:
        """`extract` the answer from `text`, then `matches` it against `gold`."""


# A reasoning model's thinking, as open models write it in their reply (DeepSeek-R1, Qwen3, ...): a draft answer in it
# is not the answer. Some chat templates put the opening tag in the prompt, so a reply may hold only the closing one.
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def without_reasoning(text: str) -> str:
    """`text` with its reasoning spans removed: every `<think>…</think>`, everything up to a `</think>` whose
    `<think>` was in the prompt, and an unclosed `<think>…` to the end (a reply cut off while thinking has no
    answer). The record keeps the raw reply; scorers and tool results read this. A reply without either tag comes
    back unchanged."""
    if _THINK_OPEN not in text and _THINK_CLOSE not in text:
        return text
    if _THINK_CLOSE in text and _THINK_OPEN not in text.split(_THINK_CLOSE, 1)[0]:
        text = text.split(_THINK_CLOSE, 1)[1]
    while _THINK_OPEN in text:
        before, _, rest = text.partition(_THINK_OPEN)
        text = before + (rest.split(_THINK_CLOSE, 1)[1] if _THINK_CLOSE in rest else "")
    return text.strip()


class ScorerBase:
    """The `score` every scorer shares: extract, then match."""

    name: str

    def score(self, text: str, gold: str) -> Score:
        """The answer in `text` once its reasoning spans are set aside (`without_reasoning`), matched with `gold`."""
        extraction = self.extract(without_reasoning(text))
        return Score(extracted=extraction.answer, rule=extraction.rule, correct=self.matches(extraction.answer, gold))


# Each module of delegate.scoring registers its scorers when the registry first looks a name up.
SCORERS: Registry[type] = Registry("scorer", "delegate.scoring", "data.scorer")

S = TypeVar("S", bound=type)


def register_scorer(name: str) -> Callable[[S], S]:
    """A class decorator: the scorer class is registered under `name`, which becomes its `name`."""

    def add(scorer_class: S) -> S:
        scorer_class.name = name
        return SCORERS.register(name)(scorer_class)

    return add


def get_scorer(name: str) -> Scorer:
    """The scorer registered under `name`; ConfigError `data.scorer=<name> is unknown; use one of [...]` if none is."""
    return SCORERS.get(name)()


# The rule of a verdict whose scorer could not read the gold: no answer can match it.
UNUSABLE_GOLD = "unusable_gold"


def score_with(names: tuple[str, ...], text: str, gold: str) -> dict[str, Score]:
    """Each named scorer's verdict on `text`, in the order given (the primary scorer first), each against the gold
    as it reads it (`read_gold`); a scorer that cannot read it judges no answer right (rule `unusable_gold`)."""
    verdicts = {}
    for name in names:
        scorer = get_scorer(name)
        read = scorer.read_gold(gold)
        verdicts[name] = Score(None, UNUSABLE_GOLD, False) if read is None else scorer.score(text, read)
    return verdicts
