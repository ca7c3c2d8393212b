"""The single-model baselines: `llm` and `slm` each solve the whole problem alone."""

from dataclasses import dataclass, field

from delegate.config.schema import PromptConfig, StrategyConfig
from delegate.data.problem import Problem
from delegate.models.base import ChatRequest
from delegate.models.metered import MeteredModel
from delegate.strategies.observer import Observer
from delegate.strategies.prompting import render_messages
from delegate.strategies.registry import Attempt, register_strategy


@dataclass
class SoloConfig(StrategyConfig):
    prompt: PromptConfig = field(default_factory=PromptConfig)


async def solve_alone(
    role: str, problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer, attempt: Attempt
) -> None:
    attempt.transcript.extend(render_messages(cfg.prompt, problem.question))
    response = await models[role].chat(ChatRequest(list(attempt.transcript)))
    if response.finish_reason == "length":
        # Cut off at the token limit: scored as written, and said so in the record.
        attempt.events["truncated"] += 1
    attempt.transcript.append(response.as_message())
    attempt.response = response.text
    observer.final_answer(response.text)


@register_strategy("llm", roles=("llm",), schema=SoloConfig)
async def solve_with_llm(
    problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer, attempt: Attempt
) -> None:
    await solve_alone("llm", problem, models, cfg, observer, attempt)


@register_strategy("slm", roles=("slm",), schema=SoloConfig)
async def solve_with_slm(
    problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer, attempt: Attempt
) -> None:
    await solve_alone("slm", problem, models, cfg, observer, attempt)
