"""Cascade: the SLM answers k times (seeded samples, cached per sample); when its answers agree (self-consistency),
that is the answer, otherwise the problem escalates to the LLM. A worked example of a new strategy: this file and
conf/strategy/cascade.yaml; every sample's tokens are charged to the SLM.

Run it with `DELEGATE_PLUGINS=cascade DELEGATE_CONFIG_DIR=docs/examples/conf PYTHONPATH=docs/examples \
delegate-eval strategy=cascade experiment=local`.
"""

from dataclasses import dataclass, field

from delegate.config.schema import PromptConfig, StrategyConfig
from delegate.models.base import ChatRequest, GenerateConfig
from delegate.scoring import get_scorer
from delegate.strategies import register_strategy
from delegate.strategies.prompting import render_messages


@dataclass
class CascadeConfig(StrategyConfig):
    prompt: PromptConfig = field(default_factory=PromptConfig)
    k: int = 3  # SLM samples per problem
    temperature: float = 0.7
    seed: int = 0


@register_strategy("cascade", roles=("slm", "llm"), schema=CascadeConfig)
async def solve_with_cascade(problem, models, cfg: CascadeConfig, observer, attempt) -> None:
    messages = render_messages(cfg.prompt, problem.question)
    sampling = GenerateConfig(temperature=cfg.temperature, seed=cfg.seed)
    drafts = [await models["slm"].chat(ChatRequest(messages, config=sampling, sample_index=i)) for i in range(cfg.k)]
    answers = {get_scorer(problem.scorer).extract(draft.text).answer for draft in drafts}
    final = drafts[0]
    if len(answers) != 1 or None in answers:
        attempt.events["escalated"] += 1  # the SLM's samples disagreed
        final = await models["llm"].chat(ChatRequest(messages))
    attempt.transcript.extend([*messages, final.as_message()])
    attempt.response = final.text
    observer.final_answer(final.text)
