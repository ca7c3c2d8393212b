"""One problem to solve: a stable id, the question, the gold answer, and the scorers that judge it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    # Index in the full split, so the same problem has the same id in every run and sample.
    id: int
    question: str
    # As the primary scorer reads it (`Scorer.read_gold`).
    gold: str
    # The split it comes from (`dataset_id`): a problem's identity across runs is (dataset, id).
    dataset: str = ""
    # The names of the scorers that judge it (`delegate.scoring`): the dataset's `data.scorer` first, then
    # `data.scorers`.
    scorers: tuple[str, ...] = ("numeric",)

    @property
    def scorer(self) -> str:
        """The primary scorer's name: the one that reads the gold and fills a record's `correct`."""
        return self.scorers[0]


def gold_text(answer: str, marker: str | None) -> str:
    """The text after the last `marker` (GSM8K: '####'), or the whole answer for None; trimmed, for the scorer to
    read (`Scorer.read_gold`). Raises ValueError when the marker is missing."""
    if marker is not None:
        if marker not in answer:
            raise ValueError(f"answer has no {marker!r} marker: {answer[-80:]!r}")
        answer = answer.rsplit(marker, 1)[1]
    return answer.strip()
