"""A reasoning model's thinking (`<think>…</think>`) is set aside before scoring and before a tool result: a draft
answer in it is never scored, nor relayed to the LLM as the answer; the record keeps the raw reply."""

import pytest

from delegate.scoring.base import get_scorer, without_reasoning


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("<think>Maybe \\boxed{3}? No.</think> So the total is \\boxed{5}.", "So the total is \\boxed{5}."),
        # The chat template opened the span in the prompt: only the closing tag is in the reply.
        ("Maybe 3... no, 5.</think>The answer is 5", "The answer is 5"),
        # Cut off while thinking: no answer at all.
        ("<think>So far \\boxed{3}", ""),
        ("<think>a</think>First. <think>b \\boxed{9}</think>Then \\boxed{5}.", "First. Then \\boxed{5}."),
        ("No tags: \\boxed{5} ", "No tags: \\boxed{5} "),
    ],
)
def test_reasoning_spans_are_set_aside(reply, answer):
    assert without_reasoning(reply) == answer


@pytest.mark.parametrize("scorer", ["numeric", "symbolic", "exact"])
def test_a_draft_answer_in_the_thinking_is_never_scored(scorer):
    verdict = get_scorer(scorer).score("<think>It is \\boxed{3}.</think> Final: \\boxed{5}", "5")
    assert (verdict.extracted, verdict.correct) == ("5", True)
    wrong = get_scorer(scorer).score("<think>It is \\boxed{5}.</think> Final: \\boxed{3}", "5")
    assert (wrong.extracted, wrong.correct) == ("3", False)
    assert get_scorer(scorer).score("<think>It is \\boxed{5}.", "5").correct is False
