"""The single-model baselines: `llm` and `slm` each solve the whole problem alone."""

from dataclasses import dataclass, field

from delegate.config.schema import PromptConfig, StrategyConfig
from delegate.data.problem import Problem
from delegate.models.metered import MeteredModel
from delegate.strategies.observer import Observer
from delegate.strategies.prompting import render_messages
from delegate.strategies.registry import Attempt, register_strategy


@dataclass
class SoloConfig(StrategyConfig):
    prompt: PromptConfig = field(default_factory=PromptConfig)


async def solve_alone(role: str, problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer) -> Attempt:
    messages = render_messages(cfg.prompt, problem.question)
    response = await models[role].chat(messages)
    observer.final_answer(response.text)
    # Cut off at the token limit: scored as written, and said so in the record.
    events = {"truncated": 1} if response.finish_reason == "length" else {}
    return Attempt(response=response.text, transcript=[*messages, response.as_message()], events=events)


@register_strategy("llm", roles=("llm",), schema=SoloConfig)
async def solve_with_llm(problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer) -> Attempt:
    return await solve_alone("llm", problem, models, cfg, observer)


@register_strategy("slm", roles=("slm",), schema=SoloConfig)
async def solve_with_slm(problem: Problem, models: dict[str, MeteredModel], cfg: SoloConfig, observer: Observer) -> Attempt:
    return await solve_alone("slm", problem, models, cfg, observer)
